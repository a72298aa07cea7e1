/*
 * impulse-bench-events: events through a trigger, against the ceiling of a
 * raw librdkafka consumer reading the same topic, in one run.
 *
 *   1. `impulse serve` (embedded Kafka) starts in a temp state dir; echo is
 *      deployed (min instances 2, concurrency 1);
 *   2. N events of 100 bytes with keys are published to a 32-partition
 *      topic with an idempotent librdkafka producer;
 *   3. the ceiling: a raw consumer (new group, earliest) reads all N; time
 *      from the first to the last message;
 *   4. a trigger (ordering none, max in flight 64, the default) onto echo reads
 * the same topic from earliest; time until the sum of its committed offsets
 *      reaches N (trigger describe every 100 ms);
 *   5. latency: a second topic, a trigger onto echo with a reply topic;
 *      events carrying their send time (CLOCK_REALTIME) are produced at
 *      half the measured trigger rate; latency = reply receipt - send time;
 *   6. the report; everything is cleaned up.
 *
 * Progress goes to stderr, the report to stdout. No figure is checked.
 */
#include <errno.h>
#include <getopt.h>
#include <librdkafka/rdkafka.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "client_internal.h"

#define FN_NAME "echo"
#define TOPIC "bench-events"
#define LAT_TOPIC "bench-latency"
#define REPLY_TOPIC "bench-latency-reply"
#define RAW_LAT_TOPIC "bench-rawlat"
#define RAW_REPLY_TOPIC "bench-rawlat-reply"
#define VALUE_BYTES 100
#define KEYS 10000u
#define READY_TIMEOUT_MS 20000u
#define MAX_ARTIFACT (64u << 20)

typedef struct opts_s {
  const char *impulse;
  const char *functions;
  unsigned events;
  unsigned partitions;
  unsigned max_in_flight;
  unsigned latency_s;
  unsigned timeout_s;    /* bound of each drain phase */
  unsigned latency_rate; /* 0 = half the measured trigger rate */
} opts_t;

static char g_addr[64];
static char g_token[128];
static char g_bootstrap[512];

static uint64_t realtime_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static impulse_client_t *connect_admin(void) {
  impulse_client_t *c = NULL;
  if (impulse_client_connect(g_addr, g_token, &c) != 0) {
    fprintf(stderr, "impulse-bench-events: connect %s: %s\n", g_addr,
            c ? impulse_client_error(c) : "no memory");
    impulse_client_close(c);
    return NULL;
  }
  impulse_client_set_timeout(c, 30000);
  return c;
}

static int server_info(impulse_client_t *c) {
  Impulse__Envelope req = IMPULSE__ENVELOPE__INIT, *resp = NULL;
  Impulse__ServerInfoRequest info = IMPULSE__SERVER_INFO_REQUEST__INIT;
  req.body_case = IMPULSE__ENVELOPE__BODY_SERVER_INFO;
  req.server_info = &info;
  int rc = imp_client_call_expect(
      c, &req, IMPULSE__ENVELOPE__BODY_SERVER_INFO_OK, &resp);
  if (rc != 0) {
    fprintf(stderr, "impulse-bench-events: server info: %s\n",
            impulse_client_error(c));
    return -1;
  }
  const char *b = resp->server_info_ok->kafka_bootstrap;
  snprintf(g_bootstrap, sizeof g_bootstrap, "%s", b ? b : "");
  impulse__envelope__free_unpacked(resp, NULL);
  if (g_bootstrap[0] == '\0') {
    fprintf(stderr, "impulse-bench-events: the server has no Kafka\n");
    return -1;
  }
  return 0;
}

