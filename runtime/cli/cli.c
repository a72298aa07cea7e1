/*
 * The impulse client commands: the table of commands, the top-level usage
 * and the dispatch to a command (or a subcommand of trigger and record).
 * The commands themselves live one family per file, which exports their
 * table entries (cmd_function.h, cmd_server.h, cmd_trigger.h,
 * cmd_publish.h, cmd_token.h, top.h); they are a thin layer over the client
 * library (include/impulse/client.h plus runtime/client/client_internal.h for
 * the control messages the public API does not wrap): argument parsing and
 * output formatting, except `publish`, which produces to Kafka itself with
 * librdkafka (publish_kafka.c).
 *
 * Exit status: 0 success, 1 the server refused the call (or a local file
 * could not be read), 2 usage error, 3 the server could not be reached or
 * the connection failed.
 */

#include "cli/cli.h"

#include <stdarg.h>
#include <string.h>

#include "cli/cli_common.h"
#include "cli/cmd_function.h"
#include "cli/cmd_logs.h"
#include "cli/cmd_publish.h"
#include "cli/cmd_secret.h"
#include "cli/cmd_server.h"
#include "cli/cmd_token.h"
#include "cli/cmd_trigger.h"
#include "cli/top.h"

#ifndef IMPULSE_VERSION
#define IMPULSE_VERSION "unknown"
#endif

/* ---- the table ----------------------------------------------------------- */

/* In the order of the top-level usage. */
static const imp_cli_cmd_t *const cmds[] = {
    &imp_cli_cmd_deploy,   &imp_cli_cmd_invoke,  &imp_cli_cmd_ls,
    &imp_cli_cmd_describe, &imp_cli_cmd_logs,    &imp_cli_cmd_rm,
    &imp_cli_cmd_upgrade,  &imp_cli_cmd_traffic, &imp_cli_cmd_scale,
    &imp_cli_cmd_info,     &imp_cli_cmd_backup,  &imp_cli_cmd_record,
    &imp_cli_cmd_top,      &imp_cli_cmd_publish, &imp_cli_cmd_trigger,
    &imp_cli_cmd_secret,   &imp_cli_cmd_token,
};

/* ---- usage and dispatch ------------------------------------------------ */

static void usage(FILE *out) {
  fprintf(out,
          "usage: impulse [--addr HOST:PORT] [--token TOKEN] COMMAND "
          "[ARGS...]\n"
          "\n"
          "Server:\n"
          "  %-18s %s\n"
          "  %-18s %s\n"
          "  %-18s %s\n"
          "  %-18s %s\n"
          "\n"
          "Client commands:\n",
          "serve", "start the server (see `impulse serve --help`)", "kafka",
          "run an embedded Kafka cluster (see `impulse kafka --help`)",
          "worker", "function worker process (started by the server)", "sim",
          "replay a trace through the autoscaler (see `impulse sim --help`)");
  for (size_t i = 0; i < IMP_ARRAY_SIZE(cmds); i++) {
    const char *syn = cmds[i]->synopsis;
    /* A synopsis wider than its column has the summary on the next line. */
    if (strlen(syn) > 18)
      fprintf(out, "  %s\n  %-18s %s\n", syn, "", cmds[i]->summary);
    else
      fprintf(out, "  %-18s %s\n", syn, cmds[i]->summary);
  }
  fprintf(
      out,
      "  %-18s %s\n"
      "\n"
      "Every client command takes --addr HOST:PORT (default $IMPULSE_ADDR,\n"
      "else " IMP_CLIENT_DEFAULT_ADDR
      ") and --token TOKEN (default $IMPULSE_TOKEN),\n"
      "before or after its name (after wins when both are given).\n"
      "Run `impulse COMMAND --help` for the options of a command.\n"
      "\n"
      "Exit status: 0 ok, 1 the call failed, 2 usage error, 3 the server\n"
      "could not be reached.\n",
      "help [COMMAND]", "show this help, or a command's");
}

static const imp_cli_cmd_t *find_cmd(const char *name) {
  for (size_t i = 0; i < IMP_ARRAY_SIZE(cmds); i++)
    if (strcmp(cmds[i]->name, name) == 0) return cmds[i];
  return NULL;
}

/* The commands main() runs before the client commands. */
static int is_server_cmd(const char *name) {
  return strcmp(name, "serve") == 0 || strcmp(name, "worker") == 0 ||
         strcmp(name, "kafka") == 0 || strcmp(name, "sim") == 0;
}

