/*
 * The trigger commands: trigger create, ls, describe and rm.
 */
#include "cli/cmd_trigger.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

/* ---- trigger create ---------------------------------------------------- */

static void trigger_create_help(FILE *out) {
  fprintf(
      out,
      "usage: impulse trigger create NAME --topic TOPIC --function FUNCTION\n"
      "                              [options]\n"
      "\n"
      "Creates trigger NAME: every event published to TOPIC becomes an\n"
      "invocation of FUNCTION, at least once. The trigger is stored and\n"
      "survives restarts. Unset settings take the server's defaults.\n"
      "\n"
      "  --topic TOPIC        topic to consume (created when missing)\n"
      "  --function FUNCTION  function invoked for each event\n"
      "  --group GROUP        consumer group (1 to %d printable characters)\n"
      "                       [impulse-NAME]\n"
      "  --from WHERE         'earliest' or 'latest': where a new group "
      "starts\n"
      "                       [earliest]\n"
      "  --ordering MODE      'partition' (one event at a time per "
      "partition),\n"
      "                       'key' (one at a time per key) or 'none'\n"
      "                       [partition]\n"
      "  --max-in-flight N    invocations in flight per partition (1-%u)\n"
      "                       [64]\n"
      "  --max-retries N      retries before an event is dead-lettered\n"
      "                       (0-%u) [3]\n"
      "  --backoff INITIAL_MS:MAX_MS\n"
      "                       retry backoff, doubled each attempt, with "
      "jitter\n"
      "                       (each 1-%u) [100:10000]\n"
      "  --dlq TOPIC          dead-letter topic [TOPIC.dlq]\n"
      "  --reply-topic TOPIC  write each function response there (same key)\n",
      IMP_GROUP_MAX, IMP_TRIGGER_MAX_IN_FLIGHT, IMP_TRIGGER_MAX_RETRIES,
      IMP_TRIGGER_BACKOFF_MAX_MS);
}

/* Checks a topic flag's value; returns 0 or the usage exit status. */
static int check_topic(const imp_cli_t *cli, const char *flag,
                       const char *topic) {
  char why[256];
  if (imp_topic_valid(topic, why, sizeof why) == 0) return 0;
  return imp_cli_usage_error(cli, "%s: %s", flag, why);
}

/* Checks --group as the server does: printable, at most IMP_GROUP_MAX. */
static int check_group(const imp_cli_t *cli, const char *group) {
  size_t n = strlen(group);
  for (size_t i = 0; i < n; i++)
    if (!isgraph((unsigned char)group[i]))
      return imp_cli_usage_error(
          cli, "--group has a character that is not printable at position %zu",
          i + 1);
  if (n > IMP_GROUP_MAX)
    return imp_cli_usage_error(cli, "--group is %zu characters, above %d", n,
                               IMP_GROUP_MAX);
  return 0;
}

/* 1 when `arg` is one of the NULL-terminated `words`. */
static int is_one_of(const char *arg, const char *const *words) {
  for (size_t i = 0; words[i] != NULL; i++)
    if (strcmp(arg, words[i]) == 0) return 1;
  return 0;
}

/* Parses --backoff INITIAL_MS:MAX_MS (in argv: cut at the ':'). */
static int parse_backoff(const imp_cli_t *cli, char *arg,
                         Impulse__TriggerSpec *spec) {
  char *colon = strchr(arg, ':');
  if (colon == NULL)
    return imp_cli_usage_error(cli, "--backoff is INITIAL_MS:MAX_MS, not '%s'",
                               arg);
  *colon = '\0'; /* arg points into argv, which we may modify */
  int rc =
      imp_cli_parse_u32(cli, "--backoff INITIAL_MS", arg, 1,
                        IMP_TRIGGER_BACKOFF_MAX_MS, &spec->backoff_initial_ms);
  if (rc == 0)
    rc = imp_cli_parse_u32(cli, "--backoff MAX_MS", colon + 1, 1,
                           IMP_TRIGGER_BACKOFF_MAX_MS, &spec->backoff_max_ms);
  if (rc != 0) return rc;
  if (spec->backoff_initial_ms > spec->backoff_max_ms)
    return imp_cli_usage_error(
        cli, "--backoff: INITIAL_MS (%u) is above MAX_MS (%u)",
        (unsigned)spec->backoff_initial_ms, (unsigned)spec->backoff_max_ms);
  spec->has_backoff_initial_ms = spec->has_backoff_max_ms = 1;
  return 0;
}

