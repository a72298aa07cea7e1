/*
 * impulse-bench-events: events through a trigger, against the ceiling of a
 * raw librdkafka consumer reading the same topic, and the publish-to-handled
 * latency of a trigger against the publish-to-consumed latency of a raw
 * consumer, in one run.
 *
 *   1. `impulse serve` (embedded Kafka) starts in a temp state dir; echo and
 *      probe (bench/probe.c) are deployed, each with min = max instances 2
 *      and concurrency 1;
 *   2. N events of 100 bytes with keys are published once to a 32-partition
 *      topic with an idempotent librdkafka producer;
 *   3. --rounds rounds (default 3) on that topic, each:
 *      a. the ceiling: a raw consumer in a new group reads all N from
 *         earliest; rate = N / (time from the first to the last message);
 *      b. a trigger with a new name (so a new group; ordering none, max in
 *         flight 64, the default) onto echo reads all N from earliest; rate =
 *         N / (time from the first describe, every 100 ms, showing a
 *         committed offset to the one where the committed offsets sum to
 *         N); also N / (time from the create call to that describe);
 *      c. the trigger is deleted (the answer comes once it has stopped and
 *         left its group) and a describe confirms it is gone;
 *      the report gives every round and the medians of the raw rates, of
 *      the trigger rates and of the per-round ratios trigger/raw;
 *   4. latency, at a fixed rate (default half the median trigger rate), for
 *      1 s of warm-up plus --latency-seconds; every event carries its index,
 *      its send time (CLOCK_REALTIME ns, also kept here) and the path of a
 *      stamp file of 8-byte slots, one per event:
 *      a. the floor: a raw consumer (own group, own fresh topic, assigned
 *         before sending starts) stamps the time it receives each event:
 *         publish -> consumed, the least a trigger could add to;
 *      b. a trigger onto probe (own fresh topic, no reply topic, assigned
 *         before sending starts): probe maps the stamp file in the worker
 *         and writes the time its handler runs into the event's slot:
 *         publish -> handled; once the trigger has committed everything
 *         sent, the file is read;
 *      latency = stamp - send time for every event sent after the warm-up;
 *      events without a stamp are counted as missing;
 *   5. with --reply-latency, also the earlier publish -> reply measurement:
 *      a trigger onto echo with a reply topic against a raw consumer that
 *      forwards every record to a reply topic, receipt - send time;
 *   6. the report; everything is cleaned up.
 *
 * Every wait is bounded by --timeout (the short fixed bounds of the
 * deploys, the flushes and the --reply-latency phases by the shorter of the
 * two); the server is started with a 20 s bound of its own. Progress goes
 * to stderr, the report to stdout. No figure is checked. The librdkafka
 * producer and consumer are in events_kafka.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <librdkafka/rdkafka.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "events_kafka.h"
#include "support.h"

#define FN_ECHO "echo"
#define FN_PROBE "probe"
#define TOPIC "bench-events"
#define PROBE_TOPIC "bench-probe"
#define PROBE_TRIGGER "bench-probe"
#define FLOOR_TOPIC "bench-floor"
#define LAT_TOPIC "bench-latency"
#define REPLY_TOPIC "bench-latency-reply"
#define RAW_LAT_TOPIC "bench-rawlat"
#define RAW_REPLY_TOPIC "bench-rawlat-reply"
#define VALUE_BYTES 100
#define KEYS 10000u
#define READY_TIMEOUT_MS 20000u
#define MAX_ROUNDS 10u
/* Slots of a stamp phase (8 bytes each, twice: send and stamp times). */
#define MAX_STAMPS (64u << 20)

typedef struct opts_s {
  const char *impulse;
  const char *functions;
  const char *probe; /* probe.so */
  unsigned events;
  unsigned partitions;
  unsigned max_in_flight;
  unsigned latency_s;
  unsigned timeout_s;    /* bound of every wait */
  unsigned latency_rate; /* 0 = half the median trigger rate */
  unsigned rounds;
  int reply_latency; /* also the publish -> reply measurement */
} opts_t;

static char g_addr[64];
static char g_token[128];
static char g_bootstrap[512];

static uint64_t realtime_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* A fixed bound of ms, or --timeout when that is shorter. */
static unsigned bound_ms(const opts_t *o, unsigned ms) {
  return (uint64_t)o->timeout_s * 1000u < ms ? o->timeout_s * 1000u : ms;
}

static impulse_client_t *connect_admin(void) {
  return bench_connect("impulse-bench-events", g_addr, g_token);
}

