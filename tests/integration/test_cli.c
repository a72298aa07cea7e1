/*
 * Integration: the `impulse` command line as a user types it, against a
 * real server.
 *
 *   options before the command: `impulse --addr A --token T info` works,
 *   also for a subcommand (trigger ls), top and deploy/invoke; given both
 *   before and after the command, the one after wins; --help, help,
 *   --version still work; an unknown or incomplete option before the
 *   command, or one before `serve`, is a usage error (exit 2).
 *
 *   invoke: -i prints the response headers a function set (http_headers.c
 *   sends a request header back), one `name: value` a line, then an empty
 *   line, then the payload; piped, the payload stays byte-exact, on a
 *   terminal a newline follows a payload that does not end with one.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"

#define CLI(res, env, ...) \
  it_cli((res), (env), (const char *const[]){__VA_ARGS__, NULL})

#ifndef IT_ARTIFACTS_DIR
#error "IT_ARTIFACTS_DIR must be defined by the build"
#endif

#define DEAD_ADDR "127.0.0.1:1" /* nobody listens there */
#define CALL_TIMEOUT_MS 30000u

static int setup(void **state) {
  return it_fixture_setup(state, NULL);
}
static int teardown(void **state) {
  return it_fixture_teardown(state);
}

/* Runs the CLI and checks its exit status; the caller frees *r. */
#define EXPECT_CLI(r, want, ...)                                       \
  do {                                                                 \
    assert_int_equal(CLI((r), NULL, __VA_ARGS__), 0);                  \
    if ((r)->status != (want))                                         \
      fprintf(stderr, "stdout: %s\nstderr: %s\n", (r)->out, (r)->err); \
    assert_int_equal((r)->status, (want));                             \
  } while (0)

static void test_options_before_the_command(void **state) {
  it_server_t *s = *state;
  char line[256], addr_eq[128], echo_so[512], word[64];
  it_cli_t r;
  it_function_path("echo", echo_so, sizeof echo_so);

  EXPECT_CLI(&r, 0, "--addr", s->addr, "--token", s->token, "info");
  assert_non_null(it_line_value(r.out, "address:", line, sizeof line));
  assert_string_equal(line, s->addr);
  assert_non_null(it_line_value(r.out, "admin:", line, sizeof line));
  assert_string_equal(line, "yes");
  it_cli_free(&r);

  /* --addr=VALUE, and options split around the command. */
  snprintf(addr_eq, sizeof addr_eq, "--addr=%s", s->addr);
  EXPECT_CLI(&r, 0, addr_eq, "ls", "--token", s->token);
  assert_string_equal(r.out, "no functions\n");
  it_cli_free(&r);

  /* A command that deploys and one that invokes. */
  EXPECT_CLI(&r, 0, "--addr", s->addr, "--token", s->token, "deploy", "g-echo",
             echo_so);
  assert_string_equal(it_last_word(r.out, word, sizeof word), "1");
  it_cli_free(&r);
  EXPECT_CLI(&r, 0, "--addr", s->addr, "invoke", "g-echo", "-d", "before");
  assert_int_equal(r.out_len, 6);
  assert_memory_equal(r.out, "before", 6);
  it_cli_free(&r);

  /* A subcommand, and top. */
  EXPECT_CLI(&r, 0, "--addr", s->addr, "--token", s->token, "trigger", "ls");
  assert_string_equal(r.out, "no triggers\n");
  it_cli_free(&r);
  EXPECT_CLI(&r, 0, "--addr", s->addr, "top", "--once");
  assert_non_null(strstr(r.out, s->addr));
  assert_true(it_has_line_word(r.out, "g-echo"));
  it_cli_free(&r);

  /* Both before and after: after wins, for --addr and for --token (a
   * wrong token is refused at connect). */
  EXPECT_CLI(&r, 0, "--addr", DEAD_ADDR, "info", "--addr", s->addr);
  it_cli_free(&r);
  EXPECT_CLI(&r, 3, "--addr", s->addr, "info", "--addr", DEAD_ADDR);
  assert_int_equal(r.out_len, 0);
  assert_non_null(strstr(r.err, DEAD_ADDR));
  it_cli_free(&r);
  EXPECT_CLI(&r, 0, "--token", "wrong", "--addr", s->addr, "info", "--token",
             s->token);
  assert_non_null(it_line_value(r.out, "admin:", line, sizeof line));
  assert_string_equal(line, "yes");
  it_cli_free(&r);
  EXPECT_CLI(&r, 1, "--token", s->token, "--addr", s->addr, "info", "--token",
             "wrong");
  assert_non_null(strstr(r.err, "UNAUTHENTICATED"));
  it_cli_free(&r);

  s->test_passed = 1;
}

