/*
 * impulse-soak: a long run of a real server under mixed load and chaos,
 * with checks at the end (`make soak`, SOAK_MINUTES, default 30; not part
 * of `make test`). docs/testing.md, "Soak test", says what it proves.
 *
 *   the cluster  `impulse kafka` (the embedded cluster as a process of its
 *                own, so that events and committed offsets outlive the
 *                server's kill -9); the server runs with --kafka on it
 *   functions    echo, hello (hello.so), upg (echo.so, a rolling upgrade
 *                every few minutes), split (echo.so in two versions, the
 *                traffic split between them changed every few minutes),
 *                zero (echo.so, min 0, scale to zero after 5 s: its calls
 *                pause until it has no instance, then start again)
 *   triggers     soak.t0 -> echo, soak.t1 -> upg, soak.t2 -> split, each
 *                with --ordering key and a reply topic soak.rN; an
 *                idempotent librdkafka producer publishes "T:K:SEQ" on 16
 *                keys per topic; a consumer reads the reply topics (the
 *                echo of each event) and checks the order per key
 *   callers      4 threads invoking the five functions over RPC and HTTP,
 *                a third of the calls with an idempotency key, every
 *                answer compared with what the function must answer
 *   chaos        a worker process of a random function SIGKILLed every
 *                8-15 s; the server SIGKILLed (alone: its workers wait to
 *                be re-attached) at a third and at two thirds of the run,
 *                and restarted
 *   sampling     the server's VmRSS and open fds every 10 s, per life
 *
 * At the end (publishing stopped, replies drained, callers stopped, the
 * server stopped with SIGTERM) every check below must hold, or the exit
 * status is 1:
 *   events   every published event has a reply; per key the replies come
 *            in publish order: a sequence number never seen before is
 *            always the next one of its key; a number seen before (a
 *            duplicate) is accepted within 180 s of a server restart (the
 *            trigger replays a partition from its last committed offset)
 *            or within 30 s of a worker kill of the trigger's function;
 *            no record dead-lettered
 *   calls    every failed call is explained by a fault injected at that
 *            time: CRASHED or UNAVAILABLE within 10 s of a kill of one of
 *            the called function's workers; CONNECTION (or the HTTP
 *            equivalent), CRASHED or UNAVAILABLE from a kill of the server
 *            until 15 s after the restarted one is ready. Calls with an
 *            idempotency key are retried on CRASHED, UNAVAILABLE,
 *            IN_PROGRESS and CONNECTION for up to 30 s and must end OK
 *   leaks    after WARMUP_S of a server life, RSS stays within RSS_BOUND_KB
 *            and the open fds within FD_BOUND of the first sample after
 *            the warm-up
 *   orphans  after the clean stop no process of any of the server's
 *            process groups (it and its workers, those of the servers
 *            killed too) is left
 *
 * Progress goes to stderr every minute; the summary to stdout.
 */

#include <dirent.h>
#include <errno.h>
#include <librdkafka/rdkafka.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bench.h" /* bench_interrupted, read by events_kafka.c */
#include "events_kafka.h"
#include "harness.h"
#include "harness_kafka.h"

#define CALL_TIMEOUT_MS 30000u
#define CALLERS 4
#define CALL_PAUSE_MS 15u
#define IDEM_RETRY_MS 30000u
#define NTOPICS 3
#define NKEYS 16
#define EVENTS_PER_S 20 /* per topic */
#define PARTITIONS 4
#define WORKER_WINDOW_MS 10000u
#define SERVER_WINDOW_MS 15000u
#define DUP_SERVER_WINDOW_MS 180000u
#define DUP_WORKER_WINDOW_MS 30000u
#define SAMPLE_MS 10000u
#define WARMUP_S 120u
#define RSS_BOUND_KB (48u * 1024u)
#define FD_BOUND 32
#define MAX_LIVES 3
#define MAX_SAMPLES 1024
#define DRAIN_MS 180000u
#define ZERO_BOUND_MS 60000u
#define UPGRADE_BOUND_MS 120000u

enum { F_ECHO, F_HELLO, F_UPG, F_SPLIT, F_ZERO, NFUNCS };
static const char *const fn_names[NFUNCS] = {"echo", "hello", "upg", "split",
                                             "zero"};
/* The function each trigger calls. */
static const int trigger_fn[NTOPICS] = {F_ECHO, F_UPG, F_SPLIT};

/* Causes of a failed call, as the RPC status names them (HTTP error bodies
 * carry the same names); CONNECTION also for HTTP connections refused or
 * broken; WRONG_ANSWER for an OK whose payload is not the expected one. */
static const char *const causes[] = {
    "CRASHED",       "UNAVAILABLE", "CONNECTION",   "TIMEOUT", "OVERLOADED",
    "SHUTTING_DOWN", "IN_PROGRESS", "WRONG_ANSWER", "OTHER"};
#define NCAUSES (sizeof causes / sizeof causes[0])
#define C_OTHER (NCAUSES - 1)
enum { BY_WORKER, BY_SERVER, BY_NONE, NBY };

/* ---- shared state ------------------------------------------------------- */

static volatile sig_atomic_t g_interrupted;
static atomic_int g_stop_calls, g_stop_events, g_zero_active = 1;
static uint64_t g_t0;

static pthread_mutex_t g_addr_lock = PTHREAD_MUTEX_INITIALIZER;
static char g_addr[64];
static int g_http_port;

/* Fault times (it_now_ms): the last worker kill per function; the last
 * server kill and when the server after it was ready (0: not yet). */
static _Atomic uint64_t g_kill_ms[NFUNCS];
static _Atomic uint64_t g_down_ms, g_up_ms;

static atomic_ulong g_calls, g_ok, g_idem_calls;
static atomic_ulong g_failed[NCAUSES][NBY];
static atomic_ulong g_retried[NCAUSES];
static atomic_ulong g_rpc_calls, g_http_calls;
static pthread_mutex_t g_first_lock = PTHREAD_MUTEX_INITIALIZER;
static char g_first_unexplained[512];

