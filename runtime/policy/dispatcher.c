#include "policy/dispatcher.h"

#include <errno.h>
#include <stdlib.h>

void imp_dispatch_init(imp_dispatch_t *d, size_t max_queue) {
  d->inst = NULL;
  d->count = d->cap = d->rotor = 0;
  d->version = 0;
  d->nsplit = 0;
  d->queue.next = d->queue.prev = &d->queue;
  d->queued = 0;
  d->max_queue = max_queue;
}

void imp_dispatch_free(imp_dispatch_t *d) {
  free(d->inst);
  d->inst = NULL;
  d->count = d->cap = 0;
}

int imp_dispatch_add(imp_dispatch_t *d, imp_dinst_t *inst) {
  if (d->count == d->cap) {
    size_t cap = d->cap ? d->cap * 2 : 8;
    imp_dinst_t **p = realloc(d->inst, cap * sizeof *p);
    if (p == NULL) return -ENOMEM;
    d->inst = p;
    d->cap = cap;
  }
  inst->index = d->count;
  d->inst[d->count++] = inst;
  return 0;
}

void imp_dispatch_remove(imp_dispatch_t *d, imp_dinst_t *inst) {
  size_t i = inst->index;
  if (i >= d->count || d->inst[i] != inst) return;
  d->inst[i] = d->inst[--d->count];
  d->inst[i]->index = i;
  inst->index = (size_t)-1;
}

void imp_dispatch_set_split(imp_dispatch_t *d, const uint32_t *versions,
                            const uint32_t *weights, unsigned n) {
  if (n > IMP_DISPATCH_MAX_SPLIT) n = IMP_DISPATCH_MAX_SPLIT;
  d->nsplit = n;
  for (unsigned i = 0; i < n; i++) {
    d->split_version[i] = versions[i];
    d->split_weight[i] = weights[i];
    d->split_credit[i] = 0;
  }
}

int imp_dispatch_version_live(const imp_dispatch_t *d, uint32_t version) {
  if (d->nsplit == 0) return version == d->version;
  for (unsigned i = 0; i < d->nsplit; i++)
    if (d->split_version[i] == version) return d->split_weight[i] > 0;
  return 0;
}

static int has_free(const imp_dinst_t *in) {
  return in->ready && in->outstanding < in->concurrency + in->extra;
}

static int has_slot(const imp_dispatch_t *d, const imp_dinst_t *in) {
  return has_free(in) && imp_dispatch_version_live(d, in->version);
}

/* The version of the next call under a split: the live version with the
 * most credit among those that can take it now. 0 when none can. */
static int split_pick(imp_dispatch_t *d, uint32_t *version) {
  int avail[IMP_DISPATCH_MAX_SPLIT] = {0};
  for (size_t i = 0; i < d->count; i++) {
    if (!has_free(d->inst[i])) continue;
    for (unsigned e = 0; e < d->nsplit; e++)
      if (d->split_version[e] == d->inst[i]->version) avail[e] = 1;
  }
  int64_t total = 0;
  int best = -1;
  for (unsigned e = 0; e < d->nsplit; e++) {
    if (!avail[e] || d->split_weight[e] == 0) continue;
    d->split_credit[e] += d->split_weight[e];
    total += d->split_weight[e];
    if (best < 0 || d->split_credit[e] > d->split_credit[best]) best = (int)e;
  }
  if (best < 0) return 0;
  d->split_credit[best] -= total;
  *version = d->split_version[best];
  return 1;
}

imp_dinst_t *imp_dispatch_pick(imp_dispatch_t *d) {
  imp_dinst_t *best = NULL;
  size_t n = d->count;
  if (n == 0) return NULL;
  uint32_t want = 0;
  if (d->nsplit > 0 && !split_pick(d, &want)) return NULL;
  size_t start = d->rotor++ % n;
  for (size_t k = 0; k < n; k++) {
    imp_dinst_t *in = d->inst[(start + k) % n];
    if (!has_slot(d, in)) continue;
    if (d->nsplit > 0 && in->version != want) continue;
    if (best == NULL || in->outstanding < best->outstanding) {
      best = in;
      if (best->outstanding == 0) break; /* cannot do better */
    }
  }
  return best;
}

size_t imp_dispatch_free_slots(const imp_dispatch_t *d) {
  size_t free_slots = 0;
  for (size_t i = 0; i < d->count; i++)
    if (has_slot(d, d->inst[i]))
      free_slots +=
          d->inst[i]->concurrency + d->inst[i]->extra - d->inst[i]->outstanding;
  return free_slots;
}

int imp_dispatch_enqueue(imp_dispatch_t *d, imp_dwait_t *w,
                         uint64_t deadline_ms) {
  if (d->max_queue && d->queued >= d->max_queue) return -EBUSY;
  w->deadline_ms = deadline_ms;
  w->next = &d->queue;
  w->prev = d->queue.prev;
  d->queue.prev->next = w;
  d->queue.prev = w;
  w->queued = 1;
  d->queued++;
  return 0;
}

void imp_dispatch_unqueue(imp_dispatch_t *d, imp_dwait_t *w) {
  if (!w->queued) return;
  w->prev->next = w->next;
  w->next->prev = w->prev;
  w->next = w->prev = NULL;
  w->queued = 0;
  d->queued--;
}

imp_dwait_t *imp_dispatch_head(imp_dispatch_t *d) {
  return d->queue.next == &d->queue ? NULL : d->queue.next;
}

imp_dwait_t *imp_dispatch_expired(imp_dispatch_t *d, uint64_t now_ms) {
  /* Deadlines differ per call (a caller may ask for a shorter one), so scan
   * rather than trusting FIFO order; queues are short. */
  for (imp_dwait_t *w = d->queue.next; w != &d->queue; w = w->next) {
    if (w->deadline_ms <= now_ms) {
      imp_dispatch_unqueue(d, w);
      return w;
    }
  }
  return NULL;
}

uint64_t imp_dispatch_queue_deadline(uint64_t now_ms, uint32_t queue_timeout_ms,
                                     uint64_t call_deadline_ms) {
  uint64_t deadline = now_ms + queue_timeout_ms;
  if (call_deadline_ms && call_deadline_ms < deadline)
    deadline = call_deadline_ms;
  return deadline;
}

uint64_t imp_dispatch_run_timeout(uint32_t timeout_ms,
                                  uint64_t call_deadline_ms, uint64_t now_ms) {
  uint64_t timeout = timeout_ms;
  if (call_deadline_ms) {
    uint64_t left = call_deadline_ms > now_ms ? call_deadline_ms - now_ms : 1;
    if (left < timeout) timeout = left;
  }
  return timeout;
}

long imp_dispatch_room(const imp_dispatch_t *d, long room) {
  return (long)imp_dispatch_free_slots(d) + room - (long)d->queued;
}

unsigned imp_dispatch_starts_for_queue(size_t queued, unsigned starting,
                                       unsigned concurrency) {
  if (concurrency == 0) concurrency = 1;
  size_t need = (queued + concurrency - 1) / concurrency;
  return need > starting ? (unsigned)(need - starting) : 0;
}
