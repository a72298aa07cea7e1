/*
 * The impulse client commands: deploy, invoke, ls, describe, rm, scale and
 * info. A thin layer over the client library (include/impulse/client.h plus
 * runtime/client_internal.h for the control messages the public API does
 * not wrap); everything here is argument parsing and output formatting.
 *
 * Exit status: 0 success, 1 the server refused the call (or a local file
 * could not be read), 2 usage error, 3 the server could not be reached or
 * the connection failed.
 */
#include "cli.h"

#include <ctype.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "client_internal.h"

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
  OPT_IDEMPOTENCY
};

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

static void usage(FILE *out) {
  size_t n;
  const cmd_t *c = cmds(&n);
  fprintf(out,
          "usage: impulse COMMAND [ARGS...]\n"
          "\n"
          "Server:\n"
          "  %-18s %s\n"
          "  %-18s %s\n"
          "\n"
          "Client commands:\n",
          "serve", "start the server (see `impulse serve --help`)", "worker",
          "function worker process (started by the server)");
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
      IMP_CLI_COMMON_OPTIONS,
      {NULL, 0, NULL, 0}};
  conn_opts_t conn = {NULL, NULL};
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
      default:
        if ((rc = common_option(cmd, opt, argv, &conn)) >= 0) return rc;
    }
    if (bad) return IMP_CLI_EXIT_USAGE;
  }
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

static int run_scale(const cmd_t *cmd, int argc, char **argv) {
  static const struct option longopts[] = {
      {"min", required_argument, NULL, OPT_MIN},
      {"max", required_argument, NULL, OPT_MAX},
      IMP_CLI_COMMON_OPTIONS,
      {NULL, 0, NULL, 0}};
  conn_opts_t conn = {NULL, NULL};
  impulse_client_t *client = NULL;
  Impulse__Envelope req = IMPULSE__ENVELOPE__INIT, *resp = NULL;
  Impulse__ScaleRequest scale = IMPULSE__SCALE_REQUEST__INIT;
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
        if ((rc = common_option(cmd, opt, argv, &conn)) >= 0) return rc;
    }
  }
  if (argc - optind != 1) return usage_error(cmd, "expected one function NAME");
  if (!scale.has_min_instances && !scale.has_max_instances)
    return usage_error(cmd, "give --min, --max or both");
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
  if (s->kafka_bootstrap != NULL && *s->kafka_bootstrap)
    printf("kafka bootstrap:  %s\n", s->kafka_bootstrap);
  printf("abi version:      %u\n", (unsigned)s->abi_version);
  printf("invoke token:     %s\n",
         s->invoke_needs_token ? "required" : "not required");
  printf("admin:            %s\n", imp_client_is_admin(client) ? "yes" : "no");
out:
  if (resp != NULL) impulse__envelope__free_unpacked(resp, NULL);
  impulse_client_close(client);
  return rc;
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
       "  --max N              most instances (0-10000)\n"},
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
       "  --idempotency-key KEY    idempotency key sent with the call (honoured\n"
       "                           once the server stores answers by key)\n"},
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
      {"scale", run_scale, "scale NAME", "set min/max instances",
       "usage: impulse scale NAME [--min N] [--max N] [options]\n"
       "\n"
       "Sets the instances kept running and/or the most instances of NAME\n"
       "(at least one of the two) and prints the resulting values.\n"
       "\n"
       "  --min N              instances kept running (0-10000)\n"
       "  --max N              most instances (0-10000)\n"},
      {"info", run_info, "info", "show server information",
       "usage: impulse info [options]\n"
       "\n"
       "Shows the server's version, readiness, uptime, counts and limits.\n"
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
    if (strcmp(argv[2], "serve") == 0 || strcmp(argv[2], "worker") == 0) {
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
