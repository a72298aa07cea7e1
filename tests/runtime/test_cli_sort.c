/*
 * Unit tests for the order of the CLI's listings (runtime/cli/cli_common.c):
 * `impulse ls`, `describe` and `trigger ls|describe` sort the answer's
 * repeated messages by a named field before printing.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "cli/cli_common.h"
#include "tests/support/test_main.h"

static void test_sort_by_string(void **state) {
  (void)state;
  Impulse__FunctionInfo f[3] = {IMPULSE__FUNCTION_INFO__INIT,
                                IMPULSE__FUNCTION_INFO__INIT,
                                IMPULSE__FUNCTION_INFO__INIT};
  f[0].name = "echo";
  f[1].name = "bank";
  f[2].name = "hello";
  Impulse__FunctionInfo *items[] = {&f[0], &f[1], &f[2]};
  imp_cli_sort(items, 3, "name");
  assert_string_equal(items[0]->name, "bank");
  assert_string_equal(items[1]->name, "echo");
  assert_string_equal(items[2]->name, "hello");
}

static void test_sort_by_unsigned(void **state) {
  (void)state;
  Impulse__InstanceInfo in[3] = {IMPULSE__INSTANCE_INFO__INIT,
                                 IMPULSE__INSTANCE_INFO__INIT,
                                 IMPULSE__INSTANCE_INFO__INIT};
  in[0].id = 10;
  in[1].id = UINT64_MAX; /* compared as a number, not as a difference */
  in[2].id = 9;
  Impulse__InstanceInfo *items[] = {&in[0], &in[1], &in[2]};
  imp_cli_sort(items, 3, "id");
  assert_true(items[0]->id == 9);
  assert_true(items[1]->id == 10);
  assert_true(items[2]->id == UINT64_MAX);
}

static void test_sort_by_signed(void **state) {
  (void)state;
  Impulse__PartitionInfo p[4] = {
      IMPULSE__PARTITION_INFO__INIT, IMPULSE__PARTITION_INFO__INIT,
      IMPULSE__PARTITION_INFO__INIT, IMPULSE__PARTITION_INFO__INIT};
  p[0].partition = 3;
  p[1].partition = -1;
  p[2].partition = INT32_MIN;
  p[3].partition = 0;
  Impulse__PartitionInfo *items[] = {&p[0], &p[1], &p[2], &p[3]};
  imp_cli_sort(items, 4, "partition");
  assert_int_equal(items[0]->partition, INT32_MIN);
  assert_int_equal(items[1]->partition, -1);
  assert_int_equal(items[2]->partition, 0);
  assert_int_equal(items[3]->partition, 3);
}

static void test_sort_through_sub_message(void **state) {
  (void)state;
  Impulse__TriggerSpec spec[3] = {IMPULSE__TRIGGER_SPEC__INIT,
                                  IMPULSE__TRIGGER_SPEC__INIT,
                                  IMPULSE__TRIGGER_SPEC__INIT};
  spec[0].name = "t2";
  spec[1].name = "t1";
  Impulse__TriggerInfo t[3] = {IMPULSE__TRIGGER_INFO__INIT,
                               IMPULSE__TRIGGER_INFO__INIT,
                               IMPULSE__TRIGGER_INFO__INIT};
  t[0].spec = &spec[0];
  t[1].spec = &spec[1];
  t[2].spec = NULL; /* a broken answer: sorts first, does not crash */
  Impulse__TriggerInfo *items[] = {&t[0], &t[1], &t[2]};
  imp_cli_sort(items, 3, "spec.name");
  assert_ptr_equal(items[0], &t[2]);
  assert_ptr_equal(items[1], &t[1]);
  assert_ptr_equal(items[2], &t[0]);
}

TEST_MAIN("unit_cli_sort", NULL, NULL, cmocka_unit_test(test_sort_by_string),
          cmocka_unit_test(test_sort_by_unsigned),
          cmocka_unit_test(test_sort_by_signed),
          cmocka_unit_test(test_sort_through_sub_message))
