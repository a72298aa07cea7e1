/*
 * Answers of idempotent invocations.
 *
 * An Invoke that carries an idempotency key has its first completed answer
 * (an InvokeResponse: the handler ran to the end, whatever status it
 * returned) stored under (function, key) in the `idempotency` column
 * family before the caller sees it; a later Invoke of the same function
 * with the same key gets that answer again without running the function.
 * Platform failures (timeout, crash, overload...) are not stored: the call
 * did not complete, and a retry runs it.
 *
 * The write goes to RocksDB's WAL without fsync: once the answer has been
 * sent, a kill -9 of the server cannot lose it (the bytes are in the
 * kernel); a power loss can, and then a retry runs the function again.
 * Records expire after --idempotency-ttl; a sweep on the server tick
 * deletes expired ones, a bounded number per tick.
 */
#include "server/invoke/idempotency.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/common.h"
#include "impulse.pb-c.h"

#define SWEEP_PER_TICK 2000u /* records looked at per server tick */

int imp_idem_key(const char *function, const char *key, char *out,
                 size_t outlen) {
  size_t fl = strlen(function), kl = strlen(key);
  if (kl == 0 || kl > IMP_IDEM_MAX_KEY) return -EINVAL;
  if (fl + 1 + kl > outlen) return -EINVAL;
  memcpy(out, function, fl);
  out[fl] = '\0';
  memcpy(out + fl + 1, key, kl);
  return (int)(fl + 1 + kl);
}

int imp_idem_lookup(imp_store_t *store, const char *function, const char *key,
                    char **answer, size_t *len) {
  char k[IMP_IDEM_KEY_BUF];
  int klen = imp_idem_key(function, key, k, sizeof k);
  if (klen < 0) return klen;
  char *v;
  size_t vlen;
  int rc = imp_store_get(store, IMP_CF_IDEMPOTENCY, k, (size_t)klen, &v, &vlen);
  if (rc != 0) return rc;
  Impulse__IdempotencyRecord *r =
      impulse__idempotency_record__unpack(NULL, vlen, (const uint8_t *)v);
  free(v);
  if (r == NULL) {
    IMP_LOG(IMP_LOG_WARN, "idempotency: undecodable record for %s", function);
    return -ENOENT;
  }
  rc = -ENOENT;
  if (r->expires_ms > imp_wall_ms() && r->answer.len > 0) {
    *answer = malloc(r->answer.len);
    if (*answer == NULL) {
      rc = -ENOMEM;
    } else {
      memcpy(*answer, r->answer.data, r->answer.len);
      *len = r->answer.len;
      rc = 0;
    }
  }
  impulse__idempotency_record__free_unpacked(r, NULL);
  return rc;
}

int imp_idem_store(imp_store_t *store, unsigned ttl_s, const char *function,
                   const char *key, const char *answer, size_t len) {
  char k[IMP_IDEM_KEY_BUF];
  int klen = imp_idem_key(function, key, k, sizeof k);
  if (klen < 0) return klen;
  Impulse__IdempotencyRecord r = IMPULSE__IDEMPOTENCY_RECORD__INIT;
  r.answer.data = (uint8_t *)answer;
  r.answer.len = len;
  r.stored_ms = imp_wall_ms();
  r.expires_ms = r.stored_ms + (uint64_t)ttl_s * 1000;
  imp_batch_t *batch = imp_batch_new();
  char err[256];
  int rc = imp_batch_put_msg(batch, store, IMP_CF_IDEMPOTENCY, k, (size_t)klen,
                             &r.base);
  if (rc == 0)
    rc = imp_store_write(store, batch, 0, err, sizeof err);
  else
    snprintf(err, sizeof err, "cannot encode the record");
  imp_batch_free(batch);
  if (rc != 0)
    IMP_LOG(IMP_LOG_ERROR, "idempotency: cannot store the answer of %s: %s",
            function, err);
  return rc;
}

typedef struct sweep_s {
  imp_batch_t *batch;
  imp_store_t *store;
  uint64_t now;
  unsigned seen, deleted;
  char last[IMP_IDEM_KEY_BUF];
  size_t lastlen;
} sweep_t;

static int sweep_one(void *arg, const char *k, size_t kl, const char *v,
                     size_t vl) {
  sweep_t *s = arg;
  if (s->seen++ >= SWEEP_PER_TICK) {
    /* Resume here next time. */
    if (kl <= sizeof s->last) {
      memcpy(s->last, k, kl);
      s->lastlen = kl;
    }
    return 1;
  }
  Impulse__IdempotencyRecord *r =
      impulse__idempotency_record__unpack(NULL, vl, (const uint8_t *)v);
  if (r == NULL || r->expires_ms <= s->now) {
    imp_batch_delete(s->batch, s->store, IMP_CF_IDEMPOTENCY, k, kl);
    s->deleted++;
  }
  if (r) impulse__idempotency_record__free_unpacked(r, NULL);
  return 0;
}

void imp_idem_sweep(imp_store_t *store, imp_idem_cursor_t *cur) {
  char *cursor = cur->key;
  size_t *cursorlen = &cur->len;
  sweep_t s;
  memset(&s, 0, sizeof s);
  s.batch = imp_batch_new();
  s.store = store;
  s.now = imp_wall_ms();
  int rc = imp_store_scan_from(store, IMP_CF_IDEMPOTENCY, cursor, *cursorlen,
                               sweep_one, &s);
  /* Stopped early: carry on from there; ran off the end: start over. */
  if (rc == 1) {
    memcpy(cursor, s.last, s.lastlen);
    *cursorlen = s.lastlen;
  } else {
    *cursorlen = 0;
  }
  if (s.deleted) {
    char err[256];
    if (imp_store_write(store, s.batch, 0, err, sizeof err) != 0)
      IMP_LOG(IMP_LOG_WARN, "idempotency: sweep: %s", err);
    else
      IMP_LOG(IMP_LOG_DEBUG, "idempotency: %u expired answers deleted",
              s.deleted);
  }
  imp_batch_free(s.batch);
}
