/*
 * Integration: triggers turn Kafka records into invocations, at least once.
 * Records are produced with kcat (a Kafka client that is not ours) and with
 * `impulse publish`; functions/recorder.c and functions/flaky.c append what
 * they saw to $IMPULSE_RECORDER_FILE, which their deploy gives them.
 *
 *   10,000 keyed events (kcat) + 10,000 (`impulse publish`), a trigger
 *   with --ordering key onto recorder
 *                                -> every event handled at least once, the
 *                                   offsets of each key in increasing order,
 *                                   all offsets committed in the end
 *   a poison event, an oversized record, a reply topic, onto flaky
 *                                -> the poison event lands in the DLQ after
 *                                   max-retries with the error headers, the
 *                                   oversized one at once with "exceeds
 *                                   --max-event-bytes", every other event is
 *                                   handled and answered on the reply topic
 *                                   with its ce_id, committed offsets move
 *                                   past both
 *   trigger CRUD                 -> EXISTS, NOT_FOUND, BAD_REQUEST with
 *                                   reasons; rm stops it; survives a restart
 *   the function deleted while events flow
 *                                -> the events it can no longer handle are
 *                                   retried, counted, and dead-lettered after
 *                                   max-retries with "does not exist"; every
 *                                   event handled or dead-lettered, all
 *                                   offsets committed
 *   kill -9 of the server in the middle of 10,000 events on a standalone
 *   `impulse kafka`, then restart
 *                                -> every event handled at least once
 *                                   (duplicates counted and printed); the
 *                                   poison event's attempt count survived
 *   two servers, one cluster, the same trigger
 *                                -> the partitions are split between them,
 *                                   every event handled; events produced
 *                                   once both own partitions are handled by
 *                                   both; a restart of the second server
 *                                   to unstick the mock cluster's rebalance
 *                                   is a CTest measurement
 *                                   (rebalance_restarts); when one stops, the
 *                                   other takes its partitions over with
 *                                   nothing handled twice
 *   SIGTERM while events flow, restart
 *                                -> calls under way finish, offsets are
 *                                   committed: no duplicates
 *
 * IT_FILTER=test_name runs a single test.
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

#include "harness.h"
#include "harness_kafka.h"
#include "tests/support/test_main.h"

#define CALL_TIMEOUT_MS 20000u
#define KCAT_TIMEOUT_MS 30000u
#define NKEYS 100

/* ---- the server ---------------------------------------------------------- */

/* A test's world: a directory for the record file and the event files, an
 * optional standalone cluster, and the server. */
typedef struct world_s {
  char dir[64];
  char recfile[128];
  it_kafka_t k;
  it_server_t s;
  it_server_t s2; /* a second server, for tests that need one */
  char boot[256]; /* the Kafka bootstrap address of s */
} world_t;

/* Everything in a topic, one record per line in kcat's format `fmt`. */
static char *kcat_read(const world_t *w, const char *topic, const char *fmt) {
  char *out = it_kcat_read(w->boot, topic, fmt, KCAT_TIMEOUT_MS);
  assert_non_null(out);
  return out;
}

/* The Kafka bootstrap address of the world's server into w->boot; 0, or
 * -1 after saying why. */
static int world_bootstrap(world_t *w) {
  impulse_client_t *c = it_connect(&w->s, 0, CALL_TIMEOUT_MS);
  Impulse__Envelope *resp = NULL;
  int rc = c ? sup_server_info(c, &resp) : -1;
  if (rc == 0) {
    const char *b = resp->server_info_ok->kafka_bootstrap;
    snprintf(w->boot, sizeof w->boot, "%s", b ? b : "");
    impulse__envelope__free_unpacked(resp, NULL);
  }
  impulse_client_close(c);
  if (w->boot[0] != '\0') return 0;
  fprintf(stderr, "the server gave no Kafka bootstrap address\n");
  return -1;
}

static int world_setup(void **state, const char *const *flags, int standalone) {
  world_t *w = calloc(1, sizeof *w);
  if (w == NULL) return -1;
  *state = w;
  snprintf(w->dir, sizeof w->dir, "/tmp/impulse-trig-XXXXXX");
  if (mkdtemp(w->dir) == NULL) return -1;
  snprintf(w->recfile, sizeof w->recfile, "%s/records.txt", w->dir);
  /* Deployed functions get this (deploy_conc). */
  setenv("IMPULSE_RECORDER_FILE", w->recfile, 1);
  const char *extra[16];
  int n = 0;
  char addr[300];
  if (standalone) {
    if (it_kafka_start(&w->k, w->dir, NULL) != 0) {
      fprintf(stderr, "cannot start `impulse kafka`\n");
      return -1;
    }
    snprintf(addr, sizeof addr, "%s", w->k.addr);
    extra[n++] = "--kafka";
    extra[n++] = addr;
  }
  /* recorder and flaky append to a file of this test's, which a
   * sandboxed instance cannot reach (test_sandbox covers the sandbox). */
  extra[n++] = "--sandbox";
  extra[n++] = "none";
  for (int i = 0; flags && flags[i] && n < 14; i++) extra[n++] = flags[i];
  extra[n] = NULL;
  if (it_server_start(&w->s, extra) != 0) return -1;
  return world_bootstrap(w);
}

static int world_teardown(void **state) {
  world_t *w = *state;
  if (w == NULL) return 0;
  int passed = w->s.test_passed;
  int rc = it_server_finish(&w->s);
  if (w->s2.root[0] || w->s2.pid) {
    w->s2.test_passed = passed;
    if (it_server_finish(&w->s2) != 0) rc = -1;
  }
  it_kafka_finish(&w->k, passed);
  sup_rm_tree(w->dir);
  unsetenv("IMPULSE_RECORDER_FILE");
  unsetenv("IMPULSE_FLAKY_DELAY_US");
  free(w);
  return rc;
}

