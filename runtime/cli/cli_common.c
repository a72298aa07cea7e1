/*
 * What every client command does, once: parse the common options and
 * numbers, read an input file, connect, call, report a failure with the
 * right exit status, print tables and format times (cli_common.h).
 */
#include "cli/cli_common.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/codec.h"

/* clang-format off */
#define IMP_CLI_COMMON_HELP                                               \
  "  --addr HOST:PORT     server (default $IMPULSE_ADDR, else "           \
  IMP_CLIENT_DEFAULT_ADDR ")\n"                                          \
  "  --token TOKEN        admin token (default $IMPULSE_TOKEN)\n"         \
  "  -h, --help           show this help\n"
/* clang-format on */

/* ---- usage and options ------------------------------------------------- */

void imp_cli_usage(const imp_cli_cmd_t *cmd, FILE *out) {
  cmd->help(out);
  fputs(IMP_CLI_COMMON_HELP, out);
}

int imp_cli_usage_error(const imp_cli_t *cli, const char *fmt, ...) {
  va_list ap;
  fprintf(stderr, "impulse %s: ", cli->cmd->name);
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputs("\n\n", stderr);
  imp_cli_usage(cli->cmd, stderr);
  return IMP_CLI_EXIT_USAGE;
}

int imp_cli_common_option(imp_cli_t *cli, int opt, char **argv) {
  switch (opt) {
    case IMP_CLI_OPT_ADDR: cli->addr = optarg; return -1;
    case IMP_CLI_OPT_TOKEN: cli->token = optarg; return -1;
    case 'h': imp_cli_usage(cli->cmd, stdout); return 0;
    case ':':
      return imp_cli_usage_error(cli, "option '%s' needs a value",
                                 argv[optind - 1]);
    case '?':
      if (optopt != 0) {
        char flag[3] = {'-', (char)optopt, '\0'};
        return imp_cli_usage_error(cli, "unknown option '%s'", flag);
      }
      return imp_cli_usage_error(cli, "unknown option '%s'", argv[optind - 1]);
    default:
      return imp_cli_usage_error(cli, "unhandled option '%s'",
                                 argv[optind - 1]);
  }
}

int imp_cli_options(imp_cli_t *cli, int argc, char **argv, int min, int max,
                    const char *expected) {
  static const struct option longopts[] = {IMP_CLI_COMMON_OPTIONS,
                                           {NULL, 0, NULL, 0}};
  int opt, rc;
  while ((opt = getopt_long(argc, argv, ":h", longopts, NULL)) != -1)
    if ((rc = imp_cli_common_option(cli, opt, argv)) >= 0) return rc;
  if (argc - optind < min || argc - optind > max)
    return imp_cli_usage_error(cli, "%s", expected);
  return -1;
}

int imp_cli_options_name(imp_cli_t *cli, int argc, char **argv,
                         const char *noun, char **name) {
  char expected[64];
  snprintf(expected, sizeof expected, "expected one %s NAME", noun);
  int rc = imp_cli_options(cli, argc, argv, 1, 1, expected);
  if (rc >= 0) return rc;
  *name = argv[optind];
  imp_cli_what(cli, "%s %s", cli->cmd->name, *name);
  return -1;
}

int imp_cli_parse_u32(const imp_cli_t *cli, const char *flag, const char *s,
                      uint32_t lo, uint32_t hi, uint32_t *out) {
  char *end = NULL;
  unsigned long v = 0;
  errno = 0;
  if (isdigit((unsigned char)s[0])) v = strtoul(s, &end, 10);
  if (!isdigit((unsigned char)s[0]) || errno != 0 || *end != '\0' || v < lo ||
      v > hi) {
    fprintf(stderr,
            "impulse %s: %s must be a whole number from %lu to %lu, not '%s'\n",
            cli->cmd->name, flag, (unsigned long)lo, (unsigned long)hi, s);
    return IMP_CLI_EXIT_USAGE;
  }
  *out = (uint32_t)v;
  return 0;
}

