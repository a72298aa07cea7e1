/*
 * Function logs (docs/function-abi.md "Output"): what a function writes to
 * stdout, stderr and impulse_log lands in its own log, escaped when shown,
 * and never in the server's log.
 *
 *   stdout, stderr, impulse_log       -> `impulse logs` shows one entry
 *                                        each, on the right stream, ANSI
 *                                        escapes, \r and \n escaped; a
 *                                        line 10000 bytes long is cut
 *   a line in the server's log format -> only in the function log
 *   --instance ID of another instance -> nothing; --tail 1 -> one entry
 *   unknown function                  -> exit 1, "unknown function"
 *   no token (RPC and HTTP)           -> UNAUTHENTICATED / 401
 *   GET /api/functions/NAME/logs      -> JSON entries, escaped messages;
 *                                        bad parameters 400, unknown 404
 *   --follow                          -> prints a line said afterwards
 *   1 GiB on stdout while an echo     -> no failed echo call, server RSS
 *   stream runs                          +< ring + 16 MiB, server log
 *                                        without a byte of it, drops > 0
 *                                        in /metrics
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cmocka.h>

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "harness_load.h"
#include "tests/support/test_main.h"

#ifndef IT_ARTIFACTS_DIR
#error "IT_ARTIFACTS_DIR must be defined by the build"
#endif

#define CALL_TIMEOUT_MS 60000u
#define WAIT_MS 10000u

static void deploy_chatty(it_server_t *s) {
  char path[512];
  snprintf(path, sizeof path, "%s/chatty.so", IT_ARTIFACTS_DIR);
  impulse_client_t *c = it_connect_ok(s, 1, CALL_TIMEOUT_MS);
  assert_int_equal(it_deploy_file(c, "chatty", path, NULL, NULL), 0);
  impulse_client_close(c);
}

static void call(it_server_t *s, const char *payload) {
  impulse_client_t *c = it_connect_ok(s, 0, CALL_TIMEOUT_MS);
  assert_true(it_answers(c, "chatty", payload, "ok", 0));
  impulse_client_close(c);
}

/* `impulse logs chatty ARGS...` by the admin until its output holds
 * `want` (bounded); returns the last output (free it). */
static char *logs_until(it_server_t *s, const char *want, const char *a1,
                        const char *a2) {
  uint64_t end = it_now_ms() + WAIT_MS;
  for (;;) {
    it_cli_t r;
    const char *argv[] = {"logs", "chatty", a1, a2, NULL};
    if (a1 == NULL) argv[2] = NULL;
    assert_int_equal(it_cli_admin(&r, s, argv), 0);
    if (r.status != 0) fail_msg("impulse logs: %d: %s", r.status, r.err);
    char *out = strdup(r.out);
    it_cli_free(&r);
    if (want == NULL || strstr(out, want) != NULL || it_now_ms() > end)
      return out;
    free(out);
    it_sleep_ms(100);
  }
}

static int count_lines_with(const char *text, const char *needle) {
  int n = 0;
  for (const char *p = text; (p = strstr(p, needle)) != NULL; p++) n++;
  return n;
}

static char *server_log(const it_server_t *s) {
  char *data;
  size_t len;
  assert_int_equal(it_read_file(s->log_file, &data, &len), 0);
  return data;
}

/* GET path over HTTP with the admin token (or none); the raw answer. */
static char *http_get(const it_server_t *s, const char *path, int admin) {
  int fd = it_http_connect(s);
  assert_true(fd >= 0);
  char req[1024];
  snprintf(req, sizeof req, "GET %s HTTP/1.0\r\n%s%s%s\r\n", path,
           admin ? "Authorization: Bearer " : "", admin ? s->token : "",
           admin ? "\r\n" : "");
  assert_int_equal(it_raw_send(fd, req, strlen(req)), 0);
  int closed = 0;
  char *out = it_raw_read_all(fd, 5000, &closed);
  close(fd);
  assert_non_null(out);
  return out;
}

