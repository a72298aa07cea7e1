/*
 * Recorded requests.
 *
 * The gateway keeps a small sample of each function's live calls (RPC,
 * HTTP and trigger invocations alike) with the worker's answers, so that a
 * rolling upgrade can replay real requests against a new version and
 * compare. Per function at most IMP_REC_MAX recordings are kept, in slots
 * 0..IMP_REC_MAX-1 of the `recordings` column family used as a ring: every
 * call is sampled until the ring is full, then one call in IMP_REC_EVERY,
 * each overwriting the oldest. Calls whose request or answer is above
 * IMP_REC_MAX_BYTES are not sampled; calls that end without an answer of
 * the worker (timeout, crash, overload) are not recorded.
 *
 * A sampled call's request (the Envelope body after its id, exactly what
 * is forwarded to the worker) is copied at the start of the call; when the
 * worker answers, one small WriteBatch stores request, answer, version and
 * duration, without fsync: these are samples, and the WAL survives a kill
 * of the process.
 *
 * The number of stored recordings and the ring position are counted from
 * the store on a function's first call after the server starts.
 */
#include "server/recordings.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/codec.h"
#include "core/common.h"
#include "server/base/store.h"
#include "server/server.h"

/* Function name (at most 64 bytes), NUL, be32 slot. */
#define KEY_MAX (64 + 1 + 4)
#define PREVIEW_BYTES 64

static size_t rec_key(const char *function, uint32_t slot, char *out) {
  size_t n = strlen(function);
  memcpy(out, function, n);
  out[n] = '\0';
  out[n + 1] = (char)(slot >> 24);
  out[n + 2] = (char)(slot >> 16);
  out[n + 3] = (char)(slot >> 8);
  out[n + 4] = (char)slot;
  return n + 5;
}

static uint32_t key_slot(const char *k, size_t kl) {
  const unsigned char *p = (const unsigned char *)k + kl - 4;
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 |
         p[3];
}

/* Decodes a body after its id (request or reply) as an Envelope with id 0.
 * NULL when it does not decode. Free with impulse__envelope__free_unpacked. */
static Impulse__Envelope *decode_body(const char *rest, size_t len) {
  uint8_t stackbuf[4096];
  uint8_t *buf = len + 2 <= sizeof stackbuf ? stackbuf : malloc(len + 2);
  if (buf == NULL) return NULL;
  buf[0] = 0x08; /* field 1 (id), varint 0 */
  buf[1] = 0x00;
  if (len) memcpy(buf + 2, rest, len);
  Impulse__Envelope *env = impulse__envelope__unpack(NULL, len + 2, buf);
  if (buf != stackbuf) free(buf);
  return env;
}

static imp_function_t *find_function(imp_server_t *server, const char *name) {
  for (imp_function_t *f = server->functions.next; f != &server->functions;
       f = f->next)
    if (!f->deleted && strcmp(f->name, name) == 0) return f;
  return NULL;
}

/* ---- loading ---------------------------------------------------------- */

typedef struct load_s {
  imp_recorded_t *r;
  uint32_t *slot; /* parallel to r: ties in recorded_ms go by slot */
  size_t n, cap;
  int err;
} load_t;

static int load_one(void *arg, const char *k, size_t kl, const char *v,
                    size_t vl) {
  load_t *l = arg;
  if (kl < 5) return 0;
  Impulse__RecordedCall *rc =
      impulse__recorded_call__unpack(NULL, vl, (const uint8_t *)v);
  if (rc == NULL) {
    IMP_LOG(IMP_LOG_WARN, "recordings: undecodable record of %s skipped", k);
    return 0;
  }
  if (l->n == l->cap) {
    size_t cap = l->cap ? l->cap * 2 : IMP_REC_MAX;
    imp_recorded_t *r = realloc(l->r, cap * sizeof *r);
    if (r != NULL) l->r = r;
    uint32_t *s = realloc(l->slot, cap * sizeof *s);
    if (s != NULL) l->slot = s;
    if (r == NULL || s == NULL) goto nomem;
    l->cap = cap;
  }
  imp_recorded_t *o = &l->r[l->n];
  o->version = rc->version;
  o->recorded_ms = rc->recorded_ms;
  o->duration_us = rc->has_duration_us ? rc->duration_us : 0;
  o->reqlen = rc->request.len;
  o->anslen = rc->answer.len;
  o->request = malloc(o->reqlen ? o->reqlen : 1);
  o->answer = malloc(o->anslen ? o->anslen : 1);
  if (o->request == NULL || o->answer == NULL) {
    free(o->request);
    free(o->answer);
    goto nomem;
  }
  if (o->reqlen) memcpy(o->request, rc->request.data, o->reqlen);
  if (o->anslen) memcpy(o->answer, rc->answer.data, o->anslen);
  l->slot[l->n++] = key_slot(k, kl);
  impulse__recorded_call__free_unpacked(rc, NULL);
  return 0;
nomem:
  impulse__recorded_call__free_unpacked(rc, NULL);
  l->err = -ENOMEM;
  return 1;
}

