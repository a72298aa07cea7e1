/*
 * Unit tests of eventing/cloudevents.c: the CloudEvents attributes the HTTP
 * front end writes onto Kafka records and the trigger broker reads from
 * them and fills in: header names both ways, attribute names, the ids,
 * sources and times made for records, and the bounds of every buffer.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "eventing/cloudevents.h"
#include "tests/support/test_main.h"

/* What the broker recognises on a record is what the front end writes. */
static void test_header_attr(void **state) {
  (void)state;
  static const struct {
    const char *attr;
    unsigned bit;
  } known[] = {{"id", IMP_CE_ID},
               {"source", IMP_CE_SOURCE},
               {"type", IMP_CE_TYPE},
               {"time", IMP_CE_TIME},
               {"specversion", IMP_CE_SPECVERSION}};
  unsigned all = 0;
  for (size_t i = 0; i < sizeof known / sizeof known[0]; i++) {
    char h[IMP_CE_HEADER_MAX];
    size_t n =
        imp_ce_attr_header(known[i].attr, strlen(known[i].attr), h, sizeof h);
    assert_int_equal(n, strlen(h));
    assert_int_equal(imp_ce_header_attr(h), known[i].bit);
    all |= known[i].bit;
  }
  assert_int_equal(all, 31); /* five distinct bits */
  assert_string_equal(IMP_CE_H_ID, "ce_id");
  assert_string_equal(IMP_CE_H_SPECVERSION, "ce_specversion");
  /* Other headers, other attributes, near misses. */
  static const char *const other[] = {
      "ce_subject", "ce_",       "ce_ids",   "ce_i", "CE_ID",       "ce-id",
      "id",         "kafka.key", "ce_time2", "",     "content-type"};
  for (size_t i = 0; i < sizeof other / sizeof other[0]; i++)
    assert_int_equal(imp_ce_header_attr(other[i]), 0);
}

static void test_attr_valid(void **state) {
  (void)state;
  char longest[IMP_CE_ATTR_MAX + 2];
  memset(longest, 'a', sizeof longest);
  assert_true(imp_ce_attr_valid("id", 2));
  assert_true(imp_ce_attr_valid("partitionkey", 12));
  assert_true(imp_ce_attr_valid("x9", 2));
  assert_true(imp_ce_attr_valid(longest, IMP_CE_ATTR_MAX));
  assert_false(imp_ce_attr_valid(longest, IMP_CE_ATTR_MAX + 1));
  assert_false(imp_ce_attr_valid("", 0));
  assert_false(imp_ce_attr_valid("Id", 2));
  assert_false(imp_ce_attr_valid("data_base64", 11));
  assert_false(imp_ce_attr_valid("a-b", 3));
  assert_false(imp_ce_attr_valid("a b", 3));
  assert_false(imp_ce_attr_valid("a\0b", 3));
  /* Only len bytes are looked at. */
  assert_true(imp_ce_attr_valid("idX", 2));
  /* The required ones are valid names themselves. */
  for (size_t i = 0; i < IMP_CE_NREQUIRED; i++)
    assert_true(
        imp_ce_attr_valid(imp_ce_required[i], strlen(imp_ce_required[i])));
  assert_string_equal(imp_ce_required[0], "specversion");
  assert_string_equal(imp_ce_required[3], "type");
}

static void test_attr_header(void **state) {
  (void)state;
  char h[IMP_CE_HEADER_MAX];
  assert_int_equal(imp_ce_attr_header("type", 4, h, sizeof h), 7);
  assert_string_equal(h, "ce_type");
  assert_int_equal(imp_ce_attr_header("datacontenttype", 15, h, sizeof h), 12);
  assert_string_equal(h, "content-type");
  assert_int_equal(imp_ce_attr_header("dataschema", 10, h, sizeof h), 13);
  assert_string_equal(h, "ce_dataschema");
  /* Only len bytes of the name. */
  assert_int_equal(imp_ce_attr_header("idle", 2, h, sizeof h), 5);
  assert_string_equal(h, "ce_id");
  /* The longest valid attribute fits IMP_CE_HEADER_MAX exactly. */
  char longest[IMP_CE_ATTR_MAX];
  memset(longest, 'z', sizeof longest);
  assert_int_equal(imp_ce_attr_header(longest, IMP_CE_ATTR_MAX, h, sizeof h),
                   3 + IMP_CE_ATTR_MAX);
  assert_int_equal(strlen(h), 3 + IMP_CE_ATTR_MAX);
  /* Too small a buffer: 0, and nothing past it written. */
  char small[8];
  memset(small, '#', sizeof small);
  assert_int_equal(imp_ce_attr_header("subject", 7, small, 7), 0);
  assert_int_equal(small[7], '#');
  assert_int_equal(imp_ce_attr_header("datacontenttype", 15, small, 8), 0);
  assert_int_equal(imp_ce_attr_header("type", 4, small, 8), 7);
  assert_string_equal(small, "ce_type");
}