static int setup_embedded(void **state) {
  static const char *const flags[] = {"--max-event-bytes", "4096",
                                      "--default-concurrency", "16", NULL};
  return world_setup(state, flags, 0);
}
static int setup_slow(void **state) {
  static const char *const flags[] = {"--default-concurrency", "16", NULL};
  /* About 1 ms a call: events still flow when the test acts. */
  setenv("IMPULSE_FLAKY_DELAY_US", "1000", 1);
  return world_setup(state, flags, 0);
}
static int setup_standalone(void **state) {
  static const char *const flags[] = {"--default-concurrency", "16", NULL};
  /* About 2 ms a call: the run lasts long enough to be killed midway. */
  setenv("IMPULSE_FLAKY_DELAY_US", "2000", 1);
  return world_setup(state, flags, 1);
}

static void deploy_conc(it_server_t *s, const char *name, const char *fn,
                        uint32_t concurrency) {
  impulse_deploy_opts_t opts = {0};
  opts.concurrency = concurrency;
  opts.max_instances = 2;
  opts.has_max = 1;
  /* The functions' settings, as this test process has them (instances
   * see only the environment they are deployed with). */
  char vars[2][300];
  const char *env[2];
  static const char *const keys[] = {"IMPULSE_RECORDER_FILE",
                                     "IMPULSE_FLAKY_DELAY_US"};
  for (size_t i = 0; i < 2; i++) {
    const char *v = getenv(keys[i]);
    if (v == NULL) continue;
    snprintf(vars[opts.nenv], sizeof vars[0], "%s=%s", keys[i], v);
    env[opts.nenv] = vars[opts.nenv];
    opts.nenv++;
  }
  opts.env = env;
  assert_int_equal(it_deploy_fn_on(s, CALL_TIMEOUT_MS, name, fn, &opts, NULL),
                   IMPULSE_S_OK);
}

static void deploy(it_server_t *s, const char *name, const char *fn) {
  deploy_conc(s, name, fn, 16);
}

/* Trigger options of a test (0 / NULL = the server's default). */
typedef struct topts_s {
  const char *ordering;
  int max_retries; /* -1 = default */
  unsigned backoff_initial, backoff_max;
  unsigned max_in_flight;
  const char *reply_topic;
} topts_t;

/* trigger create; returns the status (0 or -ErrorCode), message in err. */
static int trigger_create(it_server_t *s, const char *name, const char *topic,
                          const char *fn, const topts_t *o, char *err,
                          size_t errlen) {
  impulse_client_t *c = it_connect_ok(s, 1, CALL_TIMEOUT_MS);
  Impulse__TriggerSpec spec = IMPULSE__TRIGGER_SPEC__INIT;
  spec.name = (char *)name;
  spec.topic = (char *)topic;
  spec.function = (char *)fn;
  if (o) {
    spec.ordering = (char *)o->ordering;
    if (o->max_retries >= 0) {
      spec.has_max_retries = 1;
      spec.max_retries = (uint32_t)o->max_retries;
    }
    spec.has_backoff_initial_ms = o->backoff_initial > 0;
    spec.backoff_initial_ms = o->backoff_initial;
    spec.has_backoff_max_ms = o->backoff_max > 0;
    spec.backoff_max_ms = o->backoff_max;
    spec.has_max_in_flight = o->max_in_flight > 0;
    spec.max_in_flight = o->max_in_flight;
    spec.reply_topic = (char *)o->reply_topic;
  }
  int rc = sup_trigger_create(c, &spec);
  if (err) snprintf(err, errlen, "%s", rc ? impulse_client_error(c) : "");
  impulse_client_close(c);
  return rc;
}

static void trigger_create_ok(it_server_t *s, const char *name,
                              const char *topic, const char *fn,
                              const topts_t *o) {
  char err[512];
  int rc = trigger_create(s, name, topic, fn, o, err, sizeof err);
  if (rc != 0) fprintf(stderr, "trigger create %s: %d %s\n", name, rc, err);
  assert_int_equal(rc, 0);
}

/* trigger describe: the answer (free with impulse__envelope__free_unpacked)
 * or NULL with *status set. */
static Impulse__Envelope *trigger_describe(it_server_t *s, const char *name,
                                           int *status) {
  impulse_client_t *c = it_connect_ok(s, 0, CALL_TIMEOUT_MS);
  Impulse__Envelope *resp = NULL;
  int rc = sup_trigger_describe(c, name, &resp);
  if (status) *status = rc;
  impulse_client_close(c);
  return rc == 0 ? resp : NULL;
}

/* trigger describe that must succeed: the trigger's info, its answer in
 * *d (free with impulse__envelope__free_unpacked). */
static const Impulse__TriggerInfo *trigger_info(it_server_t *s,
                                                const char *name,
                                                Impulse__Envelope **d) {
  *d = trigger_describe(s, name, NULL);
  assert_non_null(*d);
  return (*d)->trigger_describe_ok->trigger;
}

static int trigger_delete(it_server_t *s, const char *name) {
  impulse_client_t *c = it_connect_ok(s, 1, CALL_TIMEOUT_MS);
  int rc = sup_trigger_delete(c, name);
  impulse_client_close(c);
  return rc;
}

static void print_info(const Impulse__TriggerInfo *ti) {
  fprintf(stderr,
          "trigger %s: state '%s' received %llu handled %llu retried "
          "%llu dead-lettered %llu in flight %u\n",
          ti->spec->name, ti->state, (unsigned long long)ti->received,
          (unsigned long long)ti->handled, (unsigned long long)ti->retried,
          (unsigned long long)ti->dead_lettered, ti->in_flight);
  for (size_t i = 0; i < ti->n_partitions; i++) {
    const Impulse__PartitionInfo *p = ti->partitions[i];
    fprintf(stderr,
            "  partition %d committed %lld high %lld lag %lld in "
            "flight %u%s\n",
            p->partition, (long long)p->committed, (long long)p->high_watermark,
            (long long)p->lag, p->in_flight, p->paused ? " paused" : "");
  }
}

/* Waits until every assigned partition's committed offset reached its high
 * watermark and `dead` records were dead-lettered. */
