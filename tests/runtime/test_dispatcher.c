/*
 * Unit tests for runtime/policy/dispatcher.c: instance selection, the wait
 * queue, a call's deadlines and the room a caller may fill. Pure bookkeeping,
 * so everything is checked with exact values.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/common.h"
#include "policy/dispatcher.h"
#include "tests/support/test_main.h"

static void inst_init(imp_dinst_t *in, uint32_t outstanding,
                      uint32_t concurrency, uint32_t version, int ready) {
  memset(in, 0, sizeof *in);
  in->outstanding = outstanding;
  in->concurrency = concurrency;
  in->version = version;
  in->ready = ready;
}

/* The group's dispatcher (group_setup), emptied for each test by fresh(). */
static int group_setup(void **state) {
  imp_dispatch_t *d = malloc(sizeof *d);
  if (d == NULL) return -1;
  imp_dispatch_init(d, 0);
  *state = d;
  return 0;
}

static int group_teardown(void **state) {
  imp_dispatch_free(*state);
  free(*state);
  return 0;
}

/* The dispatcher, empty, with a queue of at most `max_queue` calls (0: no
 * limit). */
static imp_dispatch_t *fresh(void **state, size_t max_queue) {
  imp_dispatch_t *d = *state;
  imp_dispatch_free(d);
  imp_dispatch_init(d, max_queue);
  return d;
}

/* Adds the `n` instances of `in` to `d`, each accepted. */
static void add_all(imp_dispatch_t *d, imp_dinst_t *const *in, size_t n) {
  for (size_t i = 0; i < n; i++)
    assert_int_equal(imp_dispatch_add(d, in[i]), 0);
}

static void test_least_outstanding(void **state) {
  imp_dispatch_t *d = fresh(state, 0);
  imp_dinst_t in[3];
  inst_init(&in[0], 2, 4, 0, 1);
  inst_init(&in[1], 0, 4, 0, 1);
  inst_init(&in[2], 1, 4, 0, 1);
  for (int i = 0; i < 3; i++) assert_int_equal(imp_dispatch_add(d, &in[i]), 0);
  assert_int_equal(d->count, 3);

  /* Whatever the rotation, the idle one wins; pick changes no counts. */
  for (int k = 0; k < 10; k++) assert_ptr_equal(imp_dispatch_pick(d), &in[1]);
  assert_int_equal(in[0].outstanding, 2);
  assert_int_equal(in[1].outstanding, 0);
  assert_int_equal(in[2].outstanding, 1);

  /* 2,1,1: one of the two at 1, never the one at 2. */
  imp_dispatch_acquire(&in[1]);
  int seen1 = 0, seen2 = 0;
  for (int k = 0; k < 10; k++) {
    imp_dinst_t *p = imp_dispatch_pick(d);
    assert_true(p == &in[1] || p == &in[2]);
    seen1 += p == &in[1];
    seen2 += p == &in[2];
  }
  assert_true(seen1 > 0 && seen2 > 0);

  /* 2,2,1 -> the last one. */
  imp_dispatch_acquire(&in[1]);
  for (int k = 0; k < 5; k++) assert_ptr_equal(imp_dispatch_pick(d), &in[2]);
}

static void test_ties_rotate(void **state) {
  imp_dispatch_t *d = fresh(state, 0);
  imp_dinst_t in[4];
  for (int i = 0; i < 4; i++) {
    inst_init(&in[i], 0, 1, 0, 1);
    assert_int_equal(imp_dispatch_add(d, &in[i]), 0);
  }
  /* Pick + release as a call that finishes before the next arrives. */
  int hits[4] = {0};
  for (int k = 0; k < 8; k++) {
    imp_dinst_t *p = imp_dispatch_pick(d);
    assert_non_null(p);
    imp_dispatch_acquire(p);
    assert_int_equal(p->outstanding, 1);
    hits[p - in]++;
    imp_dispatch_release(p);
    assert_int_equal(p->outstanding, 0);
  }
  for (int i = 0; i < 4; i++) assert_int_equal(hits[i], 2);

  /* Ties above zero rotate too: all at 1 of 4. */
  for (int i = 0; i < 4; i++) {
    in[i].concurrency = 4;
    in[i].outstanding = 1;
  }
  memset(hits, 0, sizeof hits);
  for (int k = 0; k < 8; k++) hits[imp_dispatch_pick(d) - in]++;
  for (int i = 0; i < 4; i++) assert_int_equal(hits[i], 2);

  /* Release never underflows. */
  inst_init(&in[0], 0, 1, 0, 1);
  imp_dispatch_release(&in[0]);
  assert_int_equal(in[0].outstanding, 0);
}