/* Events. */
static pthread_mutex_t g_ev_lock = PTHREAD_MUTEX_INITIALIZER;
static long g_published[NTOPICS][NKEYS]; /* next sequence number */
static long g_max_seen[NTOPICS][NKEYS];  /* -1: none yet */
static unsigned long g_replies, g_dups_server, g_dups_worker, g_dups_bad,
    g_order_bad, g_bad_values;
static char g_first_event_error[256];
static ek_reports_t g_reports;

static unsigned long g_worker_kills, g_server_kills, g_upgrades_done,
    g_upgrades_failed, g_splits, g_zero_cycles;

typedef struct life_s {
  pid_t pid;
  uint64_t start_ms;
  unsigned n;
  uint64_t t[MAX_SAMPLES];
  long rss_kb[MAX_SAMPLES];
  int fds[MAX_SAMPLES];
} life_t;
static life_t g_lives[MAX_LIVES];
static int g_nlives;

static void on_signal(int sig) {
  (void)sig;
  g_interrupted = 1;
  bench_interrupted = 1;
}

static double elapsed_s(void) {
  return (double)(it_now_ms() - g_t0) / 1000.0;
}

static uint64_t rnd(uint64_t *s) {
  *s ^= *s << 13;
  *s ^= *s >> 7;
  *s ^= *s << 17;
  return *s;
}

static unsigned cause_index(const char *name) {
  for (unsigned i = 0; i < NCAUSES; i++)
    if (strcmp(causes[i], name) == 0) return i;
  return C_OTHER;
}

/* Which fault explains a call to function `fn` failed with `cause` at
 * `now`: BY_WORKER, BY_SERVER or BY_NONE. */
static int explain(int fn, unsigned cause, uint64_t now) {
  uint64_t down = atomic_load(&g_down_ms), up = atomic_load(&g_up_ms);
  int crashlike =
      cause == cause_index("CRASHED") || cause == cause_index("UNAVAILABLE");
  if (down > 0 && now >= down && (up < down || now <= up + SERVER_WINDOW_MS) &&
      (crashlike || cause == cause_index("CONNECTION")))
    return BY_SERVER;
  uint64_t k = atomic_load(&g_kill_ms[fn]);
  if (crashlike && k > 0 && now >= k && now <= k + WORKER_WINDOW_MS)
    return BY_WORKER;
  return BY_NONE;
}

static void snapshot_addr(const it_server_t *s) {
  pthread_mutex_lock(&g_addr_lock);
  snprintf(g_addr, sizeof g_addr, "%s", s->addr);
  g_http_port = s->http_port;
  pthread_mutex_unlock(&g_addr_lock);
}

/* ---- calls -------------------------------------------------------------- */

typedef struct caller_s {
  int index;
  pthread_t thread;
  uint64_t rng;
  impulse_client_t *rpc;
} caller_t;

/* One RPC invoke: the cause index of a failure, or -1 when it answered OK;
 * the answer in want is compared. */
static int rpc_call(caller_t *c, int fn, const char *payload, const char *key,
                    const char *want) {
  if (c->rpc == NULL) {
    char addr[64];
    pthread_mutex_lock(&g_addr_lock);
    snprintf(addr, sizeof addr, "%s", g_addr);
    pthread_mutex_unlock(&g_addr_lock);
    if (impulse_client_connect(addr, "", &c->rpc) != IMPULSE_S_OK) {
      impulse_client_close(c->rpc);
      c->rpc = NULL;
      return (int)cause_index("CONNECTION");
    }
    impulse_client_set_timeout(c->rpc, CALL_TIMEOUT_MS);
  }
  impulse_invoke_opts_t o = {.idempotency_key = key};
  impulse_response_t *r = NULL;
  int rc =
      impulse_invoke(c->rpc, fn_names[fn], payload, strlen(payload), &o, &r);
  int out;
  if (rc != IMPULSE_S_OK) {
    out = (int)cause_index(impulse_status_name(rc));
  } else if (r->status != IMPULSE_S_OK) {
    out = (int)cause_index(impulse_status_name(r->status));
  } else {
    out = r->len == strlen(want) && memcmp(r->payload, want, r->len) == 0
              ? -1
              : (int)cause_index("WRONG_ANSWER");
  }
  impulse_response_free(r);
  if (rc == IMPULSE_S_CONNECTION || rc == IMPULSE_S_PROTOCOL) {
    impulse_client_close(c->rpc);
    c->rpc = NULL;
  }
  return out;
}

/* One HTTP invoke (POST /function/NAME on a connection of its own). */
static int http_call(int fn, const char *payload, const char *key,
                     const char *want) {
  int port;
  pthread_mutex_lock(&g_addr_lock);
  port = g_http_port;
  pthread_mutex_unlock(&g_addr_lock);
  it_server_t peer = {.http_port = port};
  int fd = it_http_connect(&peer);
  if (fd < 0) return (int)cause_index("CONNECTION");
  char req[1024];
  char keyh[320] = "";
  if (key)
    snprintf(keyh, sizeof keyh, "X-Impulse-Idempotency-Key: %s\r\n", key);
  int n = snprintf(req, sizeof req,
                   "POST /function/%s HTTP/1.1\r\nHost: soak\r\n"
                   "Connection: close\r\nContent-Length: %zu\r\n%s\r\n%s",
                   fn_names[fn], strlen(payload), keyh, payload);
  if (it_raw_send(fd, req, (size_t)n) != 0) {
    close(fd);
    return (int)cause_index("CONNECTION");
  }
  int closed = 0;
  char *resp = it_raw_read_all(fd, CALL_TIMEOUT_MS, &closed);
  close(fd);
  int code = 0;
  char *body = resp ? strstr(resp, "\r\n\r\n") : NULL;
  if (resp == NULL || body == NULL || sscanf(resp, "HTTP/1.1 %d", &code) != 1) {
    free(resp);
    return (int)cause_index(closed ? "CONNECTION" : "TIMEOUT");
  }
  body += 4;
  int out;
  if (code == 200) {
    out = strcmp(body, want) == 0 ? -1 : (int)cause_index("WRONG_ANSWER");
  } else {
    char name[32] = "";
    const char *e = strstr(body, "\"error\":\"");
    if (e) sscanf(e + 9, "%31[A-Z_]", name);
    out = (int)cause_index(name);
  }
  free(resp);
  return out;
}

