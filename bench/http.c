/*
 * impulse-bench-http: the HTTP front end against the cheapest HTTP server
 * on the same machine, in one run, both driven by wrk with the same
 * threads, connections, duration and request (a POST with a small body).
 *
 *   1. The floor: a child process runs a minimal libuv HTTP responder on a
 *      free loopback port, parsing with the same library as Impulse
 *      (http-parser) and answering every request with a fixed 200 whose
 *      body has the request body's size; keep-alive, every answer of a read
 *      in one write.
 *   2. `impulse serve --http 127.0.0.1:PORT` in a temp state dir; echo is
 *      deployed with min = max = --instances and --fn-concurrency.
 *   3. wrk (a short warm-up, then the measured run) against the floor,
 *      then against POST /function/echo on Impulse (the floor idles).
 *   4. Requests/s, latency p50/p99 (wrk --latency) and non-2xx answers for
 *      both, with the ratios.
 *
 * Like impulse-bench it is a benchmark, not a test: exit status 0 when the
 * run completed, 1 when it failed, 2 for a usage error (or no wrk), 130 when
 * interrupted. wrk is not installed by scripts/install-deps.sh:
 * `apt-get install wrk`.
 */
#include <errno.h>
#include <fcntl.h>
#include <http_parser.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "bench.h"
#include "impulse/client.h"
#include "support.h"

#define READY_TIMEOUT_MS 15000u
#define WRK_SLACK_S 30 /* wrk is killed this long after its duration */

typedef struct opts_s {
  const char *impulse;
  const char *functions;
  unsigned threads, connections, duration_s, warmup_s, payload;
  unsigned instances, fn_concurrency, warm_pool;
} opts_t;

typedef struct wrk_res_s {
  double rps;
  double p50_us, p99_us;
  unsigned long long requests, non2xx, socket_errors;
  int ok;
} wrk_res_t;

/* ---- the floor: a minimal HTTP responder -----------------------------------
 */

static size_t floor_body_len; /* set before the fork; the child only reads */

typedef struct fconn_s {
  uv_tcp_t tcp;
  http_parser parser;
  unsigned answers; /* complete requests in the current read */
} fconn_t;

typedef struct fwrite_s {
  uv_write_t req;
  char *data;
} fwrite_t;

static char *floor_resp;
static size_t floor_resp_len;
static char floor_rbuf[64 * 1024];

static void floor_closed(uv_handle_t *h) {
  free(h->data);
}

static void floor_written(uv_write_t *req, int status) {
  fwrite_t *w = (fwrite_t *)req;
  (void)status;
  free(w->data);
  free(w);
}

static int floor_on_complete(http_parser *p) {
  ((fconn_t *)p->data)->answers++;
  return 0;
}

static void floor_alloc(uv_handle_t *h, size_t s, uv_buf_t *b) {
  (void)h;
  (void)s;
  *b = uv_buf_init(floor_rbuf, sizeof floor_rbuf);
}

static void floor_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf) {
  fconn_t *c = s->data;
  if (n < 0) {
    uv_close((uv_handle_t *)s, floor_closed);
    return;
  }
  if (n == 0) return;
  static http_parser_settings settings = {.on_message_complete =
                                              floor_on_complete};
  c->answers = 0;
  size_t done =
      http_parser_execute(&c->parser, &settings, buf->base, (size_t)n);
  if (HTTP_PARSER_ERRNO(&c->parser) != HPE_OK || done != (size_t)n) {
    uv_close((uv_handle_t *)s, floor_closed);
    return;
  }
  if (c->answers == 0) return;
  /* Every answer of this read in one write. */
  fwrite_t *w = malloc(sizeof *w);
  size_t len = floor_resp_len * c->answers;
  w->data = malloc(len);
  for (unsigned i = 0; i < c->answers; i++)
    memcpy(w->data + i * floor_resp_len, floor_resp, floor_resp_len);
  uv_buf_t b = uv_buf_init(w->data, (unsigned)len);
  if (uv_write(&w->req, s, &b, 1, floor_written) != 0) {
    free(w->data);
    free(w);
    uv_close((uv_handle_t *)s, floor_closed);
  }
}

