/*
 * Trigger broker: one Kafka consumer group per trigger; each record becomes
 * an internal invocation of the trigger's function, at-least-once.
 *
 * Everything here runs on the server's loop thread. Each consumer's queue
 * is hooked into the loop (imp_kafka_watch) and drained without blocking;
 * rebalance and commit callbacks are served by that drain, so they run on
 * the loop thread too.
 *
 * Per assigned partition the broker keeps the records it took, in offset
 * order (trigger_track.h), and commits only the contiguous low-water mark
 * of finished records (the function succeeded, or the record was
 * dead-lettered), asynchronously, from a 100 ms tick, never per record.
 * A partition is paused once the records it holds that are not finished
 * reach max-in-flight (or the records kept behind an unfinished one reach a
 * window), and resumed when that drains to half: librdkafka drops what it
 * had prefetched for a paused partition and fetches again from the last
 * record it handed out, so nothing is buffered without bound.
 *
 * Lifetimes: a record (rec_t) belongs to its partition until it is finished
 * or the partition is released; callbacks still pending on it (invocation,
 * produce, retry timer) keep it alive after that and free it when they
 * come. Records hold a reference on their trigger, triggers on the broker,
 * so a callback that arrives after imp_triggers_free() (imp_kafka_close()
 * reports unsent records after it) finds valid memory and only frees.
 */
#include "eventing/trigger.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "core/batch.h"
#include "core/limits.h"
#include "eventing/cloudevents.h"
#include "eventing/trigger_track.h"
#include "server/base/metrics.h"
#include "server/base/store.h"

#define TICK_MS 100      /* commits, deadlines, close polling */
#define DRAIN_BATCH 2048 /* records per wake-up before yielding */
#define QUEUE_ROOM 64    /* calls a trigger lets wait in a function's queue */
#define MAX_RECORD_HEADERS 100 /* more makes a record undeliverable */
#define MAX_REPLY_HEADERS 32
#define REVOKE_WAIT_MS 5000  /* in-flight calls of revoked partitions */
#define DELETE_WAIT_MS 3000  /* in-flight calls of a deleted trigger */
#define CLOSE_WAIT_MS 5000   /* leaving the group */
#define REASON_SHOW_MS 10000 /* how long a failure shows in state */
#define MAX_PARTITION_ID 100000
#define COMMIT_HOLD_MS 15000 /* commits refused during a rebalance */
/* Bytes of keys and values kept per partition before it is paused. */
#define WINDOW_BYTES (4u << 20)

#define DEF_FROM "earliest"
#define DEF_ORDERING "partition"
#define DEF_MAX_IN_FLIGHT 64u
#define DEF_MAX_RETRIES 3u
#define DEF_BACKOFF_INITIAL 100u
#define DEF_BACKOFF_MAX 10000u

enum { ORD_PARTITION = 0, ORD_KEY, ORD_NONE };
enum { T_RUNNING = 0, T_DRAINING, T_CLOSING, T_CLOSED };
enum { R_WAITING = 0, R_ACTIVE, R_STALLED };
enum { PH_INVOKE = 0, PH_DLQ, PH_REPLY, PH_FINISH };

typedef struct trigger_s trigger_t;
typedef struct part_s part_t;
typedef struct rec_s rec_t;
typedef struct keyq_s keyq_t;

/* A header of a record: pointers into the record's own block. */
typedef struct hdr_s {
  const char *name;
  const void *value; /* NULL for a null value */
  size_t len;
} hdr_t;

/* One record taken from a partition. */
struct rec_s {
  trigger_t *trigger; /* referenced */
  part_t *part;       /* NULL once finished or given up */
  keyq_t *keyq;       /* ordering key: its key's queue */
  rec_t *knext;       /* next waiting record of the same key */
  uint64_t seq;       /* in part->track */
  int32_t partition;
  int64_t offset;
  int64_t timestamp;  /* ms since the epoch, -1 when unknown */
  int state;          /* R_* */
  int phase;          /* what the timer does next, or the output being
                         produced (PH_*) */
  unsigned ops;       /* invocation or produce callbacks pending */
  int timer_state;    /* 0 none, 1 initialised, 2 closing */
  int in_backoff;     /* timer running */
  unsigned attempts;  /* failed attempts, as stored */
  unsigned transient; /* failures not counted (function missing...) */
  int stored;         /* an AttemptRecord exists for it */
  int undeliverable;  /* dead-letter at once */
  int slot_freed;     /* invoked; only its reply's delivery is awaited */
  int solo;           /* invoked alone, never in a batch (after a failure) */
  int pooled;         /* a REC_BLOCK block from the free list (rec_alloc) */
  unsigned ce;        /* IMP_CE_* attributes it carries itself */
  uv_timer_t timer;
  const char *key; /* NULL: no key */
  size_t klen;
  const char *value;
  size_t vlen;
  hdr_t *hdrs;
  size_t nhdrs;
  char *reply;          /* block holding the response, owned */
  const char *rpayload; /* response payload, in the block */
  size_t replylen;
  hdr_t *rhdrs; /* response headers, in the reply block */
  size_t nrhdrs;
  char error[384]; /* last failure */
};

/* Records of one key in one partition (ordering key). */
struct keyq_s {
  keyq_t *next; /* hash chain */
  uint64_t hash;
  rec_t *busy;        /* being processed */
  rec_t *head, *tail; /* waiting, in offset order */
  int null_key;
  size_t klen;
  char key[];
};

/* A stored attempt count not matched to a record yet. */
typedef struct att_s {
  int64_t offset;
  unsigned attempts;
  char *error; /* owned, may be NULL */
} att_t;

/* An assigned partition. */
struct part_s {
  trigger_t *trigger;
  int32_t id;
  imp_track_t track;
  uint64_t cursor;   /* first record not started (partition/none) */
  unsigned pending;  /* records kept, not finished */
  size_t bytes;      /* their keys and values */
  unsigned active;   /* started, not finished, not stalled */
  unsigned replying; /* invoked, reply produce not acknowledged yet */
  int paused;
  int stopping;        /* revoked or closing: nothing new starts */
  int seen;            /* a record came since the assignment */
  int64_t skip_below;  /* finished here before: not again (-1) */
  int skipping;        /* the seek past them was asked for */
  int64_t committed;   /* acknowledged by the group, -1 none */
  int64_t commit_sent; /* last one asked for */
  keyq_t **kb;         /* key queues (ordering key) */
  size_t nkb, nkeys;
  att_t *att; /* stored attempt counts, by offset */
  size_t natt;
};

struct trigger_s {
  imp_triggers_t *triggers;   /* referenced */
  Impulse__TriggerSpec *spec; /* owned */
  int ordering;
  unsigned max_in_flight, max_retries, backoff_initial, backoff_max;
  unsigned window; /* records kept per partition before pausing */
  int waiting;     /* stopped starting records: the function's queue is full */
  int repump;      /* woken: start records on the next service */
  char ce_source[300];    /* of its records' events */
  char reply_source[128]; /* of its replies */
  int state;              /* T_* */
  int refs;               /* list + records + open handles */
  int removed;            /* deleted: not listed, nothing stored */
  rd_kafka_t *rk;
  rd_kafka_queue_t *cq; /* consumer queue */
  imp_kafka_watch_t *watch;
  rd_kafka_queue_t *adminq; /* committed offsets of new assignments */
  imp_kafka_watch_t *admin_watch;
  rd_kafka_queue_t *closeq; /* while leaving the group */
  imp_kafka_watch_t *close_watch;
  uv_timer_t tick;
  uv_timer_t more; /* drain again next loop turn */
  part_t **parts;  /* by partition id */
  size_t nparts;
  rd_kafka_topic_partition_list_t *revoking; /* revoked, not yet released */
  uint64_t revoke_deadline;
  uint64_t drain_deadline, close_deadline;
  int assigned;               /* a first assignment came */
  uint64_t commit_hold_until; /* periodic commits held until at most */
  int hold_rebalance;         /* held: a commit was refused as rebalancing */
  int hold_assigns;           /* held: rebalance callbacks still to come */
  int64_t *done;              /* by partition id: low-water mark when this
                                 process last released it, -1 none */
  size_t ndone;
  imp_rpc_t *del_rpc; /* trigger rm, answered once stopped */
  uint64_t received, handled, retried, dead_lettered;
  /* Record batches (see rec_invoke()): records that go to the function in
   * one call, sent when full or when the loop turn's output is flushed
   * (batches_flush()). */
  rec_t **bq;
  size_t bqn, bqcap, bqbytes;
  unsigned batch_max; /* imp_controller_batch_hint(), per part_pump() */
  trigger_t *bq_next; /* on triggers->bq_head (holds a reference) */
  int bq_listed;
  uint64_t batches, batched; /* calls made, records they carried */
  char reason[384];          /* last retried failure */
  uint64_t reason_ms;
  char kerr[384]; /* last Kafka error */
  uint64_t kerr_ms;
  trigger_t *next, *prev;
};

struct imp_triggers_s {
  imp_triggers_env_t env; /* borrowed handles, copied */
  trigger_t list;         /* sentinel */
  int refs;               /* 1 until freed + 1 per trigger */
  int closing;
  int freed;
  imp_batch_t *batch; /* attempt records written next loop turn */
  size_t batch_ops;
  uv_check_t flush;
  int flush_open;
  uint64_t rng;
  trigger_t *bq_head; /* triggers with records in a batch */
  uv_idle_t bq_idle;  /* keeps the loop from sleeping while they wait */
  int bq_idle_open;
  char *scratch; /* header text of a batch's records */
  size_t scratch_cap;
  void *rec_free; /* free list of REC_BLOCK record blocks */
  size_t nrec_free;
  imp_ce_clock_t clock; /* ce_time of the records */
};

static void trigger_unref(trigger_t *trigger);
static void rec_start(rec_t *rec);
static void rec_free_slot(rec_t *rec);
static void rec_finish(rec_t *rec);
static void rec_output(rec_t *rec, int kind);
static void trigger_kick(trigger_t *trigger);
static void trigger_progress(trigger_t *trigger);

/* ---- small helpers ----------------------------------------------------- */

static void triggers_unref(imp_triggers_t *triggers) {
  if (triggers->refs <= 0) abort(); /* refcount underflow is a bug */
  if (--triggers->refs > 0) return;
  imp_batch_free(triggers->batch);
  free(triggers->scratch);
  while (triggers->rec_free != NULL) {
    void *next;
    memcpy(&next, triggers->rec_free, sizeof next);
    free(triggers->rec_free);
    triggers->rec_free = next;
  }
  free(triggers);
}

static uint64_t rng_next(imp_triggers_t *triggers) {
  uint64_t x = triggers->rng; /* xorshift64 */
  x ^= x << 13;
  x ^= x >> 7;
  x ^= x << 17;
  return triggers->rng = x;
}

static int ordering_of(const char *s) {
  if (strcmp(s, "key") == 0) return ORD_KEY;
  if (strcmp(s, "none") == 0) return ORD_NONE;
  return ORD_PARTITION;
}

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

/* Writes v in decimal at p (room for 20 characters); returns the length. */
static size_t fmt_i64(char *p, int64_t v) {
  char t[20];
  size_t n = 0;
  uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
  do {
    t[n++] = (char)('0' + u % 10);
    u /= 10;
  } while (u);
  size_t len = 0;
  if (v < 0) p[len++] = '-';
  while (n) p[len++] = t[--n];
  return len;
}

