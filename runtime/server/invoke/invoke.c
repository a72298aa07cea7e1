/*
 * Ways into the call path (invoke.h).
 */
#include "server/invoke/invoke.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/codec.h"
#include "core/common.h"
#include "policy/pipeline.h"

/* ---- idempotency --------------------------------------------------------- */

/* An answer for an internal caller, delivered from the loop (never from
 * inside the imp_invoker_t call). */
typedef struct idem_later_s {
  uv_timer_t timer;
  imp_answer_cb done;
  void *arg;
  int code;
  char message[256];
  char *answer; /* owned; NULL when code != 0 */
  size_t len;
} idem_later_t;

static void on_idem_later_closed(uv_handle_t *h) {
  idem_later_t *l = IMP_CONTAINER_OF(h, idem_later_t, timer);
  free(l->answer);
  free(l);
}

static void on_idem_later(uv_timer_t *t) {
  idem_later_t *l = IMP_CONTAINER_OF(t, idem_later_t, timer);
  if (l->code == 0) {
    imp_invoke_deliver(l->done, l->arg, 0, 1, l->answer, l->len);
  } else {
    imp_answer_t a = {.code = l->code, .message = l->message};
    l->done(l->arg, 0, &a);
  }
  uv_close((uv_handle_t *)&l->timer, on_idem_later_closed);
}

static void idem_later(imp_invoke_t *iv, imp_answer_cb done, void *arg,
                       int code, const char *message, char *answer,
                       size_t len) {
  idem_later_t *l = calloc(1, sizeof *l);
  if (l == NULL) abort();
  l->done = done;
  l->arg = arg;
  l->code = code;
  snprintf(l->message, sizeof l->message, "%s", message ? message : "");
  l->answer = answer;
  l->len = len;
  uv_timer_init(iv->loop, &l->timer);
  uv_timer_start(&l->timer, on_idem_later, 0, 0);
}

/*
 * A call with an idempotency key: answers it here when that key's answer
 * is stored (the function does not run again), when a call with the same
 * key is running now (IN_PROGRESS: the caller retries later), or when the
 * key is unusable (BAD_REQUEST). Returns 1 when answered (at once when
 * `later` is 0, else from the loop), 0 when the call should run.
 */
static int idem_answered(imp_invoke_t *iv, imp_function_t *fn, const char *key,
                         int later, imp_answer_cb done, void *arg,
                         uint64_t tag) {
  int code = 0;
  char msg[200];
  char *answer = NULL;
  size_t len = 0;
  int rc = imp_idem_lookup(iv->store, fn->name, key, &answer, &len);
  if (rc == 0) {
    fn->idempotent_hits++;
    if (later) {
      idem_later(iv, done, arg, 0, NULL, answer, len);
    } else {
      imp_invoke_deliver(done, arg, tag, 0, answer, len);
      free(answer);
    }
    return 1;
  }
  if (rc == -EINVAL) {
    code = IMPULSE__ERROR_CODE__BAD_REQUEST;
    snprintf(msg, sizeof msg, "idempotency key must be 1 to %d bytes",
             IMP_IDEM_MAX_KEY);
  } else {
    imp_list_t *pos;
    IMP_LIST_EACH(pos, &fn->calls) {
      imp_call_t *c = IMP_CONTAINER_OF(pos, imp_call_t, link);
      if (c->idem_key && strcmp(c->idem_key, key) == 0) {
        code = IMPULSE__ERROR_CODE__IN_PROGRESS;
        snprintf(msg, sizeof msg,
                 "a call of '%s' with this idempotency key is running; "
                 "retry for its answer",
                 fn->name);
        break;
      }
    }
  }
  if (code == 0) return 0;
  if (later) {
    idem_later(iv, done, arg, code, msg, NULL, 0);
  } else {
    imp_answer_t a = {.code = code, .message = msg};
    done(arg, tag, &a);
  }
  return 1;
}

/* ---- a client's call --------------------------------------------------- */

