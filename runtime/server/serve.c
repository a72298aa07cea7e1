/*
 * `impulse serve`: flags, state directory, admin token, and the event loop
 * that hosts the gateway, the controller and the instance manager.
 */
#include "server/serve.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/common.h"
#include "core/limits.h"
#include "server/control/stats.h"
#include "server/gateway/gateway.h"
#include "server/http/http.h"
#include "server/invoke/invoke.h"
#include "server/server.h"

static void usage(FILE *f) {
  fprintf(
      f,
      "Usage: impulse serve [options]\n"
      "\n"
      "Runs the Impulse server: the RPC gateway, the controller and the "
      "function\n"
      "instances (worker processes).\n"
      "\n"
      "Options:\n"
      "  --state-dir DIR        state directory (RocksDB, artifacts, admin "
      "token)\n"
      "                         [./var/impulse]\n"
      "  --listen HOST:PORT     RPC address [127.0.0.1:7070]\n"
      "  --http HOST:PORT|off   HTTP front end: POST /function/NAME, POST\n"
      "                         /topics/TOPIC, /healthz, /readyz, /metrics,\n"
      "                         /api/state (see docs/http.md); port 0 picks a "
      "free\n"
      "                         one; /healthz, /readyz and /metrics need no "
      "token\n"
      "                         [127.0.0.1:8080]\n"
      "  --warm-pool N          generic workers kept started [2]\n"
      "  --max-frame BYTES      largest accepted frame [16777216]\n"
      "  --queue-timeout MS     how long a call may wait for a free instance "
      "[5000]\n"
      "  --max-queue N          calls waiting per function before OVERLOADED "
      "[10000]\n"
      "  --idle-timeout S       default scale-to-zero grace: a function "
      "without\n"
      "                         calls this long goes down to its min [30]\n"
      "  --invoke-auth MODE     'open': invoke, publish, ls, describe and\n"
      "                         trigger ls need no token; 'token': every call\n"
      "                         needs one [token when --listen or --http is\n"
      "                         not a loopback address, else open]\n"
      "  --default-concurrency N  per-instance concurrency when deploy omits "
      "it [4]\n"
      "  --default-timeout MS   handler timeout when deploy omits it [30000]\n"
      "  --default-memory MB    memory limit when deploy omits it [256]\n"
      "  --default-max N        max instances when deploy omits it [10]\n"
      "  --ready-file PATH      written once the server is restored and "
      "serving\n"
      "  --drain-timeout MS     on SIGTERM/SIGINT, how long calls in flight "
      "may\n"
      "                         finish before the server stops [10000]\n"
      "  --kafka HOST:PORT,...  use this Kafka cluster; without it an "
      "embedded\n"
      "                         Kafka-protocol cluster starts in-process "
      "(events\n"
      "                         kept in memory only) and its address is "
      "printed\n"
      "  --kafka-opt NAME=VALUE librdkafka property for every Kafka client, "
      "e.g.\n"
      "                         security.protocol=SASL_SSL (repeatable)\n"
      "  --kafka-brokers N      brokers of the embedded cluster [3]\n"
      "  --partitions N         partitions of topics created on demand [8]\n"
      "  --max-event-bytes N    largest record a trigger passes to a "
      "function;\n"
      "                         larger ones are dead-lettered [1048576]\n"
      "  --worker-grace MS      workers outlive a crash of the server this "
      "long,\n"
      "                         waiting to be re-attached; 0 = they end with "
      "it\n"
      "                         [60000]\n"
      "  --idempotency-ttl S    how long the answer of a call with an "
      "idempotency\n"
      "                         key is kept for its retries [86400]\n"
      "  --sandbox MODE         how instances are isolated: auto, userns, "
      "uid or\n"
      "                         none (docs/security.md) [auto]\n"
      "  --sandbox-uid-base UID as root, instances run as UID + (id %% "
      "65536) [200000]\n"
      "  --no-cgroups           no cgroup per instance (rlimits only)\n"
      "  --instance-tmp MB      size of an instance's private /tmp [64]\n"
      "  --instance-max-fds N   open files per instance [1024]\n"
      "  --instance-max-procs N processes and threads per instance (at "
      "least its\n"
      "                         concurrency + 64) [128]\n"
      "  --log-ring-bytes N     memory kept per function for what its "
      "instances\n"
      "                         write (stdout, stderr, impulse_log) "
      "[1048576]\n"
      "  --log-rate-bytes N     bytes per second a function may log, with a "
      "burst\n"
      "                         of 4 s of it; more is dropped and counted; 0 = "
      "no\n"
      "                         limit [262144]\n"
      "\n"
      "Connection limits (docs/operations.md, \"Connection limits\"):\n"
      "  --max-connections N    RPC connections in all; over it a new one is\n"
      "                         closed at once [derived from the open-file "
      "limit]\n"
      "  --max-connections-per-peer N  RPC connections of one source address\n"
      "                         (IPv6: one /64) [256]\n"
      "  --rpc-idle-timeout MS  an RPC connection with no call in flight that\n"
      "                         sends no complete frame this long is closed\n"
      "                         [300000]\n"
      "  --hello-timeout MS     an RPC connection must complete its Hello (or "
      "a\n"
      "                         first request it may make) in this [5000]\n"
      "  --http-max-connections N  HTTP connections in all; over it: 503\n"
      "                         [derived from the open-file limit, at most "
      "4096]\n"
      "  --http-max-connections-per-peer N  HTTP connections of one source\n"
      "                         address (IPv6: one /64); over it: 503 [256]\n"
      "  --http-header-timeout MS  a request's line and headers must arrive\n"
      "                         within this of its first byte (of the "
      "connection,\n"
      "                         for its first request), else 408 [10000]\n"
      "  --http-body-timeout MS longest wait for more bytes of a request "
      "body,\n"
      "                         else 408 [10000]\n"
      "\n"
      "  --log-level LEVEL      error, warn, info or debug [info]\n"
      "  -h, --help             this text\n"
      "\n"
      "Environment: IMPULSE_STATE_DIR, IMPULSE_LISTEN, IMPULSE_KAFKA and\n"
      "IMPULSE_LOG_LEVEL give defaults for the flags of the same meaning.\n");
}