static void test_streams_escaped_and_apart(void **state) {
  it_server_t *s = *state;
  deploy_chatty(s);
  call(s, "lines");
  call(s, "long");
  char *out = logs_until(s, "chatty-long", NULL, NULL);
  fprintf(stderr, "impulse logs chatty:\n%.3000s\n", out);
  /* Each on its stream, one entry each, escaped. */
  assert_non_null(strstr(out, "  stdout  chatty-out plain stdout line\n"));
  assert_non_null(strstr(
      out, "  stderr  chatty-err \\x1b[2J\\x1b[31mred\\x1b[0m back\\rover\n"));
  assert_non_null(
      strstr(out, "  log/warn  chatty-log first\\nsecond\\x1b[1m 42\n"));
  assert_non_null(strstr(out,
                         "  stderr  2030-01-01T00:00:00.000Z error [1] "
                         "chatty-forged server line"));
  assert_int_equal(count_lines_with(out, "second"), 1);
  assert_null(strchr(out, '\x1b'));
  assert_null(strchr(out, '\r'));
  /* The long line: 4096 bytes kept, marked cut. */
  const char *lng = strstr(out, "chatty-long ");
  assert_non_null(lng);
  const char *eol = strchr(lng, '\n');
  assert_non_null(eol);
  assert_int_equal((size_t)(eol - lng), 4096 + strlen(" [cut]"));
  free(out);

  /* None of it in the server's log. */
  char *log = server_log(s);
  assert_null(strstr(log, "chatty-"));
  assert_null(strstr(log, "LLLLLLLL"));
  free(log);

  /* --tail and --instance. */
  out = logs_until(s, NULL, "--tail", "1");
  assert_int_equal(count_lines_with(out, "\n"), 1);
  assert_non_null(strstr(out, "chatty-long"));
  char id[32] = "";
  const char *p = strstr(out, "instance ");
  assert_non_null(p);
  sscanf(p + 9, "%31[0-9]", id);
  free(out);
  char other[40];
  snprintf(other, sizeof other, "%llu", strtoull(id, NULL, 10) + 1000);
  out = logs_until(s, NULL, "--instance", other);
  assert_string_equal(out, "");
  free(out);
  out = logs_until(s, NULL, "--instance", id);
  assert_non_null(strstr(out, "chatty-out"));
  free(out);

  /* Unknown function, bad flags, no token. */
  it_cli_t r;
  assert_int_equal(IT_CLI_ADMIN(&r, s, "logs", "nosuch"), 0);
  assert_int_equal(r.status, 1);
  assert_non_null(strstr(r.err, "unknown function 'nosuch'"));
  it_cli_free(&r);
  assert_int_equal(IT_CLI_ADMIN(&r, s, "logs", "chatty", "--since", "5x"), 0);
  assert_int_equal(r.status, 2);
  assert_non_null(strstr(r.err, "--since takes a duration"));
  it_cli_free(&r);
  assert_int_equal(IT_CLI(&r, NULL, "logs", "chatty", "--addr", s->addr), 0);
  assert_int_equal(r.status, 1);
  assert_non_null(strstr(r.err, "UNAUTHENTICATED"));
  it_cli_free(&r);

  /* HTTP. */
  char *h = http_get(s, "/api/functions/chatty/logs?since=1h&tail=50", 1);
  assert_non_null(strstr(h, "HTTP/1.1 200"));
  assert_true(strstr(h, "\"stream\":\"log\"") != NULL ||
              strstr(h, "\"stream\": \"log\"") != NULL);
  /* JSON of the escaped text: the backslash itself is escaped. */
  assert_non_null(strstr(h, "chatty-log first\\\\nsecond\\\\x1b[1m 42"));
  assert_null(strchr(h, '\x1b'));
  free(h);
  h = http_get(s, "/api/functions/chatty/logs", 0);
  assert_non_null(strstr(h, "HTTP/1.1 401"));
  free(h);
  h = http_get(s, "/api/functions/nosuch/logs", 1);
  assert_non_null(strstr(h, "HTTP/1.1 404"));
  free(h);
  h = http_get(s, "/api/functions/chatty/logs?after=x", 1);
  assert_non_null(strstr(h, "HTTP/1.1 400"));
  free(h);
  h = http_get(s, "/api/functions/chatty/logs?color=red", 1);
  assert_non_null(strstr(h, "unknown parameter 'color'"));
  free(h);
  s->test_passed = 1;
}

