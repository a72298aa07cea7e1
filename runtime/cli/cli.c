/*
 * The impulse client commands: deploy, invoke, ls, describe, rm, scale,
 * info, top (runtime/top.c), publish and trigger. A thin layer over the
 * client library (include/impulse/client.h plus runtime/client_internal.h
 * for the control messages the public API does not wrap); everything here
 * is argument parsing and output formatting, except `publish`, which
 * produces to Kafka itself with librdkafka.
 *
 * Exit status: 0 success, 1 the server refused the call (or a local file
 * could not be read), 2 usage error, 3 the server could not be reached or
 * the connection failed.
 */
#include "cli/cli.h"

#include <ctype.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>

#include "cli/top.h"
#include "client/client_internal.h"
#include "core/limits.h"

#ifndef IMPULSE_VERSION
#define IMPULSE_VERSION "unknown"
#endif

#define IMP_CLI_EXIT_FAIL 1
#define IMP_CLI_EXIT_USAGE 2
#define IMP_CLI_EXIT_CONN 3
#define IMP_CLI_MAX_INPUT (256u << 20)  /* artifacts and payloads read here */
#define IMP_CLI_MAX_CONFIG_MS 86400000u /* timeouts and deadlines: one day */
#define IMP_CLI_MAX_CONCURRENCY 10000u
#define IMP_CLI_MAX_MEMORY_MB (1u << 20) /* 1 TiB */
#define IMP_CLI_MAX_INSTANCES 10000u
#define IMP_CLI_DEADLINE_SLACK_MS 10000u /* client wait beyond --deadline */

enum {
  OPT_ADDR = 256,
  OPT_TOKEN,
  OPT_CONCURRENCY,
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
  OPT_VALIDATE
};

/* The autoscaling flags of deploy and scale. */
typedef struct as_opts_s {
  int has_target, has_stz;
  double target;
  uint32_t stz;
  const char *policy;
} as_opts_t;

#define IMP_CLI_AUTOSCALE_OPTIONS                                            \
  {"target-concurrency", required_argument, NULL, OPT_TARGET_CONC},          \
      {"scale-to-zero-after", required_argument, NULL, OPT_SCALE_TO_ZERO}, { \
    "policy", required_argument, NULL, OPT_POLICY                            \
  }

#define IMP_CLI_AUTOSCALE_HELP                                              \
  "  --target-concurrency N  calls in flight per instance the autoscaler\n" \
  "                          aims at (x 0.7 utilisation; default: the\n"    \
  "                          function's concurrency)\n"                     \
  "  --scale-to-zero-after S idle seconds before the function goes to\n"    \
  "                          zero (its min) (default: --idle-timeout)\n"    \
  "  --policy P              reactive (KPA windows only) or predictive\n"   \
  "                          (also the forecast and the idle-time\n"        \
  "                          histogram; default)\n"

/* clang-format off */
#define IMP_CLI_COMMON_OPTIONS                   \
  {"addr", required_argument, NULL, OPT_ADDR},   \
  {"token", required_argument, NULL, OPT_TOKEN}, \
  {"help", no_argument, NULL, 'h'}

#define IMP_CLI_COMMON_HELP                                               \
  "  --addr HOST:PORT     server (default $IMPULSE_ADDR, else "           \
  IMP_CLIENT_DEFAULT_ADDR ")\n"                                          \
  "  --token TOKEN        admin token (default $IMPULSE_TOKEN)\n"         \
  "  -h, --help           show this help\n"
/* clang-format on */

typedef struct cmd_s cmd_t;
struct cmd_s {
  const char *name;
  int (*run)(const cmd_t *cmd, int argc, char **argv);
  const char *synopsis; /* "deploy NAME FILE" */
  const char *summary;  /* what it does, for the top-level usage */
  const char *help;     /* full usage of the command */
};

/* Server connection settings shared by every command. */
typedef struct conn_opts_s {
  const char *addr;  /* NULL: the library's default */
  const char *token; /* NULL: the library's default */
} conn_opts_t;

static const cmd_t *cmds(size_t *count);
static int is_help(const char *arg);