static int parse_uint(const char *flag, const char *s, unsigned long min,
                      unsigned long max, unsigned long *out) {
  return imp_uint_flag("serve", flag, s, min, max, out);
}

static int mkdir_p(const char *path, mode_t mode) {
  char tmp[600];
  snprintf(tmp, sizeof tmp, "%s", path);
  for (char *p = tmp + 1; *p; p++) {
    if (*p != '/') continue;
    *p = '\0';
    if (mkdir(tmp, mode) != 0 && errno != EEXIST) return -errno;
    *p = '/';
  }
  if (mkdir(tmp, mode) != 0 && errno != EEXIST) return -errno;
  return 0;
}

/* Reads the admin token, creating it (mode 0600) on first start. */
static int load_token(imp_server_t *server) {
  char path[700];
  snprintf(path, sizeof path, "%s/admin.token", server->cfg.state_dir);
  char *data;
  size_t len;
  int rc = imp_read_file(path, 256, &data, &len);
  if (rc == 0) {
    while (len && (data[len - 1] == '\n' || data[len - 1] == '\r')) len--;
    if (len == 0 || len > 64) {
      free(data);
      IMP_LOG(IMP_LOG_ERROR,
              "%s is empty or too long; delete it to make a new one", path);
      return -EINVAL;
    }
    memcpy(server->control.token, data, len);
    server->control.token[len] = '\0';
    free(data);
    IMP_LOG(IMP_LOG_INFO, "admin token: %s", path);
    return 0;
  }
  if (rc != -ENOENT) {
    IMP_LOG(IMP_LOG_ERROR, "cannot read %s: %s", path, imp_strerror(rc));
    return rc;
  }
  uint8_t raw[32];
  if (getrandom(raw, sizeof raw, 0) != (ssize_t)sizeof raw) return -errno;
  imp_hex(raw, sizeof raw, server->control.token);
  int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) {
    IMP_LOG(IMP_LOG_ERROR, "cannot create %s: %s", path, strerror(errno));
    return -errno;
  }
  char line[80];
  int n = snprintf(line, sizeof line, "%s\n", server->control.token);
  if (write(fd, line, (size_t)n) != n || fsync(fd) != 0) {
    close(fd);
    return -EIO;
  }
  close(fd);
  IMP_LOG(IMP_LOG_INFO, "created admin token: %s (mode 0600)", path);
  return 0;
}

/* Closes the store and what was loaded from it. */
static void close_store(imp_server_t *server) {
  imp_tokens_free(server->tokens);
  server->tokens = NULL;
  imp_store_close(server->store);
}

/* Whether `host` (an address as --listen and --http take it) is a
 * loopback address: 127.0.0.0/8, ::1, ::ffff:127.x or "localhost". */
static int is_loopback(const char *host) {
  struct in_addr a4;
  struct in6_addr a6;
  if (strcmp(host, "localhost") == 0) return 1;
  if (inet_pton(AF_INET, host, &a4) == 1)
    return (ntohl(a4.s_addr) >> 24) == 127;
  if (inet_pton(AF_INET6, host, &a6) == 1)
    return IN6_IS_ADDR_LOOPBACK(&a6) ||
           (IN6_IS_ADDR_V4MAPPED(&a6) && a6.s6_addr[12] == 127);
  return 0;
}

/* The autoscaler reads trigger lag through this (control.lag_source). */
static void triggers_lag(void *arg, imp_lag_visit_cb visit, void *varg) {
  imp_triggers_foreach(arg, visit, varg);
}

static void on_tick(uv_timer_t *t) {
  imp_server_t *server = t->data;
  imp_control_tick(&server->control);
}

/* Ready once restored: every function has its min instances serving (the
 * re-attached or recreated ones), or READY_WAIT_MS passed. Until then
 * ServerInfo.ready, /readyz and the ready file say not yet (calls are
 * served all the same). */
#define READY_WAIT_MS 15000u

static int write_ready_file(const char *path, imp_server_t *server);

static void on_ready_check(uv_timer_t *t) {
  imp_server_t *server = t->data;
  uint64_t waited = imp_now_ms() - server->started_ms;
  int done = imp_control_restored(&server->control);
  if (!done && waited < READY_WAIT_MS && !server->stopping) return;
  uv_timer_stop(t);
  if (server->stopping) return;
  server->ready = 1;
  if (done)
    IMP_LOG(IMP_LOG_INFO,
            "ready: %u function%s restored with their min "
            "instances in %llu ms",
            server->control.invoke.registry.count,
            server->control.invoke.registry.count == 1 ? "" : "s",
            (unsigned long long)waited);
  else
    IMP_LOG(IMP_LOG_WARN,
            "ready after %u ms without every function's min "
            "instances (see the log above for why)",
            READY_WAIT_MS);
  const imp_config_t *cfg = &server->cfg;
  if (cfg->ready_file[0] && write_ready_file(cfg->ready_file, server) != 0)
    IMP_LOG(IMP_LOG_WARN, "cannot write ready file %s", cfg->ready_file);
}

