/*
 * The trigger broker's own types and limits, shared by its pieces and by
 * nothing else (the broker's interface is trigger.h): a trigger, its
 * assigned partitions, their records and key queues, the broker holding
 * them, and the hooks through which a piece reports to the pieces above
 * it. Types only: each piece declares its functions in its own header.
 *
 * The pieces, from the top down; each calls only the ones below it:
 *
 *   trigger.c            the broker: open, close, free; each trigger's life
 *                        (create, stop, close, delete); the RPC handlers;
 *                        fills the hooks
 *   trigger_info.c       what `trigger describe` and /metrics show
 *   trigger_spec.c       a TriggerSpec checked and completed with defaults
 *   trigger_consumer.c   the consumer: its queues served on the loop,
 *                        rebalances, commit reports, leaving the group
 *   trigger_partition.c  assigned partitions: records taken, started as
 *                        the ordering and the function's room allow,
 *                        finished, paused and resumed, committed, released
 *   trigger_batch.c      records sent to the function in one call
 *   trigger_output.c     a record's dead letter or reply
 *   trigger_record.c     one record: its memory, its stored attempt
 *                        count, its invocation, retries
 *   trigger_util.c       references, a trigger's shown failure, helpers
 *
 * The functions keep the short names of the broker's vocabulary (rec_*,
 * part_*, trigger_*) rather than imp_*: they are not an interface of the
 * module, like libuv's uv__ functions. Everything runs on the server's
 * loop thread.
 */
#ifndef IMP_TRIGGER_TYPES_H
#define IMP_TRIGGER_TYPES_H

#include <stdint.h>

#include "base/rpc.h"
#include "base/store.h"
#include "eventing/cloudevents.h"
#include "eventing/kafka.h"
#include "eventing/trigger_env.h"
#include "eventing/trigger_track.h"
#include "impulse.pb-c.h"

#define MAX_RECORD_HEADERS 100 /* more makes a record undeliverable */
#define MAX_REPLY_HEADERS 32   /* of a response, kept for the reply topic */
#define REASON_SHOW_MS 10000   /* how long a failure shows in state */
#define REC_SCRATCH 384        /* header text of one record (rec_headers()) */

enum { ORD_PARTITION = 0, ORD_KEY, ORD_NONE };           /* trigger->ordering */
enum { T_RUNNING = 0, T_DRAINING, T_CLOSING, T_CLOSED }; /* trigger->state */
enum { R_WAITING = 0, R_ACTIVE, R_STALLED };             /* rec->state */
enum { PH_INVOKE = 0, PH_DLQ, PH_REPLY, PH_FINISH };     /* rec->phase */

/* The broker: imp_triggers_t to the rest of the server (trigger.h). */
typedef struct imp_triggers_s triggers_t;
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
  triggers_t *triggers;       /* referenced */
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

/*
 * What a lower piece of the broker tells a higher one, which it never
 * calls by name: a record (trigger_record.c) goes on to its batch or its
 * output through `invoke` and `output`; a record and its output tell its
 * partition that it is done, or that its reply freed its slot, through
 * `finish` and `free_slot`; a batch and a partition ask for the trigger to
 * be serviced through `kick`; the consumer tells the broker that a trigger
 * stopped through `closed`. The broker (trigger.c) fills one table at
 * open, shared by every trigger (triggers->hooks). Loop thread only.
 */
typedef struct trigger_hooks_s {
  /* Sends a started record to its function: in the trigger's batch while
   * the function takes batches, else alone. */
  void (*invoke)(rec_t *rec);
  /* Produces the record's dead letter (PH_DLQ) or reply (PH_REPLY); the
   * record is finished once it is acknowledged. */
  void (*output)(rec_t *rec, int kind);
  /* The record's reply is with the producer: its invocation slot (and its
   * key, with ordering key) go to the next record; it still holds back
   * the commit until `finish`. */
  void (*free_slot)(rec_t *rec);
  /* The record succeeded (its reply written) or was dead-lettered: it no
   * longer holds back its partition's commit; what waited for it starts.
   * May free the record. */
  void (*finish)(rec_t *rec);
  /* Services the trigger (its consumer, a revoke or a stop under way) on
   * the next loop turn. */
  void (*kick)(trigger_t *trigger);
  /* The trigger has stopped: its partitions are to be released, its
   * consumer destroyed, a pending `trigger rm` answered. */
  void (*closed)(trigger_t *trigger);
} trigger_hooks_t;

struct imp_triggers_s {
  imp_triggers_env_t env;       /* borrowed handles, copied */
  const trigger_hooks_t *hooks; /* the broker's, static */
  trigger_t list;               /* sentinel */
  int refs;                     /* 1 until freed + 1 per trigger */
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

#endif
