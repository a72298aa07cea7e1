/*
 * Unit tests for runtime/policy/traffic.c: which version an instance of a
 * split function loads, so that instances follow the weights.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "policy/traffic.h"
#include "tests/support/test_main.h"

/* Every version with traffic gets an instance before any gets a second. */
static void test_each_version_first(void **state) {
  (void)state;
  unsigned w[2] = {90, 10}, have[2] = {3, 0};
  assert_int_equal(imp_traffic_pick(w, have, 2, 4), 1);
  have[1] = 1;
  assert_int_equal(imp_traffic_pick(w, have, 2, 5), 0);
}

/* Filling instances one by one ends up at the weights. */
static void test_converges_to_weights(void **state) {
  (void)state;
  unsigned w[3] = {50, 30, 20}, have[3] = {0, 0, 0};
  for (unsigned total = 1; total <= 10; total++)
    have[imp_traffic_pick(w, have, 3, total)]++;
  assert_int_equal(have[0], 5);
  assert_int_equal(have[1], 3);
  assert_int_equal(have[2], 2);
}

/* A version at weight 0 gets nothing; with no weight at all, the first. */
static void test_zero_weight(void **state) {
  (void)state;
  unsigned w[2] = {0, 100}, have[2] = {0, 5};
  assert_int_equal(imp_traffic_pick(w, have, 2, 6), 1);
  unsigned none[2] = {0, 0};
  assert_int_equal(imp_traffic_pick(none, have, 2, 6), 0);
}

/* Ties go to the first version listed. */
static void test_ties(void **state) {
  (void)state;
  unsigned w[2] = {50, 50}, have[2] = {1, 1};
  assert_int_equal(imp_traffic_pick(w, have, 2, 3), 0);
}

TEST_MAIN("unit_traffic", NULL, NULL, cmocka_unit_test(test_each_version_first),
          cmocka_unit_test(test_converges_to_weights),
          cmocka_unit_test(test_zero_weight), cmocka_unit_test(test_ties))
