/*
 * Unit tests for runtime/policy/pipeline.c: when calls are pipelined to a
 * function's instances and how many records one call carries.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "policy/pipeline.h"
#include "tests/support/test_main.h"

/* Feeds a window of service times; returns what the last call said. */
static int window(imp_pipe_t *p, uint64_t least, uint64_t others) {
  int changed = 0;
  for (int i = 0; i < IMP_FAST_WINDOW; i++)
    changed = imp_pipe_observe(p, i == IMP_FAST_WINDOW / 2 ? least : others);
  return changed;
}

/* Off until a whole window's least service time is under IMP_FAST_ON_US;
 * a window closes every IMP_FAST_WINDOW calls, not before. */
static void test_switches_on_by_window(void **state) {
  (void)state;
  imp_pipe_t p = {0};
  for (int i = 0; i < IMP_FAST_WINDOW - 1; i++)
    assert_int_equal(imp_pipe_observe(&p, 10), 0);
  assert_false(p.fast);
  assert_int_equal(imp_pipe_observe(&p, 10), 1); /* the window closes */
  assert_true(p.fast);
  assert_int_equal(p.least_us, 10);
}

/* The least of the window decides, not a mean: one fast call among slow
 * ones turns it on (the others waited behind a busy loop or queue). */
static void test_least_not_mean(void **state) {
  (void)state;
  imp_pipe_t p = {0};
  assert_int_equal(window(&p, 100, 50000), 1);
  assert_true(p.fast);
  assert_int_equal(p.least_us, 100);
}

/* Hysteresis: on below IMP_FAST_ON_US, off only above IMP_FAST_OFF_US. */
static void test_hysteresis(void **state) {
  (void)state;
  imp_pipe_t p = {0};
  assert_int_equal(window(&p, IMP_FAST_ON_US, IMP_FAST_ON_US), 0);
  assert_false(p.fast); /* not below the threshold */
  assert_int_equal(window(&p, IMP_FAST_ON_US - 1, 5000), 1);
  assert_true(p.fast);
  /* Between the thresholds it stays on. */
  assert_int_equal(window(&p, IMP_FAST_OFF_US - 1, 5000), 0);
  assert_true(p.fast);
  assert_int_equal(window(&p, IMP_FAST_OFF_US, 5000), 1);
  assert_false(p.fast);
  /* And between them it stays off. */
  assert_int_equal(window(&p, IMP_FAST_ON_US + 1, 5000), 0);
  assert_false(p.fast);
}

/* The allowance beyond concurrency: 0 when off, at least 16 when on. */
static void test_extra(void **state) {
  (void)state;
  imp_pipe_t p = {0};
  assert_int_equal(imp_pipe_extra(&p, 1), 0);
  p.fast = 1;
  assert_int_equal(imp_pipe_extra(&p, 1), 16);
  assert_int_equal(imp_pipe_extra(&p, 16), 16);
  assert_int_equal(imp_pipe_extra(&p, 32), 32);
}

/* Records per call: 1 unless fast, then about IMP_BATCH_US of handler time,
 * between 1 and IMP_BATCH_MAX. */
static void test_batch(void **state) {
  (void)state;
  imp_pipe_t p = {0};
  p.least_us = 10;
  assert_int_equal(imp_pipe_batch(&p), 1); /* not fast */
  p.fast = 1;
  assert_int_equal(imp_pipe_batch(&p), IMP_BATCH_US / 10 > IMP_BATCH_MAX
                                           ? IMP_BATCH_MAX
                                           : IMP_BATCH_US / 10);
  p.least_us = 100;
  assert_int_equal(imp_pipe_batch(&p), 10);
  p.least_us = 0; /* under a microsecond */
  assert_int_equal(imp_pipe_batch(&p), IMP_BATCH_MAX);
  p.least_us = IMP_BATCH_US * 3;
  assert_int_equal(imp_pipe_batch(&p), 1);
}

TEST_MAIN("unit_pipeline", NULL, NULL,
          cmocka_unit_test(test_switches_on_by_window),
          cmocka_unit_test(test_least_not_mean),
          cmocka_unit_test(test_hysteresis), cmocka_unit_test(test_extra),
          cmocka_unit_test(test_batch))