static void wait_committed(it_server_t *s, const char *name, uint64_t dead,
                           unsigned ms) {
  uint64_t until = it_now_ms() + ms;
  for (;;) {
    Impulse__Envelope *r;
    const Impulse__TriggerInfo *ti = trigger_info(s, name, &r);
    int done = ti->n_partitions > 0 && ti->dead_lettered >= dead;
    for (size_t i = 0; i < ti->n_partitions; i++) {
      const Impulse__PartitionInfo *p = ti->partitions[i];
      if (p->high_watermark > 0 && p->committed < p->high_watermark) done = 0;
    }
    if (done || it_now_ms() > until) {
      if (!done) print_info(ti);
      impulse__envelope__free_unpacked(r, NULL);
      assert_true(done);
      return;
    }
    impulse__envelope__free_unpacked(r, NULL);
    it_sleep_ms(200);
  }
}

/* ---- the record file ---------------------------------------------------- */

typedef struct line_s {
  int partition;
  long long offset;
  char key[64];
  char value[64];
} line_t;

/* Parses the record file ("TOPIC PARTITION OFFSET KEY VALUE" lines of
 * `topic`); returns the lines (malloc'd) and their count in *n. */
static line_t *read_records(const char *path, const char *topic, size_t *n) {
  *n = 0;
  char *data = NULL;
  size_t len = 0;
  if (it_read_file(path, &data, &len) != 0) return calloc(1, sizeof(line_t));
  size_t cap = 1024;
  line_t *lines = malloc(cap * sizeof *lines);
  assert_non_null(lines);
  char *save = NULL;
  for (char *l = strtok_r(data, "\n", &save); l;
       l = strtok_r(NULL, "\n", &save)) {
    char t[256];
    line_t x;
    if (sscanf(l, "%255s %d %lld %63s %63s", t, &x.partition, &x.offset, x.key,
               x.value) != 5 ||
        strcmp(t, topic) != 0)
      continue;
    if (*n == cap) {
      cap *= 2;
      lines = realloc(lines, cap * sizeof *lines);
      assert_non_null(lines);
    }
    lines[(*n)++] = x;
  }
  free(data);
  return lines;
}

/* How many of the values "<prefix><i>", i < n, were seen; *dups gets the
 * number of extra sightings. */
static size_t count_seen(const line_t *lines, size_t nl, const char *prefix,
                         size_t n, size_t *dups) {
  unsigned char *seen = calloc(n, 1);
  assert_non_null(seen);
  size_t got = 0, pl = strlen(prefix);
  *dups = 0;
  for (size_t i = 0; i < nl; i++) {
    if (strncmp(lines[i].value, prefix, pl) != 0) continue;
    char *end;
    unsigned long v = strtoul(lines[i].value + pl, &end, 10);
    if (*end || v >= n) continue;
    if (seen[v]++)
      (*dups)++;
    else
      got++;
  }
  free(seen);
  return got;
}

/* Waits until all n values "<prefix><i>" were recorded. */
static line_t *wait_all_seen(const char *path, const char *topic,
                             const char *prefix, size_t n, unsigned ms,
                             size_t *nl, size_t *dups) {
  uint64_t until = it_now_ms() + ms;
  for (;;) {
    line_t *lines = read_records(path, topic, nl);
    size_t got = count_seen(lines, *nl, prefix, n, dups);
    if (got == n) return lines;
    free(lines);
    if (it_now_ms() > until) {
      fprintf(stderr, "only %zu of %zu events '%s*' were handled\n", got, n,
              prefix);
      fail();
    }
    it_sleep_ms(200);
  }
}

/* ---- events ------------------------------------------------------------- */

/* Opens a new file of "key:value" lines for `topic` in the world's
 * directory (its path in path); events_produce() sends it. */
static FILE *events_open(const world_t *w, const char *name, char *path,
                         size_t len) {
  snprintf(path, len, "%s/%s.txt", w->dir, name);
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  return f;
}

/* Closes the file and produces its lines to `topic` with kcat. */
static void events_produce(const world_t *w, FILE *f, const char *path,
                           const char *topic) {
  assert_int_equal(fclose(f), 0);
  assert_int_equal(it_kcat_produce(w->boot, topic, path, KCAT_TIMEOUT_MS), 0);
}

/* Produces n events "k<i % nkeys>:<prefix><i>" to `topic`. */
static void produce_events(const world_t *w, const char *topic,
                           const char *prefix, int n, int nkeys) {
  char name[128], path[256];
  snprintf(name, sizeof name, "%s-%s", topic, prefix);
  FILE *f = events_open(w, name, path, sizeof path);
  for (int i = 0; i < n; i++) fprintf(f, "k%d:%s%d\n", i % nkeys, prefix, i);
  events_produce(w, f, path, topic);
}

/* Waits (at most `ms`) until at least `least` of the n values
 * "<prefix><i>" of `topic` were recorded. */
static void wait_some_seen(const world_t *w, const char *topic,
                           const char *prefix, size_t n, size_t least,
                           unsigned ms) {
  uint64_t until = it_now_ms() + ms;
  for (;;) {
    size_t nl, dups;
    line_t *lines = read_records(w->recfile, topic, &nl);
    size_t got = count_seen(lines, nl, prefix, n, &dups);
    free(lines);
    if (got >= least) return;
    assert_true(it_now_ms() < until);
    it_sleep_ms(10);
  }
}

/* Splits a kcat line "KEY|VALUE|HEADERS" in place at its first two '|':
 * the line is the key, *value and *headers point after it. */
static void split_record(char *line, char **value, char **headers) {
  char *v = strchr(line, '|');
  assert_non_null(v);
  *v++ = '\0';
  char *h = strchr(v, '|');
  assert_non_null(h);
  *h++ = '\0';
  *value = v;
  *headers = h;
}

/* ---- tests ------------------------------------------------------------------
 */