static void usage(FILE *out) {
  size_t n;
  const cmd_t *c = cmds(&n);
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
  for (size_t i = 0; i < n; i++)
    fprintf(out, "  %-18s %s\n", c[i].synopsis, c[i].summary);
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

static void cmd_usage(const cmd_t *cmd, FILE *out) {
  fputs(cmd->help, out);
  fputs(IMP_CLI_COMMON_HELP, out);
}

/* Reports a bad command line; returns the usage exit status. */
static int usage_error(const cmd_t *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static int usage_error(const cmd_t *cmd, const char *fmt, ...) {
  va_list ap;
  fprintf(stderr, "impulse %s: ", cmd->name);
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputs("\n\n", stderr);
  cmd_usage(cmd, stderr);
  return IMP_CLI_EXIT_USAGE;
}

/*
 * Handles the getopt_long results every command shares. Returns -1 when
 * `opt` was handled and parsing continues, else an exit status (0 after
 * --help).
 */
static int common_option(const cmd_t *cmd, int opt, char **argv,
                         conn_opts_t *conn) {
  switch (opt) {
    case OPT_ADDR: conn->addr = optarg; return -1;
    case OPT_TOKEN: conn->token = optarg; return -1;
    case 'h': cmd_usage(cmd, stdout); return 0;
    case ':':
      return usage_error(cmd, "option '%s' needs a value", argv[optind - 1]);
    case '?':
      if (optopt != 0) {
        char flag[3] = {'-', (char)optopt, '\0'};
        return usage_error(cmd, "unknown option '%s'", flag);
      }
      return usage_error(cmd, "unknown option '%s'", argv[optind - 1]);
    default: return usage_error(cmd, "unhandled option '%s'", argv[optind - 1]);
  }
}

/* Parses a decimal number in [lo, hi]; prints why not and returns -1. */
static int parse_u32(const cmd_t *cmd, const char *flag, const char *s,
                     uint32_t lo, uint32_t hi, uint32_t *out);

/* Handles an autoscaling flag: 1 when `opt` is one (0 parsed, -1 bad),
 * 0 when it is not. */
static int autoscale_option(const cmd_t *cmd, int opt, const char *arg,
                            as_opts_t *as, int *bad) {
  char *end = NULL;
  switch (opt) {
    case OPT_TARGET_CONC:
      as->target = strtod(arg, &end);
      if (end == arg || *end != '\0' || !(as->target >= 0.01) ||
          as->target > 10000) {
        fprintf(stderr,
                "impulse %s: --target-concurrency must be a number from 0.01 "
                "to 10000, not '%s'\n",
                cmd->name, arg);
        *bad = 1;
      }
      as->has_target = 1;
      return 1;
    case OPT_SCALE_TO_ZERO:
      *bad = parse_u32(cmd, "--scale-to-zero-after", arg, 0, 86400, &as->stz);
      as->has_stz = 1;
      return 1;
    case OPT_POLICY:
      if (strcmp(arg, "reactive") != 0 && strcmp(arg, "predictive") != 0) {
        fprintf(stderr,
                "impulse %s: --policy must be reactive or predictive, not "
                "'%s'\n",
                cmd->name, arg);
        *bad = 1;
      }
      as->policy = arg;
      return 1;
  }
  return 0;
}

static int parse_u32(const cmd_t *cmd, const char *flag, const char *s,
                     uint32_t lo, uint32_t hi, uint32_t *out) {
  char *end = NULL;
  unsigned long v = 0;
  errno = 0;
  if (isdigit((unsigned char)s[0])) v = strtoul(s, &end, 10);
  if (!isdigit((unsigned char)s[0]) || errno != 0 || *end != '\0' || v < lo ||
      v > hi) {
    fprintf(stderr,
            "impulse %s: %s must be a whole number from %lu to %lu, not '%s'\n",
            cmd->name, flag, (unsigned long)lo, (unsigned long)hi, s);
    return -1;
  }
  *out = (uint32_t)v;
  return 0;
}

/* Reads all of `fd` (up to `max` bytes) into a malloc'd buffer. */
static int read_fd_all(int fd, size_t max, char **out, size_t *outlen) {
  imp_buf_t buf = {0};
  int rc = 0;
  for (;;) {
    if (imp_buf_reserve(&buf, 65536) != 0) {
      rc = -ENOMEM;
      goto fail;
    }
    ssize_t n = read(fd, buf.data + buf.len, buf.cap - buf.len);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      rc = -errno;
      goto fail;
    }
    if (n == 0) break;
    buf.len += (size_t)n;
    if (buf.len > max) {
      rc = -EFBIG;
      goto fail;
    }
  }
  if (imp_buf_reserve(&buf, 1) != 0) { /* never hand out a NULL buffer */
    rc = -ENOMEM;
    goto fail;
  }
  *out = buf.data;
  *outlen = buf.len;
  return 0;
fail:
  imp_buf_free(&buf);
  return rc;
}

/* Reads FILE ("-" = stdin) for `cmd`; prints why not and returns -1. */
static int read_input(const cmd_t *cmd, const char *path, char **data,
                      size_t *len) {
  int rc;
  if (path == NULL || strcmp(path, "-") == 0) {
    if (isatty(STDIN_FILENO))
      fprintf(stderr, "impulse %s: reading from stdin (end with Ctrl-D)\n",
              cmd->name);
    rc = read_fd_all(STDIN_FILENO, IMP_CLI_MAX_INPUT, data, len);
    path = "stdin";
  } else {
    rc = imp_read_file(path, IMP_CLI_MAX_INPUT, data, len);
  }
  if (rc == 0) return 0;
  if (rc == -EFBIG)
    fprintf(stderr, "impulse %s: %s: larger than the %u MiB limit\n", cmd->name,
            path, IMP_CLI_MAX_INPUT >> 20);
  else
    fprintf(stderr, "impulse %s: %s: %s\n", cmd->name, path, imp_strerror(rc));
  return -1;
}

/*
 * Prints a failed call on `client` ("impulse: WHAT: STATUS: message") and
 * returns the exit status for it.
 */
static int report(impulse_client_t *client, int status, const char *what) {
  const char *msg = impulse_client_error(client);
  switch (status) {
    case IMPULSE_S_CONNECTION:
    case IMPULSE_S_PROTOCOL:
      /* The library's message names the address. */
      fprintf(stderr, "impulse: %s: %s\n", what, msg);
      return IMP_CLI_EXIT_CONN;
    case IMPULSE_S_INVALID:
      fprintf(stderr, "impulse: %s: %s\n", what, msg);
      return IMP_CLI_EXIT_USAGE;
    default:
      fprintf(stderr, "impulse: %s: %s: %s\n", what,
              impulse_status_name(status), msg);
      if (status == IMPULSE_S_UNAUTHENTICATED)
        fprintf(stderr,
                "impulse: control calls need the admin token: pass --token or "
                "set IMPULSE_TOKEN (the server wrote it to "
                "STATE_DIR/admin.token)\n");
      return IMP_CLI_EXIT_FAIL;
  }
}

/* Connects for `what`; on failure prints why and returns the exit status
 * (positive), else 0 with *out set. */
static int connect_or_report(const conn_opts_t *conn, const char *what,
                             impulse_client_t **out) {
  impulse_client_t *client = NULL;
  int rc = impulse_client_connect(conn->addr, conn->token, &client);
  if (rc == 0) {
    *out = client;
    return 0;
  }
  int status = report(client, rc, what);
  impulse_client_close(client);
  return status;
}

/* "2024-05-01T12:00:00Z", or "-" when unknown. */
static const char *fmt_time(uint64_t ms, char *buf, size_t len) {
  struct tm tm;
  time_t t = (time_t)(ms / 1000);
  if (ms == 0 || (uint64_t)t != ms / 1000 || gmtime_r(&t, &tm) == NULL ||
      strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
    snprintf(buf, len, "-");
  return buf;
}

static const char *fmt_duration(uint64_t ms, char *buf, size_t len) {
  uint64_t s = ms / 1000;
  unsigned long long d = s / 86400, h = s / 3600 % 24, m = s / 60 % 60;
  if (d > 0)
    snprintf(buf, len, "%llud %lluh %llum %llus", d, h, m,
             (unsigned long long)(s % 60));
  else if (h > 0)
    snprintf(buf, len, "%lluh %llum %llus", h, m, (unsigned long long)(s % 60));
  else if (m > 0)
    snprintf(buf, len, "%llum %llus", m, (unsigned long long)(s % 60));
  else
    snprintf(buf, len, "%.1fs", (double)ms / 1000.0);
  return buf;
}

static const char *str_or(const char *s, const char *dflt) {
  return s != NULL && *s ? s : dflt;
}

/* ---- tables ------------------------------------------------------------ */

/* A text table printed with columns padded to their widest cell. */
typedef struct table_s {
  size_t ncols, nrows, cap;
  char **cells; /* nrows * ncols strings, owned */
} table_t;

static int table_row(table_t *table, const char *const *cells) {
  if (table->nrows == table->cap) {
    size_t cap = table->cap ? table->cap * 2 : 16;
    char **p = realloc(table->cells, cap * table->ncols * sizeof *p);
    if (p == NULL) return -ENOMEM;
    table->cells = p;
    table->cap = cap;
  }
  char **row = table->cells + table->nrows * table->ncols;
  for (size_t i = 0; i < table->ncols; i++) {
    row[i] = strdup(cells[i] ? cells[i] : "");
    if (row[i] == NULL) {
      while (i-- > 0) free(row[i]);
      return -ENOMEM;
    }
  }
  table->nrows++;
  return 0;
}

static void table_print(const table_t *table, FILE *out) {
  size_t width[16] = {0};
  for (size_t r = 0; r < table->nrows; r++)
    for (size_t c = 0; c < table->ncols && c < IMP_ARRAY_SIZE(width); c++) {
      size_t n = strlen(table->cells[r * table->ncols + c]);
      if (n > width[c]) width[c] = n;
    }
  for (size_t r = 0; r < table->nrows; r++) {
    for (size_t c = 0; c < table->ncols; c++) {
      const char *cell = table->cells[r * table->ncols + c];
      if (c + 1 == table->ncols)
        fprintf(out, "%s\n", cell);
      else
        fprintf(out, "%-*s  ", c < IMP_ARRAY_SIZE(width) ? (int)width[c] : 0,
                cell);
    }
  }
}

static void table_free(table_t *table) {
  for (size_t i = 0; i < table->nrows * table->ncols; i++)
    free(table->cells[i]);
  free(table->cells);
  table->cells = NULL;
  table->nrows = table->cap = 0;
}

/* ---- deploy ------------------------------------------------------------ */

static int run_deploy(const cmd_t *cmd, int argc, char **argv) {
  static const struct option longopts[] = {
      {"concurrency", required_argument, NULL, OPT_CONCURRENCY},
      {"timeout", required_argument, NULL, OPT_TIMEOUT},
      {"memory", required_argument, NULL, OPT_MEMORY},
      {"min", required_argument, NULL, OPT_MIN},
      {"max", required_argument, NULL, OPT_MAX},
      IMP_CLI_AUTOSCALE_OPTIONS,
      {"no-promote", no_argument, NULL, OPT_NO_PROMOTE},
      {"max-step", required_argument, NULL, OPT_MAX_STEP},
      {"validate", required_argument, NULL, OPT_VALIDATE},
      IMP_CLI_COMMON_OPTIONS,
      {NULL, 0, NULL, 0}};
  conn_opts_t conn = {NULL, NULL};
  as_opts_t as = {0};
  int no_promote = 0;
  impulse_deploy_opts_t opts;
  impulse_client_t *client = NULL;
  char *artifact = NULL, what[300];
  size_t len = 0;
  int opt, rc;
  memset(&opts, 0, sizeof opts);

  while ((opt = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
    int bad = 0;
    switch (opt) {
      case OPT_CONCURRENCY:
        bad = parse_u32(cmd, "--concurrency", optarg, 1,
                        IMP_CLI_MAX_CONCURRENCY, &opts.concurrency);
        break;
      case OPT_TIMEOUT:
        bad = parse_u32(cmd, "--timeout", optarg, 1, IMP_CLI_MAX_CONFIG_MS,
                        &opts.timeout_ms);
        break;
      case OPT_MEMORY:
        bad = parse_u32(cmd, "--memory", optarg, 1, IMP_CLI_MAX_MEMORY_MB,
                        &opts.memory_mb);
        break;
      case OPT_MIN:
        bad = parse_u32(cmd, "--min", optarg, 0, IMP_CLI_MAX_INSTANCES,
                        &opts.min_instances);
        opts.has_min = 1;
        break;
      case OPT_MAX:
        bad = parse_u32(cmd, "--max", optarg, 0, IMP_CLI_MAX_INSTANCES,
                        &opts.max_instances);
        opts.has_max = 1;
        break;
      case OPT_NO_PROMOTE: no_promote = 1; break;
      case OPT_MAX_STEP:
        bad = parse_u32(cmd, "--max-step", optarg, 1, 100, &opts.max_step_pct);
        break;
      case OPT_VALIDATE:
        if (strcmp(optarg, "status") != 0 && strcmp(optarg, "exact") != 0) {
          fprintf(stderr,
                  "impulse deploy: --validate must be status or "
                  "exact, not '%s'\n",
                  optarg);
          bad = 1;
        }
        opts.validate = optarg;
        break;
      default:
        if (autoscale_option(cmd, opt, optarg, &as, &bad)) break;
        if ((rc = common_option(cmd, opt, argv, &conn)) >= 0) return rc;
    }
    if (bad) return IMP_CLI_EXIT_USAGE;
  }
  if (as.has_target) opts.target_concurrency = as.target;
  opts.has_scale_to_zero = as.has_stz;
  opts.scale_to_zero_after_s = as.stz;
  opts.policy = as.policy;
  opts.no_promote = no_promote;
  if (argc - optind != 2) return usage_error(cmd, "expected NAME and FILE");
  if (opts.has_min && opts.has_max && opts.min_instances > opts.max_instances) {
    fprintf(stderr, "impulse deploy: --min (%u) is above --max (%u)\n",
            (unsigned)opts.min_instances, (unsigned)opts.max_instances);
    return IMP_CLI_EXIT_USAGE;
  }
  const char *name = argv[optind], *path = argv[optind + 1];
  snprintf(what, sizeof what, "deploy %s", name);
  if (read_input(cmd, path, &artifact, &len) != 0) return IMP_CLI_EXIT_FAIL;

  rc = connect_or_report(&conn, what, &client);
  if (rc != 0) goto out;
  uint32_t version = 0;
  int status = impulse_deploy(client, name, artifact, len, &opts, &version);
  if (status != 0) {
    rc = report(client, status, what);
    goto out;
  }
  printf("deployed %s version %u\n", name, (unsigned)version);
  rc = 0;
out:
  impulse_client_close(client);
  free(artifact);
  return rc;
}

/* ---- invoke ------------------------------------------------------------ */

static int run_invoke(const cmd_t *cmd, int argc, char **argv) {
  static const struct option longopts[] = {
      {"data", required_argument, NULL, 'd'},
      {"file", required_argument, NULL, 'f'},
      {"header", required_argument, NULL, 'H'},
      {"deadline", required_argument, NULL, OPT_DEADLINE},
      {"idempotency-key", required_argument, NULL, OPT_IDEMPOTENCY},
      IMP_CLI_COMMON_OPTIONS,
      {NULL, 0, NULL, 0}};
  conn_opts_t conn = {NULL, NULL};
  impulse_invoke_opts_t opts;
  impulse_client_t *client = NULL;
  impulse_response_t *resp = NULL;
  impulse_header_t *headers = NULL;
  size_t nheaders = 0;
  const char *data = NULL, *file = NULL;
  char *input = NULL, what[300];
  size_t len = 0;
  int opt, rc;
  memset(&opts, 0, sizeof opts);

  while ((opt = getopt_long(argc, argv, ":d:f:H:h", longopts, NULL)) != -1) {
    switch (opt) {
      case 'd': data = optarg; break;
      case 'f': file = optarg; break;
      case 'H': {
        char *eq = strchr(optarg, '=');
        if (eq == NULL || eq == optarg) {
          rc = usage_error(cmd, "header '%s' is not NAME=VALUE", optarg);
          goto out;
        }
        impulse_header_t *p = realloc(headers, (nheaders + 1) * sizeof *p);
        if (p == NULL) {
          fprintf(stderr, "impulse invoke: out of memory\n");
          rc = IMP_CLI_EXIT_FAIL;
          goto out;
        }
        headers = p;
        *eq = '\0'; /* optarg points into argv, which we may modify */
        headers[nheaders].name = optarg;
        headers[nheaders].value = eq + 1;
        headers[nheaders].len = strlen(eq + 1);
        nheaders++;
        break;
      }
      case OPT_DEADLINE:
        if (parse_u32(cmd, "--deadline", optarg, 1, IMP_CLI_MAX_CONFIG_MS,
                      &opts.deadline_ms) != 0) {
          rc = IMP_CLI_EXIT_USAGE;
          goto out;
        }
        break;
      case OPT_IDEMPOTENCY:
        if (*optarg == '\0') {
          rc = usage_error(cmd, "--idempotency-key must not be empty");
          goto out;
        }
        opts.idempotency_key = optarg;
        break;
      default:
        if ((rc = common_option(cmd, opt, argv, &conn)) >= 0) goto out;
    }
  }
  if (argc - optind != 1) {
    rc = usage_error(cmd, "expected one function NAME");
    goto out;
  }
  if (data != NULL && file != NULL) {
    rc = usage_error(cmd, "-d and -f cannot be used together");
    goto out;
  }
  const char *name = argv[optind];
  snprintf(what, sizeof what, "invoke %s", name);
  const void *payload = data;
  if (data != NULL) {
    len = strlen(data);
  } else {
    if (read_input(cmd, file, &input, &len) != 0) {
      rc = IMP_CLI_EXIT_FAIL;
      goto out;
    }
    payload = input;
  }
  opts.headers = headers;
  opts.header_count = nheaders;

  rc = connect_or_report(&conn, what, &client);
  if (rc != 0) goto out;
  /* The server answers by the deadline; do not wait forever if it does not. */
  if (opts.deadline_ms > 0)
    impulse_client_set_timeout(client,
                               opts.deadline_ms + IMP_CLI_DEADLINE_SLACK_MS);
  int status = impulse_invoke(client, name, payload, len, &opts, &resp);
  if (status != 0) {
    rc = report(client, status, what);
    goto out;
  }
  if (resp->status != IMPULSE_S_OK) {
    fprintf(stderr, "impulse: %s: %s: %s\n", what,
            impulse_status_name(resp->status), str_or(resp->error, "failed"));
    rc = IMP_CLI_EXIT_FAIL;
    goto out;
  }
  /* The payload exactly as returned: no newline added. */
  if ((resp->len > 0 &&
       fwrite(resp->payload, 1, resp->len, stdout) != resp->len) ||
      fflush(stdout) != 0) {
    fprintf(stderr, "impulse: %s: writing the response: %s\n", what,
            strerror(errno));
    rc = IMP_CLI_EXIT_FAIL;
    goto out;
  }
  rc = 0;
out:
  impulse_response_free(resp);
  impulse_client_close(client);
  free(headers);
  free(input);
  return rc;
}

/* ---- ls ---------------------------------------------------------------- */

static int by_function_name(const void *a, const void *b) {
  const Impulse__FunctionInfo *x = *(Impulse__FunctionInfo *const *)a;
  const Impulse__FunctionInfo *y = *(Impulse__FunctionInfo *const *)b;
  return strcmp(x->name, y->name);
}

/* Parses the options of a command that takes `npos` positional arguments
 * and only the common options. Returns -1 to go on, else an exit status. */
static int simple_options(const cmd_t *cmd, int argc, char **argv, int npos,
                          const char *expected, conn_opts_t *conn) {
  static const struct option longopts[] = {IMP_CLI_COMMON_OPTIONS,
                                           {NULL, 0, NULL, 0}};
  int opt, rc;
  while ((opt = getopt_long(argc, argv, ":h", longopts, NULL)) != -1)
    if ((rc = common_option(cmd, opt, argv, conn)) >= 0) return rc;
  if (argc - optind != npos) return usage_error(cmd, "%s", expected);
  return -1;
}

static int run_ls(const cmd_t *cmd, int argc, char **argv) {
  conn_opts_t conn = {NULL, NULL};
  impulse_client_t *client = NULL;
  Impulse__Envelope req = IMPULSE__ENVELOPE__INIT, *resp = NULL;
  Impulse__ListRequest list = IMPULSE__LIST_REQUEST__INIT;
  table_t table = {7, 0, 0, NULL};
  int rc = simple_options(cmd, argc, argv, 0, "takes no arguments", &conn);
  if (rc >= 0) return rc;

  rc = connect_or_report(&conn, "ls", &client);
  if (rc != 0) goto out;
  req.body_case = IMPULSE__ENVELOPE__BODY_LIST;
  req.list = &list;
  int status = imp_client_call_expect(client, &req,
                                      IMPULSE__ENVELOPE__BODY_LIST_OK, &resp);
  if (status != 0) {
    rc = report(client, status, "ls");
    goto out;
  }
  Impulse__ListResponse *l = resp->list_ok;
  if (l->n_functions == 0) {
    printf("no functions\n");
    goto out;
  }
  /* The pointer array is ours: sort it in place. */
  qsort(l->functions, l->n_functions, sizeof *l->functions, by_function_name);
  static const char *const head[] = {"NAME",  "VERSION",   "INSTANCES",
                                     "READY", "IN-FLIGHT", "INVOCATIONS",
                                     "ERRORS"};
  if (table_row(&table, head) != 0) goto nomem;
  for (size_t i = 0; i < l->n_functions; i++) {
    const Impulse__FunctionInfo *f = l->functions[i];
    char v[5][24];
    snprintf(v[0], sizeof v[0], "%u", (unsigned)f->version);
    snprintf(v[1], sizeof v[1], "%u", (unsigned)f->instances);
    snprintf(v[2], sizeof v[2], "%u", (unsigned)f->ready);
    snprintf(v[3], sizeof v[3], "%u", (unsigned)f->in_flight);
    snprintf(v[4], sizeof v[4], "%llu", (unsigned long long)f->invocations);
    char errors[24];
    snprintf(errors, sizeof errors, "%llu", (unsigned long long)f->errors);
    const char *row[] = {f->name, v[0], v[1], v[2], v[3], v[4], errors};
    if (table_row(&table, row) != 0) goto nomem;
  }
  table_print(&table, stdout);
  goto out;
nomem:
  fprintf(stderr, "impulse: ls: out of memory\n");
  rc = IMP_CLI_EXIT_FAIL;
out:
  table_free(&table);
  if (resp != NULL) impulse__envelope__free_unpacked(resp, NULL);
  impulse_client_close(client);
  return rc;
}

/* ---- describe ---------------------------------------------------------- */

static int by_version(const void *a, const void *b) {
  const Impulse__VersionRecord *x = *(Impulse__VersionRecord *const *)a;
  const Impulse__VersionRecord *y = *(Impulse__VersionRecord *const *)b;
  return x->version < y->version ? -1 : x->version > y->version;
}

static int by_instance_id(const void *a, const void *b) {
  const Impulse__InstanceInfo *x = *(Impulse__InstanceInfo *const *)a;
  const Impulse__InstanceInfo *y = *(Impulse__InstanceInfo *const *)b;
  return x->id < y->id ? -1 : x->id > y->id;
}

/* A config value, or "default" when the server did not send one. */
static const char *fmt_config(int has, uint32_t v, const char *unit, char *buf,
                              size_t len) {
  if (!has) return "default";
  snprintf(buf, len, "%u%s", (unsigned)v, unit);
  return buf;
}

static void print_function(const Impulse__FunctionInfo *f) {
  const Impulse__FunctionConfig *c = f->config;
  char b[5][32], t[2][40];
  printf("name:           %s\n", f->name);
  printf("version:        %u\n", (unsigned)f->version);
  printf("concurrency:    %s\n",
         fmt_config(c && c->has_concurrency, c ? c->concurrency : 0, "", b[0],
                    sizeof b[0]));
  printf("timeout:        %s\n",
         fmt_config(c && c->has_timeout_ms, c ? c->timeout_ms : 0, " ms", b[1],
                    sizeof b[1]));
  printf("memory:         %s\n",
         fmt_config(c && c->has_memory_mb, c ? c->memory_mb : 0, " MiB", b[2],
                    sizeof b[2]));
  printf("min instances:  %s\n",
         fmt_config(c && c->has_min_instances, c ? c->min_instances : 0, "",
                    b[3], sizeof b[3]));
  printf("max instances:  %s\n",
         fmt_config(c && c->has_max_instances, c ? c->max_instances : 0, "",
                    b[4], sizeof b[4]));
  printf("sha256:         %s\n", str_or(f->sha256, "-"));
  printf("size:           %llu bytes\n", (unsigned long long)f->artifact_size);
  printf("created:        %s\n", fmt_time(f->created_ms, t[0], sizeof t[0]));
  printf("updated:        %s\n", fmt_time(f->updated_ms, t[1], sizeof t[1]));
  printf("instances:      %u (%u ready)\n", (unsigned)f->instances,
         (unsigned)f->ready);
  printf("queued:         %u\n", (unsigned)f->queued);
  printf("in flight:      %u\n", (unsigned)f->in_flight);
  printf("invocations:    %llu\n", (unsigned long long)f->invocations);
  printf("errors:         %llu\n", (unsigned long long)f->errors);
  printf("cold starts:    %llu\n", (unsigned long long)f->cold_starts);
  if (f->upgrade && f->upgrade->record) {
    const Impulse__UpgradeInfo *u = f->upgrade;
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
  if (f->n_traffic > 0) {
    printf("traffic:       ");
    for (size_t i = 0; i < f->n_traffic; i++)
      printf(" v%u=%u", (unsigned)f->traffic[i]->version,
             (unsigned)f->traffic[i]->weight);
    printf("\n");
  }
  printf("warm starts:    %llu (instances started from the warm pool)\n",
         (unsigned long long)f->warm_starts);
  if (c && c->policy)
    printf(
        "autoscaling:    %s, target concurrency %.2f, scale to zero after "
        "%u s\n",
        c->policy, c->has_target_concurrency ? c->target_concurrency : 0,
        c->has_scale_to_zero_after_s ? (unsigned)c->scale_to_zero_after_s : 0);
  if (f->has_desired) printf("desired:        %u\n", (unsigned)f->desired);
  if (f->has_forecast_per_min)
    printf("forecast:       %.1f calls/min, %u instances\n",
           f->forecast_per_min, (unsigned)f->forecast_instances);
  if (f->has_panic) printf("panic:          %s\n", f->panic ? "yes" : "no");
  if (f->scale_reason) printf("reason:         %s\n", f->scale_reason);
}

static int run_describe(const cmd_t *cmd, int argc, char **argv) {
  conn_opts_t conn = {NULL, NULL};
  impulse_client_t *client = NULL;
  Impulse__Envelope req = IMPULSE__ENVELOPE__INIT, *resp = NULL;
  Impulse__DescribeRequest describe = IMPULSE__DESCRIBE_REQUEST__INIT;
  table_t versions = {4, 0, 0, NULL}, instances = {6, 0, 0, NULL};
  char what[300];
  int rc =
      simple_options(cmd, argc, argv, 1, "expected one function NAME", &conn);
  if (rc >= 0) return rc;
  const char *name = argv[optind];
  snprintf(what, sizeof what, "describe %s", name);

  rc = connect_or_report(&conn, what, &client);
  if (rc != 0) goto out;
  describe.name = (char *)name;
  req.body_case = IMPULSE__ENVELOPE__BODY_DESCRIBE;
  req.describe = &describe;
  int status = imp_client_call_expect(
      client, &req, IMPULSE__ENVELOPE__BODY_DESCRIBE_OK, &resp);
  if (status != 0) {
    rc = report(client, status, what);
    goto out;
  }
  Impulse__DescribeResponse *d = resp->describe_ok;
  print_function(d->function);

  printf("\n");
  if (d->n_versions == 0) {
    printf("no versions\n");
  } else {
    static const char *const head[] = {"VERSION", "SHA256", "SIZE", "CREATED"};
    qsort(d->versions, d->n_versions, sizeof *d->versions, by_version);
    if (table_row(&versions, head) != 0) goto nomem;
    for (size_t i = 0; i < d->n_versions; i++) {
      const Impulse__VersionRecord *v = d->versions[i];
      char ver[16], sha[13], size[24], created[40];
      snprintf(ver, sizeof ver, "%u", (unsigned)v->version);
      snprintf(sha, sizeof sha, "%.12s", v->sha256);
      snprintf(size, sizeof size, "%llu", (unsigned long long)v->size);
      const char *row[] = {ver, sha, size,
                           fmt_time(v->created_ms, created, sizeof created)};
      if (table_row(&versions, row) != 0) goto nomem;
    }
    table_print(&versions, stdout);
  }

  printf("\n");
  if (d->n_instances == 0) {
    printf("no instances\n");
  } else {
    static const char *const head[] = {
        "ID", "PID", "VERSION", "STATE", "OUTSTANDING/CONCURRENCY", "SERVED"};
    qsort(d->instances, d->n_instances, sizeof *d->instances, by_instance_id);
    if (table_row(&instances, head) != 0) goto nomem;
    for (size_t i = 0; i < d->n_instances; i++) {
      const Impulse__InstanceInfo *in = d->instances[i];
      char id[24], pid[16], ver[16], load[32], served[24];
      snprintf(id, sizeof id, "%llu", (unsigned long long)in->id);
      snprintf(pid, sizeof pid, "%d", (int)in->pid);
      snprintf(ver, sizeof ver, "%u", (unsigned)in->version);
      snprintf(load, sizeof load, "%u/%u", (unsigned)in->outstanding,
               (unsigned)in->concurrency);
      snprintf(served, sizeof served, "%llu", (unsigned long long)in->served);
      const char *row[] = {id, pid, ver, str_or(in->state, "-"), load, served};
      if (table_row(&instances, row) != 0) goto nomem;
    }
    table_print(&instances, stdout);
  }
  goto out;
nomem:
  fprintf(stderr, "impulse: %s: out of memory\n", what);
  rc = IMP_CLI_EXIT_FAIL;
out:
  table_free(&versions);
  table_free(&instances);
  if (resp != NULL) impulse__envelope__free_unpacked(resp, NULL);
  impulse_client_close(client);
  return rc;
}

/* ---- rm ---------------------------------------------------------------- */

static int run_rm(const cmd_t *cmd, int argc, char **argv) {
  conn_opts_t conn = {NULL, NULL};
  impulse_client_t *client = NULL;
  char what[300];
  int rc =
      simple_options(cmd, argc, argv, 1, "expected one function NAME", &conn);
  if (rc >= 0) return rc;
  const char *name = argv[optind];
  snprintf(what, sizeof what, "rm %s", name);

  rc = connect_or_report(&conn, what, &client);
  if (rc != 0) goto out;
  int status = impulse_delete(client, name);
  if (status != 0) {
    rc = report(client, status, what);
    goto out;
  }
  printf("deleted %s\n", name);
out:
  impulse_client_close(client);
  return rc;
}

/* ---- scale ------------------------------------------------------------- */

/* ---- upgrade ----------------------------------------------------------- */

static int run_upgrade(const cmd_t *cmd, int argc, char **argv) {
  conn_opts_t conn = {NULL, NULL};
  impulse_client_t *client = NULL;
  Impulse__Envelope req = IMPULSE__ENVELOPE__INIT, *resp = NULL;
  Impulse__UpgradeRequest ur = IMPULSE__UPGRADE_REQUEST__INIT;
  char what[300];
  int rc = simple_options(cmd, argc, argv, 2,
                          "expected `status NAME` or `abort NAME`", &conn);
  if (rc >= 0) return rc;
  const char *verb = argv[optind], *name = argv[optind + 1];
  if (strcmp(verb, "status") != 0 && strcmp(verb, "abort") != 0)
    return usage_error(cmd, "unknown subcommand '%s': status or abort", verb);
  snprintf(what, sizeof what, "upgrade %s %s", verb, name);
  rc = connect_or_report(&conn, what, &client);
  if (rc != 0) goto out;
  ur.name = (char *)name;
  if (strcmp(verb, "abort") == 0) {
    ur.has_abort = 1;
    ur.abort = 1;
  }
  req.body_case = IMPULSE__ENVELOPE__BODY_UPGRADE;
  req.upgrade = &ur;
  int status = imp_client_call_expect(
      client, &req, IMPULSE__ENVELOPE__BODY_UPGRADE_OK, &resp);
  if (status != 0) {
    rc = report(client, status, what);
    goto out;
  }
  const Impulse__UpgradeInfo *u = resp->upgrade_ok->upgrade;
  if (u == NULL || u->record == NULL) {
    printf("%s: no upgrade\n", name);
    goto out;
  }
  const Impulse__UpgradeRecord *r = u->record;
  printf("function:       %s\n", name);
  printf("upgrade:        v%u -> v%u\n", (unsigned)r->from_version,
         (unsigned)r->to_version);
  printf("state:          %s\n", r->state);
  printf("max step:       %u%%\n", (unsigned)r->max_step_pct);
  printf("validate:       %s\n", str_or(r->validate, "status"));
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
out:
  if (resp != NULL) impulse__envelope__free_unpacked(resp, NULL);
  impulse_client_close(client);
  return rc;
}

/* ---- traffic ----------------------------------------------------------- */

static int run_traffic(const cmd_t *cmd, int argc, char **argv) {
  static const struct option longopts[] = {IMP_CLI_COMMON_OPTIONS,
                                           {NULL, 0, NULL, 0}};
  conn_opts_t conn = {NULL, NULL};
  impulse_client_t *client = NULL;
  Impulse__Envelope req = IMPULSE__ENVELOPE__INIT, *resp = NULL;
  Impulse__TrafficRequest tr = IMPULSE__TRAFFIC_REQUEST__INIT;
  Impulse__TrafficWeight w[8], *wp[8];
  char what[300];
  int opt, rc;
  while ((opt = getopt_long(argc, argv, ":h", longopts, NULL)) != -1)
    if ((rc = common_option(cmd, opt, argv, &conn)) >= 0) return rc;
  if (argc - optind < 1) return usage_error(cmd, "expected NAME [vN=W ...]");
  const char *name = argv[optind];
  size_t n = (size_t)(argc - optind - 1);
  if (n > 8) return usage_error(cmd, "at most 8 versions may share traffic");
  for (size_t i = 0; i < n; i++) {
    const char *a = argv[optind + 1 + i];
    unsigned v, wt;
    char extra;
    if (sscanf(a, "v%u=%u%c", &v, &wt, &extra) != 2 || v == 0 || wt > 100)
      return usage_error(cmd, "'%s' is not vN=W (version N, weight 0-100)", a);
    impulse__traffic_weight__init(&w[i]);
    w[i].version = v;
    w[i].weight = wt;
    wp[i] = &w[i];
  }
  snprintf(what, sizeof what, "traffic %s", name);
  rc = connect_or_report(&conn, what, &client);
  if (rc != 0) goto out;
  tr.name = (char *)name;
  tr.n_weights = n;
  tr.weights = n ? wp : NULL;
  req.body_case = IMPULSE__ENVELOPE__BODY_TRAFFIC;
  req.traffic = &tr;
  int status = imp_client_call_expect(
      client, &req, IMPULSE__ENVELOPE__BODY_TRAFFIC_OK, &resp);
  if (status != 0) {
    rc = report(client, status, what);
    goto out;
  }
  printf("%s:", name);
  for (size_t i = 0; i < resp->traffic_ok->n_traffic; i++)
    printf(" v%u=%u", (unsigned)resp->traffic_ok->traffic[i]->version,
           (unsigned)resp->traffic_ok->traffic[i]->weight);
  printf("\n");
out:
  if (resp != NULL) impulse__envelope__free_unpacked(resp, NULL);
  impulse_client_close(client);
  return rc;
}

static int run_scale(const cmd_t *cmd, int argc, char **argv) {
  static const struct option longopts[] = {
      {"min", required_argument, NULL, OPT_MIN},
      {"max", required_argument, NULL, OPT_MAX},
      IMP_CLI_AUTOSCALE_OPTIONS,
      IMP_CLI_COMMON_OPTIONS,
      {NULL, 0, NULL, 0}};
  conn_opts_t conn = {NULL, NULL};
  impulse_client_t *client = NULL;
  Impulse__Envelope req = IMPULSE__ENVELOPE__INIT, *resp = NULL;
  Impulse__ScaleRequest scale = IMPULSE__SCALE_REQUEST__INIT;
  Impulse__FunctionConfig ascfg = IMPULSE__FUNCTION_CONFIG__INIT;
  as_opts_t as = {0};
  int bad = 0;
  char what[300], b[2][32];
  int opt, rc;

  while ((opt = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
    switch (opt) {
      case OPT_MIN:
        if (parse_u32(cmd, "--min", optarg, 0, IMP_CLI_MAX_INSTANCES,
                      &scale.min_instances) != 0)
          return IMP_CLI_EXIT_USAGE;
        scale.has_min_instances = 1;
        break;
      case OPT_MAX:
        if (parse_u32(cmd, "--max", optarg, 0, IMP_CLI_MAX_INSTANCES,
                      &scale.max_instances) != 0)
          return IMP_CLI_EXIT_USAGE;
        scale.has_max_instances = 1;
        break;
      default:
        if (autoscale_option(cmd, opt, optarg, &as, &bad)) {
          if (bad) return IMP_CLI_EXIT_USAGE;
          break;
        }
        if ((rc = common_option(cmd, opt, argv, &conn)) >= 0) return rc;
    }
  }
  if (argc - optind != 1) return usage_error(cmd, "expected one function NAME");
  if (as.has_target || as.has_stz || as.policy) {
    ascfg.has_target_concurrency = as.has_target;
    ascfg.target_concurrency = as.target;
    ascfg.has_scale_to_zero_after_s = as.has_stz;
    ascfg.scale_to_zero_after_s = as.stz;
    ascfg.policy = (char *)as.policy;
    scale.config = &ascfg;
  }
  if (!scale.has_min_instances && !scale.has_max_instances && !scale.config)
    return usage_error(cmd, "give --min, --max or an autoscaling setting");
  if (scale.has_min_instances && scale.has_max_instances &&
      scale.min_instances > scale.max_instances) {
    fprintf(stderr, "impulse scale: --min (%u) is above --max (%u)\n",
            (unsigned)scale.min_instances, (unsigned)scale.max_instances);
    return IMP_CLI_EXIT_USAGE;
  }
  const char *name = argv[optind];
  snprintf(what, sizeof what, "scale %s", name);

  rc = connect_or_report(&conn, what, &client);
  if (rc != 0) goto out;
  scale.name = (char *)name;
  req.body_case = IMPULSE__ENVELOPE__BODY_SCALE;
  req.scale = &scale;
  int status = imp_client_call_expect(client, &req,
                                      IMPULSE__ENVELOPE__BODY_SCALE_OK, &resp);
  if (status != 0) {
    rc = report(client, status, what);
    goto out;
  }
  const Impulse__FunctionConfig *c = resp->scale_ok->config;
  printf("scaled %s: min %s, max %s\n", name,
         fmt_config(c && c->has_min_instances, c ? c->min_instances : 0, "",
                    b[0], sizeof b[0]),
         fmt_config(c && c->has_max_instances, c ? c->max_instances : 0, "",
                    b[1], sizeof b[1]));
out:
  if (resp != NULL) impulse__envelope__free_unpacked(resp, NULL);
  impulse_client_close(client);
  return rc;
}

/* ---- info -------------------------------------------------------------- */

static int run_info(const cmd_t *cmd, int argc, char **argv) {
  conn_opts_t conn = {NULL, NULL};
  impulse_client_t *client = NULL;
  Impulse__Envelope req = IMPULSE__ENVELOPE__INIT, *resp = NULL;
  Impulse__ServerInfoRequest info = IMPULSE__SERVER_INFO_REQUEST__INIT;
  char up[64];
  int rc = simple_options(cmd, argc, argv, 0, "takes no arguments", &conn);
  if (rc >= 0) return rc;

  rc = connect_or_report(&conn, "info", &client);
  if (rc != 0) goto out;
  req.body_case = IMPULSE__ENVELOPE__BODY_SERVER_INFO;
  req.server_info = &info;
  int status = imp_client_call_expect(
      client, &req, IMPULSE__ENVELOPE__BODY_SERVER_INFO_OK, &resp);
  if (status != 0) {
    rc = report(client, status, "info");
    goto out;
  }
  const Impulse__ServerInfoResponse *s = resp->server_info_ok;
  printf("address:          %s\n", imp_client_addr(client));
  printf("server:           %s\n", str_or(imp_client_server(client), "-"));
  printf("version:          %s\n", str_or(s->version, "-"));
  printf("ready:            %s\n", s->ready ? "yes" : "no");
  printf("uptime:           %s\n", fmt_duration(s->uptime_ms, up, sizeof up));
  printf("functions:        %u\n", (unsigned)s->functions);
  printf("instances:        %u\n", (unsigned)s->instances);
  printf("warm pool:        %u\n", (unsigned)s->warm_pool);
  printf("max frame:        %u bytes\n", (unsigned)s->max_frame);
  printf("kafka:            %s\n", str_or(s->kafka_bootstrap, "-"));
  printf("abi version:      %u\n", (unsigned)s->abi_version);
  printf("invoke token:     %s\n",
         s->invoke_needs_token ? "required" : "not required");
  printf("admin:            %s\n", imp_client_is_admin(client) ? "yes" : "no");
out:
  if (resp != NULL) impulse__envelope__free_unpacked(resp, NULL);
  impulse_client_close(client);
  return rc;
}

/* ---- publish ----------------------------------------------------------- */

#define IMP_CLI_PUBLISH_WINDOW 1024u   /* Publish RPCs in flight */
#define IMP_CLI_PUBLISH_SHOW_ERRORS 10 /* failures printed one by one */
#define IMP_CLI_MAX_PARTITIONS 10000u
#define IMP_CLI_MAX_KAFKA_OPTS 64

/* Where the events of `impulse publish` come from: -d, or lines. */
typedef struct event_src_s {
  const char *data; /* -d DATA: the one event */
  int data_done;
  FILE *in;   /* else: one event per line */
  char *line; /* getline buffer, owned */
  size_t cap;
  const char *delim; /* -K: key and value split at its first occurrence */
  size_t delim_len;
  const char *key; /* -k: key of every event (NULL = none) */
  uint64_t lineno;
} event_src_t;

/* One event. */
typedef struct event_s {
  const char *key; /* NULL = no key */
  size_t klen;
  const char *value;
  size_t vlen;
  uint64_t line; /* line number, 0 for -d */
} event_t;

/* Next event: 1 with *ev set (borrowed until the next call), 0 at the end,
 * -1 on a read error (errno set). Empty lines are skipped. */
static int next_event(event_src_t *src, event_t *ev) {
  ev->key = src->key;
  ev->klen = src->key ? strlen(src->key) : 0;
  if (src->data != NULL) {
    if (src->data_done) return 0;
    src->data_done = 1;
    ev->value = src->data;
    ev->vlen = strlen(src->data);
    ev->line = 0;
    return 1;
  }
  for (;;) {
    errno = 0;
    ssize_t n = getline(&src->line, &src->cap, src->in);
    if (n < 0) return ferror(src->in) ? -1 : 0;
    src->lineno++;
    size_t len = (size_t)n;
    if (len > 0 && src->line[len - 1] == '\n') len--;
    if (len > 0 && src->line[len - 1] == '\r') len--;
    if (len == 0) continue;
    ev->line = src->lineno;
    ev->value = src->line;
    ev->vlen = len;
    if (src->delim != NULL) {
      const char *d = memmem(src->line, len, src->delim, src->delim_len);
      if (d != NULL) {
        ev->key = src->line;
        ev->klen = (size_t)(d - src->line);
        ev->value = d + src->delim_len;
        ev->vlen = len - ev->klen - src->delim_len;
      }
    }
    return 1;
  }
}

/* Tally of a publish run. */
typedef struct publish_tally_s {
  uint64_t sent;    /* events handed to the producer or the server */
  uint64_t refused; /* events never sent (too large, refused at once) */
  uint64_t acked;
  uint64_t failed;   /* refused or not acknowledged (for the messages) */
  int32_t partition; /* of the last acknowledged event */
  int64_t offset;
  const char *topic;
} publish_tally_t;

static void tally_fail(publish_tally_t *t, uint64_t line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void tally_fail(publish_tally_t *t, uint64_t line, const char *fmt,
                       ...) {
  t->failed++;
  if (t->failed > IMP_CLI_PUBLISH_SHOW_ERRORS) return;
  char msg[600];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  if (line > 0)
    fprintf(stderr, "impulse publish: event on line %llu: %s\n",
            (unsigned long long)line, msg);
  else
    fprintf(stderr, "impulse publish: %s\n", msg);
}

/* Per-message state of the direct producer. */
typedef struct direct_s {
  publish_tally_t *tally;
  int fatal;
} direct_t;

static void on_direct_delivery(rd_kafka_t *rk, const rd_kafka_message_t *msg,
                               void *opaque) {
  direct_t *d = opaque;
  uint64_t line = (uint64_t)(uintptr_t)msg->_private;
  (void)rk;
  if (msg->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
    d->tally->acked++;
    d->tally->partition = msg->partition;
    d->tally->offset = msg->offset;
  } else {
    tally_fail(d->tally, line, "not acknowledged: %s",
               rd_kafka_err2str(msg->err));
  }
}

static void on_direct_log(const rd_kafka_t *rk, int level, const char *fac,
                          const char *buf) {
  (void)rk;
  /* Connection failures also come through the error callback. */
  if (level <= 4 && strcmp(fac, "FAIL") != 0)
    fprintf(stderr, "impulse publish: kafka: %s: %s\n", fac, buf);
}

static void on_direct_error(rd_kafka_t *rk, int err, const char *reason,
                            void *opaque) {
  direct_t *d = opaque;
  if (err == RD_KAFKA_RESP_ERR__FATAL) {
    char why[512];
    rd_kafka_fatal_error(rk, why, sizeof why);
    fprintf(stderr, "impulse publish: kafka: producer failed: %s\n", why);
    d->fatal = 1;
    return;
  }
  fprintf(stderr, "impulse publish: kafka: %s\n", reason);
}

/* Options of a publish run. */
typedef struct publish_opts_s {
  const char *topic;
  int32_t partition; /* -1 = partitioner */
  const impulse_header_t *headers;
  size_t nheaders;
  size_t max_event; /* key + value + headers */
  uint32_t timeout_ms;
  const char *const *kafka_opts;
  size_t nkafka_opts;
} publish_opts_t;

static size_t event_size(const publish_opts_t *po, const event_t *ev) {
  size_t size = ev->klen + ev->vlen;
  for (size_t i = 0; i < po->nheaders; i++)
    size += strlen(po->headers[i].name) + po->headers[i].len;
  return size;
}

/* Produces every event straight to Kafka with an idempotent producer and
 * waits for every delivery report. Returns 0, or an exit status after
 * printing why when the producer could not even start. */
static int publish_direct(const publish_opts_t *po, const char *bootstrap,
                          event_src_t *src, publish_tally_t *tally) {
  char why[512], num[32];
  direct_t d = {tally, 0};
  rd_kafka_conf_t *conf = rd_kafka_conf_new();
  rd_kafka_t *rk = NULL;
  rd_kafka_topic_t *rkt = NULL;
  int rc = IMP_CLI_EXIT_FAIL;
  size_t mmb = po->max_event + 65536;
  if (mmb > 1000000000u) mmb = 1000000000u;
  if (mmb < 1000000u) mmb = 1000000u;
  char mmbs[32];
  snprintf(mmbs, sizeof mmbs, "%zu", mmb);
  snprintf(num, sizeof num, "%u", (unsigned)po->timeout_ms);
  /* clang-format off */
  const char *defaults[] = {"bootstrap.servers", bootstrap,
                            "client.id", "impulse-publish",
                            "enable.idempotence", "true",
                            "linger.ms", "5",
                            "message.max.bytes", mmbs,
                            "message.timeout.ms", num,
                            "queue.buffering.max.messages", "1000000",
                            NULL};
  /* clang-format on */
  rd_kafka_conf_set_log_cb(conf, on_direct_log);
  for (size_t i = 0; defaults[i]; i += 2)
    if (rd_kafka_conf_set(conf, defaults[i], defaults[i + 1], why,
                          sizeof why) != RD_KAFKA_CONF_OK) {
      fprintf(stderr, "impulse publish: %s=%s: %s\n", defaults[i],
              defaults[i + 1], why);
      goto out;
    }
  for (size_t i = 0; i < po->nkafka_opts; i++) {
    char name[256];
    const char *opt = po->kafka_opts[i], *eq = strchr(opt, '=');
    snprintf(name, sizeof name, "%.*s", (int)(eq - opt), opt);
    if (rd_kafka_conf_set(conf, name, eq + 1, why, sizeof why) !=
        RD_KAFKA_CONF_OK) {
      fprintf(stderr, "impulse publish: --kafka-opt %s: %s\n", opt, why);
      rc = IMP_CLI_EXIT_USAGE;
      goto out;
    }
  }
  rd_kafka_conf_set_opaque(conf, &d);
  rd_kafka_conf_set_dr_msg_cb(conf, on_direct_delivery);
  rd_kafka_conf_set_error_cb(conf, on_direct_error);
  rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, why, sizeof why);
  if (rk == NULL) {
    fprintf(stderr, "impulse publish: cannot create a Kafka producer: %s\n",
            why);
    goto out;
  }
  conf = NULL; /* taken by rd_kafka_new */
  rkt = rd_kafka_topic_new(rk, po->topic, NULL);
  if (rkt == NULL) {
    fprintf(stderr, "impulse publish: topic %s: %s\n", po->topic,
            rd_kafka_err2str(rd_kafka_last_error()));
    goto out;
  }

  event_t ev;
  int r = 0;
  while (!d.fatal && (r = next_event(src, &ev)) > 0) {
    size_t size = event_size(po, &ev);
    if (size > po->max_event) {
      tally->refused++;
      tally_fail(tally, ev.line, "%zu bytes is above the %zu-byte limit", size,
                 po->max_event);
      continue;
    }
    rd_kafka_headers_t *hdrs = NULL;
    if (po->nheaders > 0) {
      hdrs = rd_kafka_headers_new(po->nheaders);
      for (size_t i = 0; i < po->nheaders; i++)
        rd_kafka_header_add(hdrs, po->headers[i].name, -1, po->headers[i].value,
                            (ssize_t)po->headers[i].len);
    }
    rd_kafka_vu_t vu[7];
    size_t n = 0;
    vu[n].vtype = RD_KAFKA_VTYPE_RKT;
    vu[n++].u.rkt = rkt;
    vu[n].vtype = RD_KAFKA_VTYPE_PARTITION;
    vu[n++].u.i32 = po->partition < 0 ? RD_KAFKA_PARTITION_UA : po->partition;
    vu[n].vtype = RD_KAFKA_VTYPE_MSGFLAGS;
    vu[n++].u.i = RD_KAFKA_MSG_F_COPY;
    if (ev.key != NULL) {
      vu[n].vtype = RD_KAFKA_VTYPE_KEY;
      vu[n].u.mem.ptr = (void *)ev.key;
      vu[n++].u.mem.size = ev.klen;
    }
    vu[n].vtype = RD_KAFKA_VTYPE_VALUE;
    vu[n].u.mem.ptr = (void *)ev.value;
    vu[n++].u.mem.size = ev.vlen;
    vu[n].vtype = RD_KAFKA_VTYPE_OPAQUE;
    vu[n++].u.ptr = (void *)(uintptr_t)ev.line;
    if (hdrs != NULL) {
      vu[n].vtype = RD_KAFKA_VTYPE_HEADERS;
      vu[n++].u.headers = hdrs;
    }
    for (;;) {
      rd_kafka_error_t *error = rd_kafka_produceva(rk, vu, n);
      if (error == NULL) {
        tally->sent++;
        break;
      }
      rd_kafka_resp_err_t e = rd_kafka_error_code(error);
      rd_kafka_error_destroy(error);
      if (e == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
        rd_kafka_poll(rk, 50); /* wait for reports to make room */
        continue;
      }
      if (hdrs != NULL) rd_kafka_headers_destroy(hdrs); /* not taken */
      tally->refused++;
      tally_fail(tally, ev.line, "%s", rd_kafka_err2str(e));
      break;
    }
    if ((tally->sent & 1023) == 0) rd_kafka_poll(rk, 0);
  }
  if (r < 0 && !d.fatal)
    fprintf(stderr, "impulse publish: reading events: %s\n", strerror(errno));
  /* Every report comes within message.timeout.ms; the slack covers the
   * last batch's linger and round trip. Wait for the reports rather than an
   * empty queue (rd_kafka_flush): the idempotent producer keeps its own
   * requests queued while the cluster is unreachable. */
  uint64_t until = imp_now_ms() + po->timeout_ms + 1000;
  while (tally->acked + tally->failed - tally->refused < tally->sent &&
         imp_now_ms() < until)
    rd_kafka_poll(rk, 100);
  if (tally->acked + tally->failed - tally->refused < tally->sent) {
    rd_kafka_purge(rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
    rd_kafka_flush(rk, 1000);
  }
  rc = r < 0 ? IMP_CLI_EXIT_FAIL : 0;
out:
  if (rkt != NULL) rd_kafka_topic_destroy(rkt);
  if (rk != NULL) rd_kafka_destroy(rk);
  if (conf != NULL) rd_kafka_conf_destroy(conf);
  return rc;
}

/* Takes one Publish answer. Returns 0, or a transport status. */
static int via_server_collect(impulse_client_t *client, publish_tally_t *tally,
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
    tally_fail(tally, line, "%s: %s", imp_error_code_name(e->code),
               str_or(e->message, "failed"));
  } else {
    tally_fail(tally, line, "unexpected answer (body %d)",
               (int)resp->body_case);
  }
  impulse__envelope__free_unpacked(resp, NULL);
  return 0;
}

/* Publishes every event with pipelined Publish RPCs. Returns 0 or an exit
 * status after printing why. */
static int publish_via_server(const publish_opts_t *po,
                              impulse_client_t *client, event_src_t *src,
                              publish_tally_t *tally) {
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
  event_t ev;
  int r;
  while ((r = next_event(src, &ev)) > 0) {
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
    status = imp_client_send(client, &req, &id);
    if (status == IMPULSE_S_TOO_LARGE) {
      tally->refused++;
      tally_fail(tally, ev.line, "%s", impulse_client_error(client));
      continue;
    }
    if (status != 0) goto fail;
    lines[id % IMP_CLI_PUBLISH_WINDOW] = ev.line;
    tally->sent++;
    if (++in_flight >= IMP_CLI_PUBLISH_WINDOW) {
      if ((status = via_server_collect(client, tally, lines)) != 0) goto fail;
      in_flight--;
    }
  }
  if (r < 0) {
    fprintf(stderr, "impulse publish: reading events: %s\n", strerror(errno));
    rc = IMP_CLI_EXIT_FAIL;
  }
  while (in_flight > 0) {
    if ((status = via_server_collect(client, tally, lines)) != 0) goto fail;
    in_flight--;
  }
  goto out;
fail:
  rc = report(client, status, "publish");
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

static int run_publish(const cmd_t *cmd, int argc, char **argv) {
  enum { OPT_PARTITIONS = 512, OPT_VIA_SERVER, OPT_KAFKA_OPT, OPT_PTIMEOUT };
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
      {"timeout", required_argument, NULL, OPT_PTIMEOUT},
      IMP_CLI_COMMON_OPTIONS,
      {NULL, 0, NULL, 0}};
  conn_opts_t conn = {NULL, NULL};
  impulse_client_t *client = NULL;
  impulse_header_t *headers = NULL;
  const char *kafka_opts[IMP_CLI_MAX_KAFKA_OPTS];
  const char *file = NULL;
  uint32_t partitions = 0, partition = 0, timeout_ms = 30000;
  int has_partition = 0, via_server = 0, opt, rc;
  event_src_t src;
  publish_opts_t po;
  publish_tally_t tally;
  Impulse__Envelope *resp = NULL;
  memset(&src, 0, sizeof src);
  memset(&po, 0, sizeof po);
  memset(&tally, 0, sizeof tally);

  while ((opt = getopt_long(argc, argv, ":k:K:H:d:f:p:h", longopts, NULL)) !=
         -1) {
    switch (opt) {
      case 'k': src.key = optarg; break;
      case 'K':
        if (*optarg == '\0') {
          rc = usage_error(cmd, "--key-delim must not be empty");
          goto out;
        }
        src.delim = optarg;
        src.delim_len = strlen(optarg);
        break;
      case 'd': src.data = optarg; break;
      case 'f': file = optarg; break;
      case 'H': {
        char *eq = strchr(optarg, '=');
        if (eq == NULL || eq == optarg) {
          rc = usage_error(cmd, "header '%s' is not NAME=VALUE", optarg);
          goto out;
        }
        impulse_header_t *p = realloc(headers, (po.nheaders + 1) * sizeof *p);
        if (p == NULL) {
          fprintf(stderr, "impulse publish: out of memory\n");
          rc = IMP_CLI_EXIT_FAIL;
          goto out;
        }
        headers = p;
        *eq = '\0'; /* optarg points into argv, which we may modify */
        headers[po.nheaders].name = optarg;
        headers[po.nheaders].value = eq + 1;
        headers[po.nheaders].len = strlen(eq + 1);
        po.nheaders++;
        break;
      }
      case 'p':
        if (parse_u32(cmd, "--partition", optarg, 0, IMP_CLI_MAX_PARTITIONS - 1,
                      &partition) != 0) {
          rc = IMP_CLI_EXIT_USAGE;
          goto out;
        }
        has_partition = 1;
        break;
      case OPT_PARTITIONS:
        if (parse_u32(cmd, "--partitions", optarg, 1, IMP_CLI_MAX_PARTITIONS,
                      &partitions) != 0) {
          rc = IMP_CLI_EXIT_USAGE;
          goto out;
        }
        break;
      case OPT_VIA_SERVER: via_server = 1; break;
      case OPT_KAFKA_OPT:
        if (strchr(optarg, '=') == NULL || optarg[0] == '=') {
          rc = usage_error(cmd, "--kafka-opt takes NAME=VALUE, not '%s'",
                           optarg);
          goto out;
        }
        if (po.nkafka_opts == IMP_CLI_MAX_KAFKA_OPTS) {
          rc = usage_error(cmd, "at most %d --kafka-opt",
                           IMP_CLI_MAX_KAFKA_OPTS);
          goto out;
        }
        kafka_opts[po.nkafka_opts++] = optarg;
        break;
      case OPT_PTIMEOUT:
        if (parse_u32(cmd, "--timeout", optarg, 1, IMP_CLI_MAX_CONFIG_MS,
                      &timeout_ms) != 0) {
          rc = IMP_CLI_EXIT_USAGE;
          goto out;
        }
        break;
      default:
        if ((rc = common_option(cmd, opt, argv, &conn)) >= 0) goto out;
    }
  }
  if (argc - optind != 1) {
    rc = usage_error(cmd, "expected one TOPIC");
    goto out;
  }
  if (src.data != NULL && file != NULL) {
    rc = usage_error(cmd, "-d and -f cannot be used together");
    goto out;
  }
  if (src.data != NULL && src.delim != NULL) {
    rc = usage_error(cmd, "-K splits lines of -f FILE or stdin, not -d");
    goto out;
  }
  if (via_server && po.nkafka_opts > 0) {
    rc = usage_error(cmd,
                     "--kafka-opt is for direct publishing, not "
                     "--via-server");
    goto out;
  }
  const char *topic = argv[optind];
  char why[256];
  if (imp_topic_valid(topic, why, sizeof why) != 0) {
    rc = usage_error(cmd, "%s", why);
    goto out;
  }
  if (src.data == NULL) {
    if (file == NULL || strcmp(file, "-") == 0) {
      src.in = stdin;
      if (isatty(STDIN_FILENO))
        fprintf(stderr,
                "impulse publish: reading events from stdin, one per line "
                "(end with Ctrl-D)\n");
    } else if ((src.in = fopen(file, "re")) == NULL) {
      fprintf(stderr, "impulse publish: %s: %s\n", file, strerror(errno));
      rc = IMP_CLI_EXIT_FAIL;
      goto out;
    }
  }
  po.topic = topic;
  po.partition = has_partition ? (int32_t)partition : -1;
  po.headers = headers;
  po.timeout_ms = timeout_ms;
  po.kafka_opts = kafka_opts;
  tally.topic = topic;

  rc = connect_or_report(&conn, "publish", &client);
  if (rc != 0) goto out;
  impulse_client_set_timeout(client, timeout_ms + IMP_CLI_DEADLINE_SLACK_MS);

  /* The topic first, with its partition count: producing would otherwise
   * let the cluster create it with its own default. */
  Impulse__Envelope req = IMPULSE__ENVELOPE__INIT;
  Impulse__EnsureTopicRequest ensure = IMPULSE__ENSURE_TOPIC_REQUEST__INIT;
  ensure.topic = (char *)topic;
  if (partitions > 0) {
    ensure.has_partitions = 1;
    ensure.partitions = partitions;
  }
  req.body_case = IMPULSE__ENVELOPE__BODY_ENSURE_TOPIC;
  req.ensure_topic = &ensure;
  int status = imp_client_call_expect(
      client, &req, IMPULSE__ENVELOPE__BODY_ENSURE_TOPIC_OK, &resp);
  if (status != 0) {
    rc = report(client, status, "publish");
    goto out;
  }
  impulse__envelope__free_unpacked(resp, NULL);
  resp = NULL;

  /* The server's frame limit bounds what it would take or hand on. */
  Impulse__ServerInfoRequest info = IMPULSE__SERVER_INFO_REQUEST__INIT;
  req.body_case = IMPULSE__ENVELOPE__BODY_SERVER_INFO;
  req.server_info = &info;
  status = imp_client_call_expect(
      client, &req, IMPULSE__ENVELOPE__BODY_SERVER_INFO_OK, &resp);
  if (status != 0) {
    rc = report(client, status, "publish");
    goto out;
  }
  const Impulse__ServerInfoResponse *s = resp->server_info_ok;
  po.max_event = s->has_max_frame && s->max_frame > 0 ? s->max_frame
                                                      : IMP_DEFAULT_MAX_FRAME;
  if (via_server) {
    rc = publish_via_server(&po, client, &src, &tally);
  } else {
    if (s->kafka_bootstrap == NULL || s->kafka_bootstrap[0] == '\0') {
      fprintf(stderr,
              "impulse publish: %s reports no Kafka bootstrap address; use "
              "--via-server\n",
              imp_client_addr(client));
      rc = IMP_CLI_EXIT_FAIL;
      goto out;
    }
    rc = publish_direct(&po, s->kafka_bootstrap, &src, &tally);
    if (tally.sent > 0 && tally.acked == 0)
      fprintf(stderr,
              "impulse publish: no event reached Kafka at %s; if that address "
              "is not reachable from here, --via-server publishes through "
              "the server\n",
              s->kafka_bootstrap);
  }
  if (rc != 0 && tally.sent == 0 && tally.refused == 0) goto out;

  /* An event sent without a report counts as not published. */
  uint64_t events = tally.sent + tally.refused;
  uint64_t missing = events - tally.acked;
  if (tally.acked == 1 && events == 1)
    printf("published 1 event to %s (partition %d, offset %lld)\n", topic,
           (int)tally.partition, (long long)tally.offset);
  else
    printf("published %llu events to %s\n", (unsigned long long)tally.acked,
           topic);
  fflush(stdout);
  if (missing > 0) {
    fprintf(stderr, "impulse publish: %llu of %llu events were not published\n",
            (unsigned long long)missing, (unsigned long long)events);
    if (rc == 0) rc = IMP_CLI_EXIT_FAIL;
  }
out:
  if (resp != NULL) impulse__envelope__free_unpacked(resp, NULL);
  impulse_client_close(client);
  if (src.in != NULL && src.in != stdin) fclose(src.in);
  free(src.line);
  free(headers);
  return rc;
}

/* ---- trigger ----------------------------------------------------------- */

#define IMP_CLI_MAX_IN_FLIGHT 100000u
#define IMP_CLI_MAX_RETRIES 1000u

static int run_trigger_create(const cmd_t *cmd, int argc, char **argv);
static int run_trigger_ls(const cmd_t *cmd, int argc, char **argv);
static int run_trigger_describe(const cmd_t *cmd, int argc, char **argv);
static int run_trigger_rm(const cmd_t *cmd, int argc, char **argv);

static const cmd_t trigger_cmds[] = {
    {"trigger create", run_trigger_create, "trigger create NAME",
     "bind a topic to a function",
     "usage: impulse trigger create NAME --topic TOPIC --function FUNCTION\n"
     "                              [options]\n"
     "\n"
     "Creates trigger NAME: every event published to TOPIC becomes an\n"
     "invocation of FUNCTION, at least once. The trigger is stored and\n"
     "survives restarts. Unset settings take the server's defaults.\n"
     "\n"
     "  --topic TOPIC        topic to consume (created when missing)\n"
     "  --function FUNCTION  function invoked for each event\n"
     "  --group GROUP        consumer group [impulse-NAME]\n"
     "  --from WHERE         'earliest' or 'latest': where a new group starts\n"
     "                       [earliest]\n"
     "  --ordering MODE      'partition' (one event at a time per partition),\n"
     "                       'key' (one at a time per key) or 'none'\n"
     "                       [partition]\n"
     "  --max-in-flight N    invocations in flight per partition (1-100000)\n"
     "                       [64]\n"
     "  --max-retries N      retries before an event is dead-lettered\n"
     "                       (0-1000) [3]\n"
     "  --backoff INITIAL_MS:MAX_MS\n"
     "                       retry backoff, doubled each attempt, with jitter\n"
     "                       [100:10000]\n"
     "  --dlq TOPIC          dead-letter topic [TOPIC.dlq]\n"
     "  --reply-topic TOPIC  write each function response there (same key)\n"},
    {"trigger ls", run_trigger_ls, "trigger ls", "list triggers",
     "usage: impulse trigger ls [options]\n"
     "\n"
     "Lists the triggers with their topic, function, state and counters.\n"
     "\n"},
    {"trigger describe", run_trigger_describe, "trigger describe NAME",
     "show a trigger, its partitions and counters",
     "usage: impulse trigger describe NAME [options]\n"
     "\n"
     "Shows a trigger's settings, state and counters, and the partitions\n"
     "assigned to this server: committed offset, high watermark, lag,\n"
     "invocations in flight and whether the partition is paused.\n"
     "\n"},
    {"trigger rm", run_trigger_rm, "trigger rm NAME", "delete a trigger",
     "usage: impulse trigger rm NAME [options]\n"
     "\n"
     "Deletes a trigger: its consumers stop after the invocations in flight\n"
     "finish and their offsets are committed.\n"
     "\n"},
};

static int run_trigger(const cmd_t *cmd, int argc, char **argv) {
  if (argc < 2) return usage_error(cmd, "expected a subcommand");
  if (is_help(argv[1])) {
    cmd_usage(cmd, stdout);
    return 0;
  }
  for (size_t i = 0; i < IMP_ARRAY_SIZE(trigger_cmds); i++) {
    const cmd_t *sub = &trigger_cmds[i];
    if (strcmp(sub->name + strlen("trigger "), argv[1]) != 0) continue;
    optind = 0;
    return sub->run(sub, argc - 1, argv + 1);
  }
  return usage_error(cmd, "unknown subcommand '%s'", argv[1]);
}

/* Checks a topic flag's value; prints why not and returns -1. */
static int check_topic(const cmd_t *cmd, const char *flag, const char *topic) {
  char why[256];
  if (imp_topic_valid(topic, why, sizeof why) == 0) return 0;
  usage_error(cmd, "%s: %s", flag, why);
  return -1;
}

static int run_trigger_create(const cmd_t *cmd, int argc, char **argv) {
  enum {
    OPT_TOPIC = 512,
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
  conn_opts_t conn = {NULL, NULL};
  impulse_client_t *client = NULL;
  Impulse__Envelope req = IMPULSE__ENVELOPE__INIT, *resp = NULL;
  Impulse__TriggerCreateRequest create = IMPULSE__TRIGGER_CREATE_REQUEST__INIT;
  Impulse__TriggerSpec spec = IMPULSE__TRIGGER_SPEC__INIT;
  char what[300];
  int opt, rc;

  while ((opt = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
    int bad = 0;
    switch (opt) {
      case OPT_TOPIC:
        spec.topic = optarg;
        bad = check_topic(cmd, "--topic", optarg);
        break;
      case OPT_FUNCTION: spec.function = optarg; break;
      case OPT_GROUP:
        if (*optarg == '\0') return usage_error(cmd, "--group is empty");
        spec.group = optarg;
        break;
      case OPT_FROM:
        if (strcmp(optarg, "earliest") != 0 && strcmp(optarg, "latest") != 0)
          return usage_error(cmd, "--from is 'earliest' or 'latest', not '%s'",
                             optarg);
        spec.from = optarg;
        break;
      case OPT_ORDERING:
        if (strcmp(optarg, "partition") != 0 && strcmp(optarg, "key") != 0 &&
            strcmp(optarg, "none") != 0)
          return usage_error(cmd,
                             "--ordering is 'partition', 'key' or 'none', not "
                             "'%s'",
                             optarg);
        spec.ordering = optarg;
        break;
      case OPT_MAX_IN_FLIGHT:
        bad = parse_u32(cmd, "--max-in-flight", optarg, 1,
                        IMP_CLI_MAX_IN_FLIGHT, &spec.max_in_flight);
        spec.has_max_in_flight = 1;
        break;
      case OPT_MAX_RETRIES:
        bad = parse_u32(cmd, "--max-retries", optarg, 0, IMP_CLI_MAX_RETRIES,
                        &spec.max_retries);
        spec.has_max_retries = 1;
        break;
      case OPT_BACKOFF: {
        char *colon = strchr(optarg, ':');
        if (colon == NULL)
          return usage_error(cmd, "--backoff is INITIAL_MS:MAX_MS, not '%s'",
                             optarg);
        *colon = '\0'; /* optarg points into argv, which we may modify */
        bad = parse_u32(cmd, "--backoff INITIAL_MS", optarg, 1,
                        IMP_CLI_MAX_CONFIG_MS, &spec.backoff_initial_ms) ||
              parse_u32(cmd, "--backoff MAX_MS", colon + 1, 1,
                        IMP_CLI_MAX_CONFIG_MS, &spec.backoff_max_ms);
        if (!bad && spec.backoff_initial_ms > spec.backoff_max_ms)
          return usage_error(cmd,
                             "--backoff: INITIAL_MS (%u) is above "
                             "MAX_MS (%u)",
                             (unsigned)spec.backoff_initial_ms,
                             (unsigned)spec.backoff_max_ms);
        spec.has_backoff_initial_ms = spec.has_backoff_max_ms = 1;
        break;
      }
      case OPT_DLQ:
        spec.dlq = optarg;
        bad = check_topic(cmd, "--dlq", optarg);
        break;
      case OPT_REPLY:
        spec.reply_topic = optarg;
        bad = check_topic(cmd, "--reply-topic", optarg);
        break;
      default:
        if ((rc = common_option(cmd, opt, argv, &conn)) >= 0) return rc;
    }
    if (bad) return IMP_CLI_EXIT_USAGE;
  }
  if (argc - optind != 1) return usage_error(cmd, "expected one trigger NAME");
  if (spec.topic == NULL) return usage_error(cmd, "--topic is required");
  if (spec.function == NULL) return usage_error(cmd, "--function is required");
  spec.name = argv[optind];
  snprintf(what, sizeof what, "trigger create %s", spec.name);

  rc = connect_or_report(&conn, what, &client);
  if (rc != 0) goto out;
  create.spec = &spec;
  req.body_case = IMPULSE__ENVELOPE__BODY_TRIGGER_CREATE;
  req.trigger_create = &create;
  int status = imp_client_call_expect(
      client, &req, IMPULSE__ENVELOPE__BODY_TRIGGER_CREATE_OK, &resp);
  if (status != 0) {
    rc = report(client, status, what);
    goto out;
  }
  const Impulse__TriggerSpec *s =
      resp->trigger_create_ok->spec ? resp->trigger_create_ok->spec : &spec;
  printf("created trigger %s: %s -> %s (group %s, ordering %s)\n", spec.name,
         s->topic, s->function, str_or(s->group, "default"),
         str_or(s->ordering, "default"));
out:
  if (resp != NULL) impulse__envelope__free_unpacked(resp, NULL);
  impulse_client_close(client);
  return rc;
}

static int by_trigger_name(const void *a, const void *b) {
  const Impulse__TriggerInfo *x = *(Impulse__TriggerInfo *const *)a;
  const Impulse__TriggerInfo *y = *(Impulse__TriggerInfo *const *)b;
  return strcmp(x->spec->name, y->spec->name);
}

static int by_partition(const void *a, const void *b) {
  const Impulse__PartitionInfo *x = *(Impulse__PartitionInfo *const *)a;
  const Impulse__PartitionInfo *y = *(Impulse__PartitionInfo *const *)b;
  return x->partition < y->partition ? -1 : x->partition > y->partition;
}

static int run_trigger_ls(const cmd_t *cmd, int argc, char **argv) {
  conn_opts_t conn = {NULL, NULL};
  impulse_client_t *client = NULL;
  Impulse__Envelope req = IMPULSE__ENVELOPE__INIT, *resp = NULL;
  Impulse__TriggerListRequest list = IMPULSE__TRIGGER_LIST_REQUEST__INIT;
  table_t table = {9, 0, 0, NULL};
  int rc = simple_options(cmd, argc, argv, 0, "takes no arguments", &conn);
  if (rc >= 0) return rc;

  rc = connect_or_report(&conn, "trigger ls", &client);
  if (rc != 0) goto out;
  req.body_case = IMPULSE__ENVELOPE__BODY_TRIGGER_LIST;
  req.trigger_list = &list;
  int status = imp_client_call_expect(
      client, &req, IMPULSE__ENVELOPE__BODY_TRIGGER_LIST_OK, &resp);
  if (status != 0) {
    rc = report(client, status, "trigger ls");
    goto out;
  }
  Impulse__TriggerListResponse *l = resp->trigger_list_ok;
  if (l->n_triggers == 0) {
    printf("no triggers\n");
    goto out;
  }
  qsort(l->triggers, l->n_triggers, sizeof *l->triggers, by_trigger_name);
  static const char *const head[] = {"NAME",    "TOPIC",         "FUNCTION",
                                     "STATE",   "RECEIVED",      "HANDLED",
                                     "RETRIED", "DEAD-LETTERED", "IN-FLIGHT"};
  if (table_row(&table, head) != 0) goto nomem;
  for (size_t i = 0; i < l->n_triggers; i++) {
    const Impulse__TriggerInfo *t = l->triggers[i];
    char v[5][24];
    snprintf(v[0], sizeof v[0], "%llu", (unsigned long long)t->received);
    snprintf(v[1], sizeof v[1], "%llu", (unsigned long long)t->handled);
    snprintf(v[2], sizeof v[2], "%llu", (unsigned long long)t->retried);
    snprintf(v[3], sizeof v[3], "%llu", (unsigned long long)t->dead_lettered);
    snprintf(v[4], sizeof v[4], "%u", (unsigned)t->in_flight);
    const char *row[] = {t->spec->name,
                         t->spec->topic,
                         t->spec->function,
                         str_or(t->state, "-"),
                         v[0],
                         v[1],
                         v[2],
                         v[3],
                         v[4]};
    if (table_row(&table, row) != 0) goto nomem;
  }
  table_print(&table, stdout);
  goto out;
nomem:
  fprintf(stderr, "impulse: trigger ls: out of memory\n");
  rc = IMP_CLI_EXIT_FAIL;
out:
  table_free(&table);
  if (resp != NULL) impulse__envelope__free_unpacked(resp, NULL);
  impulse_client_close(client);
  return rc;
}

static const char *fmt_u32_or(int has, uint32_t v, const char *dflt, char *buf,
                              size_t len) {
  if (!has) return dflt;
  snprintf(buf, len, "%u", (unsigned)v);
  return buf;
}

static void print_trigger(const Impulse__TriggerInfo *t) {
  const Impulse__TriggerSpec *s = t->spec;
  char b[4][32], created[40], backoff[128];
  snprintf(backoff, sizeof backoff, "%s ms initial, %s ms max",
           fmt_u32_or(s->has_backoff_initial_ms, s->backoff_initial_ms,
                      "default", b[2], sizeof b[2]),
           fmt_u32_or(s->has_backoff_max_ms, s->backoff_max_ms, "default", b[3],
                      sizeof b[3]));
  printf("name:           %s\n", s->name);
  printf("topic:          %s\n", s->topic);
  printf("function:       %s\n", s->function);
  printf("group:          %s\n", str_or(s->group, "default"));
  printf("from:           %s\n", str_or(s->from, "default"));
  printf("ordering:       %s\n", str_or(s->ordering, "default"));
  printf("max in flight:  %s\n",
         fmt_u32_or(s->has_max_in_flight, s->max_in_flight, "default", b[0],
                    sizeof b[0]));
  printf("max retries:    %s\n", fmt_u32_or(s->has_max_retries, s->max_retries,
                                            "default", b[1], sizeof b[1]));
  printf("backoff:        %s\n", backoff);
  printf("dlq:            %s\n", str_or(s->dlq, "default"));
  printf("reply topic:    %s\n", str_or(s->reply_topic, "-"));
  printf("created:        %s\n",
         fmt_time(s->created_ms, created, sizeof created));
  printf("state:          %s\n", str_or(t->state, "-"));
  printf("received:       %llu\n", (unsigned long long)t->received);
  printf("handled:        %llu\n", (unsigned long long)t->handled);
  printf("retried:        %llu\n", (unsigned long long)t->retried);
  printf("dead-lettered:  %llu\n", (unsigned long long)t->dead_lettered);
  printf("in flight:      %u\n", (unsigned)t->in_flight);
  printf("batches:        %llu (%llu records)\n",
         (unsigned long long)t->batches, (unsigned long long)t->batched);
}

static int run_trigger_describe(const cmd_t *cmd, int argc, char **argv) {
  conn_opts_t conn = {NULL, NULL};
  impulse_client_t *client = NULL;
  Impulse__Envelope req = IMPULSE__ENVELOPE__INIT, *resp = NULL;
  Impulse__TriggerDescribeRequest describe =
      IMPULSE__TRIGGER_DESCRIBE_REQUEST__INIT;
  table_t parts = {6, 0, 0, NULL};
  char what[300];
  int rc =
      simple_options(cmd, argc, argv, 1, "expected one trigger NAME", &conn);
  if (rc >= 0) return rc;
  const char *name = argv[optind];
  snprintf(what, sizeof what, "trigger describe %s", name);

  rc = connect_or_report(&conn, what, &client);
  if (rc != 0) goto out;
  describe.name = (char *)name;
  req.body_case = IMPULSE__ENVELOPE__BODY_TRIGGER_DESCRIBE;
  req.trigger_describe = &describe;
  int status = imp_client_call_expect(
      client, &req, IMPULSE__ENVELOPE__BODY_TRIGGER_DESCRIBE_OK, &resp);
  if (status != 0) {
    rc = report(client, status, what);
    goto out;
  }
  Impulse__TriggerInfo *t = resp->trigger_describe_ok->trigger;
  print_trigger(t);
  printf("\n");
  if (t->n_partitions == 0) {
    printf("no partitions assigned to this server\n");
    goto out;
  }
  qsort(t->partitions, t->n_partitions, sizeof *t->partitions, by_partition);
  static const char *const head[] = {"PARTITION", "COMMITTED", "HIGH-WATERMARK",
                                     "LAG",       "IN-FLIGHT", "PAUSED"};
  if (table_row(&parts, head) != 0) goto nomem;
  for (size_t i = 0; i < t->n_partitions; i++) {
    const Impulse__PartitionInfo *p = t->partitions[i];
    char v[5][24];
    snprintf(v[0], sizeof v[0], "%d", (int)p->partition);
    if (p->has_committed && p->committed >= 0)
      snprintf(v[1], sizeof v[1], "%lld", (long long)p->committed);
    else
      snprintf(v[1], sizeof v[1], "-");
    if (p->has_high_watermark && p->high_watermark >= 0)
      snprintf(v[2], sizeof v[2], "%lld", (long long)p->high_watermark);
    else
      snprintf(v[2], sizeof v[2], "-");
    if (p->has_lag && p->lag >= 0)
      snprintf(v[3], sizeof v[3], "%lld", (long long)p->lag);
    else
      snprintf(v[3], sizeof v[3], "-");
    snprintf(v[4], sizeof v[4], "%u", (unsigned)p->in_flight);
    const char *row[] = {v[0], v[1], v[2],
                         v[3], v[4], p->paused ? "yes" : "no"};
    if (table_row(&parts, row) != 0) goto nomem;
  }
  table_print(&parts, stdout);
  goto out;
nomem:
  fprintf(stderr, "impulse: %s: out of memory\n", what);
  rc = IMP_CLI_EXIT_FAIL;
out:
  table_free(&parts);
  if (resp != NULL) impulse__envelope__free_unpacked(resp, NULL);
  impulse_client_close(client);
  return rc;
}

static int run_trigger_rm(const cmd_t *cmd, int argc, char **argv) {
  conn_opts_t conn = {NULL, NULL};
  impulse_client_t *client = NULL;
  Impulse__Envelope req = IMPULSE__ENVELOPE__INIT, *resp = NULL;
  Impulse__TriggerDeleteRequest del = IMPULSE__TRIGGER_DELETE_REQUEST__INIT;
  char what[300];
  int rc =
      simple_options(cmd, argc, argv, 1, "expected one trigger NAME", &conn);
  if (rc >= 0) return rc;
  const char *name = argv[optind];
  snprintf(what, sizeof what, "trigger rm %s", name);

  rc = connect_or_report(&conn, what, &client);
  if (rc != 0) goto out;
  del.name = (char *)name;
  req.body_case = IMPULSE__ENVELOPE__BODY_TRIGGER_DELETE;
  req.trigger_delete = &del;
  int status = imp_client_call_expect(
      client, &req, IMPULSE__ENVELOPE__BODY_TRIGGER_DELETE_OK, &resp);
  if (status != 0) {
    rc = report(client, status, what);
    goto out;
  }
  printf("deleted trigger %s\n", name);
out:
  if (resp != NULL) impulse__envelope__free_unpacked(resp, NULL);
  impulse_client_close(client);
  return rc;
}

/* ---- backup ------------------------------------------------------------ */

static int run_backup(const cmd_t *cmd, int argc, char **argv) {
  conn_opts_t conn = {NULL, NULL};
  impulse_client_t *client = NULL;
  Impulse__Envelope req = IMPULSE__ENVELOPE__INIT, *resp = NULL;
  Impulse__BackupRequest backup = IMPULSE__BACKUP_REQUEST__INIT;
  int rc =
      simple_options(cmd, argc, argv, 1, "expected one directory DIR", &conn);
  if (rc >= 0) return rc;
  const char *dir = argv[optind];
  /* The server writes it, on its own machine: a relative path would be
   * relative to the server's working directory, not ours. */
  if (dir[0] != '/')
    return usage_error(cmd,
                       "DIR must be an absolute path (on the server's "
                       "machine)");

  rc = connect_or_report(&conn, "backup", &client);
  if (rc != 0) goto out;
  backup.dir = (char *)dir;
  req.body_case = IMPULSE__ENVELOPE__BODY_BACKUP;
  req.backup = &backup;
  int status = imp_client_call_expect(client, &req,
                                      IMPULSE__ENVELOPE__BODY_BACKUP_OK, &resp);
  if (status != 0) {
    rc = report(client, status, "backup");
    goto out;
  }
  const Impulse__BackupResponse *b = resp->backup_ok;
  printf("backup written to %s (%llu bytes, %llu ms)\n", str_or(b->dir, dir),
         (unsigned long long)b->bytes, (unsigned long long)b->took_ms);
out:
  if (resp != NULL) impulse__envelope__free_unpacked(resp, NULL);
  impulse_client_close(client);
  return rc;
}

/* ---- record ------------------------------------------------------------ */

static int run_record_ls(const cmd_t *cmd, int argc, char **argv);

static const cmd_t record_cmds[] = {
    {"record ls", run_record_ls, "record ls NAME",
     "list a function's recorded calls",
     "usage: impulse record ls NAME [options]\n"
     "\n"
     "Lists the calls of NAME the server recorded (a sample of its live\n"
     "calls with their answers, at most 32, kept for replay during an\n"
     "upgrade), oldest first: the version that answered, when, the request\n"
     "payload's size, the answer (\"ok\", an error code such as\n"
     "FUNCTION_ERROR, or \"status N\"), the time the instance took, and the\n"
     "payload's first 64 bytes (bytes that are not printable as '.').\n"
     "Needs the admin token when the server runs with --invoke-auth token.\n"
     "\n"},
};

static int run_record(const cmd_t *cmd, int argc, char **argv) {
  if (argc < 2) return usage_error(cmd, "expected a subcommand");
  if (is_help(argv[1])) {
    cmd_usage(cmd, stdout);
    return 0;
  }
  for (size_t i = 0; i < IMP_ARRAY_SIZE(record_cmds); i++) {
    const cmd_t *sub = &record_cmds[i];
    if (strcmp(sub->name + strlen("record "), argv[1]) != 0) continue;
    optind = 0;
    return sub->run(sub, argc - 1, argv + 1);
  }
  return usage_error(cmd, "unknown subcommand '%s'", argv[1]);
}

static int run_record_ls(const cmd_t *cmd, int argc, char **argv) {
  conn_opts_t conn = {NULL, NULL};
  impulse_client_t *client = NULL;
  Impulse__Envelope req = IMPULSE__ENVELOPE__INIT, *resp = NULL;
  Impulse__RecordListRequest rl = IMPULSE__RECORD_LIST_REQUEST__INIT;
  table_t table = {6, 0, 0, NULL};
  char what[300];
  int rc =
      simple_options(cmd, argc, argv, 1, "expected one function NAME", &conn);
  if (rc >= 0) return rc;
  const char *name = argv[optind];
  snprintf(what, sizeof what, "record ls %s", name);

  rc = connect_or_report(&conn, what, &client);
  if (rc != 0) goto out;
  rl.name = (char *)name;
  req.body_case = IMPULSE__ENVELOPE__BODY_RECORD_LIST;
  req.record_list = &rl;
  int status = imp_client_call_expect(
      client, &req, IMPULSE__ENVELOPE__BODY_RECORD_LIST_OK, &resp);
  if (status != 0) {
    rc = report(client, status, what);
    goto out;
  }
  const Impulse__RecordListResponse *l = resp->record_list_ok;
  if (l->n_calls == 0) {
    printf("no recorded calls\n");
    goto out;
  }
  static const char *const head[] = {"VERSION", "WHEN",     "BYTES",
                                     "ANSWER",  "DURATION", "PAYLOAD"};
  if (table_row(&table, head) != 0) goto nomem;
  for (size_t i = 0; i < l->n_calls; i++) {
    const Impulse__RecordedCallInfo *c = l->calls[i];
    char ver[16], when[40], bytes[24], dur[32], payload[64 + 4];
    snprintf(ver, sizeof ver, "%u", (unsigned)c->version);
    snprintf(bytes, sizeof bytes, "%llu", (unsigned long long)c->request_bytes);
    if (c->duration_us < 1000)
      snprintf(dur, sizeof dur, "%uus", (unsigned)c->duration_us);
    else
      snprintf(dur, sizeof dur, "%.1fms", c->duration_us / 1000.0);
    size_t n = c->payload_preview.len < 64 ? c->payload_preview.len : 64;
    for (size_t k = 0; k < n; k++) {
      unsigned char ch = c->payload_preview.data[k];
      payload[k] = ch >= 0x21 && ch < 0x7f ? (char)ch : '.';
    }
    payload[n] = '\0';
    if (c->request_bytes > n) strcat(payload, "...");
    if (n == 0 && c->request_bytes == 0) strcpy(payload, "-");
    const char *row[] = {ver,   fmt_time(c->recorded_ms, when, sizeof when),
                         bytes, str_or(c->answer_status, "-"),
                         dur,   payload};
    if (table_row(&table, row) != 0) goto nomem;
  }
  table_print(&table, stdout);
  goto out;
nomem:
  fprintf(stderr, "impulse: %s: out of memory\n", what);
  rc = IMP_CLI_EXIT_FAIL;
out:
  table_free(&table);
  if (resp != NULL) impulse__envelope__free_unpacked(resp, NULL);
  impulse_client_close(client);
  return rc;
}

/* ---- top (runtime/top.c) ------------------------------------------------ */

static int run_top(const cmd_t *cmd, int argc, char **argv) {
  return imp_top_main(argc, argv, cmd->help, IMP_CLI_COMMON_HELP);
}

/* ---- dispatch ---------------------------------------------------------- */

static const cmd_t *cmds(size_t *count) {
  static const cmd_t table[] = {
      {"deploy", run_deploy, "deploy NAME FILE",
       "upload a function as a new version",
       "usage: impulse deploy NAME FILE [options]\n"
       "\n"
       "Uploads FILE (a function built as a shared object, at most 256 MiB)\n"
       "as a new version of NAME and prints \"deployed NAME version N\".\n"
       "Unset settings keep the server's defaults.\n"
       "\n"
       "  --concurrency N      concurrent invocations per instance (1-10000)\n"
       "  --timeout MS         handler timeout in milliseconds (1-86400000)\n"
       "  --memory MB          memory limit of an instance in MiB (1-1048576)\n"
       "  --min N              instances kept running (0-10000)\n"
       "  --max N              most instances (0-10000)\n"
       "  --no-promote         store the version without traffic (see\n"
       "                       `impulse traffic`); the function must exist\n"
       "  --max-step PCT       rolling upgrade: share of the instances out of\n"
       "                       service at once (1-100) [25]\n"
       "  --validate MODE      rolling upgrade: replayed recorded calls must\n"
       "                       succeed (status) or give the same output\n"
       "                       (exact) [status]\n" IMP_CLI_AUTOSCALE_HELP},
      {"invoke", run_invoke, "invoke NAME",
       "call a function, print its response",
       "usage: impulse invoke NAME [-d DATA | -f FILE] [options]\n"
       "\n"
       "Calls NAME with a payload from -d, from -f FILE, or else from stdin,\n"
       "and writes the response payload to stdout exactly as returned.\n"
       "\n"
       "  -d, --data DATA          the payload\n"
       "  -f, --file FILE          read the payload from FILE ('-' = stdin)\n"
       "  -H, --header NAME=VALUE  request header (repeatable)\n"
       "  --deadline MS            overall budget in milliseconds\n"
       "                           (default: the function's timeout)\n"
       "  --idempotency-key KEY    run the function at most once for KEY: a\n"
       "                           repeated call gets the stored answer; "
       "retried\n"
       "                           across reconnects and while IN_PROGRESS\n"},
      {"ls", run_ls, "ls", "list functions",
       "usage: impulse ls [options]\n"
       "\n"
       "Lists the deployed functions with their current version, instances\n"
       "and counters, sorted by name.\n"
       "\n"},
      {"describe", run_describe, "describe NAME",
       "show a function, its versions and instances",
       "usage: impulse describe NAME [options]\n"
       "\n"
       "Shows a function's configuration, counters, versions and instances.\n"
       "\n"},
      {"rm", run_rm, "rm NAME", "delete a function",
       "usage: impulse rm NAME [options]\n"
       "\n"
       "Deletes a function with all its versions and instances.\n"
       "\n"},
      {"upgrade", run_upgrade, "upgrade status|abort NAME",
       "follow or abort a rolling upgrade",
       "usage: impulse upgrade status|abort NAME [options]\n"
       "\n"
       "A deploy of a function with serving instances upgrades them step by\n"
       "step (--max-step of them at a time), replaying recorded calls on\n"
       "each new instance before it serves; a failed replay rolls every\n"
       "upgraded instance back. `status` shows the upgrade's state and\n"
       "progress (or the last one's outcome); `abort` rolls a running one\n"
       "back. Needs the admin token.\n"
       "\n"},
      {"traffic", run_traffic, "traffic NAME [vN=W ...]",
       "split calls between versions",
       "usage: impulse traffic NAME [vN=W ...] [options]\n"
       "\n"
       "Sets the share of NAME's calls each version gets, in percent (the\n"
       "weights add up to 100): `impulse traffic pay v3=90 v4=10` sends one\n"
       "call in ten to version 4 (canary); `impulse traffic pay v4=100`\n"
       "makes version 4 the current one (blue-green switch). Versions come\n"
       "from `deploy` (with --no-promote: stored without traffic). Without\n"
       "weights, prints the current split. Needs the admin token.\n"
       "\n"},
      {"scale", run_scale, "scale NAME",
       "set min/max instances and autoscaling",
       "usage: impulse scale NAME [--min N] [--max N] [autoscaling] [options]\n"
       "\n"
       "Sets the instances kept running, the most instances and/or the\n"
       "autoscaling settings of NAME (at least one) and prints the\n"
       "resulting bounds.\n"
       "\n"
       "  --min N              instances kept running (0-10000)\n"
       "  --max N              most instances "
       "(0-10000)\n" IMP_CLI_AUTOSCALE_HELP},
      {"info", run_info, "info", "show server information",
       "usage: impulse info [options]\n"
       "\n"
       "Shows the server's version, readiness, uptime, counts and limits,\n"
       "one `key: value` a line; `kafka:` is the bootstrap address of its\n"
       "Kafka cluster.\n"
       "\n"},
      {"backup", run_backup, "backup DIR",
       "write a copy of the server's state to a new directory",
       "usage: impulse backup DIR [options]\n"
       "\n"
       "Asks the server to write a consistent copy of its state (a RocksDB\n"
       "checkpoint of functions, versions, artifacts, triggers, ...) and its\n"
       "admin token to DIR, an absolute path on the server's machine that\n"
       "must not exist yet; the server keeps serving meanwhile. DIR is then\n"
       "a state directory: `impulse serve --state-dir DIR` restores it.\n"
       "Needs the admin token. Prints \"backup written to DIR (N bytes, T "
       "ms)\".\n"
       "\n"},
      {"record", run_record, "record ls NAME",
       "list a function's recorded calls (kept for upgrades)",
       "usage: impulse record SUBCOMMAND [ARGS...] [options]\n"
       "\n"
       "  record ls NAME          list the calls of NAME the server recorded\n"
       "\n"
       "Run `impulse record ls --help` for details.\n"
       "\n"},
      {"top", run_top, "top", "watch functions and load, refreshed live",
       "usage: impulse top [--interval S] [--once] [options]\n"
       "\n"
       "Shows the server and a table of its functions (version, ready and\n"
       "total instances, the autoscaler's desired count, calls in flight and\n"
       "queued, calls/s since the last refresh, errors, scaling policy and\n"
       "the autoscaler's reason), refreshed every --interval seconds until\n"
       "Ctrl-C. On a terminal the screen is redrawn in place.\n"
       "\n"
       "  --interval S         seconds between refreshes (0.1-3600) [1]\n"
       "  --once               print one snapshot and exit (calls/s is -)\n"},
      {"publish", run_publish, "publish TOPIC", "publish events to a topic",
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
       "  -p, --partition N        write to partition N (default: by the\n"
       "                           key's hash; spread without a key)\n"
       "  --partitions N           partitions of the topic if it is created\n"
       "                           (default: the server's --partitions)\n"
       "  --via-server             publish through the server, not to Kafka\n"
       "  --kafka-opt NAME=VALUE   librdkafka property of the producer, e.g.\n"
       "                           security.protocol=SASL_SSL (repeatable)\n"
       "  --timeout MS             how long to wait for acknowledgements\n"
       "                           [30000]\n"},
      {"trigger", run_trigger, "trigger SUBCOMMAND",
       "bind topics to functions: create, ls, describe, rm",
       "usage: impulse trigger SUBCOMMAND [ARGS...] [options]\n"
       "\n"
       "  trigger create NAME --topic TOPIC --function FUNCTION [options]\n"
       "                          bind a topic to a function\n"
       "  trigger ls              list triggers\n"
       "  trigger describe NAME   show a trigger, its partitions and counters\n"
       "  trigger rm NAME         delete a trigger\n"
       "\n"
       "Run `impulse trigger SUBCOMMAND --help` for the options of one.\n"
       "\n"},
  };
  *count = IMP_ARRAY_SIZE(table);
  return table;
}

static const cmd_t *find_cmd(const char *name) {
  size_t n;
  const cmd_t *c = cmds(&n);
  for (size_t i = 0; i < n; i++)
    if (strcmp(c[i].name, name) == 0) return &c[i];
  return NULL;
}

static int is_help(const char *arg) {
  return strcmp(arg, "help") == 0 || strcmp(arg, "--help") == 0 ||
         strcmp(arg, "-h") == 0;
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
    const cmd_t *cmd = find_cmd(argv[2]);
    if (cmd != NULL) {
      cmd_usage(cmd, stdout);
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
  const cmd_t *cmd = find_cmd(name);
  if (cmd == NULL) {
    fprintf(stderr, "impulse: unknown command '%s'\n\n", name);
    usage(stderr);
    return IMP_CLI_EXIT_USAGE;
  }
  /* Commands parse argv[1..] with argv[1] as their "program name"; optind 0
   * makes glibc reinitialise getopt. Errors are reported by us. */
  optind = 0;
  opterr = 0;
  return cmd->run(cmd, argc - 1, argv + 1);
}
