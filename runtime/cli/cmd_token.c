/*
 * The token commands: token create, token ls and token revoke (scoped
 * tokens, docs/security.md). All three need the admin token.
 */
#include "cli/cmd_token.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define SCOPES_MAX 16 /* the server's limit (policy/scopes.h) */

/* ---- token create -------------------------------------------------------- */

static void token_create_help(FILE *out) {
  fputs(
      "usage: impulse token create --scope SCOPE [--scope SCOPE ...] "
      "[options]\n"
      "\n"
      "Makes a token that allows only what its scopes say, and prints it\n"
      "once (the server keeps only its hash). SCOPE is one of:\n"
      "  admin             everything\n"
      "  deploy            deploy, rm, scale, traffic, upgrade, trigger "
      "create/rm\n"
      "  invoke            invoke any function; invoke:NAME only NAME\n"
      "  publish           publish to any topic; publish:TOPIC only TOPIC\n"
      "  read              ls, describe, record ls, trigger ls/describe,\n"
      "                    GET /api/state\n"
      "\n"
      "Options:\n"
      "  --scope SCOPE     a scope (repeatable, at most 16)\n"
      "  --name NAME       a unique name, for ls and revoke\n"
      "  --ttl DURATION    expires after DURATION: N (seconds), Ns, Nm, Nh "
      "or Nd\n"
      "\n"
      "Needs the admin token. Use the printed token with --token or\n"
      "IMPULSE_TOKEN, or as `Authorization: Bearer TOKEN` over HTTP.\n"
      "\n",
      out);
}

/* Parses "90", "90s", "15m", "12h", "7d" into milliseconds. */
static int parse_ttl(const imp_cli_t *cli, const char *s, uint64_t *ms) {
  char *end = NULL;
  unsigned long long v = 0;
  errno = 0;
  if (isdigit((unsigned char)s[0])) v = strtoull(s, &end, 10);
  uint64_t unit = 0;
  if (end != NULL && errno == 0) {
    if (*end == '\0' || strcmp(end, "s") == 0)
      unit = 1000;
    else if (strcmp(end, "m") == 0)
      unit = 60000;
    else if (strcmp(end, "h") == 0)
      unit = 3600000;
    else if (strcmp(end, "d") == 0)
      unit = 86400000;
  }
  /* Ten years, the server's limit. */
  if (unit == 0 || v == 0 || v > 10ull * 365 * 86400000 / unit) {
    fprintf(stderr,
            "impulse %s: --ttl is N, Ns, Nm, Nh or Nd (N >= 1, at most ten "
            "years), not '%s'\n",
            cli->cmd->name, s);
    return IMP_CLI_EXIT_USAGE;
  }
  *ms = v * unit;
  return 0;
}