static void test_keyed_order(void **state) {
  world_t *w = *state;
  it_server_t *s = &w->s;
  it_require("kcat");
  deploy(s, "rec", "recorder");
  topts_t o = {.ordering = "key", .max_retries = -1};
  trigger_create_ok(s, "keyed", "events", "rec", &o);

  uint64_t t0 = it_now_ms();
  produce_events(w, "events", "a", 10000, NKEYS);

  /* The same again with `impulse publish`, ten keys of 1000 events. */
  const size_t total_b = 10000;
  it_cli_t r;
  for (int k = 0; k < 10; k++) {
    char file[256], key[16];
    snprintf(file, sizeof file, "%s/pub%d.txt", w->dir, k);
    FILE *f = fopen(file, "w");
    assert_non_null(f);
    for (int i = 0; i < 1000; i++) fprintf(f, "b%d\n", k * 1000 + i);
    assert_int_equal(fclose(f), 0);
    snprintf(key, sizeof key, "p%d", k);
    assert_int_equal(IT_CLI(&r, NULL, "publish", "events", "-k", key, "-f",
                            file, "--addr", s->addr),
                     0);
    if (r.status != 0) fprintf(stderr, "publish: %s%s", r.out, r.err);
    assert_int_equal(r.status, 0);
    it_cli_free(&r);
  }

  size_t nl, dups, dups_b = 0;
  line_t *lines =
      wait_all_seen(w->recfile, "events", "a", 10000, 45000, &nl, &dups);
  free(lines);
  lines =
      wait_all_seen(w->recfile, "events", "b", total_b, 20000, &nl, &dups_b);
  uint64_t ms = it_now_ms() - t0;
  fprintf(stderr,
          "%zu events handled in %llu ms (first group join "
          "included), %zu duplicates\n",
          10000 + total_b, (unsigned long long)ms, dups + dups_b);

  /* Per key: one partition, offsets increasing in the order handled. */
  struct {
    char key[64];
    int partition;
    long long last;
  } keys[NKEYS + 10];
  size_t nk = 0, out_of_order = 0;
  for (size_t i = 0; i < nl; i++) {
    size_t k = 0;
    while (k < nk && strcmp(keys[k].key, lines[i].key) != 0) k++;
    if (k == nk) {
      assert_true(nk < NKEYS + 10);
      snprintf(keys[k].key, sizeof keys[k].key, "%s", lines[i].key);
      keys[k].partition = lines[i].partition;
      keys[k].last = -1;
      nk++;
    }
    assert_int_equal(keys[k].partition, lines[i].partition);
    if (lines[i].offset < keys[k].last) {
      if (out_of_order < 5)
        fprintf(stderr, "key %s: offset %lld handled after %lld\n",
                lines[i].key, lines[i].offset, keys[k].last);
      out_of_order++;
    }
    if (lines[i].offset > keys[k].last) keys[k].last = lines[i].offset;
  }
  free(lines);
  assert_int_equal(out_of_order, 0);
  assert_int_equal(nk, NKEYS + 10);
  wait_committed(s, "keyed", 0, 15000);

  Impulse__Envelope *d;
  const Impulse__TriggerInfo *ti = trigger_info(s, "keyed", &d);
  assert_true(ti->received >= 10000 + total_b);
  assert_true(ti->handled >= 10000 + total_b);
  assert_int_equal(ti->dead_lettered, 0);
  /* The records went to the function in batches (a fast handler), and the
   * per-key order above held all the same. */
  fprintf(stderr, "%llu batches carried %llu records\n",
          (unsigned long long)ti->batches, (unsigned long long)ti->batched);
  assert_true(ti->batches > 0);
  assert_true(ti->batched >= 2 * ti->batches);
  assert_string_equal(ti->spec->ordering, "key");
  assert_string_equal(ti->spec->group, "impulse-keyed");
  assert_string_equal(ti->spec->dlq, "events.dlq");
  impulse__envelope__free_unpacked(d, NULL);
  s->test_passed = 1;
}

/* Value of header `name` in a kcat "%h" list "n1=v1,n2=v2", or NULL. */
static char *header_value(const char *hdrs, const char *name, char *buf,
                          size_t len) {
  size_t nl = strlen(name);
  for (const char *p = hdrs; p && *p;) {
    if (strncmp(p, name, nl) == 0 && p[nl] == '=') {
      const char *v = p + nl + 1, *e = strchr(v, ',');
      /* Error messages hold no comma-then-"x-": the next header starts so. */
      while (e && strncmp(e + 1, "x-impulse-", 10) != 0 &&
             strncmp(e + 1, "ce_", 3) != 0)
        e = strchr(e + 1, ',');
      size_t n = e ? (size_t)(e - v) : strlen(v);
      if (n >= len) n = len - 1;
      memcpy(buf, v, n);
      buf[n] = '\0';
      return buf;
    }
    p = strchr(p, ',');
    if (p) p++;
  }
  return NULL;
}

/* Header `name` of a kcat "%h" list is `want`. */
static void expect_header(const char *hdrs, const char *name,
                          const char *want) {
  char buf[512];
  assert_non_null(header_value(hdrs, name, buf, sizeof buf));
  assert_string_equal(buf, want);
}

/* The x-impulse-error header of a kcat "%h" list holds `part`. */
static void expect_error_header(const char *hdrs, const char *part) {
  char buf[512];
  assert_non_null(header_value(hdrs, "x-impulse-error", buf, sizeof buf));
  if (strstr(buf, part) == NULL) fprintf(stderr, "x-impulse-error: %s\n", buf);
  assert_non_null(strstr(buf, part));
}