static void test_concurrency_limit(void **state) {
  imp_dispatch_t *d = fresh(state, 0);
  imp_dinst_t a, b, c;
  inst_init(&a, 1, 1, 0, 1); /* full, fewest outstanding */
  inst_init(&b, 3, 3, 0, 1); /* full */
  inst_init(&c, 3, 4, 0, 1); /* one slot left */
  add_all(d, (imp_dinst_t *[]){&a, &b, &c}, 3);

  for (int k = 0; k < 6; k++) assert_ptr_equal(imp_dispatch_pick(d), &c);
  assert_int_equal(imp_dispatch_free_slots(d), 1);

  imp_dispatch_acquire(&c);
  for (int k = 0; k < 6; k++) assert_null(imp_dispatch_pick(d));
  assert_int_equal(imp_dispatch_free_slots(d), 0);

  /* A slot frees up on a: a is the only candidate. */
  imp_dispatch_release(&a);
  for (int k = 0; k < 6; k++) assert_ptr_equal(imp_dispatch_pick(d), &a);
  assert_int_equal(imp_dispatch_free_slots(d), 1);

  /* Fill to the limit through the API: exactly `free_slots` picks succeed. */
  imp_dispatch_release(&b);
  imp_dispatch_release(&c);
  imp_dispatch_release(&c);
  assert_int_equal(imp_dispatch_free_slots(d), 1 + 1 + 2);
  int got = 0;
  imp_dinst_t *p;
  while ((p = imp_dispatch_pick(d)) != NULL) {
    assert_true(p->outstanding < p->concurrency);
    imp_dispatch_acquire(p);
    got++;
    assert_true(got <= 4);
  }
  assert_int_equal(got, 4);
  assert_int_equal(a.outstanding, 1);
  assert_int_equal(b.outstanding, 3);
  assert_int_equal(c.outstanding, 4);
}

/* The pipelining allowance raises the limit to concurrency + extra; least
 * outstanding still decides among instances. */
static void test_pipeline_extra(void **state) {
  imp_dispatch_t *d = fresh(state, 0);
  imp_dinst_t a, b;
  inst_init(&a, 1, 1, 0, 1); /* full without pipelining */
  inst_init(&b, 2, 1, 0, 1); /* over its concurrency */
  add_all(d, (imp_dinst_t *[]){&a, &b}, 2);
  assert_null(imp_dispatch_pick(d));
  assert_int_equal(imp_dispatch_free_slots(d), 0);
  a.extra = b.extra = 2; /* now 3 calls each */
  assert_int_equal(imp_dispatch_free_slots(d), 2 + 1);
  for (int k = 0; k < 4; k++) assert_ptr_equal(imp_dispatch_pick(d), &a);
  imp_dispatch_acquire(&a); /* a: 2, b: 2 */
  int seen_a = 0, seen_b = 0;
  for (int k = 0; k < 8; k++) {
    imp_dinst_t *p = imp_dispatch_pick(d);
    seen_a += p == &a;
    seen_b += p == &b;
  }
  assert_true(seen_a > 0 && seen_b > 0);
  imp_dispatch_acquire(&a);
  imp_dispatch_acquire(&b); /* both at 3 = 1 + 2 */
  assert_null(imp_dispatch_pick(d));
  a.extra = b.extra = 0; /* turned off: nothing new until they drain */
  imp_dispatch_release(&a);
  imp_dispatch_release(&a);
  assert_null(imp_dispatch_pick(d));
  imp_dispatch_release(&a);
  assert_ptr_equal(imp_dispatch_pick(d), &a);
}

static void test_skips_not_ready_and_other_version(void **state) {
  imp_dispatch_t *d = fresh(state, 0);
  d->version = 2;
  imp_dinst_t old, starting, cur;
  inst_init(&old, 0, 4, 1, 1);      /* previous version, idle */
  inst_init(&starting, 0, 4, 2, 0); /* right version, not ready */
  inst_init(&cur, 3, 4, 2, 1);      /* right version, busier */
  add_all(d, (imp_dinst_t *[]){&old, &starting, &cur}, 3);

  for (int k = 0; k < 6; k++) assert_ptr_equal(imp_dispatch_pick(d), &cur);
  assert_int_equal(imp_dispatch_free_slots(d), 1);

  cur.ready = 0;
  assert_null(imp_dispatch_pick(d));
  assert_int_equal(imp_dispatch_free_slots(d), 0);

  starting.ready = 1;
  for (int k = 0; k < 6; k++) assert_ptr_equal(imp_dispatch_pick(d), &starting);
  assert_int_equal(imp_dispatch_free_slots(d), 4);

  /* Rolling back to version 1 serves only the old instance. */
  d->version = 1;
  for (int k = 0; k < 6; k++) assert_ptr_equal(imp_dispatch_pick(d), &old);
  assert_int_equal(imp_dispatch_free_slots(d), 4);
}

