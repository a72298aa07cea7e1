/*
 * Running calls. An invoke runs inline on the I/O thread with concurrency
 * 1, with the crash flush armed (crash.c), or becomes a job of the handler
 * pool (pool.c); an invoke_batch runs all its items, in order, on one of
 * those threads. Either way the reply is packed here, with the codec of
 * core/wire.h, as soon as the handler returns.
 */
#include <stdlib.h>
#include <string.h>

#include "worker/crash.h"
#include "worker/ctx.h"
#include "worker/invoke.h"

static void invocation_blank(invocation_t *invocation, imp_worker_t *worker,
                             const function_t *fn) {
  memset(invocation, 0, offsetof(invocation_t, error));
  invocation->error[0] = invocation->refused[0] = '\0';
  invocation->ctx.abi_version = IMPULSE_ABI_VERSION;
  invocation->ctx.ops = &imp_wk_ops;
  invocation->ctx.function = fn->name;
  invocation->ctx.version = fn->version;
  invocation->ctx.runtime = invocation;
  invocation->worker = worker;
  invocation->payload = "";
  imp_arena_init(&invocation->arena, 0);
}

/* Points the invocation at a request payload (decoded blocks end in a NUL,
 * see imp_wire_decode(); otherwise a NUL-terminated copy is made). 0 or
 * -ENOMEM. */
static int invocation_payload(invocation_t *invocation,
                              const ProtobufCBinaryData *payload) {
  if (payload->len == 0 || payload->data == NULL) return 0;
  if (payload->data[payload->len] == '\0') {
    /* The usual case: the decode left a NUL after the bytes. */
    invocation->payload = (const char *)payload->data;
  } else {
    invocation->payload_copy = malloc(payload->len + 1);
    if (invocation->payload_copy == NULL) {
      imp_wk_note_alloc_failure();
      return -ENOMEM;
    }
    memcpy(invocation->payload_copy, payload->data, payload->len);
    invocation->payload_copy[payload->len] = '\0';
    invocation->payload = invocation->payload_copy;
  }
  invocation->payload_len = payload->len;
  return 0;
}

int imp_wk_invocation_init(invocation_t *invocation, imp_worker_t *worker,
                           const function_t *fn, Impulse__Envelope *request,
                           uint64_t received_ns) {
  invocation_blank(invocation, worker, fn);
  invocation->request = request;
  if (request == NULL) return 0;
  invocation->id = request->id;
  invocation->received_ns = received_ns;
  if (request->body_case == IMPULSE__ENVELOPE__BODY_INVOKE_BATCH) {
    invocation->batch = true; /* the items are set up one by one later */
    return 0;
  }
  const Impulse__InvokeRequest *invoke = request->invoke;
  invocation->req_headers = invoke->headers;
  invocation->n_req_headers = invoke->n_headers;
  if (invoke->has_deadline_ms && invoke->deadline_ms > 0)
    invocation->deadline_ns =
        received_ns + (uint64_t)invoke->deadline_ms * 1000000u;
  return invocation_payload(invocation, &invoke->payload);
}

void imp_wk_invocation_free(invocation_t *invocation) {
  imp_wire_request_free(invocation->request);
  invocation->request = NULL;
  free(invocation->payload_copy);
  invocation->payload_copy = NULL;
  free(invocation->response);
  invocation->response = NULL;
  imp_arena_release(&invocation->arena);
}

void imp_wk_invocation_destroy(invocation_t *invocation) {
  if (invocation == NULL) return;
  imp_wk_invocation_free(invocation);
  free(invocation);
}

int imp_wk_append_error(imp_buf_t *out, size_t max_frame, uint64_t id, int code,
                        const char *message) {
  int rc = imp_wire_append_error(out, max_frame, id, code, message);
  if (rc == -ENOMEM) imp_wk_note_alloc_failure();
  return rc == IMP_EFRAMETOOBIG ? 0 : rc; /* cannot happen: tiny frame */
}

void imp_wk_reply_error(imp_worker_t *worker, uint64_t id, int code,
                        const char *message) {
  if (imp_wk_append_error(&worker->out, worker->max_frame, id, code, message) !=
      0)
    imp_wk_fatal_oom("queueing a reply");
}

/* What the handler answered, as the codec takes it (borrowed). */
static void invocation_answer(const invocation_t *invocation,
                              imp_wire_answer_t *answer) {
  answer->payload = invocation->response;
  answer->len = invocation->response_len;
  answer->headers = invocation->headers;
  answer->n_headers = invocation->n_headers;
}