static void test_poison_and_oversize(void **state) {
  world_t *w = *state;
  it_server_t *s = &w->s;
  it_require("kcat");
  char path[256], buf[512];
  deploy(s, "flaky", "flaky");
  topts_t o = {.ordering = "partition",
               .max_retries = 2,
               .backoff_initial = 20,
               .backoff_max = 100,
               .reply_topic = "orders.replies"};
  trigger_create_ok(s, "orders", "orders", "flaky", &o);

  /* 1000 events, a poison one among them, and a record of 5000 bytes with
   * --max-event-bytes 4096. */
  FILE *f = events_open(w, "orders", path, sizeof path);
  for (int i = 0; i < 1000; i++) {
    fprintf(f, "k%d:v%d\n", i % 10, i);
    if (i == 500) fprintf(f, "k3:poison-1\n");
    if (i == 700) {
      fprintf(f, "k4:big");
      for (int j = 0; j < 4997; j++) fputc('x', f);
      fputc('\n', f);
    }
  }
  events_produce(w, f, path, "orders");

  size_t nl, dups;
  line_t *lines =
      wait_all_seen(w->recfile, "orders", "v", 1000, 30000, &nl, &dups);
  wait_committed(s, "orders", 2, 15000);
  size_t poison_calls = 0;
  long long poison_offset = -1;
  int poison_partition = -1;
  for (size_t i = 0; i < nl; i++) {
    if (strcmp(lines[i].value, "poison-1") == 0) {
      poison_calls++;
      poison_offset = lines[i].offset;
      poison_partition = lines[i].partition;
    }
    assert_true(strncmp(lines[i].value, "big", 3) != 0); /* never invoked */
  }
  free(lines);
  assert_int_equal(poison_calls, 3); /* 1 + max-retries */

  /* The dead-letter topic: both records, with their headers. */
  char *dlq = kcat_read(w, "orders.dlq", "%k|%S|%h\n");
  int found_poison = 0, found_big = 0;
  char *save = NULL;
  for (char *l = strtok_r(dlq, "\n", &save); l;
       l = strtok_r(NULL, "\n", &save)) {
    char *v, *h;
    split_record(l, &v, &h);
    if (strcmp(l, "k3") == 0) {
      found_poison++;
      expect_header(h, "x-impulse-attempts", "3");
      expect_error_header(h, "poison event refused");
      expect_header(h, "x-impulse-original-topic", "orders");
      assert_non_null(
          header_value(h, "x-impulse-original-offset", buf, sizeof buf));
      assert_int_equal(atoll(buf), poison_offset);
      assert_non_null(
          header_value(h, "x-impulse-original-partition", buf, sizeof buf));
      assert_int_equal(atoi(buf), poison_partition);
      expect_header(h, "x-impulse-function", "flaky");
    } else if (strcmp(l, "k4") == 0) {
      found_big++;
      assert_int_equal(atoi(v), 5000); /* %S: the value's size */
      expect_header(h, "x-impulse-error",
                    "record of 5000 bytes exceeds --max-event-bytes 4096");
      expect_header(h, "x-impulse-attempts", "0");
    }
  }
  free(dlq);
  assert_int_equal(found_poison, 1);
  assert_int_equal(found_big, 1);

  /* Replies: one per handled event, key kept, ce_id tying it to the input. */
  char *rep = kcat_read(w, "orders.replies", "%k|%s|%h\n");
  size_t nrep = 0;
  save = NULL;
  for (char *l = strtok_r(rep, "\n", &save); l;
       l = strtok_r(NULL, "\n", &save)) {
    nrep++;
    assert_int_equal(l[0], 'k');
    assert_non_null(strstr(l, "|ok|"));
    assert_non_null(
        header_value(strstr(l, "|ok|") + 4, "ce_id", buf, sizeof buf));
    assert_int_equal(strncmp(buf, "orders-", 7), 0);
  }
  free(rep);
  assert_true(nrep >= 1000);

  Impulse__Envelope *d;
  const Impulse__TriggerInfo *ti = trigger_info(s, "orders", &d);
  assert_int_equal(ti->dead_lettered, 2);
  assert_true(ti->retried >= 2);
  assert_true(ti->received >= 1002);
  impulse__envelope__free_unpacked(d, NULL);
  s->test_passed = 1;
}

/*
 * A worker that dies in the middle of a batch: every record of the batch
 * runs again alone, without an attempt counted against it (the crash
 * cannot be pinned on one of them); the record that crashes it then
 * crashes alone, is counted, and goes to the dead-letter topic after
 * max-retries. With max-retries 1 the crashing event is thus called three
 * times: in its batch, alone, and once more. Everything else is handled.
 * The function runs with concurrency 1 (batches run on the worker's I/O
 * thread; the other tests use handler threads).
 */
static void test_crash_in_batch(void **state) {
  world_t *w = *state;
  it_server_t *s = &w->s;
  it_require("kcat");
  char path[256], buf[512];
  deploy_conc(s, "brittle", "flaky", 1);
  topts_t o = {.ordering = "none",
               .max_retries = 1,
               .backoff_initial = 20,
               .backoff_max = 100};
  trigger_create_ok(s, "brittle", "jobs", "brittle", &o);

  FILE *f = events_open(w, "jobs", path, sizeof path);
  for (int i = 0; i < 4000; i++) {
    fprintf(f, "k%d:j%d\n", i % 50, i);
    if (i == 3000) fprintf(f, "k7:crash-1\n");
  }
  events_produce(w, f, path, "jobs");

  size_t nl, dups;
  line_t *lines =
      wait_all_seen(w->recfile, "jobs", "j", 4000, 60000, &nl, &dups);
  wait_committed(s, "brittle", 1, 30000);
  free(lines);
  lines = read_records(w->recfile, "jobs", &nl);
  size_t crash_calls = 0;
  for (size_t i = 0; i < nl; i++)
    if (strcmp(lines[i].value, "crash-1") == 0) crash_calls++;
  free(lines);
  fprintf(stderr, "crash-1 called %zu times; %zu duplicate calls of others\n",
          crash_calls, dups);
  assert_int_equal(crash_calls, 3);

  char *dlq = kcat_read(w, "jobs.dlq", "%k|%s|%h\n");
  int found = 0;
  char *save = NULL;
  for (char *l = strtok_r(dlq, "\n", &save); l;
       l = strtok_r(NULL, "\n", &save)) {
    char *v, *h;
    split_record(l, &v, &h);
    if (strcmp(l, "k7") != 0 || strcmp(v, "crash-1") != 0) continue;
    found++;
    expect_header(h, "x-impulse-attempts", "2");
    assert_non_null(header_value(h, "x-impulse-error", buf, sizeof buf));
    if (strncmp(buf, "CRASHED", 7) != 0)
      fprintf(stderr, "x-impulse-error: %s\n", buf);
    assert_int_equal(strncmp(buf, "CRASHED", 7), 0);
  }
  free(dlq);
  assert_int_equal(found, 1);

  Impulse__Envelope *d;
  const Impulse__TriggerInfo *ti = trigger_info(s, "brittle", &d);
  assert_int_equal(ti->dead_lettered, 1);
  assert_true(ti->batches > 0);
  assert_true(ti->handled >= 4000);
  impulse__envelope__free_unpacked(d, NULL);
  s->test_passed = 1;
}

