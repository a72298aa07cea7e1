/*
 * One record of a trigger, from the copy taken off the consumer to its
 * end: its memory (pooled blocks), its stored attempt count, its
 * invocation with the headers a function sees, retries with backoff. It
 * reaches what comes next, above this file, through the broker's hooks
 * (trigger_types.h): its batch (trigger_batch.c), its dead letter or reply
 * (trigger_output.c), its finish, which its partition accounts for
 * (trigger_partition.c).
 */
#include "eventing/trigger_record.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eventing/cloudevents.h"
#include "eventing/trigger_util.h"

/* ---- attempt counts ------------------------------------------------------ */

static void put_be32(char *p, uint32_t v) {
  for (int i = 3; i >= 0; i--, v >>= 8) p[i] = (char)(v & 0xff);
}
static void put_be64(char *p, uint64_t v) {
  for (int i = 7; i >= 0; i--, v >>= 8) p[i] = (char)(v & 0xff);
}
static uint64_t get_be64(const char *p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; i++) v = (v << 8) | (unsigned char)p[i];
  return v;
}

/* Key of the attempt records of a partition (plen bytes) or of one record
 * (plen + 8). `out` needs 400 bytes: names are at most 64 + 249. */
static size_t attempt_prefix(const trigger_t *trigger, int32_t partition,
                             char *out) {
  size_t n = strlen(trigger->spec->name), m = strlen(trigger->spec->topic);
  memcpy(out, trigger->spec->name, n + 1);
  memcpy(out + n + 1, trigger->spec->topic, m + 1);
  put_be32(out + n + m + 2, (uint32_t)partition);
  return n + m + 6;
}

static size_t attempt_key(const rec_t *rec, char *out) {
  size_t n = attempt_prefix(rec->trigger, rec->partition, out);
  put_be64(out + n, (uint64_t)rec->offset);
  return n + 8;
}

/*
 * Attempt counts are written with sync=0, grouped into one batch per loop
 * turn (flushed by a check handle). RocksDB then writes its WAL with
 * write(2) but no fsync: the count survives a kill -9 of the process (the
 * bytes are in the kernel), not a power loss, which at worst gives a record
 * a few more attempts. A synced write per failure would cost ~150 us each.
 */
void attempts_flush(triggers_t *triggers) {
  if (triggers->batch_ops == 0 || triggers->freed) return;
  char err[256];
  int rc =
      imp_store_write(triggers->env.store, triggers->batch, 0, err, sizeof err);
  if (rc != 0)
    IMP_LOG(IMP_LOG_ERROR, "triggers: cannot store attempt counts: %s", err);
  imp_batch_free(triggers->batch);
  triggers->batch = imp_batch_new();
  triggers->batch_ops = 0;
}

static void attempt_store(rec_t *rec) {
  trigger_t *trigger = rec->trigger;
  triggers_t *triggers = trigger->triggers;
  if (trigger->removed || triggers->freed) return;
  char key[400];
  size_t klen = attempt_key(rec, key);
  Impulse__AttemptRecord ar = IMPULSE__ATTEMPT_RECORD__INIT;
  ar.attempts = rec->attempts;
  ar.last_error = rec->error;
  ar.has_updated_ms = 1;
  ar.updated_ms = imp_wall_ms();
  if (imp_batch_put_msg(triggers->batch, triggers->env.store, IMP_CF_ATTEMPTS,
                        key, klen, &ar.base) == 0) {
    triggers->batch_ops++;
    rec->stored = 1;
  }
}

void attempt_delete(rec_t *rec) {
  trigger_t *trigger = rec->trigger;
  triggers_t *triggers = trigger->triggers;
  if (!rec->stored || trigger->removed || triggers->freed) return;
  char key[400];
  size_t klen = attempt_key(rec, key);
  imp_batch_delete(triggers->batch, triggers->env.store, IMP_CF_ATTEMPTS, key,
                   klen);
  triggers->batch_ops++;
  rec->stored = 0;
}

