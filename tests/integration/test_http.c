/*
 * Integration: the HTTP front end and /metrics, driven with curl (an HTTP
 * client that is not ours), raw sockets for what curl will not send, and
 * kcat to read published events back.
 *
 *   POST /function/echo                -> 200, the payload back
 *   X-Impulse-Header-greeting          -> reaches the function; its response
 *                                         headers come back as
 *                                         X-Impulse-Header-*
 *   unknown function / endpoint        -> 404
 *   GET on /function/, POST on /healthz-> 405 with Allow
 *   body above --max-frame             -> 413, the next request is served
 *   bad name, bad deadline header      -> 400
 *   crash.c (segv / bad input)         -> 502 CRASHED / FUNCTION_ERROR
 *   hang.c past its timeout, or past
 *   X-Impulse-Deadline-Ms              -> 504
 *   hang.c busy (max 1, concurrency 1),
 *   short --queue-timeout              -> 429 for the next call
 *   --invoke-auth token                -> 401 without / with a wrong token,
 *                                         200 with it; probes stay open
 *   raw garbage                        -> 400, Connection: close, closed;
 *                                         curl is served right after
 *   a request line without a version,
 *   HTTP/9.9, HTTP/2.0                 -> 400, 505, 505, closed
 *   headers above the limit            -> 431, closed
 *   three pipelined requests           -> three answers, in order
 *   POST /topics (binary, structured,
 *   data_base64)                       -> 202; kcat reads key, value and the
 *                                         ce_* headers
 *   bad JSON, missing attribute, bad
 *   topic, record above Kafka's limit  -> 400 / 400 / 400 / 413
 *   /healthz, /readyz, /api/state      -> 200 and their content
 *   /metrics after exactly N calls     -> invocations_total{ok} == N,
 *                                         histogram count == N, buckets
 *                                         cumulative, every line well formed
 *   the same idempotency key twice     -> idempotent_hits_total == 1; the
 *                                         autoscaler and warm-pool families
 *                                         are present
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cmocka.h>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "harness_kafka.h"
#include "tests/support/test_main.h"

#ifndef IT_ARTIFACTS_DIR
#error "IT_ARTIFACTS_DIR must be defined by the build"
#endif

#define CALL_TIMEOUT_MS 20000u
#define RUN_TIMEOUT_MS 30000u

/* ---- curl ------------------------------------------------------------------
 */

typedef struct http_res_s {
  int code;   /* status, 0 when curl got no answer */
  char *body; /* NUL-terminated */
  size_t len;
  char *headers; /* the raw header block(s), NUL-terminated */
} http_res_t;

static void res_free(http_res_t *r) {
  free(r->body);
  free(r->headers);
  memset(r, 0, sizeof *r);
}

/* One request with curl: `method` on http://HTTP_ADDR`path`, the body (may
 * be NULL) sent as is, `headers` "Name: value" (NULL-terminated, may be
 * NULL). Fails the test when curl cannot run. */
static void http_req(const it_server_t *s, http_res_t *res, const char *method,
                     const char *path, const void *body, size_t blen,
                     const char *const *headers) {
  char url[512], bodyfile[256], outfile[256], hdrfile[256], data[300];
  static unsigned seq;
  seq++;
  snprintf(url, sizeof url, "http://%s%s", s->http_addr, path);
  snprintf(bodyfile, sizeof bodyfile, "%s/req-%u", s->root, seq);
  snprintf(outfile, sizeof outfile, "%s/resp-%u", s->root, seq);
  snprintf(hdrfile, sizeof hdrfile, "%s/hdr-%u", s->root, seq);
  const char *argv[64];
  int n = 0;
  argv[n++] = "curl";
  argv[n++] = "-sS";
  argv[n++] = "--max-time";
  argv[n++] = "30";
  argv[n++] = "-o";
  argv[n++] = outfile;
  argv[n++] = "-D";
  argv[n++] = hdrfile;
  argv[n++] = "-w";
  argv[n++] = "%{http_code}";
  argv[n++] = "-X";
  argv[n++] = method;
  if (body != NULL) {
    assert_int_equal(it_write_file(bodyfile, body, blen), 0);
    snprintf(data, sizeof data, "@%s", bodyfile);
    argv[n++] = "--data-binary";
    argv[n++] = data;
  }
  for (size_t i = 0; headers && headers[i] && n < 60; i++) {
    argv[n++] = "-H";
    argv[n++] = headers[i];
  }
  argv[n++] = url;
  argv[n] = NULL;
  char *out = NULL;
  int st = it_run(argv, NULL, &out, RUN_TIMEOUT_MS);
  memset(res, 0, sizeof *res);
  res->code = out ? atoi(out) : 0;
  if (st != 0)
    fprintf(stderr, "curl %s %s: exit %d, code %d\n", method, path, st,
            res->code);
  free(out);
  if (it_read_file(outfile, &res->body, &res->len) != 0) {
    res->body = strdup("");
    res->len = 0;
  }
  size_t hl;
  if (it_read_file(hdrfile, &res->headers, &hl) != 0) res->headers = strdup("");
  unlink(bodyfile);
  unlink(outfile);
  unlink(hdrfile);
}