static int ensure_topic(impulse_client_t *c, const char *topic,
                        unsigned partitions) {
  Impulse__Envelope req = IMPULSE__ENVELOPE__INIT, *resp = NULL;
  Impulse__EnsureTopicRequest e = IMPULSE__ENSURE_TOPIC_REQUEST__INIT;
  e.topic = (char *)topic;
  e.has_partitions = 1;
  e.partitions = partitions;
  req.body_case = IMPULSE__ENVELOPE__BODY_ENSURE_TOPIC;
  req.ensure_topic = &e;
  int rc = imp_client_call_expect(
      c, &req, IMPULSE__ENVELOPE__BODY_ENSURE_TOPIC_OK, &resp);
  if (rc != 0) {
    fprintf(stderr, "impulse-bench-events: ensure topic %s: %s\n", topic,
            impulse_client_error(c));
    return -1;
  }
  unsigned got = resp->ensure_topic_ok->partitions;
  impulse__envelope__free_unpacked(resp, NULL);
  if (got != partitions)
    fprintf(stderr, "impulse-bench-events: topic %s has %u partitions\n", topic,
            got);
  return 0;
}

static int trigger_create(impulse_client_t *c, const char *name,
                          const char *topic, unsigned max_in_flight,
                          const char *reply_topic) {
  Impulse__Envelope req = IMPULSE__ENVELOPE__INIT, *resp = NULL;
  Impulse__TriggerCreateRequest cr = IMPULSE__TRIGGER_CREATE_REQUEST__INIT;
  Impulse__TriggerSpec s = IMPULSE__TRIGGER_SPEC__INIT;
  s.name = (char *)name;
  s.topic = (char *)topic;
  s.function = FN_NAME;
  s.from = "earliest";
  s.ordering = "none";
  s.has_max_in_flight = 1;
  s.max_in_flight = max_in_flight;
  s.reply_topic = (char *)reply_topic;
  cr.spec = &s;
  req.body_case = IMPULSE__ENVELOPE__BODY_TRIGGER_CREATE;
  req.trigger_create = &cr;
  int rc = imp_client_call_expect(
      c, &req, IMPULSE__ENVELOPE__BODY_TRIGGER_CREATE_OK, &resp);
  if (rc != 0) {
    fprintf(stderr, "impulse-bench-events: trigger create %s: %s\n", name,
            impulse_client_error(c));
    return -1;
  }
  impulse__envelope__free_unpacked(resp, NULL);
  return 0;
}

/* Sum of committed offsets and number of assigned partitions; -1 on error. */
static int trigger_progress(impulse_client_t *c, const char *name,
                            uint64_t *committed, unsigned *assigned,
                            uint64_t *handled) {
  Impulse__Envelope req = IMPULSE__ENVELOPE__INIT, *resp = NULL;
  Impulse__TriggerDescribeRequest d = IMPULSE__TRIGGER_DESCRIBE_REQUEST__INIT;
  d.name = (char *)name;
  req.body_case = IMPULSE__ENVELOPE__BODY_TRIGGER_DESCRIBE;
  req.trigger_describe = &d;
  int rc = imp_client_call_expect(
      c, &req, IMPULSE__ENVELOPE__BODY_TRIGGER_DESCRIBE_OK, &resp);
  if (rc != 0) {
    fprintf(stderr, "impulse-bench-events: trigger describe %s: %s\n", name,
            impulse_client_error(c));
    return -1;
  }
  Impulse__TriggerInfo *t = resp->trigger_describe_ok->trigger;
  uint64_t sum = 0;
  for (size_t i = 0; i < t->n_partitions; i++) {
    const Impulse__PartitionInfo *p = t->partitions[i];
    if (p->has_committed && p->committed > 0) sum += (uint64_t)p->committed;
  }
  *committed = sum;
  *assigned = (unsigned)t->n_partitions;
  if (handled) *handled = t->handled;
  impulse__envelope__free_unpacked(resp, NULL);
  return 0;
}