static int load_attempt(void *arg, const char *k, size_t kl, const char *v,
                        size_t vl) {
  part_t *part = arg;
  if (kl < 8) return 0;
  Impulse__AttemptRecord *ar =
      impulse__attempt_record__unpack(NULL, vl, (const uint8_t *)v);
  if (ar == NULL) return 0;
  att_t *a = realloc(part->att, (part->natt + 1) * sizeof *a);
  if (a == NULL) {
    impulse__attempt_record__free_unpacked(ar, NULL);
    return 0;
  }
  part->att = a;
  a[part->natt].offset = (int64_t)get_be64(k + kl - 8);
  a[part->natt].attempts = ar->attempts;
  a[part->natt].error = ar->last_error ? strdup(ar->last_error) : NULL;
  part->natt++;
  impulse__attempt_record__free_unpacked(ar, NULL);
  return 0;
}

void attempts_load(part_t *part) {
  trigger_t *trigger = part->trigger;
  triggers_t *triggers = trigger->triggers;
  attempts_flush(triggers);
  char prefix[400];
  size_t plen = attempt_prefix(trigger, part->id, prefix);
  imp_store_scan(triggers->env.store, IMP_CF_ATTEMPTS, prefix, plen,
                 load_attempt, part);
}

/* Stored attempt count of a record seen for the first time. Entries below
 * the first record delivered since the assignment were committed past:
 * they are stale and deleted. */
void attempt_lookup(part_t *part, rec_t *rec) {
  if (part->natt == 0) return;
  triggers_t *triggers = part->trigger->triggers;
  size_t keep = 0;
  for (size_t i = 0; i < part->natt; i++) {
    att_t *a = &part->att[i];
    if (a->offset == rec->offset) {
      rec->attempts = a->attempts;
      rec->stored = 1;
      if (a->error) snprintf(rec->error, sizeof rec->error, "%s", a->error);
      free(a->error);
    } else if (!part->seen && a->offset < rec->offset) {
      char key[400];
      size_t n = attempt_prefix(part->trigger, part->id, key);
      put_be64(key + n, (uint64_t)a->offset);
      if (!part->trigger->removed && !triggers->freed) {
        imp_batch_delete(triggers->batch, triggers->env.store, IMP_CF_ATTEMPTS,
                         key, n + 8);
        triggers->batch_ops++;
      }
      free(a->error);
    } else {
      part->att[keep++] = *a;
    }
  }
  part->natt = keep;
}

/* ---- records ------------------------------------------------------------- */

/*
 * Record blocks (the record and its key, value and headers) of up to
 * REC_BLOCK bytes, most of them, come from a free list: a record is
 * allocated per event and freed when it is committed, out of order, at
 * hundreds of thousands a second, which is work for malloc that a list
 * of same-sized blocks does not need.
 */
#define REC_BLOCK (sizeof(rec_t) + 512)
#define REC_FREE_MAX 4096

static rec_t *rec_alloc(triggers_t *triggers, size_t size) {
  if (size > REC_BLOCK) {
    rec_t *rec = malloc(size);
    if (rec != NULL) rec->pooled = 0;
    return rec;
  }
  rec_t *rec;
  if (triggers->rec_free != NULL) {
    rec = triggers->rec_free;
    memcpy(&triggers->rec_free, rec, sizeof(void *));
    triggers->nrec_free--;
  } else {
    rec = malloc(REC_BLOCK);
    if (rec == NULL) return NULL;
  }
  rec->pooled = 1;
  return rec;
}

static void rec_release(rec_t *rec) {
  trigger_t *trigger = rec->trigger;
  triggers_t *triggers = trigger->triggers;
  free(rec->reply);
  if (rec->pooled && triggers->nrec_free < REC_FREE_MAX) {
    memcpy(rec, &triggers->rec_free, sizeof(void *));
    triggers->rec_free = rec;
    triggers->nrec_free++;
  } else {
    free(rec);
  }
  trigger_unref(trigger);
}

static void on_rec_timer_closed(uv_handle_t *h) {
  rec_release(IMP_CONTAINER_OF(h, rec_t, timer));
}

/* Frees a record that is finished or given up once no callback is owed to
 * it any more. */