static void test_follow(void **state) {
  it_server_t *s = *state;
  deploy_chatty(s);
  call(s, "say before-follow");
  char outpath[300];
  snprintf(outpath, sizeof outpath, "%s/follow.out", s->root);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    FILE *f = freopen(outpath, "w", stdout);
    if (f == NULL) _exit(127);
    execl(IMPULSE_BIN, IMPULSE_BIN, "logs", "chatty", "-f", "--addr", s->addr,
          "--token", s->token, (char *)NULL);
    _exit(127);
  }
  it_sleep_ms(500);
  call(s, "say after-follow-started");
  uint64_t end = it_now_ms() + WAIT_MS;
  int seen = 0;
  while (!seen && it_now_ms() < end) {
    char *data = NULL;
    size_t len;
    if (it_read_file(outpath, &data, &len) == 0) {
      seen = strstr(data, "after-follow-started") != NULL &&
             strstr(data, "before-follow") != NULL;
      free(data);
    }
    if (!seen) it_sleep_ms(100);
  }
  kill(pid, SIGKILL);
  waitpid(pid, NULL, 0);
  assert_true(seen);
  s->test_passed = 1;
}

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

static void test_flood(void **state) {
  it_server_t *s = *state;
  deploy_chatty(s);
  impulse_client_t *admin = it_connect_ok(s, 1, CALL_TIMEOUT_MS);
  uint32_t v;
  assert_int_equal(it_deploy_fn(admin, "echo", "echo", NULL, &v), 0);
  impulse_client_close(admin);
  call(s, "flood 8"); /* warm up: the ring is full from here on */
  it_sleep_ms(300);
  long before = server_rss_kb(s);
  it_stream_t bystander;
  memset(&bystander, 0, sizeof bystander);
  assert_int_equal(it_stream_start(&bystander, s, "bystander", 10000, 1), 0);
  uint64_t t0 = it_now_ms();
  call(s, "flood 1024");
  uint64_t took = it_now_ms() - t0;
  it_sleep_ms(300);
  it_stream_stop(&bystander);
  long after = server_rss_kb(s);
  fprintf(stderr,
          "1 GiB on stdout in %llu ms; server RSS %ld -> %ld KiB; "
          "bystander %lu ok\n",
          (unsigned long long)took, before, after, (unsigned long)bystander.ok);
  if (bystander.wrong || bystander.refused)
    fail_msg("the bystander saw %lu wrong and %lu refused calls: %s",
             (unsigned long)bystander.wrong, (unsigned long)bystander.refused,
             bystander.first_error);
  assert_true(bystander.ok > 0);
  assert_true(after - before < 1024 + 16 * 1024);

  char *log = server_log(s);
  assert_null(strstr(log, "FLOODFLOOD"));
  free(log);
  char *m = http_get(s, "/metrics", 0);
  const char *p =
      strstr(m,
             "impulse_function_log_dropped_total{function=\"chatty\","
             "reason=\"rate\"} ");
  assert_non_null(p);
  unsigned long long dropped = strtoull(strchr(p, '}') + 2, NULL, 10);
  fprintf(stderr, "dropped over the rate: %llu lines\n", dropped);
  assert_true(dropped > 500000);
  free(m);
  /* The log still answers, with the function's newest lines. */
  char *out = logs_until(s, "FLOOD", "--tail", "3");
  assert_int_equal(count_lines_with(out, "\n"), 3);
  free(out);
  s->test_passed = 1;
}

static int setup(void **state) {
  return it_fixture_setup(state, NULL);
}

TEST_MAIN("integration_logs", NULL, NULL,
          cmocka_unit_test_setup_teardown(test_streams_escaped_and_apart, setup,
                                          it_fixture_teardown),
          cmocka_unit_test_setup_teardown(test_follow, setup,
                                          it_fixture_teardown),
          cmocka_unit_test_setup_teardown(test_flood, setup,
                                          it_fixture_teardown))