static int deploy_echo(const opts_t *o) {
  char path[1024];
  snprintf(path, sizeof path, "%s/echo.so", o->functions);
  FILE *f = fopen(path, "rb");
  if (f == NULL) {
    fprintf(stderr, "impulse-bench-events: %s: %s\n", path, strerror(errno));
    return -1;
  }
  char *buf = malloc(MAX_ARTIFACT);
  size_t len = buf ? fread(buf, 1, MAX_ARTIFACT, f) : 0;
  fclose(f);
  if (buf == NULL || len == 0) {
    fprintf(stderr, "impulse-bench-events: cannot read %s\n", path);
    free(buf);
    return -1;
  }
  impulse_client_t *c = connect_admin();
  if (c == NULL) {
    free(buf);
    return -1;
  }
  impulse_deploy_opts_t d;
  memset(&d, 0, sizeof d);
  d.concurrency = 1;
  d.min_instances = 2;
  d.max_instances = 2;
  d.has_min = d.has_max = 1;
  uint32_t version = 0;
  int rc = impulse_deploy(c, FN_NAME, buf, len, &d, &version);
  if (rc != 0)
    fprintf(stderr, "impulse-bench-events: deploy: %s: %s\n",
            impulse_status_name(rc), impulse_client_error(c));
  impulse_client_close(c);
  free(buf);
  if (rc != 0) return -1;
  char err[256];
  if (cold_wait_ready(g_addr, FN_NAME, 2, 15000, err, sizeof err) != 0) {
    fprintf(stderr, "impulse-bench-events: %s\n", err);
    return -1;
  }
  return 0;
}

/* ---- librdkafka ---------------------------------------------------------- */

static atomic_ulong dr_ok, dr_fail;

static void on_dr(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque) {
  (void)rk;
  (void)opaque;
  if (m->err)
    atomic_fetch_add(&dr_fail, 1);
  else
    atomic_fetch_add(&dr_ok, 1);
}

static rd_kafka_conf_t *base_conf(void) {
  rd_kafka_conf_t *conf = rd_kafka_conf_new();
  char err[256];
  if (rd_kafka_conf_set(conf, "bootstrap.servers", g_bootstrap, err,
                        sizeof err) != RD_KAFKA_CONF_OK)
    fprintf(stderr, "impulse-bench-events: %s\n", err);
  return conf;
}

static int conf_set(rd_kafka_conf_t *conf, const char *k, const char *v) {
  char err[256];
  if (rd_kafka_conf_set(conf, k, v, err, sizeof err) != RD_KAFKA_CONF_OK) {
    fprintf(stderr, "impulse-bench-events: %s=%s: %s\n", k, v, err);
    return -1;
  }
  return 0;
}

static rd_kafka_t *new_producer(const char *linger_ms) {
  rd_kafka_conf_t *conf = base_conf();
  conf_set(conf, "enable.idempotence", "true");
  conf_set(conf, "linger.ms", linger_ms);
  conf_set(conf, "queue.buffering.max.messages", "1000000");
  rd_kafka_conf_set_dr_msg_cb(conf, on_dr);
  char err[256];
  rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
  if (rk == NULL) {
    fprintf(stderr, "impulse-bench-events: producer: %s\n", err);
    rd_kafka_conf_destroy(conf);
  }
  return rk;
}

static int produce_one(rd_kafka_t *rk, const char *topic, const char *key,
                       const char *value, size_t vlen) {
  for (int tries = 0;; tries++) {
    rd_kafka_resp_err_t e = rd_kafka_producev(
        rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY(key, strlen(key)),
        RD_KAFKA_V_VALUE((void *)value, vlen),
        RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
    if (e == RD_KAFKA_RESP_ERR_NO_ERROR) return 0;
    if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL || tries > 10000 ||
        bench_interrupted) {
      fprintf(stderr, "impulse-bench-events: produce: %s\n",
              rd_kafka_err2str(e));
      return -1;
    }
    rd_kafka_poll(rk, 1);
  }
}

/* Publishes n events of VALUE_BYTES to TOPIC; 0 when all acknowledged. */
static int publish_bulk(unsigned n, double *secs) {
  rd_kafka_t *rk = new_producer("5");
  if (rk == NULL) return -1;
  atomic_store(&dr_ok, 0);
  atomic_store(&dr_fail, 0);
  char key[32], value[VALUE_BYTES + 1];
  memset(value, 'x', VALUE_BYTES);
  value[VALUE_BYTES] = '\0';
  uint64_t t0 = bench_now_ns();
  int rc = 0;
  for (unsigned i = 0; i < n && rc == 0; i++) {
    snprintf(key, sizeof key, "key%05u", i % KEYS);
    char num[16];
    int l = snprintf(num, sizeof num, "%u", i);
    memcpy(value, num, (size_t)l);
    rc = produce_one(rk, TOPIC, key, value, VALUE_BYTES);
    if ((i & 1023) == 0) rd_kafka_poll(rk, 0);
  }
  rd_kafka_flush(rk, 60000);
  *secs = (double)(bench_now_ns() - t0) / 1e9;
  unsigned long ok = atomic_load(&dr_ok), fail = atomic_load(&dr_fail);
  rd_kafka_destroy(rk);
  if (rc != 0 || ok != n) {
    fprintf(stderr,
            "impulse-bench-events: published %lu of %u events (%lu failed)\n",
            ok, n, fail);
    return -1;
  }
  return 0;
}

