/*
 * The function commands: deploy, invoke, ls, describe, rm, upgrade,
 * traffic and scale.
 */
#include "cli/cmd_function.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define IMP_CLI_MAX_TRAFFIC 8 /* versions sharing a function's calls */

enum {
  OPT_CONCURRENCY = IMP_CLI_OPT_FIRST,
  OPT_TIMEOUT,
  OPT_MEMORY,
  OPT_MIN,
  OPT_MAX,
  OPT_DEADLINE,
  OPT_IDEMPOTENCY,
  OPT_TARGET_CONC,
  OPT_SCALE_TO_ZERO,
  OPT_POLICY,
  OPT_NO_PROMOTE,
  OPT_MAX_STEP,
  OPT_VALIDATE,
  OPT_ENV,
  OPT_ENV_FILE,
  OPT_ENV_CLEAR,
  OPT_NETWORK,
  OPT_CPU,
  OPT_SECRET,
  OPT_SECRETS_CLEAR
};

/* ---- scaling flags (deploy, scale) ------------------------------------ */

/* --min, --max and the autoscaling settings. */
typedef struct scaling_s {
  int has_min, has_max, has_target, has_stz;
  uint32_t min, max, stz;
  double target;
  const char *policy;
} scaling_t;

/* clang-format off */
#define SCALING_OPTIONS                                                 \
  {"min", required_argument, NULL, OPT_MIN},                            \
  {"max", required_argument, NULL, OPT_MAX},                            \
  {"target-concurrency", required_argument, NULL, OPT_TARGET_CONC},     \
  {"scale-to-zero-after", required_argument, NULL, OPT_SCALE_TO_ZERO},  \
  {"policy", required_argument, NULL, OPT_POLICY}
/* clang-format on */

static void autoscale_help(FILE *out) {
  fprintf(out,
          "  --target-concurrency N  calls in flight per instance the "
          "autoscaler\n"
          "                          aims at (x 0.7 utilisation; %g-%g;\n"
          "                          default: the function's concurrency)\n"
          "  --scale-to-zero-after S idle seconds before the function goes "
          "to\n"
          "                          zero (its min) (0-%u; default:\n"
          "                          --idle-timeout)\n"
          "  --policy P              reactive (KPA windows only) or "
          "predictive\n"
          "                          (also the forecast and the idle-time\n"
          "                          histogram; default)\n",
          IMP_TARGET_CONCURRENCY_MIN, IMP_TARGET_CONCURRENCY_MAX,
          IMP_SCALE_TO_ZERO_MAX_S);
}

/* Handles a scaling flag: -1 when `opt` is not one, else 0 or the exit
 * status of a bad value. */
static int scaling_option(const imp_cli_t *cli, int opt, const char *arg,
                          scaling_t *as) {
  char *end = NULL;
  switch (opt) {
    case OPT_MIN:
      as->has_min = 1;
      return imp_cli_parse_u32(cli, "--min", arg, 0, IMP_INSTANCES_MAX,
                               &as->min);
    case OPT_MAX:
      as->has_max = 1;
      return imp_cli_parse_u32(cli, "--max", arg, 1, IMP_INSTANCES_MAX,
                               &as->max);
    case OPT_TARGET_CONC:
      as->has_target = 1;
      as->target = strtod(arg, &end);
      if (end == arg || *end != '\0' ||
          !(as->target >= IMP_TARGET_CONCURRENCY_MIN) ||
          as->target > IMP_TARGET_CONCURRENCY_MAX) {
        fprintf(stderr,
                "impulse %s: --target-concurrency must be a number from %g "
                "to %g, not '%s'\n",
                cli->cmd->name, IMP_TARGET_CONCURRENCY_MIN,
                IMP_TARGET_CONCURRENCY_MAX, arg);
        return IMP_CLI_EXIT_USAGE;
      }
      return 0;
    case OPT_SCALE_TO_ZERO:
      as->has_stz = 1;
      return imp_cli_parse_u32(cli, "--scale-to-zero-after", arg, 0,
                               IMP_SCALE_TO_ZERO_MAX_S, &as->stz);
    case OPT_POLICY:
      as->policy = arg;
      if (strcmp(arg, "reactive") != 0 && strcmp(arg, "predictive") != 0) {
        fprintf(stderr,
                "impulse %s: --policy must be reactive or predictive, not "
                "'%s'\n",
                cli->cmd->name, arg);
        return IMP_CLI_EXIT_USAGE;
      }
      return 0;
  }
  return -1;
}

/* Checks the scaling flags together: 0, or the usage exit status. */
static int scaling_check(const imp_cli_t *cli, const scaling_t *as) {
  if (!as->has_min || !as->has_max || as->min <= as->max) return 0;
  fprintf(stderr, "impulse %s: --min (%u) is above --max (%u)\n",
          cli->cmd->name, (unsigned)as->min, (unsigned)as->max);
  return IMP_CLI_EXIT_USAGE;
}

/* ---- deploy ------------------------------------------------------------ */