static void floor_connection(uv_stream_t *l, int status) {
  if (status < 0) return;
  fconn_t *c = calloc(1, sizeof *c);
  uv_tcp_init(l->loop, &c->tcp);
  c->tcp.data = c;
  http_parser_init(&c->parser, HTTP_REQUEST);
  c->parser.data = c;
  if (uv_accept(l, (uv_stream_t *)&c->tcp) != 0) {
    uv_close((uv_handle_t *)&c->tcp, floor_closed);
    return;
  }
  uv_tcp_nodelay(&c->tcp, 1);
  uv_read_start((uv_stream_t *)&c->tcp, floor_alloc, floor_read);
}

static void floor_main(int report_fd) {
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  signal(SIGPIPE, SIG_IGN);
  char head[256];
  int hl = snprintf(head, sizeof head,
                    "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream"
                    "\r\nContent-Length: %zu\r\n\r\n",
                    floor_body_len);
  floor_resp_len = (size_t)hl + floor_body_len;
  floor_resp = malloc(floor_resp_len);
  memcpy(floor_resp, head, (size_t)hl);
  memset(floor_resp + hl, 'x', floor_body_len);
  uv_loop_t *loop = uv_default_loop();
  uv_tcp_t listener;
  struct sockaddr_in sa;
  uv_ip4_addr("127.0.0.1", 0, &sa);
  uv_tcp_init(loop, &listener);
  int port = -1;
  if (uv_tcp_bind(&listener, (struct sockaddr *)&sa, 0) == 0 &&
      uv_listen((uv_stream_t *)&listener, 1024, floor_connection) == 0) {
    int len = sizeof sa;
    uv_tcp_getsockname(&listener, (struct sockaddr *)&sa, &len);
    port = ntohs(sa.sin_port);
  }
  if (write(report_fd, &port, sizeof port) != (ssize_t)sizeof port || port < 0)
    _exit(1);
  close(report_fd);
  uv_run(loop, UV_RUN_DEFAULT);
  _exit(0);
}

/* ---- wrk
 * --------------------------------------------------------------------- */

static int find_wrk(void) {
  const char *path = getenv("PATH");
  char buf[1024];
  snprintf(buf, sizeof buf, "%s", path ? path : "/usr/bin:/bin");
  for (char *dir = strtok(buf, ":"); dir; dir = strtok(NULL, ":")) {
    char p[1200];
    snprintf(p, sizeof p, "%s/wrk", dir);
    if (access(p, X_OK) == 0) return 0;
  }
  return -1;
}

/* Runs wrk, stdout into a malloc'd string. Exit status or -1. */
static int run_wrk(const opts_t *o, const char *script, const char *url,
                   unsigned seconds, char **out) {
  char t[16], c[16], d[16];
  snprintf(t, sizeof t, "%u", o->threads);
  snprintf(c, sizeof c, "%u", o->connections);
  snprintf(d, sizeof d, "%us", seconds);
  const char *argv[] = {"wrk", "-t",        t,    "-c",   c,   "-d",
                        d,     "--latency", "-s", script, url, NULL};
  int st = sup_run(argv, NULL, out, (seconds + WRK_SLACK_S) * 1000u,
                   &bench_interrupted);
  return st < 0 ? -1 : st;
}

/* "260.00us", "1.20ms", "1.05s" in microseconds, or -1. */
static double parse_latency(const char *s) {
  char *end;
  double v = strtod(s, &end);
  if (end == s) return -1;
  if (strncmp(end, "us", 2) == 0) return v;
  if (strncmp(end, "ms", 2) == 0) return v * 1000;
  if (strncmp(end, "s", 1) == 0) return v * 1e6;
  if (strncmp(end, "m", 1) == 0) return v * 60e6;
  return -1;
}

static void parse_wrk(const char *out, wrk_res_t *r) {
  memset(r, 0, sizeof *r);
  r->p50_us = r->p99_us = -1;
  const char *p;
  if ((p = strstr(out, "Requests/sec:")) != NULL) r->rps = strtod(p + 13, NULL);
  if ((p = strstr(out, "Latency Distribution")) != NULL) {
    const char *q50 = strstr(p, "50%"), *q99 = strstr(p, "99%");
    if (q50) r->p50_us = parse_latency(q50 + 3 + strspn(q50 + 3, " \t"));
    if (q99) r->p99_us = parse_latency(q99 + 3 + strspn(q99 + 3, " \t"));
  }
  for (p = out; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
    unsigned long long n;
    if (sscanf(p, " %llu requests in", &n) == 1) r->requests = n;
  }
  if ((p = strstr(out, "Non-2xx or 3xx responses:")) != NULL)
    r->non2xx = strtoull(p + 25, NULL, 10);
  if ((p = strstr(out, "Socket errors:")) != NULL) {
    unsigned long long a = 0, b = 0, c = 0, d = 0;
    sscanf(p,
           "Socket errors: connect %llu, read %llu, write %llu, timeout %llu",
           &a, &b, &c, &d);
    r->socket_errors = a + b + c + d;
  }
  r->ok = r->rps > 0 && r->p50_us >= 0 && r->p99_us >= 0;
}

