/*
 * Unit tests of eventing/trigger_track.c: the low-water mark is the first
 * unfinished offset, never past it, whatever order records finish in.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>

#include "eventing/trigger_track.h"
#include "tests/support/test_main.h"

static int items[100000];

/* The group's tracker (group_setup), emptied for each test by fresh(). */
static int group_setup(void **state) {
  imp_track_t *t = malloc(sizeof *t);
  if (t == NULL) return -1;
  imp_track_init(t);
  *state = t;
  return 0;
}

static int group_teardown(void **state) {
  imp_track_free(*state);
  free(*state);
  return 0;
}

static imp_track_t *fresh(void **state) {
  imp_track_t *t = *state;
  imp_track_free(t); /* empty again, as after imp_track_init() */
  return t;
}

static void test_empty(void **state) {
  imp_track_t *t = fresh(state);
  assert_int_equal(imp_track_low_water(t), -1);
  assert_int_equal(imp_track_len(t), 0);
}

static void test_in_order(void **state) {
  imp_track_t *t = fresh(state);
  uint64_t seq[10];
  for (int i = 0; i < 10; i++)
    assert_int_equal(imp_track_push(t, 100 + i, &items[i], &seq[i]), 0);
  assert_int_equal(imp_track_low_water(t), 100);
  imp_track_done(t, seq[0]);
  assert_int_equal(imp_track_low_water(t), 101);
  for (int i = 1; i < 10; i++) imp_track_done(t, seq[i]);
  assert_int_equal(imp_track_low_water(t), 110);
  assert_int_equal(imp_track_len(t), 0);
}

static void test_out_of_order_and_gaps(void **state) {
  imp_track_t *t = fresh(state);
  uint64_t a, b, c;
  /* Offsets with gaps (compaction, transaction markers). */
  assert_int_equal(imp_track_push(t, 5, &items[0], &a), 0);
  assert_int_equal(imp_track_push(t, 9, &items[1], &b), 0);
  assert_int_equal(imp_track_push(t, 20, &items[2], &c), 0);
  assert_int_equal(imp_track_push(t, 20, &items[3], &c), -EINVAL);
  assert_int_equal(imp_track_push(t, 21, NULL, &c), -EINVAL);
  imp_track_done(t, c);
  assert_int_equal(imp_track_low_water(t), 5); /* 5 and 9 still run */
  imp_track_done(t, a);
  assert_int_equal(imp_track_low_water(t), 9);
  assert_int_equal(imp_track_len(t), 2);
  imp_track_done(t, a); /* twice: no effect */
  assert_int_equal(imp_track_low_water(t), 9);
  imp_track_done(t, b);
  assert_int_equal(imp_track_low_water(t), 21);
  assert_int_equal(imp_track_len(t), 0);
}

/* A stuck head while thousands finish behind it: the ring grows, entries
 * keep their sequence numbers, and the mark jumps once the head finishes. */
static void test_grow_with_stuck_head(void **state) {
  imp_track_t *t = fresh(state);
  static uint64_t seq[100000];
  for (int i = 0; i < 100000; i++) {
    assert_int_equal(imp_track_push(t, i, &items[i], &seq[i]), 0);
    if (i > 0 && i % 3 != 0) imp_track_done(t, seq[i]);
  }
  assert_int_equal(imp_track_low_water(t), 0);
  assert_ptr_equal(imp_track_at(t, seq[99999])->item, &items[99999]);
  assert_int_equal(imp_track_at(t, seq[99999])->offset, 99999);
  imp_track_done(t, seq[0]);
  assert_int_equal(imp_track_low_water(t), 3);
  for (int i = 3; i < 100000; i += 3) imp_track_done(t, seq[i]);
  assert_int_equal(imp_track_low_water(t), 100000);
  /* Reuse after draining: wraps around the ring. */
  for (int i = 0; i < 1000; i++) {
    uint64_t s;
    assert_int_equal(imp_track_push(t, 100000 + i, &items[i], &s), 0);
    imp_track_done(t, s);
  }
  assert_int_equal(imp_track_low_water(t), 101000);
}

TEST_MAIN("unit_trigger_track", group_setup, group_teardown,
          cmocka_unit_test(test_empty), cmocka_unit_test(test_in_order),
          cmocka_unit_test(test_out_of_order_and_gaps),
          cmocka_unit_test(test_grow_with_stuck_head))
