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
#include "server/invoke/recordings.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/store.h"
#include "core/codec.h"
#include "core/common.h"

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

int imp_rec_load(imp_store_t *store, const char *function, imp_recorded_t **out,
                 size_t *n) {
  char prefix[KEY_MAX];
  size_t plen = strlen(function) + 1;
  *out = NULL;
  *n = 0;
  if (plen > 65) return 0; /* no function has such a name */
  memcpy(prefix, function, plen);
  load_t l = {0};
  int rc = imp_store_scan(store, IMP_CF_RECORDINGS, prefix, plen, load_one, &l);
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
  Impulse__Envelope *env = imp_body_decode(answer, len, NULL);
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
  Impulse__Envelope *env = imp_body_decode(answer, len, NULL);
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

int imp_rec_forget(imp_batch_t *batch, imp_store_t *store,
                   const char *function) {
  /* In the deletion's own synced batch: a function deployed again under
   * this name must not find the old one's recordings after a crash. */
  return imp_batch_delete_prefix(batch, store, IMP_CF_RECORDINGS, function,
                                 strlen(function) + 1);
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

/* Counts a function's stored recordings; the ring goes on after the
 * newest. */
static void load_state(imp_store_t *store, const char *function,
                       imp_fn_rec_t *st) {
  count_t c = {0, 0, 0};
  imp_store_scan(store, IMP_CF_RECORDINGS, function, strlen(function) + 1,
                 count_one, &c);
  st->loaded = 1;
  st->count = c.n;
  st->next = c.n ? (uint64_t)c.newest_slot + 1 : 0;
}

void imp_rec_sample(imp_store_t *store, const char *function, imp_fn_rec_t *st,
                    imp_rec_req_t *req, const char *rest, size_t restlen) {
  if (restlen > IMP_REC_MAX_BYTES || req->data != NULL) return;
  if (!st->loaded) load_state(store, function, st);
  /* Bounds the copies held by calls in flight. */
  if (st->pending >= IMP_REC_MAX) return;
  if (st->count + st->pending >= IMP_REC_MAX && ++st->seen % IMP_REC_EVERY != 0)
    return;
  req->data = malloc(restlen ? restlen : 1);
  if (req->data == NULL) return; /* a sample less */
  if (restlen) memcpy(req->data, rest, restlen);
  req->len = restlen;
  st->pending++;
}

void imp_rec_done(imp_store_t *store, const char *function, imp_fn_rec_t *st,
                  const imp_rec_req_t *req, uint32_t version,
                  uint64_t duration_us, const char *rest, size_t restlen) {
  if (req->data == NULL || restlen == 0 || restlen > IMP_REC_MAX_BYTES) return;
  uint32_t slot = (uint32_t)(st->next % IMP_REC_MAX);
  char key[KEY_MAX];
  size_t klen = rec_key(function, slot, key);
  Impulse__RecordedCall r = IMPULSE__RECORDED_CALL__INIT;
  r.version = version;
  r.request.data = (uint8_t *)req->data;
  r.request.len = req->len;
  r.answer.data = (uint8_t *)rest;
  r.answer.len = restlen;
  r.recorded_ms = imp_wall_ms();
  r.has_duration_us = 1;
  r.duration_us = duration_us > UINT32_MAX ? UINT32_MAX : (uint32_t)duration_us;
  imp_batch_t *batch = imp_batch_new();
  char err[256];
  int rc =
      imp_batch_put_msg(batch, store, IMP_CF_RECORDINGS, key, klen, &r.base);
  if (rc == 0)
    rc = imp_store_write(store, batch, 0, err, sizeof err);
  else
    snprintf(err, sizeof err, "cannot encode the record");
  imp_batch_free(batch);
  if (rc != 0) {
    IMP_LOG(IMP_LOG_WARN, "recordings: cannot store a call of %s: %s", function,
            err);
    return;
  }
  st->next++;
  if (st->count < IMP_REC_MAX) st->count++;
}

void imp_rec_call_end(imp_fn_rec_t *st, imp_rec_req_t *req) {
  if (req->data == NULL) return;
  if (st != NULL && st->pending > 0) st->pending--;
  free(req->data);
  req->data = NULL;
  req->len = 0;
}
