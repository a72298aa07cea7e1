/*
 * `impulse publish TOPIC`: events from -d or from the lines of a file or
 * stdin, published straight to the server's Kafka cluster
 * (publish_kafka.c) or, with --via-server, through pipelined Publish calls
 * to the server. The topic is ensured first, with its partition count.
 */
#include "cli/cmd_publish.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/events.h"
#include "cli/publish_kafka.h"

#define IMP_CLI_PUBLISH_WINDOW 1024u /* Publish RPCs in flight */
#define IMP_CLI_MAX_KAFKA_OPTS 64
#define IMP_CLI_PUBLISH_TIMEOUT_MS 30000u /* default --timeout */

static void publish_help(FILE *out) {
  fprintf(
      out,
      "usage: impulse publish TOPIC [-k KEY | -K DELIM] [-H NAME=VALUE]...\n"
      "                             [-d DATA | -f FILE] [options]\n"
      "\n"
      "Publishes events to TOPIC: the one given with -d, else one event per\n"
      "line of FILE or of stdin (empty lines are skipped). By default the\n"
      "events go straight to the server's Kafka cluster (`kafka:` of\n"
      "`impulse info`) with an idempotent producer; with --via-server they\n"
      "go through the server's Publish call. The topic is created first if\n"
      "missing. Waits until every event is acknowledged, prints\n"
      "\"published N events to TOPIC\", and exits 1 if any was not.\n"
      "\n"
      "  -k, --key KEY            key of every event\n"
      "  -K, --key-delim DELIM    each line is KEY DELIM VALUE (a line\n"
      "                           without DELIM: the -k key, or none)\n"
      "  -H, --header NAME=VALUE  record header (repeatable)\n"
      "  -d, --data DATA          publish this one event\n"
      "  -f, --file FILE          events from FILE, one per line\n"
      "                           ('-' = stdin)\n"
      "  -p, --partition N        write to partition N (0-%u; default: by\n"
      "                           the key's hash; spread without a key)\n"
      "  --partitions N           partitions of the topic if it is created\n"
      "                           (1-%u; default: the server's --partitions)\n"
      "  --via-server             publish through the server, not to Kafka\n"
      "  --kafka-opt NAME=VALUE   librdkafka property of the producer, e.g.\n"
      "                           security.protocol=SASL_SSL (repeatable)\n"
      "  --timeout MS             how long to wait for acknowledgements\n"
      "                           (1-%u) [%u]\n",
      IMP_PARTITIONS_MAX - 1, IMP_PARTITIONS_MAX, IMP_CLI_WAIT_MAX_MS,
      IMP_CLI_PUBLISH_TIMEOUT_MS);
}

/* ---- through the server ------------------------------------------------ */

/* Takes one Publish answer. Returns 0, or a transport status. */
static int via_server_collect(impulse_client_t *client, imp_cli_tally_t *tally,
                              const uint64_t *lines) {
  Impulse__Envelope *resp = NULL;
  int status = imp_client_recv(client, &resp);
  if (status != 0) return status;
  uint64_t line = lines[resp->id % IMP_CLI_PUBLISH_WINDOW];
  if (resp->body_case == IMPULSE__ENVELOPE__BODY_PUBLISH_OK) {
    tally->acked++;
    tally->partition = resp->publish_ok->partition;
    tally->offset = resp->publish_ok->offset;
  } else if (resp->body_case == IMPULSE__ENVELOPE__BODY_ERROR) {
    const Impulse__Error *e = resp->error;
    imp_cli_tally_fail(tally, line, "%s: %s", imp_error_code_name(e->code),
                       imp_cli_str_or(e->message, "failed"));
  } else {
    imp_cli_tally_fail(tally, line, "unexpected answer (body %d)",
                       (int)resp->body_case);
  }
  impulse__envelope__free_unpacked(resp, NULL);
  return 0;
}

/* Publishes every event with pipelined Publish RPCs. Returns 0 or an exit
 * status after printing why. */
