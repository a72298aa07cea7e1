/*
 * Integration: hostile bytes on the RPC port. Each abuse happens on its own
 * raw TCP connection while a well-behaved client invokes echo before and
 * after it; the server must answer the abuser with an error and/or hang up
 * quickly, buffer nothing it was not asked to, and keep serving everyone
 * else.
 *
 * What each bad input gets:
 *   length 20 + 20 undecodable bytes  -> Error BAD_REQUEST, then closed
 *   length 20 + 20 pseudo-random bytes-> an error and/or hang-up
 *   length 0 (empty envelope)         -> Error BAD_REQUEST, then closed
 *   "GET / HTTP/1.1..." (a length of
 *   about 1.1 GiB)                    -> Error TOO_LARGE, then closed
 *   length 0x7fffffff                 -> Error TOO_LARGE, closed at once
 *                                        (the body is never buffered:
 *                                        streaming on is refused)
 *   length max_frame + 1              -> Error TOO_LARGE, closed
 *   100 connections without Hello,
 *   each a 16 MiB length and 1 MiB   -> each refused at its length (before
 *                                        Hello, frames are at most 4 KiB);
 *                                        the server's RSS grows < 50 MB
 *   half a frame, then hang up        -> nothing; the server forgets it
 *   a decodable frame of a kind only
 *   workers take (Load), or a response
 *   body (InvokeResponse)             -> Error BAD_REQUEST for its id; the
 *                                        connection stays usable
 *   Deploy/Delete/Scale without Hello -> Error UNAUTHENTICATED; nothing
 *   or token                             changes (a Deploy above 4 KiB
 *                                        before Hello: TOO_LARGE, closed)
 *   Hello with a wrong token          -> UNAUTHENTICATED at connect
 *   a client that hangs up with calls
 *   running and queued                -> the calls finish or expire
 *                                        unseen; the function keeps working
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cmocka.h>

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "harness.h"
#include "tests/support/test_main.h"

#define CALL_TIMEOUT_MS 20000u
#define ABUSE_CLOSE_MS 2000u /* the server must hang up within this */

/* The group's admin client is the well-behaved one. */
typedef struct fixture_s {
  it_group_t group; /* first: it_group_setup() allocates the fixture */
  unsigned long echo_n;
} fixture_t;

/* The rest of the group setup: "slow", one slot in all, so that a second
 * call has to queue. */
static int deploy_slow(void *fixture) {
  fixture_t *f = fixture;
  impulse_deploy_opts_t opts = {0};
  opts.concurrency = 1;
  opts.max_instances = 1;
  opts.has_max = 1;
  opts.timeout_ms = 5000;
  int rc = it_deploy_fn(f->group.admin, "slow", "hang", &opts, NULL);
  return rc == IMPULSE_S_OK ? 0 : -1;
}

static int group_setup(void **state) {
  return it_group_setup(state, sizeof(fixture_t), NULL, CALL_TIMEOUT_MS,
                        deploy_slow);
}

/* The well-behaved client gets its echo. */
static void good_echo(fixture_t *f) {
  char payload[64];
  snprintf(payload, sizeof payload, "good-%lu", f->echo_n++);
  assert_true(it_answers(f->group.admin, "echo", payload, payload, 0));
}

/* ---- raw sockets --------------------------------------------------------- */

/* Reads until the peer closes or `ms` pass. Returns 1 when closed (EOF or
 * reset), 0 on timeout. Bytes read go to buf (up to cap, the rest is
 * dropped). */