static void note_unexplained(const char *what) {
  pthread_mutex_lock(&g_first_lock);
  if (g_first_unexplained[0] == '\0')
    snprintf(g_first_unexplained, sizeof g_first_unexplained, "%s", what);
  pthread_mutex_unlock(&g_first_lock);
}

static void *caller_main(void *arg) {
  caller_t *c = arg;
  unsigned long n = 0;
  while (!atomic_load(&g_stop_calls)) {
    int fn = (int)(rnd(&c->rng) % NFUNCS);
    if (fn == F_ZERO && !atomic_load(&g_zero_active)) fn = F_ECHO;
    int http = rnd(&c->rng) % 2 == 0;
    int idem = rnd(&c->rng) % 3 == 0;
    char payload[80], key[96], want[128];
    snprintf(payload, sizeof payload, "c%d-%lu-%s", c->index, n++,
             http ? "http" : "rpc");
    snprintf(key, sizeof key, "soak-%s", payload);
    if (fn == F_HELLO)
      snprintf(want, sizeof want, "Hello, %s!", payload);
    else
      snprintf(want, sizeof want, "%s", payload);
    atomic_fetch_add(&g_calls, 1);
    atomic_fetch_add(http ? &g_http_calls : &g_rpc_calls, 1);
    if (idem) atomic_fetch_add(&g_idem_calls, 1);
    uint64_t until = it_now_ms() + IDEM_RETRY_MS;
    int cause;
    for (;;) {
      cause = http ? http_call(fn, payload, idem ? key : NULL, want)
                   : rpc_call(c, fn, payload, idem ? key : NULL, want);
      if (cause < 0 || !idem || it_now_ms() > until) break;
      const char *cn = causes[cause];
      if (strcmp(cn, "CRASHED") && strcmp(cn, "UNAVAILABLE") &&
          strcmp(cn, "IN_PROGRESS") && strcmp(cn, "CONNECTION"))
        break;
      atomic_fetch_add(&g_retried[cause], 1);
      it_sleep_ms(100);
    }
    if (cause < 0) {
      atomic_fetch_add(&g_ok, 1);
    } else {
      int by = explain(fn, (unsigned)cause, it_now_ms());
      if (idem) by = BY_NONE; /* retried for 30 s: must have ended OK */
      atomic_fetch_add(&g_failed[cause][by], 1);
      if (by == BY_NONE) {
        char what[256];
        snprintf(what, sizeof what, "%.1f s: %s %s%s: %s", elapsed_s(),
                 http ? "HTTP" : "RPC", fn_names[fn],
                 idem ? " (idempotency key)" : "", causes[cause]);
        note_unexplained(what);
      }
      if (strcmp(causes[cause], "CONNECTION") == 0) it_sleep_ms(100);
    }
    it_sleep_ms(CALL_PAUSE_MS);
  }
  impulse_client_close(c->rpc);
  return NULL;
}

/* ---- events ------------------------------------------------------------- */

static void *producer_main(void *arg) {
  rd_kafka_t *rk = arg;
  uint64_t next = it_now_ms();
  unsigned k = 0;
  while (!atomic_load(&g_stop_events) && !g_interrupted) {
    /* 50 ms worth of events per topic, keys round robin. */
    for (int i = 0; i < EVENTS_PER_S / 20 + 1; i++) {
      for (int t = 0; t < NTOPICS; t++) {
        char topic[32], key[16], value[64];
        snprintf(topic, sizeof topic, "soak.t%d", t);
        snprintf(key, sizeof key, "k%u", k);
        pthread_mutex_lock(&g_ev_lock);
        long seq = g_published[t][k];
        pthread_mutex_unlock(&g_ev_lock);
        snprintf(value, sizeof value, "%d:%u:%ld", t, k, seq);
        if (ek_produce(rk, topic, key, value, strlen(value)) != 0) continue;
        pthread_mutex_lock(&g_ev_lock);
        g_published[t][k]++;
        pthread_mutex_unlock(&g_ev_lock);
      }
      k = (k + 1) % NKEYS;
    }
    rd_kafka_poll(rk, 0);
    next += 50;
    uint64_t now = it_now_ms();
    if (next > now) it_sleep_ms((unsigned)(next - now));
  }
  rd_kafka_flush(rk, 30000);
  return NULL;
}

static void event_error(const char *fmt, long a, long b, int t, unsigned k) {
  if (g_first_event_error[0] == '\0') {
    char what[160];
    snprintf(what, sizeof what, fmt, a, b);
    snprintf(g_first_event_error, sizeof g_first_event_error,
             "%.1f s: topic soak.t%d key k%u: %s", elapsed_s(), t, k, what);
  }
}

/* One reply: "T:K:SEQ". Called with g_ev_lock held. */
static void check_reply(const char *v, size_t len) {
  char buf[64];
  int t;
  unsigned k;
  long seq;
  if (len >= sizeof buf) len = sizeof buf - 1;
  memcpy(buf, v, len);
  buf[len] = '\0';
  if (sscanf(buf, "%d:%u:%ld", &t, &k, &seq) != 3 || t < 0 || t >= NTOPICS ||
      k >= NKEYS || seq < 0) {
    g_bad_values++;
    return;
  }
  g_replies++;
  long max = g_max_seen[t][k];
  if (seq == max + 1) {
    g_max_seen[t][k] = seq;
    return;
  }
  if (seq > max + 1) {
    g_order_bad++;
    event_error("reply of %ld came while %ld was the last one seen", seq, max,
                t, k);
    g_max_seen[t][k] = seq;
    return;
  }
  uint64_t now = it_now_ms(), down = atomic_load(&g_down_ms);
  uint64_t kill = atomic_load(&g_kill_ms[trigger_fn[t]]);
  if (down > 0 && now <= atomic_load(&g_up_ms) + DUP_SERVER_WINDOW_MS)
    g_dups_server++;
  else if (kill > 0 && now <= kill + DUP_WORKER_WINDOW_MS)
    g_dups_worker++;
  else {
    g_dups_bad++;
    event_error("duplicate reply of %ld (last seen %ld) with no fault near",
                seq, max, t, k);
  }
}