static void test_free_slots(void **state) {
  imp_dispatch_t *d = fresh(state, 0);
  assert_int_equal(imp_dispatch_free_slots(d), 0);
  assert_null(imp_dispatch_pick(d));
  d->version = 5;
  imp_dinst_t in[5];
  inst_init(&in[0], 1, 4, 5, 1); /* 3 */
  inst_init(&in[1], 2, 2, 5, 1); /* 0: full */
  inst_init(&in[2], 0, 8, 5, 1); /* 8 */
  inst_init(&in[3], 0, 5, 5, 0); /* 0: not ready */
  inst_init(&in[4], 0, 6, 4, 1); /* 0: other version */
  for (int i = 0; i < 5; i++) assert_int_equal(imp_dispatch_add(d, &in[i]), 0);
  assert_int_equal(imp_dispatch_free_slots(d), 11);

  imp_dispatch_acquire(&in[2]);
  assert_int_equal(imp_dispatch_free_slots(d), 10);
  imp_dispatch_release(&in[1]);
  assert_int_equal(imp_dispatch_free_slots(d), 11);
  in[3].ready = 1;
  assert_int_equal(imp_dispatch_free_slots(d), 16);
  imp_dispatch_remove(d, &in[0]);
  assert_int_equal(imp_dispatch_free_slots(d), 13);
  imp_dispatch_free(d);
  assert_int_equal(d->count, 0);
  assert_null(d->inst);
}

static void test_remove_middle(void **state) {
  imp_dispatch_t *d = fresh(state, 0);
  imp_dinst_t a, b, c;
  inst_init(&a, 0, 1, 0, 1);
  inst_init(&b, 0, 1, 0, 1);
  inst_init(&c, 0, 1, 0, 1);
  add_all(d, (imp_dinst_t *[]){&a, &b, &c}, 3);

  imp_dispatch_remove(d, &b);
  assert_int_equal(d->count, 2);
  int hits_a = 0, hits_c = 0;
  for (int k = 0; k < 10; k++) {
    imp_dinst_t *p = imp_dispatch_pick(d);
    assert_true(p == &a || p == &c);
    hits_a += p == &a;
    hits_c += p == &c;
  }
  assert_int_equal(hits_a, 5);
  assert_int_equal(hits_c, 5);
  assert_int_equal(imp_dispatch_free_slots(d), 2);

  /* Removing again is a no-op; the moved instance can still be removed. */
  imp_dispatch_remove(d, &b);
  assert_int_equal(d->count, 2);
  imp_dispatch_remove(d, &c);
  assert_int_equal(d->count, 1);
  for (int k = 0; k < 4; k++) assert_ptr_equal(imp_dispatch_pick(d), &a);

  /* Re-adding works, and the last one can go. */
  assert_int_equal(imp_dispatch_add(d, &b), 0);
  assert_int_equal(d->count, 2);
  imp_dispatch_acquire(&a);
  assert_ptr_equal(imp_dispatch_pick(d), &b);
  imp_dispatch_remove(d, &a);
  imp_dispatch_remove(d, &b);
  assert_int_equal(d->count, 0);
  assert_null(imp_dispatch_pick(d));
}

static void test_many_instances_grow(void **state) {
  imp_dispatch_t *d = fresh(state, 0);
  imp_dinst_t in[40];
  for (int i = 0; i < 40; i++) {
    inst_init(&in[i], 1, 2, 0, 1);
    assert_int_equal(imp_dispatch_add(d, &in[i]), 0);
  }
  in[37].outstanding = 0;
  assert_ptr_equal(imp_dispatch_pick(d), &in[37]);
  assert_int_equal(imp_dispatch_free_slots(d), 41);
}