static rd_kafka_t *new_consumer(const char *group, const char *topic) {
  rd_kafka_conf_t *conf = base_conf();
  conf_set(conf, "group.id", group);
  conf_set(conf, "auto.offset.reset", "earliest");
  conf_set(conf, "fetch.wait.max.ms", "5");
  conf_set(conf, "session.timeout.ms", "6000");
  conf_set(conf, "enable.auto.commit", "false");
  conf_set(conf, "enable.partition.eof", "false");
  char err[256];
  rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err);
  if (rk == NULL) {
    fprintf(stderr, "impulse-bench-events: consumer: %s\n", err);
    rd_kafka_conf_destroy(conf);
    return NULL;
  }
  rd_kafka_poll_set_consumer(rk);
  rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
  rd_kafka_topic_partition_list_add(l, topic, RD_KAFKA_PARTITION_UA);
  rd_kafka_resp_err_t e = rd_kafka_subscribe(rk, l);
  rd_kafka_topic_partition_list_destroy(l);
  if (e) {
    fprintf(stderr, "impulse-bench-events: subscribe: %s\n",
            rd_kafka_err2str(e));
    rd_kafka_destroy(rk);
    return NULL;
  }
  return rk;
}

static void close_consumer(rd_kafka_t *rk) {
  rd_kafka_consumer_close(rk);
  rd_kafka_destroy(rk);
}

/* The ceiling: reads n messages; *secs from the first to the last. */
static int raw_consume(unsigned n, unsigned timeout_s, double *secs,
                       double *join_s) {
  rd_kafka_t *rk = new_consumer("bench-raw", TOPIC);
  if (rk == NULL) return -1;
  uint64_t start = bench_now_ns(), first = 0, last = 0;
  uint64_t end = start + (uint64_t)timeout_s * 1000000000ull;
  unsigned got = 0;
  while (got < n && !bench_interrupted && bench_now_ns() < end) {
    rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
    if (m == NULL) continue;
    if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
      last = bench_now_ns();
      if (got++ == 0) first = last;
    }
    rd_kafka_message_destroy(m);
  }
  close_consumer(rk);
  if (got < n) {
    fprintf(stderr, "impulse-bench-events: raw consumer read %u of %u\n", got,
            n);
    return -1;
  }
  *secs = (double)(last - first) / 1e9;
  *join_s = (double)(first - start) / 1e9;
  return 0;
}

/* ---- latency ------------------------------------------------------------- */

typedef struct lat_s {
  rd_kafka_t *rk;
  atomic_int stop;
  atomic_ulong received;
  uint64_t measure_from_rt; /* events sent before this are warm-up */
  hist_t hist;
  uint64_t bad;
} lat_t;

static void *lat_reader(void *arg) {
  lat_t *l = arg;
  while (!atomic_load(&l->stop)) {
    rd_kafka_message_t *m = rd_kafka_consumer_poll(l->rk, 50);
    if (m == NULL) continue;
    uint64_t now = realtime_ns();
    if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
      char buf[32];
      size_t len = m->len < 31 ? m->len : 31;
      memcpy(buf, m->payload, len);
      buf[len] = '\0';
      char *e;
      unsigned long long ts = strtoull(buf, &e, 10);
      if (e == buf || ts == 0) {
        l->bad++;
      } else {
        if (ts >= l->measure_from_rt && now >= ts)
          hist_record(&l->hist, now - ts);
        atomic_fetch_add(&l->received, 1);
      }
    }
    rd_kafka_message_destroy(m);
  }
  return NULL;
}