static int publish_via_server(imp_cli_t *cli, const imp_cli_publish_opts_t *po,
                              imp_cli_events_t *src, imp_cli_tally_t *tally) {
  Impulse__Header *hs = NULL, **hp = NULL;
  uint64_t *lines = calloc(IMP_CLI_PUBLISH_WINDOW, sizeof *lines);
  unsigned in_flight = 0;
  int rc = 0, status = 0;
  if (lines == NULL) goto nomem;
  if (po->nheaders > 0) {
    hs = calloc(po->nheaders, sizeof *hs);
    hp = calloc(po->nheaders, sizeof *hp);
    if (hs == NULL || hp == NULL) goto nomem;
    for (size_t i = 0; i < po->nheaders; i++) {
      impulse__header__init(&hs[i]);
      hs[i].name = (char *)po->headers[i].name;
      hs[i].has_value = 1;
      hs[i].value.data = (uint8_t *)po->headers[i].value;
      hs[i].value.len = po->headers[i].len;
      hp[i] = &hs[i];
    }
  }
  imp_cli_event_t ev;
  int r;
  while ((r = imp_cli_events_next(src, &ev)) > 0) {
    Impulse__Envelope req = IMPULSE__ENVELOPE__INIT;
    Impulse__PublishRequest pub = IMPULSE__PUBLISH_REQUEST__INIT;
    pub.topic = (char *)po->topic;
    if (ev.key != NULL) {
      pub.has_key = 1;
      pub.key.data = (uint8_t *)ev.key;
      pub.key.len = ev.klen;
    }
    pub.has_value = 1;
    pub.value.data = (uint8_t *)ev.value;
    pub.value.len = ev.vlen;
    pub.n_headers = po->nheaders;
    pub.headers = hp;
    if (po->partition >= 0) {
      pub.has_partition = 1;
      pub.partition = po->partition;
    }
    req.body_case = IMPULSE__ENVELOPE__BODY_PUBLISH;
    req.publish = &pub;
    uint64_t id = 0;
    status = imp_client_send(cli->client, &req, &id);
    if (status == IMPULSE_S_TOO_LARGE) {
      tally->refused++;
      imp_cli_tally_fail(tally, ev.line, "%s",
                         impulse_client_error(cli->client));
      continue;
    }
    if (status != 0) goto fail;
    lines[id % IMP_CLI_PUBLISH_WINDOW] = ev.line;
    tally->sent++;
    if (++in_flight >= IMP_CLI_PUBLISH_WINDOW) {
      status = via_server_collect(cli->client, tally, lines);
      if (status != 0) goto fail;
      in_flight--;
    }
  }
  if (r < 0) {
    fprintf(stderr, "impulse publish: reading events: %s\n", strerror(errno));
    rc = IMP_CLI_EXIT_FAIL;
  }
  while (in_flight > 0) {
    if ((status = via_server_collect(cli->client, tally, lines)) != 0)
      goto fail;
    in_flight--;
  }
  goto out;
fail:
  rc = imp_cli_report(cli, status);
  goto out;
nomem:
  fprintf(stderr, "impulse publish: out of memory\n");
  rc = IMP_CLI_EXIT_FAIL;
out:
  free(lines);
  free(hs);
  free(hp);
  return rc;
}

/* ---- the command --------------------------------------------------------- */

/* Ensures the topic, with its partition count (producing would otherwise
 * let the cluster create it with its own default), then asks ServerInfo:
 * cli->resp holds its answer. Returns 0 or the exit status. */
static int prepare_topic(imp_cli_t *cli, const char *topic,
                         uint32_t partitions) {
  Impulse__EnsureTopicRequest ensure = IMPULSE__ENSURE_TOPIC_REQUEST__INIT;
  Impulse__ServerInfoRequest info = IMPULSE__SERVER_INFO_REQUEST__INIT;
  ensure.topic = (char *)topic;
  ensure.has_partitions = partitions > 0;
  ensure.partitions = partitions;
  int rc = imp_cli_call(cli, IMPULSE__ENVELOPE__BODY_ENSURE_TOPIC, &ensure,
                        IMPULSE__ENVELOPE__BODY_ENSURE_TOPIC_OK);
  if (rc != 0) return rc;
  return imp_cli_call(cli, IMPULSE__ENVELOPE__BODY_SERVER_INFO, &info,
                      IMPULSE__ENVELOPE__BODY_SERVER_INFO_OK);
}