int imp_rec_load(imp_server_t *server, const char *function,
                 imp_recorded_t **out, size_t *n) {
  char prefix[KEY_MAX];
  size_t plen = strlen(function) + 1;
  *out = NULL;
  *n = 0;
  if (plen > 65) return 0; /* no function has such a name */
  memcpy(prefix, function, plen);
  load_t l = {0};
  int rc = imp_store_scan(server->store, IMP_CF_RECORDINGS, prefix, plen,
                          load_one, &l);
  if (l.err != 0 || (rc != 0 && rc != 1)) {
    imp_rec_free(l.r, l.n);
    free(l.slot);
    return l.err ? l.err : rc;
  }
  /* Oldest first; insertion sort: there are at most IMP_REC_MAX. */
  for (size_t i = 1; i < l.n; i++)
    for (size_t j = i; j > 0; j--) {
      imp_recorded_t *a = &l.r[j - 1], *b = &l.r[j];
      if (a->recorded_ms < b->recorded_ms ||
          (a->recorded_ms == b->recorded_ms && l.slot[j - 1] <= l.slot[j]))
        break;
      imp_recorded_t t = *a;
      *a = *b;
      *b = t;
      uint32_t s = l.slot[j - 1];
      l.slot[j - 1] = l.slot[j];
      l.slot[j] = s;
    }
  free(l.slot);
  if (l.n == 0) {
    free(l.r);
    l.r = NULL;
  }
  *out = l.r;
  *n = l.n;
  return 0;
}

void imp_rec_free(imp_recorded_t *r, size_t n) {
  if (r == NULL) return;
  for (size_t i = 0; i < n; i++) {
    free(r[i].request);
    free(r[i].answer);
  }
  free(r);
}

int imp_rec_answer_ok(const char *answer, size_t len) {
  if (len == 0 || (unsigned char)answer[0] != IMP_TAG_INVOKE_OK) return 0;
  Impulse__Envelope *env = decode_body(answer, len);
  if (env == NULL) return 0;
  int ok = env->body_case == IMPULSE__ENVELOPE__BODY_INVOKE_OK &&
           (!env->invoke_ok->has_status || env->invoke_ok->status == 0);
  impulse__envelope__free_unpacked(env, NULL);
  return ok;
}

int imp_rec_answer_payload(const char *answer, size_t len,
                           ProtobufCBinaryData *out) {
  out->len = 0;
  out->data = NULL;
  if (len == 0 || (unsigned char)answer[0] != IMP_TAG_INVOKE_OK) return -EINVAL;
  Impulse__Envelope *env = decode_body(answer, len);
  if (env == NULL) return -EINVAL;
  int rc = -EINVAL;
  if (env->body_case == IMPULSE__ENVELOPE__BODY_INVOKE_OK) {
    const ProtobufCBinaryData *p = &env->invoke_ok->payload;
    rc = 0;
    if (env->invoke_ok->has_payload && p->len > 0) {
      out->data = malloc(p->len);
      if (out->data == NULL) {
        rc = -ENOMEM;
      } else {
        memcpy(out->data, p->data, p->len);
        out->len = p->len;
      }
    }
  }
  impulse__envelope__free_unpacked(env, NULL);
  return rc;
}

/* ---- forgetting ------------------------------------------------------- */

typedef struct forget_s {
  imp_batch_t *batch;
  imp_store_t *store;
  unsigned n;
} forget_t;

static int forget_one(void *arg, const char *k, size_t kl, const char *v,
                      size_t vl) {
  forget_t *f = arg;
  (void)v;
  (void)vl;
  imp_batch_delete(f->batch, f->store, IMP_CF_RECORDINGS, k, kl);
  f->n++;
  return 0;
}

