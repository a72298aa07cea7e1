/*
 * `impulse logs NAME [-f] [--since DURATION] [--instance ID] [--tail N]`:
 * a function's log (its instances' stdout, stderr and impulse_log lines),
 * one line per entry with every byte outside printable ASCII escaped, so
 * that what a function wrote can neither span lines nor drive the
 * terminal. --follow asks again every FOLLOW_MS for entries after the
 * last one printed.
 */
#include "cli/cmd_logs.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#define FOLLOW_MS 500

static void logs_help(FILE *out) {
  fprintf(out,
          "usage: impulse logs NAME [-f] [--since DURATION] [--instance ID]\n"
          "                    [--tail N] [options]\n"
          "\n"
          "Prints what the instances of function NAME wrote to stdout and\n"
          "stderr and through impulse_log(), oldest first, from the server's\n"
          "in-memory log of the function: one line per entry,\n"
          "\n"
          "  TIME  instance ID  vVERSION  STREAM[/LEVEL]  MESSAGE\n"
          "\n"
          "with every byte of MESSAGE outside printable ASCII escaped (\\n,\n"
          "\\r, \\t, \\xHH, and \\\\). A line cut at 4096 bytes ends with \" "
          "[cut]\".\n"
          "Needs the admin token.\n"
          "\n"
          "  -f, --follow         keep printing new entries (Ctrl-C to stop)\n"
          "  --since DURATION     only entries this recent: 30s, 5m, 2h, 1d\n"
          "  --instance ID        only entries of this instance\n"
          "  --tail N             only the last N entries (then new ones with\n"
          "                       --follow)\n");
}

static const char *level_name(int level) {
  static const char *names[] = {"error", "warn", "info", "debug"};
  return level >= 0 && level <= 3 ? names[level] : "?";
}

/* Prints the entries of cli->resp; returns 0 or the exit status. */
static int print_entries(const imp_cli_t *cli, const Impulse__LogsResponse *r) {
  imp_buf_t b = {0};
  for (size_t i = 0; i < r->n_entries; i++) {
    const Impulse__LogEntry *e = r->entries[i];
    char when[96], stream[32];
    time_t sec = (time_t)(e->time_ms / 1000);
    struct tm tm;
    gmtime_r(&sec, &tm);
    snprintf(when, sizeof when, "%04d-%02d-%02dT%02d:%02d:%02d.%03uZ",
             tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
             tm.tm_min, tm.tm_sec, (unsigned)(e->time_ms % 1000));
    if (e->has_level)
      snprintf(stream, sizeof stream, "%s/%s", imp_cli_str_or(e->stream, "?"),
               level_name(e->level));
    else
      snprintf(stream, sizeof stream, "%s", imp_cli_str_or(e->stream, "?"));
    b.len = 0;
    if (imp_escape_bytes(&b, e->message.data, e->message.len) != 0) {
      imp_buf_free(&b);
      return imp_cli_nomem(cli);
    }
    printf("%s  instance %llu  v%u  %s  %s%s\n", when,
           (unsigned long long)e->instance, e->version, stream,
           b.data ? b.data : "", e->cut ? " [cut]" : "");
  }
  imp_buf_free(&b);
  fflush(stdout);
  return 0;
}

static int cmd_logs(imp_cli_t *cli, int argc, char **argv) {
  enum { OPT_SINCE = IMP_CLI_OPT_FIRST, OPT_INSTANCE, OPT_TAIL };
  static const struct option longopts[] = {
      {"follow", no_argument, NULL, 'f'},
      {"since", required_argument, NULL, OPT_SINCE},
      {"instance", required_argument, NULL, OPT_INSTANCE},
      {"tail", required_argument, NULL, OPT_TAIL},
      IMP_CLI_COMMON_OPTIONS,
      {NULL, 0, NULL, 0}};
  Impulse__LogsRequest req = IMPULSE__LOGS_REQUEST__INIT;
  int follow = 0, opt, rc;
  while ((opt = getopt_long(argc, argv, ":hf", longopts, NULL)) != -1) {
    switch (opt) {
      case 'f': follow = 1; break;
      case OPT_SINCE:
        if (imp_parse_duration_ms(optarg, &req.since_ms) != 0)
          return imp_cli_usage_error(
              cli,
              "--since takes a duration such as 30s, 5m, 2h or 1d, not '%s'",
              optarg);
        req.has_since_ms = 1;
        break;
      case OPT_INSTANCE: {
        unsigned long long v;
        if (imp_parse_ull(optarg, 1, UINT64_MAX, &v) != 0)
          return imp_cli_usage_error(
              cli, "--instance takes an instance id (a number), not '%s'",
              optarg);
        req.has_instance = 1;
        req.instance = v;
        break;
      }
      case OPT_TAIL:
        if ((rc = imp_cli_parse_u32(cli, "--tail", optarg, 1, 1000000,
                                    &req.tail)) != 0)
          return rc;
        req.has_tail = 1;
        break;
      default:
        if ((rc = imp_cli_common_option(cli, opt, argv)) >= 0) return rc;
    }
  }
  if (argc - optind != 1)
    return imp_cli_usage_error(cli, "expected one function NAME");
  req.function = argv[optind];
  if ((rc = imp_cli_check_name(cli, "NAME", req.function)) != 0) return rc;
  imp_cli_what(cli, "logs %s", req.function);
  for (;;) {
    if ((rc = imp_cli_call(cli, IMPULSE__ENVELOPE__BODY_LOGS, &req,
                           IMPULSE__ENVELOPE__BODY_LOGS_OK)) != 0)
      return rc;
    const Impulse__LogsResponse *r = cli->resp->logs_ok;
    if ((rc = print_entries(cli, r)) != 0) return rc;
    /* From here on: what comes after the last entry seen. */
    req.has_after = 1;
    req.after = r->next;
    req.has_tail = 0;
    req.has_since_ms = 0;
    if (r->more) continue;
    if (!follow) return 0;
    struct timespec ts = {0, FOLLOW_MS * 1000000L};
    nanosleep(&ts, NULL);
  }
}

const imp_cli_cmd_t imp_cli_cmd_logs = {
    "logs",
    cmd_logs,
    logs_help,
    "logs NAME",
    "print what a function's instances wrote (stdout, stderr, impulse_log)",
    NULL,
    0};
