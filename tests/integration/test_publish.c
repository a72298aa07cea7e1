/*
 * Integration: publishing events, checked with kcat (a Kafka client that is
 * not our code).
 *
 *   `impulse publish` of 1000 keyed events from a file, straight to the
 *   embedded cluster               -> kcat reads all 1000, each once, with
 *                                     its key; the topic has --partitions
 *   the same with --via-server     -> the same; the Publish RPC answers
 *                                     partition and offset; bad topics and
 *                                     partitions are BAD_REQUEST; a client
 *                                     that leaves with publishes in flight
 *                                     harms nobody
 *   records above the limits       -> a clear error naming the limit, the
 *                                     other events are published, the
 *                                     server keeps serving
 *   `impulse kafka --listen` as a process of its own, a server on it with
 *   --kafka                        -> publish, kcat reads; the events
 *                                     outlive a server restart; SIGTERM
 *                                     stops the cluster cleanly
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cmocka.h>

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "client/client_internal.h"
#include "harness.h"
#include "harness_kafka.h"
#include "tests/support/test_main.h"

#define CALL_TIMEOUT_MS 20000u
#define KCAT_TIMEOUT_MS 20000u
#define NEVENTS 1000

/* ---- helpers ------------------------------------------------------------- */

/* kcat's whole topic, one "%k %s" line per record. */
static char *kcat_read(const char *bootstrap, const char *topic) {
  char *out = it_kcat_read(bootstrap, topic, "%k %s\n", KCAT_TIMEOUT_MS);
  assert_non_null(out);
  return out;
}

static size_t count_lines(const char *s) {
  size_t n = 0;
  for (; *s; s++) n += *s == '\n';
  return n;
}

/* Every record of `topic`, as kcat reads it, is "key<i> value-<i>" for i
 * in [0, n), each once. */
static void expect_keyed_events(const char *bootstrap, const char *topic,
                                int n) {
  char *out = kcat_read(bootstrap, topic);
  char *seen = calloc((size_t)n, 1);
  assert_non_null(seen);
  int lines = 0;
  for (const char *p = out; *p;) {
    const char *nl = strchr(p, '\n');
    assert_non_null(nl);
    int k = -1, v = -2, used = 0;
    if (sscanf(p, "key%d value-%d%n", &k, &v, &used) != 2 || p + used != nl) {
      fprintf(stderr, "unexpected record: %.*s\n", (int)(nl - p), p);
      fail();
    }
    assert_int_equal(k, v);
    assert_true(k >= 0 && k < n);
    if (seen[k]) fprintf(stderr, "duplicate record: key%d\n", k);
    assert_int_equal(seen[k], 0);
    seen[k] = 1;
    lines++;
    p = nl + 1;
  }
  assert_int_equal(lines, n);
  free(seen);
  free(out);
}

/* A file of n lines "key<i>:value-<i>" in the server's directory. */
static void write_events(const it_server_t *s, const char *name, int n,
                         char *path, size_t len) {
  snprintf(path, len, "%s/%s", s->root, name);
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  for (int i = 0; i < n; i++) fprintf(f, "key%d:value-%d\n", i, i);
  assert_int_equal(fclose(f), 0);
}

/* The `kafka:` line of `impulse info`. */
static void info_kafka(const it_server_t *s, char *buf, size_t len) {
  it_cli_t r;
  assert_int_equal(IT_CLI(&r, NULL, "info", "--addr", s->addr), 0);
  assert_int_equal(r.status, 0);
  assert_non_null(it_line_value(r.out, "kafka:", buf, len));
  assert_true(strchr(buf, ':') != NULL);
  it_cli_free(&r);
}

/* What a test of `impulse publish` starts from (kcat is required):
 * NEVENTS events in the file at `path`, the server's Kafka in `boot`. */
static void publish_setup(const it_server_t *s, char *path, size_t path_len,
                          char *boot, size_t boot_len) {
  it_require("kcat");
  write_events(s, "events.txt", NEVENTS, path, path_len);
  info_kafka(s, boot, boot_len);
}