static int raw_read_until_close(int fd, unsigned ms, char *buf, size_t cap,
                                size_t *got) {
  uint64_t until = it_now_ms() + ms;
  *got = 0;
  for (;;) {
    uint64_t now = it_now_ms();
    if (now >= until) return 0;
    struct pollfd p = {fd, POLLIN, 0};
    int r = poll(&p, 1, (int)(until - now));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return 0;
    char tmp[65536];
    ssize_t n = recv(fd, tmp, sizeof tmp, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return 1; /* ECONNRESET and the like: closed */
    if (n == 0) return 1;
    size_t keep = (size_t)n;
    if (keep > cap - *got) keep = cap - *got;
    memcpy(buf + *got, tmp, keep);
    *got += keep;
  }
}

/* Sends `bytes` on a fresh connection and checks the server hangs up within
 * ABUSE_CLOSE_MS; whatever it said before must be one Error frame with
 * `code` (when it said anything). */
static void abuse(fixture_t *f, const char *what, const void *bytes, size_t len,
                  int code) {
  good_echo(f);
  int fd = it_raw_connect(&f->group.server);
  assert_true(fd >= 0);
  assert_true(it_raw_send(fd, bytes, len) >= 0);
  char buf[65536];
  size_t got = 0;
  uint64_t t0 = it_now_ms();
  int closed = raw_read_until_close(fd, ABUSE_CLOSE_MS, buf, sizeof buf, &got);
  fprintf(stderr, "%s: %s after %llu ms, %zu bytes back\n", what,
          closed ? "closed" : "NOT closed",
          (unsigned long long)(it_now_ms() - t0), got);
  close(fd);
  assert_true(closed);
  if (got > 0) {
    Impulse__Envelope *env = NULL;
    ssize_t n = imp_frame_decode(buf, got, sizeof buf, NULL, &env);
    assert_true(n > 0);
    assert_int_equal(env->body_case, IMPULSE__ENVELOPE__BODY_ERROR);
    fprintf(stderr, "  error %d: %s\n", env->error->code,
            env->error->message ? env->error->message : "");
    assert_int_equal(env->error->code, code);
    impulse__envelope__free_unpacked(env, NULL);
  }
  good_echo(f);
}

/* Sends `env` (its id set) on a raw connection: the answer, within `ms`,
 * is an Error with `code` for the same id. */
static void expect_raw_error(int fd, const Impulse__Envelope *env, unsigned ms,
                             int code) {
  Impulse__Envelope *r = it_raw_call(fd, env, ms);
  assert_non_null(r);
  assert_int_equal(r->id, env->id);
  assert_int_equal(r->body_case, IMPULSE__ENVELOPE__BODY_ERROR);
  assert_int_equal(r->error->code, code);
  impulse__envelope__free_unpacked(r, NULL);
}

/* ---- tests --------------------------------------------------------------- */

static void test_garbage_frames(void **state) {
  fixture_t *f = it_group_test_start(state);
  unsigned char frame[24] = {0, 0, 0, 20};
  /* 0xff... is an over-long varint tag: never decodes. */
  memset(frame + 4, 0xff, 20);
  abuse(f, "20 bytes of 0xff", frame, sizeof frame,
        IMPULSE__ERROR_CODE__BAD_REQUEST);

  /* Pseudo-random bytes, several seeds; each is either refused with an
   * error and hang-up, or (if it happens to decode) answered: the check
   * is that the server survives and others are served. */
  for (uint32_t seed = 1; seed <= 8; seed++) {
    uint32_t x = seed * 2654435761u;
    for (int i = 4; i < 24; i++) {
      x = x * 1103515245u + 12345u;
      frame[i] = (unsigned char)(x >> 16);
    }
    good_echo(f);
    int fd = it_raw_connect(&f->group.server);
    assert_true(fd >= 0);
    assert_true(it_raw_send(fd, frame, sizeof frame) >= 0);
    char buf[4096];
    size_t got;
    int closed =
        raw_read_until_close(fd, ABUSE_CLOSE_MS, buf, sizeof buf, &got);
    close(fd);
    assert_true(closed || got > 0);
    good_echo(f);
  }

  /* An empty frame has no id and no body. */
  static const unsigned char empty[4] = {0, 0, 0, 0};
  abuse(f, "zero-length frame", empty, sizeof empty,
        IMPULSE__ERROR_CODE__BAD_REQUEST);

  /* Plain text, as from a confused HTTP client: "GET " is a length of
   * 0x47455420 (about 1.1 GiB), above the frame limit. */
  static const char http[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
  abuse(f, "HTTP request", http, sizeof http - 1,
        IMPULSE__ERROR_CODE__TOO_LARGE);
  it_group_test_end(&f->group);
}

static void test_huge_length_prefix(void **state) {
  fixture_t *f = it_group_test_start(state);
  /* 0x7fffffff and then a little body: the server must not wait for the
   * other 2 GiB. */
  unsigned char frame[4 + 1024] = {0x7f, 0xff, 0xff, 0xff};
  memset(frame + 4, 'A', sizeof frame - 4);
  abuse(f, "length 0x7fffffff", frame, sizeof frame,
        IMPULSE__ERROR_CODE__TOO_LARGE);

  /* Just above the default 16 MiB limit. */
  uint32_t n = IMP_DEFAULT_MAX_FRAME + 1;
  unsigned char hdr[4] = {(unsigned char)(n >> 24), (unsigned char)(n >> 16),
                          (unsigned char)(n >> 8), (unsigned char)n};
  abuse(f, "length max_frame + 1", hdr, sizeof hdr,
        IMPULSE__ERROR_CODE__TOO_LARGE);

  /* Keep streaming after the huge prefix: the server has hung up, so the
   * stream ends (reset or EOF) long before 64 MiB went through. */
  good_echo(f);
  int fd = it_raw_connect(&f->group.server);
  assert_true(fd >= 0);
  static char chunk[65536];
  memset(chunk, 'B', sizeof chunk);
  assert_true(it_raw_send(fd, frame, 4) >= 0);
  size_t sent = 0;
  int ended = 0;
  uint64_t until = it_now_ms() + ABUSE_CLOSE_MS + 1000;
  while (sent < (64u << 20) && it_now_ms() < until) {
    struct pollfd p = {fd, POLLOUT, 0};
    if (poll(&p, 1, 100) <= 0) continue;
    ssize_t w = send(fd, chunk, sizeof chunk, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (w < 0 && (errno == EAGAIN || errno == EINTR)) continue;
    if (w < 0) {
      ended = 1;
      break;
    }
    sent += (size_t)w;
  }
  fprintf(stderr, "stream after huge prefix: %s after %zu bytes\n",
          ended ? "refused" : "NOT refused", sent);
  close(fd);
  assert_true(ended);
  good_echo(f);
  it_group_test_end(&f->group);
}

/* The server's resident memory in KiB, from /proc. */
static long server_rss_kb(const it_server_t *s) {
  char path[64], line[256];
  snprintf(path, sizeof path, "/proc/%d/status", (int)s->pid);
  FILE *f = fopen(path, "r");
  assert_non_null(f);
  long kb = -1;
  while (fgets(line, sizeof line, f))
    if (sscanf(line, "VmRSS: %ld kB", &kb) == 1) break;
  fclose(f);
  return kb;
}

static void test_large_frames_before_hello(void **state) {
  fixture_t *f = it_group_test_start(state);
  good_echo(f);
  long before = server_rss_kb(&f->group.server);
  /* 100 connections that never say Hello, each announcing a 16 MiB frame
   * and sending its first MiB. */
  enum { N = 100, BODY = 1 << 20 };
  static char body[BODY];
  int fds[N];
  for (int i = 0; i < N; i++) {
    fds[i] = it_raw_connect(&f->group.server);
    assert_true(fds[i] >= 0);
    const unsigned char header[4] = {0x01, 0x00, 0x00, 0x00}; /* 16 MiB */
    assert_true(it_raw_send(fds[i], header, sizeof header) >= 0);
    assert_true(it_raw_send(fds[i], body, sizeof body) >= 0);
  }
  long after = server_rss_kb(&f->group.server);
  fprintf(stderr, "server RSS %ld -> %ld KiB with %d pre-Hello 16 MiB frames\n",
          before, after, N);
  assert_true(after - before < 50 * 1024);
  /* Each was refused: an error or a hang-up, never a wait for the rest. */
  for (int i = 0; i < N; i++) {
    int closed = 0;
    char *out = it_raw_read_all(fds[i], ABUSE_CLOSE_MS, &closed);
    free(out);
    assert_true(closed);
    close(fds[i]);
  }
  good_echo(f);
  it_group_test_end(&f->group);
}

static void test_half_frame_then_hang_up(void **state) {
  fixture_t *f = it_group_test_start(state);
  for (int i = 0; i < 20; i++) {
    int fd = it_raw_connect(&f->group.server);
    assert_true(fd >= 0);
    unsigned char part[14] = {0, 0, 0, 100};
    memset(part + 4, 0x08, 10);
    assert_true(it_raw_send(fd, part, sizeof part) >= 0);
    close(fd);
  }
  /* Many half-open abusers at once, then a good call in the middle. */
  int fds[50];
  for (int i = 0; i < 50; i++) {
    fds[i] = it_raw_connect(&f->group.server);
    assert_true(fds[i] >= 0);
    unsigned char part[6] = {0, 0, 0, 50, 0x08, 0x01};
    assert_true(it_raw_send(fds[i], part, sizeof part) >= 0);
  }
  good_echo(f);
  for (int i = 0; i < 50; i++) close(fds[i]);
  good_echo(f);
  it_group_test_end(&f->group);
}

static void test_wrong_message_kind(void **state) {
  fixture_t *f = it_group_test_start(state);
  good_echo(f);
  int fd = it_raw_connect(&f->group.server);
  assert_true(fd >= 0);

  /* A Load (gateway -> worker only) from a client. */
  Impulse__Envelope env = IMPULSE__ENVELOPE__INIT;
  Impulse__LoadRequest load = IMPULSE__LOAD_REQUEST__INIT;
  load.function = "echo";
  load.version = 1;
  load.path = "/etc/passwd";
  env.id = 7;
  env.body_case = IMPULSE__ENVELOPE__BODY_LOAD;
  env.load = &load;
  expect_raw_error(fd, &env, ABUSE_CLOSE_MS, IMPULSE__ERROR_CODE__BAD_REQUEST);

  /* A response body sent as a request. */
  Impulse__Envelope env2 = IMPULSE__ENVELOPE__INIT;
  Impulse__InvokeResponse ir = IMPULSE__INVOKE_RESPONSE__INIT;
  env2.id = 8;
  env2.body_case = IMPULSE__ENVELOPE__BODY_INVOKE_OK;
  env2.invoke_ok = &ir;
  expect_raw_error(fd, &env2, ABUSE_CLOSE_MS, IMPULSE__ERROR_CODE__BAD_REQUEST);

  /* Still a working connection: an anonymous invoke without Hello. */
  Impulse__Envelope env3 = IMPULSE__ENVELOPE__INIT;
  Impulse__InvokeRequest inv = IMPULSE__INVOKE_REQUEST__INIT;
  inv.function = "echo";
  inv.has_payload = 1;
  inv.payload.data = (uint8_t *)"raw";
  inv.payload.len = 3;
  env3.id = 9;
  env3.body_case = IMPULSE__ENVELOPE__BODY_INVOKE;
  env3.invoke = &inv;
  Impulse__Envelope *r = it_raw_call(fd, &env3, 10000);
  assert_non_null(r);
  assert_int_equal(r->id, 9);
  assert_int_equal(r->body_case, IMPULSE__ENVELOPE__BODY_INVOKE_OK);
  assert_int_equal(r->invoke_ok->payload.len, 3);
  assert_memory_equal(r->invoke_ok->payload.data, "raw", 3);
  impulse__envelope__free_unpacked(r, NULL);
  close(fd);
  good_echo(f);
  it_group_test_end(&f->group);
}

static void test_unauthenticated_control(void **state) {
  fixture_t *f = it_group_test_start(state);
  good_echo(f);

  /* The library with token "": anonymous; Deploy is refused. */
  impulse_client_t *anon = it_connect_ok(&f->group.server, 0, CALL_TIMEOUT_MS);
  uint32_t v = 0;
  char *so;
  size_t solen;
  assert_int_equal(it_read_function("echo", &so, &solen), 0);
  int rc = impulse_deploy(anon, "sneaky", so, solen, NULL, &v);
  fprintf(stderr, "anonymous deploy -> %s: %s\n", impulse_status_name(rc),
          impulse_client_error(anon));
  assert_int_equal(rc, IMPULSE_S_UNAUTHENTICATED);
  /* ... so are Delete and Scale of an existing function. */
  assert_int_equal(impulse_delete(anon, "echo"), IMPULSE_S_UNAUTHENTICATED);
  assert_int_equal(impulse_scale(anon, "echo", 2, 3),
                   IMPULSE_S_UNAUTHENTICATED);
  /* ... and the connection still invokes. */
  impulse_response_t *r = NULL;
  assert_int_equal(it_invoke(anon, "echo", "anon", &r), IMPULSE_S_OK);
  impulse_response_free(r);
  impulse_client_close(anon);

  /* Raw: a Deploy with no Hello at all. A small one is refused for its
   * missing token; a real artifact (above the 4 KiB a connection may send
   * before its Hello) for its size, and the connection is closed. */
  int fd = it_raw_connect(&f->group.server);
  assert_true(fd >= 0);
  Impulse__Envelope env = IMPULSE__ENVELOPE__INIT;
  Impulse__DeployRequest dep = IMPULSE__DEPLOY_REQUEST__INIT;
  dep.name = "sneaky";
  dep.artifact.data = (uint8_t *)so;
  dep.artifact.len = 1024;
  env.id = 42;
  env.body_case = IMPULSE__ENVELOPE__BODY_DEPLOY;
  env.deploy = &dep;
  expect_raw_error(fd, &env, 10000, IMPULSE__ERROR_CODE__UNAUTHENTICATED);
  close(fd);
  dep.artifact.len = solen;
  imp_buf_t frame = {0};
  assert_int_equal(imp_frame_append(&frame, &env, IMP_DEFAULT_MAX_FRAME), 0);
  abuse(f, "deploy of a whole artifact before Hello", frame.data, frame.len,
        IMPULSE__ERROR_CODE__TOO_LARGE);
  imp_buf_free(&frame);
  free(so);

  /* A wrong token is refused at the handshake. */
  impulse_client_t *bad = NULL;
  rc = impulse_client_connect(f->group.server.addr, "0123456789abcdef", &bad);
  assert_int_equal(rc, IMPULSE_S_UNAUTHENTICATED);
  impulse_client_close(bad);

  /* Nothing was created or changed. */
  assert_int_equal(it_invoke(f->group.admin, "sneaky", "x", &r),
                   IMPULSE_S_NOT_FOUND);
  impulse_response_free(r);
  assert_int_equal(it_lists(&f->group.server, "sneaky"), 0);
  assert_int_equal(it_lists(&f->group.server, "echo"), 1);
  char line[64];
  assert_non_null(it_describe_field(&f->group.server, "echo",
                                    "max instances:", line, sizeof line));
  assert_string_not_equal(line, "3");
  good_echo(f);
  it_group_test_end(&f->group);
}

/* Calls `slow` with a payload, expecting "slept N". */
static void good_slow(fixture_t *f, const char *ms) {
  char want[32];
  snprintf(want, sizeof want, "slept %s", ms);
  assert_true(it_answers(f->group.admin, "slow", ms, want, 0));
}

static void test_client_vanishes_mid_call(void **state) {
  fixture_t *f = it_group_test_start(state);
  good_slow(f, "1"); /* an instance is up */
  for (int round = 0; round < 3; round++) {
    /* One call running, three queued behind it, then the client is gone. */
    impulse_client_t *c = it_connect_ok(&f->group.server, 0, CALL_TIMEOUT_MS);
    for (int i = 0; i < 4; i++)
      assert_int_equal(impulse_invoke_send(c, "slow", "100", 3, NULL, NULL),
                       IMPULSE_S_OK);
    /* invoke_recv flushes; a short timeout then drops the connection. */
    impulse_client_set_timeout(c, 50);
    impulse_response_t *r = NULL;
    assert_int_not_equal(impulse_invoke_recv(c, &r), IMPULSE_S_OK);
    impulse_client_close(c);
    good_echo(f);
  }
  /* The abandoned calls ran (or expired) and freed the slot. */
  good_slow(f, "2");
  good_echo(f);
  it_group_test_end(&f->group);
}

TEST_MAIN("integration_protocol_abuse", group_setup, it_group_teardown,
          cmocka_unit_test(test_garbage_frames),
          cmocka_unit_test(test_huge_length_prefix),
          cmocka_unit_test(test_large_frames_before_hello),
          cmocka_unit_test(test_half_frame_then_hang_up),
          cmocka_unit_test(test_wrong_message_kind),
          cmocka_unit_test(test_unauthenticated_control),
          cmocka_unit_test(test_client_vanishes_mid_call),
          cmocka_unit_test(it_group_test_clean_stop))
