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
 *
 *   limits (runtime/core/limits.h): every numeric flag one past its bound
 *   (deploy --concurrency 1025 and 2000, --timeout, --memory, --min, --max
 *   0 and 10001, --max-step, autoscaling, scale, invoke --deadline and
 *   --idempotency-key, trigger create --max-in-flight, --max-retries,
 *   --backoff, --group, names, publish partitions) is refused by the CLI
 *   with exit 2 and a message naming the flag and the range, and nothing
 *   reaches the server; every value at its bound is sent and accepted; the
 *   help texts print the same numbers. A file above the server's
 *   --max-frame is refused (exit 1) naming both sizes, and not sent.
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

#include "core/limits.h"
#include "harness.h"
#include "tests/support/test_main.h"

#ifndef IT_ARTIFACTS_DIR
#error "IT_ARTIFACTS_DIR must be defined by the build"
#endif

#define DEAD_ADDR "127.0.0.1:1" /* nobody listens there */
#define CALL_TIMEOUT_MS 30000u

/* Runs the CLI and checks its exit status; the caller frees *r. */
#define EXPECT_CLI(r, want, ...)                                       \
  do {                                                                 \
    assert_int_equal(IT_CLI((r), NULL, __VA_ARGS__), 0);               \
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

/* `impulse invoke hdrs ARGS... --addr ADDR` with stdout on a terminal
 * exits 0 and prints exactly `want`. */
static void expect_tty_out(const it_server_t *s, const char *const *args,
                           const char *want) {
  const char *argv[IT_MAX_ARGS] = {"invoke", "hdrs"};
  size_t n = 2;
  for (; *args != NULL && n < IT_MAX_ARGS - 3; args++) argv[n++] = *args;
  argv[n++] = "--addr";
  argv[n++] = s->addr;
  argv[n] = NULL;
  it_cli_t r;
  assert_int_equal(it_cli_tty(&r, NULL, argv), 0);
  assert_int_equal(r.status, 0);
  expect_out(&r, want);
  it_cli_free(&r);
}

static void test_invoke_output(void **state) {
  it_server_t *s = *state;
  char path[512];
  it_cli_t r;
  snprintf(path, sizeof path, "%s/http_headers.so", IT_ARTIFACTS_DIR);
  impulse_client_t *c = it_connect_ok(s, 1, CALL_TIMEOUT_MS);
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
  const struct {
    const char *const *args;
    const char *want;
  } tty[] = {
      {(const char *const[]){"-d", "body", NULL}, "body\n"},
      {(const char *const[]){"-d", "line\n", NULL}, "line\n"},
      {(const char *const[]){"-d", "", NULL}, ""},
      {(const char *const[]){"-i", "-d", "body", NULL},
       "seen: -\ncontent-type: text/plain\n\nbody\n"},
  };
  for (size_t i = 0; i < sizeof tty / sizeof tty[0]; i++)
    expect_tty_out(s, tty[i].args, tty[i].want);

  /* The help says both. */
  EXPECT_CLI(&r, 0, "invoke", "--help");
  assert_non_null(strstr(r.out, "-i, --include"));
  assert_non_null(strstr(r.out, "on a\nterminal, a newline follows"));
  it_cli_free(&r);

  s->test_passed = 1;
}

/* Runs `impulse ARGV... --addr A --token T` and checks that the CLI
 * refused it as a usage error naming `want`, with nothing on stdout. */
static void expect_refused(const it_server_t *s, const char *const *argv,
                           const char *want) {
  it_cli_t r;
  assert_int_equal(it_cli_admin(&r, s, argv), 0);
  if (r.status != 2 || strstr(r.err, want) == NULL)
    fprintf(stderr, "%s %s: exit %d\nstderr: %s\nwanted: %s\n", argv[0],
            argv[1], r.status, r.err, want);
  assert_int_equal(r.status, 2);
  assert_int_equal(r.out_len, 0);
  assert_non_null(strstr(r.err, want));
  it_cli_free(&r);
}

/* A whole-number flag one past its range [lo, hi]: `bad`. */
static void expect_range(const it_server_t *s, const char *const *cmd,
                         const char *flag, unsigned long lo, unsigned long hi,
                         unsigned long bad) {
  char value[32], want[160];
  const char *argv[IT_MAX_ARGS];
  size_t n = 0;
  for (; cmd[n] != NULL; n++) argv[n] = cmd[n];
  snprintf(value, sizeof value, "%lu", bad);
  argv[n++] = flag;
  argv[n++] = value;
  argv[n] = NULL;
  snprintf(want, sizeof want,
           "%s must be a whole number from %lu to %lu, not '%lu'", flag, lo, hi,
           bad);
  expect_refused(s, argv, want);
}

static void test_limits(void **state) {
  it_server_t *s = *state;
  char echo_so[512], want[256], v[8][32], key[IMP_IDEM_MAX_KEY + 2],
      group[IMP_GROUP_MAX + 2];
  it_cli_t r;
  it_function_path("echo", echo_so, sizeof echo_so);

  const char *const deploy[] = {"deploy", "lim", echo_so, NULL};
  expect_range(s, deploy, "--concurrency", 1, IMP_CONCURRENCY_MAX, 2000);
  expect_range(s, deploy, "--concurrency", 1, IMP_CONCURRENCY_MAX,
               IMP_CONCURRENCY_MAX + 1ul);
  expect_range(s, deploy, "--timeout", 1, IMP_TIMEOUT_MAX_MS,
               IMP_TIMEOUT_MAX_MS + 1ul);
  expect_range(s, deploy, "--memory", 1, IMP_MEMORY_MAX_MB,
               IMP_MEMORY_MAX_MB + 1ul);
  expect_range(s, deploy, "--min", 0, IMP_INSTANCES_MAX,
               IMP_INSTANCES_MAX + 1ul);
  expect_range(s, deploy, "--max", 1, IMP_INSTANCES_MAX, 0);
  expect_range(s, deploy, "--max", 1, IMP_INSTANCES_MAX,
               IMP_INSTANCES_MAX + 1ul);
  expect_range(s, deploy, "--max-step", 1, IMP_MAX_STEP_PCT_MAX,
               IMP_MAX_STEP_PCT_MAX + 1ul);
  expect_range(s, deploy, "--scale-to-zero-after", 0, IMP_SCALE_TO_ZERO_MAX_S,
               IMP_SCALE_TO_ZERO_MAX_S + 1ul);
  snprintf(v[0], sizeof v[0], "%g", IMP_TARGET_CONCURRENCY_MAX * 2);
  snprintf(want, sizeof want,
           "--target-concurrency must be a number from %g to %g",
           IMP_TARGET_CONCURRENCY_MIN, IMP_TARGET_CONCURRENCY_MAX);
  expect_refused(s,
                 (const char *const[]){"deploy", "lim", echo_so,
                                       "--target-concurrency", v[0], NULL},
                 want);
  expect_refused(s, (const char *const[]){"deploy", "a b", echo_so, NULL},
                 "NAME 'a b' is not a valid name");

  const char *const scale[] = {"scale", "lim", NULL};
  expect_range(s, scale, "--max", 1, IMP_INSTANCES_MAX, 0);
  expect_range(s, scale, "--min", 0, IMP_INSTANCES_MAX,
               IMP_INSTANCES_MAX + 1ul);

  const char *const invoke[] = {"invoke", "lim", "-d", "x", NULL};
  expect_range(s, invoke, "--deadline", 1, IMP_DEADLINE_MAX_MS,
               IMP_DEADLINE_MAX_MS + 1ul);
  memset(key, 'k', IMP_IDEM_MAX_KEY + 1);
  key[IMP_IDEM_MAX_KEY + 1] = '\0';
  snprintf(want, sizeof want, "--idempotency-key must be 1 to %d bytes",
           IMP_IDEM_MAX_KEY);
  expect_refused(s,
                 (const char *const[]){"invoke", "lim", "-d", "x",
                                       "--idempotency-key", key, NULL},
                 want);

  const char *const trigger[] = {"trigger", "create",     "lim-t", "--topic",
                                 "lim",     "--function", "lim",   NULL};
  expect_range(s, trigger, "--max-in-flight", 1, IMP_TRIGGER_MAX_IN_FLIGHT,
               IMP_TRIGGER_MAX_IN_FLIGHT + 1ul);
  expect_range(s, trigger, "--max-retries", 0, IMP_TRIGGER_MAX_RETRIES,
               IMP_TRIGGER_MAX_RETRIES + 1ul);
  snprintf(v[0], sizeof v[0], "1:%lu", IMP_TRIGGER_BACKOFF_MAX_MS + 1ul);
  snprintf(want, sizeof want,
           "--backoff MAX_MS must be a whole number from 1 to %u",
           IMP_TRIGGER_BACKOFF_MAX_MS);
  expect_refused(
      s,
      (const char *const[]){"trigger", "create", "lim-t", "--topic", "lim",
                            "--function", "lim", "--backoff", v[0], NULL},
      want);
  memset(group, 'g', IMP_GROUP_MAX + 1);
  group[IMP_GROUP_MAX + 1] = '\0';
  expect_refused(
      s,
      (const char *const[]){"trigger", "create", "lim-t", "--topic", "lim",
                            "--function", "lim", "--group", group, NULL},
      "--group is");
  expect_refused(s,
                 (const char *const[]){"trigger", "create", "lim-t", "--topic",
                                       "lim", "--function", "a/b", NULL},
                 "--function 'a/b' is not a valid name");

  const char *const publish[] = {"publish", "lim", "-d", "x", NULL};
  expect_range(s, publish, "--partitions", 1, IMP_PARTITIONS_MAX,
               IMP_PARTITIONS_MAX + 1ul);
  expect_range(s, publish, "--partition", 0, IMP_PARTITIONS_MAX - 1,
               IMP_PARTITIONS_MAX);

  /* Nothing of the above reached the server. */
  EXPECT_CLI(&r, 0, "ls", "--addr", s->addr, "--token", s->token);
  assert_string_equal(r.out, "no functions\n");
  it_cli_free(&r);
  EXPECT_CLI(&r, 0, "trigger", "ls", "--addr", s->addr, "--token", s->token);
  assert_string_equal(r.out, "no triggers\n");
  it_cli_free(&r);

  /* Every bound itself is sent, and the server takes it. */
  snprintf(v[0], sizeof v[0], "%u", IMP_CONCURRENCY_MAX);
  snprintf(v[1], sizeof v[1], "%u", IMP_TIMEOUT_MAX_MS);
  snprintf(v[2], sizeof v[2], "%u", IMP_MEMORY_MAX_MB);
  snprintf(v[3], sizeof v[3], "%u", IMP_INSTANCES_MAX);
  snprintf(v[4], sizeof v[4], "%u", IMP_MAX_STEP_PCT_MAX);
  snprintf(v[5], sizeof v[5], "%u", IMP_SCALE_TO_ZERO_MAX_S);
  snprintf(v[6], sizeof v[6], "%g", IMP_TARGET_CONCURRENCY_MAX);
  EXPECT_CLI(&r, 0, "deploy", "lim", echo_so, "--concurrency", v[0],
             "--timeout", v[1], "--memory", v[2], "--min", "0", "--max", v[3],
             "--max-step", v[4], "--scale-to-zero-after", v[5],
             "--target-concurrency", v[6], "--addr", s->addr, "--token",
             s->token);
  it_cli_free(&r);
  EXPECT_CLI(&r, 0, "describe", "lim", "--addr", s->addr, "--token", s->token);
  assert_non_null(it_line_value(r.out, "concurrency:", want, sizeof want));
  assert_string_equal(want, v[0]);
  it_cli_free(&r);
  EXPECT_CLI(&r, 0, "scale", "lim", "--max", v[3], "--addr", s->addr, "--token",
             s->token);
  it_cli_free(&r);
  snprintf(v[0], sizeof v[0], "%u", IMP_DEADLINE_MAX_MS);
  key[IMP_IDEM_MAX_KEY] = '\0';
  EXPECT_CLI(&r, 0, "invoke", "lim", "-d", "at the bound", "--deadline", v[0],
             "--idempotency-key", key, "--addr", s->addr);
  assert_string_equal(r.out, "at the bound");
  it_cli_free(&r);
  snprintf(v[0], sizeof v[0], "%u", IMP_TRIGGER_MAX_IN_FLIGHT);
  snprintf(v[1], sizeof v[1], "%u", IMP_TRIGGER_MAX_RETRIES);
  snprintf(v[2], sizeof v[2], "%u:%u", IMP_TRIGGER_BACKOFF_MAX_MS,
           IMP_TRIGGER_BACKOFF_MAX_MS);
  group[IMP_GROUP_MAX] = '\0';
  EXPECT_CLI(&r, 0, "trigger", "create", "lim-t", "--topic", "lim-topic",
             "--function", "lim", "--max-in-flight", v[0], "--max-retries",
             v[1], "--backoff", v[2], "--group", group, "--addr", s->addr,
             "--token", s->token);
  it_cli_free(&r);
  EXPECT_CLI(&r, 0, "trigger", "rm", "lim-t", "--addr", s->addr, "--token",
             s->token);
  it_cli_free(&r);

  /* The help texts quote the same numbers. */
  EXPECT_CLI(&r, 0, "deploy", "--help");
  snprintf(want, sizeof want, "(1-%u)", IMP_CONCURRENCY_MAX);
  assert_non_null(strstr(r.out, want));
  snprintf(want, sizeof want, "(1-%u)", IMP_TIMEOUT_MAX_MS);
  assert_non_null(strstr(r.out, want));
  snprintf(want, sizeof want, "--max-frame (%u MiB",
           IMP_DEFAULT_MAX_FRAME >> 20);
  assert_non_null(strstr(r.out, want));
  it_cli_free(&r);
  EXPECT_CLI(&r, 0, "trigger", "create", "--help");
  snprintf(want, sizeof want, "(1-%u)", IMP_TRIGGER_MAX_IN_FLIGHT);
  assert_non_null(strstr(r.out, want));
  it_cli_free(&r);
  EXPECT_CLI(&r, 0, "invoke", "--help");
  snprintf(want, sizeof want, "(1-%u;", IMP_DEADLINE_MAX_MS);
  assert_non_null(strstr(r.out, want));
  it_cli_free(&r);

  s->test_passed = 1;
}

#define SMALL_FRAME 1048576u /* the server's --max-frame in test_frame */

static int setup_small_frame(void **state) {
  static const char *const extra[] = {"--max-frame", "1048576", NULL};
  return it_fixture_setup(state, extra);
}

static void test_frame_limit(void **state) {
  it_server_t *s = *state;
  char big[512], echo_so[512], want[160], word[64];
  size_t len = 2 * SMALL_FRAME;
  char *data = calloc(1, len);
  it_cli_t r;
  assert_non_null(data);
  snprintf(big, sizeof big, "%s/big.so", s->root);
  assert_int_equal(it_write_file(big, data, len), 0);
  free(data);
  snprintf(want, sizeof want,
           "is %zu bytes, above the %u-byte frame limit of the server at %s",
           len, SMALL_FRAME, s->addr);

  EXPECT_CLI(&r, 1, "deploy", "big", big, "--addr", s->addr, "--token",
             s->token);
  assert_int_equal(r.out_len, 0);
  assert_non_null(strstr(r.err, big));
  assert_non_null(strstr(r.err, want));
  it_cli_free(&r);
  EXPECT_CLI(&r, 1, "invoke", "big", "-f", big, "--addr", s->addr);
  assert_int_equal(r.out_len, 0);
  assert_non_null(strstr(r.err, want));
  it_cli_free(&r);

  /* Nothing was sent; a file that fits still goes. */
  EXPECT_CLI(&r, 0, "ls", "--addr", s->addr, "--token", s->token);
  assert_string_equal(r.out, "no functions\n");
  it_cli_free(&r);
  it_function_path("echo", echo_so, sizeof echo_so);
  EXPECT_CLI(&r, 0, "deploy", "small", echo_so, "--addr", s->addr, "--token",
             s->token);
  assert_string_equal(it_last_word(r.out, word, sizeof word), "1");
  it_cli_free(&r);

  s->test_passed = 1;
}

TEST_MAIN("integration_cli", NULL, NULL,
          IT_SERVER_TEST(test_options_before_the_command, it_fixture_plain),
          IT_SERVER_TEST(test_top_level_usage, it_fixture_plain),
          IT_SERVER_TEST(test_invoke_output, it_fixture_plain),
          IT_SERVER_TEST(test_limits, it_fixture_plain),
          IT_SERVER_TEST(test_frame_limit, setup_small_frame))
