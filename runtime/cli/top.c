/*
 * `impulse top`: the functions of a server as a table refreshed every
 * --interval seconds, for people on a shell (the dashboard at GET / on the
 * HTTP port shows the same in a browser). Each refresh is one ServerInfo
 * and one List call on one connection; calls/s is the difference of a
 * function's invocation counter between two refreshes. On a terminal the
 * screen is redrawn in place with ANSI escapes and lines are cut at its
 * width; --once prints one snapshot (calls/s is "-": there is no earlier
 * one) and exits.
 *
 * SIGINT and SIGTERM end the loop (exit 0) at the next refresh or during
 * the sleep; a call in progress finishes first (at most TOP_CALL_TIMEOUT_MS).
 */
#include "cli/top.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#define TOP_CALL_TIMEOUT_MS 10000u
#define TOP_MIN_INTERVAL_S 0.1
#define TOP_MAX_INTERVAL_S 3600.0
#define TOP_COLS 10
#define TOP_CELL 256

enum { OPT_INTERVAL = IMP_CLI_OPT_FIRST, OPT_ONCE };

/* Set by SIGINT/SIGTERM; the only state a signal handler touches. */
static volatile sig_atomic_t stop_requested;

static void on_stop_signal(int sig) {
  (void)sig;
  stop_requested = 1;
}

/* A function's invocation counter at the previous refresh. */
typedef struct top_prev_s {
  char *name; /* owned */
  uint64_t invocations;
} top_prev_t;

typedef struct top_s {
  const char *addr, *token; /* NULL: the library's defaults */
  double interval_s;
  int once;
  int tty; /* stdout is a terminal: redraw in place */
  impulse_client_t *client;
  top_prev_t *prev;
  size_t nprev;
  uint64_t prev_ms;
} top_t;

typedef struct top_row_s {
  char cell[TOP_COLS][TOP_CELL];
} top_row_t;

static const char *const head[TOP_COLS] = {
    "NAME",   "VERSION", "READY/INST", "DESIRED", "IN-FLIGHT",
    "QUEUED", "CALLS/S", "ERRORS",     "POLICY",  "REASON"};
/* Columns of numbers, aligned right. */
static const int numeric[TOP_COLS] = {0, 1, 1, 1, 1, 1, 1, 1, 0, 0};

static void prev_free(top_t *top) {
  for (size_t i = 0; i < top->nprev; i++) free(top->prev[i].name);
  free(top->prev);
  top->prev = NULL;
  top->nprev = 0;
}

static const top_prev_t *prev_find(const top_t *top, const char *name) {
  for (size_t i = 0; i < top->nprev; i++)
    if (strcmp(top->prev[i].name, name) == 0) return &top->prev[i];
  return NULL;
}

/* Remembers the counters of `l` for the next refresh's rates. */
static int prev_store(top_t *top, const Impulse__ListResponse *l,
                      uint64_t now) {
  top_prev_t *p = calloc(l->n_functions + 1, sizeof *p);
  if (p == NULL) return -ENOMEM;
  for (size_t i = 0; i < l->n_functions; i++) {
    p[i].name = strdup(l->functions[i]->name);
    p[i].invocations = l->functions[i]->invocations;
    if (p[i].name == NULL) {
      while (i-- > 0) free(p[i].name);
      free(p);
      return -ENOMEM;
    }
  }
  prev_free(top);
  top->prev = p;
  top->nprev = l->n_functions;
  top->prev_ms = now;
  return 0;
}

static const char *fmt_uptime(uint64_t ms, char *buf, size_t len) {
  unsigned long long s = ms / 1000, d = s / 86400, h = s / 3600 % 24,
                     m = s / 60 % 60;
  if (d > 0)
    snprintf(buf, len, "%llud %lluh %llum", d, h, m);
  else if (h > 0)
    snprintf(buf, len, "%lluh %llum %llus", h, m, s % 60);
  else if (m > 0)
    snprintf(buf, len, "%llum %llus", m, s % 60);
  else
    snprintf(buf, len, "%llus", s);
  return buf;
}