void rec_maybe_free(rec_t *rec) {
  if (rec->part != NULL || rec->ops > 0 || rec->timer_state == 2) return;
  if (rec->timer_state == 1) {
    if (rec->in_backoff) uv_timer_stop(&rec->timer);
    rec->in_backoff = 0;
    rec->timer_state = 2;
    uv_close((uv_handle_t *)&rec->timer, on_rec_timer_closed);
    return;
  }
  rec_release(rec);
}

/* Copies a consumed record into one block. NULL when out of memory. */
rec_t *rec_new(trigger_t *trigger, const rd_kafka_message_t *msg) {
  rd_kafka_headers_t *hdrs = NULL;
  if (rd_kafka_message_headers(msg, &hdrs) != RD_KAFKA_RESP_ERR_NO_ERROR)
    hdrs = NULL;
  size_t nh = hdrs ? rd_kafka_header_cnt(hdrs) : 0;
  size_t keep = nh > MAX_RECORD_HEADERS ? 0 : nh;
  size_t size = sizeof(rec_t) + keep * sizeof(hdr_t) + msg->key_len + msg->len;
  for (size_t i = 0; i < keep; i++) {
    const char *name;
    const void *val;
    size_t vlen;
    if (rd_kafka_header_get_all(hdrs, i, &name, &val, &vlen) != 0) continue;
    size += strlen(name) + 1 + vlen;
  }
  rec_t *rec = rec_alloc(trigger->triggers, size);
  if (rec == NULL) return NULL;
  int pooled = rec->pooled;
  memset(rec, 0, sizeof *rec);
  rec->pooled = pooled;
  rec->trigger = trigger;
  trigger->refs++;
  rec->partition = msg->partition;
  rec->offset = msg->offset;
  rd_kafka_timestamp_type_t tstype;
  rec->timestamp = rd_kafka_message_timestamp(msg, &tstype);
  char *p = (char *)(rec + 1);
  rec->hdrs = (hdr_t *)p;
  p += keep * sizeof(hdr_t);
  if (msg->key != NULL) {
    memcpy(p, msg->key, msg->key_len);
    rec->key = p;
    rec->klen = msg->key_len;
    p += msg->key_len;
  }
  if (msg->len) memcpy(p, msg->payload, msg->len);
  rec->value = p;
  rec->vlen = msg->len;
  p += msg->len;
  for (size_t i = 0; i < keep; i++) {
    const char *name;
    const void *val;
    size_t vlen;
    if (rd_kafka_header_get_all(hdrs, i, &name, &val, &vlen) != 0) continue;
    hdr_t *h = &rec->hdrs[rec->nhdrs++];
    size_t nl = strlen(name) + 1;
    memcpy(p, name, nl);
    h->name = p;
    p += nl;
    h->value = NULL;
    h->len = vlen;
    if (val != NULL) {
      memcpy(p, val, vlen);
      h->value = p;
      p += vlen;
    }
    rec->ce |= imp_ce_header_attr(name);
  }
  size_t max = trigger->triggers->env.max_event_bytes;
  if (nh > MAX_RECORD_HEADERS) {
    rec->undeliverable = 1;
    snprintf(rec->error, sizeof rec->error,
             "record has %zu headers, more than the %d a trigger passes on", nh,
             MAX_RECORD_HEADERS);
  } else if (msg->len > max) {
    rec->undeliverable = 1;
    snprintf(rec->error, sizeof rec->error,
             "record of %zu bytes exceeds --max-event-bytes %zu", msg->len,
             max);
  }
  return rec;
}

/* The record's ce_id: its own header, else the one made from its topic,
 * partition and offset (buf: IMP_CE_ID_MAX bytes). */
const void *rec_ce_id(const rec_t *rec, char *buf, size_t buflen, size_t *len) {
  if (rec->ce & IMP_CE_ID)
    for (size_t i = 0; i < rec->nhdrs; i++)
      if (strcmp(rec->hdrs[i].name, IMP_CE_H_ID) == 0 && rec->hdrs[i].value) {
        *len = rec->hdrs[i].len;
        return rec->hdrs[i].value;
      }
  char p[12], o[21];
  size_t pl = fmt_i64(p, rec->partition), ol = fmt_i64(o, rec->offset);
  *len = imp_ce_record_id(rec->trigger->spec->topic, p, pl, o, ol, buf, buflen);
  return buf;
}

