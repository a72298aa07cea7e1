/*
 * The impulse client commands: the table of commands, the top-level usage
 * and the dispatch to a command (or a subcommand of trigger and record).
 * The commands themselves live one family per file (cli_internal.h) and
 * are a thin layer over the client library (include/impulse/client.h plus
 * runtime/client/client_internal.h for the control messages the public API
 * does not wrap): argument parsing and output formatting, except `publish`,
 * which produces to Kafka itself with librdkafka (publish_kafka.c).
 *
 * Exit status: 0 success, 1 the server refused the call (or a local file
 * could not be read), 2 usage error, 3 the server could not be reached or
 * the connection failed.
 */
#include "cli/cli.h"

#include <string.h>

#include "cli/cli_internal.h"

#ifndef IMPULSE_VERSION
#define IMPULSE_VERSION "unknown"
#endif

/* ---- the table --------------------------------------------------------- */

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

static const imp_cli_cmd_t trigger_cmds[] = {
    {"trigger create", imp_cli_trigger_create, imp_cli_trigger_create_help,
     "trigger create NAME", "bind a topic to a function", NULL, 0},
    {"trigger ls", imp_cli_trigger_ls, imp_cli_trigger_ls_help, "trigger ls",
     "list triggers", NULL, 0},
    {"trigger describe", imp_cli_trigger_describe,
     imp_cli_trigger_describe_help, "trigger describe NAME",
     "show a trigger, its partitions and counters", NULL, 0},
    {"trigger rm", imp_cli_trigger_rm, imp_cli_trigger_rm_help,
     "trigger rm NAME", "delete a trigger", NULL, 0},
};

static const imp_cli_cmd_t record_cmds[] = {
    {"record ls", imp_cli_record_ls, imp_cli_record_ls_help, "record ls NAME",
     "list a function's recorded calls", NULL, 0},
};

static const imp_cli_cmd_t cmds[] = {
    {"deploy", imp_cli_deploy, imp_cli_deploy_help, "deploy NAME FILE",
     "upload a function as a new version", NULL, 0},
    {"invoke", imp_cli_invoke, imp_cli_invoke_help, "invoke NAME",
     "call a function, print its response", NULL, 0},
    {"ls", imp_cli_ls, imp_cli_ls_help, "ls", "list functions", NULL, 0},
    {"describe", imp_cli_describe, imp_cli_describe_help, "describe NAME",
     "show a function, its versions and instances", NULL, 0},
    {"rm", imp_cli_rm, imp_cli_rm_help, "rm NAME", "delete a function", NULL,
     0},
    {"upgrade", imp_cli_upgrade, imp_cli_upgrade_help,
     "upgrade status|abort NAME", "follow or abort a rolling upgrade", NULL, 0},
    {"traffic", imp_cli_traffic, imp_cli_traffic_help,
     "traffic NAME [vN=W ...]", "split calls between versions", NULL, 0},
    {"scale", imp_cli_scale, imp_cli_scale_help, "scale NAME",
     "set min/max instances and autoscaling", NULL, 0},
    {"info", imp_cli_info, imp_cli_info_help, "info", "show server information",
     NULL, 0},
    {"backup", imp_cli_backup, imp_cli_backup_help, "backup DIR",
     "write a copy of the server's state to a new directory", NULL, 0},
    {"record", NULL, record_help, "record ls NAME",
     "list a function's recorded calls (kept for upgrades)", record_cmds,
     IMP_ARRAY_SIZE(record_cmds)},
    {"top", imp_cli_top, imp_cli_top_help, "top",
     "watch functions and load, refreshed live", NULL, 0},
    {"publish", imp_cli_publish, imp_cli_publish_help, "publish TOPIC",
     "publish events to a topic", NULL, 0},
    {"trigger", NULL, trigger_help, "trigger SUBCOMMAND",
     "bind topics to functions: create, ls, describe, rm", trigger_cmds,
     IMP_ARRAY_SIZE(trigger_cmds)},
};

/* ---- usage and dispatch ------------------------------------------------ */

static void usage(FILE *out) {
  fprintf(out,
          "usage: impulse COMMAND [ARGS...]\n"
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
  for (size_t i = 0; i < IMP_ARRAY_SIZE(cmds); i++)
    fprintf(out, "  %-18s %s\n", cmds[i].synopsis, cmds[i].summary);
  fprintf(
      out,
      "  %-18s %s\n"
      "\n"
      "Every client command takes --addr HOST:PORT (default $IMPULSE_ADDR,\n"
      "else " IMP_CLIENT_DEFAULT_ADDR
      ") and --token TOKEN (default "
      "$IMPULSE_TOKEN).\n"
      "Run `impulse COMMAND --help` for the options of a command.\n"
      "\n"
      "Exit status: 0 ok, 1 the call failed, 2 usage error, 3 the server\n"
      "could not be reached.\n",
      "help [COMMAND]", "show this help, or a command's");
}

static const imp_cli_cmd_t *find_cmd(const char *name) {
  for (size_t i = 0; i < IMP_ARRAY_SIZE(cmds); i++)
    if (strcmp(cmds[i].name, name) == 0) return &cmds[i];
  return NULL;
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

int imp_cli_main(int argc, char **argv) {
  if (argc < 2) {
    usage(stderr);
    return IMP_CLI_EXIT_USAGE;
  }
  const char *name = argv[1];
  if (is_help(name)) {
    if (argc < 3) {
      usage(stdout);
      return 0;
    }
    const imp_cli_cmd_t *cmd = find_cmd(argv[2]);
    if (cmd != NULL) {
      imp_cli_usage(cmd, stdout);
      return 0;
    }
    if (strcmp(argv[2], "serve") == 0 || strcmp(argv[2], "worker") == 0 ||
        strcmp(argv[2], "kafka") == 0 || strcmp(argv[2], "sim") == 0) {
      printf("run `impulse %s --help`\n", argv[2]);
      return 0;
    }
    fprintf(stderr, "impulse: unknown command '%s'\n\n", argv[2]);
    usage(stderr);
    return IMP_CLI_EXIT_USAGE;
  }
  if (strcmp(name, "--version") == 0 || strcmp(name, "version") == 0) {
    printf("impulse %s\n", IMPULSE_VERSION);
    return 0;
  }
  imp_cli_t cli;
  memset(&cli, 0, sizeof cli);
  cli.cmd = find_cmd(name);
  if (cli.cmd == NULL) {
    fprintf(stderr, "impulse: unknown command '%s'\n\n", name);
    usage(stderr);
    return IMP_CLI_EXIT_USAGE;
  }
  int rc = run(&cli, argc - 1, argv + 1);
  imp_cli_free(&cli);
  return rc;
}
