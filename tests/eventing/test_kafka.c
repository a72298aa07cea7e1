/*
 * Unit tests of eventing/kafka.c against an embedded cluster in this
 * process: topic names, on-demand topics and partition counts, the
 * producer's callback contract (exactly once, on the loop thread; never
 * after a refused call; IMP_ECANCELED on close) and its limits.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "core/common.h"
#include "core/limits.h"
#include "eventing/kafka.h"
#include "tests/support/test_main.h"

#define WAIT_MS 10000

typedef struct fixture_s {
  uv_loop_t loop;
  imp_kafka_t *kafka;
} fixture_t;

/* What the callbacks of one test saw. */
typedef struct seen_s {
  unsigned calls, ok, cancelled, other;
  int last_err;
  int32_t partition[256];
  int64_t offset[256];
  pthread_t thread;
  int wrong_thread;
} seen_t;

typedef struct rec_s {
  seen_t *seen;
  unsigned index;
  unsigned calls;
} rec_t;

static void on_produced(void *arg, int err, const char *errstr,
                        int32_t partition, int64_t offset) {
  rec_t *r = arg;
  seen_t *seen = r->seen;
  (void)errstr;
  r->calls++;
  seen->calls++;
  seen->last_err = err;
  if (!pthread_equal(pthread_self(), seen->thread)) seen->wrong_thread = 1;
  if (err == 0) {
    seen->ok++;
    if (r->index < 256) {
      seen->partition[r->index] = partition;
      seen->offset[r->index] = offset;
    }
  } else if (err == IMP_ECANCELED) {
    seen->cancelled++;
  } else {
    seen->other++;
  }
}

static int setup(void **state) {
  fixture_t *f = calloc(1, sizeof *f);
  if (f == NULL || uv_loop_init(&f->loop) != 0) return -1;
  imp_kafka_opts_t opts = {0};
  opts.embedded_brokers = 1;
  opts.default_partitions = 3;
  opts.max_message = 1000;
  char err[256];
  if (imp_kafka_open(&f->loop, &opts, &f->kafka, err, sizeof err) != 0) {
    fprintf(stderr, "imp_kafka_open: %s\n", err);
    return -1;
  }
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fixture_t *f = *state;
  if (f->kafka != NULL) imp_kafka_close(f->kafka, 2000);
  uv_run(&f->loop, UV_RUN_NOWAIT); /* close callbacks of the watches */
  int rc = uv_loop_close(&f->loop);
  free(f);
  return rc == 0 ? 0 : -1;
}

static void on_wait_timer(uv_timer_t *t) {
  (void)t;
}

/* Runs the loop until `*calls` reaches `want` or WAIT_MS pass. */
static void run_until(fixture_t *f, const unsigned *calls, unsigned want) {
  uv_timer_t timer;
  uv_timer_init(&f->loop, &timer);
  uv_timer_start(&timer, on_wait_timer, 10, 10); /* keeps the loop alive */
  uint64_t until = imp_now_ms() + WAIT_MS;
  while (*calls < want && imp_now_ms() < until) uv_run(&f->loop, UV_RUN_ONCE);
  uv_close((uv_handle_t *)&timer, NULL);
  uv_run(&f->loop, UV_RUN_NOWAIT);
}

static void test_topic_names(void **state) {
  (void)state;
  char err[256], name[300];
  assert_int_equal(imp_topic_valid("orders", err, sizeof err), 0);
  assert_int_equal(imp_topic_valid("a.b_c-D9", err, sizeof err), 0);
  assert_int_equal(imp_topic_valid("...", err, sizeof err), 0);
  assert_int_equal(imp_topic_valid("", err, sizeof err), -EINVAL);
  assert_int_equal(imp_topic_valid(NULL, err, sizeof err), -EINVAL);
  assert_int_equal(imp_topic_valid(".", err, sizeof err), -EINVAL);
  assert_int_equal(imp_topic_valid("..", err, sizeof err), -EINVAL);
  assert_int_equal(imp_topic_valid("a b", err, sizeof err), -EINVAL);
  assert_non_null(strstr(err, "position 2"));
  assert_int_equal(imp_topic_valid("caf\xc3\xa9", err, sizeof err), -EINVAL);
  assert_int_equal(imp_topic_valid("a/b", err, sizeof err), -EINVAL);
  memset(name, 'x', 249);
  name[249] = '\0';
  assert_int_equal(imp_topic_valid(name, err, sizeof err), 0);
  name[249] = 'x';
  name[250] = '\0';
  assert_int_equal(imp_topic_valid(name, err, sizeof err), -EINVAL);
}