static int cmd_token_create(imp_cli_t *cli, int argc, char **argv) {
  enum { OPT_SCOPE = IMP_CLI_OPT_FIRST, OPT_NAME, OPT_TTL };
  static const struct option longopts[] = {
      {"scope", required_argument, NULL, OPT_SCOPE},
      {"name", required_argument, NULL, OPT_NAME},
      {"ttl", required_argument, NULL, OPT_TTL},
      IMP_CLI_COMMON_OPTIONS,
      {NULL, 0, NULL, 0}};
  Impulse__TokenCreateRequest create = IMPULSE__TOKEN_CREATE_REQUEST__INIT;
  char *scopes[SCOPES_MAX];
  int opt, rc = 0;
  while ((opt = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
    switch (opt) {
      case OPT_SCOPE:
        if (create.n_scopes == SCOPES_MAX)
          return imp_cli_usage_error(cli, "at most %d --scope", SCOPES_MAX);
        scopes[create.n_scopes++] = optarg;
        break;
      case OPT_NAME:
        create.name = optarg;
        rc = imp_cli_check_name(cli, "--name", optarg);
        break;
      case OPT_TTL:
        create.has_ttl_ms = 1;
        rc = parse_ttl(cli, optarg, &create.ttl_ms);
        break;
      default:
        if ((rc = imp_cli_common_option(cli, opt, argv)) >= 0) return rc;
        rc = 0;
    }
    if (rc != 0) return rc;
  }
  if (argc != optind)
    return imp_cli_usage_error(cli, "unexpected argument '%s'", argv[optind]);
  if (create.n_scopes == 0)
    return imp_cli_usage_error(cli, "--scope is required");
  create.scopes = scopes;
  rc = imp_cli_call(cli, IMPULSE__ENVELOPE__BODY_TOKEN_CREATE, &create,
                    IMPULSE__ENVELOPE__BODY_TOKEN_CREATE_OK);
  if (rc != 0) return rc;
  const Impulse__TokenCreateResponse *r = cli->resp->token_create_ok;
  if (r->token == NULL) {
    fprintf(stderr, "impulse: %s: the server sent no token\n", cli->what);
    return IMP_CLI_EXIT_FAIL;
  }
  /* The token alone on stdout, for scripts; what it is on stderr. */
  printf("%s\n", r->token);
  if (r->info)
    fprintf(stderr, "created token %s%s%s (shown once; keep it secret)\n",
            r->info->id, r->info->name ? " " : "",
            r->info->name ? r->info->name : "");
  return 0;
}

/* ---- token ls ------------------------------------------------------------ */

static void token_ls_help(FILE *out) {
  fputs(
      "usage: impulse token ls [options]\n"
      "\n"
      "Lists the scoped tokens: id, name, scopes, when made and when they\n"
      "expire. Never shows a token's secret (the server does not have it).\n"
      "Needs the admin token.\n"
      "\n",
      out);
}

static void token_row(imp_cli_table_t *table, const void *item) {
  const Impulse__TokenInfo *t = *(Impulse__TokenInfo *const *)item;
  char scopes[1024] = "", created[40], expires[40];
  for (size_t i = 0; i < t->n_scopes; i++) {
    size_t n = strlen(scopes);
    snprintf(scopes + n, sizeof scopes - n, "%s%s", i ? "," : "", t->scopes[i]);
  }
  imp_cli_table_add(
      table, "%s\t%s\t%s\t%s\t%s", t->id, imp_cli_str_or(t->name, "-"), scopes,
      imp_cli_fmt_time(t->created_ms, created, sizeof created),
      t->expires_ms ? imp_cli_fmt_time(t->expires_ms, expires, sizeof expires)
                    : "never");
}

static const imp_cli_list_t token_list = {
    "no tokens", "ID\tNAME\tSCOPES\tCREATED\tEXPIRES", "id", token_row};

static int cmd_token_ls(imp_cli_t *cli, int argc, char **argv) {
  Impulse__TokenListRequest ls = IMPULSE__TOKEN_LIST_REQUEST__INIT;
  int rc = imp_cli_options(cli, argc, argv, 0, 0, "takes no arguments");
  if (rc >= 0) return rc;
  rc = imp_cli_call(cli, IMPULSE__ENVELOPE__BODY_TOKEN_LIST, &ls,
                    IMPULSE__ENVELOPE__BODY_TOKEN_LIST_OK);
  if (rc != 0) return rc;
  const Impulse__TokenListResponse *l = cli->resp->token_list_ok;
  return imp_cli_list(cli, &token_list, l->tokens, l->n_tokens);
}

/* ---- token revoke -------------------------------------------------------- */

static void token_revoke_help(FILE *out) {
  fputs(
      "usage: impulse token revoke ID|NAME [options]\n"
      "\n"
      "Revokes a scoped token: new connections and HTTP requests with it\n"
      "are refused, and so is the next call of a connection that already\n"
      "said Hello with it. Needs the admin token.\n"
      "\n",
      out);
}

static int cmd_token_revoke(imp_cli_t *cli, int argc, char **argv) {
  Impulse__TokenRevokeRequest rv = IMPULSE__TOKEN_REVOKE_REQUEST__INIT;
  int rc = imp_cli_options_name(cli, argc, argv, "token ID or", &rv.token);
  if (rc >= 0) return rc;
  rc = imp_cli_call(cli, IMPULSE__ENVELOPE__BODY_TOKEN_REVOKE, &rv,
                    IMPULSE__ENVELOPE__BODY_TOKEN_REVOKE_OK);
  if (rc != 0) return rc;
  const Impulse__TokenInfo *t = cli->resp->token_revoke_ok->info;
  printf("revoked token %s\n", t && t->id ? t->id : rv.token);
  return 0;
}

/* ---- the table entry ----------------------------------------------------- */

static void token_help(FILE *out) {
  fputs(
      "usage: impulse token SUBCOMMAND [ARGS...] [options]\n"
      "\n"
      "  token create --scope S ...  make a scoped token (printed once)\n"
      "  token ls                    list the scoped tokens\n"
      "  token revoke ID|NAME        revoke a scoped token\n"
      "\n"
      "Run `impulse token SUBCOMMAND --help` for details.\n"
      "\n",
      out);
}

static const imp_cli_cmd_t token_cmds[] = {
    {"token create", cmd_token_create, token_create_help,
     "token create --scope S", "make a scoped token", NULL, 0},
    {"token ls", cmd_token_ls, token_ls_help, "token ls",
     "list the scoped tokens", NULL, 0},
    {"token revoke", cmd_token_revoke, token_revoke_help,
     "token revoke ID|NAME", "revoke a scoped token", NULL, 0},
};

/* clang-format off */
const imp_cli_cmd_t imp_cli_cmd_token =
    {"token", NULL, token_help, "token create|ls|revoke",
     "scoped tokens (admin only)", token_cmds, IMP_ARRAY_SIZE(token_cmds)};
/* clang-format on */
