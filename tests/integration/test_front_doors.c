/*
 * Integration: the front doors against one peer that holds many
 * connections or sends slowly. The attacker is 127.0.0.1; the honest
 * client connects from 127.0.0.2 (all of 127/8 is loopback on Linux), so
 * the per-peer caps tell them apart.
 *
 * What each abuse gets:
 *   20,000 RPC connections from one peer,
 *   each with an anonymous Hello       -> 256 (--max-connections-per-peer)
 *                                         are kept, every other one is
 *                                         told OVERLOADED and closed at
 *                                         once; counted in /metrics as
 *                                         refused{reason="peer_cap"}; the
 *                                         other peer's admin Hello and echo
 *                                         succeed meanwhile
 *   more RPC connections than
 *   --max-connections                  -> OVERLOADED, closed; room again
 *                                         once some close
 *   an RPC connection without Hello    -> Error TIMEOUT after
 *                                         --hello-timeout, closed
 *   an RPC connection idle after Hello -> Error TIMEOUT after
 *                                         --rpc-idle-timeout, closed (one
 *                                         that keeps calling stays open)
 *   5,000 slowloris HTTP connections
 *   (a partial head, a byte a second)  -> 256 kept, the rest answered 503
 *                                         with Retry-After; the kept ones
 *                                         get 408 at --http-header-timeout
 *                                         and are closed; the other peer
 *                                         gets its 200s within 2 s each
 *   an HTTP body that stops            -> 408 after --http-body-timeout
 *   bad values of the flags            -> exit 2 naming the flag
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "tests/support/test_main.h"

#define PEER_CAP 256 /* the default of both per-peer caps */
#define HONEST "127.0.0.2"

/* ---- sockets from a chosen source address ---------------------------------
 */

/* A blocking TCP connection from `src` to 127.0.0.1:port, or -1. The
 * source port is chosen at connect (IP_BIND_ADDRESS_NO_PORT), not at bind,
 * where it would have to be unique among all of the machine's. */
