/*
 * The secret commands: set, ls, rm (docs/security.md, "Secrets"). A value
 * is read from stdin or a file, never from the command line: the arguments
 * of a process can be read by every user in /proc/PID/cmdline.
 */
#include "cli/cmd_secret.h"

#include <stdlib.h>
#include <string.h>

/* ---- secret set -------------------------------------------------------- */

static void secret_set_help(FILE *out) {
  fprintf(out,
          "usage: impulse secret set NAME [--from-file FILE] "
          "[--trim-newline] [options]\n"
          "\n"
          "Sets secret NAME (1 to %d letters, digits or '_', not starting\n"
          "with a digit) to the bytes read from stdin, or from FILE, exactly:\n"
          "a trailing newline (`echo v | impulse secret set N`) is part of\n"
          "the value unless --trim-newline drops one. A value is never taken\n"
          "on the command line. At most %u KiB, no NUL byte. Functions that\n"
          "name the secret (`deploy --secret NAME`) get it as a variable in\n"
          "the instances they start from now on.\n"
          "\n"
          "  --from-file FILE     read the value from FILE\n"
          "  --trim-newline       drop one trailing \\n (or \\r\\n)\n",
          IMP_ENV_KEY_MAX, IMP_SECRET_MAX_BYTES >> 10);
}