static void *consumer_main(void *arg) {
  rd_kafka_t **cons = arg;
  while (atomic_load(&g_stop_events) != 2 && !g_interrupted) {
    for (int t = 0; t < NTOPICS; t++) {
      rd_kafka_message_t *m = rd_kafka_consumer_poll(cons[t], 20);
      if (m == NULL) continue;
      if (m->err == 0) {
        pthread_mutex_lock(&g_ev_lock);
        check_reply(m->payload, m->len);
        pthread_mutex_unlock(&g_ev_lock);
      }
      rd_kafka_message_destroy(m);
    }
  }
  return NULL;
}

/* Events published and not yet replied. */
static long events_missing(long *published) {
  long missing = 0, pub = 0;
  pthread_mutex_lock(&g_ev_lock);
  for (int t = 0; t < NTOPICS; t++)
    for (int k = 0; k < NKEYS; k++) {
      pub += g_published[t][k];
      missing += g_published[t][k] - 1 - g_max_seen[t][k];
    }
  pthread_mutex_unlock(&g_ev_lock);
  if (published) *published = pub;
  return missing;
}

/* ---- the server: set-up, faults, samples -------------------------------- */

static int deploy(const it_server_t *s, const char *name, const char *so,
                  const impulse_deploy_opts_t *o, uint32_t *v) {
  int rc = it_deploy_fn_on(s, CALL_TIMEOUT_MS, name, so, o, v);
  if (rc != 0)
    fprintf(stderr, "impulse-soak: deploy %s: %s\n", name,
            impulse_status_name(rc));
  return rc;
}

static int traffic(impulse_client_t *admin, uint32_t w1, uint32_t w2) {
  Impulse__TrafficRequest tr = IMPULSE__TRAFFIC_REQUEST__INIT;
  Impulse__TrafficWeight w[2], *wp[2] = {&w[0], &w[1]};
  impulse__traffic_weight__init(&w[0]);
  impulse__traffic_weight__init(&w[1]);
  w[0].version = 1;
  w[0].weight = w1;
  w[1].version = 2;
  w[1].weight = w2;
  tr.name = (char *)fn_names[F_SPLIT];
  tr.n_weights = 2;
  tr.weights = wp;
  int rc = sup_call(admin, IMPULSE__ENVELOPE__BODY_TRAFFIC, &tr,
                    IMPULSE__ENVELOPE__BODY_TRAFFIC_OK, NULL);
  if (rc != 0)
    fprintf(stderr, "impulse-soak: traffic v1=%u v2=%u: %s\n", w1, w2,
            impulse_client_error(admin));
  return rc;
}

static int setup(it_server_t *s, impulse_client_t *admin) {
  impulse_deploy_opts_t o = {0};
  uint32_t v;
  o.min_instances = 1;
  o.max_instances = 4;
  o.has_min = o.has_max = 1;
  if (deploy(s, "echo", "echo", &o, &v) || deploy(s, "hello", "hello", &o, &v))
    return -1;
  impulse_deploy_opts_t u = o;
  u.min_instances = 2;
  u.max_step_pct = 50;
  if (deploy(s, "upg", "echo", &u, &v) || deploy(s, "split", "echo", &o, &v))
    return -1;
  impulse_deploy_opts_t n = o;
  n.no_promote = 1;
  if (deploy(s, "split", "echo", &n, &v)) return -1;
  if (v != 2) {
    fprintf(stderr, "impulse-soak: split's second version is %u\n", v);
    return -1;
  }
  if (traffic(admin, 50, 50)) return -1;
  impulse_deploy_opts_t z = {0};
  z.min_instances = 0;
  z.max_instances = 2;
  z.has_min = z.has_max = 1;
  z.scale_to_zero_after_s = 5;
  z.has_scale_to_zero = 1;
  z.policy = "reactive"; /* the predictive one keeps a recently busy
                            function warm on purpose */
  if (deploy(s, "zero", "echo", &z, &v)) return -1;
  for (int t = 0; t < NTOPICS; t++) {
    char topic[32], reply[32], name[32];
    snprintf(topic, sizeof topic, "soak.t%d", t);
    snprintf(reply, sizeof reply, "soak.r%d", t);
    snprintf(name, sizeof name, "soak-t%d", t);
    if (sup_ensure_topic(admin, topic, PARTITIONS, NULL) ||
        sup_ensure_topic(admin, reply, PARTITIONS, NULL)) {
      fprintf(stderr, "impulse-soak: topics: %s\n",
              impulse_client_error(admin));
      return -1;
    }
    Impulse__TriggerSpec spec = IMPULSE__TRIGGER_SPEC__INIT;
    spec.name = name;
    spec.topic = topic;
    spec.function = (char *)fn_names[trigger_fn[t]];
    spec.ordering = "key";
    spec.from = "earliest";
    spec.reply_topic = reply;
    if (sup_trigger_create(admin, &spec) != 0) {
      fprintf(stderr, "impulse-soak: trigger %s: %s\n", name,
              impulse_client_error(admin));
      return -1;
    }
  }
  return 0;
}

static void life_begin(pid_t pid) {
  if (g_nlives >= MAX_LIVES) return;
  life_t *l = &g_lives[g_nlives++];
  l->pid = pid;
  l->start_ms = it_now_ms();
  l->n = 0;
}