static void test_topics(void **state) {
  fixture_t *f = *state;
  char err[256];
  assert_true(imp_kafka_is_embedded(f->kafka));
  assert_true(imp_kafka_is_mock(f->kafka));
  assert_non_null(strstr(imp_kafka_bootstrap(f->kafka), "127.0.0.1:"));
  /* Asking never creates. */
  assert_int_equal(imp_kafka_partition_count(f->kafka, "five", 0), -ENOENT);
  assert_int_equal(imp_kafka_partition_count(f->kafka, "five", 0), -ENOENT);
  assert_int_equal(imp_kafka_ensure_topic(f->kafka, "five", 5, err, sizeof err),
                   0);
  assert_int_equal(imp_kafka_partition_count(f->kafka, "five", 0), 5);
  /* An existing topic keeps its count; 0 means the default. */
  assert_int_equal(imp_kafka_ensure_topic(f->kafka, "five", 7, err, sizeof err),
                   0);
  assert_int_equal(imp_kafka_partition_count(f->kafka, "five", 0), 5);
  assert_int_equal(imp_kafka_ensure_topic(f->kafka, "dflt", 0, err, sizeof err),
                   0);
  assert_int_equal(imp_kafka_partition_count(f->kafka, "dflt", 0), 3);
  assert_int_equal(
      imp_kafka_ensure_topic(f->kafka, "bad name", 0, err, sizeof err),
      -EINVAL);
  assert_int_equal(
      imp_kafka_ensure_topic(f->kafka, "huge", 100000, err, sizeof err),
      -EINVAL);
  /* A configuration for other clients carries the bootstrap servers. */
  rd_kafka_conf_t *conf = imp_kafka_conf(f->kafka, err, sizeof err);
  assert_non_null(conf);
  char val[512];
  size_t len = sizeof val;
  assert_int_equal(rd_kafka_conf_get(conf, "bootstrap.servers", val, &len),
                   RD_KAFKA_CONF_OK);
  assert_string_equal(val, imp_kafka_bootstrap(f->kafka));
  rd_kafka_conf_destroy(conf);
}

static void test_produce(void **state) {
  fixture_t *f = *state;
  seen_t seen;
  rec_t recs[100];
  memset(&seen, 0, sizeof seen);
  seen.thread = pthread_self();
  Impulse__Header h = IMPULSE__HEADER__INIT;
  Impulse__Header *hp[] = {&h};
  h.name = "ce_type";
  h.has_value = 1;
  h.value.data = (uint8_t *)"test";
  h.value.len = 4;
  for (unsigned i = 0; i < 100; i++) {
    char key[16], value[32];
    snprintf(key, sizeof key, "k%u", i % 10);
    snprintf(value, sizeof value, "value %u", i);
    recs[i] = (rec_t){&seen, i, 0};
    /* The topic does not exist yet: created on first use, 3 partitions. */
    assert_int_equal(
        imp_kafka_produce(f->kafka, "auto", -1, key, strlen(key), value,
                          strlen(value), hp, 1, on_produced, &recs[i]),
        0);
  }
  assert_int_equal(imp_kafka_in_flight(f->kafka), 100);
  run_until(f, &seen.calls, 100);
  assert_int_equal(seen.calls, 100);
  assert_int_equal(seen.ok, 100);
  assert_int_equal(seen.wrong_thread, 0);
  assert_int_equal(imp_kafka_in_flight(f->kafka), 0);
  for (unsigned i = 0; i < 100; i++) assert_int_equal(recs[i].calls, 1);
  assert_int_equal(imp_kafka_partition_count(f->kafka, "auto", 0), 3);
  /* One key, one partition, increasing offsets. */
  for (unsigned i = 10; i < 100; i++) {
    assert_int_equal(seen.partition[i], seen.partition[i - 10]);
    assert_true(seen.offset[i] > seen.offset[i - 10]);
  }
  /* An explicit partition. */
  rec_t one = {&seen, 200, 0};
  assert_int_equal(imp_kafka_produce(f->kafka, "auto", 2, NULL, 0, "x", 1, NULL,
                                     0, on_produced, &one),
                   0);
  run_until(f, &one.calls, 1);
  assert_int_equal(one.calls, 1);
  assert_int_equal(seen.last_err, 0);
  assert_int_equal(seen.partition[200], 2);
}

