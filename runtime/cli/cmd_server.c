/*
 * The server commands: info, backup and record ls.
 */
#include "cli/cmd_server.h"

#include <string.h>

/* ---- info -------------------------------------------------------------- */

static void info_help(FILE *out) {
  fputs(
      "usage: impulse info [options]\n"
      "\n"
      "Shows the server's version, readiness, uptime, counts and limits,\n"
      "one `key: value` a line; `kafka:` is the bootstrap address of its\n"
      "Kafka cluster.\n"
      "\n",
      out);
}

static int cmd_info(imp_cli_t *cli, int argc, char **argv) {
  Impulse__ServerInfoRequest info = IMPULSE__SERVER_INFO_REQUEST__INIT;
  char up[64];
  int rc = imp_cli_options(cli, argc, argv, 0, 0, "takes no arguments");
  if (rc >= 0) return rc;
  rc = imp_cli_call(cli, IMPULSE__ENVELOPE__BODY_SERVER_INFO, &info,
                    IMPULSE__ENVELOPE__BODY_SERVER_INFO_OK);
  if (rc != 0) return rc;
  const Impulse__ServerInfoResponse *s = cli->resp->server_info_ok;
  printf("address:          %s\n", imp_client_addr(cli->client));
  printf("server:           %s\n",
         imp_cli_str_or(imp_client_server(cli->client), "-"));
  printf("version:          %s\n", imp_cli_str_or(s->version, "-"));
  printf("ready:            %s\n", s->ready ? "yes" : "no");
  printf("uptime:           %s\n",
         imp_cli_fmt_duration(s->uptime_ms, up, sizeof up));
  printf("functions:        %u\n", (unsigned)s->functions);
  printf("instances:        %u\n", (unsigned)s->instances);
  printf("warm pool:        %u\n", (unsigned)s->warm_pool);
  printf("max frame:        %u bytes\n", (unsigned)s->max_frame);
  printf("kafka:            %s\n", imp_cli_str_or(s->kafka_bootstrap, "-"));
  printf("abi version:      %u\n", (unsigned)s->abi_version);
  printf("sandbox:          %s\n", imp_cli_str_or(s->sandbox, "-"));
  if (s->has_log_ring_bytes)
    printf("function logs:    %llu bytes kept per function, %llu bytes/s\n",
           (unsigned long long)s->log_ring_bytes,
           (unsigned long long)s->log_rate_bytes);
  printf("invoke token:     %s\n",
         s->invoke_needs_token ? "required" : "not required");
  printf("admin:            %s\n",
         imp_client_is_admin(cli->client) ? "yes" : "no");
  return 0;
}

/* ---- backup ------------------------------------------------------------ */

static void backup_help(FILE *out) {
  fputs(
      "usage: impulse backup DIR [options]\n"
      "\n"
      "Asks the server to write a consistent copy of its state (a RocksDB\n"
      "checkpoint of functions, versions, artifacts, triggers, ...) and its\n"
      "admin token to DIR, an absolute path on the server's machine that\n"
      "must not exist yet; the server keeps serving meanwhile. DIR is then\n"
      "a state directory: `impulse serve --state-dir DIR` restores it.\n"
      "Needs the admin token. Prints \"backup written to DIR (N bytes, T "
      "ms)\".\n"
      "\n",
      out);
}

static int cmd_backup(imp_cli_t *cli, int argc, char **argv) {
  Impulse__BackupRequest backup = IMPULSE__BACKUP_REQUEST__INIT;
  int rc = imp_cli_options(cli, argc, argv, 1, 1, "expected one directory DIR");
  if (rc >= 0) return rc;
  const char *dir = argv[optind];
  /* The server writes it, on its own machine: a relative path would be
   * relative to the server's working directory, not ours. */
  if (dir[0] != '/')
    return imp_cli_usage_error(
        cli, "DIR must be an absolute path (on the server's machine)");
  backup.dir = (char *)dir;
  if ((rc = imp_cli_call(cli, IMPULSE__ENVELOPE__BODY_BACKUP, &backup,
                         IMPULSE__ENVELOPE__BODY_BACKUP_OK)) != 0)
    return rc;
  const Impulse__BackupResponse *b = cli->resp->backup_ok;
  printf("backup written to %s (%llu bytes, %llu ms)\n",
         imp_cli_str_or(b->dir, dir), (unsigned long long)b->bytes,
         (unsigned long long)b->took_ms);
  return 0;
}

/* ---- record ls --------------------------------------------------------- */

#define PREVIEW_MAX 64 /* payload bytes shown */