static void sample(void) {
  if (g_nlives == 0) return;
  life_t *l = &g_lives[g_nlives - 1];
  if (l->n >= MAX_SAMPLES ||
      (l->n > 0 && it_now_ms() < l->t[l->n - 1] + SAMPLE_MS - 100))
    return;
  char path[64], *data = NULL;
  size_t len;
  snprintf(path, sizeof path, "/proc/%d/status", (int)l->pid);
  if (sup_read_file(path, &data, &len) != 0) return;
  const char *r = strstr(data, "VmRSS:");
  long rss = r ? atol(r + 6) : -1;
  free(data);
  snprintf(path, sizeof path, "/proc/%d/fd", (int)l->pid);
  DIR *d = opendir(path);
  if (d == NULL) return;
  int fds = 0;
  for (struct dirent *e; (e = readdir(d)) != NULL;)
    if (e->d_name[0] != '.') fds++;
  closedir(d);
  l->t[l->n] = it_now_ms();
  l->rss_kb[l->n] = rss;
  l->fds[l->n] = fds;
  l->n++;
}

/* SIGKILLs one worker process of a random function (its pid from
 * describe). Returns 0 when one was killed. */
static int kill_worker(impulse_client_t *admin, uint64_t *rng) {
  int fn = (int)(rnd(rng) % NFUNCS);
  Impulse__Envelope *e = NULL;
  if (sup_describe(admin, fn_names[fn], &e) != 0) return -1;
  const Impulse__DescribeResponse *d = e->describe_ok;
  pid_t pids[64];
  size_t n = 0;
  for (size_t i = 0; i < d->n_instances && n < 64; i++)
    if (d->instances[i]->has_pid && d->instances[i]->pid > 0)
      pids[n++] = d->instances[i]->pid;
  impulse__envelope__free_unpacked(e, NULL);
  if (n == 0) return -1;
  pid_t victim = pids[rnd(rng) % n];
  atomic_store(&g_kill_ms[fn], it_now_ms());
  if (kill(victim, SIGKILL) != 0) return -1;
  g_worker_kills++;
  return 0;
}

/* The upgrade of upg to version `to`: 1 while it runs, 0 once done, -1
 * once failed or when describe failed. */
static int upgrade_state(impulse_client_t *admin, uint32_t to) {
  Impulse__Envelope *e = NULL;
  if (sup_describe(admin, fn_names[F_UPG], &e) != 0) return -1;
  const Impulse__UpgradeInfo *u = e->describe_ok->function->upgrade;
  int st = 1;
  if (u && u->record && u->record->to_version == to) {
    if (strcmp(u->record->state, "done") == 0) st = 0;
    if (strcmp(u->record->state, "failed") == 0) {
      fprintf(stderr, "impulse-soak: upgrade to v%u failed: %s\n", to,
              u->record->reason ? u->record->reason : "");
      st = -1;
    }
  }
  impulse__envelope__free_unpacked(e, NULL);
  return st;
}

/* Live instances of `fn`, or -1. */
static int instances(impulse_client_t *admin, int fn) {
  Impulse__Envelope *e = NULL;
  if (sup_describe(admin, fn_names[fn], &e) != 0) return -1;
  int n = (int)e->describe_ok->function->instances;
  impulse__envelope__free_unpacked(e, NULL);
  return n;
}

/* Processes (alive or zombie) whose process group is `pgid`, said on
 * stderr; their count. */
static int group_members(pid_t pgid) {
  DIR *d = opendir("/proc");
  if (d == NULL) return 0;
  int n = 0;
  for (struct dirent *e; (e = readdir(d)) != NULL;) {
    if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
    char path[300], *data = NULL;
    size_t len;
    snprintf(path, sizeof path, "/proc/%s/stat", e->d_name);
    if (sup_read_file(path, &data, &len) != 0) continue;
    const char *p = strrchr(data, ')');
    char state = 0;
    int ppid = 0, pg = 0;
    if (p && sscanf(p + 1, " %c %d %d", &state, &ppid, &pg) == 3 &&
        pg == (int)pgid) {
      fprintf(stderr, "impulse-soak: left behind: %s", data);
      n++;
    }
    free(data);
  }
  closedir(d);
  return n;
}

/* ---- the run ------------------------------------------------------------ */

static void progress(void) {
  long pub = 0;
  long missing = events_missing(&pub);
  unsigned long failed = 0, unexplained = 0;
  for (unsigned i = 0; i < NCAUSES; i++)
    for (int b = 0; b < NBY; b++) {
      failed += atomic_load(&g_failed[i][b]);
      if (b == BY_NONE) unexplained += atomic_load(&g_failed[i][b]);
    }
  long rss = -1;
  int fds = -1;
  if (g_nlives > 0 && g_lives[g_nlives - 1].n > 0) {
    const life_t *l = &g_lives[g_nlives - 1];
    rss = l->rss_kb[l->n - 1];
    fds = l->fds[l->n - 1];
  }
  fprintf(stderr,
          "impulse-soak: %5.0f s calls %lu (ok %lu, failed %lu, unexplained "
          "%lu) events %ld published, %ld awaiting a reply; faults: %lu "
          "worker kills, %lu server kills, %lu upgrades, %lu splits, %lu "
          "zero cycles; rss %ld kB fds %d\n",
          elapsed_s(), atomic_load(&g_calls), atomic_load(&g_ok), failed,
          unexplained, pub, missing, g_worker_kills, g_server_kills,
          g_upgrades_done + g_upgrades_failed, g_splits, g_zero_cycles, rss,
          fds);
}

typedef struct run_s {
  it_server_t server;
  it_kafka_t kafka;
  char dir[64];
  char root_template[80]; /* of the server's directory, in dir */
  impulse_client_t *admin;
  pid_t pgids[MAX_LIVES];
  int npgids;
} run_t;

static int reconnect_admin(run_t *r) {
  impulse_client_close(r->admin);
  r->admin = it_connect(&r->server, 1, CALL_TIMEOUT_MS);
  return r->admin ? 0 : -1;
}

static int kill_server(run_t *r) {
  fprintf(stderr, "impulse-soak: %.0f s: kill -9 of the server (pid %d)\n",
          elapsed_s(), (int)r->server.pid);
  atomic_store(&g_down_ms, it_now_ms());
  it_server_kill9_server_only(&r->server);
  g_server_kills++;
  if (it_server_restart(&r->server) != 0) return -1;
  atomic_store(&g_up_ms, it_now_ms());
  snapshot_addr(&r->server);
  if (r->npgids < MAX_LIVES) r->pgids[r->npgids++] = r->server.pid;
  life_begin(r->server.pid);
  fprintf(stderr, "impulse-soak: %.0f s: restarted (pid %d), ready\n",
          elapsed_s(), (int)r->server.pid);
  return reconnect_admin(r);
}