int imp_cli_add_header(imp_cli_t *cli, char *arg) {
  char *eq = strchr(arg, '=');
  if (eq == NULL || eq == arg)
    return imp_cli_usage_error(cli, "header '%s' is not NAME=VALUE", arg);
  impulse_header_t *p = realloc(cli->headers, (cli->nheaders + 1) * sizeof *p);
  if (p == NULL) {
    fprintf(stderr, "impulse %s: out of memory\n", cli->cmd->name);
    return IMP_CLI_EXIT_FAIL;
  }
  cli->headers = p;
  *eq = '\0'; /* arg points into argv, which we may modify */
  p[cli->nheaders].name = arg;
  p[cli->nheaders].value = eq + 1;
  p[cli->nheaders].len = strlen(eq + 1);
  cli->nheaders++;
  return 0;
}

/* ---- input ------------------------------------------------------------- */

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

/* Reads the file at `path` whole; a file known to be too large is not
 * read at all. */
static int read_path(const char *path, size_t max, char **out, size_t *outlen) {
  struct stat st;
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -errno;
  int rc = fstat(fd, &st) != 0 ? -errno : 0;
  if (rc == 0 && S_ISREG(st.st_mode) && (uint64_t)st.st_size > max) rc = -EFBIG;
  if (rc == 0) rc = read_fd_all(fd, max, out, outlen);
  close(fd);
  return rc;
}

int imp_cli_read_input(imp_cli_t *cli, const char *path) {
  char **data = &cli->input;
  size_t *len = &cli->input_len;
  int rc;
  free(cli->input);
  cli->input = NULL;
  if (path == NULL || strcmp(path, "-") == 0) {
    if (isatty(STDIN_FILENO))
      fprintf(stderr, "impulse %s: reading from stdin (end with Ctrl-D)\n",
              cli->cmd->name);
    rc = read_fd_all(STDIN_FILENO, IMP_CLI_MAX_INPUT, data, len);
    path = "stdin";
  } else {
    rc = read_path(path, IMP_CLI_MAX_INPUT, data, len);
  }
  if (rc == 0) return 0;
  if (rc == -EFBIG)
    fprintf(stderr, "impulse %s: %s: larger than the %u MiB limit\n",
            cli->cmd->name, path, IMP_CLI_MAX_INPUT >> 20);
  else
    fprintf(stderr, "impulse %s: %s: %s\n", cli->cmd->name, path,
            imp_strerror(rc));
  return IMP_CLI_EXIT_FAIL;
}

int imp_cli_check_frame(const imp_cli_t *cli, const char *label, size_t len) {
  size_t max = imp_client_max_frame(cli->client);
  if (len <= max) return 0;
  fprintf(stderr,
          "impulse %s: %s is %zu bytes, above the %zu-byte frame limit of the "
          "server at %s (its --max-frame): not sent\n",
          cli->cmd->name, label, len, max, imp_client_addr(cli->client));
  return IMP_CLI_EXIT_FAIL;
}

int imp_cli_check_name(const imp_cli_t *cli, const char *what,
                       const char *name) {
  if (imp_name_valid(name)) return 0;
  return imp_cli_usage_error(cli,
                             "%s '%.80s' is not a valid name: 1 to %d "
                             "letters, digits, '-', '_' or '.', starting "
                             "with a letter or digit",
                             what, name, IMP_NAME_MAX);
}

/* ---- calls ------------------------------------------------------------- */

void imp_cli_what(imp_cli_t *cli, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(cli->what, sizeof cli->what, fmt, ap);
  va_end(ap);
}

int imp_cli_report(const imp_cli_t *cli, int status) {
  const char *msg = impulse_client_error(cli->client);
  switch (status) {
    case IMPULSE_S_CONNECTION:
    case IMPULSE_S_PROTOCOL:
      /* The library's message names the address. */
      fprintf(stderr, "impulse: %s: %s\n", cli->what, msg);
      return IMP_CLI_EXIT_CONN;
    case IMPULSE_S_INVALID:
      fprintf(stderr, "impulse: %s: %s\n", cli->what, msg);
      return IMP_CLI_EXIT_USAGE;
    default:
      fprintf(stderr, "impulse: %s: %s: %s\n", cli->what,
              impulse_status_name(status), msg);
      if (status == IMPULSE_S_UNAUTHENTICATED)
        fprintf(stderr,
                "impulse: this call needs a token: pass --token or set "
                "IMPULSE_TOKEN (the admin token is in STATE_DIR/admin.token; "
                "`impulse token create` makes scoped ones)\n");
      else if (status == IMPULSE_S_PERMISSION_DENIED)
        fprintf(stderr,
                "impulse: the token is valid but not allowed this call; use a "
                "token with the scope named above\n");
      return IMP_CLI_EXIT_FAIL;
  }
}