static void test_queue_fifo(void **state) {
  imp_dispatch_t *d = fresh(state, 0);
  imp_dwait_t w[3];
  memset(w, 0, sizeof w);
  assert_null(imp_dispatch_head(d));
  assert_int_equal(imp_dispatch_enqueue(d, &w[0], 100), 0);
  assert_int_equal(imp_dispatch_enqueue(d, &w[1], 100), 0);
  assert_int_equal(imp_dispatch_enqueue(d, &w[2], 100), 0);
  assert_int_equal(d->queued, 3);
  for (int i = 0; i < 3; i++) {
    assert_int_equal(w[i].queued, 1);
    assert_int_equal(w[i].deadline_ms, 100);
  }

  for (int i = 0; i < 3; i++) {
    imp_dwait_t *h = imp_dispatch_head(d);
    assert_ptr_equal(h, &w[i]);
    assert_ptr_equal(imp_dispatch_head(d), h); /* head does not remove */
    imp_dispatch_unqueue(d, h);
    assert_int_equal(h->queued, 0);
    assert_int_equal(d->queued, (size_t)(2 - i));
  }
  assert_null(imp_dispatch_head(d));

  /* Unqueue of something not queued changes nothing. */
  imp_dispatch_unqueue(d, &w[1]);
  assert_int_equal(d->queued, 0);

  /* Entries can be queued again after leaving. */
  assert_int_equal(imp_dispatch_enqueue(d, &w[2], 7), 0);
  assert_int_equal(imp_dispatch_enqueue(d, &w[0], 8), 0);
  assert_ptr_equal(imp_dispatch_head(d), &w[2]);
  assert_int_equal(d->queued, 2);
  imp_dispatch_unqueue(d, &w[2]);
  imp_dispatch_unqueue(d, &w[0]);
  assert_int_equal(d->queued, 0);
}

static void test_queue_limit(void **state) {
  imp_dispatch_t *d = fresh(state, 2);
  imp_dwait_t w[3];
  memset(w, 0, sizeof w);
  assert_int_equal(imp_dispatch_enqueue(d, &w[0], 10), 0);
  assert_int_equal(imp_dispatch_enqueue(d, &w[1], 20), 0);
  assert_int_equal(imp_dispatch_enqueue(d, &w[2], 30), -EBUSY);
  assert_int_equal(w[2].queued, 0);
  assert_int_equal(d->queued, 2);
  assert_ptr_equal(imp_dispatch_head(d), &w[0]);
  /* A refused entry is not linked in: unqueue is a no-op. */
  imp_dispatch_unqueue(d, &w[2]);
  assert_int_equal(d->queued, 2);

  imp_dispatch_unqueue(d, &w[0]);
  assert_int_equal(imp_dispatch_enqueue(d, &w[2], 30), 0);
  assert_int_equal(d->queued, 2);
  assert_int_equal(imp_dispatch_enqueue(d, &w[0], 40), -EBUSY);
  assert_ptr_equal(imp_dispatch_head(d), &w[1]);
  imp_dispatch_unqueue(d, &w[1]);
  assert_ptr_equal(imp_dispatch_head(d), &w[2]);
  imp_dispatch_unqueue(d, &w[2]);
  assert_int_equal(d->queued, 0);

  /* max_queue 0 is unbounded. */
  imp_dispatch_t u;
  imp_dispatch_init(&u, 0);
  static imp_dwait_t many[1000];
  memset(many, 0, sizeof many);
  for (int i = 0; i < 1000; i++)
    assert_int_equal(imp_dispatch_enqueue(&u, &many[i], (uint64_t)i), 0);
  assert_int_equal(u.queued, 1000);
  for (int i = 0; i < 1000; i++) {
    assert_ptr_equal(imp_dispatch_head(&u), &many[i]);
    imp_dispatch_unqueue(&u, &many[i]);
  }
  assert_int_equal(u.queued, 0);
  imp_dispatch_free(&u);
}