static int is_help(const char *arg) {
  return strcmp(arg, "help") == 0 || strcmp(arg, "--help") == 0 ||
         strcmp(arg, "-h") == 0;
}

/* Runs cli->cmd, or the subcommand argv[1] of it. */
static int run(imp_cli_t *cli, int argc, char **argv) {
  const imp_cli_cmd_t *cmd = cli->cmd;
  if (cmd->subs != NULL) {
    if (argc < 2) return imp_cli_usage_error(cli, "expected a subcommand");
    if (is_help(argv[1])) {
      imp_cli_usage(cmd, stdout);
      return 0;
    }
    size_t skip = strlen(cmd->name) + 1; /* "trigger " */
    for (size_t i = 0; i < cmd->nsubs; i++)
      if (strcmp(cmd->subs[i].name + skip, argv[1]) == 0) {
        cli->cmd = &cmd->subs[i];
        return run(cli, argc - 1, argv + 1);
      }
    return imp_cli_usage_error(cli, "unknown subcommand '%s'", argv[1]);
  }
  imp_cli_what(cli, "%s", cmd->name);
  /* Commands parse argv[1..] with argv[0] as their "program name"; optind
   * 0 makes glibc reinitialise getopt. Errors are reported by us. */
  optind = 0;
  opterr = 0;
  return cmd->run(cli, argc, argv);
}

/* Prints `impulse: message`, then the usage; returns the usage status. */
static int main_usage_error(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));
static int main_usage_error(const char *fmt, ...) {
  va_list ap;
  fputs("impulse: ", stderr);
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputs("\n\n", stderr);
  usage(stderr);
  return IMP_CLI_EXIT_USAGE;
}

/* `impulse help [COMMAND]`. */
static int help(const char *name) {
  if (name == NULL) {
    usage(stdout);
    return 0;
  }
  const imp_cli_cmd_t *cmd = find_cmd(name);
  if (cmd != NULL) {
    imp_cli_usage(cmd, stdout);
    return 0;
  }
  if (is_server_cmd(name)) {
    printf("run `impulse %s --help`\n", name);
    return 0;
  }
  return main_usage_error("unknown command '%s'", name);
}

int imp_cli_main(int argc, char **argv) {
  enum { OPT_VERSION = IMP_CLI_OPT_FIRST };
  static const struct option longopts[] = {
      {"version", no_argument, NULL, OPT_VERSION},
      IMP_CLI_COMMON_OPTIONS,
      {NULL, 0, NULL, 0}};
  imp_cli_t cli;
  int opt, want_help = 0;
  memset(&cli, 0, sizeof cli);
  /* The common options may come before the command too; a command's own
   * (parsed later) win. "+": stop at the command's name. */
  optind = 0;
  opterr = 0;
  while ((opt = getopt_long(argc, argv, "+:h", longopts, NULL)) != -1) {
    switch (opt) {
      case IMP_CLI_OPT_ADDR: cli.addr = optarg; break;
      case IMP_CLI_OPT_TOKEN: cli.token = optarg; break;
      case 'h': want_help = 1; break;
      case OPT_VERSION: printf("impulse %s\n", IMPULSE_VERSION); return 0;
      case ':':
        return main_usage_error("option '%s' needs a value", argv[optind - 1]);
      default:
        if (optopt != 0) {
          char flag[3] = {'-', (char)optopt, '\0'};
          return main_usage_error("unknown option '%s'", flag);
        }
        return main_usage_error("unknown option '%s'", argv[optind - 1]);
    }
  }
  const char *name = optind < argc ? argv[optind] : NULL;
  if (want_help) return help(name);
  if (name == NULL) {
    usage(stderr);
    return IMP_CLI_EXIT_USAGE;
  }
  if (strcmp(name, "help") == 0)
    return help(optind + 1 < argc ? argv[optind + 1] : NULL);
  if (strcmp(name, "version") == 0) {
    printf("impulse %s\n", IMPULSE_VERSION);
    return 0;
  }
  /* main() runs these when they come first: here options preceded them. */
  if (is_server_cmd(name))
    return main_usage_error(
        "the options before '%s' are for client commands (see `impulse %s "
        "--help`)",
        name, name);
  cli.cmd = find_cmd(name);
  if (cli.cmd == NULL) return main_usage_error("unknown command '%s'", name);
  int rc = run(&cli, argc - optind, argv + optind);
  imp_cli_free(&cli);
  return rc;
}