int imp_cli_connect(imp_cli_t *cli) {
  int rc = impulse_client_connect(cli->addr, cli->token, &cli->client);
  return rc == 0 ? 0 : imp_cli_report(cli, rc);
}

int imp_cli_call(imp_cli_t *cli, Impulse__Envelope__BodyCase body_case,
                 void *body, Impulse__Envelope__BodyCase expect) {
  Impulse__Envelope req = IMPULSE__ENVELOPE__INIT;
  int rc = imp_envelope_set_body(&req, body_case, body);
  if (rc != 0) return imp_cli_report(cli, rc);
  if (cli->client == NULL && (rc = imp_cli_connect(cli)) != 0) return rc;
  if (cli->resp != NULL) impulse__envelope__free_unpacked(cli->resp, NULL);
  cli->resp = NULL;
  rc = imp_client_call_expect(cli->client, &req, expect, &cli->resp);
  return rc == 0 ? 0 : imp_cli_report(cli, rc);
}

void imp_cli_free(imp_cli_t *cli) {
  if (cli->resp != NULL) impulse__envelope__free_unpacked(cli->resp, NULL);
  impulse_client_close(cli->client);
  free(cli->input);
  free(cli->headers);
  cli->resp = NULL;
  cli->client = NULL;
  cli->input = NULL;
  cli->headers = NULL;
  cli->nheaders = 0;
}

int imp_cli_nomem(const imp_cli_t *cli) {
  fprintf(stderr, "impulse: %s: out of memory\n", cli->what);
  return IMP_CLI_EXIT_FAIL;
}

/* ---- output ------------------------------------------------------------ */

void imp_cli_table_add(imp_cli_table_t *table, const char *fmt, ...) {
  if (table->nomem) return;
  if (table->nrows == table->cap) {
    size_t cap = table->cap ? table->cap * 2 : 16;
    char **p = realloc(table->rows, cap * sizeof *p);
    if (p == NULL) {
      table->nomem = 1;
      return;
    }
    table->rows = p;
    table->cap = cap;
  }
  va_list ap;
  va_start(ap, fmt);
  int n = vasprintf(&table->rows[table->nrows], fmt, ap);
  va_end(ap);
  if (n < 0) {
    table->nomem = 1;
    return;
  }
  if (table->nrows++ == 0)
    for (const char *s = table->rows[0]; s != NULL; s = strchr(s + 1, '\t'))
      table->ncols++;
}

/* The value at `path` in `msg`: returns its field, with *str set for a
 * string and *num for a number, or NULL when a sub-message is missing. */
static const ProtobufCFieldDescriptor *sort_value(const ProtobufCMessage *msg,
                                                  const char *path,
                                                  const char **str,
                                                  uint64_t *num) {
  *str = NULL;
  *num = 0;
  while (msg != NULL) {
    char name[64];
    size_t len = strcspn(path, ".");
    snprintf(name, sizeof name, "%.*s", (int)len, path);
    const ProtobufCFieldDescriptor *f =
        protobuf_c_message_descriptor_get_field_by_name(msg->descriptor, name);
    if (f == NULL) abort(); /* a listing names a field its message lacks */
    const char *at = (const char *)msg + f->offset;
    if (path[len] == '\0') {
      switch (f->type) {
        case PROTOBUF_C_TYPE_STRING: *str = *(char *const *)at; break;
        case PROTOBUF_C_TYPE_UINT64:
        case PROTOBUF_C_TYPE_FIXED64: *num = *(const uint64_t *)at; break;
        case PROTOBUF_C_TYPE_INT32: {
          int32_t v = *(const int32_t *)at; /* INT32_MIN sorts as 0 */
          *num = (uint64_t)((int64_t)v - INT32_MIN);
          break;
        }
        default: /* uint32, fixed32, enum */
          *num = *(const uint32_t *)at;
          break;
      }
      return f;
    }
    msg = *(ProtobufCMessage *const *)at;
    path += len + 1;
  }
  return NULL; /* a sub-message on the way is missing */
}

