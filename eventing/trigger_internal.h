/*
 * The trigger broker's private parts, shared by its files and by nothing
 * else (the broker's interface is trigger.h):
 *
 *   trigger.c            the broker: open, close, free; each trigger's life
 *                        (create, stop, close, delete); the RPC handlers
 *   trigger_spec.c       a TriggerSpec checked and completed with defaults
 *   trigger_info.c       what `trigger describe` and /metrics show
 *   trigger_consumer.c   the consumer: its queues served on the loop,
 *                        rebalances, commit reports, leaving the group
 *   trigger_partition.c  assigned partitions: records taken, started as
 *                        the ordering and the function's room allow,
 *                        paused and resumed, committed, released
 *   trigger_record.c     one record: its memory, its stored attempt
 *                        count, its invocation, retries, completion
 *   trigger_batch.c      records sent to the function in one call
 *   trigger_output.c     a record's dead letter or reply
 *
 * Everything runs on the server's loop thread. Functions shared between
 * these files are declared below under the file that defines them. They
 * keep the short names of the broker's vocabulary (rec_*, part_*,
 * trigger_*) rather than imp_*: they are not an interface of the module,
 * like libuv's uv__ functions of its internal.h.
 */
#ifndef IMP_TRIGGER_INTERNAL_H
#define IMP_TRIGGER_INTERNAL_H

#include <stdint.h>
#include <string.h>

#include "eventing/cloudevents.h"
#include "eventing/trigger.h"
#include "eventing/trigger_track.h"

#define MAX_RECORD_HEADERS 100 /* more makes a record undeliverable */
#define MAX_REPLY_HEADERS 32   /* of a response, kept for the reply topic */
#define CLOSE_WAIT_MS 5000     /* leaving the group */
#define REASON_SHOW_MS 10000   /* how long a failure shows in state */

/* A spec's defaults (trigger_spec_check() fills them in). */
#define DEF_FROM "earliest"
#define DEF_ORDERING "partition"
#define DEF_MAX_IN_FLIGHT 64u
#define DEF_MAX_RETRIES 3u
#define DEF_BACKOFF_INITIAL 100u
#define DEF_BACKOFF_MAX 10000u

#define REC_SCRATCH 384 /* header text of one record (rec_headers()) */

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
  unsigned transient; /* failures not counted (overloaded, output...) */
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
  unsigned batch_max; /* the invoker's batch hint, per part_pump() */
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

/* ---- helpers ------------------------------------------------------------- */

static inline void hset(Impulse__Header *h, const char *name, const void *value,
                        size_t len) {
  impulse__header__init(h);
  h->name = (char *)name;
  h->has_value = value != NULL;
  h->value.data = (uint8_t *)value;
  h->value.len = value ? len : 0;
}