static int cmd_secret_set(imp_cli_t *cli, int argc, char **argv) {
  enum { OPT_FROM_FILE = IMP_CLI_OPT_FIRST, OPT_TRIM };
  static const struct option longopts[] = {
      {"from-file", required_argument, NULL, OPT_FROM_FILE},
      {"trim-newline", no_argument, NULL, OPT_TRIM},
      IMP_CLI_COMMON_OPTIONS,
      {NULL, 0, NULL, 0}};
  const char *file = NULL;
  int opt, trim = 0, rc;
  while ((opt = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
    switch (opt) {
      case OPT_FROM_FILE: file = optarg; break;
      case OPT_TRIM: trim = 1; break;
      default:
        if ((rc = imp_cli_common_option(cli, opt, argv)) >= 0) return rc;
    }
  }
  if (argc - optind > 1)
    return imp_cli_usage_error(
        cli,
        "a value is never taken on the command line (every user can read a "
        "process's arguments): pipe it on stdin or use --from-file");
  if (argc - optind != 1) return imp_cli_usage_error(cli, "expected NAME");
  const char *name = argv[optind];
  if (!imp_secret_name_valid(name))
    return imp_cli_usage_error(cli,
                               "NAME must be 1-%d letters, digits or '_', not "
                               "starting with a digit",
                               IMP_ENV_KEY_MAX);
  imp_cli_what(cli, "secret set %s", name);
  if ((rc = imp_cli_read_input(cli, file)) != 0) return rc;
  size_t len = cli->input_len;
  if (trim && len > 0 && cli->input[len - 1] == '\n') {
    len--;
    if (len > 0 && cli->input[len - 1] == '\r') len--;
  }
  if (len > IMP_SECRET_MAX_BYTES) {
    fprintf(stderr, "impulse secret set: the value is %zu bytes, above %u\n",
            len, IMP_SECRET_MAX_BYTES);
    return IMP_CLI_EXIT_FAIL;
  }
  if ((rc = imp_cli_connect(cli)) != 0) return rc;
  int created = 0;
  int status = impulse_secret_set(cli->client, name, cli->input, len, &created);
  if (status != 0) return imp_cli_report(cli, status);
  printf("%s secret %s (%zu bytes)\n", created ? "set" : "replaced", name, len);
  return 0;
}

/* ---- secret ls --------------------------------------------------------- */

static void secret_ls_help(FILE *out) {
  fputs(
      "usage: impulse secret ls [options]\n"
      "\n"
      "Lists the secrets: name, size, when set first and last, and the\n"
      "functions that name them. Never their values.\n"
      "\n",
      out);
}

static void secret_row(imp_cli_table_t *table, const void *item) {
  const Impulse__SecretInfo *s = *(const Impulse__SecretInfo *const *)item;
  char created[32], updated[32], users[256];
  size_t used = 0;
  users[0] = '\0';
  for (size_t i = 0; i < s->n_used_by && used < sizeof users; i++) {
    int k = snprintf(users + used, sizeof users - used, "%s%s", i ? "," : "",
                     s->used_by[i]);
    if (k > 0) used += (size_t)k;
  }
  imp_cli_table_add(table, "%s\t%llu\t%s\t%s\t%s", s->name,
                    (unsigned long long)s->size,
                    imp_cli_fmt_time(s->created_ms, created, sizeof created),
                    imp_cli_fmt_time(s->updated_ms, updated, sizeof updated),
                    s->n_used_by ? users : "-");
}

static const imp_cli_list_t secrets_list = {
    "no secrets", "NAME\tBYTES\tCREATED\tUPDATED\tUSED BY", "name", secret_row};

static int cmd_secret_ls(imp_cli_t *cli, int argc, char **argv) {
  Impulse__SecretListRequest ls = IMPULSE__SECRET_LIST_REQUEST__INIT;
  int rc = imp_cli_options(cli, argc, argv, 0, 0, "no arguments");
  if (rc >= 0) return rc;
  rc = imp_cli_call(cli, IMPULSE__ENVELOPE__BODY_SECRET_LIST, &ls,
                    IMPULSE__ENVELOPE__BODY_SECRET_LIST_OK);
  if (rc != 0) return rc;
  Impulse__SecretListResponse *r = cli->resp->secret_list_ok;
  return imp_cli_list(cli, &secrets_list, r->secrets, r->n_secrets);
}

/* ---- secret rm --------------------------------------------------------- */

static void secret_rm_help(FILE *out) {
  fputs(
      "usage: impulse secret rm NAME [options]\n"
      "\n"
      "Removes a secret. Refused while functions name it: redeploy them\n"
      "without it (--secrets-clear, or --secret with the others) or delete\n"
      "them first. Running instances keep the variable until they end.\n"
      "\n",
      out);
}

static int cmd_secret_rm(imp_cli_t *cli, int argc, char **argv) {
  int rc = imp_cli_options(cli, argc, argv, 1, 1, "expected NAME");
  if (rc >= 0) return rc;
  const char *name = argv[optind];
  imp_cli_what(cli, "secret rm %s", name);
  if ((rc = imp_cli_connect(cli)) != 0) return rc;
  int status = impulse_secret_rm(cli->client, name);
  if (status != 0) return imp_cli_report(cli, status);
  printf("removed secret %s\n", name);
  return 0;
}

/* ---- the table entry: secret and its subcommands ------------------------- */

static void secret_help(FILE *out) {
  fputs(
      "usage: impulse secret SUBCOMMAND [ARGS...] [options]\n"
      "\n"
      "  secret set NAME         set a secret from stdin or --from-file\n"
      "  secret ls               list secrets (never their values)\n"
      "  secret rm NAME          remove a secret no function names\n"
      "\n"
      "Every secret command needs the admin token. Give a secret to a\n"
      "function with `impulse deploy ... --secret NAME`.\n"
      "\n",
      out);
}

static const imp_cli_cmd_t secret_cmds[] = {
    {"secret set", cmd_secret_set, secret_set_help, "secret set NAME",
     "set a secret from stdin or --from-file", NULL, 0},
    {"secret ls", cmd_secret_ls, secret_ls_help, "secret ls",
     "list secrets (never their values)", NULL, 0},
    {"secret rm", cmd_secret_rm, secret_rm_help, "secret rm NAME",
     "remove a secret no function names", NULL, 0},
};

/* clang-format off */
const imp_cli_cmd_t imp_cli_cmd_secret =
    {"secret", NULL, secret_help, "secret SUBCOMMAND",
     "values functions get in their environment: set, ls, rm", secret_cmds,
     IMP_ARRAY_SIZE(secret_cmds)};
/* clang-format on */