/* Opens the events' source: -d, FILE or stdin. */
static int open_events(imp_cli_events_t *src, const char *file) {
  if (src->data != NULL) return 0;
  if (file == NULL || strcmp(file, "-") == 0) {
    src->in = stdin;
    if (isatty(STDIN_FILENO))
      fprintf(stderr,
              "impulse publish: reading events from stdin, one per line "
              "(end with Ctrl-D)\n");
    return 0;
  }
  if ((src->in = fopen(file, "re")) != NULL) return 0;
  fprintf(stderr, "impulse publish: %s: %s\n", file, strerror(errno));
  return IMP_CLI_EXIT_FAIL;
}

/* Prints what was published; an event sent without a report counts as not
 * published. Returns the exit status given `rc`, the run's. */
static int print_tally(const imp_cli_tally_t *tally, const char *topic,
                       int rc) {
  uint64_t events = tally->sent + tally->refused;
  uint64_t missing = events - tally->acked;
  if (tally->acked == 1 && events == 1)
    printf("published 1 event to %s (partition %d, offset %lld)\n", topic,
           (int)tally->partition, (long long)tally->offset);
  else
    printf("published %llu events to %s\n", (unsigned long long)tally->acked,
           topic);
  fflush(stdout);
  if (missing == 0) return rc;
  fprintf(stderr, "impulse publish: %llu of %llu events were not published\n",
          (unsigned long long)missing, (unsigned long long)events);
  return rc == 0 ? IMP_CLI_EXIT_FAIL : rc;
}

/* Publishes the events once the options are checked. */
static int publish(imp_cli_t *cli, imp_cli_publish_opts_t *po,
                   imp_cli_events_t *src, uint32_t partitions, int via_server) {
  imp_cli_tally_t tally;
  int rc;
  memset(&tally, 0, sizeof tally);
  if ((rc = imp_cli_connect(cli)) != 0) return rc;
  impulse_client_set_timeout(cli->client,
                             po->timeout_ms + IMP_CLI_DEADLINE_SLACK_MS);
  if ((rc = prepare_topic(cli, po->topic, partitions)) != 0) return rc;
  /* The server's frame limit bounds what it would take or hand on. */
  const Impulse__ServerInfoResponse *s = cli->resp->server_info_ok;
  po->max_event = s->has_max_frame && s->max_frame > 0 ? s->max_frame
                                                       : IMP_DEFAULT_MAX_FRAME;
  if (via_server) {
    rc = publish_via_server(cli, po, src, &tally);
  } else {
    const char *bootstrap = s->kafka_bootstrap;
    if (bootstrap == NULL || bootstrap[0] == '\0') {
      fprintf(stderr,
              "impulse publish: %s reports no Kafka bootstrap address; use "
              "--via-server\n",
              imp_client_addr(cli->client));
      return IMP_CLI_EXIT_FAIL;
    }
    rc = imp_cli_publish_kafka(po, bootstrap, src, &tally);
    if (tally.sent > 0 && tally.acked == 0)
      fprintf(stderr,
              "impulse publish: no event reached Kafka at %s; if that address "
              "is not reachable from here, --via-server publishes through "
              "the server\n",
              bootstrap);
  }
  if (rc != 0 && tally.sent == 0 && tally.refused == 0) return rc;
  return print_tally(&tally, po->topic, rc);
}