static void record_ls_help(FILE *out) {
  fprintf(
      out,
      "usage: impulse record ls NAME [options]\n"
      "\n"
      "Lists the calls of NAME the server recorded (a sample of its live\n"
      "calls with their answers, at most 32, kept for replay during an\n"
      "upgrade), oldest first: the version that answered, when, the request\n"
      "payload's size, the answer (\"ok\", an error code such as\n"
      "FUNCTION_ERROR, or \"status N\"), the time the instance took, and the\n"
      "payload's first %d bytes (bytes that are not printable as '.').\n"
      "Needs the admin token when the server runs with --invoke-auth token.\n"
      "\n",
      PREVIEW_MAX);
}

/* The first bytes of a recorded payload, "..." when cut, "-" when empty. */
static const char *fmt_preview(const Impulse__RecordedCallInfo *c, char *buf,
                               size_t len) {
  size_t n = c->payload_preview.len < PREVIEW_MAX ? c->payload_preview.len
                                                  : PREVIEW_MAX;
  if (n + 4 > len) n = len - 4;
  for (size_t k = 0; k < n; k++) {
    unsigned char ch = c->payload_preview.data[k];
    buf[k] = ch >= 0x21 && ch < 0x7f ? (char)ch : '.';
  }
  buf[n] = '\0';
  if (c->request_bytes > n) strcat(buf, "...");
  if (n == 0 && c->request_bytes == 0) strcpy(buf, "-");
  return buf;
}

static void recorded_row(imp_cli_table_t *table, const void *item) {
  const Impulse__RecordedCallInfo *c =
      *(Impulse__RecordedCallInfo *const *)item;
  char when[40], dur[32], payload[PREVIEW_MAX + 4];
  if (c->duration_us < 1000)
    snprintf(dur, sizeof dur, "%uus", (unsigned)c->duration_us);
  else
    snprintf(dur, sizeof dur, "%.1fms", c->duration_us / 1000.0);
  imp_cli_table_add(table, "%u\t%s\t%llu\t%s\t%s\t%s", (unsigned)c->version,
                    imp_cli_fmt_time(c->recorded_ms, when, sizeof when),
                    (unsigned long long)c->request_bytes,
                    imp_cli_str_or(c->answer_status, "-"), dur,
                    fmt_preview(c, payload, sizeof payload));
}

/* In the server's order. */
static const imp_cli_list_t recorded_list = {
    "no recorded calls", "VERSION\tWHEN\tBYTES\tANSWER\tDURATION\tPAYLOAD",
    NULL, recorded_row};

static int cmd_record_ls(imp_cli_t *cli, int argc, char **argv) {
  Impulse__RecordListRequest rl = IMPULSE__RECORD_LIST_REQUEST__INIT;
  int rc = imp_cli_options_name(cli, argc, argv, "function", &rl.name);
  if (rc >= 0) return rc;
  rc = imp_cli_call(cli, IMPULSE__ENVELOPE__BODY_RECORD_LIST, &rl,
                    IMPULSE__ENVELOPE__BODY_RECORD_LIST_OK);
  if (rc != 0) return rc;
  const Impulse__RecordListResponse *l = cli->resp->record_list_ok;
  return imp_cli_list(cli, &recorded_list, l->calls, l->n_calls);
}

/* ---- the table entries --------------------------------------------------- */

/* clang-format off */
const imp_cli_cmd_t imp_cli_cmd_info =
    {"info", cmd_info, info_help, "info", "show server information", NULL, 0};
const imp_cli_cmd_t imp_cli_cmd_backup =
    {"backup", cmd_backup, backup_help, "backup DIR",
     "write a copy of the server's state to a new directory", NULL, 0};
/* clang-format on */

static void record_help(FILE *out) {
  fputs(
      "usage: impulse record SUBCOMMAND [ARGS...] [options]\n"
      "\n"
      "  record ls NAME          list the calls of NAME the server recorded\n"
      "\n"
      "Run `impulse record ls --help` for details.\n"
      "\n",
      out);
}

static const imp_cli_cmd_t record_cmds[] = {
    {"record ls", cmd_record_ls, record_ls_help, "record ls NAME",
     "list a function's recorded calls", NULL, 0},
};

/* clang-format off */
const imp_cli_cmd_t imp_cli_cmd_record =
    {"record", NULL, record_help, "record ls NAME",
     "list a function's recorded calls (kept for upgrades)", record_cmds,
     IMP_ARRAY_SIZE(record_cmds)};
/* clang-format on */