/* `impulse publish ARGS... --addr ADDR` exits 0 and says `want`. */
static void publish_ok(const it_server_t *s, const char *want,
                       const char *const *args) {
  const char *argv[IT_MAX_ARGS];
  size_t n = 0;
  argv[n++] = "publish";
  for (size_t i = 0; args[i] != NULL && n < IT_MAX_ARGS - 3; i++)
    argv[n++] = args[i];
  argv[n++] = "--addr";
  argv[n++] = s->addr;
  argv[n] = NULL;
  it_cli_t r;
  assert_int_equal(it_cli(&r, NULL, argv), 0);
  if (r.status != 0 || strstr(r.out, want) == NULL)
    fprintf(stderr, "publish: status %d\nstdout: %s\nstderr: %s\n", r.status,
            r.out, r.err);
  assert_int_equal(r.status, 0);
  assert_non_null(strstr(r.out, want));
  it_cli_free(&r);
}

#define PUBLISH_OK(s, want, ...) \
  publish_ok((s), (want), (const char *const[]){__VA_ARGS__, NULL})

static int setup_limits(void **state) {
  static const char *const extra[] = {"--max-frame", "1048576", "--kafka-opt",
                                      "message.max.bytes=100000", NULL};
  return it_fixture_setup(state, extra);
}

/* ---- tests --------------------------------------------------------------- */

static void test_publish_direct(void **state) {
  it_server_t *s = *state;
  char path[300], boot[256];
  publish_setup(s, path, sizeof path, boot, sizeof boot);

  PUBLISH_OK(s, "published 1000 events to direct", "direct", "-K", ":", "-f",
             path, "--partitions", "4");

  assert_int_equal(it_kcat_partitions(boot, "direct", KCAT_TIMEOUT_MS), 4);
  expect_keyed_events(boot, "direct", NEVENTS);

  /* One event with -k and -d: its partition and offset are printed. */
  PUBLISH_OK(s, "published 1 event to direct (partition ", "direct", "-k",
             "one", "-d", "single");
  char *out = kcat_read(boot, "direct");
  assert_int_equal(count_lines(out), NEVENTS + 1);
  assert_non_null(strstr(out, "one single\n"));
  free(out);
  s->test_passed = 1;
}

/* A PublishRequest of `value` to `topic` (key NULL: none; partition -1:
 * the producer's choice) in *req, its body in *pub; all borrowed. */
static void publish_request(Impulse__Envelope *req,
                            Impulse__PublishRequest *pub, const char *topic,
                            const char *key, const char *value, int partition) {
  impulse__envelope__init(req);
  impulse__publish_request__init(pub);
  pub->topic = (char *)topic;
  if (key != NULL) {
    pub->has_key = 1;
    pub->key.data = (uint8_t *)key;
    pub->key.len = strlen(key);
  }
  pub->has_value = 1;
  pub->value.data = (uint8_t *)value;
  pub->value.len = strlen(value);
  if (partition != -1) {
    pub->has_partition = 1;
    pub->partition = partition;
  }
  req->body_case = IMPULSE__ENVELOPE__BODY_PUBLISH;
  req->publish = pub;
}

/* Sends one PublishRequest; returns the status, *resp on success. */
static int publish_rpc(impulse_client_t *c, const char *topic, const char *key,
                       const char *value, int partition,
                       Impulse__Envelope **resp) {
  Impulse__Envelope req;
  Impulse__PublishRequest pub;
  publish_request(&req, &pub, topic, key, value, partition);
  *resp = NULL;
  return imp_client_call_expect(c, &req, IMPULSE__ENVELOPE__BODY_PUBLISH_OK,
                                resp);
}