static int cmd_publish(imp_cli_t *cli, int argc, char **argv) {
  enum {
    OPT_PARTITIONS = IMP_CLI_OPT_FIRST,
    OPT_VIA_SERVER,
    OPT_KAFKA_OPT,
    OPT_TIMEOUT
  };
  static const struct option longopts[] = {
      {"key", required_argument, NULL, 'k'},
      {"key-delim", required_argument, NULL, 'K'},
      {"header", required_argument, NULL, 'H'},
      {"data", required_argument, NULL, 'd'},
      {"file", required_argument, NULL, 'f'},
      {"partition", required_argument, NULL, 'p'},
      {"partitions", required_argument, NULL, OPT_PARTITIONS},
      {"via-server", no_argument, NULL, OPT_VIA_SERVER},
      {"kafka-opt", required_argument, NULL, OPT_KAFKA_OPT},
      {"timeout", required_argument, NULL, OPT_TIMEOUT},
      IMP_CLI_COMMON_OPTIONS,
      {NULL, 0, NULL, 0}};
  const char *kafka_opts[IMP_CLI_MAX_KAFKA_OPTS];
  const char *file = NULL;
  uint32_t partitions = 0, partition = 0;
  int has_partition = 0, via_server = 0, opt, rc = 0;
  imp_cli_events_t src;
  imp_cli_publish_opts_t po;
  memset(&src, 0, sizeof src);
  memset(&po, 0, sizeof po);
  po.timeout_ms = IMP_CLI_PUBLISH_TIMEOUT_MS;
  po.kafka_opts = kafka_opts;

  while ((opt = getopt_long(argc, argv, ":k:K:H:d:f:p:h", longopts, NULL)) !=
         -1) {
    switch (opt) {
      case 'k': src.key = optarg; break;
      case 'K':
        if (*optarg == '\0')
          return imp_cli_usage_error(cli, "--key-delim must not be empty");
        src.delim = optarg;
        src.delim_len = strlen(optarg);
        break;
      case 'd': src.data = optarg; break;
      case 'f': file = optarg; break;
      case 'H': rc = imp_cli_add_header(cli, optarg); break;
      case 'p':
        has_partition = 1;
        rc = imp_cli_parse_u32(cli, "--partition", optarg, 0,
                               IMP_PARTITIONS_MAX - 1, &partition);
        break;
      case OPT_PARTITIONS:
        rc = imp_cli_parse_u32(cli, "--partitions", optarg, 1,
                               IMP_PARTITIONS_MAX, &partitions);
        break;
      case OPT_VIA_SERVER: via_server = 1; break;
      case OPT_KAFKA_OPT:
        if (strchr(optarg, '=') == NULL || optarg[0] == '=')
          return imp_cli_usage_error(
              cli, "--kafka-opt takes NAME=VALUE, not '%s'", optarg);
        if (po.nkafka_opts == IMP_CLI_MAX_KAFKA_OPTS)
          return imp_cli_usage_error(cli, "at most %d --kafka-opt",
                                     IMP_CLI_MAX_KAFKA_OPTS);
        kafka_opts[po.nkafka_opts++] = optarg;
        break;
      case OPT_TIMEOUT:
        rc = imp_cli_parse_u32(cli, "--timeout", optarg, 1, IMP_CLI_WAIT_MAX_MS,
                               &po.timeout_ms);
        break;
      default:
        if ((rc = imp_cli_common_option(cli, opt, argv)) >= 0) return rc;
        rc = 0;
    }
    if (rc != 0) return rc;
  }
  if (argc - optind != 1) return imp_cli_usage_error(cli, "expected one TOPIC");
  if (src.data != NULL && file != NULL)
    return imp_cli_usage_error(cli, "-d and -f cannot be used together");
  if (src.data != NULL && src.delim != NULL)
    return imp_cli_usage_error(cli,
                               "-K splits lines of -f FILE or stdin, not -d");
  if (via_server && po.nkafka_opts > 0)
    return imp_cli_usage_error(
        cli, "--kafka-opt is for direct publishing, not --via-server");
  char why[256];
  po.topic = argv[optind];
  if (imp_topic_valid(po.topic, why, sizeof why) != 0)
    return imp_cli_usage_error(cli, "%s", why);
  po.partition = has_partition ? (int32_t)partition : -1;
  po.headers = cli->headers;
  po.nheaders = cli->nheaders;

  rc = open_events(&src, file);
  if (rc == 0) rc = publish(cli, &po, &src, partitions, via_server);
  if (src.in != NULL && src.in != stdin) fclose(src.in);
  free(src.line);
  return rc;
}

/* ---- the table entry ----------------------------------------------------- */

/* clang-format off */
const imp_cli_cmd_t imp_cli_cmd_publish =
    {"publish", cmd_publish, publish_help, "publish TOPIC",
     "publish events to a topic", NULL, 0};
/* clang-format on */