static void test_refused(void **state) {
  fixture_t *f = *state;
  seen_t seen;
  memset(&seen, 0, sizeof seen);
  seen.thread = pthread_self();
  rec_t r = {&seen, 0, 0};
  static char big[1001];
  assert_int_equal(imp_kafka_max_message(f->kafka), 1000);
  assert_int_equal(imp_kafka_produce(f->kafka, "t", -1, NULL, 0, big, 1000,
                                     NULL, 0, on_produced, &r),
                   0);
  /* key + value + headers count against the limit. */
  assert_int_equal(imp_kafka_produce(f->kafka, "t", -1, "k", 1, big, 1000, NULL,
                                     0, on_produced, &r),
                   -EMSGSIZE);
  Impulse__Header h = IMPULSE__HEADER__INIT;
  Impulse__Header *hp[] = {&h};
  h.name = "n";
  assert_int_equal(imp_kafka_produce(f->kafka, "t", -1, NULL, 0, big, 1000, hp,
                                     1, on_produced, &r),
                   -EMSGSIZE);
  assert_int_equal(imp_kafka_produce(f->kafka, "no spaces", -1, NULL, 0, "x", 1,
                                     NULL, 0, on_produced, &r),
                   -EINVAL);
  run_until(f, &seen.calls, 1);
  assert_int_equal(seen.calls, 1); /* only the accepted one */
  assert_int_equal(r.calls, 1);
  assert_int_equal(seen.ok, 1);
  /* A partition the topic does not have: refused now or reported. */
  rec_t p = {&seen, 1, 0};
  int rc = imp_kafka_produce(f->kafka, "t", 99, NULL, 0, "x", 1, NULL, 0,
                             on_produced, &p);
  if (rc == 0) {
    run_until(f, &p.calls, 1);
    assert_int_equal(p.calls, 1);
    assert_int_equal(seen.last_err, -ENOENT);
  } else {
    assert_int_equal(rc, -ENOENT);
    assert_int_equal(p.calls, 0);
  }
}

static void test_close_reports_everything(void **state) {
  fixture_t *f = *state;
  seen_t seen;
  static rec_t recs[2000];
  memset(&seen, 0, sizeof seen);
  seen.thread = pthread_self();
  for (unsigned i = 0; i < 2000; i++) {
    recs[i] = (rec_t){&seen, 300, 0};
    assert_int_equal(imp_kafka_produce(f->kafka, "closing", -1, NULL, 0, "v", 1,
                                       NULL, 0, on_produced, &recs[i]),
                     0);
  }
  /* No time to flush: what is not acknowledged yet is cancelled, and every
   * record still gets its one callback. */
  imp_kafka_close(f->kafka, 0);
  f->kafka = NULL;
  assert_int_equal(seen.calls, 2000);
  assert_int_equal(seen.ok + seen.cancelled, 2000);
  for (unsigned i = 0; i < 2000; i++) assert_int_equal(recs[i].calls, 1);
}

TEST_MAIN("unit_kafka", NULL, NULL, cmocka_unit_test(test_topic_names),
          cmocka_unit_test_setup_teardown(test_topics, setup, teardown),
          cmocka_unit_test_setup_teardown(test_produce, setup, teardown),
          cmocka_unit_test_setup_teardown(test_refused, setup, teardown),
          cmocka_unit_test_setup_teardown(test_close_reports_everything, setup,
                                          teardown))