static void print_header(const top_t *top, const Impulse__ServerInfoResponse *s,
                         FILE *out) {
  char up[48], clock[16];
  time_t now = time(NULL);
  struct tm tm;
  if (localtime_r(&now, &tm) == NULL ||
      strftime(clock, sizeof clock, "%H:%M:%S", &tm) == 0)
    snprintf(clock, sizeof clock, "-");
  fprintf(out, "impulse %s at %s  %s  up %s  %s\n",
          s->version && *s->version ? s->version : "-",
          imp_client_addr(top->client), clock,
          fmt_uptime(s->uptime_ms, up, sizeof up),
          s->ready ? "ready" : "not ready");
  fprintf(out, "functions %u  instances %u  warm pool %u  kafka %s\n\n",
          (unsigned)s->functions, (unsigned)s->instances,
          (unsigned)s->warm_pool,
          s->kafka_bootstrap && *s->kafka_bootstrap ? s->kafka_bootstrap : "-");
}

static void fill_row(const top_t *top, const Impulse__FunctionInfo *f,
                     uint64_t now, top_row_t *r) {
  char(*c)[TOP_CELL] = r->cell;
  snprintf(c[0], TOP_CELL, "%s", f->name);
  snprintf(c[1], TOP_CELL, "%u", (unsigned)f->version);
  snprintf(c[2], TOP_CELL, "%u/%u", (unsigned)f->ready, (unsigned)f->instances);
  if (f->has_desired)
    snprintf(c[3], TOP_CELL, "%u", (unsigned)f->desired);
  else
    snprintf(c[3], TOP_CELL, "-");
  snprintf(c[4], TOP_CELL, "%u", (unsigned)f->in_flight);
  snprintf(c[5], TOP_CELL, "%u", (unsigned)f->queued);
  const top_prev_t *p = prev_find(top, f->name);
  if (p != NULL && now > top->prev_ms && f->invocations >= p->invocations)
    snprintf(c[6], TOP_CELL, "%.1f",
             (double)(f->invocations - p->invocations) * 1000.0 /
                 (double)(now - top->prev_ms));
  else
    snprintf(c[6], TOP_CELL, "-"); /* first sight, or the counter restarted */
  snprintf(c[7], TOP_CELL, "%llu", (unsigned long long)f->errors);
  const char *policy = f->policy                        ? f->policy
                       : f->config && f->config->policy ? f->config->policy
                                                        : "-";
  snprintf(c[8], TOP_CELL, "%s", policy);
  snprintf(c[9], TOP_CELL, "%s%s", f->has_panic && f->panic ? "PANIC " : "",
           f->scale_reason && *f->scale_reason ? f->scale_reason : "-");
}

static void print_table(const top_row_t *rows, size_t n, FILE *out) {
  size_t width[TOP_COLS];
  for (size_t c = 0; c < TOP_COLS; c++) width[c] = strlen(head[c]);
  for (size_t r = 0; r < n; r++)
    for (size_t c = 0; c < TOP_COLS; c++) {
      size_t w = strlen(rows[r].cell[c]);
      if (w > width[c]) width[c] = w;
    }
  for (size_t r = 0; r <= n; r++) {
    for (size_t c = 0; c < TOP_COLS; c++) {
      const char *cell = r == 0 ? head[c] : rows[r - 1].cell[c];
      if (c + 1 == TOP_COLS)
        fprintf(out, "%s\n", cell);
      else if (numeric[c])
        fprintf(out, "%*s  ", (int)width[c], cell);
      else
        fprintf(out, "%-*s  ", (int)width[c], cell);
    }
  }
}

/* Writes `text` to stdout: on a terminal from the top-left corner over the
 * previous screen, each line cut at the terminal's width and the screen cut
 * at its height; else as it is. */
static void show(const top_t *top, const char *text, size_t len) {
  if (!top->tty) {
    fwrite(text, 1, len, stdout);
    fflush(stdout);
    return;
  }
  struct winsize ws;
  size_t cols = 0, lines = 0;
  if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0) {
    cols = ws.ws_col;
    lines = ws.ws_row;
  }
  fputs("\033[H", stdout);
  size_t shown = 0;
  for (const char *p = text; p < text + len;) {
    const char *eol = memchr(p, '\n', (size_t)(text + len - p));
    size_t n = eol ? (size_t)(eol - p) : (size_t)(text + len - p);
    if (lines && shown + 1 >= lines) break; /* keep the last line free */
    fwrite(p, 1, cols && n > cols ? cols : n, stdout);
    fputs("\033[K\n", stdout); /* clear the rest of the old line */
    shown++;
    p += n + (eol != NULL);
  }
  fputs("\033[J", stdout); /* and the old lines below */
  fflush(stdout);
}