static void kill_stragglers(uv_timer_t *t) {
  imp_server_t *server = t->data;
  imp_fleet_signal_all(&server->control.fleet, SIGKILL);
  uv_close((uv_handle_t *)t, NULL);
}

static uv_timer_t stop_timer, drain_timer;

/* Closes every connection and stops the workers; the loop then ends. */
static void final_stop(imp_server_t *server) {
  if (server->final_stop) return;
  server->final_stop = 1;
  uv_close((uv_handle_t *)&drain_timer, NULL);
  uv_close((uv_handle_t *)&server->sigint, NULL);
  uv_close((uv_handle_t *)&server->sigterm, NULL);
  imp_gateway_stop(server->gateway);
  imp_http_stop(server);
  imp_control_stop(&server->control);
  uv_timer_init(server->loop, &stop_timer);
  stop_timer.data = server;
  uv_timer_start(&stop_timer, kill_stragglers, 3000, 0);
  uv_unref((uv_handle_t *)&stop_timer);
}

static void on_drain(uv_timer_t *t) {
  imp_server_t *server = t->data;
  unsigned left = imp_invoke_in_flight(&server->control.invoke);
  if (left == 0 && server->triggers && !imp_triggers_closed(server->triggers))
    left = 1;                     /* offsets still being committed */
  if (left == 0 && server->kafka) /* Publish calls awaiting their broker */
    left = (unsigned)imp_kafka_in_flight(server->kafka);
  if (left == 0) {
    final_stop(server);
  } else if (imp_now_ms() >= server->drain_deadline_ms) {
    IMP_LOG(IMP_LOG_WARN, "drain timeout: %u calls still in flight are dropped",
            left);
    final_stop(server);
  }
}

/* First signal: stop taking work, let calls in flight finish (bounded by
 * --drain-timeout), then stop. A second signal stops at once. */
static void on_signal(uv_signal_t *sig, int signum) {
  imp_server_t *server = sig->data;
  if (server->stopping) {
    IMP_LOG(IMP_LOG_INFO, "signal %d again: stopping now", signum);
    final_stop(server);
    return;
  }
  server->stopping = 1;
  IMP_LOG(IMP_LOG_INFO, "signal %d: stopping (draining %u calls in flight)",
          signum, imp_invoke_in_flight(&server->control.invoke));
  uv_timer_stop(&server->tick);
  uv_close((uv_handle_t *)&server->tick, NULL);
  uv_timer_stop(&server->ready_timer);
  uv_close((uv_handle_t *)&server->ready_timer, NULL);
  imp_gateway_stop_listening(server->gateway);
  imp_http_stop_listening(server);
  imp_control_drain(&server->control);
  /* Triggers stop consuming now; their calls in flight finish within the
   * drain and their offsets are committed. */
  imp_triggers_close(server->triggers, (int)server->cfg.drain_timeout_ms);
  server->drain_deadline_ms = imp_now_ms() + server->cfg.drain_timeout_ms;
  uv_timer_init(server->loop, &drain_timer);
  drain_timer.data = server;
  uv_timer_start(&drain_timer, on_drain, 0, 20);
}

static int write_ready_file(const char *path, imp_server_t *server) {
  char line[700], http[300] = "";
  /* The HTTP address, when there is one, is a third field. */
  if (server->cfg.http_port >= 0)
    snprintf(http, sizeof http, " %s:%d", server->cfg.http_host,
             server->cfg.http_port);
  int n = snprintf(line, sizeof line, "%d %s:%d%s\n", (int)getpid(),
                   server->cfg.listen_host, server->cfg.listen_port, http);
  return imp_write_file_atomic(path, line, (size_t)n);
}

/* Descriptors kept for everything but client connections: the state
 * store's files, Kafka's sockets, the workers' sockets and pipes, the
 * listeners. */
#define FD_RESERVE 1024u
#define DERIVED_MAX_CONNS 65536u /* RPC, when the fd limit allows more */
#define DERIVED_HTTP_MAX_CONNS 4096u

/* Raises the open-file soft limit to the hard one, so that the connection
 * caps can be reached, and derives the caps not given from it: HTTP gets
 * a quarter of what FD_RESERVE leaves (at most 4096), the RPC port the
 * rest (at most 65536). Says what it chose in the log. */