static void test_unqueue_middle(void **state) {
  imp_dispatch_t *d = fresh(state, 0);
  imp_dwait_t w[3];
  memset(w, 0, sizeof w);
  for (int i = 0; i < 3; i++)
    assert_int_equal(imp_dispatch_enqueue(d, &w[i], 100), 0);
  imp_dispatch_unqueue(d, &w[1]);
  assert_int_equal(w[1].queued, 0);
  assert_int_equal(d->queued, 2);
  imp_dispatch_unqueue(d, &w[1]); /* twice: no-op */
  assert_int_equal(d->queued, 2);

  assert_ptr_equal(imp_dispatch_head(d), &w[0]);
  imp_dispatch_unqueue(d, &w[0]);
  assert_ptr_equal(imp_dispatch_head(d), &w[2]);
  imp_dispatch_unqueue(d, &w[2]);
  assert_null(imp_dispatch_head(d));
  assert_int_equal(d->queued, 0);

  /* Unqueue of the tail leaves the order of the rest. */
  for (int i = 0; i < 3; i++)
    assert_int_equal(imp_dispatch_enqueue(d, &w[i], 100), 0);
  imp_dispatch_unqueue(d, &w[2]);
  assert_int_equal(imp_dispatch_enqueue(d, &w[2], 100), 0);
  imp_dispatch_unqueue(d, &w[0]);
  assert_ptr_equal(imp_dispatch_head(d), &w[1]);
  imp_dispatch_unqueue(d, &w[1]);
  assert_ptr_equal(imp_dispatch_head(d), &w[2]);
  imp_dispatch_unqueue(d, &w[2]);
  assert_int_equal(d->queued, 0);
}

/* A 90/10 split: exactly 9 of 10 calls to the first version while both
 * have free slots; all to the one that has a slot when the other has
 * none; a weight-0 version gets nothing. */
static void test_split_weighted(void **state) {
  imp_dispatch_t *d = fresh(state, 0);
  imp_dinst_t a, b, c;
  inst_init(&a, 0, 4, 3, 1);
  inst_init(&b, 0, 4, 4, 1);
  inst_init(&c, 0, 4, 5, 1);
  add_all(d, (imp_dinst_t *[]){&a, &b, &c}, 3);
  const uint32_t v[3] = {3, 4, 5}, w[3] = {90, 10, 0};
  imp_dispatch_set_split(d, v, w, 3);
  assert_true(imp_dispatch_version_live(d, 3));
  assert_false(imp_dispatch_version_live(d, 5));
  assert_false(imp_dispatch_version_live(d, 6));
  unsigned got[6] = {0};
  for (int i = 0; i < 1000; i++) {
    imp_dinst_t *p = imp_dispatch_pick(d);
    assert_non_null(p);
    got[p->version]++;
  }
  assert_int_equal(got[3], 900);
  assert_int_equal(got[4], 100);
  assert_int_equal(got[5], 0);
  /* v4 full: everything to v3. */
  b.outstanding = 4;
  for (int i = 0; i < 10; i++) assert_ptr_equal(imp_dispatch_pick(d), &a);
  /* No split: back to d->version alone. */
  imp_dispatch_set_split(d, NULL, NULL, 0);
  d->version = 5;
  assert_ptr_equal(imp_dispatch_pick(d), &c);
}

static void test_expired(void **state) {
  imp_dispatch_t *d = fresh(state, 0);
  assert_null(imp_dispatch_expired(d, UINT64_MAX));

  imp_dwait_t w[3];
  memset(w, 0, sizeof w);
  assert_int_equal(imp_dispatch_enqueue(d, &w[0], 100), 0);
  assert_int_equal(imp_dispatch_enqueue(d, &w[1], 50), 0); /* shorter */
  assert_int_equal(imp_dispatch_enqueue(d, &w[2], 200), 0);

  assert_null(imp_dispatch_expired(d, 0));
  assert_null(imp_dispatch_expired(d, 49));
  assert_int_equal(d->queued, 3);

  /* Not the head, but its deadline passed first; deadline == now counts. */
  assert_ptr_equal(imp_dispatch_expired(d, 50), &w[1]);
  assert_int_equal(w[1].queued, 0);
  assert_int_equal(d->queued, 2);
  assert_null(imp_dispatch_expired(d, 50));
  assert_null(imp_dispatch_expired(d, 99));
  assert_ptr_equal(imp_dispatch_head(d), &w[0]);

  /* Both remaining expired: one per call, queue order, until none. */
  assert_ptr_equal(imp_dispatch_expired(d, 1000), &w[0]);
  assert_int_equal(d->queued, 1);
  assert_ptr_equal(imp_dispatch_head(d), &w[2]);
  assert_ptr_equal(imp_dispatch_expired(d, 1000), &w[2]);
  assert_int_equal(d->queued, 0);
  assert_null(imp_dispatch_expired(d, 1000));
  assert_null(imp_dispatch_head(d));

  /* Expiry then unqueue of the same entry does not double count. */
  assert_int_equal(imp_dispatch_enqueue(d, &w[0], 5), 0);
  assert_int_equal(imp_dispatch_enqueue(d, &w[1], 500), 0);
  assert_ptr_equal(imp_dispatch_expired(d, 5), &w[0]);
  imp_dispatch_unqueue(d, &w[0]);
  assert_int_equal(d->queued, 1);
  assert_ptr_equal(imp_dispatch_head(d), &w[1]);
  imp_dispatch_unqueue(d, &w[1]);
  assert_int_equal(d->queued, 0);
}