static int server_info(impulse_client_t *c) {
  Impulse__Envelope *resp = NULL;
  if (sup_server_info(c, &resp) != 0) {
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

/* Creates `topic` unless it exists; *got (optional) gets its partition
 * count. */
static int ensure_topic(impulse_client_t *c, const char *topic,
                        unsigned partitions, unsigned *got_out) {
  unsigned got = 0;
  if (sup_ensure_topic(c, topic, partitions, &got) != 0) {
    fprintf(stderr, "impulse-bench-events: ensure topic %s: %s\n", topic,
            impulse_client_error(c));
    return -1;
  }
  if (got != partitions)
    fprintf(stderr, "impulse-bench-events: topic %s has %u partitions\n", topic,
            got);
  if (got_out) *got_out = got;
  return 0;
}

static int trigger_create(impulse_client_t *c, const char *name,
                          const char *topic, const char *function,
                          unsigned max_in_flight, const char *reply_topic) {
  Impulse__TriggerSpec s = IMPULSE__TRIGGER_SPEC__INIT;
  s.name = (char *)name;
  s.topic = (char *)topic;
  s.function = (char *)function;
  s.from = "earliest";
  s.ordering = "none";
  s.has_max_in_flight = 1;
  s.max_in_flight = max_in_flight;
  s.reply_topic = (char *)reply_topic;
  if (sup_trigger_create(c, &s) != 0) {
    fprintf(stderr, "impulse-bench-events: trigger create %s: %s\n", name,
            impulse_client_error(c));
    return -1;
  }
  return 0;
}

/* Sum of committed offsets and number of assigned partitions; -1 on error. */
static int trigger_progress(impulse_client_t *c, const char *name,
                            uint64_t *committed, unsigned *assigned,
                            uint64_t *handled) {
  Impulse__Envelope *resp = NULL;
  if (sup_trigger_describe(c, name, &resp) != 0) {
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

/* Deletes trigger `name`. The server answers once the trigger has stopped
 * (calls under way finished, offsets committed, group left); a describe
 * answering NOT_FOUND then confirms it is gone. Bounded by timeout_s. */
static int trigger_delete(impulse_client_t *c, const char *name,
                          unsigned timeout_s) {
  if (sup_trigger_delete(c, name) != 0) {
    fprintf(stderr, "impulse-bench-events: trigger delete %s: %s\n", name,
            impulse_client_error(c));
    return -1;
  }
  uint64_t end = bench_now_ns() + (uint64_t)timeout_s * 1000000000ull;
  for (;;) {
    Impulse__Envelope *resp = NULL;
    int rc = sup_trigger_describe(c, name, &resp);
    if (rc == -IMPULSE__ERROR_CODE__NOT_FOUND) return 0;
    if (rc != 0) {
      fprintf(stderr, "impulse-bench-events: trigger describe %s: %s\n", name,
              impulse_client_error(c));
      return -1;
    }
    impulse__envelope__free_unpacked(resp, NULL);
    if (bench_now_ns() > end) {
      fprintf(stderr, "impulse-bench-events: trigger %s still listed\n", name);
      return -1;
    }
    if (bench_sleep_ms(50) != 0) return -1;
  }
}

/* Deploys the function object at `path` as `name` (min = max instances 2,
 * concurrency 1) and waits until both instances are ready. */
static int deploy_fn(const opts_t *o, const char *name, const char *path) {
  impulse_client_t *c = connect_admin();
  if (c == NULL) return -1;
  bench_deploy_opts_t d = {
      .concurrency = 1, .min_instances = 2, .max_instances = 2};
  int rc = bench_deploy_file("impulse-bench-events", c, name, path, &d);
  impulse_client_close(c);
  if (rc != 0) return -1;
  char err[256];
  if (cold_wait_ready(g_addr, name, 2, bound_ms(o, 15000), err, sizeof err) !=
      0) {
    fprintf(stderr, "impulse-bench-events: %s\n", err);
    return -1;
  }
  return 0;
}

/* ---- librdkafka (clients in events_kafka.c) ----------------------------- */

/* Publishes n events of VALUE_BYTES to TOPIC; 0 when all acknowledged. */
static int publish_bulk(const opts_t *o, unsigned n, double *secs) {
  ek_reports_t dr;
  atomic_store(&dr.ok, 0);
  atomic_store(&dr.failed, 0);
  rd_kafka_t *rk = ek_producer(g_bootstrap, "5", &dr);
  if (rk == NULL) return -1;
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
    rc = ek_produce(rk, TOPIC, key, value, VALUE_BYTES);
    if ((i & 1023) == 0) rd_kafka_poll(rk, 0);
  }
  rd_kafka_flush(rk, (int)bound_ms(o, 60000));
  *secs = (double)(bench_now_ns() - t0) / 1e9;
  unsigned long ok = atomic_load(&dr.ok), fail = atomic_load(&dr.failed);
  rd_kafka_destroy(rk);
  if (rc != 0 || ok != n) {
    fprintf(stderr,
            "impulse-bench-events: published %lu of %u events (%lu failed)\n",
            ok, n, fail);
    return -1;
  }
  return 0;
}

/* The ceiling: a consumer in `group` reads n messages of TOPIC from
 * earliest; *secs from the first to the last. */
static int raw_consume(const char *group, unsigned n, unsigned timeout_s,
                       double *secs, double *join_s) {
  rd_kafka_t *rk = ek_consumer(g_bootstrap, group, TOPIC);
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
  ek_consumer_close(rk);
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
        if (ek_produce(f->out, RAW_REPLY_TOPIC, key, m->payload, m->len) != 0)
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

/* --reply-latency: latency publish -> reply at `rate`, through a trigger
 * onto echo with a reply topic, or (raw) through the forwarder above. */
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
  if (ensure_topic(c, in_topic, o->partitions, NULL) != 0 ||
      ensure_topic(c, reply_topic, o->partitions, NULL) != 0)
    goto out;
  l.rk = ek_consumer(g_bootstrap, raw ? "bench-rawreply" : "bench-reply",
                     reply_topic);
  if (l.rk == NULL) goto out;
  if (ek_wait_assigned(l.rk, 1, bound_ms(o, 20000)) != 0) {
    fprintf(stderr, "impulse-bench-events: reply consumer got no partitions\n");
    goto out;
  }
  uint64_t end = bench_now_ns() + bound_ms(o, 20000) * 1000000ull;
  if (raw) {
    fwd.in = ek_consumer(g_bootstrap, "bench-forwarder", RAW_LAT_TOPIC);
    /* the server's reply producer's linger */
    fwd.out = ek_producer(g_bootstrap, "2", NULL);
    if (fwd.in == NULL || fwd.out == NULL) goto out;
    if (ek_wait_assigned(fwd.in, 1, bound_ms(o, 20000)) != 0) {
      fprintf(stderr, "impulse-bench-events: forwarder got no partitions\n");
      goto out;
    }
    if (pthread_create(&fth, NULL, forwarder, &fwd) != 0) goto out;
    have_fwd = 1;
  } else if (trigger_create(c, "bench-latency", LAT_TOPIC, FN_ECHO,
                            o->max_in_flight, REPLY_TOPIC) != 0) {
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
  prod = ek_producer(g_bootstrap, "0", NULL);
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
      if (ek_produce(prod, in_topic, key, value, VALUE_BYTES) != 0) goto out;
      sent++;
    }
    rd_kafka_poll(prod, 0);
    struct timespec sl = {0, 200000L};
    nanosleep(&sl, NULL);
  }
  r->seconds = (double)(bench_now_ns() - t0) / 1e9;
  rd_kafka_flush(prod, (int)bound_ms(o, 10000));
  end = bench_now_ns() + bound_ms(o, 15000) * 1000000ull;
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
  if (fwd.in) ek_consumer_close(fwd.in);
  if (prod) rd_kafka_destroy(prod);
  if (l.rk) ek_consumer_close(l.rk);
  impulse_client_close(c);
  return rc;
}

/* ---- latency to the handler (default) ------------------------------------ */

/* One stamp phase: event i was produced at send[i] and handled (trigger)
 * or received (floor) at stamp[i], both CLOCK_REALTIME ns, 0 = not yet. */
typedef struct stamps_s {
  uint64_t *send;
  uint64_t *stamp;
  size_t cap;    /* slots of both */
  uint64_t sent; /* events produced, all acknowledged */
  uint64_t from; /* first event due after the warm-up */
} stamps_t;

typedef struct stamp_result_s {
  uint64_t sent, measured, missing;
  uint64_t handled; /* trigger: handled (describe); floor: received */
  uint64_t p50, p99, max;
} stamp_result_t;

/* The floor's consumer thread: stamps each event of FLOOR_TOPIC with its
 * receipt time. Only it writes stamp[] while it runs. */
typedef struct floor_s {
  rd_kafka_t *rk;
  uint64_t *stamp;
  size_t cap;
  atomic_int stop;
  atomic_ulong received;
  uint64_t bad;
} floor_t;

/* Parses the event index at the start of a payload ("SEQ SEND_NS PATH");
 * 0, or -1 when there is none. */
static int payload_seq(const void *payload, size_t len, uint64_t *seq) {
  const char *p = payload;
  uint64_t v = 0;
  size_t i = 0;
  for (; i < len && i < 19 && p[i] >= '0' && p[i] <= '9'; i++)
    v = v * 10 + (uint64_t)(p[i] - '0');
  if (i == 0 || i >= len || p[i] != ' ') return -1;
  *seq = v;
  return 0;
}

static void *floor_reader(void *arg) {
  floor_t *fl = arg;
  while (!atomic_load(&fl->stop)) {
    rd_kafka_message_t *m = rd_kafka_consumer_poll(fl->rk, 50);
    if (m == NULL) continue;
    uint64_t now = realtime_ns();
    if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
      uint64_t seq;
      if (m->payload == NULL || payload_seq(m->payload, m->len, &seq) != 0 ||
          seq >= fl->cap) {
        fl->bad++;
      } else {
        if (fl->stamp[seq] == 0) fl->stamp[seq] = now;
        atomic_fetch_add(&fl->received, 1);
      }
    }
    rd_kafka_message_destroy(m);
  }
  return NULL;
}

/* Produces to `topic` at `rate` for 1 s of warm-up plus latency_s, with
 * the same producer settings for both paths (linger 0). Each value is
 * "SEQ SEND_NS PATH" padded with NULs to VALUE_BYTES; st->send[SEQ] gets
 * SEND_NS. 0 when everything was acknowledged. */
static int produce_paced(const opts_t *o, const char *topic, double rate,
                         const char *path, stamps_t *st) {
  ek_reports_t dr;
  atomic_store(&dr.ok, 0);
  atomic_store(&dr.failed, 0);
  rd_kafka_t *prod = ek_producer(g_bootstrap, "0", &dr);
  if (prod == NULL) return -1;
  int rc = -1;
  uint64_t t0 = bench_now_ns();
  uint64_t total_ns = (uint64_t)(o->latency_s + 1) * 1000000000ull;
  /* Event i is due at i / rate s: the warm-up is the first second's. */
  st->from = (uint64_t)rate;
  st->sent = 0;
  char key[32], value[VALUE_BYTES];
  for (;;) {
    if (bench_interrupted) goto out;
    uint64_t el = bench_now_ns() - t0;
    if (el >= total_ns) break;
    uint64_t due = (uint64_t)((double)el / 1e9 * rate);
    if (due > st->cap) due = st->cap;
    while (st->sent < due) {
      snprintf(key, sizeof key, "key%05u", (unsigned)(st->sent % KEYS));
      uint64_t ts = realtime_ns();
      int len =
          snprintf(value, sizeof value, "%llu %llu %s",
                   (unsigned long long)st->sent, (unsigned long long)ts, path);
      if (len < 0 || (size_t)len >= sizeof value) {
        fprintf(stderr,
                "impulse-bench-events: %s: path too long for a %d-byte "
                "event\n",
                path, VALUE_BYTES);
        goto out;
      }
      memset(value + len, 0, sizeof value - (size_t)len);
      st->send[st->sent] = ts;
      if (ek_produce(prod, topic, key, value, VALUE_BYTES) != 0) goto out;
      st->sent++;
    }
    rd_kafka_poll(prod, 0);
    struct timespec sl = {0, 200000L};
    nanosleep(&sl, NULL);
  }
  rd_kafka_flush(prod, (int)bound_ms(o, 60000));
  if (atomic_load(&dr.ok) != st->sent) {
    fprintf(stderr,
            "impulse-bench-events: %lu of %llu latency events acknowledged "
            "(%lu failed)\n",
            atomic_load(&dr.ok), (unsigned long long)st->sent,
            atomic_load(&dr.failed));
    goto out;
  }
  rc = 0;
out:
  rd_kafka_destroy(prod);
  return rc;
}

/* Latency = stamp - send of the events due after the warm-up. */
static void stamps_report(const stamps_t *st, stamp_result_t *r) {
  static hist_t hist; /* large; one phase at a time */
  hist_reset(&hist);
  r->sent = st->sent;
  r->missing = 0;
  for (uint64_t i = st->from; i < st->sent; i++) {
    if (st->stamp[i] == 0) {
      r->missing++;
      continue;
    }
    /* One machine, one clock: a stamp before the send is rounding. */
    hist_record(&hist,
                st->stamp[i] > st->send[i] ? st->stamp[i] - st->send[i] : 0);
  }
  r->measured = hist.total;
  r->p50 = hist_quantile(&hist, 0.5);
  r->p99 = hist_quantile(&hist, 0.99);
  r->max = hist.max;
}

/* Reads the stamp file written by the probe into st->stamp. */
static int stamps_read(int fd, stamps_t *st) {
  size_t want = st->cap * sizeof(uint64_t), got = 0;
  char *p = (char *)st->stamp;
  while (got < want) {
    ssize_t n = pread(fd, p + got, want - got, (off_t)got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      fprintf(stderr, "impulse-bench-events: reading the stamp file: %s\n",
              n < 0 ? strerror(errno) : "short file");
      return -1;
    }
    got += (size_t)n;
  }
  return 0;
}

/* Latency at `rate` to the time an event is handled by probe through a
 * trigger (floor = 0), or to the time a raw consumer receives it (floor =
 * 1). Each path has its own fresh topic and group and is assigned its
 * partitions before sending starts. */
static int stamp_latency(const opts_t *o, double rate, int floor,
                         stamp_result_t *r) {
  const char *topic = floor ? FLOOR_TOPIC : PROBE_TOPIC;
  static floor_t fl;
  memset(&fl, 0, sizeof fl);
  stamps_t st;
  memset(&st, 0, sizeof st);
  pthread_t th;
  int have_thread = 0, have_trigger = 0, fd = -1, rc = -1;
  char path[PATH_MAX];
  /* Both paths carry the same path, so their events are alike. */
  snprintf(path, sizeof path, "%s/stamps", bench_tmpdir());
  impulse_client_t *c = connect_admin();
  if (c == NULL) return -1;
  uint64_t timeout_ns = (uint64_t)o->timeout_s * 1000000000ull;
  double cap = rate * (o->latency_s + 1) + 2;
  if (cap > MAX_STAMPS) {
    fprintf(stderr,
            "impulse-bench-events: %.0f latency events are more than %u: "
            "lower --latency-rate or --latency-seconds\n",
            cap, MAX_STAMPS);
    goto out;
  }
  st.cap = (size_t)cap;
  st.send = calloc(st.cap, sizeof *st.send);
  st.stamp = calloc(st.cap, sizeof *st.stamp);
  if (st.send == NULL || st.stamp == NULL) {
    fprintf(stderr, "impulse-bench-events: no memory for %zu stamps\n", st.cap);
    goto out;
  }
  unsigned parts = 0;
  if (ensure_topic(c, topic, o->partitions, &parts) != 0) goto out;
  uint64_t end = bench_now_ns() + timeout_ns;
  if (floor) {
    fl.rk = ek_consumer(g_bootstrap, "bench-floor", FLOOR_TOPIC);
    if (fl.rk == NULL) goto out;
    if (ek_wait_assigned(fl.rk, (int)parts, o->timeout_s * 1000u) != 0) {
      fprintf(stderr, "impulse-bench-events: floor consumer not assigned\n");
      goto out;
    }
    fl.stamp = st.stamp;
    fl.cap = st.cap;
    if (pthread_create(&th, NULL, floor_reader, &fl) != 0) goto out;
    have_thread = 1;
  } else {
    /* The probe maps it MAP_SHARED in its worker processes. */
    fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0 || ftruncate(fd, (off_t)(st.cap * sizeof(uint64_t))) != 0) {
      fprintf(stderr, "impulse-bench-events: %s: %s\n", path, strerror(errno));
      goto out;
    }
    if (trigger_create(c, PROBE_TRIGGER, PROBE_TOPIC, FN_PROBE,
                       o->max_in_flight, NULL) != 0)
      goto out;
    have_trigger = 1;
    for (;;) {
      uint64_t committed;
      unsigned assigned = 0;
      if (trigger_progress(c, PROBE_TRIGGER, &committed, &assigned, NULL) != 0)
        goto out;
      if (assigned >= parts) break;
      if (bench_now_ns() > end || !bench_impulse_alive()) {
        fprintf(stderr, "impulse-bench-events: probe trigger not assigned\n");
        goto out;
      }
      if (bench_sleep_ms(50) != 0) goto out;
    }
  }
  if (produce_paced(o, topic, rate, path, &st) != 0) goto out;
  /* Until everything sent has been received (floor) or committed (trigger:
   * the probe stamps before it answers, the answer comes before the
   * commit). What did not arrive in time is reported as missing. */
  end = bench_now_ns() + timeout_ns;
  uint64_t done = 0;
  while (done < st.sent && bench_now_ns() < end) {
    if (floor) {
      done = atomic_load(&fl.received);
    } else {
      unsigned assigned;
      if (trigger_progress(c, PROBE_TRIGGER, &done, &assigned, &r->handled) !=
          0)
        goto out;
      if (!bench_impulse_alive()) goto out;
    }
    if (done < st.sent && bench_sleep_ms(floor ? 20 : 100) != 0) goto out;
  }
  if (done < st.sent)
    fprintf(
        stderr, "impulse-bench-events: %s: %llu of %llu events after %u s\n",
        floor ? "floor consumer" : "probe trigger", (unsigned long long)done,
        (unsigned long long)st.sent, o->timeout_s);
  if (floor) {
    atomic_store(&fl.stop, 1);
    pthread_join(th, NULL);
    have_thread = 0;
    r->handled = atomic_load(&fl.received);
    if (fl.bad)
      fprintf(stderr, "impulse-bench-events: floor: %llu malformed events\n",
              (unsigned long long)fl.bad);
  } else if (stamps_read(fd, &st) != 0) {
    goto out;
  }
  stamps_report(&st, r);
  rc = 0;
out:
  if (have_thread) {
    atomic_store(&fl.stop, 1);
    pthread_join(th, NULL);
  }
  if (fl.rk) ek_consumer_close(fl.rk);
  /* Not left consuming (idle) while anything else is measured. */
  if (have_trigger && trigger_delete(c, PROBE_TRIGGER, o->timeout_s) != 0)
    rc = -1;
  if (fd >= 0) close(fd);
  free(st.send);
  free(st.stamp);
  impulse_client_close(c);
  return rc;
}