#define HTTP(s, res, method, path, body, blen, ...)      \
  http_req((s), (res), (method), (path), (body), (blen), \
           (const char *const[]){__VA_ARGS__, NULL})

/* Value of header `name` in the last header block, or NULL (into buf). */
static char *res_header(const http_res_t *r, const char *name, char *buf,
                        size_t len) {
  size_t nl = strlen(name);
  char *found = NULL;
  for (const char *line = r->headers; line && *line;) {
    const char *eol = strchr(line, '\n');
    size_t ll = eol ? (size_t)(eol - line) : strlen(line);
    if (ll > nl && strncasecmp(line, name, nl) == 0 && line[nl] == ':') {
      const char *v = line + nl + 1;
      while (*v == ' ') v++;
      size_t vl = (size_t)(line + ll - v);
      while (vl && (v[vl - 1] == '\r' || v[vl - 1] == ' ')) vl--;
      snprintf(buf, len, "%.*s", (int)vl, v);
      found = buf;
    }
    line = eol ? eol + 1 : NULL;
  }
  return found;
}

/* The answer is `code` with a one-line JSON error naming `error`. */
static void expect_error(const http_res_t *r, int code, const char *error) {
  char want[80];
  snprintf(want, sizeof want, "{\"error\":\"%s\",\"message\":", error);
  if (r->code != code || strncmp(r->body, want, strlen(want)) != 0)
    fprintf(stderr, "expected %d %s, got %d: %s\n", code, error, r->code,
            r->body);
  assert_int_equal(r->code, code);
  assert_memory_equal(r->body, want, strlen(want));
  /* One line: the only newline ends it. */
  assert_true(r->len > 0 && r->body[r->len - 1] == '\n');
  assert_null(memchr(r->body, '\n', r->len - 1));
  char ct[128];
  assert_non_null(res_header(r, "Content-Type", ct, sizeof ct));
  assert_string_equal(ct, "application/json");
}

static void expect_body(const http_res_t *r, int code, const char *body) {
  if (r->code != code || r->len != strlen(body) ||
      memcmp(r->body, body, r->len) != 0)
    fprintf(stderr, "expected %d '%s', got %d '%s'\n", code, body, r->code,
            r->body);
  assert_int_equal(r->code, code);
  assert_int_equal(r->len, strlen(body));
  assert_memory_equal(r->body, body, r->len);
}

/* What http_expect() checks the answer's body against. */
typedef enum answer_e {
  BODY,      /* exactly this body */
  JSON_ERROR /* the one-line JSON error naming this (expect_error) */
} answer_t;

/* One request (HTTP) with a NUL-terminated body (NULL: none) and one
 * header, whose answer must be `code` with the `kind` of body `text`. */
static void http_expect(const it_server_t *s, const char *method,
                        const char *path, const char *body, const char *header,
                        int code, answer_t kind, const char *text) {
  http_res_t r;
  HTTP(s, &r, method, path, body, body ? strlen(body) : 0, header);
  if (kind == JSON_ERROR)
    expect_error(&r, code, text);
  else
    expect_body(&r, code, text);
  res_free(&r);
}

/* A body of `size` bytes of `fill` posted to `path` gets 413 TOO_LARGE. */
static void expect_too_large(const it_server_t *s, const char *path,
                             size_t size, char fill) {
  char *payload = malloc(size);
  assert_non_null(payload);
  memset(payload, fill, size);
  http_res_t r;
  HTTP(s, &r, "POST", path, payload, size, "X-A: b");
  expect_error(&r, 413, "TOO_LARGE");
  res_free(&r);
  free(payload);
}

/* ---- raw sockets -----------------------------------------------------------
 */

static int raw_connect(const it_server_t *s) {
  int fd = it_http_connect(s);
  assert_true(fd >= 0);
  return fd;
}

static char *raw_read_all(int fd, unsigned ms, int *closed) {
  char *out = it_raw_read_all(fd, ms, closed);
  assert_non_null(out);
  return out;
}

/* Reads until `count` complete answers (each with Content-Length) are in. */
static char *raw_read_answers(int fd, int count, unsigned ms) {
  size_t len = 0, cap = 8192;
  char *buf = malloc(cap + 1);
  assert_non_null(buf);
  uint64_t until = it_now_ms() + ms;
  for (;;) {
    buf[len] = '\0';
    int got = 0;
    const char *p = buf;
    for (;;) {
      const char *end = strstr(p, "\r\n\r\n");
      const char *cl = strcasestr(p, "Content-Length:");
      if (end == NULL || cl == NULL || cl > end) break;
      size_t body = strtoul(cl + 15, NULL, 10);
      if ((size_t)(buf + len - (end + 4)) < body) break;
      p = end + 4 + body;
      got++;
    }
    if (got >= count) return buf;
    uint64_t now = it_now_ms();
    if (now >= until) break;
    struct pollfd pf = {fd, POLLIN, 0};
    if (poll(&pf, 1, (int)(until - now)) <= 0) continue;
    if (len == cap) {
      buf = realloc(buf, cap * 2 + 1);
      assert_non_null(buf);
      cap *= 2;
    }
    ssize_t n = recv(fd, buf + len, cap - len, 0);
    if (n <= 0) break;
    len += (size_t)n;
  }
  buf[len] = '\0';
  fprintf(stderr, "fewer than %d answers: %s\n", count, buf);
  fail();
  return buf;
}