/* The chaos loop and the periodic changes, for `ms`. Returns 0, or -1
 * when something the run depends on failed (said on stderr). */
static int chaos(run_t *r, uint64_t ms) {
  uint64_t rng = 0x9e3779b97f4a7c15ull ^ (uint64_t)getpid();
  uint64_t start = it_now_ms(), end = start + ms;
  uint64_t upgrade_every = ms / 8 < 60000 ? 60000 : ms / 8;
  if (upgrade_every > 240000) upgrade_every = 240000;
  uint64_t split_every = ms / 6 < 45000 ? 45000 : ms / 6;
  if (split_every > 300000) split_every = 300000;
  uint64_t zero_every = ms / 5 < 60000 ? 60000 : ms / 5;
  if (zero_every > 360000) zero_every = 360000;
  uint64_t next_kill = start + 8000, next_upgrade = start + upgrade_every / 2,
           next_split = start + split_every, next_zero = start + zero_every,
           next_sample = start, next_progress = start + 60000;
  uint64_t server_kill[2] = {start + ms / 3, start + 2 * ms / 3};
  int server_kills = 0;
  uint32_t upgrading = 0; /* the version upg is being upgraded to */
  uint64_t upgrade_started = 0;
  int zero_phase = 0; /* 1: callers paused, waiting for 0 instances */
  uint64_t zero_started = 0;
  static const uint32_t splits[][2] = {
      {90, 10}, {10, 90}, {50, 50}, {0, 100}, {100, 0}};
  while (!g_interrupted) {
    uint64_t now = it_now_ms();
    if (now >= end && upgrading == 0 && zero_phase == 0) break;
    if (now >= next_sample) {
      sample();
      next_sample += SAMPLE_MS;
    }
    if (now >= next_progress) {
      progress();
      next_progress += 60000;
    }
    if (server_kills < 2 && now >= server_kill[server_kills]) {
      server_kills++;
      if (kill_server(r) != 0) return -1;
      continue;
    }
    /* Reap what is ours of the killed servers' groups (workers that were
     * handed to us as orphans and ended). */
    for (int i = 0; i + 1 < r->npgids; i++) sup_reap_group(r->pgids[i]);
    if (now >= next_kill && now < end) {
      kill_worker(r->admin, &rng);
      next_kill = now + 8000 + rnd(&rng) % 7000;
    }
    if (upgrading == 0 && now >= next_upgrade && now < end) {
      uint32_t v = 0;
      if (deploy(&r->server, fn_names[F_UPG], "echo", NULL, &v) != 0) return -1;
      upgrading = v;
      upgrade_started = now;
      fprintf(stderr, "impulse-soak: %.0f s: rolling upgrade of upg to v%u\n",
              elapsed_s(), v);
    } else if (upgrading != 0) {
      int st = upgrade_state(r->admin, upgrading);
      if (st <= 0) {
        if (st == 0)
          g_upgrades_done++;
        else
          g_upgrades_failed++;
        fprintf(stderr, "impulse-soak: %.0f s: upgrade to v%u %s\n",
                elapsed_s(), upgrading, st == 0 ? "done" : "failed");
        upgrading = 0;
        next_upgrade = it_now_ms() + upgrade_every;
      } else if (now > upgrade_started + UPGRADE_BOUND_MS) {
        fprintf(stderr, "impulse-soak: upgrade to v%u not over in %u s\n",
                upgrading, UPGRADE_BOUND_MS / 1000);
        return -1;
      }
    }
    if (now >= next_split && now < end) {
      const uint32_t *w = splits[g_splits % 5];
      if (traffic(r->admin, w[0], w[1]) != 0) return -1;
      g_splits++;
      fprintf(stderr, "impulse-soak: %.0f s: traffic of split v1=%u v2=%u\n",
              elapsed_s(), w[0], w[1]);
      next_split = now + split_every;
    }
    if (zero_phase == 0 && now >= next_zero && now < end) {
      atomic_store(&g_zero_active, 0);
      zero_phase = 1;
      zero_started = now;
    } else if (zero_phase == 1) {
      int n = instances(r->admin, F_ZERO);
      if (n == 0) {
        fprintf(stderr, "impulse-soak: %.0f s: zero scaled to 0 in %.1f s\n",
                elapsed_s(), (double)(now - zero_started) / 1000.0);
        g_zero_cycles++;
        zero_phase = 0;
        atomic_store(&g_zero_active, 1);
        next_zero = now + zero_every;
      } else if (now > zero_started + ZERO_BOUND_MS) {
        fprintf(stderr,
                "impulse-soak: zero still has %d instances %u s "
                "after its calls stopped\n",
                n, ZERO_BOUND_MS / 1000);
        return -1;
      }
    }
    it_sleep_ms(200);
  }
  return g_interrupted ? -1 : 0;
}

/* The leak check of one life: prints its curve's min/max; 0 when within
 * the bounds (or too short to judge), -1 when not. */
