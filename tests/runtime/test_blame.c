/*
 * Unit tests for runtime/policy/blame.c: which calls of a dead instance
 * are told it crashed and which that they did not run.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "impulse.pb-c.h"
#include "policy/blame.h"
#include "tests/support/test_main.h"

#define CRASHED IMPULSE__ERROR_CODE__CRASHED
#define OOM IMPULSE__ERROR_CODE__OUT_OF_MEMORY
#define UNAVAILABLE IMPULSE__ERROR_CODE__UNAVAILABLE

/* Not named (handler threads, exit(), SIGKILL): every call may have run. */
static void test_unnamed_blames_all(void **state) {
  (void)state;
  for (uint32_t gen = 1; gen < 20; gen++)
    assert_int_equal(imp_blame(CRASHED, 0, 5, gen), CRASHED);
  assert_int_equal(imp_blame(OOM, 0, 5, 9), OOM);
}

/* Named: the crashing call and those before it (their replies were
 * written) keep the crash; the calls sent after it did not run. */
static void test_named_spares_later_calls(void **state) {
  (void)state;
  assert_int_equal(imp_blame(CRASHED, 1, 4, 3), CRASHED);
  assert_int_equal(imp_blame(CRASHED, 1, 4, 4), CRASHED);
  assert_int_equal(imp_blame(CRASHED, 1, 4, 5), UNAVAILABLE);
  assert_int_equal(imp_blame(CRASHED, 1, 4, 16), UNAVAILABLE);
  assert_int_equal(imp_blame(OOM, 1, 4, 4), OOM);
  assert_int_equal(imp_blame(OOM, 1, 4, 5), UNAVAILABLE);
}

/* Send numbers wrap around: compared as a difference. */
static void test_wraparound(void **state) {
  (void)state;
  assert_int_equal(imp_blame(CRASHED, 1, UINT32_MAX, 0), UNAVAILABLE);
  assert_int_equal(imp_blame(CRASHED, 1, UINT32_MAX, UINT32_MAX - 1), CRASHED);
  assert_int_equal(imp_blame(CRASHED, 1, 2, UINT32_MAX), CRASHED);
}

/* An instance that was stopped, not crashed: nobody is blamed for a
 * crash, whatever was named. */
static void test_other_ends_unchanged(void **state) {
  (void)state;
  assert_int_equal(imp_blame(UNAVAILABLE, 1, 4, 9), UNAVAILABLE);
  assert_int_equal(imp_blame(UNAVAILABLE, 0, 4, 1), UNAVAILABLE);
}

TEST_MAIN("unit_blame", NULL, NULL, cmocka_unit_test(test_unnamed_blames_all),
          cmocka_unit_test(test_named_spares_later_calls),
          cmocka_unit_test(test_wraparound),
          cmocka_unit_test(test_other_ends_unchanged))