/* ---- fixtures
 * ----------------------------------------------------------------- */

static void deploy(const it_server_t *s, const char *name, const char *path,
                   const impulse_deploy_opts_t *opts) {
  impulse_client_t *c = it_connect_ok(s, 1, CALL_TIMEOUT_MS);
  uint32_t version = 0;
  assert_int_equal(it_deploy_file(c, name, path, opts, &version), IMPULSE_S_OK);
  impulse_client_close(c);
}

static void deploy_fn(const it_server_t *s, const char *name, const char *fn,
                      const impulse_deploy_opts_t *opts) {
  assert_int_equal(it_deploy_fn_on(s, CALL_TIMEOUT_MS, name, fn, opts, NULL),
                   IMPULSE_S_OK);
}

static int setup_main(void **state) {
  static const char *const extra[] = {
      "--max-frame",  "1048576", "--kafka-opt", "message.max.bytes=100000",
      "--partitions", "2",       NULL};
  return it_fixture_setup(state, extra);
}

static int setup_overload(void **state) {
  static const char *const extra[] = {"--queue-timeout", "300", NULL};
  return it_fixture_setup(state, extra);
}

/* ---- tests ------------------------------------------------------------------
 */

static void test_invoke(void **state) {
  it_server_t *s = *state;
  it_require("curl");
  assert_true(s->http_port > 0);
  deploy_fn(s, "echo", "echo", NULL);
  http_res_t r;

  HTTP(s, &r, "POST", "/function/echo", "hello over http", 15,
       "Content-Type: text/plain");
  expect_body(&r, 200, "hello over http");
  char v[256];
  assert_non_null(res_header(&r, "X-Impulse-Version", v, sizeof v));
  assert_string_equal(v, "1");
  res_free(&r);

  /* An empty body is an empty payload. */
  http_expect(s, "POST", "/function/echo", "", "X-Unused: 1", 200, BODY, "");

  /* Headers both ways. */
  char hpath[512];
  snprintf(hpath, sizeof hpath, "%s/http_headers.so", IT_ARTIFACTS_DIR);
  deploy(s, "headers", hpath, NULL);
  HTTP(s, &r, "POST", "/function/headers", "x", 1,
       "X-Impulse-Header-Greeting: hi there");
  expect_body(&r, 200, "x");
  assert_non_null(res_header(&r, "X-Impulse-Header-seen", v, sizeof v));
  assert_string_equal(v, "hi there");
  assert_non_null(res_header(&r, "Content-Type", v, sizeof v));
  assert_string_equal(v, "text/plain");
  res_free(&r);

  http_expect(s, "POST", "/function/nosuch", "x", "X-A: b", 404, JSON_ERROR,
              "NOT_FOUND");
  http_expect(s, "GET", "/nothing/here", NULL, "X-A: b", 404, JSON_ERROR,
              "NOT_FOUND");

  HTTP(s, &r, "GET", "/function/echo", NULL, 0, "X-A: b");
  expect_error(&r, 405, "METHOD_NOT_ALLOWED");
  assert_non_null(res_header(&r, "Allow", v, sizeof v));
  assert_string_equal(v, "POST");
  res_free(&r);
  http_expect(s, "POST", "/healthz", "x", "X-A: b", 405, JSON_ERROR,
              "METHOD_NOT_ALLOWED");

  http_expect(s, "POST", "/function/bad%20name", "x", "X-A: b", 400, JSON_ERROR,
              "BAD_REQUEST");
  http_expect(s, "POST", "/function/echo", "x", "X-Impulse-Deadline-Ms: soon",
              400, JSON_ERROR, "BAD_REQUEST");
  http_expect(s, "POST", "/function/echo", "x",
              "X-Impulse-Deadline-Ms: 3600001", /* above IMP_DEADLINE_MAX_MS */
              400, JSON_ERROR, "BAD_REQUEST");

  /* Above --max-frame (1 MiB): 413, and the server serves on. */
  expect_too_large(s, "/function/echo", (1u << 20) + 100, 'z');
  http_expect(s, "POST", "/function/echo", "after", "X-A: b", 200, BODY,
              "after");

  /* The idempotency key is passed through (the call runs). */
  http_expect(s, "POST", "/function/echo", "idem",
              "X-Impulse-Idempotency-Key: key-1", 200, BODY, "idem");
  s->test_passed = 1;
}

/* A curl run in the background: its pid; the status goes to the file
 * `out`. */