static void test_http_attr(void **state) {
  (void)state;
  assert_int_equal(imp_ce_http_attr("ce-id", 5), 3);
  assert_int_equal(imp_ce_http_attr("Ce-Type", 7), 3);
  assert_int_equal(imp_ce_http_attr("CE-PARTITIONKEY", 15), 3);
  assert_int_equal(imp_ce_http_attr("ce-", 3), 0);
  assert_int_equal(imp_ce_http_attr("ce_id", 5), 0);
  assert_int_equal(imp_ce_http_attr("content-type", 12), 0);
  assert_int_equal(imp_ce_http_attr("c", 1), 0);
  assert_int_equal(imp_ce_http_attr("", 0), 0);
  /* Only len bytes: "ce-" alone within a longer text. */
  assert_int_equal(imp_ce_http_attr("ce-id", 3), 0);
}

static void test_record_id(void **state) {
  (void)state;
  char buf[IMP_CE_ID_MAX];
  assert_int_equal(imp_ce_record_id("orders", "3", 1, "17", 2, buf, sizeof buf),
                   11);
  assert_string_equal(buf, "orders-3-17");
  /* The longest topic, partition and offset fit IMP_CE_ID_MAX. */
  char topic[250];
  memset(topic, 't', 249);
  topic[249] = '\0';
  size_t n = imp_ce_record_id(topic, "-2147483648", 11, "-9223372036854775808",
                              20, buf, sizeof buf);
  assert_int_equal(n, 249 + 1 + 11 + 1 + 20);
  assert_int_equal(strlen(buf), n);
  assert_int_equal(strncmp(buf + 249, "--2147483648--9223372036854775808", 33),
                   0);
  /* Exactly enough room, and one byte less. */
  char exact[12];
  memset(exact, '#', sizeof exact);
  assert_int_equal(imp_ce_record_id("orders", "3", 1, "17", 2, exact, 12), 11);
  assert_string_equal(exact, "orders-3-17");
  memset(exact, '#', sizeof exact);
  assert_int_equal(imp_ce_record_id("orders", "3", 1, "17", 2, exact, 11), 0);
  assert_int_equal(exact[0], '#');
}

static void test_sources(void **state) {
  (void)state;
  char buf[300];
  assert_int_equal(imp_ce_record_source("orders", buf, sizeof buf), 14);
  assert_string_equal(buf, "kafka://orders");
  assert_int_equal(imp_ce_reply_source("score", buf, sizeof buf), 25);
  assert_string_equal(buf, "impulse://functions/score");
  /* Truncated, NUL-terminated, the whole length told. */
  char small[8];
  assert_int_equal(imp_ce_record_source("orders", small, sizeof small), 14);
  assert_string_equal(small, "kafka:/");
}

static void test_time(void **state) {
  (void)state;
  imp_ce_clock_t c;
  imp_ce_clock_init(&c);
  char buf[IMP_CE_TIME_MAX];
  assert_int_equal(imp_ce_time(&c, 0, buf), 24);
  assert_string_equal(buf, "1970-01-01T00:00:00.000Z");
  assert_int_equal(imp_ce_time(&c, 1709294400042LL, buf), 24);
  assert_string_equal(buf, "2024-03-01T12:00:00.042Z");
  /* Same second, from the cache; then the next second. */
  imp_ce_time(&c, 1709294400999LL, buf);
  assert_string_equal(buf, "2024-03-01T12:00:00.999Z");
  imp_ce_time(&c, 1709294401000LL, buf);
  assert_string_equal(buf, "2024-03-01T12:00:01.000Z");
  imp_ce_time(&c, 1709294400007LL, buf); /* back again */
  assert_string_equal(buf, "2024-03-01T12:00:00.007Z");
  imp_ce_time(&c, 951782400120LL, buf); /* a leap day */
  assert_string_equal(buf, "2000-02-29T00:00:00.120Z");
  /* Before the epoch counts as the epoch. */
  imp_ce_time(&c, -5, buf);
  assert_string_equal(buf, "1970-01-01T00:00:00.000Z");
  /* A time after year 9999 (a producer's timestamp can be any int64) is
   * the last one RFC 3339 writes; it used to come out as ".807Z" alone
   * (found by tests/fuzz/cloudevents.c). */
  size_t n = imp_ce_time(&c, INT64_MAX, buf);
  assert_int_equal(n, 24);
  assert_string_equal(buf, "9999-12-31T23:59:59.999Z");
  imp_ce_time(&c, IMP_CE_TIME_LAST_MS + 1, buf);
  assert_string_equal(buf, "9999-12-31T23:59:59.999Z");
  imp_ce_time(&c, IMP_CE_TIME_LAST_MS - 999, buf);
  assert_string_equal(buf, "9999-12-31T23:59:59.000Z");
  /* A fresh cache at second 0 formats it (the cache is not taken for a
   * formatted second 0 before anything was formatted). */
  imp_ce_clock_init(&c);
  imp_ce_time(&c, 999, buf);
  assert_string_equal(buf, "1970-01-01T00:00:00.999Z");
}

TEST_MAIN("unit_cloudevents", NULL, NULL, cmocka_unit_test(test_header_attr),
          cmocka_unit_test(test_attr_valid), cmocka_unit_test(test_attr_header),
          cmocka_unit_test(test_http_attr), cmocka_unit_test(test_record_id),
          cmocka_unit_test(test_sources), cmocka_unit_test(test_time))