static int measure(const opts_t *o, const char *what, const char *script,
                   const char *url, wrk_res_t *res) {
  char *out = NULL;
  if (o->warmup_s) {
    fprintf(stderr, "impulse-bench-http: %s: warm-up %u s...\n", what,
            o->warmup_s);
    int st = run_wrk(o, script, url, o->warmup_s, &out);
    free(out);
    if (st != 0) {
      fprintf(stderr, "impulse-bench-http: wrk failed (%d)\n", st);
      return -1;
    }
  }
  fprintf(stderr, "impulse-bench-http: %s: wrk -t%u -c%u -d%us --latency %s\n",
          what, o->threads, o->connections, o->duration_s, url);
  int st = run_wrk(o, script, url, o->duration_s, &out);
  if (st != 0 || out == NULL) {
    fprintf(stderr, "impulse-bench-http: wrk failed (%d)\n%s", st,
            out ? out : "");
    free(out);
    return -1;
  }
  parse_wrk(out, res);
  if (!res->ok) {
    fprintf(stderr, "impulse-bench-http: cannot read wrk's output:\n%s", out);
    free(out);
    return -1;
  }
  free(out);
  return 0;
}

/* ---- impulse
 * ----------------------------------------------------------------- */

static int deploy_echo(const opts_t *o, int port, const char *token) {
  char addr[64], path[1024];
  snprintf(addr, sizeof addr, "127.0.0.1:%d", port);
  snprintf(path, sizeof path, "%s/echo.so", o->functions);
  impulse_client_t *client = bench_connect("impulse-bench-http", addr, token);
  if (client == NULL) return -1;
  bench_deploy_opts_t d = {.concurrency = o->fn_concurrency,
                           .min_instances = o->instances,
                           .max_instances = o->instances};
  int rc = bench_deploy_file("impulse-bench-http", client, "echo", path, &d);
  /* One call through each path so the instances are up. */
  for (int i = 0; rc == 0 && i < 20; i++) {
    impulse_response_t *resp = NULL;
    rc = impulse_invoke(client, "echo", "w", 1, NULL, &resp);
    impulse_response_free(resp);
  }
  impulse_client_close(client);
  return rc == 0 ? 0 : -1;
}

/* ---- main
 * ---------------------------------------------------------------------- */

static void usage(FILE *f) {
  fprintf(f,
          "Usage: impulse-bench-http [options]\n"
          "\n"
          "Runs wrk against POST /function/echo on `impulse serve --http` and "
          "against\n"
          "a minimal libuv HTTP responder (the floor), and reports both.\n"
          "\n"
          "  --impulse PATH        impulse binary [build/impulse]\n"
          "  --functions DIR       where echo.so is [build/functions]\n"
          "  --threads N           wrk threads [2]\n"
          "  --connections N       wrk connections [64]\n"
          "  --duration S          measured seconds per target [10]\n"
          "  --warmup S            unmeasured seconds before each [2]\n"
          "  --payload BYTES       request body size [64]\n"
          "  --instances N         echo's min and max instances [2]\n"
          "  --fn-concurrency N    echo's per-instance concurrency [1]\n"
          "  --warm-pool N         the server's --warm-pool [2]\n"
          "  -h, --help            this text\n");
}