static void deploy_help(FILE *out) {
  fprintf(
      out,
      "usage: impulse deploy NAME FILE [options]\n"
      "\n"
      "Uploads FILE (a function built as a shared object) as a new version\n"
      "of NAME (1 to %d letters, digits, '-', '_' or '.') and prints\n"
      "\"deployed NAME version N\". FILE travels in one frame, so it can be\n"
      "at most the server's --max-frame (%u MiB unless set otherwise; see\n"
      "`max frame:` of `impulse info`): a larger file is refused before it\n"
      "is sent. Unset settings keep the server's defaults.\n"
      "\n"
      "  --concurrency N      concurrent invocations per instance (1-%u)\n"
      "  --timeout MS         handler timeout in milliseconds (1-%u)\n"
      "  --memory MB          memory limit of an instance in MiB (1-%u)\n"
      "  --min N              instances kept running (0-%u)\n"
      "  --max N              most instances (1-%u)\n"
      "  --no-promote         store the version without traffic (see\n"
      "                       `impulse traffic`); the function must exist\n"
      "  --max-step PCT       rolling upgrade: share of the instances out of\n"
      "                       service at once (1-%u) [25]\n"
      "  --validate MODE      rolling upgrade: replayed recorded calls must\n"
      "                       succeed (status) or give the same output\n"
      "                       (exact) [status]\n"
      "  --env KEY=VALUE      a variable of the function's environment\n"
      "                       (repeatable); its instances see no other\n"
      "  --env-file FILE      variables from FILE, a KEY=VALUE a line ('#'\n"
      "                       lines and blank lines skipped)\n"
      "  --env-clear          no variables at all; without --env,\n"
      "                       --env-file or --env-clear a redeploy keeps\n"
      "                       the function's environment (at most %u\n"
      "                       variables, %u KiB)\n"
      "  --network MODE       outbound (default) or none: an instance with\n"
      "                       no network but its own loopback\n"
      "  --cpu CPUS           CPU time an instance may use, e.g. 0.5 or 2\n"
      "                       (0 = no limit; needs a cpu cgroup)\n"
      "  --secret NAME[=VAR]  secret NAME (`impulse secret set`) as variable\n"
      "                       NAME, or VAR (repeatable, at most %u)\n"
      "  --secrets-clear      no secrets; without --secret or\n"
      "                       --secrets-clear a redeploy keeps them\n",
      IMP_NAME_MAX, IMP_DEFAULT_MAX_FRAME >> 20, IMP_CONCURRENCY_MAX,
      IMP_TIMEOUT_MAX_MS, IMP_MEMORY_MAX_MB, IMP_INSTANCES_MAX,
      IMP_INSTANCES_MAX, IMP_MAX_STEP_PCT_MAX, IMP_ENV_MAX_VARS,
      IMP_ENV_MAX_BYTES >> 10, IMP_SECRET_MAX_REFS);
  autoscale_help(out);
}

/* The environment a deploy gives: entries borrowed from argv, or lines of
 * --env-file (owned). */
typedef struct env_list_s {
  const char **v;
  char **owned;
  size_t n, nowned, cap;
} env_list_t;

static int env_add(imp_cli_t *cli, env_list_t *env, const char *kv, int owned) {
  if (env->n == env->cap) {
    size_t cap = env->cap ? env->cap * 2 : 16;
    const char **v = realloc(env->v, cap * sizeof *v);
    char **o = realloc(env->owned, cap * sizeof *o);
    if (v != NULL) env->v = v;
    if (o != NULL) env->owned = o;
    if (v == NULL || o == NULL) return imp_cli_nomem(cli);
    env->cap = cap;
  }
  env->v[env->n++] = kv;
  if (owned) env->owned[env->nowned++] = (char *)kv;
  return 0;
}

/* Adds the KEY=VALUE lines of `path`. */
static int env_file(imp_cli_t *cli, env_list_t *env, const char *path) {
  FILE *f = fopen(path, "r");
  if (f == NULL) {
    fprintf(stderr, "impulse deploy: --env-file %s: %s\n", path,
            strerror(errno));
    return IMP_CLI_EXIT_USAGE;
  }
  char *line = NULL;
  size_t cap = 0;
  ssize_t len;
  int rc = 0;
  /* One entry past the limit is enough for the check to refuse it: a huge
   * file is not read whole. */
  while (rc == 0 && env->n <= IMP_ENV_MAX_VARS &&
         (len = getline(&line, &cap, f)) >= 0) {
    while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
      line[--len] = '\0';
    if (len == 0 || line[0] == '#') continue;
    char *copy = strdup(line);
    if (copy == NULL || (rc = env_add(cli, env, copy, 1)) != 0) {
      free(copy);
      rc = imp_cli_nomem(cli);
    }
  }
  free(line);
  fclose(f);
  return rc;
}

static void env_free(env_list_t *env) {
  for (size_t i = 0; i < env->nowned; i++) free(env->owned[i]);
  free(env->owned);
  free(env->v);
}

/* The environment and the secrets (names borrowed from argv) a deploy
 * gives. */
static int deploy_run(imp_cli_t *cli, int argc, char **argv, env_list_t *env,
                      env_list_t *secrets);

static int cmd_deploy(imp_cli_t *cli, int argc, char **argv) {
  env_list_t env = {0}, secrets = {0};
  int rc = deploy_run(cli, argc, argv, &env, &secrets);
  env_free(&env);
  env_free(&secrets);
  return rc;
}