/* Waits until the consumer has an assignment (bounded). */
static int wait_assigned(rd_kafka_t *rk, unsigned timeout_ms) {
  uint64_t end = bench_now_ns() + (uint64_t)timeout_ms * 1000000ull;
  while (!bench_interrupted && bench_now_ns() < end) {
    rd_kafka_topic_partition_list_t *a = NULL;
    if (rd_kafka_assignment(rk, &a) == 0 && a) {
      int cnt = a->cnt;
      rd_kafka_topic_partition_list_destroy(a);
      if (cnt > 0) return 0;
    }
    rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 50);
    if (m) rd_kafka_message_destroy(m);
  }
  return -1;
}

/* The floor of the reply path: a raw librdkafka consumer that produces
 * every record it reads, unchanged, to the reply topic (the same two hops
 * as a trigger with a reply topic, without the function). */
typedef struct fwd_s {
  rd_kafka_t *in, *out;
  atomic_int stop;
  int failed;
} fwd_t;

static void *forwarder(void *arg) {
  fwd_t *f = arg;
  while (!atomic_load(&f->stop)) {
    rd_kafka_message_t *m = rd_kafka_consumer_poll(f->in, 50);
    if (m != NULL) {
      if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        char key[64];
        size_t kl = m->key_len < sizeof key - 1 ? m->key_len : sizeof key - 1;
        memcpy(key, m->key ? m->key : "", kl);
        key[kl] = '\0';
        if (produce_one(f->out, RAW_REPLY_TOPIC, key, m->payload, m->len) != 0)
          f->failed = 1;
      }
      rd_kafka_message_destroy(m);
    }
    rd_kafka_poll(f->out, 0);
  }
  return NULL;
}

typedef struct lat_result_s {
  double rate, seconds;
  uint64_t sent, received, measured;
  uint64_t p50, p99, max;
} lat_result_t;

/* Latency publish -> reply at `rate`: through a trigger onto echo with a
 * reply topic, or (raw) through the forwarder above. */