/* What a caller is told of a handler that returned `status` != 0. */
static void failure_message(const invocation_t *invocation, int status,
                            char *buf, size_t len) {
  snprintf(buf, len, "function returned status %d: %s", status,
           invocation->has_error && invocation->error[0] != '\0'
               ? invocation->error
           : invocation->refused[0] != '\0' ? invocation->refused
                                            : "no message");
}

int imp_wk_invocation_reply(invocation_t *invocation, int status,
                            imp_buf_t *out) {
  size_t max_frame = invocation->worker->max_frame;
  char message[1200];
  if (status != 0) {
    failure_message(invocation, status, message, sizeof message);
    return imp_wk_append_error(out, max_frame, invocation->id,
                               IMPULSE__ERROR_CODE__FUNCTION_ERROR, message);
  }
  imp_wire_answer_t answer;
  invocation_answer(invocation, &answer);
  int rc = imp_wire_append_invoke_ok(out, max_frame, invocation->id, &answer,
                                     invocation->ctx.version);
  if (rc == 0) return 0;
  if (rc == IMP_EFRAMETOOBIG) {
    snprintf(message, sizeof message,
             "response of %zu bytes exceeds the maximum frame size",
             invocation->response_len + invocation->header_bytes);
    return imp_wk_append_error(out, max_frame, invocation->id,
                               IMPULSE__ERROR_CODE__TOO_LARGE, message);
  }
  /* The response itself did not fit in memory: try a small error. */
  imp_wk_note_alloc_failure();
  return imp_wk_append_error(out, max_frame, invocation->id,
                             IMPULSE__ERROR_CODE__OUT_OF_MEMORY,
                             "out of memory while sending the response");
}

/* ---- record batches ------------------------------------------------------ */

#define BATCH_NOT_RUN "the batch's answer is full: run it alone"
#define BATCH_SHORT 64u /* bytes a BATCH_NOT_RUN result takes, at most */

/*
 * Runs every item of an invoke_batch, in order, on this thread, and packs
 * one invoke_batch_ok frame answering all of them into `out`. An item
 * whose handler fails gets its own FUNCTION_ERROR result; the others are
 * not affected. When the results outgrow a frame, that item and the ones
 * after it are answered UNAVAILABLE ("run it alone"; the ones after it
 * are not run), and the trigger broker runs them as single invocations.
 */
void imp_wk_batch_run(imp_worker_t *worker, const Impulse__Envelope *env,
                      uint64_t received_ns, imp_buf_t *out) {
  const Impulse__InvokeBatchRequest *b = env->invoke_batch;
  const function_t *fn = &worker->fn;
  uint64_t deadline_ns = b->has_deadline_ms && b->deadline_ms > 0
                             ? received_ns + (uint64_t)b->deadline_ms * 1000000u
                             : 0;
  /* Room for a short "not run" result per item is kept back, so that a
   * batch whose results outgrow the frame can always be answered. */
  size_t limit = worker->max_frame - RESPONSE_SLACK;
  size_t reserve = BATCH_SHORT * b->n_items;
  size_t soft = limit > reserve ? limit - reserve : 0;
  imp_wire_batch_t answer;
  if (imp_wire_batch_init(&answer, b->n_items) != 0)
    imp_wk_fatal_oom("answering a batch");
  char message[1200];
  bool full = false;
  for (size_t i = 0; i < b->n_items; i++) {
    if (full) {
      if (imp_wire_batch_add(&answer, limit, IMPULSE__ERROR_CODE__UNAVAILABLE,
                             BATCH_NOT_RUN, NULL) != 0)
        imp_wk_fatal_oom("answering a batch");
      continue;
    }
    const Impulse__BatchItem *item = b->items[i];
    invocation_t invocation;
    invocation_blank(&invocation, worker, fn);
    invocation.id = env->id;
    invocation.deadline_ns = deadline_ns;
    invocation.req_headers = item->headers;
    invocation.n_req_headers = item->n_headers;
    int code = 0;
    const char *msg = NULL;
    if (invocation_payload(&invocation, &item->payload) != 0) {
      code = IMPULSE__ERROR_CODE__OUT_OF_MEMORY;
      msg = "out of memory receiving the request";
    } else {
      int status = fn->handle(&invocation.ctx);
      if (status != 0) {
        failure_message(&invocation, status, message, sizeof message);
        code = IMPULSE__ERROR_CODE__FUNCTION_ERROR;
        msg = message;
      }
    }
    imp_wire_answer_t result;
    invocation_answer(&invocation, &result);
    int rc = imp_wire_batch_add(&answer, soft, code, msg, &result);
    if (rc == -ENOSPC) {
      /* The items after this one are not run: the broker runs them alone
       * (this one, which ran, too). */
      full = true;
      rc = imp_wire_batch_add(&answer, limit, IMPULSE__ERROR_CODE__UNAVAILABLE,
                              BATCH_NOT_RUN, NULL);
    }
    imp_wk_invocation_free(&invocation);
    if (rc != 0) imp_wk_fatal_oom("answering a batch");
  }
  int rc = imp_wire_batch_finish(&answer, env->id, fn->version, out,
                                 worker->max_frame);
  if (rc == IMP_EFRAMETOOBIG)
    rc = imp_wk_append_error(
        out, worker->max_frame, env->id, IMPULSE__ERROR_CODE__TOO_LARGE,
        "the batch's answer exceeds the maximum frame size");
  if (rc != 0) imp_wk_fatal_oom("answering a batch");
}