static int deploy_run(imp_cli_t *cli, int argc, char **argv, env_list_t *env,
                      env_list_t *secrets) {
  static const struct option longopts[] = {
      {"concurrency", required_argument, NULL, OPT_CONCURRENCY},
      {"timeout", required_argument, NULL, OPT_TIMEOUT},
      {"memory", required_argument, NULL, OPT_MEMORY},
      SCALING_OPTIONS,
      {"no-promote", no_argument, NULL, OPT_NO_PROMOTE},
      {"max-step", required_argument, NULL, OPT_MAX_STEP},
      {"validate", required_argument, NULL, OPT_VALIDATE},
      {"env", required_argument, NULL, OPT_ENV},
      {"env-file", required_argument, NULL, OPT_ENV_FILE},
      {"env-clear", no_argument, NULL, OPT_ENV_CLEAR},
      {"network", required_argument, NULL, OPT_NETWORK},
      {"cpu", required_argument, NULL, OPT_CPU},
      {"secret", required_argument, NULL, OPT_SECRET},
      {"secrets-clear", no_argument, NULL, OPT_SECRETS_CLEAR},
      IMP_CLI_COMMON_OPTIONS,
      {NULL, 0, NULL, 0}};
  impulse_deploy_opts_t opts;
  scaling_t as = {0};
  int opt, rc = 0;
  memset(&opts, 0, sizeof opts);

  while ((opt = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
    switch (opt) {
      case OPT_CONCURRENCY:
        rc = imp_cli_parse_u32(cli, "--concurrency", optarg, 1,
                               IMP_CONCURRENCY_MAX, &opts.concurrency);
        break;
      case OPT_TIMEOUT:
        rc = imp_cli_parse_u32(cli, "--timeout", optarg, 1, IMP_TIMEOUT_MAX_MS,
                               &opts.timeout_ms);
        break;
      case OPT_MEMORY:
        rc = imp_cli_parse_u32(cli, "--memory", optarg, 1, IMP_MEMORY_MAX_MB,
                               &opts.memory_mb);
        break;
      case OPT_NO_PROMOTE: opts.no_promote = 1; break;
      case OPT_MAX_STEP:
        rc = imp_cli_parse_u32(cli, "--max-step", optarg, 1,
                               IMP_MAX_STEP_PCT_MAX, &opts.max_step_pct);
        break;
      case OPT_VALIDATE:
        opts.validate = optarg;
        if (strcmp(optarg, "status") == 0 || strcmp(optarg, "exact") == 0)
          break;
        fprintf(stderr,
                "impulse deploy: --validate must be status or exact, not "
                "'%s'\n",
                optarg);
        return IMP_CLI_EXIT_USAGE;
      case OPT_ENV:
        rc = env_add(cli, env, optarg, 0);
        opts.env_replace = 1;
        break;
      case OPT_ENV_FILE:
        rc = env_file(cli, env, optarg);
        opts.env_replace = 1;
        break;
      case OPT_ENV_CLEAR: opts.env_replace = 1; break;
      case OPT_NETWORK:
        if (strcmp(optarg, "none") != 0 && strcmp(optarg, "outbound") != 0) {
          fprintf(stderr,
                  "impulse deploy: --network must be none or outbound, not "
                  "'%s'\n",
                  optarg);
          return IMP_CLI_EXIT_USAGE;
        }
        opts.network = optarg;
        break;
      case OPT_CPU: {
        char *end;
        double cpus = strtod(optarg, &end);
        if (end == optarg || *end != '\0' || !(cpus >= 0) ||
            cpus > IMP_CPU_MAX_MILLIS / 1000.0) {
          fprintf(stderr,
                  "impulse deploy: --cpu takes a number of CPUs from 0 to "
                  "%u, e.g. 0.5, not '%s'\n",
                  IMP_CPU_MAX_MILLIS / 1000, optarg);
          return IMP_CLI_EXIT_USAGE;
        }
        opts.cpu_millis = (uint32_t)(cpus * 1000.0 + 0.5);
        opts.has_cpu = 1;
        break;
      }
      case OPT_SECRET:
        rc = env_add(cli, secrets, optarg, 0);
        opts.secrets_replace = 1;
        break;
      case OPT_SECRETS_CLEAR: opts.secrets_replace = 1; break;
      default:
        if ((rc = scaling_option(cli, opt, optarg, &as)) >= 0) break;
        if ((rc = imp_cli_common_option(cli, opt, argv)) >= 0) return rc;
        rc = 0;
    }
    if (rc != 0) return rc;
  }
  if (argc - optind != 2)
    return imp_cli_usage_error(cli, "expected NAME and FILE");
  if ((rc = scaling_check(cli, &as)) != 0) return rc;
  opts.has_min = as.has_min;
  opts.min_instances = as.min;
  opts.has_max = as.has_max;
  opts.max_instances = as.max;
  if (as.has_target) opts.target_concurrency = as.target;
  opts.has_scale_to_zero = as.has_stz;
  opts.scale_to_zero_after_s = as.stz;
  opts.policy = as.policy;
  char why[256];
  if (imp_env_valid((char *const *)env->v, env->n, why, sizeof why) != 0) {
    fprintf(stderr, "impulse deploy: %s\n", why);
    return IMP_CLI_EXIT_USAGE;
  }
  opts.env = env->v;
  opts.nenv = env->n;
  if (imp_secret_refs_valid((char *const *)secrets->v, secrets->n,
                            (char *const *)env->v, env->n, why,
                            sizeof why) != 0) {
    fprintf(stderr, "impulse deploy: %s\n", why);
    return IMP_CLI_EXIT_USAGE;
  }
  opts.secrets = secrets->v;
  opts.nsecrets = secrets->n;
  const char *name = argv[optind], *path = argv[optind + 1];
  if ((rc = imp_cli_check_name(cli, "NAME", name)) != 0) return rc;
  imp_cli_what(cli, "deploy %s", name);
  if ((rc = imp_cli_read_input(cli, path)) != 0 ||
      (rc = imp_cli_connect(cli)) != 0 ||
      (rc = imp_cli_check_frame(cli, path, cli->input_len)) != 0)
    return rc;
  uint32_t version = 0;
  int status = impulse_deploy(cli->client, name, cli->input, cli->input_len,
                              &opts, &version);
  if (status != 0) return imp_cli_report(cli, status);
  printf("deployed %s version %u\n", name, (unsigned)version);
  return 0;
}

/* ---- invoke ------------------------------------------------------------ */

static void invoke_help(FILE *out) {
  fprintf(
      out,
      "usage: impulse invoke NAME [-d DATA | -f FILE] [-i] [options]\n"
      "\n"
      "Calls NAME with a payload from -d, from -f FILE, or else from stdin,\n"
      "and writes the response payload to stdout exactly as returned; on a\n"
      "terminal, a newline follows a payload that does not end with one.\n"
      "The payload travels in one frame: at most the server's --max-frame\n"
      "(%u MiB unless set otherwise).\n"
      "\n"
      "  -d, --data DATA          the payload\n"
      "  -f, --file FILE          read the payload from FILE ('-' = stdin)\n"
      "  -H, --header NAME=VALUE  request header (repeatable)\n"
      "  -i, --include            print the response headers first, one\n"
      "                           `name: value` a line, then an empty line\n"
      "  --deadline MS            overall budget in milliseconds (1-%u;\n"
      "                           default: the function's timeout)\n"
      "  --idempotency-key KEY    run the function at most once for KEY (1 to\n"
      "                           %d bytes): a repeated call gets the stored\n"
      "                           answer; retried across reconnects and\n"
      "                           while IN_PROGRESS\n",
      IMP_DEFAULT_MAX_FRAME >> 20, IMP_DEADLINE_MAX_MS, IMP_IDEM_MAX_KEY);
}

/*
 * Writes an answer to stdout: with `include` its headers first, like
 * `curl -i`, then the payload exactly as returned. On a terminal a newline
 * follows a payload that does not end with one, so that the prompt starts
 * on a line of its own; a pipe or a file gets the bytes alone.
 */
static int print_response(const imp_cli_t *cli, const impulse_response_t *resp,
                          int include) {
  const char *payload = resp->payload;
  for (size_t i = 0; include && i < resp->header_count; i++) {
    const impulse_header_t *h = &resp->headers[i];
    printf("%s: ", h->name);
    fwrite(h->value, 1, h->len, stdout);
    putchar('\n');
  }
  if (include) putchar('\n');
  if (resp->len > 0) fwrite(payload, 1, resp->len, stdout);
  if (resp->len > 0 && payload[resp->len - 1] != '\n' && isatty(STDOUT_FILENO))
    putchar('\n');
  if (fflush(stdout) == 0 && !ferror(stdout)) return 0;
  fprintf(stderr, "impulse: %s: writing the response: %s\n", cli->what,
          strerror(errno));
  return IMP_CLI_EXIT_FAIL;
}

static int cmd_invoke(imp_cli_t *cli, int argc, char **argv) {
  static const struct option longopts[] = {
      {"data", required_argument, NULL, 'd'},
      {"file", required_argument, NULL, 'f'},
      {"header", required_argument, NULL, 'H'},
      {"include", no_argument, NULL, 'i'},
      {"deadline", required_argument, NULL, OPT_DEADLINE},
      {"idempotency-key", required_argument, NULL, OPT_IDEMPOTENCY},
      IMP_CLI_COMMON_OPTIONS,
      {NULL, 0, NULL, 0}};
  impulse_invoke_opts_t opts;
  impulse_response_t *resp = NULL;
  const char *data = NULL, *file = NULL;
  int include = 0, opt, rc = 0;
  memset(&opts, 0, sizeof opts);

  while ((opt = getopt_long(argc, argv, ":d:f:H:ih", longopts, NULL)) != -1) {
    switch (opt) {
      case 'd': data = optarg; break;
      case 'i': include = 1; break;
      case 'f': file = optarg; break;
      case 'H': rc = imp_cli_add_header(cli, optarg); break;
      case OPT_DEADLINE:
        rc = imp_cli_parse_u32(cli, "--deadline", optarg, 1,
                               IMP_DEADLINE_MAX_MS, &opts.deadline_ms);
        break;
      case OPT_IDEMPOTENCY:
        if (*optarg == '\0')
          return imp_cli_usage_error(cli,
                                     "--idempotency-key must not be empty");
        if (strlen(optarg) > IMP_IDEM_MAX_KEY)
          return imp_cli_usage_error(
              cli, "--idempotency-key must be 1 to %d bytes, not %zu",
              IMP_IDEM_MAX_KEY, strlen(optarg));
        opts.idempotency_key = optarg;
        break;
      default:
        if ((rc = imp_cli_common_option(cli, opt, argv)) >= 0) return rc;
        rc = 0;
    }
    if (rc != 0) return rc;
  }
  if (argc - optind != 1)
    return imp_cli_usage_error(cli, "expected one function NAME");
  if (data != NULL && file != NULL)
    return imp_cli_usage_error(cli, "-d and -f cannot be used together");
  const char *name = argv[optind];
  imp_cli_what(cli, "invoke %s", name);
  const void *payload = data;
  size_t len = data != NULL ? strlen(data) : 0;
  const char *label = "the payload of -d";
  if (data == NULL) {
    if ((rc = imp_cli_read_input(cli, file)) != 0) return rc;
    payload = cli->input;
    len = cli->input_len;
    label = file == NULL || strcmp(file, "-") == 0 ? "stdin" : file;
  }
  opts.headers = cli->headers;
  opts.header_count = cli->nheaders;

  if ((rc = imp_cli_connect(cli)) != 0 ||
      (rc = imp_cli_check_frame(cli, label, len)) != 0)
    return rc;
  /* The server answers by the deadline; do not wait forever if it does not. */
  if (opts.deadline_ms > 0)
    impulse_client_set_timeout(cli->client,
                               opts.deadline_ms + IMP_CLI_DEADLINE_SLACK_MS);
  int status = impulse_invoke(cli->client, name, payload, len, &opts, &resp);
  if (status != 0) return imp_cli_report(cli, status);
  if (resp->status != IMPULSE_S_OK) {
    fprintf(stderr, "impulse: %s: %s: %s\n", cli->what,
            impulse_status_name(resp->status),
            imp_cli_str_or(resp->error, "failed"));
    rc = IMP_CLI_EXIT_FAIL;
  } else {
    rc = print_response(cli, resp, include);
  }
  impulse_response_free(resp);
  return rc;
}

/* ---- ls ---------------------------------------------------------------- */

static void ls_help(FILE *out) {
  fputs(
      "usage: impulse ls [options]\n"
      "\n"
      "Lists the deployed functions with their current version, instances\n"
      "and counters, sorted by name.\n"
      "\n",
      out);
}

static void function_row(imp_cli_table_t *table, const void *item) {
  const Impulse__FunctionInfo *f = *(Impulse__FunctionInfo *const *)item;
  imp_cli_table_add(
      table, "%s\t%u\t%u\t%u\t%u\t%llu\t%llu", f->name, (unsigned)f->version,
      (unsigned)f->instances, (unsigned)f->ready, (unsigned)f->in_flight,
      (unsigned long long)f->invocations, (unsigned long long)f->errors);
}

static const imp_cli_list_t functions_list = {
    "no functions",
    "NAME\tVERSION\tINSTANCES\tREADY\tIN-FLIGHT\tINVOCATIONS\tERRORS", "name",
    function_row};

static int cmd_ls(imp_cli_t *cli, int argc, char **argv) {
  Impulse__ListRequest list = IMPULSE__LIST_REQUEST__INIT;
  int rc = imp_cli_options(cli, argc, argv, 0, 0, "takes no arguments");
  if (rc >= 0) return rc;
  if ((rc = imp_cli_call(cli, IMPULSE__ENVELOPE__BODY_LIST, &list,
                         IMPULSE__ENVELOPE__BODY_LIST_OK)) != 0)
    return rc;
  const Impulse__ListResponse *l = cli->resp->list_ok;
  return imp_cli_list(cli, &functions_list, l->functions, l->n_functions);
}

/* ---- describe ---------------------------------------------------------- */

static void describe_help(FILE *out) {
  fputs(
      "usage: impulse describe NAME [options]\n"
      "\n"
      "Shows a function's configuration, counters, versions and instances.\n"
      "\n",
      out);
}

/* A config value, or "default" when the server did not send one. */
static const char *fmt_config(int has, uint32_t v, const char *unit, char *buf,
                              size_t len) {
  if (!has) return "default";
  snprintf(buf, len, "%u%s", (unsigned)v, unit);
  return buf;
}

static void print_upgrade(const Impulse__UpgradeInfo *u) {
  printf("upgrade:        v%u -> v%u %s", (unsigned)u->record->from_version,
         (unsigned)u->record->to_version, u->record->state);
  if (u->has_serving_from)
    printf(" (%u on v%u, %u on v%u, %u out, %u validated)",
           (unsigned)u->serving_from, (unsigned)u->record->from_version,
           (unsigned)u->serving_to, (unsigned)u->record->to_version,
           (unsigned)u->out_of_service, (unsigned)u->validated);
  if (u->record->reason) printf(": %s", u->record->reason);
  printf("\n");
}

static void print_function(const Impulse__FunctionInfo *f) {
  static const Impulse__FunctionConfig none = IMPULSE__FUNCTION_CONFIG__INIT;
  const Impulse__FunctionConfig *c = f->config ? f->config : &none;
  char b[5][32], t[2][40];
  printf("name:           %s\n", f->name);
  printf("version:        %u\n", (unsigned)f->version);
  printf("concurrency:    %s\n",
         fmt_config(c->has_concurrency, c->concurrency, "", b[0], sizeof b[0]));
  printf("timeout:        %s\n", fmt_config(c->has_timeout_ms, c->timeout_ms,
                                            " ms", b[1], sizeof b[1]));
  printf("memory:         %s\n",
         fmt_config(c->has_memory_mb, c->memory_mb, " MiB", b[2], sizeof b[2]));
  printf("min instances:  %s\n",
         fmt_config(c->has_min_instances, c->min_instances, "", b[3],
                    sizeof b[3]));
  printf("max instances:  %s\n",
         fmt_config(c->has_max_instances, c->max_instances, "", b[4],
                    sizeof b[4]));
  printf("network:        %s\n", c->network ? c->network : "outbound");
  if (c->has_cpu_millis && c->cpu_millis > 0)
    printf("cpu:            %.3g CPUs\n", c->cpu_millis / 1000.0);
  else
    printf("cpu:            no limit\n");
  printf("sha256:         %s\n", imp_cli_str_or(f->sha256, "-"));
  printf("size:           %llu bytes\n", (unsigned long long)f->artifact_size);
  printf("created:        %s\n",
         imp_cli_fmt_time(f->created_ms, t[0], sizeof t[0]));
  printf("updated:        %s\n",
         imp_cli_fmt_time(f->updated_ms, t[1], sizeof t[1]));
  printf("instances:      %u (%u ready)\n", (unsigned)f->instances,
         (unsigned)f->ready);
  printf("queued:         %u\n", (unsigned)f->queued);
  printf("in flight:      %u\n", (unsigned)f->in_flight);
  printf("invocations:    %llu\n", (unsigned long long)f->invocations);
  printf("errors:         %llu\n", (unsigned long long)f->errors);
  printf("cold starts:    %llu\n", (unsigned long long)f->cold_starts);
  if (f->upgrade && f->upgrade->record) print_upgrade(f->upgrade);
  if (f->n_traffic > 0) {
    printf("traffic:       ");
    for (size_t i = 0; i < f->n_traffic; i++)
      printf(" v%u=%u", (unsigned)f->traffic[i]->version,
             (unsigned)f->traffic[i]->weight);
    printf("\n");
  }
  printf("warm starts:    %llu (instances started from the warm pool)\n",
         (unsigned long long)f->warm_starts);
  if (c->policy)
    printf(
        "autoscaling:    %s, target concurrency %.2f, scale to zero after "
        "%u s\n",
        c->policy, c->has_target_concurrency ? c->target_concurrency : 0,
        c->has_scale_to_zero_after_s ? (unsigned)c->scale_to_zero_after_s : 0);
  /* Names only: an answer never carries a value. */
  printf("env:           ");
  for (size_t i = 0; i < c->n_env; i++) printf(" %s", c->env[i]);
  printf("%s\n", c->n_env ? "" : " -");
  printf("secrets:       ");
  for (size_t i = 0; i < c->n_secrets; i++) printf(" %s", c->secrets[i]);
  printf("%s\n", c->n_secrets ? "" : " -");
  if (f->has_desired) printf("desired:        %u\n", (unsigned)f->desired);
  if (f->has_forecast_per_min)
    printf("forecast:       %.1f calls/min, %u instances\n",
           f->forecast_per_min, (unsigned)f->forecast_instances);
  if (f->has_panic) printf("panic:          %s\n", f->panic ? "yes" : "no");
  if (f->scale_reason) printf("reason:         %s\n", f->scale_reason);
}

static void version_row(imp_cli_table_t *table, const void *item) {
  const Impulse__VersionRecord *v = *(Impulse__VersionRecord *const *)item;
  char created[40];
  imp_cli_table_add(table, "%u\t%.12s\t%llu\t%s", (unsigned)v->version,
                    v->sha256, (unsigned long long)v->size,
                    imp_cli_fmt_time(v->created_ms, created, sizeof created));
}

static void instance_row(imp_cli_table_t *table, const void *item) {
  const Impulse__InstanceInfo *in = *(Impulse__InstanceInfo *const *)item;
  imp_cli_table_add(table, "%llu\t%d\t%u\t%s\t%u/%u\t%llu",
                    (unsigned long long)in->id, (int)in->pid,
                    (unsigned)in->version, imp_cli_str_or(in->state, "-"),
                    (unsigned)in->outstanding, (unsigned)in->concurrency,
                    (unsigned long long)in->served);
}

static const imp_cli_list_t versions_list = {
    "no versions", "VERSION\tSHA256\tSIZE\tCREATED", "version", version_row};

static const imp_cli_list_t instances_list = {
    "no instances", "ID\tPID\tVERSION\tSTATE\tOUTSTANDING/CONCURRENCY\tSERVED",
    "id", instance_row};

static int cmd_describe(imp_cli_t *cli, int argc, char **argv) {
  Impulse__DescribeRequest describe = IMPULSE__DESCRIBE_REQUEST__INIT;
  int rc = imp_cli_options_name(cli, argc, argv, "function", &describe.name);
  if (rc >= 0) return rc;
  if ((rc = imp_cli_call(cli, IMPULSE__ENVELOPE__BODY_DESCRIBE, &describe,
                         IMPULSE__ENVELOPE__BODY_DESCRIBE_OK)) != 0)
    return rc;
  const Impulse__DescribeResponse *d = cli->resp->describe_ok;
  print_function(d->function);
  printf("\n");
  rc = imp_cli_list(cli, &versions_list, d->versions, d->n_versions);
  if (rc != 0) return rc;
  printf("\n");
  return imp_cli_list(cli, &instances_list, d->instances, d->n_instances);
}

/* ---- rm ---------------------------------------------------------------- */

static void rm_help(FILE *out) {
  fputs(
      "usage: impulse rm NAME [options]\n"
      "\n"
      "Deletes a function with all its versions and instances.\n"
      "\n",
      out);
}

static int cmd_rm(imp_cli_t *cli, int argc, char **argv) {
  char *name;
  int rc = imp_cli_options_name(cli, argc, argv, "function", &name);
  if (rc >= 0) return rc;
  if ((rc = imp_cli_connect(cli)) != 0) return rc;
  int status = impulse_delete(cli->client, name);
  if (status != 0) return imp_cli_report(cli, status);
  printf("deleted %s\n", name);
  return 0;
}

/* ---- upgrade ----------------------------------------------------------- */

static void upgrade_help(FILE *out) {
  fputs(
      "usage: impulse upgrade status|abort NAME [options]\n"
      "\n"
      "A deploy of a function with serving instances upgrades them step by\n"
      "step (--max-step of them at a time), replaying recorded calls on\n"
      "each new instance before it serves; a failed replay rolls every\n"
      "upgraded instance back. `status` shows the upgrade's state and\n"
      "progress (or the last one's outcome); `abort` rolls a running one\n"
      "back. Needs the admin token.\n"
      "\n",
      out);
}

static void print_upgrade_status(const char *name,
                                 const Impulse__UpgradeInfo *u) {
  const Impulse__UpgradeRecord *r = u->record;
  printf("function:       %s\n", name);
  printf("upgrade:        v%u -> v%u\n", (unsigned)r->from_version,
         (unsigned)r->to_version);
  printf("state:          %s\n", r->state);
  printf("max step:       %u%%\n", (unsigned)r->max_step_pct);
  printf("validate:       %s\n", imp_cli_str_or(r->validate, "status"));
  if (u->has_serving_from) {
    printf("serving:        %u on v%u, %u on v%u\n", (unsigned)u->serving_from,
           (unsigned)r->from_version, (unsigned)u->serving_to,
           (unsigned)r->to_version);
    printf("out of service: %u\n", (unsigned)u->out_of_service);
    printf("validated:      %u instances, %u recorded calls replayed\n",
           (unsigned)u->validated, (unsigned)u->replayed);
  }
  if (r->has_started_ms && r->has_updated_ms)
    printf("took:           %llu ms%s\n",
           (unsigned long long)(r->updated_ms - r->started_ms),
           strcmp(r->state, "running") == 0 ||
                   strcmp(r->state, "rolling_back") == 0
               ? " so far"
               : "");
  if (r->reason) printf("reason:         %s\n", r->reason);
}

static int cmd_upgrade(imp_cli_t *cli, int argc, char **argv) {
  Impulse__UpgradeRequest ur = IMPULSE__UPGRADE_REQUEST__INIT;
  int rc = imp_cli_options(cli, argc, argv, 2, 2,
                           "expected `status NAME` or `abort NAME`");
  if (rc >= 0) return rc;
  const char *verb = argv[optind], *name = argv[optind + 1];
  if (strcmp(verb, "status") != 0 && strcmp(verb, "abort") != 0)
    return imp_cli_usage_error(cli, "unknown subcommand '%s': status or abort",
                               verb);
  imp_cli_what(cli, "upgrade %s %s", verb, name);
  ur.name = (char *)name;
  ur.has_abort = ur.abort = strcmp(verb, "abort") == 0;
  if ((rc = imp_cli_call(cli, IMPULSE__ENVELOPE__BODY_UPGRADE, &ur,
                         IMPULSE__ENVELOPE__BODY_UPGRADE_OK)) != 0)
    return rc;
  const Impulse__UpgradeInfo *u = cli->resp->upgrade_ok->upgrade;
  if (u == NULL || u->record == NULL)
    printf("%s: no upgrade\n", name);
  else
    print_upgrade_status(name, u);
  return 0;
}

/* ---- traffic ----------------------------------------------------------- */

static void traffic_help(FILE *out) {
  fputs(
      "usage: impulse traffic NAME [vN=W ...] [options]\n"
      "\n"
      "Sets the share of NAME's calls each version gets, in percent (the\n"
      "weights add up to 100): `impulse traffic pay v3=90 v4=10` sends one\n"
      "call in ten to version 4 (canary); `impulse traffic pay v4=100`\n"
      "makes version 4 the current one (blue-green switch). Versions come\n"
      "from `deploy` (with --no-promote: stored without traffic). Without\n"
      "weights, prints the current split. Needs the admin token.\n"
      "\n",
      out);
}

static int cmd_traffic(imp_cli_t *cli, int argc, char **argv) {
  Impulse__TrafficRequest tr = IMPULSE__TRAFFIC_REQUEST__INIT;
  Impulse__TrafficWeight w[IMP_CLI_MAX_TRAFFIC], *wp[IMP_CLI_MAX_TRAFFIC];
  int rc =
      imp_cli_options(cli, argc, argv, 1, argc, "expected NAME [vN=W ...]");
  if (rc >= 0) return rc;
  const char *name = argv[optind];
  size_t n = (size_t)(argc - optind - 1);
  if (n > IMP_CLI_MAX_TRAFFIC)
    return imp_cli_usage_error(cli, "at most %d versions may share traffic",
                               IMP_CLI_MAX_TRAFFIC);
  for (size_t i = 0; i < n; i++) {
    const char *a = argv[optind + 1 + i];
    unsigned v, wt;
    char extra;
    if (sscanf(a, "v%u=%u%c", &v, &wt, &extra) != 2 || v == 0 || wt > 100)
      return imp_cli_usage_error(
          cli, "'%s' is not vN=W (version N, weight 0-100)", a);
    impulse__traffic_weight__init(&w[i]);
    w[i].version = v;
    w[i].weight = wt;
    wp[i] = &w[i];
  }
  imp_cli_what(cli, "traffic %s", name);
  tr.name = (char *)name;
  tr.n_weights = n;
  tr.weights = n ? wp : NULL;
  if ((rc = imp_cli_call(cli, IMPULSE__ENVELOPE__BODY_TRAFFIC, &tr,
                         IMPULSE__ENVELOPE__BODY_TRAFFIC_OK)) != 0)
    return rc;
  const Impulse__TrafficResponse *t = cli->resp->traffic_ok;
  printf("%s:", name);
  for (size_t i = 0; i < t->n_traffic; i++)
    printf(" v%u=%u", (unsigned)t->traffic[i]->version,
           (unsigned)t->traffic[i]->weight);
  printf("\n");
  return 0;
}

/* ---- scale ------------------------------------------------------------- */

static void scale_help(FILE *out) {
  fprintf(out,
          "usage: impulse scale NAME [--min N] [--max N] [autoscaling] "
          "[options]\n"
          "\n"
          "Sets the instances kept running, the most instances and/or the\n"
          "autoscaling settings of NAME (at least one) and prints the\n"
          "resulting bounds.\n"
          "\n"
          "  --min N              instances kept running (0-%u)\n"
          "  --max N              most instances (1-%u)\n",
          IMP_INSTANCES_MAX, IMP_INSTANCES_MAX);
  autoscale_help(out);
}

static int cmd_scale(imp_cli_t *cli, int argc, char **argv) {
  static const struct option longopts[] = {
      SCALING_OPTIONS, IMP_CLI_COMMON_OPTIONS, {NULL, 0, NULL, 0}};
  Impulse__ScaleRequest scale = IMPULSE__SCALE_REQUEST__INIT;
  Impulse__FunctionConfig ascfg = IMPULSE__FUNCTION_CONFIG__INIT;
  scaling_t as = {0};
  char b[2][32];
  int opt, rc;

  while ((opt = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
    if ((rc = scaling_option(cli, opt, optarg, &as)) > 0) return rc;
    if (rc < 0 && (rc = imp_cli_common_option(cli, opt, argv)) >= 0) return rc;
  }
  if (argc - optind != 1)
    return imp_cli_usage_error(cli, "expected one function NAME");
  scale.has_min_instances = as.has_min;
  scale.min_instances = as.min;
  scale.has_max_instances = as.has_max;
  scale.max_instances = as.max;
  if (as.has_target || as.has_stz || as.policy) {
    ascfg.has_target_concurrency = as.has_target;
    ascfg.target_concurrency = as.target;
    ascfg.has_scale_to_zero_after_s = as.has_stz;
    ascfg.scale_to_zero_after_s = as.stz;
    ascfg.policy = (char *)as.policy;
    scale.config = &ascfg;
  }
  if (!as.has_min && !as.has_max && !scale.config)
    return imp_cli_usage_error(cli,
                               "give --min, --max or an autoscaling setting");
  if ((rc = scaling_check(cli, &as)) != 0) return rc;
  scale.name = argv[optind];
  imp_cli_what(cli, "scale %s", scale.name);
  if ((rc = imp_cli_call(cli, IMPULSE__ENVELOPE__BODY_SCALE, &scale,
                         IMPULSE__ENVELOPE__BODY_SCALE_OK)) != 0)
    return rc;
  const Impulse__FunctionConfig *c = cli->resp->scale_ok->config;
  printf("scaled %s: min %s, max %s\n", scale.name,
         fmt_config(c && c->has_min_instances, c ? c->min_instances : 0, "",
                    b[0], sizeof b[0]),
         fmt_config(c && c->has_max_instances, c ? c->max_instances : 0, "",
                    b[1], sizeof b[1]));
  return 0;
}

/* ---- the table entries --------------------------------------------------- */

/* clang-format off */
const imp_cli_cmd_t imp_cli_cmd_deploy =
    {"deploy", cmd_deploy, deploy_help, "deploy NAME FILE",
     "upload a function as a new version", NULL, 0};
const imp_cli_cmd_t imp_cli_cmd_invoke =
    {"invoke", cmd_invoke, invoke_help, "invoke NAME",
     "call a function, print its response", NULL, 0};
const imp_cli_cmd_t imp_cli_cmd_ls =
    {"ls", cmd_ls, ls_help, "ls", "list functions", NULL, 0};
const imp_cli_cmd_t imp_cli_cmd_describe =
    {"describe", cmd_describe, describe_help, "describe NAME",
     "show a function, its versions and instances", NULL, 0};
const imp_cli_cmd_t imp_cli_cmd_rm =
    {"rm", cmd_rm, rm_help, "rm NAME", "delete a function", NULL, 0};
const imp_cli_cmd_t imp_cli_cmd_upgrade =
    {"upgrade", cmd_upgrade, upgrade_help, "upgrade status|abort NAME",
     "follow or abort a rolling upgrade", NULL, 0};
const imp_cli_cmd_t imp_cli_cmd_traffic =
    {"traffic", cmd_traffic, traffic_help, "traffic NAME [vN=W ...]",
     "split calls between versions", NULL, 0};
const imp_cli_cmd_t imp_cli_cmd_scale =
    {"scale", cmd_scale, scale_help, "scale NAME",
     "set min/max instances and autoscaling", NULL, 0};
/* clang-format on */
