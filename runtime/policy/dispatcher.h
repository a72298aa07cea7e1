/*
 * Dispatcher: per function, the set of instances that may take work and a
 * FIFO of calls waiting for a free slot. Pure bookkeeping with no I/O, so
 * the selection rules are unit-tested without processes.
 *
 * Selection is least outstanding requests among ready instances whose
 * outstanding count is below their concurrency plus their `extra` pipeline
 * allowance (0 unless the owner turns pipelining on); ties rotate so that
 * equal instances share the load. When no instance has a free slot the call
 * waits in the queue until its deadline.
 */
#ifndef IMP_DISPATCHER_H
#define IMP_DISPATCHER_H

#include <stddef.h>
#include <stdint.h>

/* An instance as the dispatcher sees it; embedded in the owner's struct. */
typedef struct imp_dinst_s {
  uint32_t outstanding; /* calls sent and not answered */
  uint32_t concurrency; /* handlers the instance runs at once (>= 1) */
  uint32_t extra;       /* calls it may hold queued beyond that (pipelining) */
  uint32_t version;     /* function version it serves */
  int ready;            /* may take new calls */
  size_t index;         /* position in the dispatcher's array (private) */
} imp_dinst_t;

/* A queued call; embedded in the owner's struct. */
typedef struct imp_dwait_s {
  struct imp_dwait_s *next;
  struct imp_dwait_s *prev;
  uint64_t deadline_ms; /* monotonic ms after which the call expires */
  int queued;
} imp_dwait_t;

#define IMP_DISPATCH_MAX_SPLIT 8

typedef struct imp_dispatch_s {
  imp_dinst_t **inst; /* owned array of borrowed pointers */
  size_t count;
  size_t cap;
  size_t rotor;     /* tie-break rotation */
  uint32_t version; /* only instances of this version get calls, */
  unsigned nsplit;  /* unless there is a split (then its versions) */
  uint32_t split_version[IMP_DISPATCH_MAX_SPLIT];
  uint32_t split_weight[IMP_DISPATCH_MAX_SPLIT];
  int64_t split_credit[IMP_DISPATCH_MAX_SPLIT]; /* smooth weighted RR */
  imp_dwait_t queue;                            /* sentinel of the FIFO */
  size_t queued;
  size_t max_queue; /* 0 = unbounded */
} imp_dispatch_t;

void imp_dispatch_init(imp_dispatch_t *d, size_t max_queue);
/* Frees the array; queued entries are left to their owners. */
void imp_dispatch_free(imp_dispatch_t *d);

/* Adds or removes an instance. add returns 0 or -ENOMEM. */
int imp_dispatch_add(imp_dispatch_t *d, imp_dinst_t *inst);
void imp_dispatch_remove(imp_dispatch_t *d, imp_dinst_t *inst);

/*
 * Splits calls between versions by weight (n entries, at most
 * IMP_DISPATCH_MAX_SPLIT; n == 0 goes back to `version` alone). The
 * version of each call is chosen by smooth weighted round robin among the
 * versions that have an instance with a free slot, so 90/10 gives exactly
 * 9 of every 10 calls to the first while both can take them.
 */
void imp_dispatch_set_split(imp_dispatch_t *d, const uint32_t *versions,
                            const uint32_t *weights, unsigned n);

/* Whether instances of `version` may get calls. */
int imp_dispatch_version_live(const imp_dispatch_t *d, uint32_t version);

/* Picks an instance with a free slot (least outstanding), or NULL. Does not
 * change the counts: call imp_dispatch_acquire() on the result. */
imp_dinst_t *imp_dispatch_pick(imp_dispatch_t *d);
static inline void imp_dispatch_acquire(imp_dinst_t *inst) {
  inst->outstanding++;
}
static inline void imp_dispatch_release(imp_dinst_t *inst) {
  if (inst->outstanding > 0) inst->outstanding--;
}

/* Total free slots across ready instances of the current version. */
size_t imp_dispatch_free_slots(const imp_dispatch_t *d);

/* Queues a call. Returns 0, or -EBUSY when the queue is full. */
int imp_dispatch_enqueue(imp_dispatch_t *d, imp_dwait_t *w,
                         uint64_t deadline_ms);
/* Removes a queued call (no-op when not queued). */
void imp_dispatch_unqueue(imp_dispatch_t *d, imp_dwait_t *w);
/* Head of the queue or NULL. */
imp_dwait_t *imp_dispatch_head(imp_dispatch_t *d);
/* Removes and returns the first queued call, in FIFO order, whose deadline
 * is at or before now_ms, or NULL. */
imp_dwait_t *imp_dispatch_expired(imp_dispatch_t *d, uint64_t now_ms);

/* Deadlines of a call (monotonic ms; a call deadline of 0 = none): how
 * long it may wait in the queue, arriving at now_ms, with the server's
 * --queue-timeout; and how long it may run once sent at now_ms, with the
 * function's timeout (at least 1 ms when its deadline has passed). */
uint64_t imp_dispatch_queue_deadline(uint64_t now_ms, uint32_t queue_timeout_ms,
                                     uint64_t call_deadline_ms);
uint64_t imp_dispatch_run_timeout(uint32_t timeout_ms,
                                  uint64_t call_deadline_ms, uint64_t now_ms);

/* How many more calls may be started without more than `room` of them
 * waiting in the queue (<= 0: none). */
long imp_dispatch_room(const imp_dispatch_t *d, long room);

/* Instances to start for `queued` waiting calls when `starting` are being
 * started already and each takes `concurrency` calls: enough that the
 * queue fits into the starting ones. */
unsigned imp_dispatch_starts_for_queue(size_t queued, unsigned starting,
                                       unsigned concurrency);

#endif
