/*
 * `impulse kafka`: the embedded Kafka-protocol cluster (librdkafka's mock
 * cluster, started by eventing/kafka.c as a server's own) as a process of
 * its own, so that servers can be killed and restarted, or share it.
 *
 * The mock brokers listen on random loopback ports. For a fixed address,
 * a forwarder (tools/forward.h) listens on it and pipes each connection to
 * the first broker: clients bootstrap through it, then learn every
 * broker's own address from Metadata and connect there directly.
 */
#include "tools/kafka_main.h"

#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "core/common.h"
#include "core/limits.h"
#include "eventing/kafka.h"
#include "tools/forward.h"

#define MAX_TOPIC_FLAGS 256

/* The command's loop: the forwarder (with --listen) and the signals that
 * stop it. */
typedef struct kafka_cmd_s {
  uv_loop_t *loop;
  imp_fwd_t fwd;
  int forwarding; /* fwd started */
  uv_signal_t sigint, sigterm;
  int stopping;
} kafka_cmd_t;

static void cmd_stop(kafka_cmd_t *cmd) {
  if (cmd->stopping) return;
  cmd->stopping = 1;
  uv_close((uv_handle_t *)&cmd->sigint, NULL);
  uv_close((uv_handle_t *)&cmd->sigterm, NULL);
  if (cmd->forwarding) imp_fwd_stop(&cmd->fwd);
}

static void on_kafka_signal(uv_signal_t *sig, int signum) {
  kafka_cmd_t *cmd = sig->data;
  IMP_LOG(IMP_LOG_INFO, "kafka: signal %d: stopping", signum);
  cmd_stop(cmd);
}

/* clang-format off */
static void kafka_usage(FILE *f) {
  fprintf(f,
"Usage: impulse kafka [options]\n"
"\n"
"Runs the embedded Kafka-protocol cluster (librdkafka's mock cluster) as a\n"
"process of its own, so that `impulse serve --kafka ADDR` servers can be\n"
"restarted or killed without losing events, and several servers can share\n"
"it. Events are kept in memory only, at most about 5 MiB per partition\n"
"(older records are dropped beyond that). Prints `kafka: ADDR` on stdout\n"
"once serving; runs until SIGINT or SIGTERM.\n"
"\n"
"Options:\n"
"  --brokers N            brokers of the cluster [3]\n"
"  --listen HOST:PORT     fixed bootstrap address (the brokers themselves\n"
"                         listen on random 127.0.0.1 ports; clients\n"
"                         bootstrap here and then connect to them)\n"
"  --topic NAME[:PARTITIONS]\n"
"                         create a topic at start (repeatable); topics made\n"
"                         on demand later get the cluster's default of 4\n"
"                         partitions\n"
"  --partitions N         partitions of --topic without a count [8]\n"
"  --bootstrap-file PATH  also write the address to PATH (atomically)\n"
"  --log-level LEVEL      error, warn, info or debug [info]\n"
"  -h, --help             this text\n");
}
/* clang-format on */

/* Starts the forwarder on host:port to the first broker of `bootstraps`;
 * *bound gets the address it listens on. */
static int forward_start(kafka_cmd_t *cmd, const char *host, int port,
                         const char *bootstraps, char *bound, size_t boundlen) {
  char bhost[256], first[300];
  int bport;
  struct sockaddr_storage broker;
  snprintf(first, sizeof first, "%s", bootstraps);
  char *comma = strchr(first, ',');
  if (comma) *comma = '\0';
  if (imp_parse_hostport(first, bhost, sizeof bhost, &bport) != 0 ||
      uv_ip4_addr(bhost, bport, (struct sockaddr_in *)&broker) != 0) {
    fprintf(stderr, "impulse kafka: cannot parse broker address '%s'\n", first);
    return -1;
  }
  struct sockaddr_storage ss;
  int rc = uv_ip4_addr(host, port, (struct sockaddr_in *)&ss);
  if (rc != 0) rc = uv_ip6_addr(host, port, (struct sockaddr_in6 *)&ss);
  if (rc != 0) {
    fprintf(stderr, "impulse kafka: --listen needs an IP address, not '%s'\n",
            host);
    return -1;
  }
  rc = imp_fwd_start(&cmd->fwd, cmd->loop, (const struct sockaddr *)&ss,
                     (const struct sockaddr *)&broker);
  if (rc != 0) {
    fprintf(stderr, "impulse kafka: cannot listen on %s:%d: %s\n", host, port,
            uv_strerror(rc));
    return -1;
  }
  cmd->forwarding = 1;
  imp_fwd_name(&cmd->fwd, bound, boundlen);
  return 0;
}