static int parse_opts(int argc, char **argv, opts_t *o) {
  o->impulse = "build/impulse";
  o->functions = "build/functions";
  o->threads = 2;
  o->connections = 64;
  o->duration_s = 10;
  o->warmup_s = 2;
  o->payload = 64;
  o->instances = 2;
  o->fn_concurrency = 1;
  o->warm_pool = 2;
  const bench_opt_t opts[] = {
      {"impulse", BENCH_OPT_STR, &o->impulse, 0, 0},
      {"functions", BENCH_OPT_STR, &o->functions, 0, 0},
      {"threads", BENCH_OPT_UINT, &o->threads, 1, 64},
      {"connections", BENCH_OPT_UINT, &o->connections, 1, 10000},
      {"duration", BENCH_OPT_UINT, &o->duration_s, 1, 3600},
      {"warmup", BENCH_OPT_UINT, &o->warmup_s, 0, 600},
      {"payload", BENCH_OPT_UINT, &o->payload, 0, 1 << 20},
      {"instances", BENCH_OPT_UINT, &o->instances, 1, 64},
      {"fn-concurrency", BENCH_OPT_UINT, &o->fn_concurrency, 1, 1024},
      {"warm-pool", BENCH_OPT_UINT, &o->warm_pool, 0, 64},
  };
  int rc = bench_parse_opts("impulse-bench-http", argc, argv, opts,
                            sizeof opts / sizeof opts[0], usage);
  if (rc == 1) exit(0);
  if (rc != 0) return -1;
  if (o->connections < o->threads) o->connections = o->threads;
  return 0;
}

static double ratio(double a, double b) {
  return b > 0 ? a / b : 0;
}

int main(int argc, char **argv) {
  opts_t o;
  if (parse_opts(argc, argv, &o) != 0) return 2;
  if (find_wrk() != 0) {
    fprintf(stderr,
            "impulse-bench-http: wrk is not installed (apt-get install "
            "wrk)\n");
    return 2;
  }
  if (bench_procs_init() != 0) return 1;
  int rc = 1;
  char script[512], url[128], http[64], token[128];
  wrk_res_t imp, flo;
  int fport = -1, port = -1, hport = sup_free_port();

  /* The request: POST with a body of --payload bytes. */
  snprintf(script, sizeof script, "%s/post.lua", bench_tmpdir());
  FILE *f = fopen(script, "w");
  if (f == NULL) goto out;
  fprintf(f,
          "wrk.method = \"POST\"\n"
          "wrk.body = string.rep(\"x\", %u)\n"
          "wrk.headers[\"Content-Type\"] = \"application/octet-stream\"\n",
          o.payload);
  fclose(f);

  /* The floor first, while nothing else runs; it idles afterwards. */
  floor_body_len = o.payload;
  if (bench_child_start(floor_main, &fport) != 0) goto out;
  snprintf(url, sizeof url, "http://127.0.0.1:%d/function/echo", fport);
  if (measure(&o, "floor", script, url, &flo) != 0) goto out;

  snprintf(http, sizeof http, "127.0.0.1:%d", hport);
  bench_impulse_set_http(http);
  if (hport < 0 || bench_impulse_start(o.impulse, o.warm_pool, READY_TIMEOUT_MS,
                                       &port, token, sizeof token) != 0)
    goto out;
  if (deploy_echo(&o, port, token) != 0) goto out;
  snprintf(url, sizeof url, "http://%s/function/echo", http);
  if (measure(&o, "impulse", script, url, &imp) != 0) goto out;

  time_t now = time(NULL);
  char date[64];
  strftime(date, sizeof date, "%Y-%m-%d %H:%M UTC", gmtime(&now));
  printf("impulse-bench-http  %s\n", date);
  printf(
      "wrk -t%u -c%u -d%us --latency, POST with a %u-byte body; echo %u x "
      "concurrency %u\n\n",
      o.threads, o.connections, o.duration_s, o.payload, o.instances,
      o.fn_concurrency);
  printf("%-34s %12s %12s %12s\n", "", "floor", "impulse", "impulse/floor");
  printf("%-34s %12.0f %12.0f %11.1f%%\n", "requests/s", flo.rps, imp.rps,
         100 * ratio(imp.rps, flo.rps));
  printf("%-34s %12.1f %12.1f %11.2fx\n", "latency p50 (us)", flo.p50_us,
         imp.p50_us, ratio(imp.p50_us, flo.p50_us));
  printf("%-34s %12.1f %12.1f %11.2fx\n", "latency p99 (us)", flo.p99_us,
         imp.p99_us, ratio(imp.p99_us, flo.p99_us));
  printf("%-34s %12llu %12llu\n", "requests", flo.requests, imp.requests);
  printf("%-34s %12llu %12llu\n", "non-2xx answers", flo.non2xx, imp.non2xx);
  printf("%-34s %12llu %12llu\n", "socket errors", flo.socket_errors,
         imp.socket_errors);
  rc = 0;
out:
  bench_procs_cleanup();
  if (bench_interrupted) return 130;
  return rc;
}