static void test_crud(void **state) {
  world_t *w = *state;
  it_server_t *s = &w->s;
  char err[512];
  deploy(s, "echo", "echo");
  topts_t o = {.max_retries = -1};
  assert_int_equal(
      trigger_create(s, "t1", "crud", "nosuch", &o, err, sizeof err),
      -IMPULSE__ERROR_CODE__NOT_FOUND);
  assert_non_null(strstr(err, "nosuch"));
  assert_int_equal(
      trigger_create(s, "bad name", "crud", "echo", &o, err, sizeof err),
      -IMPULSE__ERROR_CODE__BAD_REQUEST);
  assert_int_equal(
      trigger_create(s, "t1", "bad topic!", "echo", &o, err, sizeof err),
      -IMPULSE__ERROR_CODE__BAD_REQUEST);
  topts_t bad = {.ordering = "sideways", .max_retries = -1};
  assert_int_equal(
      trigger_create(s, "t1", "crud", "echo", &bad, err, sizeof err),
      -IMPULSE__ERROR_CODE__BAD_REQUEST);
  assert_non_null(strstr(err, "ordering"));
  topts_t loop = {.max_retries = -1, .reply_topic = "crud"};
  assert_int_equal(
      trigger_create(s, "t1", "crud", "echo", &loop, err, sizeof err),
      -IMPULSE__ERROR_CODE__BAD_REQUEST);
  trigger_create_ok(s, "t1", "crud", "echo", &o);
  assert_int_equal(trigger_create(s, "t1", "crud", "echo", &o, err, sizeof err),
                   -IMPULSE__ERROR_CODE__EXISTS);
  trigger_create_ok(s, "t2", "crud", "echo", &o);

  /* Kept across a restart, defaults filled in. */
  assert_int_equal(it_server_stop_checked(s), 0);
  assert_int_equal(it_server_restart(s), 0);
  int st = 0;
  Impulse__Envelope *d = trigger_describe(s, "t1", &st);
  assert_non_null(d);
  const Impulse__TriggerSpec *spec = d->trigger_describe_ok->trigger->spec;
  assert_string_equal(spec->topic, "crud");
  assert_string_equal(spec->function, "echo");
  assert_string_equal(spec->from, "earliest");
  assert_string_equal(spec->ordering, "partition");
  assert_int_equal(spec->max_in_flight, 64);
  assert_int_equal(spec->max_retries, 3);
  assert_int_equal(spec->backoff_initial_ms, 100);
  assert_int_equal(spec->backoff_max_ms, 10000);
  impulse__envelope__free_unpacked(d, NULL);

  assert_int_equal(trigger_delete(s, "t1"), 0);
  assert_null(trigger_describe(s, "t1", &st));
  assert_int_equal(st, -IMPULSE__ERROR_CODE__NOT_FOUND);
  assert_int_equal(trigger_delete(s, "t1"), -IMPULSE__ERROR_CODE__NOT_FOUND);
  assert_non_null(d = trigger_describe(s, "t2", &st));
  impulse__envelope__free_unpacked(d, NULL);
  assert_int_equal(it_server_stop_checked(s), 0);
  assert_int_equal(it_server_restart(s), 0);
  assert_null(trigger_describe(s, "t1", &st));
  assert_non_null(d = trigger_describe(s, "t2", &st));
  impulse__envelope__free_unpacked(d, NULL);
  s->test_passed = 1;
}

static void test_kill9_midway(void **state) {
  world_t *w = *state;
  it_server_t *s = &w->s;
  it_require("kcat");
  char path[256];
  assert_string_equal(w->boot, w->k.addr);
  deploy(s, "flaky", "flaky");
  topts_t o = {.ordering = "partition",
               .max_retries = 5,
               .backoff_initial = 400,
               .backoff_max = 400};
  trigger_create_ok(s, "crashy", "payments", "flaky", &o);

  FILE *f = events_open(w, "payments", path, sizeof path);
  for (int i = 0; i < 10000; i++) {
    fprintf(f, "k%d:c%d\n", i % NKEYS, i);
    if (i == 100) fprintf(f, "k7:poison-2\n");
  }
  events_produce(w, f, path, "payments");

  /* Kill -9 with part of the events handled, calls under way, and the
   * poison event between two of its attempts. */
  uint64_t until = it_now_ms() + 30000;
  size_t nl = 0, poison_before = 0, dups;
  for (;;) {
    line_t *lines = read_records(w->recfile, "payments", &nl);
    poison_before = 0;
    for (size_t i = 0; i < nl; i++)
      poison_before += strcmp(lines[i].value, "poison-2") == 0;
    free(lines);
    if (poison_before >= 2) break;
    assert_true(it_now_ms() < until);
    it_sleep_ms(20);
  }
  it_server_kill9(s);
  line_t *lines = read_records(w->recfile, "payments", &nl);
  size_t before = count_seen(lines, nl, "c", 10000, &dups);
  poison_before = 0;
  for (size_t i = 0; i < nl; i++)
    poison_before += strcmp(lines[i].value, "poison-2") == 0;
  free(lines);
  fprintf(stderr,
          "killed with %zu of 10000 events handled, the poison event "
          "tried %zu times\n",
          before, poison_before);
  assert_true(before < 9000);
  assert_true(poison_before < 6);
  uint64_t t0 = it_now_ms();
  assert_int_equal(it_server_restart(s), 0);

  lines = wait_all_seen(w->recfile, "payments", "c", 10000, 45000, &nl, &dups);
  size_t poison = 0;
  for (size_t i = 0; i < nl; i++)
    poison += strcmp(lines[i].value, "poison-2") == 0;
  free(lines);
  fprintf(stderr,
          "restarted: every event handled %llu ms later, %zu "
          "duplicates (%.1f%% of 10000); the poison event was tried %zu "
          "times in all\n",
          (unsigned long long)(it_now_ms() - t0), dups, dups / 100.0, poison);
  wait_committed(s, "crashy", 1, 20000);
  /* 6 attempts in all; one more when the kill hit an attempt whose failure
   * was not stored yet. A count reset by the restart would give at least
   * poison_before + 6. */
  assert_true(poison >= 6);
  assert_true(poison <= 7);
  assert_true(poison < poison_before + 6);

  char *dlq = kcat_read(w, "payments.dlq", "%k|%h\n");
  assert_non_null(strstr(dlq, "x-impulse-attempts=6"));
  free(dlq);
  s->test_passed = 1;
}