int imp_kafka_main(int argc, char **argv) {
  unsigned long brokers = IMP_KAFKA_DEFAULT_BROKERS;
  unsigned long partitions = IMP_KAFKA_DEFAULT_PARTITIONS, v;
  const char *listen = NULL, *bootstrap_file = NULL;
  const char *topics[MAX_TOPIC_FLAGS];
  size_t ntopics = 0;
  const char *env = getenv("IMPULSE_LOG_LEVEL");
  if (env && imp_log_parse(env) >= 0) imp_log_level = imp_log_parse(env);

  enum { O_BROKERS = 256, O_LISTEN, O_TOPIC, O_PARTS, O_BFILE, O_LOG };
  static const struct option opts[] = {
      {"brokers", required_argument, 0, O_BROKERS},
      {"listen", required_argument, 0, O_LISTEN},
      {"topic", required_argument, 0, O_TOPIC},
      {"partitions", required_argument, 0, O_PARTS},
      {"bootstrap-file", required_argument, 0, O_BFILE},
      {"log-level", required_argument, 0, O_LOG},
      {"help", no_argument, 0, 'h'},
      {0, 0, 0, 0}};
  int c;
  optind = 1;
  while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
    switch (c) {
      case O_BROKERS:
        if (imp_uint_flag("kafka", "--brokers", optarg, 1, 16, &brokers))
          return 2;
        break;
      case O_LISTEN: listen = optarg; break;
      case O_TOPIC:
        if (ntopics == MAX_TOPIC_FLAGS) {
          fprintf(stderr, "impulse kafka: at most %d --topic flags\n",
                  MAX_TOPIC_FLAGS);
          return 2;
        }
        topics[ntopics++] = optarg;
        break;
      case O_PARTS:
        if (imp_uint_flag("kafka", "--partitions", optarg, 1,
                          IMP_KAFKA_MAX_PARTITIONS, &partitions))
          return 2;
        break;
      case O_BFILE: bootstrap_file = optarg; break;
      case O_LOG:
        if (imp_log_flag("kafka", optarg) != 0) return 2;
        break;
      case 'h': kafka_usage(stdout); return 0;
      default: kafka_usage(stderr); return 2;
    }
  }
  if (optind < argc) {
    fprintf(stderr, "impulse kafka: unexpected argument '%s'\n", argv[optind]);
    kafka_usage(stderr);
    return 2;
  }
  char lhost[256];
  int lport = 0;
  if (listen != NULL &&
      imp_parse_hostport(listen, lhost, sizeof lhost, &lport) != 0) {
    fprintf(stderr, "impulse kafka: --listen must be HOST:PORT, not '%s'\n",
            listen);
    return 2;
  }
  /* Topic flags are checked before anything starts. */
  char names[MAX_TOPIC_FLAGS][IMP_TOPIC_MAX + 1];
  int counts[MAX_TOPIC_FLAGS];
  for (size_t i = 0; i < ntopics; i++) {
    char why[256];
    const char *colon = strrchr(topics[i], ':');
    size_t nlen = colon ? (size_t)(colon - topics[i]) : strlen(topics[i]);
    counts[i] = (int)partitions;
    if (colon != NULL) {
      if (imp_uint_flag("kafka", "--topic partitions", colon + 1, 1,
                        IMP_KAFKA_MAX_PARTITIONS, &v))
        return 2;
      counts[i] = (int)v;
    }
    if (nlen > IMP_TOPIC_MAX) nlen = IMP_TOPIC_MAX + 1;
    snprintf(names[i], sizeof names[i], "%.*s", (int)nlen, topics[i]);
    if (nlen > IMP_TOPIC_MAX ||
        imp_topic_valid(names[i], why, sizeof why) != 0) {
      fprintf(stderr, "impulse kafka: --topic %s: %s\n", topics[i],
              nlen > IMP_TOPIC_MAX ? "name too long" : why);
      return 2;
    }
  }

  signal(SIGPIPE, SIG_IGN);
  rd_kafka_t *rk = NULL;
  rd_kafka_mock_cluster_t *mc = NULL;
  char err[512];
  int rc = 1;
  if (imp_kafka_mock_start((unsigned)brokers, &rk, &mc, err, sizeof err) != 0) {
    fprintf(stderr, "impulse kafka: %s\n", err);
    return 1;
  }
  const char *bootstraps = rd_kafka_mock_cluster_bootstraps(mc);
  for (size_t i = 0; i < ntopics; i++) {
    rd_kafka_resp_err_t e =
        rd_kafka_mock_topic_create(mc, names[i], counts[i], 1);
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR &&
        e != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
      fprintf(stderr, "impulse kafka: cannot create topic %s: %s\n", names[i],
              rd_kafka_err2str(e));
      goto out;
    }
    IMP_LOG(IMP_LOG_INFO, "kafka: created topic %s (%d partitions)", names[i],
            counts[i]);
  }

  static kafka_cmd_t cmd; /* lives for the process; not a global API */
  cmd.loop = uv_default_loop();
  char addr[1024];
  snprintf(addr, sizeof addr, "%s", bootstraps);
  if (listen != NULL &&
      forward_start(&cmd, lhost, lport, bootstraps, addr, sizeof addr) != 0) {
    uv_run(cmd.loop, UV_RUN_NOWAIT);
    goto out;
  }
  uv_signal_init(cmd.loop, &cmd.sigint);
  uv_signal_init(cmd.loop, &cmd.sigterm);
  cmd.sigint.data = cmd.sigterm.data = &cmd;
  uv_signal_start(&cmd.sigint, on_kafka_signal, SIGINT);
  uv_signal_start(&cmd.sigterm, on_kafka_signal, SIGTERM);

  char line[1100];
  snprintf(line, sizeof line, "kafka: %s\n", addr);
  if (bootstrap_file != NULL) {
    char fileline[1100];
    snprintf(fileline, sizeof fileline, "%s\n", addr);
    int wrc = imp_write_file_atomic(bootstrap_file, fileline, strlen(fileline));
    if (wrc != 0) {
      fprintf(stderr, "impulse kafka: cannot write %s: %s\n", bootstrap_file,
              imp_strerror(wrc));
      cmd_stop(&cmd);
      uv_run(cmd.loop, UV_RUN_DEFAULT);
      goto out;
    }
  }
  IMP_LOG(IMP_LOG_INFO,
          "kafka: embedded cluster of %lu brokers at %s%s%s (pid %d); events "
          "are kept in memory only",
          brokers, bootstraps, listen ? ", bootstrap through " : "",
          listen ? addr : "", (int)getpid());
  fputs(line, stdout);
  fflush(stdout);
  uv_run(cmd.loop, UV_RUN_DEFAULT);
  if (bootstrap_file != NULL) unlink(bootstrap_file);
  rc = 0;
out:
  uv_loop_close(uv_default_loop());
  rd_kafka_mock_cluster_destroy(mc);
  rd_kafka_destroy(rk);
  return rc;
}