/* A call waits in the queue until --queue-timeout or its own deadline,
 * whichever comes first, and runs until the function's timeout or what is
 * left of its deadline (never 0, even when it has passed). */
static void test_deadlines(void **state) {
  (void)state;
  static const struct {
    uint64_t now_ms;
    uint32_t queue_timeout_ms;
    uint64_t call_deadline_ms;
    uint64_t want;
  } queue[] = {
      {1000, 5000, 0, 6000},
      {1000, 5000, 3000, 3000},
      {1000, 5000, 9000, 6000},
  };
  for (size_t i = 0; i < IMP_ARRAY_SIZE(queue); i++)
    assert_int_equal(
        imp_dispatch_queue_deadline(queue[i].now_ms, queue[i].queue_timeout_ms,
                                    queue[i].call_deadline_ms),
        queue[i].want);
  static const struct {
    uint32_t timeout_ms;
    uint64_t call_deadline_ms;
    uint64_t now_ms;
    uint64_t want;
  } run[] = {
      {30000, 0, 1000, 30000}, {30000, 1500, 1000, 500}, {200, 1500, 1000, 200},
      {30000, 900, 1000, 1},   {30000, 1000, 1000, 1},
  };
  for (size_t i = 0; i < IMP_ARRAY_SIZE(run); i++)
    assert_int_equal(
        imp_dispatch_run_timeout(run[i].timeout_ms, run[i].call_deadline_ms,
                                 run[i].now_ms),
        run[i].want);
}

/* The room a caller (the trigger broker) may fill: free slots of ready
 * instances, plus what may wait, minus what waits already. */
static void test_room(void **state) {
  imp_dispatch_t *d = fresh(state, 0);
  d->version = 1;
  imp_dinst_t a, b;
  inst_init(&a, 1, 4, 1, 1);
  inst_init(&b, 0, 4, 1, 0); /* loading: no room yet */
  add_all(d, (imp_dinst_t *[]){&a, &b}, 2);
  assert_int_equal(imp_dispatch_room(d, 64), 3 + 64);
  imp_dwait_t w[70];
  for (int i = 0; i < 70; i++)
    assert_int_equal(imp_dispatch_enqueue(d, &w[i], 1000), 0);
  assert_int_equal(imp_dispatch_room(d, 64), 3 + 64 - 70);
  assert_true(imp_dispatch_room(d, 64) <= 0);
  for (int i = 0; i < 70; i++) imp_dispatch_unqueue(d, &w[i]);
}

/* Instances started for a queue: enough that the calls waiting fit into
 * the instances being started, none when they fit already. */
static void test_starts_for_queue(void **state) {
  (void)state;
  static const struct {
    size_t queued;
    unsigned starting, concurrency, want;
  } cases[] = {
      {0, 0, 4, 0}, {1, 0, 4, 1},  {4, 0, 4, 1}, {5, 0, 4, 2}, {5, 1, 4, 1},
      {5, 2, 4, 0}, {10, 3, 1, 7}, {3, 0, 0, 3}, /* concurrency 0 counts as 1 */
  };
  for (size_t i = 0; i < IMP_ARRAY_SIZE(cases); i++)
    assert_int_equal(
        imp_dispatch_starts_for_queue(cases[i].queued, cases[i].starting,
                                      cases[i].concurrency),
        cases[i].want);
}

TEST_MAIN("unit_dispatcher", group_setup, group_teardown,
          cmocka_unit_test(test_least_outstanding),
          cmocka_unit_test(test_split_weighted),
          cmocka_unit_test(test_ties_rotate),
          cmocka_unit_test(test_concurrency_limit),
          cmocka_unit_test(test_pipeline_extra),
          cmocka_unit_test(test_skips_not_ready_and_other_version),
          cmocka_unit_test(test_free_slots),
          cmocka_unit_test(test_remove_middle),
          cmocka_unit_test(test_many_instances_grow),
          cmocka_unit_test(test_queue_fifo), cmocka_unit_test(test_queue_limit),
          cmocka_unit_test(test_unqueue_middle), cmocka_unit_test(test_expired),
          cmocka_unit_test(test_deadlines), cmocka_unit_test(test_room),
          cmocka_unit_test(test_starts_for_queue))