/* Events handled by a server are counted in its own log of the record
 * file only through the shared file; each server's describe tells what it
 * owns. */
static void test_two_servers_split(void **state) {
  world_t *w = *state;
  it_server_t *s = &w->s, *s2 = &w->s2;
  it_require("kcat");
  const char *const extra[] = {"--kafka", w->k.addr,   "--default-concurrency",
                               "16",      "--sandbox", "none",
                               NULL};
  assert_int_equal(it_server_start(s2, extra), 0);
  deploy(s, "flaky", "flaky");
  deploy(s2, "flaky", "flaky");
  topts_t o = {.ordering = "key", .max_retries = -1};
  trigger_create_ok(s, "shared", "split", "flaky", &o);

  produce_events(w, "split", "s", 10000, NKEYS);
  /* The second server joins the group while the first one is busy: the
   * cooperative rebalance moves partitions under load. */
  wait_some_seen(w, "split", "s", 10000, 500, 20000);
  trigger_create_ok(s2, "shared", "split", "flaky", &o);

  size_t nl, dups;
  line_t *lines =
      wait_all_seen(w->recfile, "split", "s", 10000, 45000, &nl, &dups);
  free(lines);
  /* Both end up owning partitions (the embedded cluster's rebalance takes
   * two rounds of session.timeout.ms - 1 s). */
  uint64_t until = it_now_ms() + 40000;
  size_t n1 = 0, n2 = 0;
  int rejoined = 0;
  for (;;) {
    Impulse__Envelope *d1, *d2;
    const Impulse__TriggerInfo *t1 = trigger_info(s, "shared", &d1);
    const Impulse__TriggerInfo *t2 = trigger_info(s2, "shared", &d2);
    n1 = t1->n_partitions;
    n2 = t2->n_partitions;
    if ((n1 && n2) || it_now_ms() > until) {
      print_info(t1);
      print_info(t2);
    }
    impulse__envelope__free_unpacked(d1, NULL);
    impulse__envelope__free_unpacked(d2, NULL);
    if (n1 && n2) break;
    if (it_now_ms() >= until && !rejoined) {
      /* librdkafka 2.0.2's mock cluster can leave a cooperative rebalance
       * stuck (the revoked partitions are never handed out, the members
       * rejoin empty every session timeout). A real broker does not; a
       * fresh member join gets the mock going again, so restart the second
       * server once (its trigger is restored from RocksDB) and wait again. */
      fprintf(stderr,
              "two servers: rebalance stuck (%zu/%zu partitions); "
              "restarting the second server once\n",
              n1, n2);
      it_server_stop(s2);
      assert_int_equal(it_server_restart(s2), 0);
      rejoined = 1;
      until = it_now_ms() + 40000;
    }
    assert_true(it_now_ms() < until);
    it_sleep_ms(200);
  }
  /* When the mock refused a commit during the rebalance ("generation id is
   * not valid"), the second server starts its partitions below what the
   * first handled and handles those events again: let both catch up (all
   * committed) before counting and before the handover. */
  wait_committed(s, "shared", 0, 30000);
  wait_committed(s2, "shared", 0, 30000);
  /* The fallback above is part of the result, not only of stderr: ctest
   * records this measurement with the test (e.g. in its JUnit output). */
  printf(
      "<CTestMeasurement type=\"numeric/double\" "
      "name=\"rebalance_restarts\">%d</CTestMeasurement>\n",
      rejoined);
  fflush(stdout);

  /* Both servers handle events: more of them, on every key, once the
   * partitions are split. */
  uint64_t h1, h2;
  Impulse__Envelope *d1, *d2;
  h1 = trigger_info(s, "shared", &d1)->handled;
  h2 = trigger_info(s2, "shared", &d2)->handled;
  impulse__envelope__free_unpacked(d1, NULL);
  impulse__envelope__free_unpacked(d2, NULL);
  produce_events(w, "split", "t", 2000, NKEYS);
  lines = wait_all_seen(w->recfile, "split", "t", 2000, 30000, &nl, &dups);
  free(lines);
  wait_committed(s, "shared", 0, 30000);
  wait_committed(s2, "shared", 0, 30000);
  uint64_t g1 = trigger_info(s, "shared", &d1)->handled - h1;
  uint64_t g2 = trigger_info(s2, "shared", &d2)->handled - h2;
  impulse__envelope__free_unpacked(d1, NULL);
  impulse__envelope__free_unpacked(d2, NULL);
  fprintf(stderr, "two servers: 2000 more events, handled %llu/%llu\n",
          (unsigned long long)g1, (unsigned long long)g2);
  assert_true(g1 > 0);
  assert_true(g2 > 0);
  assert_true(g1 + g2 >= 2000);

  lines = read_records(w->recfile, "split", &nl);
  count_seen(lines, nl, "s", 10000, &dups);
  free(lines);
  fprintf(stderr,
          "two servers: every event handled, partitions split %zu/%zu, "
          "%zu duplicates\n",
          n1, n2, dups);

  /* The second server stops: its partitions go back to the first one,
   * which finds everything committed and handles nothing again. */
  size_t lines_before = nl;
  assert_int_equal(it_server_stop_checked(s2), 0);
  until = it_now_ms() + 30000;
  for (;;) {
    Impulse__Envelope *d;
    size_t n = trigger_info(s, "shared", &d)->n_partitions;
    impulse__envelope__free_unpacked(d, NULL);
    if (n == n1 + n2) break;
    assert_true(it_now_ms() < until);
    it_sleep_ms(200);
  }
  it_sleep_ms(1500);
  lines = read_records(w->recfile, "split", &nl);
  free(lines);
  if (nl != lines_before)
    fprintf(stderr, "%zu events handled again after the handover\n",
            nl - lines_before);
  assert_int_equal(nl, lines_before);
  wait_committed(s, "shared", 0, 15000);
  s->test_passed = 1;
}

/* SIGTERM while events flow: calls under way finish, offsets are committed
 * before the consumer leaves; after a restart nothing is handled twice. */