static int life_report(int i, FILE *out) {
  const life_t *l = &g_lives[i];
  long rmin = -1, rmax = -1, base_rss = -1;
  int fmin = -1, fmax = -1, base_fd = -1;
  long wmin = -1, wmax = -1;
  int wfmin = -1, wfmax = -1;
  unsigned after = 0;
  for (unsigned j = 0; j < l->n; j++) {
    long r = l->rss_kb[j];
    int f = l->fds[j];
    if (rmin < 0 || r < rmin) rmin = r;
    if (r > rmax) rmax = r;
    if (fmin < 0 || f < fmin) fmin = f;
    if (f > fmax) fmax = f;
    if (l->t[j] < l->start_ms + WARMUP_S * 1000u) continue;
    if (after++ == 0) {
      base_rss = r;
      base_fd = f;
    }
    if (wmin < 0 || r < wmin) wmin = r;
    if (r > wmax) wmax = r;
    if (wfmin < 0 || f < wfmin) wfmin = f;
    if (f > wfmax) wfmax = f;
  }
  double secs = l->n ? (double)(l->t[l->n - 1] - l->start_ms) / 1000.0 : 0;
  fprintf(out, "| %d | %d | %.0f s | %u | %ld-%ld MiB | %d-%d |", i + 1,
          (int)l->pid, secs, l->n, rmin / 1024, rmax / 1024, fmin, fmax);
  if (after < 2) {
    fprintf(out, " (life shorter than the warm-up + 2 samples) | - | n/a |\n");
    return 0;
  }
  int ok = wmax - base_rss <= (long)RSS_BOUND_KB && wfmax - base_fd <= FD_BOUND;
  fprintf(out,
          " %ld-%ld MiB (first %ld, +%ld kB) | %d-%d (first %d, %+d) | %s |\n",
          wmin / 1024, wmax / 1024, base_rss / 1024, wmax - base_rss, wfmin,
          wfmax, base_fd, wfmax - base_fd, ok ? "ok" : "LEAK?");
  return ok ? 0 : -1;
}

static int report(unsigned minutes, int orphans, int dead_lettered,
                  long published, long missing, int stop_ok, int chaos_rc) {
  FILE *out = stdout;
  int fails = 0;
  fprintf(out, "\n## impulse-soak: %u minutes\n\n", minutes);
  fprintf(out, "| what | count |\n|---|---|\n");
  fprintf(out, "| calls (RPC / HTTP) | %lu (%lu / %lu) |\n",
          atomic_load(&g_calls), atomic_load(&g_rpc_calls),
          atomic_load(&g_http_calls));
  fprintf(out, "| calls with an idempotency key | %lu |\n",
          atomic_load(&g_idem_calls));
  fprintf(out, "| answered OK, right payload | %lu |\n", atomic_load(&g_ok));
  fprintf(out, "| events published (acked / failed) | %ld (%lu / %lu) |\n",
          published, atomic_load(&g_reports.ok),
          atomic_load(&g_reports.failed));
  fprintf(out, "| replies read | %lu |\n", g_replies);
  fprintf(out, "| events without a reply | %ld |\n", missing);
  fprintf(out, "| replies out of key order | %lu |\n", g_order_bad);
  fprintf(out,
          "| duplicate replies: after a server kill / a worker kill / "
          "unexplained | %lu / %lu / %lu |\n",
          g_dups_server, g_dups_worker, g_dups_bad);
  fprintf(out, "| records dead-lettered | %d |\n", dead_lettered);
  fprintf(out, "| worker processes killed (SIGKILL) | %lu |\n", g_worker_kills);
  fprintf(out, "| server kill -9 + restart | %lu |\n", g_server_kills);
  fprintf(out, "| rolling upgrades of upg: done / failed | %lu / %lu |\n",
          g_upgrades_done, g_upgrades_failed);
  fprintf(out, "| traffic split changes of split | %lu |\n", g_splits);
  fprintf(out, "| scale to zero and back of zero | %lu |\n", g_zero_cycles);
  fprintf(out, "| processes left after the clean stop | %d |\n", orphans);
  fprintf(out, "| clean stop (SIGTERM, exit 0) | %s |\n\n",
          stop_ok ? "yes" : "NO");

  fprintf(out,
          "Failed calls by cause and by the fault that explains them "
          "(retries of calls with an idempotency key in brackets):\n\n");
  fprintf(out,
          "| cause | worker kill | server kill | unexplained | "
          "retried |\n|---|---|---|---|---|\n");
  unsigned long unexplained = 0;
  for (unsigned i = 0; i < NCAUSES; i++) {
    unsigned long w = atomic_load(&g_failed[i][BY_WORKER]),
                  s = atomic_load(&g_failed[i][BY_SERVER]),
                  n = atomic_load(&g_failed[i][BY_NONE]),
                  rt = atomic_load(&g_retried[i]);
    unexplained += n;
    if (w + s + n + rt == 0) continue;
    fprintf(out, "| %s | %lu | %lu | %lu | (%lu) |\n", causes[i], w, s, n, rt);
  }
  fprintf(out,
          "\nServer RSS and open fds, sampled every %u s (bound after "
          "%u s of warm-up: RSS within +%u MiB, fds within +%d of the "
          "first sample after it):\n\n",
          SAMPLE_MS / 1000, WARMUP_S, RSS_BOUND_KB / 1024, FD_BOUND);
  fprintf(out,
          "| life | pid | length | samples | RSS min-max | fds min-max "
          "| RSS after warm-up | fds after warm-up | |\n"
          "|---|---|---|---|---|---|---|---|---|\n");
  for (int i = 0; i < g_nlives; i++)
    if (life_report(i, out) != 0) fails++;

  if (unexplained) {
    fprintf(out,
            "\nFAIL: %lu failed calls not explained by a fault; the "
            "first: %s\n",
            unexplained, g_first_unexplained);
    fails++;
  }
  if (missing != 0 || g_order_bad || g_dups_bad || g_bad_values ||
      dead_lettered || atomic_load(&g_reports.failed)) {
    fprintf(out,
            "\nFAIL: events: %ld without a reply, %lu out of order, %lu "
            "unexplained duplicates, %lu undecodable replies, %d "
            "dead-lettered, %lu not published; first: %s\n",
            missing, g_order_bad, g_dups_bad, g_bad_values, dead_lettered,
            atomic_load(&g_reports.failed), g_first_event_error);
    fails++;
  }
  if (orphans || !stop_ok) fails++;
  if (chaos_rc != 0) {
    fprintf(out, "\nFAIL: the run stopped early (see the messages above)\n");
    fails++;
  }
  if (g_server_kills != 2 || g_worker_kills == 0 || g_upgrades_done == 0 ||
      g_splits == 0 || g_zero_cycles == 0) {
    fprintf(out, "\nFAIL: not every fault and change was made\n");
    fails++;
  }
  fprintf(out, "\n%s\n", fails ? "SOAK FAILED" : "SOAK PASSED");
  return fails ? 1 : 0;
}