static int by_path(const void *a, const void *b, void *path) {
  const char *sa, *sb;
  uint64_t na, nb;
  const ProtobufCFieldDescriptor *fa =
      sort_value(*(ProtobufCMessage *const *)a, path, &sa, &na);
  const ProtobufCFieldDescriptor *fb =
      sort_value(*(ProtobufCMessage *const *)b, path, &sb, &nb);
  const ProtobufCFieldDescriptor *f = fa != NULL ? fa : fb;
  if (f != NULL && f->type == PROTOBUF_C_TYPE_STRING)
    return strcmp(sa ? sa : "", sb ? sb : "");
  return na < nb ? -1 : na > nb;
}

void imp_cli_sort(void *items, size_t n, const char *path) {
  qsort_r(items, n, sizeof(ProtobufCMessage *), by_path, (void *)path);
}

int imp_cli_list(const imp_cli_t *cli, const imp_cli_list_t *list, void *items,
                 size_t n) {
  if (n == 0) {
    printf("%s\n", list->none);
    return 0;
  }
  /* Pointers to messages, all of one size (a repeated message field). */
  const size_t size = sizeof(Impulse__Envelope *);
  if (list->sort_by != NULL) imp_cli_sort(items, n, list->sort_by);
  imp_cli_table_t table = {0};
  imp_cli_table_add(&table, "%s", list->header);
  for (size_t i = 0; i < n; i++) list->row(&table, (char *)items + i * size);
  return imp_cli_table_print(cli, &table);
}

/* Length of the cell at `s`: up to the next '\t', or all of the last. */
static size_t cell_len(const char *s, size_t col, size_t ncols) {
  const char *tab = col + 1 < ncols ? strchr(s, '\t') : NULL;
  return tab ? (size_t)(tab - s) : strlen(s);
}

int imp_cli_table_print(const imp_cli_t *cli, imp_cli_table_t *table) {
  size_t width[16] = {0};
  int rc = 0;
  if (table->nomem) {
    rc = imp_cli_nomem(cli);
    goto out;
  }
  for (size_t r = 0; r < table->nrows; r++) {
    const char *s = table->rows[r];
    for (size_t c = 0; c < table->ncols && c < IMP_ARRAY_SIZE(width); c++) {
      size_t n = cell_len(s, c, table->ncols);
      if (n > width[c]) width[c] = n;
      s += n + (s[n] == '\t');
    }
  }
  for (size_t r = 0; r < table->nrows; r++) {
    const char *s = table->rows[r];
    for (size_t c = 0; c < table->ncols; c++) {
      size_t n = cell_len(s, c, table->ncols);
      if (c + 1 == table->ncols)
        printf("%.*s\n", (int)n, s);
      else
        printf("%-*.*s  ", c < IMP_ARRAY_SIZE(width) ? (int)width[c] : 0,
               (int)n, s);
      s += n + (s[n] == '\t');
    }
  }
out:
  for (size_t r = 0; r < table->nrows; r++) free(table->rows[r]);
  free(table->rows);
  table->rows = NULL;
  table->nrows = table->cap = 0;
  return rc;
}

const char *imp_cli_fmt_time(uint64_t ms, char *buf, size_t len) {
  struct tm tm;
  time_t t = (time_t)(ms / 1000);
  if (ms == 0 || (uint64_t)t != ms / 1000 || gmtime_r(&t, &tm) == NULL ||
      strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
    snprintf(buf, len, "-");
  return buf;
}

const char *imp_cli_fmt_duration(uint64_t ms, char *buf, size_t len) {
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

const char *imp_cli_str_or(const char *s, const char *dflt) {
  return s != NULL && *s ? s : dflt;
}