static void test_graceful_restart(void **state) {
  world_t *w = *state;
  it_server_t *s = &w->s;
  it_require("kcat");
  deploy(s, "flaky", "flaky");
  topts_t o = {.ordering = "none", .max_retries = -1};
  trigger_create_ok(s, "gentle", "steady", "flaky", &o);
  produce_events(w, "steady", "g", 10000, NKEYS);
  wait_some_seen(w, "steady", "g", 10000, 1000, 20000);
  assert_int_equal(it_server_stop_checked(s), 0);
  size_t nl, dups;
  line_t *lines = read_records(w->recfile, "steady", &nl);
  size_t got = count_seen(lines, nl, "g", 10000, &dups);
  free(lines);
  fprintf(stderr, "stopped with %zu of 10000 events handled\n", got);
  assert_true(got < 10000);
  assert_int_equal(it_server_restart(s), 0);
  lines = wait_all_seen(w->recfile, "steady", "g", 10000, 45000, &nl, &dups);
  free(lines);
  fprintf(stderr, "after a graceful restart: %zu duplicates\n", dups);
  assert_int_equal(dups, 0);
  wait_committed(s, "gentle", 0, 15000);
  s->test_passed = 1;
}

/*
 * The function is deleted while events flow: a missing function is a
 * failure like any other (counted, backed off), so the events it can no
 * longer handle go to the dead-letter topic after max-retries, saying the
 * function does not exist, and the trigger's committed offsets reach the
 * end of the topic instead of waiting for it for ever. Events published
 * after the deletion are all dead-lettered; the others are each handled or
 * dead-lettered (a call under way at the deletion may be both).
 */
static void test_function_deleted(void **state) {
  world_t *w = *state;
  it_server_t *s = &w->s;
  it_require("kcat");
  enum { NM = 3000, ND = 20 };
  deploy(s, "gone", "flaky");
  topts_t o = {.ordering = "none",
               .max_retries = 2,
               .backoff_initial = 20,
               .backoff_max = 50};
  trigger_create_ok(s, "orphan", "lonely", "gone", &o);

  produce_events(w, "lonely", "m", NM, NKEYS);
  /* Delete it as soon as the events are being handled. */
  wait_some_seen(w, "lonely", "m", NM, 1, 20000);
  impulse_client_t *c = it_connect_ok(s, 1, CALL_TIMEOUT_MS);
  assert_int_equal(impulse_delete(c, "gone"), IMPULSE_S_OK);
  impulse_client_close(c);
  produce_events(w, "lonely", "d", ND, ND);

  /* Every record finished: committed to the end, the later ones (at
   * least) dead-lettered. */
  wait_committed(s, "orphan", ND, 60000);

  char *dlq = kcat_read(w, "lonely.dlq", "%k|%s|%h\n");
  unsigned char *dead = calloc(NM + ND, 1);
  assert_non_null(dead);
  size_t ndlq = 0, ndead_d = 0;
  char *save = NULL;
  for (char *l = strtok_r(dlq, "\n", &save); l;
       l = strtok_r(NULL, "\n", &save)) {
    char *v, *h;
    split_record(l, &v, &h);
    ndlq++;
    expect_header(h, "x-impulse-attempts", "3"); /* 1 + max-retries */
    expect_error_header(h, "NOT_FOUND: function 'gone' does not exist");
    unsigned long i = strtoul(v + 1, NULL, 10);
    if (v[0] == 'm' && i < NM) {
      dead[i] = 1;
    } else {
      assert_int_equal(v[0], 'd');
      assert_true(i < ND);
      if (!dead[NM + i]) ndead_d++;
      dead[NM + i] = 1;
    }
  }
  free(dlq);
  assert_int_equal(ndead_d, ND);

  /* The events before the deletion: each handled or dead-lettered. */
  size_t nl, dups, handled = 0, lost = 0;
  line_t *lines = read_records(w->recfile, "lonely", &nl);
  unsigned char *seen = calloc(NM, 1);
  assert_non_null(seen);
  for (size_t i = 0; i < nl; i++) {
    assert_int_not_equal(lines[i].value[0], 'd'); /* after: never handled */
    unsigned long v = strtoul(lines[i].value + 1, NULL, 10);
    if (lines[i].value[0] == 'm' && v < NM && !seen[v]++) handled++;
  }
  free(lines);
  for (size_t i = 0; i < NM; i++)
    if (!seen[i] && !dead[i]) lost++;
  (void)dups;
  fprintf(stderr,
          "function deleted: %zu of %d events handled, %zu records "
          "dead-lettered (%d published after the deletion)\n",
          handled, NM, ndlq, ND);
  assert_int_equal(lost, 0);
  free(seen);
  free(dead);

  Impulse__Envelope *d;
  const Impulse__TriggerInfo *ti = trigger_info(s, "orphan", &d);
  assert_int_equal(ti->dead_lettered, ndlq);
  assert_true(ti->retried >= 2 * ti->dead_lettered); /* counted retries */
  impulse__envelope__free_unpacked(d, NULL);
  s->test_passed = 1;
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_keyed_order, setup_embedded,
                                      world_teardown),
      cmocka_unit_test_setup_teardown(test_poison_and_oversize, setup_embedded,
                                      world_teardown),
      cmocka_unit_test_setup_teardown(test_crash_in_batch, setup_embedded,
                                      world_teardown),
      cmocka_unit_test_setup_teardown(test_crud, setup_embedded,
                                      world_teardown),
      cmocka_unit_test_setup_teardown(test_function_deleted, setup_slow,
                                      world_teardown),
      cmocka_unit_test_setup_teardown(test_kill9_midway, setup_standalone,
                                      world_teardown),
      cmocka_unit_test_setup_teardown(test_two_servers_split, setup_standalone,
                                      world_teardown),
      cmocka_unit_test_setup_teardown(test_graceful_restart, setup_standalone,
                                      world_teardown),
  };
  /* IT_FILTER=test_name runs one test (cmocka's pattern syntax). */
  if (getenv("IT_FILTER")) cmocka_set_test_filter(getenv("IT_FILTER"));
  return imp_test_status(cmocka_run_group_tests(tests, NULL, NULL));
}