/* Prints why a call failed; returns the exit status for it. */
static int report(const top_t *top, int status, const char *what) {
  const char *msg = impulse_client_error(top->client);
  if (status == IMPULSE_S_CONNECTION || status == IMPULSE_S_PROTOCOL) {
    fprintf(stderr, "impulse top: %s: %s\n", what, msg ? msg : "");
    return IMP_CLI_EXIT_CONN;
  }
  fprintf(stderr, "impulse top: %s: %s: %s\n", what,
          impulse_status_name(status), msg ? msg : "");
  if (status == IMPULSE_S_UNAUTHENTICATED)
    fprintf(stderr,
            "impulse top: this server wants the admin token: pass "
            "--token or set IMPULSE_TOKEN\n");
  return IMP_CLI_EXIT_FAIL;
}

/* One refresh: two calls, then the screen. Returns 0 or the failed call's
 * status (not yet reported). */
static int refresh(top_t *top, const char **what) {
  Impulse__Envelope req = IMPULSE__ENVELOPE__INIT;
  Impulse__Envelope *info = NULL, *list = NULL;
  Impulse__ServerInfoRequest ireq = IMPULSE__SERVER_INFO_REQUEST__INIT;
  Impulse__ListRequest lreq = IMPULSE__LIST_REQUEST__INIT;
  top_row_t *rows = NULL;
  char *text = NULL;
  size_t len = 0;
  FILE *out = NULL;
  int rc;

  *what = "info";
  req.body_case = IMPULSE__ENVELOPE__BODY_SERVER_INFO;
  req.server_info = &ireq;
  rc = imp_client_call_expect(top->client, &req,
                              IMPULSE__ENVELOPE__BODY_SERVER_INFO_OK, &info);
  if (rc != 0) goto out;
  *what = "list";
  req.body_case = IMPULSE__ENVELOPE__BODY_LIST;
  req.list = &lreq;
  rc = imp_client_call_expect(top->client, &req,
                              IMPULSE__ENVELOPE__BODY_LIST_OK, &list);
  if (rc != 0) goto out;
  uint64_t now = imp_now_ms();

  Impulse__ListResponse *l = list->list_ok;
  /* The pointer array is ours: sort it in place. */
  imp_cli_sort(l->functions, l->n_functions, "name");
  *what = "output";
  rc = IMPULSE_S_NOMEM;
  rows = calloc(l->n_functions + 1, sizeof *rows);
  out = open_memstream(&text, &len);
  if (rows == NULL || out == NULL) goto out;
  for (size_t i = 0; i < l->n_functions; i++)
    fill_row(top, l->functions[i], now, &rows[i]);
  print_header(top, info->server_info_ok, out);
  if (l->n_functions == 0)
    fputs("no functions\n", out);
  else
    print_table(rows, l->n_functions, out);
  if (top->tty && !top->once)
    fprintf(out, "\nevery %gs; Ctrl-C quits\n", top->interval_s);
  if (fclose(out) != 0) {
    out = NULL;
    goto out;
  }
  out = NULL;
  if (prev_store(top, l, now) != 0) goto out;
  show(top, text, len);
  rc = 0;
out:
  if (out != NULL) fclose(out);
  free(text);
  free(rows);
  if (info != NULL) impulse__envelope__free_unpacked(info, NULL);
  if (list != NULL) impulse__envelope__free_unpacked(list, NULL);
  return rc;
}

static int connect_client(top_t *top) {
  impulse_client_close(top->client);
  top->client = NULL;
  int rc = impulse_client_connect(top->addr, top->token, &top->client);
  if (top->client != NULL)
    impulse_client_set_timeout(top->client, TOP_CALL_TIMEOUT_MS);
  return rc;
}

