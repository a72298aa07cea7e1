/*
 * Integration: the `impulse` command line as a user types it, against a
 * real server.
 *
 *   options before the command: `impulse --addr A --token T info` works,
 *   also for a subcommand (trigger ls), top and deploy/invoke; given both
 *   before and after the command, the one after wins; --help, help,
 *   --version still work; an unknown or incomplete option before the
 *   command, or one before `serve`, is a usage error (exit 2).
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

#define DEAD_ADDR "127.0.0.1:1" /* nobody listens there */

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

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_options_before_the_command, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_top_level_usage, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