/* ---- retries ------------------------------------------------------------- */

static void on_rec_timer(uv_timer_t *t) {
  rec_t *rec = IMP_CONTAINER_OF(t, rec_t, timer);
  rec->in_backoff = 0;
  if (rec->part == NULL) {
    rec_maybe_free(rec);
    return;
  }
  if (rec->part->stopping) return; /* stalled by part_stop() already */
  const trigger_hooks_t *hooks = rec->trigger->triggers->hooks;
  switch (rec->phase) {
    case PH_INVOKE: rec_start(rec); break;
    case PH_DLQ:
    case PH_REPLY: hooks->output(rec, rec->phase); break;
    default: hooks->finish(rec); break;
  }
}

static uint64_t rng_next(triggers_t *triggers) {
  uint64_t x = triggers->rng; /* xorshift64 */
  x ^= x << 13;
  x ^= x >> 7;
  x ^= x << 17;
  return triggers->rng = x;
}

/* Exponential backoff for failure number n (1-based), with jitter: between
 * half and all of min(initial * 2^(n-1), max). */
uint64_t trigger_backoff_ms(trigger_t *trigger, unsigned n) {
  uint64_t d = trigger->backoff_initial;
  for (unsigned i = 1; i < n && d < trigger->backoff_max; i++) d *= 2;
  if (d > trigger->backoff_max) d = trigger->backoff_max;
  uint64_t half = d / 2;
  return d - half + (half ? rng_next(trigger->triggers) % (half + 1) : 0);
}

/* Runs `phase` of the record after `ms`. The record stays active, unless
 * its partition is being released: then it stalls (and comes again to the
 * partition's next owner) rather than hold up the release. */
void rec_schedule(rec_t *rec, int phase, uint64_t ms) {
  if (rec->part == NULL || rec->part->stopping) {
    rec_stall(rec);
    return;
  }
  if (rec->timer_state == 0) {
    uv_timer_init(rec->trigger->triggers->env.loop, &rec->timer);
    uv_unref((uv_handle_t *)&rec->timer);
    rec->timer_state = 1;
  }
  rec->phase = phase;
  rec->in_backoff = 1;
  uv_timer_start(&rec->timer, on_rec_timer, ms, 0);
}

/* Stops work on an active record: it stays unfinished (so it is not
 * committed past) and comes again after a restart or rebalance. */
void rec_stall(rec_t *rec) {
  if (rec->in_backoff) uv_timer_stop(&rec->timer);
  rec->in_backoff = 0;
  if (rec->state == R_ACTIVE && rec->part) {
    if (rec->slot_freed)
      rec->part->replying--;
    else
      rec->part->active--;
  }
  rec->state = R_STALLED;
}

int is_transient(int code) {
  return code == IMPULSE__ERROR_CODE__OVERLOADED ||
         code == IMPULSE__ERROR_CODE__UNAVAILABLE;
}

/*
 * A failed invocation. Failures that say nothing about the record, only
 * about the moment (the function is overloaded, or no instance can start)
 * are retried with backoff without counting toward max-retries:
 * dead-lettering every event of a burst would lose them. Everything else
 * counts, a function that does not exist (deleted, or never deployed)
 * included: waiting for it would hold its records, and every record behind
 * them, for ever. After max-retries failures the record is dead-lettered.
 */
void rec_fail(rec_t *rec, int code, const char *message) {
  trigger_t *trigger = rec->trigger;
  snprintf(rec->error, sizeof rec->error, "%s: %s", imp_error_code_name(code),
           message ? message : "failed");
  if (code == IMPULSE__ERROR_CODE__SHUTTING_DOWN) {
    rec_stall(rec);
    return;
  }
  if (is_transient(code)) {
    rec->transient++;
    trigger->retried++;
    trigger_set_reason(trigger, "retrying: %s", rec->error);
    rec_schedule(rec, PH_INVOKE,
                 trigger_backoff_ms(trigger, rec->attempts + rec->transient));
    return;
  }
  rec->attempts++;
  if (rec->attempts > trigger->max_retries) {
    trigger->triggers->hooks->output(rec, PH_DLQ);
    return;
  }
  trigger->retried++;
  trigger_set_reason(trigger, "retrying %s/%d@%lld (attempt %u): %s",
                     trigger->spec->topic, (int)rec->partition,
                     (long long)rec->offset, rec->attempts, rec->error);
  attempt_store(rec);
  rec_schedule(rec, PH_INVOKE, trigger_backoff_ms(trigger, rec->attempts));
}