/* Sleeps `s` seconds or until a stop signal. */
static void pause_for(double s) {
  struct timespec ts;
  ts.tv_sec = (time_t)s;
  ts.tv_nsec = (long)((s - (double)ts.tv_sec) * 1e9);
  while (!stop_requested && nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

static void top_help(FILE *out) {
  fprintf(out,
          "usage: impulse top [--interval S] [--once] [options]\n"
          "\n"
          "Shows the server and a table of its functions (version, ready and\n"
          "total instances, the autoscaler's desired count, calls in flight "
          "and\n"
          "queued, calls/s since the last refresh, errors, scaling policy "
          "and\n"
          "the autoscaler's reason), refreshed every --interval seconds "
          "until\n"
          "Ctrl-C. On a terminal the screen is redrawn in place.\n"
          "\n"
          "  --interval S         seconds between refreshes (%g-%g) [1]\n"
          "  --once               print one snapshot and exit (calls/s is "
          "-)\n",
          TOP_MIN_INTERVAL_S, TOP_MAX_INTERVAL_S);
}

static int cmd_top(imp_cli_t *cli, int argc, char **argv) {
  static const struct option longopts[] = {
      {"interval", required_argument, NULL, OPT_INTERVAL},
      {"once", no_argument, NULL, OPT_ONCE},
      IMP_CLI_COMMON_OPTIONS,
      {NULL, 0, NULL, 0}};
  top_t top = {NULL, NULL, 1.0, 0, 0, NULL, NULL, 0, 0};
  int opt, rc;
  char *end;
  while ((opt = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
    switch (opt) {
      case OPT_ONCE: top.once = 1; break;
      case OPT_INTERVAL:
        top.interval_s = strtod(optarg, &end);
        if (end == optarg || *end != '\0' ||
            !(top.interval_s >= TOP_MIN_INTERVAL_S) ||
            top.interval_s > TOP_MAX_INTERVAL_S)
          return imp_cli_usage_error(cli,
                                     "--interval must be a number of seconds "
                                     "from %g to %g, not '%s'",
                                     TOP_MIN_INTERVAL_S, TOP_MAX_INTERVAL_S,
                                     optarg);
        break;
      default:
        if ((rc = imp_cli_common_option(cli, opt, argv)) >= 0) return rc;
    }
  }
  if (optind < argc)
    return imp_cli_usage_error(cli, "takes no arguments, not '%s'",
                               argv[optind]);
  top.addr = cli->addr;
  top.token = cli->token;
  top.tty = isatty(STDOUT_FILENO);

  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_stop_signal; /* no SA_RESTART: the sleep wakes up */
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);

  const char *what = "connect";
  rc = connect_client(&top);
  while (rc == 0 && !stop_requested) {
    rc = refresh(&top, &what);
    if (rc == 0 && top.once) break;
    if (!top.once && (rc == IMPULSE_S_CONNECTION || rc == IMPULSE_S_PROTOCOL)) {
      /* The server went away (a restart?): say so and keep trying. */
      char msg[512];
      int n = snprintf(msg, sizeof msg,
                       "impulse top: %s: %s\nreconnecting every %gs; "
                       "Ctrl-C quits\n",
                       what, impulse_client_error(top.client), top.interval_s);
      size_t mlen = n < 0 ? 0 : (size_t)n;
      show(&top, msg, mlen < sizeof msg ? mlen : sizeof msg - 1);
      prev_free(&top); /* its counters may start again from zero */
      rc = 0;
      while (!stop_requested) {
        pause_for(top.interval_s);
        if (!stop_requested && connect_client(&top) == 0) break;
      }
      continue;
    }
    if (rc == 0) pause_for(top.interval_s);
  }
  int status = 0;
  if (rc == IMPULSE_S_NOMEM && strcmp(what, "output") == 0) {
    fprintf(stderr, "impulse top: out of memory\n");
    status = IMP_CLI_EXIT_FAIL;
  } else if (rc != 0) {
    status = report(&top, rc, what);
  }
  prev_free(&top);
  impulse_client_close(top.client);
  return status;
}

/* ---- the command --------------------------------------------------------- */

/* clang-format off */
const imp_cli_cmd_t imp_cli_cmd_top =
    {"top", cmd_top, top_help, "top",
     "watch functions and load, refreshed live", NULL, 0};
/* clang-format on */