int main(int argc, char **argv) {
  unsigned minutes = 30;
  const char *env = getenv("SOAK_MINUTES");
  if (argc > 1) env = argv[1];
  if (env && *env) minutes = (unsigned)strtoul(env, NULL, 10);
  if (minutes == 0) {
    fprintf(stderr, "usage: impulse-soak [MINUTES] (or SOAK_MINUTES)\n");
    return 2;
  }
  struct sigaction sa = {.sa_handler = on_signal};
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  signal(SIGPIPE, SIG_IGN);
  for (int t = 0; t < NTOPICS; t++)
    for (int k = 0; k < NKEYS; k++) g_max_seen[t][k] = -1;

  static run_t run;
  run_t *r = &run;
  int rc = 1, orphans = 0, dead = 0, stop_ok = 0;
  long published = 0, missing = -1;
  caller_t callers[CALLERS];
  int ncallers = 0;
  rd_kafka_t *producer = NULL, *cons[NTOPICS] = {0};
  pthread_t prod_thread, cons_thread;
  int prod_started = 0, cons_started = 0;

  /* Not under /tmp: a half-hour run should not share its directories with
   * whatever cleans up there (the state directory vanished under a first
   * run, with the server still running). */
  snprintf(r->dir, sizeof r->dir, "/var/tmp/impulse-soak-XXXXXX");
  if (mkdtemp(r->dir) == NULL) {
    perror("impulse-soak: mkdtemp");
    return 1;
  }
  snprintf(r->root_template, sizeof r->root_template, "%.60s/server-XXXXXX",
           r->dir);
  r->server.root_template = r->root_template;
  if (it_kafka_start(&r->kafka, r->dir, NULL) != 0) goto out;
  const char *const flags[] = {"--kafka", r->kafka.addr, NULL};
  if (it_server_start(&r->server, flags) != 0) goto out;
  r->pgids[r->npgids++] = r->server.pid;
  life_begin(r->server.pid);
  snapshot_addr(&r->server);
  if (reconnect_admin(r) != 0 || setup(&r->server, r->admin) != 0) goto out;
  fprintf(stderr, "impulse-soak: %u minutes; server %s (pid %d), cluster %s\n",
          minutes, r->server.addr, (int)r->server.pid, r->kafka.addr);

  producer = ek_producer(r->kafka.addr, "5", &g_reports);
  for (int t = 0; t < NTOPICS; t++) {
    char topic[32];
    snprintf(topic, sizeof topic, "soak.r%d", t);
    char group[48];
    snprintf(group, sizeof group, "impulse-soak-check-%d", t);
    cons[t] = ek_consumer(r->kafka.addr, group, topic);
    if (cons[t] == NULL) goto out;
  }
  if (producer == NULL) goto out;
  g_t0 = it_now_ms();
  if (pthread_create(&cons_thread, NULL, consumer_main, cons) != 0) goto out;
  cons_started = 1;
  if (pthread_create(&prod_thread, NULL, producer_main, producer) != 0)
    goto out;
  prod_started = 1;
  for (; ncallers < CALLERS; ncallers++) {
    caller_t *c = &callers[ncallers];
    memset(c, 0, sizeof *c);
    c->index = ncallers;
    c->rng =
        0x2545f4914f6cdd1dull * (uint64_t)(ncallers + 1) ^ (uint64_t)getpid();
    if (pthread_create(&c->thread, NULL, caller_main, c) != 0) goto out;
  }

  int chaos_rc = chaos(r, (uint64_t)minutes * 60000u);

  /* The end: publishing stops, the replies drain, the callers stop. */
  atomic_store(&g_stop_events, 1);
  pthread_join(prod_thread, NULL);
  prod_started = 0;
  uint64_t until = it_now_ms() + DRAIN_MS;
  while (!g_interrupted && events_missing(NULL) > 0 && it_now_ms() < until) {
    it_sleep_ms(500);
    sample();
  }
  fprintf(stderr,
          "impulse-soak: %.0f s: drained (%ld events without a reply)\n",
          elapsed_s(), events_missing(NULL));
  atomic_store(&g_stop_calls, 1);
  for (int i = 0; i < ncallers; i++) pthread_join(callers[i].thread, NULL);
  ncallers = 0;
  missing = events_missing(&published);
  progress();
  for (int t = 0; t < NTOPICS; t++) {
    char name[32];
    Impulse__Envelope *e = NULL;
    snprintf(name, sizeof name, "soak-t%d", t);
    if (sup_trigger_describe(r->admin, name, &e) != 0) {
      dead = -1;
      continue;
    }
    dead += (int)e->trigger_describe_ok->trigger->dead_lettered;
    impulse__envelope__free_unpacked(e, NULL);
  }
  impulse_client_close(r->admin);
  r->admin = NULL;

  /* The clean stop, then what is left of every server's process group. */
  stop_ok = it_server_stop_checked(&r->server) == 0;
  it_sleep_ms(2000);
  for (int i = 0; i < r->npgids; i++) {
    sup_reap_group(r->pgids[i]);
    orphans += group_members(r->pgids[i]);
  }
  rc = report(minutes, orphans, dead, published, missing, stop_ok, chaos_rc);

out:
  atomic_store(&g_stop_calls, 1);
  atomic_store(&g_stop_events, 2);
  bench_interrupted = 1;
  for (int i = 0; i < ncallers; i++) pthread_join(callers[i].thread, NULL);
  if (prod_started) pthread_join(prod_thread, NULL);
  if (cons_started) pthread_join(cons_thread, NULL);
  for (int t = 0; t < NTOPICS; t++)
    if (cons[t]) ek_consumer_close(cons[t]);
  if (producer) rd_kafka_destroy(producer);
  impulse_client_close(r->admin);
  if (rc != 0) it_server_dump_log(&r->server, 8000);
  it_server_destroy(&r->server);
  it_kafka_finish(&r->kafka, rc == 0);
  sup_rm_tree(r->dir);
  return rc;
}