static int connect_from(const char *src, int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  int one = 1;
  setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
  struct sockaddr_in a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  inet_pton(AF_INET, src, &a.sin_addr);
  struct sockaddr_in b = a;
  b.sin_port = htons((uint16_t)port);
  inet_pton(AF_INET, "127.0.0.1", &b.sin_addr);
  if (bind(fd, (struct sockaddr *)&a, sizeof a) != 0 ||
      connect(fd, (struct sockaddr *)&b, sizeof b) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

/* Raises this process's open-file soft limit to the hard one; returns it. */
static rlim_t raise_nofile(void) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return 0;
  rl.rlim_cur = rl.rlim_max;
  setrlimit(RLIMIT_NOFILE, &rl);
  getrlimit(RLIMIT_NOFILE, &rl);
  return rl.rlim_cur;
}

/* One HTTP/1.1 request from `src` with Connection: close: the whole
 * answer (malloc'd) within `ms`, or NULL. */
static char *http_from(const it_server_t *s, const char *src,
                       const char *method, const char *path, const char *body,
                       unsigned ms) {
  int fd = connect_from(src, s->http_port);
  if (fd < 0) return NULL;
  char req[1024];
  int n = snprintf(req, sizeof req,
                   "%s %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                   "Content-Length: %zu\r\n\r\n%s",
                   method, path, body ? strlen(body) : 0, body ? body : "");
  char *r = NULL;
  int closed = 0;
  if (it_raw_send(fd, req, (size_t)n) == 0)
    r = it_raw_read_all(fd, ms, &closed);
  close(fd);
  if (r != NULL && !closed) {
    free(r);
    r = NULL;
  }
  return r;
}

/* The value of the /metrics sample `series` (exact text up to the space,
 * e.g. `impulse_rpc_connections_refused_total{reason="peer_cap"}`), or -1
 * when /metrics could not be read or has no such line. */
static long long metric(const it_server_t *s, const char *series) {
  char *m = http_from(s, HONEST, "GET", "/metrics", NULL, 5000);
  if (m == NULL) return -1;
  long long v = -1;
  size_t sl = strlen(series);
  for (char *p = m; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
    if (strncmp(p, series, sl) == 0 && p[sl] == ' ') {
      v = atoll(p + sl + 1);
      break;
    }
  free(m);
  return v;
}

/* Waits up to `ms` for the /metrics sample `series` to read `want`;
 * returns the last value read. */
static long long wait_metric(const it_server_t *s, const char *series,
                             long long want, unsigned ms) {
  uint64_t until = it_now_ms() + ms;
  long long v;
  while ((v = metric(s, series)) != want && it_now_ms() < until)
    it_sleep_ms(50);
  return v;
}

/* Open descriptors and resident memory (kB) of process `pid`. */
static void proc_usage(pid_t pid, long *fds, long *rss_kb) {
  char path[64];
  *fds = 0;
  *rss_kb = -1;
  snprintf(path, sizeof path, "/proc/%d/fd", (int)pid);
  DIR *d = opendir(path);
  if (d != NULL) {
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
      if (e->d_name[0] != '.') (*fds)++;
    closedir(d);
  }
  snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
  FILE *f = fopen(path, "r");
  if (f == NULL) return;
  char line[256];
  while (fgets(line, sizeof line, f))
    if (strncmp(line, "VmRSS:", 6) == 0) *rss_kb = atol(line + 6);
  fclose(f);
}

/* Whether the peer has closed `fd` (EOF or reset), reading away what it
 * sent; waits at most `ms` for that. Returns 1 closed, 0 still open. */
static int peer_closed(int fd, unsigned ms) {
  uint64_t until = it_now_ms() + ms;
  for (;;) {
    char buf[4096];
    ssize_t n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
    if (n == 0) return 1;
    if (n < 0 && errno != EAGAIN && errno != EINTR) return 1;
    if (n > 0) continue;
    uint64_t now = it_now_ms();
    if (now >= until) return 0;
    struct pollfd p = {fd, POLLIN, 0};
    poll(&p, 1, (int)(until - now));
  }
}

/* An anonymous Hello (or with `token`) as bytes, for sending on many
 * sockets. */
static void hello_bytes(imp_buf_t *b, const char *token) {
  Impulse__Envelope env = IMPULSE__ENVELOPE__INIT;
  Impulse__HelloRequest hello = IMPULSE__HELLO_REQUEST__INIT;
  hello.token = (char *)token;
  env.id = 1;
  env.body_case = IMPULSE__ENVELOPE__BODY_HELLO;
  env.hello = &hello;
  assert_int_equal(imp_frame_append(b, &env, IMP_DEFAULT_MAX_FRAME), 0);
}

/* The honest client: Hello with the admin token and an echo, from
 * 127.0.0.2 on a raw connection, each answered within `ms`. Returns 1
 * when both succeeded, 0 after saying what went wrong. */
static int honest_rpc(const it_server_t *s, const char *payload, unsigned ms) {
  int fd = connect_from(HONEST, s->port), ok = 0;
  if (fd < 0) {
    fprintf(stderr, "honest client: cannot connect from %s\n", HONEST);
    return 0;
  }
  Impulse__Envelope env = IMPULSE__ENVELOPE__INIT;
  Impulse__HelloRequest hello = IMPULSE__HELLO_REQUEST__INIT;
  hello.token = (char *)s->token;
  env.id = 1;
  env.body_case = IMPULSE__ENVELOPE__BODY_HELLO;
  env.hello = &hello;
  Impulse__Envelope *r = it_raw_call(fd, &env, ms);
  if (r == NULL || r->body_case != IMPULSE__ENVELOPE__BODY_HELLO_OK ||
      !r->hello_ok->admin) {
    fprintf(stderr, "honest client: no admin Hello within %u ms\n", ms);
    goto out;
  }
  impulse__envelope__free_unpacked(r, NULL);
  Impulse__Envelope env2 = IMPULSE__ENVELOPE__INIT;
  Impulse__InvokeRequest inv = IMPULSE__INVOKE_REQUEST__INIT;
  inv.function = "echo";
  inv.has_payload = 1;
  inv.payload.data = (uint8_t *)payload;
  inv.payload.len = strlen(payload);
  env2.id = 2;
  env2.body_case = IMPULSE__ENVELOPE__BODY_INVOKE;
  env2.invoke = &inv;
  r = it_raw_call(fd, &env2, ms);
  if (r == NULL || r->body_case != IMPULSE__ENVELOPE__BODY_INVOKE_OK ||
      r->invoke_ok->payload.len != strlen(payload) ||
      memcmp(r->invoke_ok->payload.data, payload, strlen(payload)) != 0) {
    fprintf(stderr, "honest client: no echo of '%s' within %u ms\n", payload,
            ms);
    goto out;
  }
  ok = 1;
out:
  if (r) impulse__envelope__free_unpacked(r, NULL);
  close(fd);
  return ok;
}

static int setup_echo(void **state, const char *const *extra) {
  if (it_fixture_setup(state, extra) != 0) return -1;
  it_server_t *s = *state;
  if (it_deploy_fn_on(s, 30000, "echo", "echo", NULL, NULL) != IMPULSE_S_OK) {
    fprintf(stderr, "deploy of echo failed\n");
    return -1;
  }
  return 0;
}

/* ---- RPC: one peer with 20,000 connections --------------------------------
 */

#define FLOOD_CHILDREN 4
#define FLOOD_EACH 5000

static int setup_defaults(void **state) {
  return setup_echo(state, NULL);
}

/* A child of the flood: opens `n` connections from 127.0.0.1 to the
 * server's RPC port, sends each an anonymous Hello, writes how many it
 * opened to `up`, waits for a byte on `go` (exits at its EOF, and after
 * 120 s in any case), then writes how many the server still holds open
 * and exits. */
static void flood_child(const it_server_t *s, int n, int up, int go) {
  static int fds[FLOOD_EACH];
  alarm(120);
  imp_buf_t hello = {0};
  hello_bytes(&hello, NULL);
  int opened = 0;
  for (int i = 0; i < n; i++) {
    int fd = it_raw_connect(s);
    if (fd < 0) continue;
    (void)send(fd, hello.data, hello.len, MSG_NOSIGNAL);
    fds[opened++] = fd;
  }
  if (write(up, &opened, sizeof opened) != sizeof opened) _exit(1);
  char c;
  if (read(go, &c, 1) != 1) _exit(1);
  int open_now = 0;
  for (int i = 0; i < opened; i++) open_now += !peer_closed(fds[i], 0);
  if (write(up, &open_now, sizeof open_now) != sizeof open_now) _exit(1);
  _exit(0);
}

static int read_int(int fd, unsigned ms) {
  struct pollfd p = {fd, POLLIN, 0};
  if (poll(&p, 1, (int)ms) != 1) return -1;
  int v;
  return read(fd, &v, sizeof v) == sizeof v ? v : -1;
}

/* 20,000 connections from 127.0.0.1, each past Hello so that no timeout
 * ends them: the server keeps 256, refuses the rest at once, and serves
 * 127.0.0.2 meanwhile. */
static void test_rpc_peer_flood(void **state) {
  it_server_t *s = *state;
  assert_true(raise_nofile() >= FLOOD_EACH + 100);
  /* The deploy's connection from 127.0.0.1 has gone. */
  assert_int_equal(wait_metric(s, "impulse_rpc_connections", 0, 5000), 0);
  long fds0, rss0, fds1, rss1;
  proc_usage(s->pid, &fds0, &rss0);
  pid_t kids[FLOOD_CHILDREN];
  int up[FLOOD_CHILDREN], go[FLOOD_CHILDREN];
  uint64_t t0 = it_now_ms();
  for (int k = 0; k < FLOOD_CHILDREN; k++) {
    int a[2], b[2];
    assert_int_equal(pipe(a), 0);
    assert_int_equal(pipe(b), 0);
    kids[k] = fork();
    assert_true(kids[k] >= 0);
    if (kids[k] == 0) {
      close(a[0]);
      close(b[1]);
      flood_child(s, FLOOD_EACH, a[1], b[0]);
    }
    close(a[1]);
    close(b[0]);
    up[k] = a[0];
    go[k] = b[1];
  }
  int opened = 0, failed = 0;
  for (int k = 0; k < FLOOD_CHILDREN; k++) {
    int n = read_int(up[k], 60000);
    if (n < 0) failed = 1;
    opened += n < 0 ? 0 : n;
  }
  uint64_t t1 = it_now_ms();
  /* While the 20,000 are held: the other peer is served (checked below,
   * once the children are gone). */
  uint64_t h0 = it_now_ms();
  int served = !failed && honest_rpc(s, "from-the-other-peer", 2000);
  uint64_t h1 = it_now_ms();
  proc_usage(s->pid, &fds1, &rss1);
  long long gauge = metric(s, "impulse_rpc_connections");
  long long refused =
      metric(s, "impulse_rpc_connections_refused_total{reason=\"peer_cap\"}");
  int kept = 0;
  for (int k = 0; k < FLOOD_CHILDREN; k++) {
    if (failed || write(go[k], "x", 1) != 1) failed = 1;
    int n = failed ? -1 : read_int(up[k], 20000);
    if (n < 0) failed = 1;
    kept += n < 0 ? 0 : n;
  }
  /* The children end here whatever happened above: EOF on `go`. */
  for (int k = 0; k < FLOOD_CHILDREN; k++) {
    close(go[k]);
    close(up[k]);
    int st;
    waitpid(kids[k], &st, 0);
  }
  assert_false(failed);
  assert_int_equal(opened, FLOOD_CHILDREN * FLOOD_EACH);
  assert_true(served);
  printf(
      "# %d connections opened in %llu ms; server kept %d, refused "
      "%lld; honest Hello+echo %llu ms; server fds %ld -> %ld, RSS %ld "
      "-> %ld kB\n",
      opened, (unsigned long long)(t1 - t0), kept, refused,
      (unsigned long long)(h1 - h0), fds0, fds1, rss0, rss1);
  /* The server holds at most the per-peer cap of them... */
  assert_int_equal(kept, PEER_CAP);
  assert_int_equal(gauge, PEER_CAP);
  assert_int_equal(refused, opened - PEER_CAP);
  /* ... and so its descriptors grow by that, not by 20,000. */
  assert_true(fds1 - fds0 <= PEER_CAP + 16);
  /* Served again once they are gone. */
  assert_true(honest_rpc(s, "after", 2000));
  s->test_passed = 1;
}

/* ---- RPC: the cap in all ---------------------------------------------------
 */

static int setup_global_cap(void **state) {
  static const char *const extra[] = {
      "--max-connections", "20", "--max-connections-per-peer", "1000", NULL};
  return setup_echo(state, extra);
}

static void test_rpc_global_cap(void **state) {
  it_server_t *s = *state;
  /* The deploy's connection has gone: all 20 are ours. */
  assert_int_equal(wait_metric(s, "impulse_rpc_connections", 0, 5000), 0);
  int fds[40];
  for (int i = 0; i < 40; i++) {
    fds[i] = it_raw_connect(s);
    assert_true(fds[i] >= 0);
  }
  int open_now = 0, told = 0;
  for (int i = 0; i < 40; i++) {
    if (i >= 20) { /* refused ones are told why */
      Impulse__Envelope *r = it_raw_read_frame(fds[i], 2000);
      if (r != NULL && r->body_case == IMPULSE__ENVELOPE__BODY_ERROR &&
          r->error->code == IMPULSE__ERROR_CODE__OVERLOADED)
        told++;
      if (r) impulse__envelope__free_unpacked(r, NULL);
    }
    open_now += !peer_closed(fds[i], i < 20 ? 0 : 2000);
  }
  assert_int_equal(open_now, 20);
  assert_int_equal(told, 20);
  assert_int_equal(
      metric(s, "impulse_rpc_connections_refused_total{reason=\"global_cap\"}"),
      20);
  /* Ten close: ten new ones fit, the eleventh does not. */
  for (int i = 0; i < 10; i++) close(fds[i]);
  it_sleep_ms(200);
  int more[11];
  for (int i = 0; i < 11; i++) {
    more[i] = it_raw_connect(s);
    assert_true(more[i] >= 0);
  }
  int open_more = 0;
  for (int i = 0; i < 11; i++) open_more += !peer_closed(more[i], 300);
  assert_int_equal(open_more, 10);
  for (int i = 0; i < 11; i++) close(more[i]);
  for (int i = 10; i < 40; i++) close(fds[i]);
  s->test_passed = 1;
}

/* ---- RPC: timeouts ----------------------------------------------------------
 */

static int setup_timeouts(void **state) {
  static const char *const extra[] = {"--hello-timeout", "500",
                                      "--rpc-idle-timeout", "1500", NULL};
  return setup_echo(state, extra);
}

/* Waits for an Error TIMEOUT frame and the close; returns the ms it took. */
static uint64_t timed_out(int fd, unsigned ms) {
  uint64_t t0 = it_now_ms();
  Impulse__Envelope *r = NULL;
  for (;;) {
    r = it_raw_read_frame(fd, ms);
    if (r == NULL || r->body_case == IMPULSE__ENVELOPE__BODY_ERROR) break;
    impulse__envelope__free_unpacked(r, NULL); /* answers of earlier calls */
  }
  assert_non_null(r);
  assert_int_equal(r->error->code, IMPULSE__ERROR_CODE__TIMEOUT);
  impulse__envelope__free_unpacked(r, NULL);
  assert_true(peer_closed(fd, 1000));
  return it_now_ms() - t0;
}

static void test_rpc_timeouts(void **state) {
  it_server_t *s = *state;
  /* No Hello: closed after about 500 ms. */
  int quiet = it_raw_connect(s);
  assert_true(quiet >= 0);
  uint64_t took = timed_out(quiet, 3000);
  assert_true(took >= 400 && took < 1500);
  close(quiet);
  /* Hello, then nothing: closed after about 1500 ms. */
  imp_buf_t hello = {0};
  hello_bytes(&hello, NULL);
  int idle = it_raw_connect(s);
  assert_int_equal(it_raw_send(idle, hello.data, hello.len), 0);
  /* Hello, then a call every 400 ms: never idle. */
  int busy = it_raw_connect(s);
  assert_int_equal(it_raw_send(busy, hello.data, hello.len), 0);
  imp_buf_free(&hello);
  uint64_t t0 = it_now_ms();
  for (int i = 0; i < 8; i++) {
    Impulse__Envelope env = IMPULSE__ENVELOPE__INIT;
    Impulse__ServerInfoRequest info = IMPULSE__SERVER_INFO_REQUEST__INIT;
    env.id = 10 + (uint64_t)i;
    env.body_case = IMPULSE__ENVELOPE__BODY_SERVER_INFO;
    env.server_info = &info;
    assert_int_equal(it_raw_send_env(busy, &env), 0);
    it_sleep_ms(400);
  }
  took = timed_out(idle, 100) + (it_now_ms() - t0);
  (void)took;
  close(idle);
  assert_false(peer_closed(busy, 0));
  close(busy);
  assert_int_equal(
      metric(s, "impulse_rpc_connections_closed_total{reason=\"prehello\"}"),
      1);
  assert_int_equal(
      metric(s, "impulse_rpc_connections_closed_total{reason=\"idle\"}"), 1);
  s->test_passed = 1;
}

/* ---- HTTP: slowloris -------------------------------------------------------
 */

#define SLOW_CONNS 5000
#define HEADER_MS 4000

static int setup_slowloris(void **state) {
  static const char *const extra[] = {"--http-header-timeout", "4000", NULL};
  return setup_echo(state, extra);
}

/* 5,000 connections from 127.0.0.1 each send a partial request head and
 * then a byte a second: 256 are kept and cut off at the header deadline,
 * the rest are answered 503 at once; 127.0.0.2 is served meanwhile. */
static void test_http_slowloris(void **state) {
  it_server_t *s = *state;
  assert_true(raise_nofile() >= SLOW_CONNS + 100);
  static int fds[SLOW_CONNS];
  static const char head[] = "POST /function/echo HTTP/1.1\r\nHost: x\r\n";
  uint64_t t0 = it_now_ms();
  for (int i = 0; i < SLOW_CONNS; i++) {
    fds[i] = it_http_connect(s);
    assert_true(fds[i] >= 0);
    (void)send(fds[i], head, sizeof head - 1, MSG_NOSIGNAL);
  }
  uint64_t t1 = it_now_ms();
  /* The other peer, three times a second apart, while the slow ones
   * trickle a header byte each second. */
  for (int round = 0; round < 3; round++) {
    uint64_t a = it_now_ms();
    char *r = http_from(s, HONEST, "POST", "/function/echo", "hi", 2000);
    uint64_t b = it_now_ms();
    assert_non_null(r);
    assert_true(strncmp(r, "HTTP/1.1 200 ", 13) == 0);
    assert_true(b - a < 2000);
    free(r);
    for (int i = 0; i < SLOW_CONNS; i++)
      (void)send(fds[i], "X", 1, MSG_NOSIGNAL);
    it_sleep_ms(1000);
  }
  /* Who got what: a 503 soon, or a 408 at the deadline. */
  int got503 = 0, got408 = 0, retry_after = 0;
  uint64_t until = t0 + HEADER_MS + (t1 - t0) + 3000;
  for (int i = 0; i < SLOW_CONNS; i++) {
    char buf[2048];
    size_t len = 0;
    for (;;) {
      uint64_t now = it_now_ms();
      struct pollfd p = {fds[i], POLLIN, 0};
      if (now >= until || poll(&p, 1, (int)(until - now)) != 1) break;
      ssize_t n = recv(fds[i], buf + len, sizeof buf - 1 - len, 0);
      if (n <= 0) break;
      len += (size_t)n;
      if (len == sizeof buf - 1) break;
    }
    buf[len] = '\0';
    if (strncmp(buf, "HTTP/1.1 503 ", 13) == 0) {
      got503++;
      retry_after += strstr(buf, "Retry-After: 1\r\n") != NULL;
    } else if (strncmp(buf, "HTTP/1.1 408 ", 13) == 0) {
      got408++;
    }
    close(fds[i]);
  }
  uint64_t t2 = it_now_ms();
  printf(
      "# %d slow connections opened in %llu ms: %d answered 503, %d "
      "answered 408 at the header deadline (all read by %llu ms)\n",
      SLOW_CONNS, (unsigned long long)(t1 - t0), got503, got408,
      (unsigned long long)(t2 - t0));
  assert_int_equal(got408, PEER_CAP);
  assert_int_equal(got503, SLOW_CONNS - PEER_CAP);
  assert_int_equal(retry_after, got503);
  assert_int_equal(metric(s, "impulse_http_timeouts_total{phase=\"header\"}"),
                   PEER_CAP);
  assert_int_equal(
      metric(s, "impulse_http_connections_refused_total{reason=\"peer_cap\"}"),
      SLOW_CONNS - PEER_CAP);
  s->test_passed = 1;
}

/* ---- HTTP: a body that stops, a connection that sends nothing --------------
 */

static int setup_body(void **state) {
  static const char *const extra[] = {"--http-body-timeout", "1000",
                                      "--http-header-timeout", "1500", NULL};
  return setup_echo(state, extra);
}

static void test_http_body_timeout(void **state) {
  it_server_t *s = *state;
  static const char head[] =
      "POST /function/echo HTTP/1.1\r\nHost: x\r\nContent-Length: 20\r\n\r\n";
  /* 5 of 20 bytes, then nothing: 408 after about a second. */
  int stall = connect_from(HONEST, s->http_port);
  assert_true(stall >= 0);
  assert_int_equal(it_raw_send(stall, head, sizeof head - 1), 0);
  assert_int_equal(it_raw_send(stall, "12345", 5), 0);
  /* The same, 2 bytes every 400 ms: slower in all than the body timeout,
   * but never waiting that long, so it is served. */
  int trickle = connect_from(HONEST, s->http_port);
  assert_true(trickle >= 0);
  assert_int_equal(it_raw_send(trickle, head, sizeof head - 1), 0);
  /* Nothing at all: 408 at the header deadline. */
  int silent = connect_from(HONEST, s->http_port);
  assert_true(silent >= 0);
  uint64_t t0 = it_now_ms();
  for (int i = 0; i < 10; i++) {
    assert_int_equal(it_raw_send(trickle, "ab", 2), 0);
    it_sleep_ms(400);
  }
  int closed = 0;
  char *r = it_raw_read_all(trickle, 3000, &closed);
  assert_non_null(r);
  assert_true(strncmp(r, "HTTP/1.1 200 ", 13) == 0);
  assert_non_null(strstr(r, "abababababababababab"));
  free(r);
  close(trickle);
  r = it_raw_read_all(stall, 1000, &closed);
  assert_non_null(r);
  assert_true(closed);
  assert_true(strncmp(r, "HTTP/1.1 408 ", 13) == 0);
  assert_non_null(strstr(r, "request body"));
  free(r);
  close(stall);
  r = it_raw_read_all(silent, 1000, &closed);
  assert_non_null(r);
  assert_true(closed);
  assert_true(strncmp(r, "HTTP/1.1 408 ", 13) == 0);
  assert_non_null(strstr(r, "headers did not arrive within 1500 ms"));
  free(r);
  close(silent);
  assert_true(it_now_ms() - t0 < 8000);
  assert_int_equal(metric(s, "impulse_http_timeouts_total{phase=\"body\"}"), 1);
  assert_int_equal(metric(s, "impulse_http_timeouts_total{phase=\"header\"}"),
                   1);
  s->test_passed = 1;
}

/* ---- flags ------------------------------------------------------------------
 */

/* Bad values get exit status 2 and a message naming the flag. */
static void test_bad_flags(void **state) {
  (void)state;
  static const char *const bad[][2] = {
      {"--max-connections", "0"},
      {"--max-connections-per-peer", "-1"},
      {"--hello-timeout", "10"},
      {"--rpc-idle-timeout", "abc"},
      {"--http-max-connections-per-peer", "0"},
      {"--http-header-timeout", "99"},
      {"--http-body-timeout", ""},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    it_cli_t res;
    assert_int_equal(IT_CLI(&res, NULL, "serve", bad[i][0], bad[i][1]), 0);
    assert_int_equal(res.status, 2);
    assert_non_null(strstr(res.err, bad[i][0]));
    it_cli_free(&res);
  }
}

TEST_MAIN("integration_front_doors", NULL, NULL,
          cmocka_unit_test(test_bad_flags),
          IT_SERVER_TEST(test_rpc_timeouts, setup_timeouts),
          IT_SERVER_TEST(test_rpc_global_cap, setup_global_cap),
          IT_SERVER_TEST(test_http_body_timeout, setup_body),
          IT_SERVER_TEST(test_rpc_peer_flood, setup_defaults),
          IT_SERVER_TEST(test_http_slowloris, setup_slowloris))
