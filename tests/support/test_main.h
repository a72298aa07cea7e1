/*
 * main() of a cmocka test program whose tests run as one group, instead of
 * the same table and run call in every unit and integration test. Expand
 * it where cmocka.h is included.
 */
#ifndef IMP_TEST_MAIN_H
#define IMP_TEST_MAIN_H

/* Tests skipped by the integration harness's it_skip()
 * (tests/integration/harness.h); a weak reference, so its address is NULL
 * in the unit tests, which do not link the harness. */
extern int it_skipped __attribute__((weak));

/* Exit status of a test program whose cmocka run returned `failed`: ctest
 * counts a skip only by a status of its own (77, SKIP_RETURN_CODE), since
 * cmocka 1.1 exits 0 when a test was skipped. */
static inline int imp_test_status(int failed) {
  if (failed == 0 && &it_skipped != NULL && it_skipped > 0) return 77;
  return failed;
}

/* main(): runs the cmocka tests listed after the group's name (its ctest
 * name), group setup and group teardown (NULL for none) as one group; exits
 * with imp_test_status(). */
#define TEST_MAIN(name, group_setup, group_teardown, ...) \
  int main(void) {                                        \
    const struct CMUnitTest tests[] = {__VA_ARGS__};      \
    return imp_test_status(cmocka_run_group_tests_name(   \
        name, tests, group_setup, group_teardown));       \
  }

#endif