/* Writes v in decimal at p (room for 20 characters); returns the length. */
static inline size_t fmt_i64(char *p, int64_t v) {
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

/* ---- trigger.c ----------------------------------------------------------- */

void triggers_unref(imp_triggers_t *triggers);
void trigger_unref(trigger_t *trigger);
/* Shows a retried failure in the trigger's state for a while. */
void trigger_set_reason(trigger_t *trigger, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Shows a Kafka error in the trigger's state and logs it (the same one at
 * most every REASON_SHOW_MS). */
void trigger_set_kafka_error(trigger_t *trigger, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* The trigger has stopped: partitions released, consumer destroyed, a
 * pending `trigger rm` answered; a removed trigger leaves the list. */
void trigger_closed(trigger_t *trigger);

/* ---- trigger_spec.c ------------------------------------------------------ */

/* Checks a spec and fills in the defaults. Strings set point into `group`
 * (80 bytes) and `dlq` (260 bytes) or are borrowed from the request. 0, or
 * -1 with the reason in err. */
int trigger_spec_check(Impulse__TriggerSpec *s, char *group, char *dlq,
                       char *err, size_t errlen);
/* A deep copy, freed with impulse__trigger_spec__free_unpacked(). */
Impulse__TriggerSpec *trigger_spec_clone(const Impulse__TriggerSpec *s);

/* ---- trigger_info.c ------------------------------------------------------ */

/* Fills `info` for a trigger; parts/pp are caller-owned arrays of at least
 * trigger->nparts entries, state one of slen bytes. */
void trigger_fill_info(trigger_t *trigger, Impulse__TriggerInfo *info,
                       Impulse__PartitionInfo *parts,
                       Impulse__PartitionInfo **pp, char *state, size_t slen);
/* Calls cb with the trigger's info (trigger_fill_info()); `info` and what
 * it points to are borrowed for the call. */
void trigger_with_info(trigger_t *trigger, imp_trigger_info_cb cb, void *arg);
/* The impulse_trigger_* families (an imp_metrics_register() collector;
 * arg is the broker). */
void triggers_collect(imp_metrics_writer_t *w, void *arg);

/* ---- trigger_consumer.c -------------------------------------------------- */

/* Creates the trigger's consumer (not subscribed yet). 0, or negative
 * with err. */
int consumer_open(trigger_t *trigger, char *err, size_t errlen);
int consumer_subscribe(trigger_t *trigger, char *err, size_t errlen);
/* Destroys the consumer: it has left its group, or the wait for that is
 * over. */
void consumer_destroy(trigger_t *trigger);
/* Drains the consumer's queues (bounded per call) and moves a revoke or a
 * stop along. */
void trigger_service(trigger_t *trigger);
/* Services the trigger on the next loop turn. */
void trigger_kick(trigger_t *trigger);
/* Moves a revoke or a stop along once what it waits for is done or its
 * time is up. */
void trigger_progress(trigger_t *trigger);

/* ---- trigger_partition.c ------------------------------------------------- */

/* A record consumed from an assigned partition. */
void trigger_on_record(trigger_t *trigger, const rd_kafka_message_t *msg);
/* Starts the records the ordering and the function's room allow. */
void part_pump(part_t *part);
/* Resumes a paused partition once its window has drained to half. */
void part_check_resume(part_t *part);
/* The assigned partition `id`, or NULL. */
part_t *part_get(trigger_t *trigger, int32_t id);
/* Starts tracking an assigned partition (or returns it when tracked);
 * NULL without memory or for an id out of range. */
part_t *part_new(trigger_t *trigger, int32_t id);
/* Nothing new starts; records waiting for a retry stop waiting. */
void part_stop(part_t *part);
/* Commits every partition's low-water mark that moved (force: even while
 * commits are held for a rebalance). */
void trigger_commit(trigger_t *trigger, int force);
/* Releases the listed partitions (all when `which` is NULL), committing
 * their low-water marks unless `lost`. */
void parts_release(trigger_t *trigger,
                   const rd_kafka_topic_partition_list_t *which, int lost);
/* Invocations running or awaiting their reply in the listed partitions
 * (all when `which` is NULL). */
unsigned parts_busy(trigger_t *trigger,
                    const rd_kafka_topic_partition_list_t *which);

/* ---- trigger_record.c ---------------------------------------------------- */

/* Writes the attempt counts stored this loop turn. */
void attempts_flush(imp_triggers_t *triggers);
/* Reads the attempt counts stored for the partition's records by earlier
 * runs (attempt_lookup() gives them to their records). */
void attempts_load(part_t *part);
/* Stored attempt count of a record seen for the first time. */
void attempt_lookup(part_t *part, rec_t *rec);
/* Copies a consumed record into one block. NULL when out of memory. */
rec_t *rec_new(trigger_t *trigger, const rd_kafka_message_t *msg);
/* Frees a record that is finished or given up once no callback is owed to
 * it any more. */
void rec_maybe_free(rec_t *rec);
/* The record's ce_id: its own header, else the one made from its topic,
 * partition and offset (buf: IMP_CE_ID_MAX bytes). */
const void *rec_ce_id(const rec_t *rec, char *buf, size_t buflen, size_t *len);
/* Backoff before try number n (1-based) of something that failed. */
uint64_t trigger_backoff_ms(trigger_t *trigger, unsigned n);
/* Runs `phase` of the record after `ms` (stalls it instead while its
 * partition is being released). */
void rec_schedule(rec_t *rec, int phase, uint64_t ms);
/* Stops work on an active record: it stays unfinished and comes again. */
void rec_stall(rec_t *rec);
/* Whether a failed invocation's code says nothing about the record, only
 * about the moment (OVERLOADED, UNAVAILABLE): not counted as an attempt. */
int is_transient(int code);
/* A failed invocation: retried, or dead-lettered after max-retries. */
void rec_fail(rec_t *rec, int code, const char *message);
/* The record's function succeeded with `resp` (borrowed). */
void rec_invoked(rec_t *rec, const Impulse__InvokeResponse *resp);
/* Fills hs with the headers of the record's invocation (at most nhdrs +
 * 10), their text in `scratch` (REC_SCRATCH bytes); returns the count. */
size_t rec_headers(rec_t *rec, Impulse__Header *hs, char *scratch);
/* What a record gets when its invocation could not even be sent. */
void rec_invoke_failed(rec_t *rec, int rc);
/* Sends the record to its function alone. */
void rec_invoke_one(rec_t *rec);
/* The queue of the record's key (ordering key), created when missing;
 * NULL without memory. */
keyq_t *keyq_get(part_t *part, const rec_t *rec);
/* Begins processing a record (never finishes it synchronously). */
void rec_start(rec_t *rec);
/* The record's reply is with the producer: its slot goes to the next. */
void rec_free_slot(rec_t *rec);
/* The record no longer holds back its partition's commit. */
void rec_finish(rec_t *rec);

/* ---- trigger_batch.c ----------------------------------------------------- */

/* Sends the record to its function: in the trigger's batch while the
 * function takes batches, else alone. */
void rec_invoke(rec_t *rec);
/* Sends every trigger's batch (the connection loop's before_flush hook;
 * arg is the broker). */
void batches_flush(void *arg);

/* ---- trigger_output.c ---------------------------------------------------- */

/* Produces the record's dead letter (PH_DLQ) or reply (PH_REPLY); the
 * record is finished once it is acknowledged. */
void rec_output(rec_t *rec, int kind);

#endif