/* ---- throughput rounds --------------------------------------------------- */

typedef struct round_s {
  double raw_rate, raw_s, raw_join;
  double trig_rate, trig_s;
  double trig_total_s; /* from the create call */
  double ratio;
  uint64_t handled;
} round_t;

/* Trigger `name` (a new name, so a new group) onto echo reads the n events
 * of TOPIC from earliest; then it is deleted, whatever happened. */
static int trigger_round(impulse_client_t *c, const opts_t *o, const char *name,
                         round_t *r) {
  uint64_t t_create = bench_now_ns();
  if (trigger_create(c, name, TOPIC, FN_ECHO, o->max_in_flight, NULL) != 0)
    return -1;
  int rc = -1;
  uint64_t t_first = 0, t_done = 0, committed = 0, handled = 0;
  uint64_t end = t_create + (uint64_t)o->timeout_s * 1000000000ull;
  for (;;) {
    unsigned assigned;
    if (trigger_progress(c, name, &committed, &assigned, &handled) != 0)
      goto out;
    uint64_t t = bench_now_ns();
    if (committed > 0 && t_first == 0) t_first = t;
    if (committed >= o->events) {
      t_done = t;
      break;
    }
    if (t > end || !bench_impulse_alive()) {
      fprintf(stderr,
              "impulse-bench-events: trigger committed %llu of %u events\n",
              (unsigned long long)committed, o->events);
      goto out;
    }
    if (bench_sleep_ms(100) != 0) goto out;
  }
  /* From the first describe showing progress (up to 100 ms + one commit
   * interval late) to the one showing all committed. */
  r->trig_s = (double)(t_done - t_first) / 1e9;
  r->trig_total_s = (double)(t_done - t_create) / 1e9;
  r->trig_rate = r->trig_s > 0 ? o->events / r->trig_s : 0;
  r->handled = handled;
  rc = 0;
out:
  if (trigger_delete(c, name, o->timeout_s) != 0) rc = -1;
  return rc;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* Median of the field at byte `off` of n rounds (n >= 1). */
static double rounds_median(const round_t *rounds, unsigned n, size_t off) {
  double v[MAX_ROUNDS];
  for (unsigned i = 0; i < n; i++)
    memcpy(&v[i], (const char *)&rounds[i] + off, sizeof v[i]);
  qsort(v, n, sizeof v[0], cmp_double);
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* ---- main ---------------------------------------------------------------- */

/* clang-format off */
static void usage(FILE *f) {
  fprintf(f,
"Usage: impulse-bench-events [options]\n"
"\n"
"Starts `impulse serve` (embedded Kafka), deploys echo and probe (min = max\n"
"instances 2, concurrency 1), publishes events once to a topic, then runs\n"
"rounds of: a raw librdkafka consumer in a new group reading them all (the\n"
"ceiling, first -> last message), and a new trigger onto echo reading them\n"
"all (first -> all committed). Prints every round and the medians of the\n"
"raw rates, trigger rates and per-round ratios.\n"
"\n"
"Then latency at a fixed rate (1 s warm-up + --latency-seconds): publish ->\n"
"handled (the time probe runs, through a trigger without a reply topic)\n"
"against publish -> consumed (a raw consumer, the floor), each on its own\n"
"fresh topic; events with no stamp are counted as missing. No figure is\n"
"checked: this is not a test.\n"
"\n"
"  --impulse PATH       impulse binary [build/impulse]\n"
"  --functions DIR      directory holding echo.so [build/functions]\n"
"  --probe PATH         the probe function [probe.so next to this program]\n"
"  --events N           events published for the throughput rounds [1000000]\n"
"  --partitions N       partitions of the topics [32]\n"
"  --max-in-flight N    trigger invocations in flight per partition [64]\n"
"  --rounds N           throughput rounds, 1..10 [3]\n"
"  --latency-seconds S  measured seconds of each latency phase [10]\n"
"  --latency-rate R     latency events/s [half the median trigger rate]\n"
"  --reply-latency      also measure publish -> reply: a trigger onto echo\n"
"                       with a reply topic against a raw consumer that\n"
"                       forwards to a reply topic\n"
"  --timeout S          bound of every wait [300]\n"
"  -h, --help           this text\n");
}
/* clang-format on */

/* probe.so in the directory of this program, or "" when unknown. */
static void default_probe(char *buf, size_t len) {
  char exe[PATH_MAX - 16]; /* room for "/probe.so" in a PATH_MAX buf */
  ssize_t n = readlink("/proc/self/exe", exe, sizeof exe);
  if (n <= 0 || (size_t)n >= sizeof exe) n = 0; /* error or truncated */
  char *slash = n > 0 ? memrchr(exe, '/', (size_t)n) : NULL;
  if (slash == NULL) {
    snprintf(buf, len, "build/bench/probe.so");
    return;
  }
  *slash = '\0';
  snprintf(buf, len, "%s/probe.so", exe);
}

/* A row of a latency table: the path, then "failed" (`have` 0), or
 * "got/sent", the missing events (unless `missing` is NULL) and p50, p99
 * and max in ms. */
static void latency_row(const char *path, int have, uint64_t got, uint64_t sent,
                        const uint64_t *missing, uint64_t p50, uint64_t p99,
                        uint64_t max) {
  if (!have) {
    printf("%-40s failed (see stderr)\n", path);
    return;
  }
  char counts[48];
  snprintf(counts, sizeof counts, "%llu/%llu", (unsigned long long)got,
           (unsigned long long)sent);
  printf("%-40s %17s", path, counts);
  if (missing != NULL) printf(" %8llu", (unsigned long long)*missing);
  printf(" %9.2f %9.2f %9.2f\n", p50 / 1e6, p99 / 1e6, max / 1e6);
}

int main(int argc, char **argv) {
  static char probe_default[PATH_MAX];
  default_probe(probe_default, sizeof probe_default);
  opts_t o = {"build/impulse",
              "build/functions",
              probe_default,
              1000000,
              32,
              64,
              10,
              300,
              0,
              3,
              0};
  const bench_opt_t opts[] = {
      {"impulse", BENCH_OPT_STR, &o.impulse, 0, 0},
      {"functions", BENCH_OPT_STR, &o.functions, 0, 0},
      {"probe", BENCH_OPT_STR, &o.probe, 0, 0},
      {"events", BENCH_OPT_UINT, &o.events, 1, 100000000},
      {"partitions", BENCH_OPT_UINT, &o.partitions, 1, 1024},
      {"max-in-flight", BENCH_OPT_UINT, &o.max_in_flight, 1, 100000},
      {"rounds", BENCH_OPT_UINT, &o.rounds, 1, MAX_ROUNDS},
      {"latency-seconds", BENCH_OPT_UINT, &o.latency_s, 1, 3600},
      {"timeout", BENCH_OPT_UINT, &o.timeout_s, 1, 86400},
      {"latency-rate", BENCH_OPT_UINT, &o.latency_rate, 1, 10000000},
      {"reply-latency", BENCH_OPT_FLAG, &o.reply_latency, 0, 0},
  };
  int parsed = bench_parse_opts("impulse-bench-events", argc, argv, opts,
                                sizeof opts / sizeof opts[0], usage);
  if (parsed != 0) return parsed == 1 ? 0 : 2;

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
  char echo_path[PATH_MAX];
  snprintf(echo_path, sizeof echo_path, "%s/echo.so", o.functions);
  if (access(o.probe, R_OK) != 0) {
    fprintf(stderr, "impulse-bench-events: %s: %s (see --probe)\n", o.probe,
            strerror(errno));
    return 1;
  }
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
  if (deploy_fn(&o, FN_ECHO, echo_path) != 0 ||
      deploy_fn(&o, FN_PROBE, o.probe) != 0)
    goto out;
  if (ensure_topic(c, TOPIC, o.partitions, NULL) != 0) goto out;

  double pub_s = 0;
  fprintf(stderr, "publishing %u events...\n", o.events);
  if (publish_bulk(&o, o.events, &pub_s) != 0) goto out;

  /* Published once: the embedded cluster keeps about 5 MiB per partition,
   * so the rounds read the same records again, each in new groups. */
  round_t rounds[MAX_ROUNDS];
  memset(rounds, 0, sizeof rounds);
  for (unsigned i = 0; i < o.rounds; i++) {
    round_t *r = &rounds[i];
    char group[64], name[64];
    snprintf(group, sizeof group, "bench-raw-%u", i + 1);
    snprintf(name, sizeof name, "bench-throughput-%u", i + 1);
    fprintf(stderr, "round %u/%u: raw consumer...\n", i + 1, o.rounds);
    if (raw_consume(group, o.events, o.timeout_s, &r->raw_s, &r->raw_join) != 0)
      goto out;
    r->raw_rate = o.events / r->raw_s;
    fprintf(stderr, "round %u/%u: trigger onto echo...\n", i + 1, o.rounds);
    if (trigger_round(c, &o, name, r) != 0) goto out;
    r->ratio = r->trig_rate / r->raw_rate;
    fprintf(stderr,
            "round %u/%u: raw %.0f events/s, trigger %.0f events/s, ratio "
            "%.3f\n",
            i + 1, o.rounds, r->raw_rate, r->trig_rate, r->ratio);
  }
  double raw_rate =
      rounds_median(rounds, o.rounds, offsetof(round_t, raw_rate));
  double trig_rate =
      rounds_median(rounds, o.rounds, offsetof(round_t, trig_rate));
  double ratio = rounds_median(rounds, o.rounds, offsetof(round_t, ratio));
  double trig_total_s =
      rounds_median(rounds, o.rounds, offsetof(round_t, trig_total_s));
  double raw_join =
      rounds_median(rounds, o.rounds, offsetof(round_t, raw_join));

  double lat_rate = o.latency_rate ? o.latency_rate : trig_rate / 2;
  if (lat_rate < 1) lat_rate = 1;
  stamp_result_t sfloor, sprobe;
  memset(&sfloor, 0, sizeof sfloor);
  memset(&sprobe, 0, sizeof sprobe);
  fprintf(stderr,
          "latency floor (raw consumer) at %.0f events/s for 1 + %u s...\n",
          lat_rate, o.latency_s);
  int have_floor = stamp_latency(&o, lat_rate, 1, &sfloor) == 0;
  fprintf(stderr, "latency trigger -> probe at %.0f events/s for 1 + %u s...\n",
          lat_rate, o.latency_s);
  int have_probe = stamp_latency(&o, lat_rate, 0, &sprobe) == 0;

  lat_result_t lr, lraw;
  memset(&lr, 0, sizeof lr);
  memset(&lraw, 0, sizeof lraw);
  int have_raw = 0, have_lat = 0;
  if (o.reply_latency) {
    fprintf(stderr, "raw forwarder latency at %.0f events/s for %u s...\n",
            lat_rate, o.latency_s);
    have_raw = latency_phase(&o, lat_rate, 1, &lraw) == 0;
    fprintf(stderr, "reply latency at %.0f events/s for %u s...\n", lat_rate,
            o.latency_s);
    have_lat = latency_phase(&o, lat_rate, 0, &lr) == 0;
  }

  printf("impulse-bench-events  %s  load average %s\n", date, loadavg);
  printf(
      "events %u x %d B, %u partitions, trigger ordering none, max in "
      "flight %u, echo and probe min = max 2, concurrency 1\n\n",
      o.events, VALUE_BYTES, o.partitions, o.max_in_flight);
  printf("%-6s %14s %14s %8s %12s %12s\n", "round", "raw ev/s", "trigger ev/s",
         "ratio", "raw join s", "trigger s*");
  for (unsigned i = 0; i < o.rounds; i++)
    printf("%-6u %14.0f %14.0f %8.3f %12.2f %12.2f\n", i + 1,
           rounds[i].raw_rate, rounds[i].trig_rate, rounds[i].ratio,
           rounds[i].raw_join, rounds[i].trig_total_s);
  printf("(* trigger: from the create call to all committed)\n\n");
  printf("%-44s %14s %10s\n", "phase (median of the rounds)", "events/s",
         "seconds");
  printf("%-44s %14.0f %10.2f\n", "publish (idempotent producer, once)",
         o.events / pub_s, pub_s);
  printf("%-44s %14.0f %10.2f\n", "raw consumer, first->last msg (ceiling)",
         raw_rate, o.events / raw_rate);
  printf("%-44s %14.0f %10.2f\n", "trigger -> echo, first->all committed",
         trig_rate, trig_rate > 0 ? o.events / trig_rate : 0);
  printf("%-44s %14.0f %10.2f\n", "trigger -> echo, incl. create + join",
         o.events / trig_total_s, trig_total_s);
  printf("%-44s %14.3f\n", "ratio trigger/raw (median of round ratios)", ratio);
  printf("(raw consumer group join %.2f s median, %u rounds)\n\n", raw_join,
         o.rounds);

  printf(
      "latency at %.0f events/s (%s), 1 s warm-up + %u s measured, events "
      "sent after the warm-up:\n",
      lat_rate, o.latency_rate ? "--latency-rate" : "half the trigger rate",
      o.latency_s);
  printf("%-40s %17s %8s %9s %9s %9s\n", "path", "measured/sent", "missing",
         "p50 ms", "p99 ms", "max ms");
  latency_row("raw consumer, publish->consumed (floor)", have_floor,
              sfloor.measured, sfloor.sent, &sfloor.missing, sfloor.p50,
              sfloor.p99, sfloor.max);
  latency_row("trigger -> probe, publish->handled", have_probe, sprobe.measured,
              sprobe.sent, &sprobe.missing, sprobe.p50, sprobe.p99, sprobe.max);
  if (have_floor && have_probe && sfloor.p50 && sfloor.p99 && sfloor.max)
    printf("%-40s %17s %8s %9.2f %9.2f %9.2f\n", "ratio trigger/floor", "", "",
           (double)sprobe.p50 / sfloor.p50, (double)sprobe.p99 / sfloor.p99,
           (double)sprobe.max / sfloor.max);
  if (have_floor && have_probe)
    printf(
        "(warm-up included: floor received %llu of %llu, trigger "
        "handled %llu of %llu)\n",
        (unsigned long long)sfloor.handled, (unsigned long long)sfloor.sent,
        (unsigned long long)sprobe.handled, (unsigned long long)sprobe.sent);
  rc = have_floor && have_probe ? 0 : 1;

  if (o.reply_latency) {
    printf("\nlatency publish -> reply at %.0f events/s, after 1 s warm-up:\n",
           lat_rate);
    printf("%-40s %17s %9s %9s %9s\n", "path", "replies/sent", "p50 ms",
           "p99 ms", "max ms");
    latency_row("raw consumer -> producer (floor)", have_raw, lraw.received,
                lraw.sent, NULL, lraw.p50, lraw.p99, lraw.max);
    latency_row("trigger -> echo -> --reply-topic", have_lat, lr.received,
                lr.sent, NULL, lr.p50, lr.p99, lr.max);
    if (have_raw && have_lat && lraw.p50 && lraw.p99)
      printf("%-40s %17s %9.2f %9.2f\n", "ratio trigger/floor", "",
             (double)lr.p50 / lraw.p50, (double)lr.p99 / lraw.p99);
    if (!have_raw || !have_lat) rc = 1;
  }
out:
  impulse_client_close(c);
  bench_procs_cleanup();
  return rc;
}
