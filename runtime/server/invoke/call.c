/*
 * The call path (call.h): arrival, queueing, sending, timeouts and the
 * answer of every call, whoever made it.
 *
 * A request is forwarded to the worker as it came, with only its id
 * replaced by a worker-side id (fleet/instance.c), and the worker's answer
 * goes back to the caller's callback undecoded unless the caller asked for
 * a decoded one (imp_call_t.decode). Everything runs on the loop thread.
 */
#include "server/invoke/call.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "core/arena.h"
#include "core/codec.h"
#include "core/common.h"
#include "policy/pipeline.h"

static void on_call_timer(uv_timer_t *t);
static void on_sent(imp_sent_t *sent, int code, const char *message,
                    const char *rest, size_t restlen);

void imp_invoke_init(imp_invoke_t *iv, uv_loop_t *loop, const imp_config_t *cfg,
                     imp_store_t *store, const imp_invoke_ops_t *ops,
                     void *owner) {
  memset(iv, 0, sizeof *iv);
  iv->loop = loop;
  iv->cfg = cfg;
  iv->store = store;
  iv->ops = ops;
  iv->owner = owner;
  imp_registry_init(&iv->registry, cfg->max_queue);
}

/* ---- a call's life ------------------------------------------------------- */

imp_call_t *imp_call_new(imp_invoke_t *iv, imp_answer_cb done, void *arg,
                         uint64_t tag) {
  imp_call_t *call = calloc(1, sizeof *call);
  if (call == NULL) abort();
  call->iv = iv;
  call->done = done;
  call->done_arg = arg;
  call->done_tag = tag;
  imp_list_init(&call->link);
  uv_timer_init(iv->loop, &call->timer);
  return call;
}

static void on_call_timer_closed(uv_handle_t *h) {
  imp_call_t *call = IMP_CONTAINER_OF(h, imp_call_t, timer);
  free(call->fwd);
  free(call->idem_key);
  free(call->rec.data);
  free(call);
}

/* Frees a call that has been answered (or given up: see on_sent). */
static void call_free(imp_call_t *call) {
  uv_close((uv_handle_t *)&call->timer, on_call_timer_closed);
}

/* Counts a call's outcome in its function's metrics. */
static void call_observe(imp_call_t *call, int code) {
  if (call->function != NULL)
    imp_fn_metrics_observe(&call->function->metrics, code, call->started_ns);
}

/* The caller has its answer: drop the call from its function. */
static void call_finish(imp_call_t *call) {
  uv_timer_stop(&call->timer);
  imp_rec_call_end(call->function ? &call->function->recording : NULL,
                   &call->rec);
  imp_list_remove(&call->link);
  if (call->function && call->function->in_flight > 0 && !call->replay) {
    imp_fn_inflight(call->function, -1);
    call->function->in_flight--;
  }
}

/* The one answer of a call. */
static void call_answer(imp_call_t *call, const imp_answer_t *a) {
  imp_answer_cb done = call->done;
  call->done = NULL;
  if (done != NULL) done(call->done_arg, call->done_tag, a);
}

/* Answers with a failure the server decided; the call stays allocated
 * (it may still sit in an instance's slot). */
static void call_failed(imp_call_t *call, int code, const char *msg) {
  if (call->function && !call->replay) {
    for (uint32_t i = 0; i < (call->batch ? call->batch : 1); i++) {
      call->function->errors++;
      call_observe(call, code);
    }
  }
  imp_answer_t a = {.code = code, .message = msg};
  call_answer(call, &a);
  call_finish(call);
}

void imp_call_fail(imp_call_t *call, int code, const char *fmt, ...) {
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  call_failed(call, code, msg);
  call_free(call);
}

void imp_invoke_deliver(imp_answer_cb done, void *arg, uint64_t tag, int decode,
                        const char *rest, size_t restlen) {
  imp_answer_t a = {0};
  a.rest = rest;
  a.restlen = restlen;
  if (!decode) {
    a.code = imp_answer_code(rest, restlen);
    done(arg, tag, &a);
    return;
  }
  Impulse__Envelope *env = imp_body_decode(rest, restlen, NULL);
  if (env == NULL) {
    a.code = IMPULSE__ERROR_CODE__INTERNAL;
    a.message = "undecodable answer from the instance";
  } else if (env->body_case == IMPULSE__ENVELOPE__BODY_INVOKE_OK) {
    a.resp = env->invoke_ok;
  } else if (env->body_case == IMPULSE__ENVELOPE__BODY_ERROR) {
    a.code = env->error->code;
    a.message = env->error->message ? env->error->message : "error";
  } else {
    a.code = IMPULSE__ERROR_CODE__INTERNAL;
    a.message = "unexpected answer from the instance";
  }
  done(arg, tag, &a);
  if (env) impulse__envelope__free_unpacked(env, NULL);
}