/* ---- invocation ---------------------------------------------------------- */

/* The record's function succeeded with `resp` (borrowed). */
void rec_invoked(rec_t *rec, const Impulse__InvokeResponse *resp) {
  trigger_t *trigger = rec->trigger;
  trigger->handled++;
  if (trigger->spec->reply_topic == NULL) {
    trigger->triggers->hooks->finish(rec);
    return;
  }
  /* Keep the response (payload and headers) for the reply topic. */
  size_t nh =
      resp->n_headers > MAX_REPLY_HEADERS ? MAX_REPLY_HEADERS : resp->n_headers;
  size_t size = nh * sizeof(hdr_t) + resp->payload.len + 1;
  for (size_t i = 0; i < nh; i++)
    size += strlen(resp->headers[i]->name) + 1 + resp->headers[i]->value.len;
  char *block = malloc(size);
  if (block == NULL) {
    rec_fail(rec, IMPULSE__ERROR_CODE__INTERNAL, "out of memory");
    return;
  }
  /* One block: header array, header names and values, then the payload. */
  free(rec->reply);
  rec->reply = block;
  rec->rhdrs = (hdr_t *)block;
  rec->nrhdrs = nh;
  char *p = block + nh * sizeof(hdr_t);
  for (size_t i = 0; i < nh; i++) {
    size_t nl = strlen(resp->headers[i]->name) + 1;
    memcpy(p, resp->headers[i]->name, nl);
    rec->rhdrs[i].name = p;
    p += nl;
    rec->rhdrs[i].len = resp->headers[i]->value.len;
    if (resp->headers[i]->value.len)
      memcpy(p, resp->headers[i]->value.data, resp->headers[i]->value.len);
    rec->rhdrs[i].value = p;
    p += resp->headers[i]->value.len;
  }
  if (resp->payload.len) memcpy(p, resp->payload.data, resp->payload.len);
  rec->rpayload = p;
  rec->replylen = resp->payload.len;
  trigger->triggers->hooks->output(rec, PH_REPLY);
}

static void on_invoked(void *arg, uint64_t tag, const imp_answer_t *answer) {
  rec_t *rec = arg;
  int code = answer->code;
  const char *message = answer->message;
  const Impulse__InvokeResponse *resp = answer->resp;
  (void)tag;
  rec->ops--;
  if (rec->part == NULL || rec->state != R_ACTIVE) {
    rec_maybe_free(rec);
    return;
  }
  if (code == 0 && resp != NULL && resp->has_status && resp->status != 0) {
    code = IMPULSE__ERROR_CODE__FUNCTION_ERROR;
    message = "handler returned a non-zero status";
  }
  if (code != 0) {
    rec_fail(rec, code, message);
    return;
  }
  rec_invoked(rec, resp);
}
_Static_assert(40 + IMP_CE_TIME_MAX <= 72 && 72 + IMP_CE_ID_MAX <= REC_SCRATCH,
               "rec_headers() scratch layout");

/*
 * Fills hs with the headers of the record's invocation: ours first
 * (impulse_header() returns the first of a name), then the CloudEvents
 * attributes the record does not carry itself, then the record's own.
 * Their text goes to `scratch` (REC_SCRATCH bytes). Returns the count, at
 * most nhdrs + 10.
 */
