/*
 * Unit tests for runtime/metrics.c: the Prometheus text writer (escaping,
 * families, cumulative histogram buckets), the collector registry, outcome
 * names and the reading of an ErrorCode from a forwarded answer. Pure, so
 * every output is compared byte for byte.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "base/metrics.h"
#include "core/codec.h"
#include "tests/support/test_main.h"

/* The buffer holds exactly `want`; it is emptied (freed) afterwards. */
static void expect_text(imp_buf_t *b, const char *want) {
  assert_int_equal(imp_buf_append(b, "", 1), 0);
  assert_string_equal(b->data, want);
  imp_buf_free(b);
}

/* The fixture of the writer tests: a writer into a buffer of its own. */
typedef struct out_s {
  imp_buf_t b;
  imp_metrics_writer_t w;
} out_t;

static int out_setup(void **state) {
  out_t *o = calloc(1, sizeof *o);
  if (o == NULL) return -1;
  imp_metrics_writer_init(&o->w, &o->b);
  *state = o;
  return 0;
}

static int out_teardown(void **state) {
  out_t *o = *state;
  imp_buf_free(&o->b);
  free(o);
  return 0;
}

static void test_label_escaping(void **state) {
  out_t *o = *state;
  imp_label_t l[2] = {{"function", "a\"b\\c\nd"}, {"outcome", "ok"}};
  imp_metrics_sample_u64(&o->w, "x_total", l, 2, 7);
  imp_metrics_sample(&o->w, "y", NULL, 0, 0.25);
  imp_metrics_sample(&o->w, "z", l + 1, 1, 3);
  assert_false(o->w.failed);
  expect_text(&o->b,
              "x_total{function=\"a\\\"b\\\\c\\nd\",outcome=\"ok\"} 7\n"
              "y 0.25\n"
              "z{outcome=\"ok\"} 3\n");
}

static void test_family_help_escaping(void **state) {
  out_t *o = *state;
  /* In HELP only backslash and newline are escaped; quotes stay. */
  imp_metrics_family(&o->w, "impulse_x_total", IMP_METRIC_COUNTER,
                     "a \"quoted\" back\\slash\nnext line");
  imp_metrics_family(&o->w, "impulse_g", IMP_METRIC_GAUGE, "g");
  imp_metrics_family(&o->w, "impulse_h", IMP_METRIC_HISTOGRAM, "h");
  expect_text(&o->b,
              "# HELP impulse_x_total a \"quoted\" back\\\\slash\\nnext "
              "line\n"
              "# TYPE impulse_x_total counter\n"
              "# HELP impulse_g g\n# TYPE impulse_g gauge\n"
              "# HELP impulse_h h\n# TYPE impulse_h histogram\n");
}

static void test_values(void **state) {
  out_t *o = *state;
  imp_metrics_sample(&o->w, "a", NULL, 0, 0.1);  /* shortest round-trip */
  imp_metrics_sample(&o->w, "b", NULL, 0, 1e12); /* integral: exact */
  imp_metrics_sample(&o->w, "c", NULL, 0, -2);
  imp_metrics_sample(&o->w, "d", NULL, 0, 1.0 / 0.0);
  imp_metrics_sample_u64(&o->w, "e", NULL, 0, UINT64_MAX);
  expect_text(&o->b,
              "a 0.1\nb 1000000000000\nc -2\nd +Inf\n"
              "e 18446744073709551615\n");
}