/* Decodes the answer to an invoke_batch where it lies, counts every item's
 * outcome, and answers. */
static void deliver_batch(imp_call_t *call, const char *rest, size_t restlen) {
  imp_function_t *fn = call->function;
  /* Its many small pieces (a result, a payload, headers per record) are
   * freed together; the first block fits a usual answer whole. */
  imp_arena_t arena;
  imp_arena_init(&arena, restlen * 2 + 256 * (size_t)call->batch + 1024);
  ProtobufCAllocator alloc;
  imp_arena_allocator(&arena, &alloc);
  imp_answer_t a = {0};
  a.rest = rest;
  a.restlen = restlen;
  Impulse__InvokeBatchResponse *resp = NULL;
  a.code = imp_batch_answer_decode(rest, restlen, &alloc, &resp, &a.message);
  a.batch = resp;
  for (uint32_t i = 0; i < call->batch; i++) {
    int c = a.code;
    if (resp != NULL)
      c = i < resp->n_results ? resp->results[i]->code
                              : IMPULSE__ERROR_CODE__INTERNAL;
    if (c != 0 && fn) fn->errors++;
    call_observe(call, c);
  }
  call_answer(call, &a);
  imp_arena_release(&arena);
}

/* Turns pipelining to instances on or off from the calls' service times
 * (policy/pipeline.h). */
static void track_latency(imp_invoke_t *iv, imp_function_t *fn, uint64_t us) {
  if (!imp_pipe_observe(&fn->pipe, us)) return;
  for (size_t i = 0; i < fn->dispatch.count; i++) {
    imp_dinst_t *d = fn->dispatch.inst[i];
    d->extra = imp_pipe_extra(&fn->pipe, d->concurrency);
  }
  IMP_LOG(IMP_LOG_DEBUG,
          "%s: pipelining to instances %s (least service time %llu us)",
          fn->name, fn->pipe.fast ? "on" : "off",
          (unsigned long long)fn->pipe.least_us);
  if (fn->pipe.fast) imp_invoke_pump(iv, fn);
}

/* The worker answered. */
static void call_done(imp_call_t *call, const char *rest, size_t restlen) {
  imp_invoke_t *iv = call->iv;
  imp_function_t *fn = call->function;
  if (call->replay) { /* an upgrade's validation: not a call of anyone's */
    imp_invoke_deliver(call->done, call->done_arg, call->done_tag, call->decode,
                       rest, restlen);
    call->done = NULL;
    call_finish(call);
    call_free(call);
    return;
  }
  if (restlen > 0 && (unsigned char)rest[0] == IMP_TAG_ERROR && fn &&
      !call->batch)
    fn->errors++;
  if (fn && !fn->deleted) {
    /* The service time: the latency shared by the calls that were queued
     * in the worker ahead of this one. Measuring the whole latency would
     * turn pipelining off under load (the queue makes it long), which
     * lowers throughput and lengthens the queue: a collapse. A batch
     * counts as one call for the autoscaler (one slot, its whole time);
     * pipelining and batch sizes go by the time of one item. */
    uint64_t us = (imp_now_ns() - call->sent_ns) / 1000 /
                  (call->lat_div ? call->lat_div : 1);
    track_latency(iv, fn, call->batch ? us / call->batch : us);
    fn->sc.completions++;
    fn->sc.dur_sum_ms += (double)us / 1000.0;
  }
  if (call->batch) {
    deliver_batch(call, rest, restlen);
    call_finish(call);
    call_free(call);
    return;
  }
  /* Stored before anyone sees the answer: a retry after a crash finds it. */
  if (call->idem_key && fn && restlen > 0 &&
      (unsigned char)rest[0] == IMP_TAG_INVOKE_OK)
    imp_idem_store(iv->store, iv->cfg->idempotency_ttl_s, fn->name,
                   call->idem_key, rest, restlen);
  if (call->rec.data != NULL && fn != NULL && !fn->deleted)
    imp_rec_done(iv->store, fn->name, &fn->recording, &call->rec, call->version,
                 (imp_now_ns() - call->sent_ns) / 1000, rest, restlen);
  int code = imp_answer_code(rest, restlen);
  call_observe(call, code);
  imp_answer_cb done = call->done;
  call->done = NULL;
  if (done != NULL && call->decode) {
    imp_invoke_deliver(done, call->done_arg, call->done_tag, 1, rest, restlen);
  } else if (done != NULL) { /* as it came (the gateway forwards it) */
    imp_answer_t a = {.code = code, .rest = rest, .restlen = restlen};
    done(call->done_arg, call->done_tag, &a);
  }
  call_finish(call);
  call_free(call);
}