void imp_rec_forget(imp_server_t *server, const char *function) {
  size_t plen = strlen(function) + 1;
  forget_t f = {imp_batch_new(), server->store, 0};
  imp_store_scan(server->store, IMP_CF_RECORDINGS, function, plen, forget_one,
                 &f);
  if (f.n > 0) {
    char err[256];
    /* Synced like the deletion it follows: a function deployed again under
     * this name must not find the old one's recordings after a crash. */
    if (imp_store_write(server->store, f.batch, 1, err, sizeof err) != 0)
      IMP_LOG(IMP_LOG_ERROR, "recordings: cannot delete those of %s: %s",
              function, err);
  }
  imp_batch_free(f.batch);
}

/* ---- sampling --------------------------------------------------------- */

typedef struct count_s {
  uint32_t n;
  uint32_t newest_slot;
  uint64_t newest_ms;
} count_t;

static int count_one(void *arg, const char *k, size_t kl, const char *v,
                     size_t vl) {
  count_t *c = arg;
  if (kl < 5) return 0;
  Impulse__RecordedCall *rc =
      impulse__recorded_call__unpack(NULL, vl, (const uint8_t *)v);
  uint32_t slot = key_slot(k, kl);
  if (slot >= IMP_REC_MAX) {
    if (rc) impulse__recorded_call__free_unpacked(rc, NULL);
    return 0;
  }
  c->n++;
  if (rc != NULL && (c->n == 1 || rc->recorded_ms >= c->newest_ms)) {
    c->newest_ms = rc->recorded_ms;
    c->newest_slot = slot;
  }
  if (rc) impulse__recorded_call__free_unpacked(rc, NULL);
  return 0;
}

/* Counts fn's stored recordings; the ring goes on after the newest. */
static void load_state(imp_server_t *server, imp_function_t *fn) {
  count_t c = {0, 0, 0};
  imp_store_scan(server->store, IMP_CF_RECORDINGS, fn->name,
                 strlen(fn->name) + 1, count_one, &c);
  fn->recording.loaded = 1;
  fn->recording.count = c.n;
  fn->recording.next = c.n ? (uint64_t)c.newest_slot + 1 : 0;
}

void imp_rec_sample(imp_server_t *server, imp_function_t *fn, imp_call_t *call,
                    const char *rest, size_t restlen) {
  if (restlen > IMP_REC_MAX_BYTES || fn->deleted || call->rec_req != NULL)
    return;
  if (!fn->recording.loaded) load_state(server, fn);
  /* Bounds the copies held by calls in flight. */
  if (fn->recording.pending >= IMP_REC_MAX) return;
  if (fn->recording.count + fn->recording.pending >= IMP_REC_MAX &&
      ++fn->recording.seen % IMP_REC_EVERY != 0)
    return;
  call->rec_req = malloc(restlen ? restlen : 1);
  if (call->rec_req == NULL) return; /* a sample less */
  if (restlen) memcpy(call->rec_req, rest, restlen);
  call->rec_reqlen = restlen;
  fn->recording.pending++;
}

void imp_rec_done(imp_server_t *server, imp_call_t *call, const char *rest,
                  size_t restlen) {
  imp_function_t *fn = call->function;
  if (call->rec_req == NULL || fn == NULL || fn->deleted || restlen == 0 ||
      restlen > IMP_REC_MAX_BYTES)
    return;
  uint32_t slot = (uint32_t)(fn->recording.next % IMP_REC_MAX);
  char key[KEY_MAX];
  size_t klen = rec_key(fn->name, slot, key);
  uint64_t us = (imp_now_ns() - call->sent_ns) / 1000;
  Impulse__RecordedCall r = IMPULSE__RECORDED_CALL__INIT;
  r.version = call->version;
  r.request.data = (uint8_t *)call->rec_req;
  r.request.len = call->rec_reqlen;
  r.answer.data = (uint8_t *)rest;
  r.answer.len = restlen;
  r.recorded_ms = imp_wall_ms();
  r.has_duration_us = 1;
  r.duration_us = us > UINT32_MAX ? UINT32_MAX : (uint32_t)us;
  imp_batch_t *batch = imp_batch_new();
  char err[256];
  int rc = imp_batch_put_msg(batch, server->store, IMP_CF_RECORDINGS, key, klen,
                             &r.base);
  if (rc == 0)
    rc = imp_store_write(server->store, batch, 0, err, sizeof err);
  else
    snprintf(err, sizeof err, "cannot encode the record");
  imp_batch_free(batch);
  if (rc != 0) {
    IMP_LOG(IMP_LOG_WARN, "recordings: cannot store a call of %s: %s", fn->name,
            err);
    return;
  }
  fn->recording.next++;
  if (fn->recording.count < IMP_REC_MAX) fn->recording.count++;
}