static pid_t curl_background(const it_server_t *s, const char *path,
                             const char *body, const char *out) {
  char url[256];
  snprintf(url, sizeof url, "http://%s%s", s->http_addr, path);
  const char *argv[] = {"curl",
                        "-s",
                        "--max-time",
                        "30",
                        "-o",
                        "/dev/null",
                        "-w",
                        "%{http_code}",
                        "-X",
                        "POST",
                        "--data-binary",
                        body,
                        url,
                        NULL};
  sup_spawn_t how = SUP_SPAWN_INIT;
  how.argv = argv;
  how.out = open(out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  how.death_signal = SIGKILL;
  assert_true(how.out >= 0);
  pid_t pid = sup_spawn(&how);
  close(how.out);
  assert_true(pid > 0);
  return pid;
}

/* "Authorization: Bearer ADMIN_TOKEN": /api/state needs scope read even
 * under --invoke-auth open. */
static const char *bearer_of(const it_server_t *s) {
  static char buf[200];
  snprintf(buf, sizeof buf, "Authorization: Bearer %s", s->token);
  return buf;
}

/* Waits (5 s at most) until /api/state shows a call in flight. */
static void wait_in_flight(const it_server_t *s) {
  uint64_t until = it_now_ms() + 5000;
  for (;;) {
    http_res_t r;
    HTTP(s, &r, "GET", "/api/state", NULL, 0, bearer_of(s));
    int busy = r.code == 200 && strstr(r.body, "\"in_flight\":1") != NULL;
    res_free(&r);
    if (busy) return;
    assert_true(it_now_ms() < until);
    it_sleep_ms(20);
  }
}

/* Waits for the curl_background() run `bg` and checks it got a 200. */
static void expect_background_ok(pid_t bg, const char *out) {
  int st;
  assert_int_equal(waitpid(bg, &st, 0), bg);
  char *status;
  size_t len;
  assert_int_equal(it_read_file(out, &status, &len), 0);
  assert_string_equal(status, "200");
  free(status);
}

static void test_function_failures(void **state) {
  it_server_t *s = *state;
  it_require("curl");
  deploy_fn(s, "crash", "crash", NULL);
  impulse_deploy_opts_t hang = {.timeout_ms = 1000, .max_instances = 2};
  deploy_fn(s, "hang", "hang", &hang);

  http_expect(s, "POST", "/function/crash", "segv", "X-A: b", 502, JSON_ERROR,
              "CRASHED");
  http_expect(s, "POST", "/function/crash", "other", "X-A: b", 502, JSON_ERROR,
              "FUNCTION_ERROR");

  /* Past the function's timeout (1 s). */
  uint64_t t0 = it_now_ms();
  http_expect(s, "POST", "/function/hang", "forever", "X-A: b", 504, JSON_ERROR,
              "TIMEOUT");
  assert_true(it_now_ms() - t0 < 10000);

  /* Past the caller's deadline, well before the function's timeout. */
  impulse_deploy_opts_t slow = {.timeout_ms = 20000, .max_instances = 2};
  deploy_fn(s, "slow", "hang", &slow);
  /* An instance up first, so that the deadline passes while the call runs
   * (a cold start can take longer than 300 ms, under ThreadSanitizer). */
  http_expect(s, "POST", "/function/slow", "1", "X-A: b", 200, BODY, "slept 1");
  t0 = it_now_ms();
  http_expect(s, "POST", "/function/slow", "forever",
              "X-Impulse-Deadline-Ms: 300", 504, JSON_ERROR, "TIMEOUT");
  assert_true(it_now_ms() - t0 < 8000);

  /* A client that hangs up while its call runs: the answer, when it
   * comes, has nowhere to go and is dropped (ASan would see a use after
   * free in the server's log). */
  int fd = raw_connect(s);
  const char call[] =
      "POST /function/slow HTTP/1.1\r\nHost: x\r\n"
      "Content-Length: 3\r\n\r\n300";
  assert_int_equal(it_raw_send(fd, call, sizeof call - 1), 0);
  it_sleep_ms(50);
  close(fd);
  it_sleep_ms(600);
  http_expect(s, "POST", "/function/slow", "10", "X-A: b", 200, BODY,
              "slept 10");

  /* SIGTERM while a call runs: the server drains it, the caller gets its
   * answer, then the server stops cleanly. */
  char out[256];
  snprintf(out, sizeof out, "%s/drain-status", s->root);
  pid_t bg = curl_background(s, "/function/slow", "1000", out);
  wait_in_flight(s);
  assert_int_equal(it_server_stop_checked(s), 0);
  expect_background_ok(bg, out);
  s->test_passed = 1;
}

static void test_overloaded(void **state) {
  it_server_t *s = *state;
  it_require("curl");
  impulse_deploy_opts_t one = {
      .concurrency = 1, .max_instances = 1, .timeout_ms = 10000};
  deploy_fn(s, "busy", "hang", &one);
  http_res_t r;
  /* Warm it up, so the next call finds the instance ready. */
  http_expect(s, "POST", "/function/busy", "1", "X-A: b", 200, BODY, "slept 1");

  char out[256];
  snprintf(out, sizeof out, "%s/bg-status", s->root);
  pid_t bg = curl_background(s, "/function/busy", "2500", out);
  wait_in_flight(s); /* the long call holds the only slot */
  uint64_t t0 = it_now_ms();
  HTTP(s, &r, "POST", "/function/busy", "1", 1, "X-A: b");
  expect_error(&r, 429, "OVERLOADED");
  char v[64];
  assert_non_null(res_header(&r, "Retry-After", v, sizeof v));
  res_free(&r);
  assert_true(it_now_ms() - t0 < 2400); /* the queue timeout, not the call */
  expect_background_ok(bg, out);
  s->test_passed = 1;
}

static void test_auth(void **state) {
  it_server_t *s = *state;
  it_require("curl");
  deploy_fn(s, "echo", "echo", NULL);
  char bearer[200], wrong[] = "Authorization: Bearer nope";
  snprintf(bearer, sizeof bearer, "Authorization: Bearer %s", s->token);
  http_res_t r;

  HTTP(s, &r, "POST", "/function/echo", "x", 1, "X-A: b");
  expect_error(&r, 401, "UNAUTHENTICATED");
  char v[128];
  assert_non_null(res_header(&r, "WWW-Authenticate", v, sizeof v));
  res_free(&r);
  http_expect(s, "POST", "/function/echo", "x", wrong, 401, JSON_ERROR,
              "UNAUTHENTICATED");
  http_expect(s, "POST", "/function/echo", "with token", bearer, 200, BODY,
              "with token");

  http_expect(s, "POST", "/topics/t1", "x", "X-A: b", 401, JSON_ERROR,
              "UNAUTHENTICATED");
  http_expect(s, "GET", "/api/state", NULL, "X-A: b", 401, JSON_ERROR,
              "UNAUTHENTICATED");
  HTTP(s, &r, "GET", "/api/state", NULL, 0, bearer);
  assert_int_equal(r.code, 200);
  res_free(&r);

  /* The probes and the metrics are open. */
  http_expect(s, "GET", "/healthz", NULL, "X-A: b", 200, BODY, "ok\n");
  http_expect(s, "GET", "/readyz", NULL, "X-A: b", 200, BODY, "ready\n");
  HTTP(s, &r, "GET", "/metrics", NULL, 0, "X-A: b");
  assert_int_equal(r.code, 200);
  res_free(&r);
  s->test_passed = 1;
}

static void test_malformed(void **state) {
  it_server_t *s = *state;
  it_require("curl");

  /* Garbage: 400, Connection: close, then the server hangs up. */
  int fd = raw_connect(s);
  const char garbage[] = "GARBAGE \x01\x02 WHAT\r\n\r\n";
  assert_int_equal(it_raw_send(fd, garbage, sizeof garbage - 1), 0);
  int closed;
  char *out = raw_read_all(fd, 5000, &closed);
  assert_true(strncmp(out, "HTTP/1.1 400 ", 13) == 0);
  assert_non_null(strcasestr(out, "Connection: close"));
  assert_non_null(strstr(out, "\"error\":\"BAD_REQUEST\""));
  assert_true(closed);
  free(out);
  close(fd);

  /* Only HTTP/1.0 and 1.1: no version gets 400, another one 505; both
   * close the connection. */
  static const struct {
    const char *request, *status, *says;
  } versions[] = {
      {"GET /healthz\r\n\r\n", "HTTP/1.1 400 ", "no HTTP version"},
      {"GET /healthz HTTP/9.9\r\nHost: x\r\n\r\n", "HTTP/1.1 505 ",
       "HTTP/9.9 is not supported"},
      {"GET /healthz HTTP/2.0\r\nHost: x\r\n\r\n", "HTTP/1.1 505 ",
       "HTTP/2.0 is not supported"},
  };
  for (size_t i = 0; i < sizeof versions / sizeof versions[0]; i++) {
    fd = raw_connect(s);
    assert_int_equal(
        it_raw_send(fd, versions[i].request, strlen(versions[i].request)), 0);
    out = raw_read_all(fd, 5000, &closed);
    if (strncmp(out, versions[i].status, 13) != 0 ||
        strstr(out, versions[i].says) == NULL || !closed)
      fail_msg("'%s' got: %s", versions[i].request, out);
    free(out);
    close(fd);
  }

  /* Everyone else is served. */
  http_expect(s, "GET", "/healthz", NULL, "X-A: b", 200, BODY, "ok\n");

  /* Headers above the limit: 431, closed. */
  fd = raw_connect(s);
  size_t big = 70 * 1024;
  char *req = malloc(big + 200);
  assert_non_null(req);
  int n = snprintf(req, 200, "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ");
  memset(req + n, 'a', big);
  memcpy(req + n + big, "\r\n\r\n", 4);
  assert_true(it_raw_send(fd, req, (size_t)n + big + 4) >= 0);
  free(req);
  out = raw_read_all(fd, 5000, &closed);
  assert_true(strncmp(out, "HTTP/1.1 431 ", 13) == 0);
  assert_true(closed);
  free(out);
  close(fd);

  /* Keep-alive and pipelining: three requests in one write, three answers
   * in request order on the same connection. */
  fd = raw_connect(s);
  const char three[] =
      "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
      "POST /function/nosuch HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi"
      "GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n";
  assert_int_equal(it_raw_send(fd, three, sizeof three - 1), 0);
  out = raw_read_answers(fd, 3, 5000);
  char *a = strstr(out, "HTTP/1.1 200 ");
  char *b = strstr(out, "HTTP/1.1 404 ");
  char *c = a ? strstr(a + 1, "HTTP/1.1 200 ") : NULL;
  assert_true(a && b && c && a < b && b < c);
  assert_non_null(strstr(c, "ready\n"));
  free(out);
  /* The connection is still open for more. */
  const char more[] = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
  assert_int_equal(it_raw_send(fd, more, sizeof more - 1), 0);
  out = raw_read_answers(fd, 1, 5000);
  assert_true(strncmp(out, "HTTP/1.1 200 ", 13) == 0);
  free(out);
  close(fd);

  /* A client that stops sending mid-request harms nobody. */
  fd = raw_connect(s);
  const char half[] =
      "POST /function/echo HTTP/1.1\r\nContent-Length: 10\r\n\r\nab";
  assert_int_equal(it_raw_send(fd, half, sizeof half - 1), 0);
  close(fd);
  http_expect(s, "GET", "/healthz", NULL, "X-A: b", 200, BODY, "ok\n");
  s->test_passed = 1;
}

/* The `kafka` address from /api/state. */
static void kafka_bootstrap(const it_server_t *s, char *buf, size_t len) {
  http_res_t r;
  HTTP(s, &r, "GET", "/api/state", NULL, 0, bearer_of(s));
  assert_int_equal(r.code, 200);
  const char *p = strstr(r.body, "\"bootstrap\":\"");
  assert_non_null(p);
  p += 13;
  const char *e = strchr(p, '"');
  assert_non_null(e);
  snprintf(buf, len, "%.*s", (int)(e - p), p);
  res_free(&r);
}

/* kcat's whole topic, "key|value|headers" per record. */
static char *kcat_read(const char *bootstrap, const char *topic) {
  char *out = it_kcat_read(bootstrap, topic, "%k|%s|%h\n", 20000);
  assert_non_null(out);
  return out;
}

static void expect_accepted(const http_res_t *r, const char *topic) {
  char want[128];
  snprintf(want, sizeof want, "{\"topic\":\"%s\",\"partition\":", topic);
  if (r->code != 202) fprintf(stderr, "publish: %d %s\n", r->code, r->body);
  assert_int_equal(r->code, 202);
  assert_memory_equal(r->body, want, strlen(want));
  assert_non_null(strstr(r->body, ",\"offset\":"));
}

static void test_publish(void **state) {
  it_server_t *s = *state;
  it_require("curl");
  it_require("kcat");
  char boot[256];
  kafka_bootstrap(s, boot, sizeof boot);
  http_res_t r;

  /* Binary mode: ce-* headers become ce_* record headers. */
  HTTP(s, &r, "POST", "/topics/http-events", "binary-data", 11,
       "ce-specversion: 1.0", "ce-id: e-1", "ce-source: /tests/http",
       "ce-type: test.binary", "Content-Type: text/plain", "X-Impulse-Key: k1");
  expect_accepted(&r, "http-events");
  res_free(&r);

  /* Structured mode: the JSON event's attributes, data as the value, the
   * partitionkey extension as the key. */
  const char ev[] =
      "{\"specversion\":\"1.0\",\"id\":\"e-2\",\"source\":\"/tests/http\","
      "\"type\":\"test.structured\",\"subject\":\"sub\",\"time\":"
      "\"2024-01-01T00:00:00Z\",\"partitionkey\":\"pk\","
      "\"datacontenttype\":\"application/json\",\"data\":{\"a\":1}}";
  HTTP(s, &r, "POST", "/topics/http-events", ev, sizeof ev - 1,
       "Content-Type: application/cloudevents+json; charset=utf-8");
  expect_accepted(&r, "http-events");
  res_free(&r);

  const char ev64[] =
      "{\"specversion\":\"1.0\",\"id\":\"e-3\",\"source\":\"/s\","
      "\"type\":\"t\",\"data_base64\":\"aGVsbG8=\"}";
  HTTP(s, &r, "POST", "/topics/http-events", ev64, sizeof ev64 - 1,
       "Content-Type: application/cloudevents+json", "X-Impulse-Key: k3");
  expect_accepted(&r, "http-events");
  res_free(&r);

  char *out = kcat_read(boot, "http-events");
  char l1[1024], l2[1024], l3[1024];
  /* The headers of each record: the rest of its line. */
  int found = it_line_value(out, "k1|binary-data|", l1, sizeof l1) &&
              it_line_value(out, "pk|{\"a\":1}|", l2, sizeof l2) &&
              it_line_value(out, "k3|hello|", l3, sizeof l3);
  if (!found) fprintf(stderr, "kcat read:\n%s\n", out);
  free(out);
  assert_true(found);
  assert_non_null(strstr(l1, "ce_id=e-1"));
  assert_non_null(strstr(l1, "ce_source=/tests/http"));
  assert_non_null(strstr(l1, "ce_type=test.binary"));
  assert_non_null(strstr(l1, "ce_specversion=1.0"));
  assert_non_null(strstr(l1, "content-type=text/plain"));
  assert_non_null(strstr(l2, "ce_id=e-2"));
  assert_non_null(strstr(l2, "ce_type=test.structured"));
  assert_non_null(strstr(l2, "ce_subject=sub"));
  assert_non_null(strstr(l2, "ce_time=2024-01-01T00:00:00Z"));
  assert_non_null(strstr(l2, "content-type=application/json"));
  assert_non_null(strstr(l3, "ce_id=e-3"));

  /* A client that hangs up before the delivery report harms nobody. */
  int fd = raw_connect(s);
  const char pub[] =
      "POST /topics/http-events HTTP/1.1\r\nHost: x\r\n"
      "Content-Length: 4\r\n\r\ngone";
  assert_int_equal(it_raw_send(fd, pub, sizeof pub - 1), 0);
  close(fd);

  /* Bad input. */
  http_expect(s, "POST", "/topics/http-events", "{not json",
              "Content-Type: application/cloudevents+json", 400, JSON_ERROR,
              "BAD_REQUEST");
  const char noid[] =
      "{\"specversion\":\"1.0\",\"source\":\"/s\",\"type\":\"t\"}";
  http_expect(s, "POST", "/topics/http-events", noid,
              "Content-Type: application/cloudevents+json", 400, JSON_ERROR,
              "BAD_REQUEST");
  http_expect(s, "POST", "/topics/bad$name", "x", "X-A: b", 400, JSON_ERROR,
              "BAD_REQUEST");
  http_expect(s, "GET", "/topics/http-events", NULL, "X-A: b", 405, JSON_ERROR,
              "METHOD_NOT_ALLOWED");

  /* Above the producer's limit (message.max.bytes=100000), below the
   * HTTP body limit: 413 from Kafka's side. */
  expect_too_large(s, "/topics/http-events", 200 * 1000, 'k');
  s->test_passed = 1;
}

static void test_probes_and_state(void **state) {
  it_server_t *s = *state;
  it_require("curl");
  deploy_fn(s, "echo", "echo", NULL);
  http_res_t r;
  http_expect(s, "GET", "/healthz", NULL, "X-A: b", 200, BODY, "ok\n");
  http_expect(s, "GET", "/readyz", NULL, "X-A: b", 200, BODY, "ready\n");
  http_expect(s, "POST", "/function/echo", "x", "X-A: b", 200, BODY, "x");
  HTTP(s, &r, "GET", "/api/state", NULL, 0, bearer_of(s));
  assert_int_equal(r.code, 200);
  assert_non_null(strstr(r.body, "\"functions\":[{\"name\":\"echo\""));
  assert_non_null(strstr(r.body, "\"invocations\":1,"));
  assert_non_null(strstr(r.body, "\"settings\":{\"concurrency\":"));
  assert_non_null(strstr(r.body, "\"instances\":[{\"id\":"));
  assert_non_null(strstr(r.body, "\"triggers\":[]"));
  assert_non_null(strstr(r.body, "\"warm_pool\":{\"target\":"));
  res_free(&r);
  s->test_passed = 1;
}

/* Checks that every line of an exposition is a comment or a well-formed
 * sample, and that each family's samples follow its TYPE line. */
static void check_exposition(const char *text) {
  char family[128] = "";
  for (const char *line = text; *line;) {
    const char *eol = strchr(line, '\n');
    assert_non_null(eol); /* every line ends with a newline */
    size_t ll = (size_t)(eol - line);
    char buf[2048];
    snprintf(buf, sizeof buf, "%.*s", (int)ll, line);
    if (strncmp(buf, "# HELP ", 7) == 0) {
    } else if (strncmp(buf, "# TYPE ", 7) == 0) {
      char type[32];
      assert_int_equal(sscanf(buf + 7, "%127s %31s", family, type), 2);
      assert_true(strcmp(type, "counter") == 0 || strcmp(type, "gauge") == 0 ||
                  strcmp(type, "histogram") == 0);
    } else {
      /* name[{labels}] value */
      size_t fl = strlen(family);
      if (strncmp(buf, family, fl) != 0) {
        fprintf(stderr, "sample outside its family (%s): %s\n", family, buf);
        fail();
      }
      const char *sp = strrchr(buf, ' ');
      assert_non_null(sp);
      char *end;
      strtod(sp + 1, &end);
      if (*end != '\0' && strcmp(sp + 1, "+Inf") != 0) {
        fprintf(stderr, "bad value: %s\n", buf);
        fail();
      }
      const char *brace = strchr(buf, '{');
      if (brace && brace < sp) assert_true(sp[-1] == '}');
    }
    line = eol + 1;
  }
}

/* Value of the sample line starting with `series` + " ", or -1. */
static double sample(const char *text, const char *series) {
  size_t sl = strlen(series);
  for (const char *line = text; line && *line;) {
    if (strncmp(line, series, sl) == 0 && line[sl] == ' ')
      return strtod(line + sl + 1, NULL);
    const char *eol = strchr(line, '\n');
    line = eol ? eol + 1 : NULL;
  }
  return -1;
}

static void test_metrics(void **state) {
  it_server_t *s = *state;
  it_require("curl");
  deploy_fn(s, "counted", "echo", NULL);
  deploy_fn(s, "crash", "crash", NULL);
  const int n = 7;
  http_res_t r;
  for (int i = 0; i < n; i++)
    http_expect(s, "POST", "/function/counted", "m", "X-A: b", 200, BODY, "m");
  http_expect(s, "POST", "/function/crash", "bad", "X-A: b", 502, JSON_ERROR,
              "FUNCTION_ERROR");
  /* The same idempotency key twice: the second answer is a stored one. */
  deploy_fn(s, "idem", "echo", NULL);
  for (int i = 0; i < 2; i++)
    http_expect(s, "POST", "/function/idem", "i",
                "X-Impulse-Idempotency-Key: metrics-1", 200, BODY, "i");

  HTTP(s, &r, "GET", "/metrics", NULL, 0, "X-A: b");
  assert_int_equal(r.code, 200);
  char ct[128];
  assert_non_null(res_header(&r, "Content-Type", ct, sizeof ct));
  assert_non_null(strstr(ct, "text/plain; version=0.0.4"));
  check_exposition(r.body);
  const char *m = r.body;
  assert_non_null(strstr(m, "# TYPE impulse_invocations_total counter\n"));
  assert_non_null(
      strstr(m, "# TYPE impulse_invocation_duration_seconds histogram\n"));
  assert_true(sample(m,
                     "impulse_invocations_total{function=\"counted\","
                     "outcome=\"ok\"}") == n);
  assert_true(sample(m,
                     "impulse_invocations_total{function=\"crash\","
                     "outcome=\"function_error\"}") == 1);
  assert_true(sample(m,
                     "impulse_invocation_duration_seconds_count{function="
                     "\"counted\"}") == n);
  /* Buckets are cumulative and end at the count. */
  static const char *const les[] = {
      "0.0001", "0.00025", "0.0005", "0.001", "0.0025", "0.005", "0.01",
      "0.025",  "0.05",    "0.1",    "0.25",  "0.5",    "1",     "2.5",
      "5",      "10",      "30",     "60",    "+Inf"};
  double prev = 0;
  for (size_t i = 0; i < sizeof les / sizeof les[0]; i++) {
    char series[200];
    snprintf(series, sizeof series,
             "impulse_invocation_duration_seconds_bucket{function=\"counted\","
             "le=\"%s\"}",
             les[i]);
    double v = sample(m, series);
    assert_true(v >= prev);
    prev = v;
  }
  assert_true(prev == n);
  assert_true(sample(m,
                     "impulse_invocation_duration_seconds_sum{function="
                     "\"counted\"}") > 0);
  assert_true(sample(m, "impulse_in_flight{function=\"counted\"}") == 0);
  assert_true(sample(m, "impulse_queue_length{function=\"counted\"}") == 0);
  assert_true(sample(m, "impulse_cold_starts_total{function=\"counted\"}") >=
              0);
  assert_true(
      sample(m, "impulse_instances{function=\"counted\",state=\"ready\"}") >=
      1);
  assert_true(sample(m, "impulse_warm_pool_instances") >= 0);
  assert_true(sample(m, "impulse_idempotent_hits_total{function=\"idem\"}") ==
              1);
  assert_true(
      sample(m, "impulse_idempotent_hits_total{function=\"counted\"}") == 0);
  /* Present (a warm or a cold start, depending on the pool's timing). */
  assert_true(sample(m, "impulse_warm_starts_total{function=\"counted\"}") >=
              0);
  assert_true(sample(m, "impulse_warm_pool_target") >= 2);
  assert_non_null(strstr(m, "# TYPE impulse_instances_desired gauge\n"));
  assert_non_null(
      strstr(m, "# TYPE impulse_forecast_arrivals_per_minute gauge\n"));
  assert_non_null(strstr(m, "# TYPE impulse_autoscaler_panic gauge\n"));
  assert_true(sample(m, "impulse_instances_desired{function=\"counted\"}") >=
              0);
  assert_true(sample(m, "impulse_autoscaler_panic{function=\"counted\"}") >= 0);
  /* Two deploys: at least two synced store writes were timed. */
  assert_true(sample(m, "impulse_store_write_seconds_count") >= 2);
  assert_true(sample(m, "impulse_uptime_seconds") > 0);
  assert_true(
      sample(m, "impulse_build_info{version=\"" IMPULSE_VERSION "\"}") == 1);
  assert_true(sample(m, "impulse_http_responses_total{code=\"200\"}") >= n);
  res_free(&r);
  s->test_passed = 1;
}

TEST_MAIN("integration_http", NULL, NULL,
          IT_SERVER_TEST(test_invoke, setup_main),
          IT_SERVER_TEST(test_function_failures, setup_main),
          IT_SERVER_TEST(test_overloaded, setup_overload),
          IT_SERVER_TEST(test_auth, it_fixture_invoke_auth),
          IT_SERVER_TEST(test_malformed, setup_main),
          IT_SERVER_TEST(test_publish, setup_main),
          IT_SERVER_TEST(test_probes_and_state, setup_main),
          IT_SERVER_TEST(test_metrics, setup_main))