/* The call's end as its instance saw it (fleet/instance.h). */
static void on_sent(imp_sent_t *sent, int code, const char *message,
                    const char *rest, size_t restlen) {
  imp_call_t *call = IMP_CONTAINER_OF(sent, imp_call_t, sent);
  if (sent->timed_out) { /* answered TIMEOUT already */
    call_free(call);
    return;
  }
  if (code != 0) { /* the instance ended without answering */
    call_failed(call, code, message);
    call_free(call);
    return;
  }
  imp_invoke_t *iv = call->iv;
  imp_function_t *fn = call->function;
  call_done(call, rest, restlen);
  if (fn != NULL && !fn->deleted) imp_invoke_room(iv, fn);
}

/* ---- sending and queueing ------------------------------------------------ */

void imp_call_send(imp_call_t *call, imp_function_t *fn, imp_instance_t *inst,
                   const char *rest, size_t restlen) {
  imp_invoke_t *iv = call->iv;
  call->function = fn;
  call->sent.done = on_sent;
  int rc = imp_instance_send(inst, &call->sent, rest, restlen);
  if (rc != 0) {
    /* It did not reach the worker: it did not run, and may be retried. */
    imp_call_fail(call, IMPULSE__ERROR_CODE__UNAVAILABLE,
                  "the call did not run: cannot send to instance %llu: %s",
                  (unsigned long long)inst->id, imp_strerror(rc));
    return;
  }
  call->sent_ns = imp_now_ns();
  call->version = inst->version;
  /* Calls ahead of this one on the instance (pipelined): its latency is
   * that many service times, not one (see call_done). */
  uint32_t conc = inst->d.concurrency ? inst->d.concurrency : 1;
  call->lat_div =
      1 + (inst->d.outstanding > 0 ? inst->d.outstanding - 1 : 0) / conc;
  uint64_t timeout = imp_dispatch_run_timeout(
      imp_fn_setting(fn, IMP_FN_TIMEOUT_MS, iv->cfg->default_timeout_ms),
      call->deadline_ms, call->deadline_ms ? imp_now_ms() : 0);
  uv_timer_start(&call->timer, on_call_timer, timeout, 0);
}

static void on_call_timer(uv_timer_t *t) {
  imp_call_t *call = IMP_CONTAINER_OF(t, imp_call_t, timer);
  imp_function_t *fn = call->function;
  imp_invoke_t *iv = call->iv;
  if (call->wait.queued) {
    imp_dispatch_unqueue(&fn->dispatch, &call->wait);
    imp_call_fail(call, IMPULSE__ERROR_CODE__OVERLOADED,
                  "function '%s' is overloaded: no instance had a free slot "
                  "within %llu ms (%zu calls still queued, %u instances)",
                  fn->name,
                  (unsigned long long)(imp_now_ms() - call->started_ms),
                  fn->dispatch.queued, fn->instances);
    return;
  }
  if (call->sent.instance) {
    imp_instance_t *inst = call->sent.instance;
    char msg[512];
    snprintf(msg, sizeof msg,
             "function '%s' did not answer within %llu ms; instance %llu is "
             "being replaced",
             fn->name, (unsigned long long)(imp_now_ms() - call->started_ms),
             (unsigned long long)inst->id);
    call_failed(call, IMPULSE__ERROR_CODE__TIMEOUT, msg);
    /* The call stays in its slot until the worker answers or is killed. */
    imp_instance_timed_out(inst, &call->sent);
    if (!fn->deleted) {
      track_latency(iv, fn,
                    (imp_now_ns() - call->sent_ns) / 1000 /
                        (call->batch ? call->batch : 1));
      iv->ops->timed_out(iv->owner, fn);
    }
  }
}