static void test_publish_via_server(void **state) {
  it_server_t *s = *state;
  char path[300], boot[256];
  publish_setup(s, path, sizeof path, boot, sizeof boot);

  PUBLISH_OK(s, "published 1000 events to rpc", "rpc", "-K", ":", "-f", path,
             "--via-server");
  expect_keyed_events(boot, "rpc", NEVENTS);
  /* Created on demand with the server's default partition count. */
  assert_int_equal(it_kcat_partitions(boot, "rpc", KCAT_TIMEOUT_MS), 8);

  /* The RPC itself: acknowledged with partition and offset; one key stays
   * on one partition, in order. */
  impulse_client_t *c = it_connect_ok(s, 0, CALL_TIMEOUT_MS);
  Impulse__Envelope *a = NULL, *b = NULL;
  assert_int_equal(publish_rpc(c, "rpc", "same", "first", -1, &a), 0);
  assert_int_equal(publish_rpc(c, "rpc", "same", "second", -1, &b), 0);
  assert_true(a->publish_ok->has_partition && a->publish_ok->has_offset);
  assert_int_equal(a->publish_ok->partition, b->publish_ok->partition);
  assert_true(b->publish_ok->offset > a->publish_ok->offset);
  impulse__envelope__free_unpacked(a, NULL);
  impulse__envelope__free_unpacked(b, NULL);
  assert_int_equal(publish_rpc(c, "rpc", NULL, "to 2", 2, &a), 0);
  assert_int_equal(a->publish_ok->partition, 2);
  impulse__envelope__free_unpacked(a, NULL);

  /* Bad requests get BAD_REQUEST and a reason. */
  assert_int_equal(publish_rpc(c, "no spaces", NULL, "x", -1, &a),
                   IMPULSE_S_BAD_REQUEST);
  assert_non_null(strstr(impulse_client_error(c), "topic name"));
  assert_int_equal(publish_rpc(c, "rpc", NULL, "x", -5, &a),
                   IMPULSE_S_BAD_REQUEST);
  assert_int_equal(publish_rpc(c, "rpc", NULL, "x", 99, &a),
                   IMPULSE_S_BAD_REQUEST);
  assert_non_null(strstr(impulse_client_error(c), "partition"));

  /* EnsureTopic creates with the count asked for. */
  unsigned partitions = 0;
  assert_int_equal(sup_ensure_topic(c, "three", 3, &partitions), 0);
  assert_int_equal(partitions, 3);
  assert_int_equal(it_kcat_partitions(boot, "three", KCAT_TIMEOUT_MS), 3);
  impulse_client_close(c);

  /* A client that leaves with 500 publishes in flight: the answers are
   * dropped, the records are still written, the server serves on. */
  c = it_connect_ok(s, 0, CALL_TIMEOUT_MS);
  for (int i = 0; i < 500; i++) {
    Impulse__Envelope q;
    Impulse__PublishRequest pub;
    publish_request(&q, &pub, "left", NULL, "gone", -1);
    assert_int_equal(imp_client_send(c, &q, NULL), 0);
  }
  Impulse__Envelope *first = NULL;
  assert_int_equal(imp_client_recv(c, &first), 0); /* flushed and under way */
  impulse__envelope__free_unpacked(first, NULL);
  impulse_client_close(c);
  PUBLISH_OK(s, "published 1 event to left", "left", "-d", "after",
             "--via-server");
  char *out = kcat_read(boot, "left");
  assert_int_equal(count_lines(out), 501);
  free(out);
  s->test_passed = 1;
}

static void test_publish_too_large(void **state) {
  it_server_t *s = *state;
  it_require("kcat");
  char boot[256], path[300];
  info_kafka(s, boot, sizeof boot);

  /* Direct: the server's frame limit (1 MiB here) bounds an event. */
  snprintf(path, sizeof path, "%s/big.txt", s->root);
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  fputs("small1\n", f);
  for (int i = 0; i < (2 << 20); i++) fputc('x', f);
  fputs("\nsmall2\n", f);
  assert_int_equal(fclose(f), 0);
  it_cli_t r;
  assert_int_equal(
      IT_CLI(&r, NULL, "publish", "sizes", "-f", path, "--addr", s->addr), 0);
  assert_int_equal(r.status, 1);
  assert_non_null(strstr(r.out, "published 2 events to sizes"));
  assert_non_null(strstr(r.err, "line 2"));
  assert_non_null(strstr(r.err, "above the 1048576-byte limit"));
  assert_non_null(strstr(r.err, "1 of 3 events were not published"));
  it_cli_free(&r);

  /* Through the server: its producer's message.max.bytes (100000 here)
   * bounds a record, and the answer says so. */
  snprintf(path, sizeof path, "%s/mid.txt", s->root);
  f = fopen(path, "w");
  assert_non_null(f);
  fputs("small3\n", f);
  for (int i = 0; i < 200000; i++) fputc('y', f);
  fputs("\nsmall4\n", f);
  assert_int_equal(fclose(f), 0);
  assert_int_equal(IT_CLI(&r, NULL, "publish", "sizes", "-f", path,
                          "--via-server", "--addr", s->addr),
                   0);
  assert_int_equal(r.status, 1);
  assert_non_null(strstr(r.out, "published 2 events to sizes"));
  assert_non_null(strstr(r.err, "TOO_LARGE"));
  assert_non_null(strstr(r.err, "record of 200000 bytes is above the"));
  it_cli_free(&r);

  /* The server keeps serving; exactly the small events were written. */
  PUBLISH_OK(s, "published 1 event to sizes", "sizes", "-d", "small5",
             "--via-server");
  char *out = kcat_read(boot, "sizes");
  assert_int_equal(count_lines(out), 5);
  for (int i = 1; i <= 5; i++) {
    char want[32];
    snprintf(want, sizeof want, "small%d\n", i);
    assert_non_null(strstr(out, want));
  }
  free(out);
  s->test_passed = 1;
}

