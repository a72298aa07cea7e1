/*
 * main() of a cmocka test program whose tests run as one group, instead of
 * the same table and run call in every unit and integration test. Expand
 * it where cmocka.h is included.
 */
#ifndef IMP_TEST_MAIN_H
#define IMP_TEST_MAIN_H

/* main(): runs the cmocka tests listed after the group's name (its ctest
 * name), group setup and group teardown (NULL for none) as one group. */
#define TEST_MAIN(name, group_setup, group_teardown, ...)        \
  int main(void) {                                               \
    const struct CMUnitTest tests[] = {__VA_ARGS__};             \
    return cmocka_run_group_tests_name(name, tests, group_setup, \
                                       group_teardown);          \
  }

#endif