static int cmd_trigger_create(imp_cli_t *cli, int argc, char **argv) {
  enum {
    OPT_TOPIC = IMP_CLI_OPT_FIRST,
    OPT_FUNCTION,
    OPT_GROUP,
    OPT_FROM,
    OPT_ORDERING,
    OPT_MAX_IN_FLIGHT,
    OPT_MAX_RETRIES,
    OPT_BACKOFF,
    OPT_DLQ,
    OPT_REPLY
  };
  static const struct option longopts[] = {
      {"topic", required_argument, NULL, OPT_TOPIC},
      {"function", required_argument, NULL, OPT_FUNCTION},
      {"group", required_argument, NULL, OPT_GROUP},
      {"from", required_argument, NULL, OPT_FROM},
      {"ordering", required_argument, NULL, OPT_ORDERING},
      {"max-in-flight", required_argument, NULL, OPT_MAX_IN_FLIGHT},
      {"max-retries", required_argument, NULL, OPT_MAX_RETRIES},
      {"backoff", required_argument, NULL, OPT_BACKOFF},
      {"dlq", required_argument, NULL, OPT_DLQ},
      {"reply-topic", required_argument, NULL, OPT_REPLY},
      IMP_CLI_COMMON_OPTIONS,
      {NULL, 0, NULL, 0}};
  static const char *const froms[] = {"earliest", "latest", NULL};
  static const char *const orderings[] = {"partition", "key", "none", NULL};
  Impulse__TriggerCreateRequest create = IMPULSE__TRIGGER_CREATE_REQUEST__INIT;
  Impulse__TriggerSpec spec = IMPULSE__TRIGGER_SPEC__INIT;
  int opt, rc = 0;

  while ((opt = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
    switch (opt) {
      case OPT_TOPIC:
        spec.topic = optarg;
        rc = check_topic(cli, "--topic", optarg);
        break;
      case OPT_FUNCTION: spec.function = optarg; break;
      case OPT_GROUP:
        if (*optarg == '\0')
          return imp_cli_usage_error(cli, "--group is empty");
        spec.group = optarg;
        rc = check_group(cli, optarg);
        break;
      case OPT_FROM:
        spec.from = optarg;
        if (!is_one_of(optarg, froms))
          return imp_cli_usage_error(
              cli, "--from is 'earliest' or 'latest', not '%s'", optarg);
        break;
      case OPT_ORDERING:
        spec.ordering = optarg;
        if (!is_one_of(optarg, orderings))
          return imp_cli_usage_error(
              cli, "--ordering is 'partition', 'key' or 'none', not '%s'",
              optarg);
        break;
      case OPT_MAX_IN_FLIGHT:
        spec.has_max_in_flight = 1;
        rc = imp_cli_parse_u32(cli, "--max-in-flight", optarg, 1,
                               IMP_TRIGGER_MAX_IN_FLIGHT, &spec.max_in_flight);
        break;
      case OPT_MAX_RETRIES:
        spec.has_max_retries = 1;
        rc = imp_cli_parse_u32(cli, "--max-retries", optarg, 0,
                               IMP_TRIGGER_MAX_RETRIES, &spec.max_retries);
        break;
      case OPT_BACKOFF: rc = parse_backoff(cli, optarg, &spec); break;
      case OPT_DLQ:
        spec.dlq = optarg;
        rc = check_topic(cli, "--dlq", optarg);
        break;
      case OPT_REPLY:
        spec.reply_topic = optarg;
        rc = check_topic(cli, "--reply-topic", optarg);
        break;
      default:
        if ((rc = imp_cli_common_option(cli, opt, argv)) >= 0) return rc;
        rc = 0;
    }
    if (rc != 0) return rc;
  }
  if (argc - optind != 1)
    return imp_cli_usage_error(cli, "expected one trigger NAME");
  if (spec.topic == NULL)
    return imp_cli_usage_error(cli, "--topic is required");
  if (spec.function == NULL)
    return imp_cli_usage_error(cli, "--function is required");
  spec.name = argv[optind];
  if ((rc = imp_cli_check_name(cli, "NAME", spec.name)) != 0 ||
      (rc = imp_cli_check_name(cli, "--function", spec.function)) != 0)
    return rc;
  imp_cli_what(cli, "trigger create %s", spec.name);
  create.spec = &spec;
  rc = imp_cli_call(cli, IMPULSE__ENVELOPE__BODY_TRIGGER_CREATE, &create,
                    IMPULSE__ENVELOPE__BODY_TRIGGER_CREATE_OK);
  if (rc != 0) return rc;
  const Impulse__TriggerSpec *s = cli->resp->trigger_create_ok->spec
                                      ? cli->resp->trigger_create_ok->spec
                                      : &spec;
  printf("created trigger %s: %s -> %s (group %s, ordering %s)\n", spec.name,
         s->topic, s->function, imp_cli_str_or(s->group, "default"),
         imp_cli_str_or(s->ordering, "default"));
  return 0;
}

/* ---- trigger ls -------------------------------------------------------- */

static void trigger_ls_help(FILE *out) {
  fputs(
      "usage: impulse trigger ls [options]\n"
      "\n"
      "Lists the triggers with their topic, function, state and counters.\n"
      "\n",
      out);
}

static void trigger_row(imp_cli_table_t *table, const void *item) {
  const Impulse__TriggerInfo *t = *(Impulse__TriggerInfo *const *)item;
  imp_cli_table_add(
      table, "%s\t%s\t%s\t%s\t%llu\t%llu\t%llu\t%llu\t%u", t->spec->name,
      t->spec->topic, t->spec->function, imp_cli_str_or(t->state, "-"),
      (unsigned long long)t->received, (unsigned long long)t->handled,
      (unsigned long long)t->retried, (unsigned long long)t->dead_lettered,
      (unsigned)t->in_flight);
}

static const imp_cli_list_t triggers_list = {
    "no triggers",
    "NAME\tTOPIC\tFUNCTION\tSTATE\tRECEIVED\tHANDLED\tRETRIED\t"
    "DEAD-LETTERED\tIN-FLIGHT",
    "spec.name", trigger_row};

static int cmd_trigger_ls(imp_cli_t *cli, int argc, char **argv) {
  Impulse__TriggerListRequest list = IMPULSE__TRIGGER_LIST_REQUEST__INIT;
  int rc = imp_cli_options(cli, argc, argv, 0, 0, "takes no arguments");
  if (rc >= 0) return rc;
  rc = imp_cli_call(cli, IMPULSE__ENVELOPE__BODY_TRIGGER_LIST, &list,
                    IMPULSE__ENVELOPE__BODY_TRIGGER_LIST_OK);
  if (rc != 0) return rc;
  const Impulse__TriggerListResponse *l = cli->resp->trigger_list_ok;
  return imp_cli_list(cli, &triggers_list, l->triggers, l->n_triggers);
}

/* ---- trigger describe -------------------------------------------------- */

static void trigger_describe_help(FILE *out) {
  fputs(
      "usage: impulse trigger describe NAME [options]\n"
      "\n"
      "Shows a trigger's settings, state and counters, and the partitions\n"
      "assigned to this server: committed offset, high watermark, lag,\n"
      "invocations in flight and whether the partition is paused.\n"
      "\n",
      out);
}

static const char *fmt_u32_or(int has, uint32_t v, const char *dflt, char *buf,
                              size_t len) {
  if (!has) return dflt;
  snprintf(buf, len, "%u", (unsigned)v);
  return buf;
}

/* An offset the server knows (>= 0), else "-". */
static const char *fmt_offset(int has, int64_t v, char *buf, size_t len) {
  if (!has || v < 0) return "-";
  snprintf(buf, len, "%lld", (long long)v);
  return buf;
}

static void print_trigger(const Impulse__TriggerInfo *t) {
  const Impulse__TriggerSpec *s = t->spec;
  char b[4][32], created[40];
  printf("name:           %s\n", s->name);
  printf("topic:          %s\n", s->topic);
  printf("function:       %s\n", s->function);
  printf("group:          %s\n", imp_cli_str_or(s->group, "default"));
  printf("from:           %s\n", imp_cli_str_or(s->from, "default"));
  printf("ordering:       %s\n", imp_cli_str_or(s->ordering, "default"));
  printf("max in flight:  %s\n",
         fmt_u32_or(s->has_max_in_flight, s->max_in_flight, "default", b[0],
                    sizeof b[0]));
  printf("max retries:    %s\n", fmt_u32_or(s->has_max_retries, s->max_retries,
                                            "default", b[1], sizeof b[1]));
  printf("backoff:        %s ms initial, %s ms max\n",
         fmt_u32_or(s->has_backoff_initial_ms, s->backoff_initial_ms, "default",
                    b[2], sizeof b[2]),
         fmt_u32_or(s->has_backoff_max_ms, s->backoff_max_ms, "default", b[3],
                    sizeof b[3]));
  printf("dlq:            %s\n", imp_cli_str_or(s->dlq, "default"));
  printf("reply topic:    %s\n", imp_cli_str_or(s->reply_topic, "-"));
  printf("created:        %s\n",
         imp_cli_fmt_time(s->created_ms, created, sizeof created));
  printf("state:          %s\n", imp_cli_str_or(t->state, "-"));
  printf("received:       %llu\n", (unsigned long long)t->received);
  printf("handled:        %llu\n", (unsigned long long)t->handled);
  printf("retried:        %llu\n", (unsigned long long)t->retried);
  printf("dead-lettered:  %llu\n", (unsigned long long)t->dead_lettered);
  printf("in flight:      %u\n", (unsigned)t->in_flight);
  printf("batches:        %llu (%llu records)\n",
         (unsigned long long)t->batches, (unsigned long long)t->batched);
}

static void partition_row(imp_cli_table_t *table, const void *item) {
  const Impulse__PartitionInfo *p = *(Impulse__PartitionInfo *const *)item;
  char o[3][24];
  imp_cli_table_add(
      table, "%d\t%s\t%s\t%s\t%u\t%s", (int)p->partition,
      fmt_offset(p->has_committed, p->committed, o[0], sizeof o[0]),
      fmt_offset(p->has_high_watermark, p->high_watermark, o[1], sizeof o[1]),
      fmt_offset(p->has_lag, p->lag, o[2], sizeof o[2]), (unsigned)p->in_flight,
      p->paused ? "yes" : "no");
}

static const imp_cli_list_t partitions_list = {
    "no partitions assigned to this server",
    "PARTITION\tCOMMITTED\tHIGH-WATERMARK\tLAG\tIN-FLIGHT\tPAUSED", "partition",
    partition_row};

static int cmd_trigger_describe(imp_cli_t *cli, int argc, char **argv) {
  Impulse__TriggerDescribeRequest describe =
      IMPULSE__TRIGGER_DESCRIBE_REQUEST__INIT;
  int rc = imp_cli_options_name(cli, argc, argv, "trigger", &describe.name);
  if (rc >= 0) return rc;
  rc = imp_cli_call(cli, IMPULSE__ENVELOPE__BODY_TRIGGER_DESCRIBE, &describe,
                    IMPULSE__ENVELOPE__BODY_TRIGGER_DESCRIBE_OK);
  if (rc != 0) return rc;
  Impulse__TriggerInfo *t = cli->resp->trigger_describe_ok->trigger;
  print_trigger(t);
  printf("\n");
  return imp_cli_list(cli, &partitions_list, t->partitions, t->n_partitions);
}

/* ---- trigger rm -------------------------------------------------------- */

static void trigger_rm_help(FILE *out) {
  fputs(
      "usage: impulse trigger rm NAME [options]\n"
      "\n"
      "Deletes a trigger: its consumers stop after the invocations in flight\n"
      "finish and their offsets are committed.\n"
      "\n",
      out);
}

static int cmd_trigger_rm(imp_cli_t *cli, int argc, char **argv) {
  Impulse__TriggerDeleteRequest del = IMPULSE__TRIGGER_DELETE_REQUEST__INIT;
  int rc = imp_cli_options_name(cli, argc, argv, "trigger", &del.name);
  if (rc >= 0) return rc;
  rc = imp_cli_call(cli, IMPULSE__ENVELOPE__BODY_TRIGGER_DELETE, &del,
                    IMPULSE__ENVELOPE__BODY_TRIGGER_DELETE_OK);
  if (rc != 0) return rc;
  printf("deleted trigger %s\n", del.name);
  return 0;
}

/* ---- the table entry: trigger and its subcommands ------------------------ */

static void trigger_help(FILE *out) {
  fputs(
      "usage: impulse trigger SUBCOMMAND [ARGS...] [options]\n"
      "\n"
      "  trigger create NAME --topic TOPIC --function FUNCTION [options]\n"
      "                          bind a topic to a function\n"
      "  trigger ls              list triggers\n"
      "  trigger describe NAME   show a trigger, its partitions and counters\n"
      "  trigger rm NAME         delete a trigger\n"
      "\n"
      "Run `impulse trigger SUBCOMMAND --help` for the options of one.\n"
      "\n",
      out);
}

static const imp_cli_cmd_t trigger_cmds[] = {
    {"trigger create", cmd_trigger_create, trigger_create_help,
     "trigger create NAME", "bind a topic to a function", NULL, 0},
    {"trigger ls", cmd_trigger_ls, trigger_ls_help, "trigger ls",
     "list triggers", NULL, 0},
    {"trigger describe", cmd_trigger_describe, trigger_describe_help,
     "trigger describe NAME", "show a trigger, its partitions and counters",
     NULL, 0},
    {"trigger rm", cmd_trigger_rm, trigger_rm_help, "trigger rm NAME",
     "delete a trigger", NULL, 0},
};

/* clang-format off */
const imp_cli_cmd_t imp_cli_cmd_trigger =
    {"trigger", NULL, trigger_help, "trigger SUBCOMMAND",
     "bind topics to functions: create, ls, describe, rm", trigger_cmds,
     IMP_ARRAY_SIZE(trigger_cmds)};
/* clang-format on */