size_t rec_headers(rec_t *rec, Impulse__Header *hs, char *scratch) {
  trigger_t *trigger = rec->trigger;
  char *pbuf = scratch, *obuf = scratch + 16, *tbuf = scratch + 40,
       *idbuf = scratch + 72;
  size_t n = 0, idlen;
  size_t pl = fmt_i64(pbuf, rec->partition), ol = fmt_i64(obuf, rec->offset);
  const char *topic = trigger->spec->topic;
  hset(&hs[n++], "kafka.topic", topic, strlen(topic));
  hset(&hs[n++], "kafka.partition", pbuf, pl);
  hset(&hs[n++], "kafka.offset", obuf, ol);
  if (rec->key) hset(&hs[n++], "kafka.key", rec->key, rec->klen);
  if (!(rec->ce & IMP_CE_SPECVERSION))
    hset(&hs[n++], IMP_CE_H_SPECVERSION, IMP_CE_VERSION,
         sizeof IMP_CE_VERSION - 1);
  if (!(rec->ce & IMP_CE_ID)) {
    const void *id = rec_ce_id(rec, idbuf, REC_SCRATCH - 72, &idlen);
    hset(&hs[n++], IMP_CE_H_ID, id, idlen);
  }
  if (!(rec->ce & IMP_CE_SOURCE))
    hset(&hs[n++], IMP_CE_H_SOURCE, trigger->ce_source,
         strlen(trigger->ce_source));
  if (!(rec->ce & IMP_CE_TYPE))
    hset(&hs[n++], IMP_CE_H_TYPE, IMP_CE_TYPE_RECORD,
         sizeof IMP_CE_TYPE_RECORD - 1);
  if (!(rec->ce & IMP_CE_TIME) && rec->timestamp >= 0)
    hset(&hs[n++], IMP_CE_H_TIME, tbuf,
         imp_ce_time(&trigger->triggers->clock, rec->timestamp, tbuf));
  for (size_t i = 0; i < rec->nhdrs; i++)
    hset(&hs[n++], rec->hdrs[i].name, rec->hdrs[i].value, rec->hdrs[i].len);
  return n;
}

/* What a record gets when its invocation could not even be sent. */
void rec_invoke_failed(rec_t *rec, int rc) {
  trigger_t *trigger = rec->trigger;
  if (rc == -ENOENT) {
    char msg[128];
    snprintf(msg, sizeof msg, "function '%s' does not exist",
             trigger->spec->function);
    rec_fail(rec, IMPULSE__ERROR_CODE__NOT_FOUND, msg);
  } else if (rc == -E2BIG) {
    snprintf(rec->error, sizeof rec->error,
             "invocation of a %zu-byte record exceeds --max-frame %zu",
             rec->vlen, trigger->triggers->env.max_frame);
    trigger->triggers->hooks->output(rec, PH_DLQ);
  } else if (rc == -ESHUTDOWN) {
    rec_stall(rec);
  } else {
    rec_fail(rec, IMPULSE__ERROR_CODE__INTERNAL, imp_strerror(rc));
  }
}

/* Sends the record to its function alone (may answer at once with a
 * failure). */
void rec_invoke_one(rec_t *rec) {
  trigger_t *trigger = rec->trigger;
  imp_invoker_t *inv = trigger->triggers->env.invoker;
  Impulse__Header hs[MAX_RECORD_HEADERS + 10];
  Impulse__Header *hp[MAX_RECORD_HEADERS + 10];
  char scratch[REC_SCRATCH];
  size_t n = rec_headers(rec, hs, scratch);
  for (size_t i = 0; i < n; i++) hp[i] = &hs[i];

  Impulse__InvokeRequest req = IMPULSE__INVOKE_REQUEST__INIT;
  req.function = trigger->spec->function;
  req.has_payload = 1;
  req.payload.data = (uint8_t *)rec->value;
  req.payload.len = rec->vlen;
  req.n_headers = n;
  req.headers = hp;
  rec->ops++;
  int rc = inv->ops->invoke(inv, &req, on_invoked, rec);
  if (rc == 0) return;
  rec->ops--;
  rec_invoke_failed(rec, rc);
}

/* Begins processing a record: invocation, or the dead-letter topic for a
 * record no function may see. Never finishes it synchronously. */
void rec_start(rec_t *rec) {
  if (rec->state != R_ACTIVE) {
    rec->state = R_ACTIVE;
    rec->part->active++;
  }
  const trigger_hooks_t *hooks = rec->trigger->triggers->hooks;
  if (rec->undeliverable)
    hooks->output(rec, PH_DLQ);
  else
    hooks->invoke(rec);
}