static int latency_phase(const opts_t *o, double rate, int raw,
                         lat_result_t *r) {
  const char *in_topic = raw ? RAW_LAT_TOPIC : LAT_TOPIC;
  const char *reply_topic = raw ? RAW_REPLY_TOPIC : REPLY_TOPIC;
  static fwd_t fwd;
  memset(&fwd, 0, sizeof fwd);
  pthread_t fth;
  int have_fwd = 0;
  static lat_t l; /* hist is large */
  memset(&l, 0, sizeof l);
  hist_reset(&l.hist);
  impulse_client_t *c = connect_admin();
  if (c == NULL) return -1;
  int rc = -1;
  rd_kafka_t *prod = NULL;
  pthread_t th;
  int have_thread = 0;
  if (ensure_topic(c, in_topic, o->partitions) != 0 ||
      ensure_topic(c, reply_topic, o->partitions) != 0)
    goto out;
  l.rk = new_consumer(raw ? "bench-rawreply" : "bench-reply", reply_topic);
  if (l.rk == NULL) goto out;
  if (wait_assigned(l.rk, 20000) != 0) {
    fprintf(stderr, "impulse-bench-events: reply consumer got no partitions\n");
    goto out;
  }
  uint64_t end = bench_now_ns() + 20000000000ull;
  if (raw) {
    fwd.in = new_consumer("bench-forwarder", RAW_LAT_TOPIC);
    fwd.out = new_producer("2"); /* the server's reply producer's linger */
    if (fwd.in == NULL || fwd.out == NULL) goto out;
    if (wait_assigned(fwd.in, 20000) != 0) {
      fprintf(stderr, "impulse-bench-events: forwarder got no partitions\n");
      goto out;
    }
    if (pthread_create(&fth, NULL, forwarder, &fwd) != 0) goto out;
    have_fwd = 1;
  } else if (trigger_create(c, "bench-latency", LAT_TOPIC, o->max_in_flight,
                            REPLY_TOPIC) != 0) {
    goto out;
  }
  /* Wait for the trigger's group to be assigned (bounded). */
  for (; !raw;) {
    uint64_t committed;
    unsigned assigned = 0;
    if (trigger_progress(c, "bench-latency", &committed, &assigned, NULL) != 0)
      goto out;
    if (assigned > 0) break;
    if (bench_now_ns() > end) {
      fprintf(stderr, "impulse-bench-events: latency trigger not assigned\n");
      goto out;
    }
    if (bench_sleep_ms(100) != 0) goto out;
  }
  if (pthread_create(&th, NULL, lat_reader, &l) != 0) goto out;
  have_thread = 1;
  prod = new_producer("0");
  if (prod == NULL) goto out;
  /* 1 s of warm-up at the same rate, then latency_s measured. */
  uint64_t t0 = bench_now_ns();
  uint64_t total_ns = (uint64_t)(o->latency_s + 1) * 1000000000ull;
  l.measure_from_rt = realtime_ns() + 1000000000ull;
  uint64_t sent = 0;
  char key[32], value[VALUE_BYTES + 1];
  memset(value, 'x', VALUE_BYTES);
  value[VALUE_BYTES] = '\0';
  for (;;) {
    if (bench_interrupted) goto out;
    uint64_t el = bench_now_ns() - t0;
    if (el >= total_ns) break;
    uint64_t due = (uint64_t)((double)el / 1e9 * rate);
    while (sent < due) {
      snprintf(key, sizeof key, "key%05u", (unsigned)(sent % KEYS));
      char ts[24];
      int len =
          snprintf(ts, sizeof ts, "%020llu", (unsigned long long)realtime_ns());
      memcpy(value, ts, (size_t)len);
      if (produce_one(prod, in_topic, key, value, VALUE_BYTES) != 0) goto out;
      sent++;
    }
    rd_kafka_poll(prod, 0);
    struct timespec sl = {0, 200000L};
    nanosleep(&sl, NULL);
  }
  r->seconds = (double)(bench_now_ns() - t0) / 1e9;
  rd_kafka_flush(prod, 10000);
  end = bench_now_ns() + 15000000000ull;
  while (atomic_load(&l.received) < sent && bench_now_ns() < end &&
         !bench_interrupted)
    bench_sleep_ms(20);
  atomic_store(&l.stop, 1);
  pthread_join(th, NULL);
  have_thread = 0;
  r->rate = rate;
  r->sent = sent;
  r->received = atomic_load(&l.received);
  r->measured = l.hist.total;
  r->p50 = hist_quantile(&l.hist, 0.5);
  r->p99 = hist_quantile(&l.hist, 0.99);
  r->max = l.hist.max;
  if (r->received < sent)
    fprintf(stderr, "impulse-bench-events: %llu of %llu replies arrived\n",
            (unsigned long long)r->received, (unsigned long long)sent);
  rc = 0;
out:
  if (have_thread) {
    atomic_store(&l.stop, 1);
    pthread_join(th, NULL);
  }
  if (have_fwd) {
    atomic_store(&fwd.stop, 1);
    pthread_join(fth, NULL);
  }
  if (fwd.out) rd_kafka_destroy(fwd.out);
  if (fwd.in) close_consumer(fwd.in);
  if (prod) rd_kafka_destroy(prod);
  if (l.rk) close_consumer(l.rk);
  impulse_client_close(c);
  return rc;
}

/* ---- main ---------------------------------------------------------------- */

/* clang-format off */
static void usage(FILE *f) {
  fprintf(f,
"Usage: impulse-bench-events [options]\n"
"\n"
"Starts `impulse serve` (embedded Kafka), deploys echo, publishes events to a\n"
"topic and measures a raw librdkafka consumer (the ceiling) and a trigger onto\n"
"echo reading the same events, then the publish-to-reply latency of a trigger\n"
"at half the trigger's rate. No figure is checked: this is not a test.\n"
"\n"
"  --impulse PATH       impulse binary [build/impulse]\n"
"  --functions DIR      directory holding echo.so [build/functions]\n"
"  --events N           events published for the throughput phases [1000000]\n"
"  --partitions N       partitions of the topics [32]\n"
"  --max-in-flight N    trigger invocations in flight per partition [64]\n"
"  --latency-seconds S  measured seconds of the latency phase [10]\n"
"  --timeout S          bound of each drain phase [300]\n"
"  --latency-rate R     latency phase events/s [half the trigger rate]\n"
"  -h, --help           this text\n");
}
/* clang-format on */