/* A standalone cluster with a server on it. */
typedef struct standalone_s {
  char dir[64];
  it_kafka_t k;
  it_server_t s;
} standalone_t;

static int setup_standalone(void **state) {
  standalone_t *st = calloc(1, sizeof *st);
  if (st == NULL) return -1;
  *state = st;
  snprintf(st->dir, sizeof st->dir, "/tmp/impulse-kafka-XXXXXX");
  static const char *const topics[] = {"--topic", "ext:3", NULL};
  if (mkdtemp(st->dir) == NULL ||
      it_kafka_start(&st->k, st->dir, topics) != 0) {
    fprintf(stderr, "cannot start `impulse kafka`\n");
    return -1;
  }
  const char *const extra[] = {"--kafka", st->k.addr, NULL};
  return it_server_start(&st->s, extra);
}

static int teardown_standalone(void **state) {
  standalone_t *st = *state;
  if (st == NULL) return 0;
  int passed = st->s.test_passed;
  int rc = it_server_finish(&st->s);
  it_kafka_finish(&st->k, passed);
  rmdir(st->dir);
  free(st);
  return rc;
}

static void test_standalone_cluster(void **state) {
  standalone_t *st = *state;
  it_kafka_t *k = &st->k;
  it_server_t *s = &st->s;
  it_require("kcat");
  assert_non_null(strstr(k->addr, "127.0.0.1:"));

  /* stdout holds the one line "kafka: ADDR". */
  char *kout = NULL, want[300];
  size_t klen = 0;
  assert_int_equal(it_read_file(k->out, &kout, &klen), 0);
  snprintf(want, sizeof want, "kafka: %s\n", k->addr);
  assert_string_equal(kout, want);
  free(kout);

  char boot[256], path[300];
  info_kafka(s, boot, sizeof boot);
  assert_string_equal(boot, k->addr);

  write_events(s, "events.txt", NEVENTS, path, sizeof path);
  PUBLISH_OK(s, "published 1000 events to ext", "ext", "-K", ":", "-f", path);
  PUBLISH_OK(s, "published 1 event to made", "made", "-d", "on demand",
             "--via-server");
  assert_int_equal(it_kcat_partitions(k->addr, "ext", KCAT_TIMEOUT_MS), 3);
  expect_keyed_events(k->addr, "ext", NEVENTS);

  /* The events live in the cluster's process: a server restart keeps
   * them, and the restarted server publishes on. */
  assert_int_equal(it_server_stop_checked(s), 0);
  assert_int_equal(it_server_restart(s), 0);
  PUBLISH_OK(s, "published 1 event to ext", "ext", "-k", "key1000", "-d",
             "value-1000");
  expect_keyed_events(k->addr, "ext", NEVENTS + 1);
  char *out = kcat_read(k->addr, "made");
  assert_string_equal(out, " on demand\n");
  free(out);

  /* SIGTERM stops the cluster cleanly and removes its bootstrap file. */
  assert_int_equal(it_server_stop_checked(s), 0);
  assert_int_equal(it_kafka_stop(k), 0);
  assert_int_not_equal(access(k->file, F_OK), 0);
  s->test_passed = 1;
}

TEST_MAIN("integration_publish", NULL, NULL,
          IT_SERVER_TEST(test_publish_direct, it_fixture_plain),
          IT_SERVER_TEST(test_publish_via_server, it_fixture_plain),
          IT_SERVER_TEST(test_publish_too_large, setup_limits),
          cmocka_unit_test_setup_teardown(test_standalone_cluster,
                                          setup_standalone,
                                          teardown_standalone))