static void connection_limits(imp_config_t *cfg) {
  struct rlimit rl;
  rlim_t nofile = 1024;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
    rlim_t want = rl.rlim_max;
    if (want == RLIM_INFINITY || want > (1u << 20)) want = 1u << 20;
    if (rl.rlim_cur < want) {
      rlim_t was = rl.rlim_cur;
      rl.rlim_cur = want;
      if (setrlimit(RLIMIT_NOFILE, &rl) == 0)
        IMP_LOG(IMP_LOG_INFO, "open-file limit raised from %llu to %llu",
                (unsigned long long)was, (unsigned long long)want);
      else
        rl.rlim_cur = was;
    }
    nofile = rl.rlim_cur;
  }
  unsigned avail =
      nofile > FD_RESERVE + 32 ? (unsigned)(nofile - FD_RESERVE) : 32u;
  int derived_http = 0, derived_rpc = 0;
  if (cfg->http_max_conns == 0) {
    cfg->http_max_conns =
        avail / 4 < DERIVED_HTTP_MAX_CONNS ? avail / 4 : DERIVED_HTTP_MAX_CONNS;
    derived_http = 1;
  }
  if (cfg->max_conns == 0) {
    unsigned rest =
        avail > cfg->http_max_conns ? avail - cfg->http_max_conns : 16u;
    cfg->max_conns = rest < DERIVED_MAX_CONNS ? rest : DERIVED_MAX_CONNS;
    derived_rpc = 1;
  }
  IMP_LOG(IMP_LOG_INFO,
          "connections: RPC at most %u%s (%u per peer), HTTP at most %u%s "
          "(%u per peer); open-file limit %llu, %u kept for the store, Kafka "
          "and workers",
          cfg->max_conns, derived_rpc ? " (derived)" : "",
          cfg->max_conns_per_peer, cfg->http_max_conns,
          derived_http ? " (derived)" : "", cfg->http_max_conns_per_peer,
          (unsigned long long)nofile, FD_RESERVE);
  if ((unsigned long long)cfg->max_conns + cfg->http_max_conns + FD_RESERVE >
      (unsigned long long)nofile)
    IMP_LOG(IMP_LOG_WARN,
            "--max-connections %u and --http-max-connections %u leave fewer "
            "than %u of the %llu open files for the store, Kafka and "
            "workers: accepting may fail with EMFILE before a cap is reached",
            cfg->max_conns, cfg->http_max_conns, FD_RESERVE,
            (unsigned long long)nofile);
}