static int parse_u(const char *s, unsigned min, unsigned max, unsigned *out) {
  char *e;
  errno = 0;
  unsigned long v = strtoul(s, &e, 10);
  if (errno || e == s || *e || v < min || v > max) return -1;
  *out = (unsigned)v;
  return 0;
}

int main(int argc, char **argv) {
  opts_t o = {"build/impulse", "build/functions", 1000000, 32, 64, 10, 300, 0};
  static const struct option lo[] = {
      {"impulse", required_argument, 0, 'i'},
      {"functions", required_argument, 0, 'f'},
      {"events", required_argument, 0, 'n'},
      {"partitions", required_argument, 0, 'p'},
      {"max-in-flight", required_argument, 0, 'm'},
      {"latency-seconds", required_argument, 0, 'l'},
      {"timeout", required_argument, 0, 't'},
      {"latency-rate", required_argument, 0, 'r'},
      {"help", no_argument, 0, 'h'},
      {0, 0, 0, 0}};
  int ch;
  while ((ch = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
    int bad = 0;
    switch (ch) {
      case 'i': o.impulse = optarg; break;
      case 'f': o.functions = optarg; break;
      case 'n': bad = parse_u(optarg, 1, 100000000, &o.events); break;
      case 'p': bad = parse_u(optarg, 1, 1024, &o.partitions); break;
      case 'm': bad = parse_u(optarg, 1, 100000, &o.max_in_flight); break;
      case 'l': bad = parse_u(optarg, 1, 3600, &o.latency_s); break;
      case 't': bad = parse_u(optarg, 1, 86400, &o.timeout_s); break;
      case 'r': bad = parse_u(optarg, 1, 10000000, &o.latency_rate); break;
      case 'h': usage(stdout); return 0;
      default: usage(stderr); return 2;
    }
    if (bad) {
      fprintf(stderr, "impulse-bench-events: bad value '%s'\n", optarg);
      return 2;
    }
  }
  if (optind != argc) {
    usage(stderr);
    return 2;
  }

  char loadavg[64] = "?";
  FILE *la = fopen("/proc/loadavg", "r");
  if (la) {
    if (fgets(loadavg, sizeof loadavg, la)) loadavg[strcspn(loadavg, "\n")] = 0;
    fclose(la);
  }
  char date[64];
  time_t now = time(NULL);
  strftime(date, sizeof date, "%Y-%m-%d %H:%M UTC", gmtime(&now));

  int rc = 1;
  impulse_client_t *c = NULL;
  if (bench_procs_init() != 0) return 1;
  int port = 0;
  fprintf(stderr, "starting impulse serve...\n");
  if (bench_impulse_start(o.impulse, 2, READY_TIMEOUT_MS, &port, g_token,
                          sizeof g_token) != 0)
    goto out;
  snprintf(g_addr, sizeof g_addr, "127.0.0.1:%d", port);
  c = connect_admin();
  if (c == NULL || server_info(c) != 0) goto out;
  fprintf(stderr, "kafka: %s\n", g_bootstrap);
  if (deploy_echo(&o) != 0) goto out;
  if (ensure_topic(c, TOPIC, o.partitions) != 0) goto out;

  double pub_s = 0;
  fprintf(stderr, "publishing %u events...\n", o.events);
  if (publish_bulk(o.events, &pub_s) != 0) goto out;

  double raw_s = 0, raw_join = 0;
  fprintf(stderr, "raw consumer...\n");
  if (raw_consume(o.events, o.timeout_s, &raw_s, &raw_join) != 0) goto out;

  fprintf(stderr, "trigger onto echo...\n");
  uint64_t t_create = bench_now_ns();
  if (trigger_create(c, "bench-throughput", TOPIC, o.max_in_flight, NULL) != 0)
    goto out;
  uint64_t t_first = 0, t_done = 0, committed = 0, handled = 0;
  uint64_t end = t_create + (uint64_t)o.timeout_s * 1000000000ull;
  for (;;) {
    unsigned assigned;
    if (trigger_progress(c, "bench-throughput", &committed, &assigned,
                         &handled) != 0)
      goto out;
    uint64_t t = bench_now_ns();
    if (committed > 0 && t_first == 0) t_first = t;
    if (committed >= o.events) {
      t_done = t;
      break;
    }
    if (t > end || !bench_impulse_alive()) {
      fprintf(stderr,
              "impulse-bench-events: trigger committed %llu of %u events\n",
              (unsigned long long)committed, o.events);
      goto out;
    }
    if (bench_sleep_ms(100) != 0) goto out;
  }
  /* From the first describe showing progress (up to 100 ms + one commit
   * interval late) to the one showing all committed. */
  double trig_s = (double)(t_done - t_first) / 1e9;
  double trig_total_s = (double)(t_done - t_create) / 1e9;
  double raw_rate = o.events / raw_s;
  double trig_rate = trig_s > 0 ? o.events / trig_s : 0;

  double lat_rate = o.latency_rate ? o.latency_rate : trig_rate / 2;
  fprintf(stderr, "latency at %.0f events/s for %u s...\n", lat_rate,
          o.latency_s);
  lat_result_t lr, lraw;
  memset(&lr, 0, sizeof lr);
  memset(&lraw, 0, sizeof lraw);
  fprintf(stderr, "raw forwarder latency at %.0f events/s for %u s...\n",
          lat_rate, o.latency_s);
  int have_raw = latency_phase(&o, lat_rate, 1, &lraw) == 0;
  int have_lat = latency_phase(&o, lat_rate, 0, &lr) == 0;

  printf("impulse-bench-events  %s  load average %s\n", date, loadavg);
  printf(
      "events %u x %d B, %u partitions, trigger ordering none, max in "
      "flight %u, echo min 2 concurrency 1\n\n",
      o.events, VALUE_BYTES, o.partitions, o.max_in_flight);
  printf("%-44s %14s %10s\n", "phase", "events/s", "seconds");
  printf("%-44s %14.0f %10.2f\n", "publish (idempotent producer)",
         o.events / pub_s, pub_s);
  printf("%-44s %14.0f %10.2f\n", "raw consumer, first->last msg (ceiling)",
         raw_rate, raw_s);
  printf("%-44s %14.0f %10.2f\n", "trigger -> echo, first->all committed",
         trig_rate, trig_s);
  printf("%-44s %14.0f %10.2f\n", "trigger -> echo, incl. create + join",
         o.events / trig_total_s, trig_total_s);
  printf("%-44s %14.2f\n", "ratio trigger/raw", trig_rate / raw_rate);
  printf("(raw consumer group join %.2f s, trigger handled %llu)\n\n", raw_join,
         (unsigned long long)handled);
  printf("latency publish -> reply at %.0f events/s (%s), after 1 s warm-up:\n",
         lat_rate, o.latency_rate ? "--latency-rate" : "half the trigger rate");
  printf("%-40s %17s %9s %9s %9s\n", "path", "replies/sent", "p50 ms", "p99 ms",
         "max ms");
  const lat_result_t *rs[2] = {&lraw, &lr};
  const int have[2] = {have_raw, have_lat};
  const char *names[2] = {"raw consumer -> producer (floor)",
                          "trigger -> echo -> --reply-topic"};
  for (int i = 0; i < 2; i++) {
    if (!have[i]) {
      printf("%-40s failed (see stderr)\n", names[i]);
      continue;
    }
    char counts[48];
    snprintf(counts, sizeof counts, "%llu/%llu",
             (unsigned long long)rs[i]->received,
             (unsigned long long)rs[i]->sent);
    printf("%-40s %17s %9.2f %9.2f %9.2f\n", names[i], counts, rs[i]->p50 / 1e6,
           rs[i]->p99 / 1e6, rs[i]->max / 1e6);
  }
  if (have_raw && have_lat && lraw.p50 && lraw.p99)
    printf("%-40s %17s %9.2f %9.2f\n", "ratio trigger/floor", "",
           (double)lr.p50 / lraw.p50, (double)lr.p99 / lraw.p99);
  rc = have_lat && have_raw ? 0 : 1;
out:
  impulse_client_close(c);
  bench_procs_cleanup();
  return rc;
}