void imp_rec_call_end(imp_call_t *call) {
  if (call->rec_req == NULL) return;
  if (call->function && call->function->recording.pending > 0)
    call->function->recording.pending--;
  free(call->rec_req);
  call->rec_req = NULL;
  call->rec_reqlen = 0;
}

/* ---- RecordList RPC --------------------------------------------------- */

/* What `impulse record ls` shows of an answer, into buf. */
static const char *answer_status(const char *answer, size_t len, char *buf,
                                 size_t buflen) {
  Impulse__Envelope *env = decode_body(answer, len);
  if (env == NULL) {
    snprintf(buf, buflen, "undecodable");
  } else if (env->body_case == IMPULSE__ENVELOPE__BODY_INVOKE_OK) {
    const Impulse__InvokeResponse *ok = env->invoke_ok;
    if (!ok->has_status || ok->status == 0)
      snprintf(buf, buflen, "ok");
    else
      snprintf(buf, buflen, "status %d", (int)ok->status);
  } else if (env->body_case == IMPULSE__ENVELOPE__BODY_ERROR) {
    snprintf(buf, buflen, "%s", imp_error_code_name(env->error->code));
  } else {
    snprintf(buf, buflen, "unexpected answer");
  }
  if (env) impulse__envelope__free_unpacked(env, NULL);
  return buf;
}

void imp_rec_list_rpc(imp_server_t *server, imp_rpc_t *rpc,
                      Impulse__Envelope *env) {
  const char *name = env->record_list->name;
  imp_recorded_t *r = NULL;
  size_t n = 0;
  Impulse__RecordedCallInfo *info = NULL, **infop = NULL;
  char(*status)[32] = NULL;
  uint8_t(*preview)[PREVIEW_BYTES] = NULL;
  if (find_function(server, name) == NULL) {
    imp_rpc_error(rpc, IMPULSE__ERROR_CODE__NOT_FOUND, "unknown function '%s'",
                  name);
    goto out;
  }
  int rc = imp_rec_load(server, name, &r, &n);
  if (rc != 0) {
    imp_rpc_error(rpc, IMPULSE__ERROR_CODE__INTERNAL,
                  "cannot read the recordings of '%s': %s", name,
                  imp_strerror(rc));
    goto out;
  }
  info = calloc(n + 1, sizeof *info);
  infop = calloc(n + 1, sizeof *infop);
  status = calloc(n + 1, sizeof *status);
  preview = calloc(n + 1, sizeof *preview);
  if (info == NULL || infop == NULL || status == NULL || preview == NULL) {
    imp_rpc_error(rpc, IMPULSE__ERROR_CODE__INTERNAL, "out of memory");
    goto out;
  }
  for (size_t i = 0; i < n; i++) {
    Impulse__RecordedCallInfo *ci = &info[i];
    impulse__recorded_call_info__init(ci);
    ci->has_version = ci->has_recorded_ms = ci->has_request_bytes = 1;
    ci->has_duration_us = ci->has_payload_preview = 1;
    ci->version = r[i].version;
    ci->recorded_ms = r[i].recorded_ms;
    ci->duration_us = r[i].duration_us;
    ci->answer_status =
        (char *)answer_status(r[i].answer, r[i].anslen, status[i], 32);
    Impulse__Envelope *req = decode_body(r[i].request, r[i].reqlen);
    if (req != NULL && req->body_case == IMPULSE__ENVELOPE__BODY_INVOKE) {
      const ProtobufCBinaryData *p = &req->invoke->payload;
      size_t k = p->len < PREVIEW_BYTES ? p->len : PREVIEW_BYTES;
      if (k) memcpy(preview[i], p->data, k);
      ci->request_bytes = p->len;
      ci->payload_preview.data = preview[i];
      ci->payload_preview.len = k;
    }
    if (req != NULL) impulse__envelope__free_unpacked(req, NULL);
    infop[i] = ci;
  }
  Impulse__Envelope resp = IMPULSE__ENVELOPE__INIT;
  Impulse__RecordListResponse ok = IMPULSE__RECORD_LIST_RESPONSE__INIT;
  ok.n_calls = n;
  ok.calls = infop;
  resp.body_case = IMPULSE__ENVELOPE__BODY_RECORD_LIST_OK;
  resp.record_list_ok = &ok;
  imp_rpc_reply(rpc, &resp);
out:
  imp_rec_free(r, n);
  free(info);
  free(infop);
  free(status);
  free(preview);
  impulse__envelope__free_unpacked(env, NULL);
}