static void test_top_level_usage(void **state) {
  it_server_t *s = *state;
  it_cli_t r;
  static const char synopsis[] =
      "usage: impulse [--addr HOST:PORT] [--token TOKEN] COMMAND [ARGS...]\n";

  EXPECT_CLI(&r, 0, "--help");
  assert_memory_equal(r.out, synopsis, strlen(synopsis));
  assert_non_null(strstr(r.out, "before or after its name"));
  it_cli_free(&r);
  EXPECT_CLI(&r, 0, "help");
  assert_memory_equal(r.out, synopsis, strlen(synopsis));
  it_cli_free(&r);
  EXPECT_CLI(&r, 0, "--addr", s->addr, "help", "deploy");
  assert_non_null(strstr(r.out, "usage: impulse deploy NAME FILE"));
  it_cli_free(&r);
  EXPECT_CLI(&r, 0, "--addr", s->addr, "--help", "invoke");
  assert_non_null(strstr(r.out, "usage: impulse invoke NAME"));
  it_cli_free(&r);
  EXPECT_CLI(&r, 0, "--version");
  assert_memory_equal(r.out, "impulse ", 8);
  it_cli_free(&r);

  /* Usage errors before the command: exit 2, nothing on stdout. */
  EXPECT_CLI(&r, 2, "--bogus", "info");
  assert_int_equal(r.out_len, 0);
  assert_non_null(strstr(r.err, "unknown option '--bogus'"));
  it_cli_free(&r);
  EXPECT_CLI(&r, 2, "--addr");
  assert_non_null(strstr(r.err, "option '--addr' needs a value"));
  it_cli_free(&r);
  EXPECT_CLI(&r, 2, "--addr", s->addr);
  assert_non_null(strstr(r.err, "usage: impulse"));
  it_cli_free(&r);
  EXPECT_CLI(&r, 2, "--addr", s->addr, "serve");
  assert_non_null(strstr(r.err, "'serve'"));
  it_cli_free(&r);
  EXPECT_CLI(&r, 2, "--addr", s->addr, "nope");
  assert_non_null(strstr(r.err, "unknown command 'nope'"));
  it_cli_free(&r);

  s->test_passed = 1;
}

/* Checks that r->out is exactly `want` (NUL-terminated). */
static void expect_out(const it_cli_t *r, const char *want) {
  if (r->out_len != strlen(want) || memcmp(r->out, want, r->out_len) != 0)
    fprintf(stderr, "stdout: '%s'\nwanted: '%s'\n", r->out, want);
  assert_int_equal(r->out_len, strlen(want));
  assert_memory_equal(r->out, want, r->out_len);
}

static void test_invoke_output(void **state) {
  it_server_t *s = *state;
  char path[512];
  it_cli_t r;
  snprintf(path, sizeof path, "%s/http_headers.so", IT_ARTIFACTS_DIR);
  impulse_client_t *c = it_connect(s, 1, CALL_TIMEOUT_MS);
  assert_non_null(c);
  uint32_t v = 0;
  assert_int_equal(it_deploy_file(c, "hdrs", path, NULL, &v), IMPULSE_S_OK);
  impulse_client_close(c);

  /* -i: the headers the function set, an empty line, the payload. */
  EXPECT_CLI(&r, 0, "invoke", "hdrs", "-d", "body", "-H", "greeting=hello",
             "-i", "--addr", s->addr);
  expect_out(&r, "seen: hello\ncontent-type: text/plain\n\nbody");
  assert_int_equal(r.err_len, 0);
  it_cli_free(&r);
  EXPECT_CLI(&r, 0, "invoke", "hdrs", "--include", "-d", "", "--addr", s->addr);
  expect_out(&r, "seen: -\ncontent-type: text/plain\n\n");
  it_cli_free(&r);

  /* Piped: the payload alone, byte-exact, no newline added. */
  EXPECT_CLI(&r, 0, "invoke", "hdrs", "-d", "body", "--addr", s->addr);
  expect_out(&r, "body");
  it_cli_free(&r);

  /* On a terminal: a newline after a payload without one, only then. */
  const char *const tty_body[] = {"invoke", "hdrs",  "-d", "body",
                                  "--addr", s->addr, NULL};
  assert_int_equal(it_cli_tty(&r, NULL, tty_body), 0);
  assert_int_equal(r.status, 0);
  expect_out(&r, "body\n");
  it_cli_free(&r);
  const char *const tty_line[] = {"invoke", "hdrs",  "-d", "line\n",
                                  "--addr", s->addr, NULL};
  assert_int_equal(it_cli_tty(&r, NULL, tty_line), 0);
  assert_int_equal(r.status, 0);
  expect_out(&r, "line\n");
  it_cli_free(&r);
  const char *const tty_empty[] = {"invoke", "hdrs",  "-d", "",
                                   "--addr", s->addr, NULL};
  assert_int_equal(it_cli_tty(&r, NULL, tty_empty), 0);
  assert_int_equal(r.status, 0);
  expect_out(&r, "");
  it_cli_free(&r);
  const char *const tty_include[] = {"invoke", "hdrs",   "-i",    "-d",
                                     "body",   "--addr", s->addr, NULL};
  assert_int_equal(it_cli_tty(&r, NULL, tty_include), 0);
  assert_int_equal(r.status, 0);
  expect_out(&r, "seen: -\ncontent-type: text/plain\n\nbody\n");
  it_cli_free(&r);

  /* The help says both. */
  EXPECT_CLI(&r, 0, "invoke", "--help");
  assert_non_null(strstr(r.out, "-i, --include"));
  assert_non_null(strstr(r.out, "on a\nterminal, a newline follows"));
  it_cli_free(&r);

  s->test_passed = 1;
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_options_before_the_command, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_top_level_usage, setup, teardown),
      cmocka_unit_test_setup_teardown(test_invoke_output, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