static void set_reason(trigger_t *trigger, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void set_reason(trigger_t *trigger, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(trigger->reason, sizeof trigger->reason, fmt, ap);
  va_end(ap);
  trigger->reason_ms = imp_now_ms();
}

static void set_kafka_error(trigger_t *trigger, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void set_kafka_error(trigger_t *trigger, const char *fmt, ...) {
  char msg[sizeof trigger->kerr];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  uint64_t now = imp_now_ms();
  /* The same error again is logged at most every 10 s. */
  if (strcmp(msg, trigger->kerr) != 0 ||
      now - trigger->kerr_ms > REASON_SHOW_MS)
    IMP_LOG(IMP_LOG_WARN, "trigger %s: %s", trigger->spec->name, msg);
  memcpy(trigger->kerr, msg, sizeof msg);
  trigger->kerr_ms = now;
}

/* ---- attempt records ---------------------------------------------------- */

/*
 * Attempt counts are written with sync=0, grouped into one batch per loop
 * turn (flushed by a check handle). RocksDB then writes its WAL with
 * write(2) but no fsync: the count survives a kill -9 of the process (the
 * bytes are in the kernel), not a power loss, which at worst gives a record
 * a few more attempts. A synced write per failure would cost ~150 us each.
 */
static void attempts_flush(imp_triggers_t *triggers) {
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

static void on_flush_check(uv_check_t *check) {
  attempts_flush(IMP_CONTAINER_OF(check, imp_triggers_t, flush));
}

static void attempt_store(rec_t *rec) {
  trigger_t *trigger = rec->trigger;
  imp_triggers_t *triggers = trigger->triggers;
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

static void attempt_delete(rec_t *rec) {
  trigger_t *trigger = rec->trigger;
  imp_triggers_t *triggers = trigger->triggers;
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

/* Stored attempt count of a record seen for the first time. Entries below
 * the first record delivered since the assignment were committed past:
 * they are stale and deleted. */
static void attempt_lookup(part_t *part, rec_t *rec) {
  if (part->natt == 0) return;
  imp_triggers_t *triggers = part->trigger->triggers;
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

/* ---- records ------------------------------------------------------------ */

/*
 * Record blocks (the record and its key, value and headers) of up to
 * REC_BLOCK bytes, most of them, come from a free list: a record is
 * allocated per event and freed when it is committed, out of order, at
 * hundreds of thousands a second, which is work for malloc that a list
 * of same-sized blocks does not need.
 */
#define REC_BLOCK (sizeof(rec_t) + 512)
#define REC_FREE_MAX 4096

static rec_t *rec_alloc(imp_triggers_t *triggers, size_t size) {
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
  imp_triggers_t *triggers = trigger->triggers;
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
static void rec_maybe_free(rec_t *rec) {
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
static rec_t *rec_new(trigger_t *trigger, const rd_kafka_message_t *msg) {
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
static const void *rec_ce_id(const rec_t *rec, char *buf, size_t buflen,
                             size_t *len) {
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

static void hset(Impulse__Header *h, const char *name, const void *value,
                 size_t len) {
  impulse__header__init(h);
  h->name = (char *)name;
  h->has_value = value != NULL;
  h->value.data = (uint8_t *)value;
  h->value.len = value ? len : 0;
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
  switch (rec->phase) {
    case PH_INVOKE: rec_start(rec); break;
    case PH_DLQ:
    case PH_REPLY: rec_output(rec, rec->phase); break;
    default: rec_finish(rec); break;
  }
}

/* Exponential backoff for failure number n (1-based), with jitter: between
 * half and all of min(initial * 2^(n-1), max). */
static uint64_t backoff_ms(trigger_t *trigger, unsigned n) {
  uint64_t d = trigger->backoff_initial;
  for (unsigned i = 1; i < n && d < trigger->backoff_max; i++) d *= 2;
  if (d > trigger->backoff_max) d = trigger->backoff_max;
  uint64_t half = d / 2;
  return d - half + (half ? rng_next(trigger->triggers) % (half + 1) : 0);
}

static void rec_stall(rec_t *rec);

/* Runs `phase` of the record after `ms`. The record stays active, unless
 * its partition is being released: then it stalls (and comes again to the
 * partition's next owner) rather than hold up the release. */
static void rec_schedule(rec_t *rec, int phase, uint64_t ms) {
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
static void rec_stall(rec_t *rec) {
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

static int is_transient(int code) {
  return code == IMPULSE__ERROR_CODE__NOT_FOUND ||
         code == IMPULSE__ERROR_CODE__OVERLOADED ||
         code == IMPULSE__ERROR_CODE__UNAVAILABLE;
}

/*
 * A failed invocation. Failures that say nothing about the record (the
 * function does not exist, is overloaded, or no instance can start) are
 * retried with backoff without counting toward max-retries: dead-lettering
 * every event because the function was briefly missing would lose them.
 * Everything else (function error, crash, timeout) counts; after
 * max-retries failures the record is dead-lettered.
 */
static void rec_fail(rec_t *rec, int code, const char *message) {
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
    set_reason(trigger, "retrying: %s", rec->error);
    rec_schedule(rec, PH_INVOKE,
                 backoff_ms(trigger, rec->attempts + rec->transient));
    return;
  }
  rec->attempts++;
  if (rec->attempts > trigger->max_retries) {
    rec_output(rec, PH_DLQ);
    return;
  }
  trigger->retried++;
  set_reason(trigger, "retrying %s/%d@%lld (attempt %u): %s",
             trigger->spec->topic, (int)rec->partition, (long long)rec->offset,
             rec->attempts, rec->error);
  attempt_store(rec);
  rec_schedule(rec, PH_INVOKE, backoff_ms(trigger, rec->attempts));
}

/* ---- invocation -----------------------------------------------------------
 */

/* The record's function succeeded with `resp` (borrowed). */
static void rec_invoked(rec_t *rec, const Impulse__InvokeResponse *resp) {
  trigger_t *trigger = rec->trigger;
  trigger->handled++;
  if (trigger->spec->reply_topic == NULL) {
    rec_finish(rec);
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
  rec_output(rec, PH_REPLY);
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

#define REC_SCRATCH 384 /* header text of one record (rec_headers()) */
_Static_assert(40 + IMP_CE_TIME_MAX <= 72 && 72 + IMP_CE_ID_MAX <= REC_SCRATCH,
               "rec_headers() scratch layout");

/*
 * Fills hs with the headers of the record's invocation: ours first
 * (impulse_header() returns the first of a name), then the CloudEvents
 * attributes the record does not carry itself, then the record's own.
 * Their text goes to `scratch` (REC_SCRATCH bytes). Returns the count, at
 * most nhdrs + 10.
 */
static size_t rec_headers(rec_t *rec, Impulse__Header *hs, char *scratch) {
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
static void rec_invoke_failed(rec_t *rec, int rc) {
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
    rec_output(rec, PH_DLQ);
  } else if (rc == -ESHUTDOWN) {
    rec_stall(rec);
  } else {
    rec_fail(rec, IMPULSE__ERROR_CODE__INTERNAL, imp_strerror(rc));
  }
}

/* Sends the record to its function alone (may answer at once with a
 * failure). */
static void rec_invoke_one(rec_t *rec) {
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

/* ---- record batches -------------------------------------------------------
 *
 * While the function's handler is fast (imp_controller_batch_hint() > 1),
 * records started in one loop turn go to it together: one invoke_batch
 * call, one instance slot, one frame each way, instead of one of each per
 * record. The worker runs them in order on one handler thread and answers
 * each. Per record nothing changes: its own result, retries, dead letter,
 * reply, commit. A record that failed once is retried alone (`solo`), and
 * when a whole batch fails (its worker crashed or it timed out) each of
 * its records runs again alone, at once and without counting an attempt:
 * the failure cannot be pinned on any one of them, and the record that
 * caused it then fails alone and is counted.
 */

typedef struct batch_ctx_s {
  size_t n;
  rec_t *recs[];
} batch_ctx_t;

/* Runs a record of a failed batch again, alone and at once; or, while its
 * partition is being released, leaves it to the partition's next owner. */
static void rec_rerun_alone(rec_t *rec) {
  rec->solo = 1;
  if (rec->part->stopping) {
    rec_stall(rec);
    trigger_kick(rec->trigger);
    return;
  }
  rec_invoke_one(rec);
}

static void on_batch_done(void *arg, uint64_t tag, const imp_answer_t *answer) {
  batch_ctx_t *ctx = arg;
  int code = answer->code;
  const char *message = answer->message;
  const Impulse__InvokeBatchResponse *resp = answer->batch;
  (void)tag;
  for (size_t i = 0; i < ctx->n; i++) {
    rec_t *rec = ctx->recs[i];
    rec->ops--;
    if (rec->part == NULL || rec->state != R_ACTIVE) {
      rec_maybe_free(rec);
      continue;
    }
    if (code != 0) {
      if (code == IMPULSE__ERROR_CODE__SHUTTING_DOWN || is_transient(code))
        rec_fail(rec, code, message);
      else
        rec_rerun_alone(rec);
      continue;
    }
    const Impulse__BatchResult *r =
        resp != NULL && i < resp->n_results ? resp->results[i] : NULL;
    rec->solo = 1; /* whatever comes next for it, it comes alone */
    if (r == NULL || r->code == IMPULSE__ERROR_CODE__UNAVAILABLE) {
      rec_rerun_alone(rec); /* no answer for it in the batch's */
    } else if (r->code != 0) {
      rec_fail(rec, r->code, r->message ? r->message : "failed");
    } else {
      rec->solo = 0;
      Impulse__InvokeResponse ok = IMPULSE__INVOKE_RESPONSE__INIT;
      ok.has_payload = r->has_payload;
      ok.payload = r->payload;
      ok.n_headers = r->n_headers;
      ok.headers = r->headers;
      rec_invoked(rec, &ok);
    }
  }
  free(ctx);
}

/* Sends the trigger's batch being built (if any). */
static void batch_send(trigger_t *trigger) {
  imp_triggers_t *triggers = trigger->triggers;
  rec_t **recs = trigger->bq;
  size_t n = trigger->bqn, m = 0;
  trigger->bq = NULL;
  trigger->bqn = trigger->bqcap = trigger->bqbytes = 0;
  /* Records whose partition was lost or is being released since they were
   * added wait for its next owner: stalled now, so that the release does
   * not wait for them. */
  for (size_t i = 0; i < n; i++) {
    rec_t *rec = recs[i];
    if (rec->part == NULL || rec->state != R_ACTIVE) {
      rec->ops--;
      rec_maybe_free(rec);
    } else if (rec->part->stopping) {
      rec->ops--;
      rec_stall(rec);
      trigger_kick(trigger);
    } else {
      recs[m++] = rec;
    }
  }
  if (m <= 1) {
    if (m == 1) {
      recs[0]->ops--;
      rec_invoke_one(recs[0]);
    }
    free(recs);
    return;
  }
  /* The request is encoded from the records (core/batch.h) rather than
   * built as protobuf-c structs and packed: that took a fifth of the loop
   * thread's time per record. */
  size_t nh = 0;
  for (size_t i = 0; i < m; i++) nh += recs[i]->nhdrs + 10;
  if (triggers->scratch_cap < m * REC_SCRATCH) {
    char *p = realloc(triggers->scratch, m * REC_SCRATCH);
    if (p == NULL) abort(); /* a few KiB: the records' own blocks are bigger */
    triggers->scratch = p;
    triggers->scratch_cap = m * REC_SCRATCH;
  }
  Impulse__Header *hs = malloc(nh * sizeof *hs);
  size_t *hlen = malloc((nh + 2 * m) * sizeof *hlen);
  batch_ctx_t *ctx = malloc(sizeof *ctx + m * sizeof(rec_t *));
  if (hs == NULL || hlen == NULL || ctx == NULL) abort();
  size_t *ilen = hlen + nh; /* per item: its encoded length */
  size_t *cnt = ilen + m;   /* per item: its header count */
  const char *fname = trigger->spec->function;
  imp_batch_request_t br;
  imp_batch_request_init(&br, fname);
  size_t k = 0;
  for (size_t i = 0; i < m; i++) {
    rec_t *rec = recs[i];
    cnt[i] = rec_headers(rec, hs + k, triggers->scratch + i * REC_SCRATCH);
    ilen[i] =
        imp_batch_request_measure(&br, rec->vlen, hs + k, cnt[i], hlen + k);
    k += cnt[i];
    ctx->recs[i] = rec;
  }
  ctx->n = m;
  size_t restlen = imp_batch_request_size(&br);
  uint8_t *rest = malloc(restlen);
  if (rest == NULL || imp_batch_request_encode(&br, rest, restlen) != 0)
    abort();
  k = 0;
  for (size_t i = 0; i < m; i++) {
    /* The same items as measured: they fit. */
    if (imp_batch_request_encode_item(&br, ilen[i], recs[i]->value,
                                      recs[i]->vlen, hs + k, cnt[i],
                                      hlen + k) != 0)
      abort();
    k += cnt[i];
  }
  free(hs);
  free(hlen);
  int rc = triggers->env.invoker->ops->invoke_batch(
      triggers->env.invoker, fname, (uint32_t)m, (const char *)rest, restlen,
      on_batch_done, ctx);
  free(rest);
  if (rc == 0) {
    trigger->batches++;
    trigger->batched += m;
  } else {
    free(ctx);
    for (size_t i = 0; i < m; i++) {
      recs[i]->ops--;
      if (rc == -E2BIG) {
        recs[i]->solo = 1;
        rec_invoke_one(recs[i]);
      } else {
        rec_invoke_failed(recs[i], rc);
      }
    }
  }
  free(recs);
}

/* Sends every trigger's batch: called first when the loop turn's output
 * is written (imp_conn_loop_t.before_flush), so a batch goes out in the
 * turn its records were started in. */
static void batches_flush(void *arg) {
  imp_triggers_t *triggers = arg;
  while (triggers->bq_head != NULL) {
    trigger_t *trigger = triggers->bq_head;
    triggers->bq_head = trigger->bq_next;
    trigger->bq_next = NULL;
    trigger->bq_listed = 0;
    batch_send(trigger);
    trigger_unref(trigger);
  }
  if (triggers->bq_idle_open) uv_idle_stop(&triggers->bq_idle);
}

static void on_bq_idle(uv_idle_t *idle) {
  (void)idle; /* only keeps poll() from sleeping; batches_flush() sends */
}

/* Adds the record to its trigger's batch. 0 when it must go alone (too
 * large to share a frame, or no memory for the batch). */
static int batch_add(rec_t *rec) {
  trigger_t *trigger = rec->trigger;
  imp_triggers_t *triggers = trigger->triggers;
  size_t max_frame = triggers->env.max_frame;
  size_t est = rec->vlen + rec->klen + 2 * strlen(trigger->spec->topic) +
               strlen(trigger->ce_source) + 320;
  for (size_t i = 0; i < rec->nhdrs; i++)
    est += strlen(rec->hdrs[i].name) + rec->hdrs[i].len + 8;
  if (est > max_frame / 8) return 0;
  if (trigger->bqn > 0 && trigger->bqbytes + est > max_frame / 2)
    batch_send(trigger);
  if (trigger->bqn == trigger->bqcap) {
    size_t cap = trigger->bqcap ? trigger->bqcap * 2 : 16;
    rec_t **bq = realloc(trigger->bq, cap * sizeof *bq);
    if (bq == NULL) return 0;
    trigger->bq = bq;
    trigger->bqcap = cap;
  }
  trigger->bq[trigger->bqn++] = rec;
  trigger->bqbytes += est;
  rec->ops++;
  if (!trigger->bq_listed) {
    trigger->bq_listed = 1;
    trigger->refs++;
    trigger->bq_next = triggers->bq_head;
    triggers->bq_head = trigger;
    if (triggers->bq_idle_open) uv_idle_start(&triggers->bq_idle, on_bq_idle);
  }
  if (trigger->bqn >= trigger->batch_max) batch_send(trigger);
  return 1;
}

/* Sends the record to its function: in the trigger's batch while the
 * function takes batches, else alone. */
static void rec_invoke(rec_t *rec) {
  if (!rec->solo && rec->trigger->batch_max > 1 && batch_add(rec)) return;
  rec_invoke_one(rec);
}

/* ---- outputs: dead letters and replies ------------------------------------
 *
 * A record may end in one record of output, produced with its key: itself
 * to the dead-letter topic (PH_DLQ) with x-impulse-* headers saying why,
 * or the function's response to the reply topic (PH_REPLY) with ce_*
 * headers tying it to the input. Either way the record is finished once
 * the output is acknowledged; a failure that may pass is retried with
 * backoff without counting an attempt, a stopping server stalls the
 * record (it comes again), and an output too large to be written at all
 * is dropped rather than block the partition for ever.
 */

#define OUTPUT_HEADERS (MAX_RECORD_HEADERS + 8) /* either kind's, at most */
_Static_assert(MAX_REPLY_HEADERS + 4 <= OUTPUT_HEADERS, "reply headers");

/* Headers of the record's dead letter: its own, then why and whence.
 * Their text goes to `buf` (64 bytes). */
static size_t dlq_headers(const rec_t *rec, Impulse__Header *hs, char *buf) {
  const Impulse__TriggerSpec *spec = rec->trigger->spec;
  char *abuf = buf, *pbuf = buf + 16, *obuf = buf + 32;
  size_t n = 0;
  for (size_t i = 0; i < rec->nhdrs; i++)
    hset(&hs[n++], rec->hdrs[i].name, rec->hdrs[i].value, rec->hdrs[i].len);
  hset(&hs[n++], "x-impulse-error", rec->error, strlen(rec->error));
  hset(&hs[n++], "x-impulse-attempts", abuf, fmt_i64(abuf, rec->attempts));
  hset(&hs[n++], "x-impulse-original-topic", spec->topic, strlen(spec->topic));
  hset(&hs[n++], "x-impulse-original-partition", pbuf,
       fmt_i64(pbuf, rec->partition));
  hset(&hs[n++], "x-impulse-original-offset", obuf, fmt_i64(obuf, rec->offset));
  hset(&hs[n++], "x-impulse-function", spec->function, strlen(spec->function));
  hset(&hs[n++], "x-impulse-trigger", spec->name, strlen(spec->name));
  return n;
}

/* Headers of the record's reply: the CloudEvents attributes of a reply,
 * with the input's ce_id, then the response's own. The id's text goes to
 * `buf` (IMP_CE_ID_MAX bytes). */
static size_t reply_headers(const rec_t *rec, Impulse__Header *hs, char *buf) {
  const trigger_t *trigger = rec->trigger;
  size_t n = 0, idlen;
  const void *id = rec_ce_id(rec, buf, IMP_CE_ID_MAX, &idlen);
  hset(&hs[n++], IMP_CE_H_SPECVERSION, IMP_CE_VERSION,
       sizeof IMP_CE_VERSION - 1);
  hset(&hs[n++], IMP_CE_H_ID, id, idlen);
  hset(&hs[n++], IMP_CE_H_SOURCE, trigger->reply_source,
       strlen(trigger->reply_source));
  hset(&hs[n++], IMP_CE_H_TYPE, IMP_CE_TYPE_REPLY,
       sizeof IMP_CE_TYPE_REPLY - 1);
  for (size_t i = 0; i < rec->nrhdrs; i++)
    hset(&hs[n++], rec->rhdrs[i].name, rec->rhdrs[i].value, rec->rhdrs[i].len);
  return n;
}

static const char *output_topic(const rec_t *rec, int kind) {
  return kind == PH_DLQ ? rec->trigger->spec->dlq
                        : rec->trigger->spec->reply_topic;
}

/*
 * The record's output of `kind` was not written: `err` from
 * imp_kafka_produce() (at_once) or from its delivery report, with the
 * producer's reason in errstr (may be NULL).
 */
static void output_failed(rec_t *rec, int kind, int err, const char *errstr,
                          int at_once) {
  trigger_t *trigger = rec->trigger;
  const Impulse__TriggerSpec *spec = trigger->spec;
  const char *what = kind == PH_DLQ ? "dead-letter topic" : "reply topic";
  if (at_once && err == -EMSGSIZE) {
    /* It can never be written anywhere: say so loudly and go on, rather
     * than block the partition for ever. */
    if (kind == PH_DLQ)
      IMP_LOG(IMP_LOG_ERROR,
              "trigger %s: %s/%d@%lld is too large for the %s %s and is "
              "dropped (%s)",
              spec->name, spec->topic, (int)rec->partition,
              (long long)rec->offset, what, spec->dlq, rec->error);
    else
      IMP_LOG(IMP_LOG_ERROR,
              "trigger %s: the response to %s/%d@%lld is too large for the "
              "%s %s and is dropped",
              spec->name, spec->topic, (int)rec->partition,
              (long long)rec->offset, what, spec->reply_topic);
    rec_schedule(rec, PH_FINISH, 0);
  } else if (err == -ESHUTDOWN || err == IMP_ECANCELED) {
    rec_stall(rec);
  } else {
    set_kafka_error(trigger, "cannot write to %s %s: %s", what,
                    output_topic(rec, kind),
                    errstr ? errstr : imp_strerror(err));
    rec->transient++;
    rec_schedule(rec, kind, backoff_ms(trigger, rec->transient));
  }
}

static void on_output_done(void *arg, int err, const char *errstr,
                           int32_t partition, int64_t offset) {
  rec_t *rec = arg;
  rec->ops--;
  if (rec->part == NULL || rec->state != R_ACTIVE) {
    rec_maybe_free(rec);
    return;
  }
  if (err != 0) {
    output_failed(rec, rec->phase, err, errstr, 0);
    return;
  }
  if (rec->phase == PH_DLQ) {
    trigger_t *trigger = rec->trigger;
    trigger->dead_lettered++;
    IMP_LOG(IMP_LOG_WARN,
            "trigger %s: %s/%d@%lld dead-lettered to %s/%d@%lld after %u "
            "attempt%s: %s",
            trigger->spec->name, trigger->spec->topic, (int)rec->partition,
            (long long)rec->offset, trigger->spec->dlq, (int)partition,
            (long long)offset, rec->attempts, rec->attempts == 1 ? "" : "s",
            rec->error);
  }
  rec_finish(rec);
}

/* Produces the record's output of `kind` (PH_DLQ or PH_REPLY); the record
 * is finished once it is acknowledged. A reply frees the record's slot as
 * soon as the producer has it (rec_free_slot()). */
static void rec_output(rec_t *rec, int kind) {
  Impulse__Header hs[OUTPUT_HEADERS];
  Impulse__Header *hp[OUTPUT_HEADERS];
  char text[IMP_CE_ID_MAX];
  size_t n;
  const char *value;
  size_t vlen;
  if (kind == PH_DLQ) {
    n = dlq_headers(rec, hs, text);
    value = rec->value;
    vlen = rec->vlen;
  } else {
    n = reply_headers(rec, hs, text);
    value = rec->rpayload;
    vlen = rec->replylen;
  }
  for (size_t i = 0; i < n; i++) hp[i] = &hs[i];
  rec->phase = kind; /* for on_output_done() */
  rec->ops++;
  int rc = imp_kafka_produce(rec->trigger->triggers->env.kafka,
                             output_topic(rec, kind), -1, rec->key, rec->klen,
                             value, vlen, hp, n, on_output_done, rec);
  if (rc != 0) {
    rec->ops--;
    output_failed(rec, kind, rc, NULL, 1);
  } else if (kind == PH_REPLY) {
    rec_free_slot(rec);
  }
}

/* ---- ordering, completion, back-pressure
 * ----------------------------------------- */

static uint64_t hash_key(const rec_t *rec) {
  uint64_t h = 1469598103934665603ull; /* FNV-1a */
  for (size_t i = 0; i < rec->klen; i++) {
    h ^= (unsigned char)rec->key[i];
    h *= 1099511628211ull;
  }
  return rec->key ? h : 0;
}

/* The queue of the record's key, created when missing; NULL without
 * memory. */
static keyq_t *keyq_get(part_t *part, const rec_t *rec) {
  uint64_t h = hash_key(rec);
  int null_key = rec->key == NULL;
  if (part->nkb) {
    for (keyq_t *k = part->kb[h & (part->nkb - 1)]; k; k = k->next)
      if (k->hash == h && k->null_key == null_key && k->klen == rec->klen &&
          memcmp(k->key, rec->key ? rec->key : "", rec->klen) == 0)
        return k;
  }
  if (part->nkeys >= part->nkb) {
    size_t nkb = part->nkb ? part->nkb * 2 : 64;
    keyq_t **kb = calloc(nkb, sizeof *kb);
    if (kb == NULL) return NULL;
    for (size_t i = 0; i < part->nkb; i++) {
      keyq_t *k = part->kb[i], *next;
      for (; k; k = next) {
        next = k->next;
        k->next = kb[k->hash & (nkb - 1)];
        kb[k->hash & (nkb - 1)] = k;
      }
    }
    free(part->kb);
    part->kb = kb;
    part->nkb = nkb;
  }
  keyq_t *k = calloc(1, sizeof *k + rec->klen);
  if (k == NULL) return NULL;
  k->hash = h;
  k->null_key = null_key;
  k->klen = rec->klen;
  if (rec->klen) memcpy(k->key, rec->key, rec->klen);
  k->next = part->kb[h & (part->nkb - 1)];
  part->kb[h & (part->nkb - 1)] = k;
  part->nkeys++;
  return k;
}

static void keyq_remove(part_t *part, keyq_t *k) {
  keyq_t **pp = &part->kb[k->hash & (part->nkb - 1)];
  while (*pp != k) pp = &(*pp)->next;
  *pp = k->next;
  part->nkeys--;
  free(k);
}

/*
 * Pauses or resumes fetching a partition. Pausing drops what librdkafka had
 * prefetched for it; resuming fetches again from the record after the last
 * one it handed out. librdkafka 2.0.2 does not wake the partition's broker
 * thread on a resume: when all the partitions that broker leads are paused
 * it sleeps up to a second, which capped a trigger at max-in-flight records
 * per partition per second. An asynchronous seek to that same position
 * (where the resume would fetch from anyway, so nothing is skipped or read
 * twice) goes through the path that does wake it.
 */
static void part_pause(part_t *part, int on) {
  trigger_t *trigger = part->trigger;
  rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
  rd_kafka_topic_partition_list_add(l, trigger->spec->topic, part->id)->offset =
      part->track.next;
  rd_kafka_resp_err_t e = on ? rd_kafka_pause_partitions(trigger->rk, l)
                             : rd_kafka_resume_partitions(trigger->rk, l);
  if (!on && e == RD_KAFKA_RESP_ERR_NO_ERROR && part->track.next >= 0) {
    rd_kafka_error_t *error = rd_kafka_seek_partitions(trigger->rk, l, 0);
    if (error) rd_kafka_error_destroy(error); /* resumed all the same */
  }
  rd_kafka_topic_partition_list_destroy(l);
  if (e != RD_KAFKA_RESP_ERR_NO_ERROR)
    IMP_LOG(IMP_LOG_WARN, "trigger %s: cannot %s partition %d: %s",
            trigger->spec->name, on ? "pause" : "resume", (int)part->id,
            rd_kafka_err2str(e));
  part->paused = on;
}

/* Starts the records the ordering allows. */
static void part_pump(part_t *part) {
  trigger_t *trigger = part->trigger;
  if (part->stopping || trigger->ordering == ORD_KEY) return;
  unsigned limit =
      trigger->ordering == ORD_PARTITION ? 1 : trigger->max_in_flight;
  /* Calls waiting in the function's queue cost a copy and a timer each and
   * help nobody: start only as many as keep it short, and be woken when
   * the function frees slots (imp_triggers_wake). */
  unsigned batch;
  imp_invoker_t *inv = trigger->triggers->env.invoker;
  long budget =
      inv->ops->queue_room(inv, trigger->spec->function, QUEUE_ROOM, &batch);
  /* With batches, each call the queue has room for carries `batch`
   * records; those in the batch being built have no slot yet. */
  trigger->batch_max = batch;
  if (batch > 1 && budget > 0)
    budget = budget * (long)batch - (long)trigger->bqn;
  while (part->active < limit && part->cursor < part->track.tail) {
    if (budget <= 0) {
      if (!trigger->waiting) inv->ops->want_room(inv, trigger->spec->function);
      trigger->waiting = 1;
      break;
    }
    if (part->cursor < part->track.head) {
      part->cursor = part->track.head;
      continue;
    }
    rec_t *rec = imp_track_at(&part->track, part->cursor++)->item;
    if (rec != NULL && rec->state == R_WAITING) {
      rec_start(rec);
      budget--;
    }
  }
}

static void part_check_resume(part_t *part) {
  trigger_t *trigger = part->trigger;
  if (part->paused && !part->stopping &&
      imp_track_len(&part->track) <= trigger->window / 2 &&
      part->bytes <= WINDOW_BYTES / 2)
    part_pause(part, 0);
}

/* Begins processing a record: invocation, or the dead-letter topic for a
 * record no function may see. Never finishes it synchronously. */
static void rec_start(rec_t *rec) {
  if (rec->state != R_ACTIVE) {
    rec->state = R_ACTIVE;
    rec->part->active++;
  }
  if (rec->undeliverable)
    rec_output(rec, PH_DLQ);
  else
    rec_invoke(rec);
}

/* Starts the next record of the finished record's key, or drops the key's
 * queue when nothing of that key is left. */
static void keyq_next(part_t *part, rec_t *rec) {
  keyq_t *k = rec->keyq;
  if (k == NULL) return;
  rec->keyq = NULL;
  if (k->busy == rec) k->busy = NULL;
  if (k->head != NULL && !part->stopping) {
    rec_t *next = k->head;
    k->head = next->knext;
    if (k->head == NULL) k->tail = NULL;
    next->knext = NULL;
    k->busy = next;
    rec_start(next);
  } else if (k->head == NULL && k->busy == NULL) {
    keyq_remove(part, k);
  }
}

/*
 * The record was invoked and its reply is handed to the producer: its
 * invocation slot (and its key, with ordering key) go to the next record
 * while the reply's delivery is awaited. Replies keep their order: the
 * producer is idempotent and a record's reply has its key. The record
 * still holds back the commit until rec_finish().
 */
static void rec_free_slot(rec_t *rec) {
  part_t *part = rec->part;
  if (rec->slot_freed || part == NULL || rec->state != R_ACTIVE) return;
  rec->slot_freed = 1;
  part->active--;
  part->replying++;
  if (rec->trigger->ordering == ORD_KEY) keyq_next(part, rec);
  part_pump(part);
}

/* The record's function succeeded (and the reply was written) or it was
 * dead-lettered: it no longer holds back its partition's commit. */
static void rec_finish(rec_t *rec) {
  part_t *part = rec->part;
  trigger_t *trigger = rec->trigger;
  attempt_delete(rec);
  imp_track_done(&part->track, rec->seq);
  part->pending--;
  part->bytes -= rec->klen + rec->vlen;
  rec->part = NULL;
  if (rec->slot_freed) {
    part->replying--;
  } else {
    part->active--;
    if (trigger->ordering == ORD_KEY) keyq_next(part, rec);
  }
  rec_maybe_free(rec);
  part_pump(part);
  part_check_resume(part);
  if (part->stopping) trigger_kick(trigger);
}

/* A record consumed from an assigned partition. */
static void on_record(trigger_t *trigger, const rd_kafka_message_t *msg) {
  int32_t id = msg->partition;
  part_t *part =
      id >= 0 && (size_t)id < trigger->nparts ? trigger->parts[id] : NULL;
  if (part == NULL || part->stopping) return; /* redelivered to its owner */
  if (part->track.next >= 0 && msg->offset < part->track.next)
    return; /* seen */
  if (msg->offset < part->skip_below) {
    /* The group restarted the partition below what this process finished
     * before (its commit was refused, or the partition was lost): those
     * records were handled; jump past them. */
    if (!part->skipping) {
      rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
      rd_kafka_topic_partition_list_add(l, trigger->spec->topic, id)->offset =
          part->skip_below;
      rd_kafka_error_t *error = rd_kafka_seek_partitions(trigger->rk, l, 0);
      if (error) rd_kafka_error_destroy(error); /* the records are skipped */
      rd_kafka_topic_partition_list_destroy(l);
      IMP_LOG(IMP_LOG_INFO,
              "trigger %s: partition %d restarts at %lld, "
              "below %lld handled here already: skipping to it",
              trigger->spec->name, (int)id, (long long)msg->offset,
              (long long)part->skip_below);
      part->skipping = 1;
      /* Committable at once: everything below was finished here. */
      if (part->track.next < part->skip_below)
        part->track.next = part->skip_below;
    }
    return;
  }
  /* A record that cannot be tracked cannot be skipped either: the next
   * one finishing would commit past it. Without memory, stop here; the
   * records not committed come again after the restart. */
  rec_t *rec = rec_new(trigger, msg);
  if (rec == NULL ||
      imp_track_push(&part->track, msg->offset, rec, &rec->seq) != 0) {
    IMP_LOG(IMP_LOG_ERROR, "trigger %s: out of memory for a record",
            trigger->spec->name);
    abort();
  }
  rec->part = part;
  attempt_lookup(part, rec);
  part->seen = 1;
  part->pending++;
  part->bytes += rec->klen + rec->vlen;
  trigger->received++;
  if (trigger->ordering == ORD_KEY) {
    keyq_t *k = keyq_get(part, rec);
    if (k == NULL) abort(); /* the record is tracked: it cannot be dropped */
    rec->keyq = k;
    if (k->busy == NULL && k->head == NULL) {
      k->busy = rec;
      rec_start(rec);
    } else if (k->tail) {
      k->tail->knext = rec;
      k->tail = rec;
    } else {
      k->head = k->tail = rec;
    }
  } else {
    part_pump(part);
  }
  /* Records wait in the window while max-in-flight of them run: pausing
   * at max-in-flight would drop librdkafka's prefetch and refetch it on
   * every resume. */
  if (!part->paused && (imp_track_len(&part->track) >= trigger->window ||
                        part->bytes >= WINDOW_BYTES))
    part_pause(part, 1);
}

/* ---- partitions -------------------------------------------------------------
 */

static part_t *part_get(trigger_t *trigger, int32_t id) {
  return id >= 0 && (size_t)id < trigger->nparts ? trigger->parts[id] : NULL;
}

static part_t *part_new(trigger_t *trigger, int32_t id) {
  if (id < 0 || id >= MAX_PARTITION_ID) return NULL;
  if ((size_t)id >= trigger->nparts) {
    size_t n = (size_t)id + 1 > trigger->nparts * 2 ? (size_t)id + 1
                                                    : trigger->nparts * 2;
    part_t **parts = realloc(trigger->parts, n * sizeof *parts);
    if (parts == NULL) return NULL;
    memset(parts + trigger->nparts, 0, (n - trigger->nparts) * sizeof *parts);
    trigger->parts = parts;
    trigger->nparts = n;
  }
  if (trigger->parts[id] != NULL) return trigger->parts[id];
  part_t *part = calloc(1, sizeof *part);
  if (part == NULL) return NULL;
  part->trigger = trigger;
  part->id = id;
  part->committed = part->commit_sent = -1;
  part->skip_below = (size_t)id < trigger->ndone ? trigger->done[id] : -1;
  imp_track_init(&part->track);
  /* Attempt counts of this partition's records from earlier runs. */
  imp_triggers_t *triggers = trigger->triggers;
  attempts_flush(triggers);
  char prefix[400];
  size_t plen = attempt_prefix(trigger, id, prefix);
  imp_store_scan(triggers->env.store, IMP_CF_ATTEMPTS, prefix, plen,
                 load_attempt, part);
  trigger->parts[id] = part;
  return part;
}

/* Nothing new starts; records waiting for a retry stop waiting. Records
 * whose invocation or produce is under way are let finish. */
static void part_stop(part_t *part) {
  if (part->stopping) return;
  part->stopping = 1;
  for (uint64_t s = part->track.head; s < part->track.tail; s++) {
    rec_t *rec = imp_track_at(&part->track, s)->item;
    if (rec != NULL && rec->state == R_ACTIVE && rec->in_backoff)
      rec_stall(rec);
  }
}

static void commit_add(rd_kafka_topic_partition_list_t *list, part_t *part) {
  int64_t lwm = imp_track_low_water(&part->track);
  if (lwm < 0 || lwm <= part->commit_sent) return;
  rd_kafka_topic_partition_list_add(list, part->trigger->spec->topic, part->id)
      ->offset = lwm;
  part->commit_sent = lwm;
}

/* Forgets the partition: records still under way are given up (their
 * callbacks only free them) and come again to whoever owns it next. */
static void part_release(part_t *part) {
  trigger_t *trigger = part->trigger;
  int64_t lwm = imp_track_low_water(&part->track);
  if (lwm < part->skip_below) lwm = part->skip_below;
  if (lwm >= 0 && (size_t)part->id >= trigger->ndone) {
    size_t n = (size_t)part->id + 1;
    int64_t *done = realloc(trigger->done, n * sizeof *done);
    if (done != NULL) {
      for (size_t i = trigger->ndone; i < n; i++) done[i] = -1;
      trigger->done = done;
      trigger->ndone = n;
    }
  }
  if (lwm >= 0 && (size_t)part->id < trigger->ndone)
    trigger->done[part->id] = lwm;
  if (part->paused && trigger->rk) part_pause(part, 0);
  for (uint64_t s = part->track.head; s < part->track.tail; s++) {
    rec_t *rec = imp_track_at(&part->track, s)->item;
    if (rec == NULL) continue;
    if (rec->in_backoff) uv_timer_stop(&rec->timer);
    rec->in_backoff = 0;
    rec->part = NULL;
    rec->keyq = NULL;
    rec_maybe_free(rec);
  }
  for (size_t i = 0; i < part->nkb; i++) {
    keyq_t *k = part->kb[i], *next;
    for (; k; k = next) {
      next = k->next;
      free(k);
    }
  }
  free(part->kb);
  for (size_t i = 0; i < part->natt; i++) free(part->att[i].error);
  free(part->att);
  imp_track_free(&part->track);
  trigger->parts[part->id] = NULL;
  free(part);
}

static void commit_async(trigger_t *trigger,
                         rd_kafka_topic_partition_list_t *list) {
  if (list->cnt == 0 || trigger->rk == NULL) return;
  rd_kafka_resp_err_t e = rd_kafka_commit(trigger->rk, list, 1);
  if (e != RD_KAFKA_RESP_ERR_NO_ERROR && e != RD_KAFKA_RESP_ERR__NO_OFFSET) {
    set_kafka_error(trigger, "commit: %s", rd_kafka_err2str(e));
    for (int i = 0; i < list->cnt; i++) {
      part_t *part = part_get(trigger, list->elems[i].partition);
      if (part) part->commit_sent = part->committed;
    }
  }
}

/* Commits every partition's low-water mark that moved. */
static void trigger_commit(trigger_t *trigger, int force) {
  if (trigger->rk == NULL || trigger->state >= T_CLOSING) return;
  if (!force && (trigger->hold_rebalance || trigger->hold_assigns > 0)) {
    if (imp_now_ms() < trigger->commit_hold_until) return;
    trigger->hold_rebalance = trigger->hold_assigns = 0; /* waited enough */
  }
  rd_kafka_topic_partition_list_t *list = NULL;
  for (size_t i = 0; i < trigger->nparts; i++) {
    part_t *part = trigger->parts[i];
    if (part == NULL) continue;
    int64_t lwm = imp_track_low_water(&part->track);
    if (lwm < 0 || lwm <= part->commit_sent) continue;
    if (list == NULL) list = rd_kafka_topic_partition_list_new(8);
    commit_add(list, part);
  }
  if (list == NULL) return;
  commit_async(trigger, list);
  rd_kafka_topic_partition_list_destroy(list);
}

/* Releases the listed partitions (or all when list is NULL), committing
 * their low-water marks unless `lost`. */
static void release_parts(trigger_t *trigger,
                          const rd_kafka_topic_partition_list_t *which,
                          int lost) {
  rd_kafka_topic_partition_list_t *commit =
      rd_kafka_topic_partition_list_new(8);
  for (size_t i = 0; i < trigger->nparts; i++) {
    part_t *part = trigger->parts[i];
    if (part == NULL) continue;
    if (which != NULL && rd_kafka_topic_partition_list_find(
                             which, trigger->spec->topic, part->id) == NULL)
      continue;
    if (!lost) commit_add(commit, part);
    part_release(part);
  }
  if (!lost) commit_async(trigger, commit);
  rd_kafka_topic_partition_list_destroy(commit);
  attempts_flush(trigger->triggers);
}

static unsigned busy_in(trigger_t *trigger,
                        const rd_kafka_topic_partition_list_t *which) {
  unsigned n = 0;
  for (size_t i = 0; i < trigger->nparts; i++) {
    part_t *part = trigger->parts[i];
    if (part == NULL) continue;
    if (which != NULL && rd_kafka_topic_partition_list_find(
                             which, trigger->spec->topic, part->id) == NULL)
      continue;
    n += part->active + part->replying;
  }
  return n;
}

/* ---- the consumer ----------------------------------------------------------
 */

static int is_cooperative(rd_kafka_t *rk) {
  const char *p = rd_kafka_rebalance_protocol(rk);
  return p != NULL && strcmp(p, "COOPERATIVE") == 0;
}

static void unassign(trigger_t *trigger,
                     const rd_kafka_topic_partition_list_t *list) {
  rd_kafka_error_t *error = NULL;
  rd_kafka_resp_err_t e = RD_KAFKA_RESP_ERR_NO_ERROR;
  if (is_cooperative(trigger->rk))
    error = rd_kafka_incremental_unassign(trigger->rk, list);
  else
    e = rd_kafka_assign(trigger->rk, NULL);
  if (error != NULL) {
    IMP_LOG(IMP_LOG_WARN, "trigger %s: unassign: %s", trigger->spec->name,
            rd_kafka_error_string(error));
    rd_kafka_error_destroy(error);
  } else if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
    IMP_LOG(IMP_LOG_WARN, "trigger %s: unassign: %s", trigger->spec->name,
            rd_kafka_err2str(e));
  }
}

/*
 * Rebalance, served by the drain on the loop thread. Revoked partitions
 * stop taking records; their invocations under way may finish (bounded by
 * REVOKE_WAIT_MS), then their low-water marks are committed and only then
 * are they unassigned (trigger_progress), so the next owner starts where
 * this one finished. Lost partitions are dropped at once: another member
 * owns them already and a commit would be refused.
 */
static void on_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts, void *opaque) {
  trigger_t *trigger = opaque;
  int coop = is_cooperative(rk);
  trigger->hold_rebalance = 0; /* this rebalance is over */
  if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
    if (trigger->hold_assigns > 0) trigger->hold_assigns--;
    if (trigger->state == T_RUNNING)
      for (int i = 0; i < parts->cnt; i++)
        if (strcmp(parts->elems[i].topic, trigger->spec->topic) == 0 &&
            part_new(trigger, parts->elems[i].partition) == NULL)
          IMP_LOG(IMP_LOG_ERROR, "trigger %s: cannot track partition %d",
                  trigger->spec->name, (int)parts->elems[i].partition);
    trigger->assigned = 1;
    rd_kafka_error_t *error = NULL;
    rd_kafka_resp_err_t e = RD_KAFKA_RESP_ERR_NO_ERROR;
    if (coop)
      error = rd_kafka_incremental_assign(rk, parts);
    else
      e = rd_kafka_assign(rk, parts);
    if (error) {
      set_kafka_error(trigger, "assign: %s", rd_kafka_error_string(error));
      rd_kafka_error_destroy(error);
    } else if (e) {
      set_kafka_error(trigger, "assign: %s", rd_kafka_err2str(e));
    }
    if (parts->cnt > 0 && trigger->adminq != NULL) {
      /* The group's committed offsets, for describe, without blocking. */
      rd_kafka_ListConsumerGroupOffsets_t *req =
          rd_kafka_ListConsumerGroupOffsets_new(trigger->spec->group, parts);
      rd_kafka_ListConsumerGroupOffsets(rk, &req, 1, NULL, trigger->adminq);
      rd_kafka_ListConsumerGroupOffsets_destroy(req);
    }
    IMP_LOG(IMP_LOG_INFO, "trigger %s: assigned %d partition%s of %s",
            trigger->spec->name, parts->cnt, parts->cnt == 1 ? "" : "s",
            trigger->spec->topic);
    return;
  }
  int lost = err != RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS ||
             rd_kafka_assignment_lost(rk);
  if (err != RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS)
    set_kafka_error(trigger, "rebalance failed: %s", rd_kafka_err2str(err));
  IMP_LOG(IMP_LOG_INFO, "trigger %s: %s %d partition%s of %s",
          trigger->spec->name, lost ? "lost" : "revoked", parts->cnt,
          parts->cnt == 1 ? "" : "s", trigger->spec->topic);
  if (lost) trigger->hold_assigns = 0;
  if (lost || trigger->state >= T_CLOSING) {
    release_parts(trigger, parts, lost);
    unassign(trigger, parts);
    return;
  }
  for (int i = 0; i < parts->cnt; i++) {
    part_t *part = part_get(trigger, parts->elems[i].partition);
    if (part) part_stop(part);
  }
  if (trigger->revoking) { /* not expected: one rebalance at a time */
    release_parts(trigger, trigger->revoking, 0);
    unassign(trigger, trigger->revoking);
    rd_kafka_topic_partition_list_destroy(trigger->revoking);
  }
  trigger->revoking = rd_kafka_topic_partition_list_copy(parts);
  trigger->revoke_deadline = imp_now_ms() + REVOKE_WAIT_MS;
  trigger_kick(trigger);
}

static void on_commit(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                      rd_kafka_topic_partition_list_t *offsets, void *opaque) {
  trigger_t *trigger = opaque;
  (void)rk;
  if (err == RD_KAFKA_RESP_ERR__NO_OFFSET) return;
  int rebalancing = err == RD_KAFKA_RESP_ERR_REBALANCE_IN_PROGRESS;
  for (int i = 0; offsets && i < offsets->cnt; i++)
    if (offsets->elems[i].err == RD_KAFKA_RESP_ERR_REBALANCE_IN_PROGRESS)
      rebalancing = 1;
  if (rebalancing) {
    /*
     * The group coordinator refuses commits while it rebalances (a real
     * broker takes them with the current generation; the embedded cluster
     * does not). Committing again with the generation that is about to
     * end gets ILLEGAL_GENERATION, and librdkafka then treats the whole
     * assignment as lost, so all the work since the last commit would be
     * done again. Hold the periodic commits until the rebalance callback
     * says it is over; the revoke path commits the revoked partitions.
     */
    trigger->hold_rebalance = 1;
    trigger->commit_hold_until = imp_now_ms() + COMMIT_HOLD_MS;
    IMP_LOG(IMP_LOG_DEBUG, "trigger %s: group rebalancing: commits held",
            trigger->spec->name);
  } else if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    set_kafka_error(trigger, "commit: %s", rd_kafka_err2str(err));
  }
  for (int i = 0; offsets && i < offsets->cnt; i++) {
    part_t *part = part_get(trigger, offsets->elems[i].partition);
    if (part == NULL) continue;
    if (err == 0 && offsets->elems[i].err == 0) {
      if (offsets->elems[i].offset > part->committed)
        part->committed = offsets->elems[i].offset;
    } else if (part->commit_sent == offsets->elems[i].offset) {
      part->commit_sent = part->committed; /* tried again next tick */
    }
  }
}

static void on_consumer_error(rd_kafka_t *rk, int err, const char *reason,
                              void *opaque) {
  trigger_t *trigger = opaque;
  if (err == RD_KAFKA_RESP_ERR__FATAL) {
    char why[256];
    rd_kafka_fatal_error(rk, why, sizeof why);
    set_kafka_error(trigger, "consumer failed: %s", why);
    return;
  }
  set_kafka_error(trigger, "%s", reason);
}

/* Committed offsets of partitions just assigned (describe shows them until
 * this server commits its own). */
static void on_admin_event(trigger_t *trigger, rd_kafka_event_t *ev) {
  if (rd_kafka_event_type(ev) != RD_KAFKA_EVENT_LISTCONSUMERGROUPOFFSETS_RESULT)
    return;
  if (rd_kafka_event_error(ev) != RD_KAFKA_RESP_ERR_NO_ERROR) {
    IMP_LOG(IMP_LOG_DEBUG, "trigger %s: committed offsets: %s",
            trigger->spec->name, rd_kafka_event_error_string(ev));
    return;
  }
  const rd_kafka_ListConsumerGroupOffsets_result_t *res =
      rd_kafka_event_ListConsumerGroupOffsets_result(ev);
  size_t n = 0;
  const rd_kafka_group_result_t **groups =
      rd_kafka_ListConsumerGroupOffsets_result_groups(res, &n);
  for (size_t g = 0; g < n; g++) {
    const rd_kafka_topic_partition_list_t *l =
        rd_kafka_group_result_partitions(groups[g]);
    for (int i = 0; l && i < l->cnt; i++) {
      part_t *part = part_get(trigger, l->elems[i].partition);
      if (part == NULL || l->elems[i].err || l->elems[i].offset < 0) continue;
      if (l->elems[i].offset > part->committed)
        part->committed = l->elems[i].offset;
      if (l->elems[i].offset > part->commit_sent)
        part->commit_sent = l->elems[i].offset;
    }
  }
}

/*
 * Serves the queue rd_kafka_consumer_close_queue() reports on. The
 * consumer's own queue is forwarded there, records it still held
 * included, so it is polled as events (rd_kafka_queue_poll_callback()
 * asserts on a record): callbacks run, records are dropped (uncommitted,
 * they come again), a rebalance handed back as an event is served here.
 */
static void close_queue_drain(trigger_t *trigger) {
  rd_kafka_event_t *ev;
  while (trigger->closeq != NULL &&
         (ev = rd_kafka_queue_poll(trigger->closeq, 0)) != NULL) {
    if (rd_kafka_event_type(ev) == RD_KAFKA_EVENT_REBALANCE) {
      rd_kafka_topic_partition_list_t *l =
          rd_kafka_event_topic_partition_list(ev);
      if (l != NULL)
        on_rebalance(trigger->rk, rd_kafka_event_error(ev), l, trigger);
    }
    rd_kafka_event_destroy(ev);
  }
}

/* Drains the consumer queue (bounded per wake-up) and moves stop and
 * revoke along. */
static void trigger_service(trigger_t *trigger) {
  if (trigger->state == T_CLOSED) return;
  trigger->refs++; /* a callback below may drop the last other reference */
  if (trigger->ordering == ORD_KEY) { /* part_pump() does it otherwise */
    imp_invoker_t *inv = trigger->triggers->env.invoker;
    inv->ops->queue_room(inv, trigger->spec->function, 0, &trigger->batch_max);
  }
  if (trigger->repump && trigger->state == T_RUNNING) {
    trigger->repump = 0;
    for (size_t i = 0; i < trigger->nparts; i++)
      if (trigger->parts[i] != NULL) part_pump(trigger->parts[i]);
  }
  if (trigger->rk != NULL && trigger->state < T_CLOSING) {
    int n = 0;
    rd_kafka_message_t *msg;
    while (n < DRAIN_BATCH &&
           (msg = rd_kafka_consumer_poll(trigger->rk, 0)) != NULL) {
      n++;
      if (msg->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        if (trigger->state == T_RUNNING) on_record(trigger, msg);
      } else if (msg->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
        set_kafka_error(trigger, "%s", rd_kafka_message_errstr(msg));
      }
      rd_kafka_message_destroy(msg);
      if (trigger->state >= T_CLOSING) break;
    }
    if (n == DRAIN_BATCH) trigger_kick(trigger);
  }
  rd_kafka_event_t *ev;
  while (trigger->adminq != NULL &&
         (ev = rd_kafka_queue_poll(trigger->adminq, 0)) != NULL) {
    on_admin_event(trigger, ev);
    rd_kafka_event_destroy(ev);
  }
  if (trigger->closeq != NULL && trigger->state == T_CLOSING)
    close_queue_drain(trigger);
  trigger_progress(trigger);
  trigger_unref(trigger);
}

static void on_consumer_events(void *arg) {
  trigger_service(arg);
}

static void on_more(uv_timer_t *t) {
  trigger_service(IMP_CONTAINER_OF(t, trigger_t, more));
}

/* Services the trigger on the next loop turn. */
static void trigger_kick(trigger_t *trigger) {
  if (trigger->state != T_CLOSED &&
      !uv_is_active((uv_handle_t *)&trigger->more))
    uv_timer_start(&trigger->more, on_more, 0, 0);
}

static void on_tick(uv_timer_t *t) {
  trigger_t *trigger = IMP_CONTAINER_OF(t, trigger_t, tick);
  /* A wake-up can be missed (slots freed by a crash or a timeout): look
   * again at least every tick. */
  if (trigger->waiting) {
    trigger->waiting = 0;
    trigger->repump = 1;
  }
  trigger_commit(trigger, 0);
  trigger_service(trigger);
}

/* Whether the user set a librdkafka property with --kafka-opt. */
static int user_set(const imp_triggers_env_t *env, const char *name) {
  size_t n = strlen(name);
  for (size_t i = 0; i < env->nkafka_props; i++)
    if (strncmp(env->kafka_props[i], name, n) == 0 &&
        env->kafka_props[i][n] == '=')
      return 1;
  return 0;
}

/* Creates the consumer (not subscribed yet). 0, or negative with err. */
static int consumer_open(trigger_t *trigger, char *err, size_t errlen) {
  const imp_triggers_env_t *env = &trigger->triggers->env;
  Impulse__TriggerSpec *spec = trigger->spec;
  if (env->kafka == NULL) {
    snprintf(err, errlen, "no Kafka connection");
    return -ENOTCONN;
  }
  rd_kafka_conf_t *conf = imp_kafka_conf(env->kafka, err, errlen);
  if (conf == NULL) return -EINVAL;
  char client_id[100];
  snprintf(client_id, sizeof client_id, "impulse-trigger-%s", spec->name);
  int embedded = imp_kafka_is_embedded(env->kafka);
  /* Ours always: the broker depends on them. */
  /* clang-format off */
  const char *fixed[] = {
      "group.id", spec->group,
      "enable.auto.commit", "false",
      "enable.auto.offset.store", "false",
      "enable.partition.eof", "false",
      "auto.offset.reset", spec->from,
      NULL};
  /* Defaults the user may override with --kafka-opt. The embedded cluster
   * answers an empty Fetch only after the full fetch.wait.max.ms, so it
   * gets a few ms; a real cluster answers as soon as data arrives. */
  const char *defaults[] = {
      "client.id", client_id,
      "partition.assignment.strategy", "cooperative-sticky",
      "session.timeout.ms", "6000",
      "heartbeat.interval.ms", "500",
      "fetch.wait.max.ms", embedded ? "5" : "100",
      NULL};
  /* clang-format on */
  char why[256];
  for (size_t i = 0; fixed[i]; i += 2)
    if (rd_kafka_conf_set(conf, fixed[i], fixed[i + 1], why, sizeof why) !=
        RD_KAFKA_CONF_OK) {
      snprintf(err, errlen, "%s=%s: %s", fixed[i], fixed[i + 1], why);
      rd_kafka_conf_destroy(conf);
      return -EINVAL;
    }
  for (size_t i = 0; defaults[i]; i += 2)
    if (!user_set(env, defaults[i]) &&
        rd_kafka_conf_set(conf, defaults[i], defaults[i + 1], why,
                          sizeof why) != RD_KAFKA_CONF_OK) {
      snprintf(err, errlen, "%s=%s: %s", defaults[i], defaults[i + 1], why);
      rd_kafka_conf_destroy(conf);
      return -EINVAL;
    }
  rd_kafka_conf_set_opaque(conf, trigger);
  rd_kafka_conf_set_rebalance_cb(conf, on_rebalance);
  rd_kafka_conf_set_offset_commit_cb(conf, on_commit);
  rd_kafka_conf_set_error_cb(conf, on_consumer_error);
  rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, why, sizeof why);
  if (rk == NULL) {
    rd_kafka_conf_destroy(conf);
    snprintf(err, errlen, "cannot create the consumer: %s", why);
    return -EINVAL;
  }
  rd_kafka_poll_set_consumer(rk);
  trigger->rk = rk;
  trigger->cq = rd_kafka_queue_get_consumer(rk);
  trigger->watch =
      imp_kafka_watch(env->loop, trigger->cq, on_consumer_events, trigger);
  trigger->adminq = rd_kafka_queue_new(rk);
  trigger->admin_watch =
      imp_kafka_watch(env->loop, trigger->adminq, on_consumer_events, trigger);
  if (trigger->cq == NULL || trigger->watch == NULL ||
      trigger->admin_watch == NULL) {
    snprintf(err, errlen, "cannot watch the consumer's queues");
    return -ENOMEM;
  }
  return 0;
}

static int consumer_subscribe(trigger_t *trigger, char *err, size_t errlen) {
  rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
  rd_kafka_topic_partition_list_add(l, trigger->spec->topic,
                                    RD_KAFKA_PARTITION_UA);
  rd_kafka_resp_err_t e = rd_kafka_subscribe(trigger->rk, l);
  rd_kafka_topic_partition_list_destroy(l);
  if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
    snprintf(err, errlen, "cannot subscribe to %s: %s", trigger->spec->topic,
             rd_kafka_err2str(e));
    return -EIO;
  }
  return 0;
}

/* Destroys the consumer: it has left its group, or the wait for that is
 * over. librdkafka then joins its threads, which takes a few ms. */
static void consumer_destroy(trigger_t *trigger) {
  imp_kafka_unwatch(trigger->watch);
  imp_kafka_unwatch(trigger->close_watch);
  imp_kafka_unwatch(trigger->admin_watch);
  trigger->watch = trigger->close_watch = trigger->admin_watch = NULL;
  if (trigger->closeq) rd_kafka_queue_destroy(trigger->closeq);
  if (trigger->cq) rd_kafka_queue_destroy(trigger->cq);
  if (trigger->adminq) rd_kafka_queue_destroy(trigger->adminq);
  trigger->closeq = trigger->cq = trigger->adminq = NULL;
  if (trigger->rk == NULL) return;
  if (rd_kafka_consumer_closed(trigger->rk))
    rd_kafka_destroy(trigger->rk);
  else
    rd_kafka_destroy_flags(trigger->rk, RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
  trigger->rk = NULL;
}

/* ---- triggers -------------------------------------------------------------
 */

static void on_trigger_handle_closed(uv_handle_t *h) {
  trigger_unref(h->data);
}

static void trigger_unref(trigger_t *trigger) {
  if (trigger->refs <= 0) abort(); /* refcount underflow is a bug */
  if (--trigger->refs > 0) return;
  imp_triggers_t *triggers = trigger->triggers;
  impulse__trigger_spec__free_unpacked(trigger->spec, NULL);
  free(trigger->bq);
  free(trigger->parts);
  free(trigger->done);
  free(trigger);
  triggers_unref(triggers);
}

/* A trigger for `spec` (taken), in the list, consumer not started. */
static trigger_t *trigger_new(imp_triggers_t *triggers,
                              Impulse__TriggerSpec *spec) {
  trigger_t *trigger = calloc(1, sizeof *trigger);
  if (trigger == NULL) abort();
  trigger->triggers = triggers;
  triggers->refs++;
  trigger->spec = spec;
  trigger->ordering =
      ordering_of(spec->ordering ? spec->ordering : DEF_ORDERING);
  trigger->max_in_flight = spec->has_max_in_flight && spec->max_in_flight
                               ? spec->max_in_flight
                               : DEF_MAX_IN_FLIGHT;
  trigger->max_retries =
      spec->has_max_retries ? spec->max_retries : DEF_MAX_RETRIES;
  trigger->backoff_initial =
      spec->has_backoff_initial_ms && spec->backoff_initial_ms
          ? spec->backoff_initial_ms
          : DEF_BACKOFF_INITIAL;
  trigger->backoff_max = spec->has_backoff_max_ms && spec->backoff_max_ms
                             ? spec->backoff_max_ms
                             : DEF_BACKOFF_MAX;
  if (trigger->backoff_max < trigger->backoff_initial)
    trigger->backoff_max = trigger->backoff_initial;
  unsigned w = trigger->max_in_flight * 64;
  trigger->window = w < 4096 ? 4096 : w > 65536 ? 65536 : w;
  imp_ce_record_source(spec->topic, trigger->ce_source,
                       sizeof trigger->ce_source);
  imp_ce_reply_source(spec->function, trigger->reply_source,
                      sizeof trigger->reply_source);
  trigger->refs = 3; /* the list + two timers */
  uv_loop_t *loop = triggers->env.loop;
  uv_timer_init(loop, &trigger->tick);
  uv_timer_init(loop, &trigger->more);
  trigger->tick.data = trigger->more.data = trigger;
  /* Never keep the loop alive: the server's own handles do. */
  uv_unref((uv_handle_t *)&trigger->tick);
  uv_unref((uv_handle_t *)&trigger->more);
  uv_timer_start(&trigger->tick, on_tick, TICK_MS, TICK_MS);
  trigger->next = &triggers->list;
  trigger->prev = triggers->list.prev;
  triggers->list.prev->next = trigger;
  triggers->list.prev = trigger;
  return trigger;
}

/* Ensures the topics a trigger reads and writes exist. */
static int ensure_topics(imp_triggers_t *triggers,
                         const Impulse__TriggerSpec *spec, char *err,
                         size_t errlen) {
  imp_kafka_t *kafka = triggers->env.kafka;
  const char *topics[] = {spec->topic, spec->dlq, spec->reply_topic};
  for (size_t i = 0; i < IMP_ARRAY_SIZE(topics); i++) {
    if (topics[i] == NULL) continue;
    char why[256];
    int rc = imp_kafka_ensure_topic(kafka, topics[i], 0, why, sizeof why);
    if (rc != 0) {
      snprintf(err, errlen, "topic %s: %s", topics[i], why);
      return rc;
    }
  }
  return 0;
}

/* Starts consuming; on failure the trigger stays, showing the error. */
static int trigger_start(trigger_t *trigger, char *err, size_t errlen) {
  int rc = consumer_open(trigger, err, errlen);
  if (rc == 0) rc = consumer_subscribe(trigger, err, errlen);
  if (rc != 0) set_kafka_error(trigger, "%s", err);
  return rc;
}

/* Begins stopping: records stop starting; what is under way may finish for
 * drain_ms; then offsets are committed and the consumer leaves its group
 * (at most close_ms more). */
static void trigger_stop(trigger_t *trigger, unsigned drain_ms,
                         unsigned close_ms) {
  if (trigger->state != T_RUNNING) return;
  trigger->state = T_DRAINING;
  uint64_t now = imp_now_ms();
  trigger->drain_deadline = now + drain_ms;
  trigger->close_deadline = now + drain_ms + close_ms;
  for (size_t i = 0; i < trigger->nparts; i++)
    if (trigger->parts[i]) part_stop(trigger->parts[i]);
  trigger_kick(trigger);
}

static void trigger_closed(trigger_t *trigger) {
  trigger->state = T_CLOSED;
  release_parts(trigger, NULL, 1);
  if (trigger->revoking)
    rd_kafka_topic_partition_list_destroy(trigger->revoking);
  trigger->revoking = NULL;
  consumer_destroy(trigger);
  uv_timer_stop(&trigger->tick);
  uv_timer_stop(&trigger->more);
  IMP_LOG(IMP_LOG_INFO,
          "trigger %s stopped (received %llu, handled %llu, "
          "dead-lettered %llu)",
          trigger->spec->name, (unsigned long long)trigger->received,
          (unsigned long long)trigger->handled,
          (unsigned long long)trigger->dead_lettered);
  if (trigger->del_rpc) {
    Impulse__Envelope r = IMPULSE__ENVELOPE__INIT;
    Impulse__TriggerDeleteResponse ok = IMPULSE__TRIGGER_DELETE_RESPONSE__INIT;
    r.body_case = IMPULSE__ENVELOPE__BODY_TRIGGER_DELETE_OK;
    r.trigger_delete_ok = &ok;
    imp_rpc_t *rpc = trigger->del_rpc;
    trigger->del_rpc = NULL;
    imp_rpc_reply(rpc, &r);
  }
  if (trigger->removed) {
    /* Out of the list; the handles hold the last references. */
    trigger->next->prev = trigger->prev;
    trigger->prev->next = trigger->next;
    trigger->next = trigger->prev = trigger;
    uv_close((uv_handle_t *)&trigger->tick, on_trigger_handle_closed);
    uv_close((uv_handle_t *)&trigger->more, on_trigger_handle_closed);
    trigger_unref(trigger);
  }
}

/* Moves a revoke or a stop along once what it waits for is done or its
 * time is up. */
static void trigger_progress(trigger_t *trigger) {
  uint64_t now = imp_now_ms();
  if (trigger->revoking != NULL &&
      (busy_in(trigger, trigger->revoking) == 0 ||
       now >= trigger->revoke_deadline || trigger->state != T_RUNNING)) {
    release_parts(trigger, trigger->revoking, 0);
    /* The partitions kept are committed too, now: once unassigned, the
     * consumer rejoins for a follow-up rebalance, and a commit that meets
     * the generation changing under it is refused with ILLEGAL_GENERATION,
     * which makes librdkafka drop the whole assignment as lost. So the
     * periodic commits wait for that round to end: one assign callback
     * right after the unassign, one when the round completes (bounded). */
    trigger_commit(trigger, 1);
    unassign(trigger, trigger->revoking);
    rd_kafka_topic_partition_list_destroy(trigger->revoking);
    trigger->revoking = NULL;
    if (trigger->rk && is_cooperative(trigger->rk)) {
      trigger->hold_assigns = 2;
      trigger->commit_hold_until = now + COMMIT_HOLD_MS;
    }
  }
  if (trigger->state == T_DRAINING &&
      (busy_in(trigger, NULL) == 0 || now >= trigger->drain_deadline)) {
    if (busy_in(trigger, NULL) > 0)
      IMP_LOG(IMP_LOG_WARN,
              "trigger %s: %u invocations still under way are "
              "given up (their records come again)",
              trigger->spec->name, busy_in(trigger, NULL));
    release_parts(trigger, NULL, 0);
    if (trigger->rk == NULL) {
      trigger_closed(trigger);
      return;
    }
    trigger->state = T_CLOSING;
    trigger->closeq = rd_kafka_queue_new(trigger->rk);
    trigger->close_watch =
        imp_kafka_watch(trigger->triggers->env.loop, trigger->closeq,
                        on_consumer_events, trigger);
    rd_kafka_error_t *error =
        rd_kafka_consumer_close_queue(trigger->rk, trigger->closeq);
    if (error != NULL) {
      IMP_LOG(IMP_LOG_WARN, "trigger %s: close: %s", trigger->spec->name,
              rd_kafka_error_string(error));
      rd_kafka_error_destroy(error);
      trigger_closed(trigger);
      return;
    }
  }
  if (trigger->state == T_CLOSING) {
    close_queue_drain(trigger);
    if (rd_kafka_consumer_closed(trigger->rk)) {
      trigger_closed(trigger);
    } else if (now >= trigger->close_deadline) {
      IMP_LOG(IMP_LOG_WARN,
              "trigger %s: the consumer did not leave its group "
              "in time",
              trigger->spec->name);
      trigger_closed(trigger);
    }
  }
}

static trigger_t *trigger_find(imp_triggers_t *triggers, const char *name) {
  for (trigger_t *t = triggers->list.next; t != &triggers->list; t = t->next)
    if (!t->removed && strcmp(t->spec->name, name) == 0) return t;
  return NULL;
}

/* ---- the broker -------------------------------------------------------------
 */

static int restore_one(void *arg, const char *k, size_t kl, const char *v,
                       size_t vl) {
  imp_triggers_t *triggers = arg;
  Impulse__TriggerSpec *spec =
      impulse__trigger_spec__unpack(NULL, vl, (const uint8_t *)v);
  if (spec == NULL) {
    IMP_LOG(IMP_LOG_ERROR, "restore: undecodable trigger record (%.*s)",
            (int)kl, k);
    return 0;
  }
  trigger_t *trigger = trigger_new(triggers, spec);
  char err[512];
  if (triggers->env.kafka == NULL) {
    set_kafka_error(trigger, "no Kafka connection");
    return 0;
  }
  /* The embedded cluster starts empty: its topics are made again (at
   * once, in-process). An external cluster has them since the trigger was
   * created; asking it here could hold the server's start for seconds per
   * topic while it is unreachable. */
  if (imp_kafka_is_embedded(triggers->env.kafka) &&
      ensure_topics(triggers, spec, err, sizeof err) != 0)
    set_kafka_error(trigger, "%s", err); /* the consumer waits for it */
  if (trigger_start(trigger, err, sizeof err) != 0) return 0;
  IMP_LOG(IMP_LOG_DEBUG, "restored trigger %s (%s -> %s)", spec->name,
          spec->topic, spec->function);
  return 0;
}

/* Trigger families, one pass over the triggers per family so that each
 * family's samples stay together. */
typedef struct trig_pass_s {
  imp_metrics_writer_t *w;
  int which;
} trig_pass_t;

enum {
  TP_LAG,
  TP_IN_FLIGHT,
  TP_RECEIVED,
  TP_HANDLED,
  TP_RETRIES,
  TP_DLQ,
  TP_COMMITTED,
  TP_BATCHES,
  TP_BATCHED,
  TP_COUNT
};

static const struct {
  const char *name;
  imp_metric_type_t type;
  const char *help;
} trig_families[TP_COUNT] = {
    {"impulse_trigger_lag", IMP_METRIC_GAUGE,
     "Records behind the committed offset, over the partitions this server "
     "holds."},
    {"impulse_trigger_in_flight", IMP_METRIC_GAUGE,
     "Invocations of the trigger running or awaiting their reply."},
    {"impulse_trigger_received_total", IMP_METRIC_COUNTER,
     "Records consumed by the trigger."},
    {"impulse_trigger_handled_total", IMP_METRIC_COUNTER,
     "Records whose invocation succeeded."},
    {"impulse_trigger_retries_total", IMP_METRIC_COUNTER,
     "Retry attempts made for failed invocations."},
    {"impulse_trigger_dead_lettered_total", IMP_METRIC_COUNTER,
     "Records written to the dead-letter topic."},
    {"impulse_trigger_committed_offset", IMP_METRIC_GAUGE,
     "Offset committed for each partition this server holds."},
    {"impulse_trigger_batches_total", IMP_METRIC_COUNTER,
     "Record batches sent to the function (one call each)."},
    {"impulse_trigger_batched_records_total", IMP_METRIC_COUNTER,
     "Records those batches carried."},
};

static void trig_sample(void *arg, const Impulse__TriggerInfo *info) {
  trig_pass_t *tp = arg;
  const char *name = trig_families[tp->which].name;
  imp_label_t l[2] = {{"trigger", info->spec->name}, {"partition", NULL}};
  int64_t lag = 0;
  switch (tp->which) {
    case TP_LAG:
      for (size_t i = 0; i < info->n_partitions; i++)
        lag += info->partitions[i]->lag;
      imp_metrics_sample(tp->w, name, l, 1, (double)lag);
      break;
    case TP_IN_FLIGHT:
      imp_metrics_sample(tp->w, name, l, 1, info->in_flight);
      break;
    case TP_RECEIVED:
      imp_metrics_sample_u64(tp->w, name, l, 1, info->received);
      break;
    case TP_HANDLED:
      imp_metrics_sample_u64(tp->w, name, l, 1, info->handled);
      break;
    case TP_RETRIES:
      imp_metrics_sample_u64(tp->w, name, l, 1, info->retried);
      break;
    case TP_DLQ:
      imp_metrics_sample_u64(tp->w, name, l, 1, info->dead_lettered);
      break;
    case TP_BATCHES:
      imp_metrics_sample_u64(tp->w, name, l, 1, info->batches);
      break;
    case TP_BATCHED:
      imp_metrics_sample_u64(tp->w, name, l, 1, info->batched);
      break;
    case TP_COMMITTED:
      for (size_t i = 0; i < info->n_partitions; i++) {
        const Impulse__PartitionInfo *p = info->partitions[i];
        if (p->committed < 0) continue; /* nothing committed yet */
        char part[16];
        snprintf(part, sizeof part, "%d", (int)p->partition);
        l[1].value = part;
        imp_metrics_sample(tp->w, name, l, 2, (double)p->committed);
      }
      break;
  }
}

static void collect_triggers(imp_metrics_writer_t *w, void *arg) {
  imp_triggers_t *triggers = arg;
  for (int f = 0; f < TP_COUNT; f++) {
    imp_metrics_family(w, trig_families[f].name, trig_families[f].type,
                       trig_families[f].help);
    trig_pass_t tp = {w, f};
    imp_triggers_foreach(triggers, trig_sample, &tp);
  }
}

/* The broker's woken: `function` freed slots (see part_pump). */
static void on_room(void *arg, const char *function) {
  imp_triggers_t *triggers = arg;
  for (trigger_t *t = triggers->list.next; t != &triggers->list; t = t->next)
    if (t->waiting && strcmp(t->spec->function, function) == 0) {
      t->waiting = 0;
      t->repump = 1;
      trigger_kick(t);
    }
}

int imp_triggers_open(const imp_triggers_env_t *env, imp_triggers_t **out) {
  imp_triggers_t *triggers = calloc(1, sizeof *triggers);
  if (triggers == NULL) return -ENOMEM;
  triggers->env = *env;
  triggers->refs = 1;
  triggers->list.next = triggers->list.prev = &triggers->list;
  triggers->batch = imp_batch_new();
  triggers->rng = imp_now_ns() | 1;
  imp_ce_clock_init(&triggers->clock);
  uv_check_init(env->loop, &triggers->flush);
  uv_check_start(&triggers->flush, on_flush_check);
  uv_unref((uv_handle_t *)&triggers->flush);
  triggers->flush_open = 1;
  uv_idle_init(env->loop, &triggers->bq_idle);
  triggers->bq_idle_open = 1;
  env->cl->before_flush = batches_flush;
  env->cl->before_flush_arg = triggers;
  env->invoker->on_room = on_room;
  env->invoker->on_room_arg = triggers;
  if (env->metrics != NULL &&
      imp_metrics_register(env->metrics, collect_triggers, triggers) != 0)
    IMP_LOG(IMP_LOG_WARN, "no room for the trigger metrics");
  int rc = imp_store_scan(env->store, IMP_CF_TRIGGERS, NULL, 0, restore_one,
                          triggers);
  unsigned n = 0;
  for (trigger_t *t = triggers->list.next; t != &triggers->list; t = t->next)
    n++;
  if (n) IMP_LOG(IMP_LOG_INFO, "restored %u trigger%s", n, n == 1 ? "" : "s");
  *out = triggers;
  return rc;
}

void imp_triggers_close(imp_triggers_t *triggers, int timeout_ms) {
  if (triggers == NULL || triggers->closing) return;
  triggers->closing = 1;
  unsigned t = timeout_ms > 0 ? (unsigned)timeout_ms : 0;
  /* Calls under way get most of the time; leaving the group is quick. */
  unsigned drain = t / 2, close = t - drain;
  if (close > CLOSE_WAIT_MS) close = CLOSE_WAIT_MS;
  for (trigger_t *tr = triggers->list.next; tr != &triggers->list;
       tr = tr->next)
    trigger_stop(tr, drain, close);
}

int imp_triggers_closed(const imp_triggers_t *triggers) {
  if (triggers == NULL) return 1;
  if (!triggers->closing) return 0;
  for (const trigger_t *t = triggers->list.next; t != &triggers->list;
       t = t->next)
    if (t->state != T_CLOSED) return 0;
  return 1;
}

static void on_flush_closed(uv_handle_t *h) {
  triggers_unref(IMP_CONTAINER_OF(h, imp_triggers_t, flush));
}

static void on_bq_idle_closed(uv_handle_t *h) {
  triggers_unref(IMP_CONTAINER_OF(h, imp_triggers_t, bq_idle));
}

void imp_triggers_free(imp_triggers_t *triggers) {
  if (triggers == NULL) return;
  batches_flush(triggers); /* the server is stopping: the records stall */
  if (triggers->env.cl->before_flush_arg == triggers) {
    triggers->env.cl->before_flush = NULL;
    triggers->env.cl->before_flush_arg = NULL;
  }
  if (triggers->env.invoker->on_room_arg == triggers) {
    triggers->env.invoker->on_room = NULL;
    triggers->env.invoker->on_room_arg = NULL;
  }
  if (triggers->env.metrics != NULL)
    imp_metrics_unregister(triggers->env.metrics, collect_triggers, triggers);
  if (triggers->bq_idle_open) {
    triggers->bq_idle_open = 0;
    triggers->refs++;
    uv_close((uv_handle_t *)&triggers->bq_idle, on_bq_idle_closed);
  }
  attempts_flush(triggers);
  while (triggers->list.next != &triggers->list) {
    trigger_t *trigger = triggers->list.next;
    if (trigger->state != T_CLOSED) {
      trigger->state = T_CLOSING; /* nothing is committed any more */
      trigger->removed = 1;
      trigger_closed(trigger);
    } else {
      trigger->next->prev = trigger->prev;
      trigger->prev->next = trigger->next;
      uv_close((uv_handle_t *)&trigger->tick, on_trigger_handle_closed);
      uv_close((uv_handle_t *)&trigger->more, on_trigger_handle_closed);
      trigger_unref(trigger);
    }
  }
  triggers->freed = 1;
  if (triggers->flush_open) {
    triggers->refs++;
    uv_close((uv_handle_t *)&triggers->flush, on_flush_closed);
  }
  triggers_unref(triggers);
}

/* ---- RPC
 * ----------------------------------------------------------------------- */

static int topic_ok(imp_triggers_t *triggers, const char *what,
                    const char *topic, char *err, size_t errlen) {
  char why[256];
  if (imp_topic_valid(topic, why, sizeof why) == 0) return 1;
  snprintf(err, errlen, "invalid %s '%s': %s", what, topic, why);
  (void)triggers;
  return 0;
}

/* Checks a spec and fills in the defaults. Strings set point into `buf`
 * or are borrowed from the request. 0, or -1 with the reason in err. */
static int spec_check(imp_triggers_t *triggers, Impulse__TriggerSpec *s,
                      char *group, char *dlq, char *err, size_t errlen) {
  if (s->name == NULL || !imp_name_valid(s->name)) {
    snprintf(err, errlen,
             "invalid trigger name '%s' (1-64 characters of "
             "A-Z a-z 0-9 . _ -, starting with a letter or digit)",
             s->name ? s->name : "");
    return -1;
  }
  if (s->topic == NULL || !topic_ok(triggers, "topic", s->topic, err, errlen))
    return -1;
  if (s->function == NULL || !imp_name_valid(s->function)) {
    snprintf(err, errlen, "invalid function name '%s'",
             s->function ? s->function : "");
    return -1;
  }
  if (s->group == NULL || s->group[0] == '\0') {
    snprintf(group, 80, "impulse-%s", s->name);
    s->group = group;
  } else {
    size_t n = strlen(s->group);
    for (size_t i = 0; i < n; i++)
      if (!isgraph((unsigned char)s->group[i])) n = 0;
    if (n == 0 || n > IMP_GROUP_MAX) {
      snprintf(err, errlen, "invalid group '%s' (1-255 printable characters)",
               s->group);
      return -1;
    }
  }
  if (s->from == NULL || s->from[0] == '\0') s->from = DEF_FROM;
  if (strcmp(s->from, "earliest") != 0 && strcmp(s->from, "latest") != 0) {
    snprintf(err, errlen, "--from is 'earliest' or 'latest', not '%s'",
             s->from);
    return -1;
  }
  if (s->ordering == NULL || s->ordering[0] == '\0') s->ordering = DEF_ORDERING;
  if (strcmp(s->ordering, "partition") != 0 &&
      strcmp(s->ordering, "key") != 0 && strcmp(s->ordering, "none") != 0) {
    snprintf(err, errlen,
             "--ordering is 'partition', 'key' or 'none', not '%s'",
             s->ordering);
    return -1;
  }
  if (!s->has_max_in_flight || s->max_in_flight == 0) {
    s->has_max_in_flight = 1;
    s->max_in_flight = DEF_MAX_IN_FLIGHT;
  }
  if (s->max_in_flight > IMP_TRIGGER_MAX_IN_FLIGHT) {
    snprintf(err, errlen, "--max-in-flight must be 1 to %u, not %u",
             IMP_TRIGGER_MAX_IN_FLIGHT, s->max_in_flight);
    return -1;
  }
  if (!s->has_max_retries) {
    s->has_max_retries = 1;
    s->max_retries = DEF_MAX_RETRIES;
  }
  if (s->max_retries > IMP_TRIGGER_MAX_RETRIES) {
    snprintf(err, errlen, "--max-retries must be 0 to %u, not %u",
             IMP_TRIGGER_MAX_RETRIES, s->max_retries);
    return -1;
  }
  if (!s->has_backoff_initial_ms || s->backoff_initial_ms == 0) {
    s->has_backoff_initial_ms = 1;
    s->backoff_initial_ms = DEF_BACKOFF_INITIAL;
  }
  if (!s->has_backoff_max_ms || s->backoff_max_ms == 0) {
    s->has_backoff_max_ms = 1;
    s->backoff_max_ms = s->backoff_initial_ms > DEF_BACKOFF_MAX
                            ? s->backoff_initial_ms
                            : DEF_BACKOFF_MAX;
  }
  if (s->backoff_initial_ms > IMP_TRIGGER_BACKOFF_MAX_MS ||
      s->backoff_max_ms > IMP_TRIGGER_BACKOFF_MAX_MS ||
      s->backoff_max_ms < s->backoff_initial_ms) {
    snprintf(err, errlen,
             "--backoff INITIAL_MS:MAX_MS needs INITIAL <= MAX <= "
             "3600000, not %u:%u",
             s->backoff_initial_ms, s->backoff_max_ms);
    return -1;
  }
  if (s->dlq == NULL || s->dlq[0] == '\0') {
    if (strlen(s->topic) + 4 > IMP_TOPIC_MAX) {
      snprintf(err, errlen,
               "topic name too long for the default dead-letter "
               "topic '<topic>.dlq': give --dlq");
      return -1;
    }
    snprintf(dlq, 260, "%s.dlq", s->topic);
    s->dlq = dlq;
  }
  if (!topic_ok(triggers, "dead-letter topic", s->dlq, err, errlen)) return -1;
  if (strcmp(s->dlq, s->topic) == 0) {
    snprintf(err, errlen,
             "the dead-letter topic cannot be the trigger's topic");
    return -1;
  }
  if (s->reply_topic != NULL && s->reply_topic[0] == '\0')
    s->reply_topic = NULL;
  if (s->reply_topic != NULL) {
    if (!topic_ok(triggers, "reply topic", s->reply_topic, err, errlen))
      return -1;
    if (strcmp(s->reply_topic, s->topic) == 0) {
      snprintf(err, errlen,
               "the reply topic cannot be the trigger's topic "
               "(every reply would trigger again)");
      return -1;
    }
  }
  return 0;
}

static Impulse__TriggerSpec *spec_clone(const Impulse__TriggerSpec *s) {
  size_t n = impulse__trigger_spec__get_packed_size(s);
  uint8_t *buf = malloc(n ? n : 1);
  if (buf == NULL) abort();
  impulse__trigger_spec__pack(s, buf);
  Impulse__TriggerSpec *c = impulse__trigger_spec__unpack(NULL, n, buf);
  free(buf);
  if (c == NULL) abort();
  return c;
}

void imp_triggers_create(imp_triggers_t *triggers, imp_rpc_t *rpc,
                         Impulse__Envelope *env) {
  const imp_triggers_env_t *tenv = &triggers->env;
  Impulse__TriggerSpec *req = env->trigger_create->spec;
  char err[768], group[80], dlq[260];
  if (triggers->closing) {
    imp_rpc_error(rpc, IMPULSE__ERROR_CODE__SHUTTING_DOWN,
                  "server is stopping");
    goto out;
  }
  Impulse__TriggerSpec s = *req;
  if (spec_check(triggers, &s, group, dlq, err, sizeof err) != 0) {
    imp_rpc_error(rpc, IMPULSE__ERROR_CODE__BAD_REQUEST, "%s", err);
    goto out;
  }
  if (trigger_find(triggers, s.name) != NULL) {
    imp_rpc_error(rpc, IMPULSE__ERROR_CODE__EXISTS,
                  "trigger '%s' already exists (remove it first)", s.name);
    goto out;
  }
  if (!tenv->invoker->ops->exists(tenv->invoker, s.function)) {
    imp_rpc_error(rpc, IMPULSE__ERROR_CODE__NOT_FOUND,
                  "unknown function '%s': deploy it before creating a "
                  "trigger for it",
                  s.function);
    goto out;
  }
  if (tenv->kafka == NULL) {
    imp_rpc_error(rpc, IMPULSE__ERROR_CODE__UNAVAILABLE,
                  "eventing is not available: no Kafka connection");
    goto out;
  }
  s.has_created_ms = 1;
  s.created_ms = imp_wall_ms();
  /* Topics first (bounded, a few seconds at most), so a record produced
   * right after the answer has somewhere to go. */
  if (ensure_topics(triggers, &s, err, sizeof err) != 0) {
    imp_rpc_error(rpc, IMPULSE__ERROR_CODE__UNAVAILABLE, "%s", err);
    goto out;
  }
  trigger_t *trigger = trigger_new(triggers, spec_clone(&s));
  int rc = consumer_open(trigger, err, sizeof err);
  if (rc == 0) {
    imp_batch_t *b = imp_batch_new();
    imp_batch_put_msg(b, tenv->store, IMP_CF_TRIGGERS, s.name, strlen(s.name),
                      &trigger->spec->base);
    char serr[256];
    rc = imp_store_write(tenv->store, b, 1, serr, sizeof serr);
    imp_batch_free(b);
    if (rc != 0) {
      snprintf(err, sizeof err, "could not store the trigger: %s", serr);
      rc = IMP_ESTORE;
    }
  }
  if (rc == 0) rc = consumer_subscribe(trigger, err, sizeof err);
  if (rc != 0 && rc != -EIO) {
    /* Not stored (or no consumer): gone again. */
    trigger->removed = 1;
    trigger->state = T_CLOSING;
    trigger_closed(trigger);
    imp_rpc_error(rpc,
                  rc == IMP_ESTORE ? IMPULSE__ERROR_CODE__INTERNAL
                                   : IMPULSE__ERROR_CODE__BAD_REQUEST,
                  "%s", err);
    goto out;
  }
  if (rc != 0) set_kafka_error(trigger, "%s", err); /* stored; shows in state */
  IMP_LOG(IMP_LOG_INFO, "trigger %s: %s -> %s (group %s, ordering %s)",
          trigger->spec->name, trigger->spec->topic, trigger->spec->function,
          trigger->spec->group, trigger->spec->ordering);
  Impulse__Envelope r = IMPULSE__ENVELOPE__INIT;
  Impulse__TriggerCreateResponse ok = IMPULSE__TRIGGER_CREATE_RESPONSE__INIT;
  ok.spec = trigger->spec;
  r.body_case = IMPULSE__ENVELOPE__BODY_TRIGGER_CREATE_OK;
  r.trigger_create_ok = &ok;
  imp_rpc_reply(rpc, &r);
out:
  impulse__envelope__free_unpacked(env, NULL);
}

typedef struct del_ctx_s {
  imp_batch_t *b;
  imp_store_t *store;
} del_ctx_t;

static int del_attempt(void *arg, const char *k, size_t kl, const char *v,
                       size_t vl) {
  del_ctx_t *dc = arg;
  (void)v;
  (void)vl;
  imp_batch_delete(dc->b, dc->store, IMP_CF_ATTEMPTS, k, kl);
  return 0;
}

void imp_triggers_delete(imp_triggers_t *triggers, imp_rpc_t *rpc,
                         Impulse__Envelope *env) {
  imp_store_t *store = triggers->env.store;
  const char *name = env->trigger_delete->name;
  trigger_t *trigger = trigger_find(triggers, name);
  if (trigger == NULL) {
    imp_rpc_error(rpc, IMPULSE__ERROR_CODE__NOT_FOUND, "unknown trigger '%s'",
                  name);
    goto out;
  }
  attempts_flush(triggers);
  imp_batch_t *b = imp_batch_new();
  del_ctx_t dc = {b, store};
  imp_store_scan(store, IMP_CF_ATTEMPTS, name, strlen(name) + 1, del_attempt,
                 &dc);
  imp_batch_delete(b, store, IMP_CF_TRIGGERS, name, strlen(name));
  char err[256];
  int rc = imp_store_write(store, b, 1, err, sizeof err);
  imp_batch_free(b);
  if (rc != 0) {
    imp_rpc_error(rpc, IMPULSE__ERROR_CODE__INTERNAL,
                  "could not store the deletion: %s", err);
    goto out;
  }
  IMP_LOG(IMP_LOG_INFO, "deleting trigger %s", name);
  trigger->removed = 1;
  /* Answered once stopped: invocations under way finish (bounded), their
   * offsets are committed and the consumer has left its group. */
  trigger->del_rpc = rpc;
  if (trigger->state == T_RUNNING)
    trigger_stop(trigger, DELETE_WAIT_MS, CLOSE_WAIT_MS);
  else if (trigger->state == T_CLOSED)
    trigger_closed(trigger);
out:
  impulse__envelope__free_unpacked(env, NULL);
}

/* Fills `info` for a trigger; parts/pp are caller-owned arrays of at least
 * trigger->nparts entries. */
static void fill_info(trigger_t *trigger, Impulse__TriggerInfo *info,
                      Impulse__PartitionInfo *parts,
                      Impulse__PartitionInfo **pp, char *state, size_t slen) {
  impulse__trigger_info__init(info);
  info->spec = trigger->spec;
  uint64_t now = imp_now_ms();
  unsigned in_flight = 0;
  size_t n = 0;
  for (size_t i = 0; i < trigger->nparts; i++) {
    part_t *part = trigger->parts[i];
    if (part == NULL) continue;
    Impulse__PartitionInfo *pi = &parts[n];
    impulse__partition_info__init(pi);
    pi->partition = part->id;
    pi->has_committed = pi->has_high_watermark = pi->has_lag = 1;
    pi->has_in_flight = pi->has_paused = 1;
    pi->committed = part->committed;
    int64_t lo = -1, hi = -1;
    if (trigger->rk)
      rd_kafka_get_watermark_offsets(trigger->rk, trigger->spec->topic,
                                     part->id, &lo, &hi);
    if (hi < 0) hi = -1; /* not known yet (RD_KAFKA_OFFSET_INVALID) */
    if (lo < 0) lo = -1;
    pi->high_watermark = hi;
    int64_t from = part->committed >= 0 ? part->committed : lo;
    pi->lag = hi >= 0 && from >= 0 && hi > from ? hi - from : 0;
    pi->in_flight = part->active + part->replying;
    pi->paused = part->paused;
    in_flight += part->active + part->replying;
    pp[n++] = pi;
  }
  info->n_partitions = n;
  info->partitions = pp;
  info->has_handled = info->has_retried = info->has_dead_lettered = 1;
  info->has_in_flight = info->has_received = 1;
  info->handled = trigger->handled;
  info->retried = trigger->retried;
  info->dead_lettered = trigger->dead_lettered;
  info->has_batches = info->has_batched = 1;
  info->batches = trigger->batches;
  info->batched = trigger->batched;
  info->in_flight = in_flight;
  info->received = trigger->received;
  if (trigger->state == T_CLOSED)
    snprintf(state, slen, "stopped");
  else if (trigger->state != T_RUNNING)
    snprintf(state, slen, "stopping");
  else if (trigger->rk == NULL ||
           (trigger->kerr_ms && now - trigger->kerr_ms < REASON_SHOW_MS))
    snprintf(state, slen, "error: %s",
             trigger->kerr[0] ? trigger->kerr : "not started");
  else if (trigger->reason_ms && now - trigger->reason_ms < REASON_SHOW_MS)
    snprintf(state, slen, "%s", trigger->reason);
  else if (!trigger->assigned)
    snprintf(state, slen, "joining");
  else
    snprintf(state, slen, "running");
  info->state = state;
}

void imp_triggers_list(imp_triggers_t *triggers, imp_rpc_t *rpc,
                       Impulse__Envelope *env) {
  size_t n = 0, np = 0;
  for (trigger_t *t = triggers->list.next; t != &triggers->list; t = t->next)
    if (!t->removed) {
      n++;
      np += t->nparts;
    }
  Impulse__TriggerInfo *infos = calloc(n + 1, sizeof *infos);
  Impulse__TriggerInfo **ip = calloc(n + 1, sizeof *ip);
  Impulse__PartitionInfo *parts = calloc(np + 1, sizeof *parts);
  Impulse__PartitionInfo **pp = calloc(np + 1, sizeof *pp);
  char(*states)[512] = calloc(n + 1, sizeof *states);
  if (!infos || !ip || !parts || !pp || !states) abort();
  size_t k = 0, off = 0;
  for (trigger_t *t = triggers->list.next; t != &triggers->list; t = t->next) {
    if (t->removed) continue;
    fill_info(t, &infos[k], parts + off, pp + off, states[k], sizeof states[k]);
    off += t->nparts;
    ip[k] = &infos[k];
    k++;
  }
  Impulse__Envelope r = IMPULSE__ENVELOPE__INIT;
  Impulse__TriggerListResponse ok = IMPULSE__TRIGGER_LIST_RESPONSE__INIT;
  ok.n_triggers = k;
  ok.triggers = ip;
  r.body_case = IMPULSE__ENVELOPE__BODY_TRIGGER_LIST_OK;
  r.trigger_list_ok = &ok;
  imp_rpc_reply(rpc, &r);
  free(infos);
  free(ip);
  free(parts);
  free(pp);
  free(states);
  impulse__envelope__free_unpacked(env, NULL);
}

void imp_triggers_foreach(imp_triggers_t *triggers, imp_trigger_info_cb cb,
                          void *arg) {
  for (trigger_t *t = triggers->list.next; t != &triggers->list; t = t->next) {
    if (t->removed) continue;
    Impulse__TriggerInfo info;
    Impulse__PartitionInfo *parts = calloc(t->nparts + 1, sizeof *parts);
    Impulse__PartitionInfo **pp = calloc(t->nparts + 1, sizeof *pp);
    if (!parts || !pp) abort();
    char state[512];
    fill_info(t, &info, parts, pp, state, sizeof state);
    cb(arg, &info);
    free(parts);
    free(pp);
  }
}

void imp_triggers_describe(imp_triggers_t *triggers, imp_rpc_t *rpc,
                           Impulse__Envelope *env) {
  const char *name = env->trigger_describe->name;
  trigger_t *trigger = trigger_find(triggers, name);
  if (trigger == NULL) {
    imp_rpc_error(rpc, IMPULSE__ERROR_CODE__NOT_FOUND, "unknown trigger '%s'",
                  name);
    impulse__envelope__free_unpacked(env, NULL);
    return;
  }
  Impulse__TriggerInfo info;
  Impulse__PartitionInfo *parts = calloc(trigger->nparts + 1, sizeof *parts);
  Impulse__PartitionInfo **pp = calloc(trigger->nparts + 1, sizeof *pp);
  if (!parts || !pp) abort();
  char state[512];
  fill_info(trigger, &info, parts, pp, state, sizeof state);
  Impulse__Envelope r = IMPULSE__ENVELOPE__INIT;
  Impulse__TriggerDescribeResponse ok =
      IMPULSE__TRIGGER_DESCRIBE_RESPONSE__INIT;
  ok.trigger = &info;
  r.body_case = IMPULSE__ENVELOPE__BODY_TRIGGER_DESCRIBE_OK;
  r.trigger_describe_ok = &ok;
  imp_rpc_reply(rpc, &r);
  free(parts);
  free(pp);
  impulse__envelope__free_unpacked(env, NULL);
}