int imp_serve_main(int argc, char **argv) {
  static imp_server_t srv; /* lives for the process; not a global API */
  imp_server_t *server = &srv;
  imp_config_t *cfg = &server->cfg;
  const char *env;
  snprintf(cfg->state_dir, sizeof cfg->state_dir, "%s",
           (env = getenv("IMPULSE_STATE_DIR")) ? env : "./var/impulse");
  const char *listen =
      (env = getenv("IMPULSE_LISTEN")) ? env : "127.0.0.1:7070";
  const char *http = "127.0.0.1:8080";
  if ((env = getenv("IMPULSE_LOG_LEVEL")) && imp_log_parse(env) >= 0)
    imp_log_level = imp_log_parse(env);
  cfg->warm_pool = 2;
  cfg->max_frame = IMP_DEFAULT_MAX_FRAME;
  cfg->queue_timeout_ms = 5000;
  cfg->max_queue = 10000;
  cfg->idle_timeout_s = 30;
  cfg->default_concurrency = 4;
  cfg->default_timeout_ms = 30000;
  cfg->default_memory_mb = 256;
  cfg->default_max_instances = 10;
  cfg->validate_timeout_ms = 10000;
  cfg->worker_grace_ms = 60000;
  cfg->drain_timeout_ms = 10000;
  static const char *kafka_props[64];
  cfg->kafka_props = kafka_props;
  cfg->kafka_bootstrap = getenv("IMPULSE_KAFKA");
  if (cfg->kafka_bootstrap && !cfg->kafka_bootstrap[0])
    cfg->kafka_bootstrap = NULL;
  cfg->kafka_brokers = 3;
  cfg->partitions = 8;
  cfg->max_event_bytes = 1u << 20;
  cfg->idempotency_ttl_s = 86400;
  snprintf(cfg->sandbox, sizeof cfg->sandbox, "auto");
  cfg->sandbox_uid_base = 200000;
  cfg->cgroups = 1;
  cfg->instance_tmp_mb = 64;
  cfg->instance_max_fds = 1024;
  cfg->instance_max_procs = 128;
  cfg->log_ring_bytes = IMP_FNLOG_DEFAULT_RING;
  cfg->log_rate_bytes = IMP_FNLOG_DEFAULT_RATE;
  cfg->max_conns_per_peer = 256;
  cfg->rpc_idle_ms = 300000;
  cfg->hello_timeout_ms = 5000;
  cfg->http_max_conns_per_peer = 256;
  cfg->http_header_timeout_ms = 10000;
  cfg->http_body_timeout_ms = 10000;

  enum {
    O_STATE = 256,
    O_LISTEN,
    O_WARM,
    O_FRAME,
    O_QTIMEOUT,
    O_MAXQ,
    O_IDLE,
    O_IAUTH,
    O_DCONC,
    O_DTIMEOUT,
    O_DMEM,
    O_DMAX,
    O_READY,
    O_LOG,
    O_DRAIN,
    O_KAFKA,
    O_KOPT,
    O_KBROKERS,
    O_PARTS,
    O_MAXEV,
    O_IDEMTTL,
    O_WGRACE,
    O_HTTP,
    O_SANDBOX,
    O_SBUID,
    O_NOCG,
    O_ITMP,
    O_IFDS,
    O_IPROCS,
    O_LOGRING,
    O_LOGRATE,
    O_MAXCONN,
    O_MAXPEER,
    O_RPCIDLE,
    O_HELLO,
    O_HMAXCONN,
    O_HMAXPEER,
    O_HHEADER,
    O_HBODY
  };
  static const struct option opts[] = {
      {"state-dir", required_argument, 0, O_STATE},
      {"listen", required_argument, 0, O_LISTEN},
      {"http", required_argument, 0, O_HTTP},
      {"warm-pool", required_argument, 0, O_WARM},
      {"max-frame", required_argument, 0, O_FRAME},
      {"queue-timeout", required_argument, 0, O_QTIMEOUT},
      {"max-queue", required_argument, 0, O_MAXQ},
      {"idle-timeout", required_argument, 0, O_IDLE},
      {"invoke-auth", required_argument, 0, O_IAUTH},
      {"default-concurrency", required_argument, 0, O_DCONC},
      {"default-timeout", required_argument, 0, O_DTIMEOUT},
      {"default-memory", required_argument, 0, O_DMEM},
      {"default-max", required_argument, 0, O_DMAX},
      {"ready-file", required_argument, 0, O_READY},
      {"drain-timeout", required_argument, 0, O_DRAIN},
      {"kafka", required_argument, 0, O_KAFKA},
      {"kafka-opt", required_argument, 0, O_KOPT},
      {"kafka-brokers", required_argument, 0, O_KBROKERS},
      {"partitions", required_argument, 0, O_PARTS},
      {"max-event-bytes", required_argument, 0, O_MAXEV},
      {"idempotency-ttl", required_argument, 0, O_IDEMTTL},
      {"worker-grace", required_argument, 0, O_WGRACE},
      {"sandbox", required_argument, 0, O_SANDBOX},
      {"sandbox-uid-base", required_argument, 0, O_SBUID},
      {"no-cgroups", no_argument, 0, O_NOCG},
      {"instance-tmp", required_argument, 0, O_ITMP},
      {"instance-max-fds", required_argument, 0, O_IFDS},
      {"instance-max-procs", required_argument, 0, O_IPROCS},
      {"log-level", required_argument, 0, O_LOG},
      {"log-ring-bytes", required_argument, 0, O_LOGRING},
      {"log-rate-bytes", required_argument, 0, O_LOGRATE},
      {"max-connections", required_argument, 0, O_MAXCONN},
      {"max-connections-per-peer", required_argument, 0, O_MAXPEER},
      {"rpc-idle-timeout", required_argument, 0, O_RPCIDLE},
      {"hello-timeout", required_argument, 0, O_HELLO},
      {"http-max-connections", required_argument, 0, O_HMAXCONN},
      {"http-max-connections-per-peer", required_argument, 0, O_HMAXPEER},
      {"http-header-timeout", required_argument, 0, O_HHEADER},
      {"http-body-timeout", required_argument, 0, O_HBODY},
      {"help", no_argument, 0, 'h'},
      {0, 0, 0, 0}};
  int c;
  unsigned long v;
  int iauth_explicit = 0;
  optind = 1;
  while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
    switch (c) {
      case O_STATE:
        snprintf(cfg->state_dir, sizeof cfg->state_dir, "%s", optarg);
        break;
      case O_LISTEN: listen = optarg; break;
      case O_HTTP:
        http = optarg;
        cfg->http_explicit = 1;
        break;
      case O_WARM:
        if (parse_uint("--warm-pool", optarg, 0, 1000, &v)) return 2;
        cfg->warm_pool = (unsigned)v;
        break;
      case O_FRAME:
        if (parse_uint("--max-frame", optarg, IMP_MAX_FRAME_MIN,
                       IMP_MAX_FRAME_MAX, &v))
          return 2;
        cfg->max_frame = v;
        break;
      case O_QTIMEOUT:
        if (parse_uint("--queue-timeout", optarg, 1, 3600000, &v)) return 2;
        cfg->queue_timeout_ms = (unsigned)v;
        break;
      case O_MAXQ:
        if (parse_uint("--max-queue", optarg, 1, 10000000, &v)) return 2;
        cfg->max_queue = (unsigned)v;
        break;
      case O_IDLE:
        if (parse_uint("--idle-timeout", optarg, 1, 86400 * 365, &v)) return 2;
        cfg->idle_timeout_s = (unsigned)v;
        break;
      case O_IAUTH:
        iauth_explicit = 1;
        if (strcmp(optarg, "open") == 0)
          cfg->invoke_needs_token = 0;
        else if (strcmp(optarg, "token") == 0)
          cfg->invoke_needs_token = 1;
        else {
          fprintf(stderr,
                  "impulse serve: --invoke-auth is 'open' or 'token'\n");
          return 2;
        }
        break;
      case O_DCONC:
        if (parse_uint("--default-concurrency", optarg, 1, 1024, &v)) return 2;
        cfg->default_concurrency = (unsigned)v;
        break;
      case O_DTIMEOUT:
        if (parse_uint("--default-timeout", optarg, 1, 3600000, &v)) return 2;
        cfg->default_timeout_ms = (unsigned)v;
        break;
      case O_DMEM:
        if (parse_uint("--default-memory", optarg, 0, 1u << 20, &v)) return 2;
        cfg->default_memory_mb = (unsigned)v;
        break;
      case O_DMAX:
        if (parse_uint("--default-max", optarg, 1, 10000, &v)) return 2;
        cfg->default_max_instances = (unsigned)v;
        break;
      case O_KAFKA: cfg->kafka_bootstrap = optarg; break;
      case O_KOPT:
        if (strchr(optarg, '=') == NULL || optarg[0] == '=') {
          fprintf(stderr,
                  "impulse serve: --kafka-opt takes NAME=VALUE, not '%s'\n",
                  optarg);
          return 2;
        }
        if (cfg->nkafka_props < IMP_ARRAY_SIZE(kafka_props))
          kafka_props[cfg->nkafka_props++] = optarg;
        break;
      case O_KBROKERS:
        if (parse_uint("--kafka-brokers", optarg, 1, 16, &v)) return 2;
        cfg->kafka_brokers = (unsigned)v;
        break;
      case O_PARTS:
        if (parse_uint("--partitions", optarg, 1, 10000, &v)) return 2;
        cfg->partitions = (unsigned)v;
        break;
      case O_MAXEV:
        if (parse_uint("--max-event-bytes", optarg, 1, 1u << 30, &v)) return 2;
        cfg->max_event_bytes = v;
        break;
      case O_WGRACE:
        if (parse_uint("--worker-grace", optarg, 0, 3600000, &v)) return 2;
        cfg->worker_grace_ms = (unsigned)v;
        break;
      case O_SANDBOX:
        if (strcmp(optarg, "auto") != 0 && strcmp(optarg, "userns") != 0 &&
            strcmp(optarg, "uid") != 0 && strcmp(optarg, "none") != 0) {
          fprintf(stderr,
                  "serve: --sandbox must be auto, userns, uid or none, not "
                  "'%s'\n",
                  optarg);
          return 2;
        }
        snprintf(cfg->sandbox, sizeof cfg->sandbox, "%s", optarg);
        break;
      case O_SBUID:
        if (parse_uint("--sandbox-uid-base", optarg, 1000, 4000000000u, &v))
          return 2;
        cfg->sandbox_uid_base = (unsigned)v;
        break;
      case O_NOCG: cfg->cgroups = 0; break;
      case O_ITMP:
        if (parse_uint("--instance-tmp", optarg, 1, 1u << 20, &v)) return 2;
        cfg->instance_tmp_mb = (unsigned)v;
        break;
      case O_IFDS:
        if (parse_uint("--instance-max-fds", optarg, 64, 1u << 20, &v))
          return 2;
        cfg->instance_max_fds = (unsigned)v;
        break;
      case O_IPROCS:
        if (parse_uint("--instance-max-procs", optarg, 8, 1u << 22, &v))
          return 2;
        cfg->instance_max_procs = (unsigned)v;
        break;
      case O_IDEMTTL:
        if (parse_uint("--idempotency-ttl", optarg, 1, 365u * 86400, &v))
          return 2;
        cfg->idempotency_ttl_s = (unsigned)v;
        break;
      case O_DRAIN:
        if (parse_uint("--drain-timeout", optarg, 0, 3600000, &v)) return 2;
        cfg->drain_timeout_ms = (unsigned)v;
        break;
      case O_MAXCONN:
        if (parse_uint("--max-connections", optarg, 1, 10000000, &v)) return 2;
        cfg->max_conns = (unsigned)v;
        break;
      case O_MAXPEER:
        if (parse_uint("--max-connections-per-peer", optarg, 1, 10000000, &v))
          return 2;
        cfg->max_conns_per_peer = (unsigned)v;
        break;
      case O_RPCIDLE:
        if (parse_uint("--rpc-idle-timeout", optarg, 100, 86400000, &v))
          return 2;
        cfg->rpc_idle_ms = (unsigned)v;
        break;
      case O_HELLO:
        if (parse_uint("--hello-timeout", optarg, 100, 3600000, &v)) return 2;
        cfg->hello_timeout_ms = (unsigned)v;
        break;
      case O_HMAXCONN:
        if (parse_uint("--http-max-connections", optarg, 1, 10000000, &v))
          return 2;
        cfg->http_max_conns = (unsigned)v;
        break;
      case O_HMAXPEER:
        if (parse_uint("--http-max-connections-per-peer", optarg, 1, 10000000,
                       &v))
          return 2;
        cfg->http_max_conns_per_peer = (unsigned)v;
        break;
      case O_HHEADER:
        if (parse_uint("--http-header-timeout", optarg, 100, 3600000, &v))
          return 2;
        cfg->http_header_timeout_ms = (unsigned)v;
        break;
      case O_HBODY:
        if (parse_uint("--http-body-timeout", optarg, 100, 3600000, &v))
          return 2;
        cfg->http_body_timeout_ms = (unsigned)v;
        break;
      case O_READY:
        snprintf(cfg->ready_file, sizeof cfg->ready_file, "%s", optarg);
        break;
      case O_LOG:
        if (imp_log_flag("serve", optarg) != 0) return 2;
        break;
      case O_LOGRING:
        if (parse_uint("--log-ring-bytes", optarg, 4096, 1ul << 30, &v))
          return 2;
        cfg->log_ring_bytes = v;
        break;
      case O_LOGRATE:
        if (parse_uint("--log-rate-bytes", optarg, 0, 1ul << 30, &v)) return 2;
        cfg->log_rate_bytes = v;
        break;
      case 'h': usage(stdout); return 0;
      default: usage(stderr); return 2;
    }
  }
  if (optind < argc) {
    fprintf(stderr, "impulse serve: unexpected argument '%s'\n", argv[optind]);
    usage(stderr);
    return 2;
  }
  if (imp_parse_hostport(listen, cfg->listen_host, sizeof cfg->listen_host,
                         &cfg->listen_port) != 0) {
    fprintf(stderr, "impulse serve: --listen must be HOST:PORT, not '%s'\n",
            listen);
    return 2;
  }
  if (strcmp(http, "off") == 0) {
    cfg->http_port = -1;
  } else if (imp_parse_hostport(http, cfg->http_host, sizeof cfg->http_host,
                                &cfg->http_port) != 0) {
    fprintf(stderr,
            "impulse serve: --http must be HOST:PORT or 'off', not '%s'\n",
            http);
    return 2;
  }

  /* Without --invoke-auth, a server reachable from other machines asks for
   * a token for every call; one on loopback only stays open. */
  char iauth_why[600];
  int rpc_exposed = !is_loopback(cfg->listen_host);
  int http_exposed = cfg->http_port >= 0 && !is_loopback(cfg->http_host);
  if (iauth_explicit)
    snprintf(iauth_why, sizeof iauth_why, "--invoke-auth");
  else if (rpc_exposed || http_exposed)
    snprintf(iauth_why, sizeof iauth_why,
             "default: %s listens on %s, not a loopback address",
             rpc_exposed ? "RPC" : "HTTP",
             rpc_exposed ? cfg->listen_host : cfg->http_host);
  else
    snprintf(iauth_why, sizeof iauth_why,
             "default: RPC and HTTP listen on loopback addresses only");
  if (!iauth_explicit) cfg->invoke_needs_token = rpc_exposed || http_exposed;

  signal(SIGPIPE, SIG_IGN);
  connection_limits(cfg);
  server->started_ms = imp_now_ms();
  /* A ready file left by a server that was killed must not say this one
   * is ready before it is. */
  if (cfg->ready_file[0]) unlink(cfg->ready_file);

  ssize_t n = readlink("/proc/self/exe", server->exe, sizeof server->exe - 1);
  if (n <= 0) {
    IMP_LOG(IMP_LOG_ERROR, "cannot find own executable: %s", strerror(errno));
    return 1;
  }
  server->exe[n] = '\0';
  /* Workers run the small impulse-worker executable next to this one when
   * it is there: it starts in a fraction of the time of the full binary,
   * which links RocksDB and librdkafka. */
  memcpy(server->control.fleet.worker_exe, server->exe,
         sizeof server->control.fleet.worker_exe);
  char *slash = strrchr(server->control.fleet.worker_exe, '/');
  if (slash && (size_t)(slash - server->control.fleet.worker_exe) + 16 <
                   sizeof server->control.fleet.worker_exe) {
    strcpy(slash + 1, "impulse-worker");
    server->control.fleet.worker_separate =
        access(server->control.fleet.worker_exe, X_OK) == 0;
  }
  if (!server->control.fleet.worker_separate)
    memcpy(server->control.fleet.worker_exe, server->exe,
           sizeof server->control.fleet.worker_exe);

  /* State directory layout: db/ (RocksDB), artifacts/, run/ (sockets). */
  char dbdir[700], err[512];
  int rc = mkdir_p(cfg->state_dir, 0700);
  if (rc != 0) {
    IMP_LOG(IMP_LOG_ERROR, "cannot create state directory %s: %s",
            cfg->state_dir, strerror(-rc));
    return 1;
  }
  char real[PATH_MAX];
  if (realpath(cfg->state_dir, real) != NULL &&
      strlen(real) < sizeof cfg->state_dir)
    memcpy(cfg->state_dir, real, strlen(real) + 1);
  snprintf(dbdir, sizeof dbdir, "%s/db", cfg->state_dir);
  snprintf(server->control.artifact_dir, sizeof server->control.artifact_dir,
           "%s/artifacts", cfg->state_dir);
  snprintf(server->control.fleet.run_dir, sizeof server->control.fleet.run_dir,
           "%s/run", cfg->state_dir);
  if (mkdir_p(server->control.artifact_dir, 0700) != 0 ||
      mkdir_p(server->control.fleet.run_dir, 0700) != 0) {
    IMP_LOG(IMP_LOG_ERROR, "cannot create directories under %s",
            cfg->state_dir);
    return 1;
  }
  if (load_token(server) != 0) return 1;
  /* The state is the server's alone: no instance uid may enter it. */
  struct stat sst;
  if (stat(cfg->state_dir, &sst) == 0 && (sst.st_mode & 077) != 0 &&
      chmod(cfg->state_dir, 0700) == 0)
    IMP_LOG(IMP_LOG_INFO, "state directory %s made private (mode 0700)",
            cfg->state_dir);
  /* Before any thread starts: the probe forks. */
  if (imp_isolate_setup(&server->control.fleet.iso, cfg, err, sizeof err) !=
      0) {
    IMP_LOG(IMP_LOG_ERROR, "%s", err);
    return 1;
  }
  IMP_LOG(strcmp(server->control.fleet.iso.mode, "userns") == 0 &&
                  server->control.fleet.iso.cgroup
              ? IMP_LOG_INFO
              : IMP_LOG_WARN,
          "instance sandbox: %s", server->control.fleet.iso.describe);

  rc = imp_store_open(dbdir, &server->store, err, sizeof err);
  if (rc != 0) {
    IMP_LOG(IMP_LOG_ERROR, "cannot open state store %s: %s", dbdir, err);
    return 1;
  }
  rc = imp_tokens_open(server->store, &server->tokens, err, sizeof err);
  if (rc != 0) {
    IMP_LOG(IMP_LOG_ERROR, "%s", err);
    close_store(server);
    return 1;
  }
  server->metrics = imp_metrics_new();
  if (server->metrics == NULL) {
    IMP_LOG(IMP_LOG_ERROR, "out of memory");
    close_store(server);
    return 1;
  }
  imp_store_set_write_histogram(server->store,
                                imp_metrics_store_writes(server->metrics));

  server->loop = uv_default_loop();
  server->loop->data = server;
  imp_conn_loop_init(&server->cl, server->loop);

  imp_kafka_opts_t kopts = {0};
  kopts.bootstrap = cfg->kafka_bootstrap;
  kopts.embedded_brokers = cfg->kafka_brokers;
  kopts.props = cfg->kafka_props;
  kopts.nprops = cfg->nkafka_props;
  kopts.default_partitions = cfg->partitions;
  kopts.max_message = cfg->max_frame;
  rc = imp_kafka_open(server->loop, &kopts, &server->kafka, err, sizeof err);
  if (rc != 0) {
    IMP_LOG(IMP_LOG_ERROR, "kafka: %s", err);
    close_store(server);
    return 1;
  }
  IMP_LOG(IMP_LOG_INFO, "kafka: %s%s", imp_kafka_bootstrap(server->kafka),
          imp_kafka_is_embedded(server->kafka)
              ? " (embedded cluster: events are kept in memory only)"
              : "");
  rc = imp_gateway_start(server, &server->gateway);
  if (rc != 0) {
    close_store(server);
    return rc == UV_EADDRINUSE ? IMP_SERVE_EXIT_ADDR_IN_USE : 1;
  }
  /* An address given with --http must be usable; the default one may be
   * taken (another server on this machine), which only costs the front
   * end. */
  rc = cfg->http_port >= 0 ? imp_http_start(server) : 0;
  if (rc != 0) {
    if (cfg->http_explicit) {
      close_store(server);
      return rc == UV_EADDRINUSE ? IMP_SERVE_EXIT_ADDR_IN_USE : 1;
    }
    cfg->http_port = -1;
  }
  uv_signal_init(server->loop, &server->sigint);
  uv_signal_init(server->loop, &server->sigterm);
  server->sigint.data = server->sigterm.data = server;
  uv_signal_start(&server->sigint, on_signal, SIGINT);
  uv_signal_start(&server->sigterm, on_signal, SIGTERM);

  imp_control_t *ctl = &server->control;
  ctl->loop = server->loop;
  ctl->cfg = &server->cfg;
  ctl->cl = &server->cl;
  ctl->store = server->store;
  ctl->metrics = server->metrics;
  ctl->started_ms = server->started_ms;
  imp_control_init(ctl);
  if (imp_control_register_metrics(ctl, server->metrics) != 0 ||
      imp_metrics_register(server->metrics, imp_fnlogs_collect, &ctl->logs) !=
          0) {
    IMP_LOG(IMP_LOG_ERROR, "out of memory");
    close_store(server);
    return 1;
  }
  /* Restore first: it adopts the workers of a previous run (their ids are
   * in the store) before any new worker takes an id. */
  if (imp_control_restore(ctl) != 0) {
    IMP_LOG(IMP_LOG_ERROR, "restore from the state store failed");
    close_store(server);
    return 1;
  }
  imp_fleet_fill_pool(&server->control.fleet);
  imp_triggers_env_t tenv = {
      .loop = server->loop,
      .cl = &server->cl,
      .store = server->store,
      .kafka = server->kafka,
      .metrics = server->metrics,
      .invoker = &server->control.invoke.invoker,
      .max_frame = cfg->max_frame,
      .max_event_bytes = cfg->max_event_bytes,
      .kafka_props = cfg->kafka_props,
      .nkafka_props = cfg->nkafka_props,
  };
  if (imp_triggers_open(&tenv, &server->triggers) != 0) {
    IMP_LOG(IMP_LOG_ERROR, "cannot start the trigger broker");
    imp_kafka_close(server->kafka, 1000);
    close_store(server);
    return 1;
  }
  ctl->lag_source = triggers_lag;
  ctl->lag_source_arg = server->triggers;
  uv_timer_init(server->loop, &server->tick);
  server->tick.data = server;
  uv_timer_start(&server->tick, on_tick, 1000, 1000);

  IMP_LOG(IMP_LOG_INFO,
          "impulse %s serving on %s:%d (state %s, warm pool %u, pid %d)",
          IMPULSE_VERSION, cfg->listen_host, cfg->listen_port, cfg->state_dir,
          cfg->warm_pool, (int)getpid());
  if (cfg->http_port >= 0)
    IMP_LOG(IMP_LOG_INFO,
            "HTTP on http://%s:%d (/function/NAME, /topics/TOPIC, "
            "/metrics, /api/state)",
            cfg->http_host, cfg->http_port);
  IMP_LOG(cfg->invoke_needs_token || !(rpc_exposed || http_exposed)
              ? IMP_LOG_INFO
              : IMP_LOG_WARN,
          "invoke auth: %s (%s)%s", cfg->invoke_needs_token ? "token" : "open",
          iauth_why,
          cfg->invoke_needs_token
              ? ": every call but Hello and ServerInfo needs a token"
              : ": invoke, publish, ls, describe and trigger ls need no "
                "token");
  uv_timer_init(server->loop, &server->ready_timer);
  server->ready_timer.data = server;
  uv_unref((uv_handle_t *)&server->ready_timer);
  uv_timer_start(&server->ready_timer, on_ready_check, 0, 10);

  uv_run(server->loop, UV_RUN_DEFAULT);

  imp_conn_loop_close(&server->cl);
  imp_http_close(server);
  uv_run(server->loop, UV_RUN_NOWAIT);
  imp_control_free(&server->control);
  if (server->triggers) imp_triggers_free(server->triggers);
  imp_kafka_close(server->kafka, 2000);
  uv_run(server->loop, UV_RUN_NOWAIT);
  imp_http_free(server);
  imp_gateway_free(server->gateway);
  close_store(server);
  imp_metrics_free(server->metrics);
  imp_isolate_release(&server->control.fleet.iso);
  /* Last: a worker's output readers may still run in the loops above. */
  imp_fnlogs_free(&server->control.logs);
  if (cfg->ready_file[0]) unlink(cfg->ready_file);
  IMP_LOG(IMP_LOG_INFO, "stopped");
  return 0;
}