void imp_invoke_pump(imp_invoke_t *iv, imp_function_t *fn) {
  imp_dwait_t *w;
  while ((w = imp_dispatch_head(&fn->dispatch)) != NULL) {
    imp_dinst_t *d = imp_dispatch_pick(&fn->dispatch);
    if (d == NULL) break;
    imp_instance_t *inst = IMP_CONTAINER_OF(d, imp_instance_t, d);
    imp_call_t *call = IMP_CONTAINER_OF(w, imp_call_t, wait);
    imp_dispatch_unqueue(&fn->dispatch, w);
    uv_timer_stop(&call->timer);
    fn->sc.wait_sum_ms += (double)(imp_now_ms() - call->started_ms);
    fn->sc.waited++;
    char *fwd = call->fwd;
    call->fwd = NULL;
    imp_call_send(call, fn, inst, fwd, call->fwdlen);
    free(fwd);
  }
  (void)iv;
}

void imp_invoke_room(imp_invoke_t *iv, imp_function_t *fn) {
  if (fn->dispatch.queued) imp_invoke_pump(iv, fn);
  /* A caller (the trigger broker) that stopped starting calls for lack of
   * room starts again. */
  if (fn->trigger_waiting && iv->invoker.on_room != NULL) {
    fn->trigger_waiting = 0;
    iv->invoker.on_room(iv->invoker.on_room_arg, fn->name);
  }
}

void imp_call_start(imp_call_t *call, imp_function_t *fn, uint32_t deadline_ms,
                    const char *rest, size_t restlen) {
  imp_invoke_t *iv = call->iv;
  call->function = fn;
  call->started_ms = imp_now_ms();
  call->started_ns = imp_now_ns();
  if (deadline_ms > 0) call->deadline_ms = call->started_ms + deadline_ms;
  imp_list_push_back(&fn->calls, &call->link);
  fn->invocations += call->batch ? call->batch : 1;
  /* Batches are not recorded: an upgrade replays single calls (a trigger's
   * first calls, before it batches, are single). */
  if (!call->batch && !fn->deleted)
    imp_rec_sample(iv->store, fn->name, &fn->recording, &call->rec, rest,
                   restlen);
  imp_fn_inflight(fn, +1);
  fn->in_flight++;

  imp_dinst_t *d =
      fn->dispatch.queued ? NULL : imp_dispatch_pick(&fn->dispatch);
  if (d != NULL) {
    imp_call_send(call, fn, IMP_CONTAINER_OF(d, imp_instance_t, d), rest,
                  restlen);
    return;
  }
  call->fwdlen = restlen;
  call->fwd = malloc(restlen ? restlen : 1);
  if (call->fwd == NULL) abort();
  memcpy(call->fwd, rest, restlen);
  uint64_t deadline = imp_dispatch_queue_deadline(
      call->started_ms, iv->cfg->queue_timeout_ms, call->deadline_ms);
  if (imp_dispatch_enqueue(&fn->dispatch, &call->wait, deadline) != 0) {
    imp_call_fail(call, IMPULSE__ERROR_CODE__OVERLOADED,
                  "function '%s' is overloaded: %zu calls already queued",
                  fn->name, fn->dispatch.queued);
    return;
  }
  uv_timer_start(&call->timer, on_call_timer, deadline - call->started_ms, 0);
  iv->ops->queued(iv->owner, fn);
}

void imp_invoke_fail_queue(imp_function_t *fn, int code, const char *msg) {
  imp_dwait_t *w;
  while ((w = imp_dispatch_head(&fn->dispatch)) != NULL) {
    imp_call_t *call = IMP_CONTAINER_OF(w, imp_call_t, wait);
    imp_dispatch_unqueue(&fn->dispatch, w);
    imp_call_fail(call, code, "%s", msg);
  }
}

unsigned imp_invoke_in_flight(imp_invoke_t *iv) {
  unsigned n = 0;
  imp_function_t *fn;
  IMP_REGISTRY_EACH(fn, &iv->registry) {
    n += fn->in_flight;
  }
  return n;
}

void imp_invoke_drain(imp_invoke_t *iv) {
  iv->stopping = 1;
  imp_function_t *fn;
  IMP_REGISTRY_EACH(fn, &iv->registry) {
    imp_invoke_fail_queue(fn, IMPULSE__ERROR_CODE__SHUTTING_DOWN,
                          "server is stopping");
  }
}

void imp_invoke_stop(imp_invoke_t *iv) {
  imp_invoke_drain(iv);
  imp_function_t *fn;
  IMP_REGISTRY_EACH(fn, &iv->registry) {
    imp_list_t *pos;
    IMP_LIST_EACH(pos, &fn->calls) {
      uv_timer_stop(&IMP_CONTAINER_OF(pos, imp_call_t, link)->timer);
    }
  }
}
