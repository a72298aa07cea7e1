#include "dispatcher.h"

#include <errno.h>
#include <stdlib.h>

void imp_dispatch_init(imp_dispatch_t *d, size_t max_queue) {
  d->inst = NULL;
  d->count = d->cap = d->rotor = 0;
  d->version = 0;
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

static int has_slot(const imp_dispatch_t *d, const imp_dinst_t *in) {
  return in->ready && in->version == d->version &&
         in->outstanding < in->concurrency + in->extra;
}

imp_dinst_t *imp_dispatch_pick(imp_dispatch_t *d) {
  imp_dinst_t *best = NULL;
  size_t n = d->count;
  if (n == 0) return NULL;
  size_t start = d->rotor++ % n;
  for (size_t k = 0; k < n; k++) {
    imp_dinst_t *in = d->inst[(start + k) % n];
    if (!has_slot(d, in)) continue;
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
      free_slots += d->inst[i]->concurrency + d->inst[i]->extra -
                    d->inst[i]->outstanding;
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