/* ---- dispatch ------------------------------------------------------------ */

/* An invoke or an invoke_batch (see imp_wk_batch_run()); takes `env`. */
void imp_wk_invoke(imp_worker_t *worker, Impulse__Envelope *env,
                   uint64_t received_ns) {
  bool batch = env->body_case == IMPULSE__ENVELOPE__BODY_INVOKE_BATCH;
  const char *name =
      batch ? env->invoke_batch->function : env->invoke->function;
  uint32_t version =
      !batch && env->invoke->has_version ? env->invoke->version : 0;
  const function_t *fn = &worker->fn;
  char err[512];
  if (fn->dl == NULL) {
    imp_wk_reply_error(worker, env->id, IMPULSE__ERROR_CODE__UNAVAILABLE,
                       "worker has no function loaded");
    goto drop;
  }
  /* The gateway names the function and version it expects; a mismatch means
   * the request was meant for another instance. */
  if (strcmp(name, fn->name) != 0 || (version != 0 && version != fn->version)) {
    snprintf(err, sizeof err, "worker serves %s version %u, not %s version %u",
             fn->name, (unsigned)fn->version, name, (unsigned)version);
    imp_wk_reply_error(worker, env->id, IMPULSE__ERROR_CODE__UNAVAILABLE, err);
    goto drop;
  }
  if (batch && worker->nthreads == 0) {
    if (imp_wk_call_begin()) {
      imp_wk_crash_arm(worker, env->id);
      imp_wk_batch_run(worker, env, received_ns, &worker->out);
      imp_wk_crash_disarm();
      imp_wk_call_end();
    }
    goto drop;
  }

  if (worker->nthreads == 0) {
    /* Concurrency 1: run inline on the I/O thread. */
    invocation_t invocation;
    if (imp_wk_invocation_init(&invocation, worker, fn, env, received_ns) !=
        0) {
      uint64_t id = env->id;
      imp_wk_invocation_free(&invocation); /* frees env */
      imp_wk_reply_error(worker, id, IMPULSE__ERROR_CODE__OUT_OF_MEMORY,
                         "out of memory receiving the request");
      return;
    }
    if (imp_wk_call_begin()) {
      imp_wk_crash_arm(worker, invocation.id);
      int status = fn->handle(&invocation.ctx);
      imp_wk_crash_disarm();
      imp_wk_call_end();
      if (imp_wk_invocation_reply(&invocation, status, &worker->out) != 0)
        imp_wk_fatal_oom("queueing a reply");
    }
    imp_wk_invocation_free(&invocation);
    return;
  }

  invocation_t *invocation = malloc(sizeof *invocation);
  if (invocation == NULL) {
    imp_wk_note_alloc_failure();
    imp_wk_reply_error(worker, env->id, IMPULSE__ERROR_CODE__OUT_OF_MEMORY,
                       "out of memory receiving the request");
    goto drop;
  }
  if (imp_wk_invocation_init(invocation, worker, fn, env, received_ns) != 0) {
    uint64_t id = env->id;
    imp_wk_invocation_free(invocation);
    free(invocation);
    imp_wk_reply_error(worker, id, IMPULSE__ERROR_CODE__OUT_OF_MEMORY,
                       "out of memory receiving the request");
    return;
  }
  /* Only this thread writes `generation`, so it may read it unlocked. The
   * job reaches the pool in imp_wk_jobs_submit(), with the rest of this
   * read. */
  invocation->generation = worker->generation;
  if (worker->batch_tail != NULL)
    worker->batch_tail->next = invocation;
  else
    worker->batch_head = invocation;
  worker->batch_tail = invocation;
  worker->batch_len++;
  return;
drop:
  imp_wire_request_free(env);
}