static void test_histogram_cumulative(void **state) {
  out_t *o = *state;
  static const double bounds[] = {0.001, 0.01, 0.1};
  imp_histogram_t h;
  imp_histogram_init(&h, bounds, 3);
  imp_histogram_observe(&h, 0.0005); /* first bucket */
  imp_histogram_observe(&h, 0.001);  /* on a bound: le is inclusive */
  imp_histogram_observe(&h, 0.05);   /* third */
  imp_histogram_observe(&h, 0.05);
  imp_histogram_observe(&h, 3); /* +Inf only */
  assert_int_equal(h.count, 5);
  assert_int_equal(h.counts[0], 2);
  assert_int_equal(h.counts[1], 0);
  assert_int_equal(h.counts[2], 2);
  assert_int_equal(h.counts[3], 1);

  imp_label_t l[1] = {{"function", "echo"}};
  imp_metrics_histogram(&o->w, "d_seconds", l, 1, &h);
  expect_text(&o->b,
              "d_seconds_bucket{function=\"echo\",le=\"0.001\"} 2\n"
              "d_seconds_bucket{function=\"echo\",le=\"0.01\"} 2\n"
              "d_seconds_bucket{function=\"echo\",le=\"0.1\"} 4\n"
              "d_seconds_bucket{function=\"echo\",le=\"+Inf\"} 5\n"
              "d_seconds_sum{function=\"echo\"} 3.1015\n"
              "d_seconds_count{function=\"echo\"} 5\n");

  /* Without labels, le is the only one. */
  imp_histogram_init(&h, bounds, 1);
  imp_metrics_histogram(&o->w, "s", NULL, 0, &h);
  expect_text(&o->b,
              "s_bucket{le=\"0.001\"} 0\ns_bucket{le=\"+Inf\"} 0\n"
              "s_sum 0\ns_count 0\n");
}

static void test_duration_bounds(void **state) {
  (void)state;
  /* 100 us to 60 s, ascending, within the histogram's capacity. */
  assert_true(imp_metrics_duration_nbounds <= IMP_HIST_MAX_BOUNDS);
  assert_true(imp_metrics_duration_bounds[0] == 0.0001);
  assert_true(imp_metrics_duration_bounds[imp_metrics_duration_nbounds - 1] ==
              60);
  for (unsigned i = 1; i < imp_metrics_duration_nbounds; i++)
    assert_true(imp_metrics_duration_bounds[i] >
                imp_metrics_duration_bounds[i - 1]);
  assert_true(imp_metrics_store_nbounds <= IMP_HIST_MAX_BOUNDS);
}

static void collect_a(imp_metrics_writer_t *w, void *arg) {
  imp_metrics_sample(w, "a", NULL, 0, *(int *)arg);
}

static void collect_b(imp_metrics_writer_t *w, void *arg) {
  (void)arg;
  imp_metrics_sample(w, "b", NULL, 0, 2);
}

static void test_registry(void **state) {
  (void)state;
  imp_metrics_t *m = imp_metrics_new();
  assert_non_null(m);
  int one = 1;
  assert_int_equal(imp_metrics_register(m, collect_a, &one), 0);
  assert_int_equal(imp_metrics_register(m, collect_b, NULL), 0);
  imp_buf_t b = {0};
  assert_int_equal(imp_metrics_render(m, &b), 0);
  expect_text(&b, "a 1\nb 2\n");
  imp_metrics_unregister(m, collect_a, &one);
  assert_int_equal(imp_metrics_render(m, &b), 0);
  expect_text(&b, "b 2\n");
  assert_non_null(imp_metrics_store_writes(m));
  assert_int_equal(imp_metrics_store_writes(m)->nbounds,
                   imp_metrics_store_nbounds);
  imp_metrics_free(m);
}

static void test_outcome_names(void **state) {
  (void)state;
  char buf[40];
  assert_string_equal(imp_metrics_outcome_name(0, buf, sizeof buf), "ok");
  assert_string_equal(
      imp_metrics_outcome_name(IMPULSE__ERROR_CODE__NOT_FOUND, buf, sizeof buf),
      "not_found");
  assert_string_equal(imp_metrics_outcome_name(
                          IMPULSE__ERROR_CODE__FUNCTION_ERROR, buf, sizeof buf),
                      "function_error");
  assert_string_equal(
      imp_metrics_outcome_name(IMP_OUTCOMES - 1, buf, sizeof buf), "unknown");
  assert_string_equal(imp_metrics_outcome_name(1000, buf, sizeof buf),
                      "unknown");
}

TEST_MAIN("unit_metrics", NULL, NULL,
          cmocka_unit_test_setup_teardown(test_label_escaping, out_setup,
                                          out_teardown),
          cmocka_unit_test_setup_teardown(test_family_help_escaping, out_setup,
                                          out_teardown),
          cmocka_unit_test_setup_teardown(test_values, out_setup, out_teardown),
          cmocka_unit_test_setup_teardown(test_histogram_cumulative, out_setup,
                                          out_teardown),
          cmocka_unit_test(test_duration_bounds),
          cmocka_unit_test(test_registry), cmocka_unit_test(test_outcome_names))
