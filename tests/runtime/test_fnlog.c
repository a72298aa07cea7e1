/*
 * Function logs (runtime/base/fnlog.c) and the escaping they are shown
 * with (imp_escape_bytes, runtime/core/common.c).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/fnlog.h"
#include "core/common.h"
#include "tests/support/test_main.h"

static size_t entries(const imp_fnlog_t *log) {
  size_t n = 0;
  for (const imp_fnlog_entry_t *e = log->head; e != NULL; e = e->next) n++;
  return n;
}

/* The ring keeps the newest lines within its bytes; the oldest are
 * counted as dropped (ring). */
static void test_ring_bounded(void **state) {
  (void)state;
  imp_fnlogs_t logs;
  imp_fnlogs_init(&logs, 64 << 10, 0);
  imp_fnlog_t *log = imp_fnlogs_get(&logs, "f", 1);
  assert_non_null(log);
  assert_ptr_equal(imp_fnlogs_get(&logs, "f", 0), log);
  assert_null(imp_fnlogs_get(&logs, "g", 0));
  char line[1000];
  memset(line, 'x', sizeof line);
  for (int i = 0; i < 1000; i++)
    assert_int_equal(imp_fnlog_append(&logs, log, 0, 1, 7, 1, IMP_FNLOG_STDOUT,
                                      0, line, sizeof line, 0),
                     0);
  assert_true(log->bytes <= 64u << 10);
  assert_true(entries(log) > 50);
  assert_int_equal(log->ring_lines + entries(log), 1000);
  assert_int_equal(log->tail->seq, 1000);
  assert_int_equal(log->head->seq, log->ring_lines + 1);
  /* A line over the cap is cut to it. */
  char *big = malloc(10000);
  memset(big, 'y', 10000);
  assert_int_equal(imp_fnlog_append(&logs, log, 0, 1, 7, 1, IMP_FNLOG_STDERR, 0,
                                    big, 10000, 0),
                   0);
  assert_int_equal(log->tail->len, IMP_FNLOG_LINE_MAX);
  assert_true(log->tail->cut);
  free(big);
  imp_fnlogs_free(&logs);
}

/* Beyond the burst, lines are dropped until time refills the bucket. */
static void test_rate(void **state) {
  (void)state;
  imp_fnlogs_t logs;
  imp_fnlogs_init(&logs, 1 << 20, 1000); /* 1000 B/s, burst 4000 B */
  imp_fnlog_t *log = imp_fnlogs_get(&logs, "f", 1);
  char line[100] = {0};
  int kept = 0;
  for (int i = 0; i < 100; i++)
    if (imp_fnlog_append(&logs, log, 1000, 1, 1, 1, IMP_FNLOG_LOG, 2, line,
                         sizeof line, 0) == 0)
      kept++;
  assert_int_equal(kept, 40);
  assert_int_equal(log->rate_lines, 60);
  assert_int_equal(imp_fnlog_dropped(log), 60);
  /* One second later: 1000 bytes more. */
  kept = 0;
  for (int i = 0; i < 100; i++)
    if (imp_fnlog_append(&logs, log, 2000, 1, 1, 1, IMP_FNLOG_LOG, 2, line,
                         sizeof line, 0) == 0)
      kept++;
  assert_int_equal(kept, 10);
  /* Empty lines cost a byte each: a flood of them is bounded too. */
  assert_int_equal(
      imp_fnlog_append(&logs, log, 2000, 1, 1, 1, IMP_FNLOG_LOG, 2, "", 0, 0),
      -EAGAIN);
  imp_fnlogs_free(&logs);
}

/* What a function writes is shown as one line of printable ASCII. */
static void test_escape(void **state) {
  (void)state;
  imp_buf_t b = {0};
  static const char in[] = "a\x1b[31mb\r\nc\\d\t\x7f\xff";
  assert_int_equal(imp_escape_bytes(&b, in, sizeof in - 1), 0);
  assert_string_equal(b.data, "a\\x1b[31mb\\r\\nc\\\\d\\t\\x7f\\xff");
  imp_buf_free(&b);
}

static void test_duration(void **state) {
  (void)state;
  uint64_t ms;
  assert_int_equal(imp_parse_duration_ms("30s", &ms), 0);
  assert_int_equal(ms, 30000);
  assert_int_equal(imp_parse_duration_ms("5m", &ms), 0);
  assert_int_equal(ms, 300000);
  assert_int_equal(imp_parse_duration_ms("250ms", &ms), 0);
  assert_int_equal(ms, 250);
  assert_int_equal(imp_parse_duration_ms("2", &ms), 0);
  assert_int_equal(ms, 2000);
  assert_int_equal(imp_parse_duration_ms("1d", &ms), 0);
  assert_int_equal(ms, 86400000);
  assert_int_equal(imp_parse_duration_ms("5x", &ms), -EINVAL);
  assert_int_equal(imp_parse_duration_ms("", &ms), -EINVAL);
  assert_int_equal(imp_parse_duration_ms("-1s", &ms), -EINVAL);
  assert_int_equal(imp_parse_duration_ms("99999999999999d", &ms), -EINVAL);
}

TEST_MAIN("unit_fnlog", NULL, NULL, cmocka_unit_test(test_ring_bounded),
          cmocka_unit_test(test_rate), cmocka_unit_test(test_escape),
          cmocka_unit_test(test_duration))