void imp_invoke_rpc(imp_invoke_t *iv, Impulse__Envelope *env, const char *body,
                    size_t len, imp_answer_cb done, void *arg, uint64_t tag) {
  Impulse__InvokeRequest *req = env->invoke;
  if (req->has_deadline_ms && req->deadline_ms > IMP_DEADLINE_MAX_MS) {
    char msg[128];
    snprintf(msg, sizeof msg, "deadline must be at most %u ms",
             IMP_DEADLINE_MAX_MS);
    imp_answer_t a = {.code = IMPULSE__ERROR_CODE__BAD_REQUEST, .message = msg};
    done(arg, tag, &a);
    impulse__envelope__free_unpacked(env, NULL);
    return;
  }
  imp_function_t *fn = imp_registry_find(&iv->registry, req->function);
  if (fn == NULL) {
    char msg[1024];
    snprintf(msg, sizeof msg, "unknown function '%s'", req->function);
    imp_answer_t a = {.code = IMPULSE__ERROR_CODE__NOT_FOUND, .message = msg};
    done(arg, tag, &a);
    impulse__envelope__free_unpacked(env, NULL);
    return;
  }
  char *idem_key = NULL;
  if (req->idempotency_key != NULL && req->idempotency_key[0] != '\0') {
    if (idem_answered(iv, fn, req->idempotency_key, 0, done, arg, tag)) {
      impulse__envelope__free_unpacked(env, NULL);
      return;
    }
    idem_key = strdup(req->idempotency_key);
    if (idem_key == NULL) abort();
  }
  /* The request goes to the worker as it came, under another id. A client
   * whose encoder does not put the id first gets its request repacked. */
  char *packed = NULL;
  uint64_t id;
  size_t off;
  if (imp_envelope_split_id(body, len, &id, &off) != 0 || id != env->id) {
    uint64_t keep = env->id;
    env->id = 0;
    len = impulse__envelope__get_packed_size(env);
    packed = malloc(len);
    if (packed == NULL) abort();
    impulse__envelope__pack(env, (uint8_t *)packed);
    env->id = keep;
    body = packed;
    off = 2; /* 0x08 0x00 */
  }
  imp_call_t *call = imp_call_new(iv, done, arg, tag);
  call->idem_key = idem_key;
  uint32_t deadline_ms = req->has_deadline_ms ? req->deadline_ms : 0;
  impulse__envelope__free_unpacked(env, NULL);
  imp_call_start(call, fn, deadline_ms, body + off, len - off);
  free(packed);
}

/* ---- the invoker interface (base/invoker.h) ------------------------------ */

static imp_invoke_t *inv_owner(imp_invoker_t *inv) {
  return IMP_CONTAINER_OF(inv, imp_invoke_t, invoker);
}

static int inv_invoke(imp_invoker_t *inv, const Impulse__InvokeRequest *req,
                      imp_answer_cb done, void *arg) {
  imp_invoke_t *iv = inv_owner(inv);
  if (iv->stopping) return -ESHUTDOWN;
  imp_function_t *fn = imp_registry_find(&iv->registry, req->function);
  if (fn == NULL) return -ENOENT;
  const char *ikey = req->idempotency_key;
  if (ikey != NULL && ikey[0] != '\0' &&
      idem_answered(iv, fn, ikey, 1, done, arg, 0))
    return 0;
  Impulse__Envelope env = IMPULSE__ENVELOPE__INIT;
  env.id = 0;
  env.body_case = IMPULSE__ENVELOPE__BODY_INVOKE;
  env.invoke = (Impulse__InvokeRequest *)req;
  size_t len = impulse__envelope__get_packed_size(&env);
  if (len > iv->cfg->max_frame) return -E2BIG;
  uint8_t stackbuf[4096];
  uint8_t *buf = len <= sizeof stackbuf ? stackbuf : malloc(len);
  if (buf == NULL) return -ENOMEM;
  impulse__envelope__pack(&env, buf);
  imp_call_t *call = imp_call_new(iv, done, arg, 0);
  call->decode = 1;
  if (ikey != NULL && ikey[0] != '\0') {
    call->idem_key = strdup(ikey);
    if (call->idem_key == NULL) abort();
  }
  /* Packed with id 0, the body starts 0x08 0x00. */
  imp_call_start(call, fn, req->has_deadline_ms ? req->deadline_ms : 0,
                 (const char *)buf + 2, len - 2);
  if (buf != stackbuf) free(buf);
  return 0;
}

static int inv_invoke_batch(imp_invoker_t *inv, const char *function,
                            uint32_t items, const char *rest, size_t restlen,
                            imp_answer_cb done, void *arg) {
  imp_invoke_t *iv = inv_owner(inv);
  if (iv->stopping) return -ESHUTDOWN;
  imp_function_t *fn = imp_registry_find(&iv->registry, function);
  if (fn == NULL) return -ENOENT;
  if (items == 0) return -EINVAL;
  if (restlen + 11 > iv->cfg->max_frame) return -E2BIG;
  imp_call_t *call = imp_call_new(iv, done, arg, 0);
  call->decode = 1;
  call->batch = items;
  imp_call_start(call, fn, 0, rest, restlen);
  return 0;
}

static long inv_queue_room(imp_invoker_t *inv, const char *function, long room,
                           unsigned *batch) {
  imp_function_t *fn = imp_registry_find(&inv_owner(inv)->registry, function);
  *batch = fn == NULL ? 1 : imp_pipe_batch(&fn->pipe);
  if (fn == NULL) return room; /* the invocation answers NOT_FOUND */
  return imp_dispatch_room(&fn->dispatch, room);
}

static void inv_want_room(imp_invoker_t *inv, const char *function) {
  imp_function_t *fn = imp_registry_find(&inv_owner(inv)->registry, function);
  if (fn != NULL) fn->trigger_waiting = 1;
}

static int inv_exists(imp_invoker_t *inv, const char *function) {
  return imp_registry_find(&inv_owner(inv)->registry, function) != NULL;
}

static const imp_invoker_ops_t invoker_ops = {
    inv_invoke, inv_invoke_batch, inv_queue_room, inv_want_room, inv_exists};

void imp_invoke_invoker_init(imp_invoke_t *iv) {
  iv->invoker.ops = &invoker_ops;
}
