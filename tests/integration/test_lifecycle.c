/*
 * Integration: a function's life as a user sees it, through the client
 * library and the `impulse` CLI, across a clean server restart.
 *
 *   deploy echo -> v1, invoke -> echo's answer from v1
 *   redeploy the same name with hello.so -> v2, invoke -> hello's answer, v2
 *   SIGTERM, restart on the same state dir -> v2 still answers
 *   `impulse ls` / `impulse describe` show it; `impulse rm` -> NOT_FOUND
 *
 * plus the CLI contract: deploy prints the version as its last word, invoke
 * writes exactly the payload to stdout, errors go to stderr with a non-zero
 * exit, and --addr/IMPULSE_ADDR, --token/IMPULSE_TOKEN both work (flags win).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "harness.h"

#define CALL_TIMEOUT_MS 30000u

#define CLI(res, env, ...) \
  it_cli((res), (env), (const char *const[]){__VA_ARGS__, NULL})

/* Invokes and checks the answer: OK, exact payload and version. */
static void expect_answer(impulse_client_t *client, const char *fn,
                          const char *payload, const char *want,
                          uint32_t version) {
  impulse_response_t *r = NULL;
  int rc = it_invoke(client, fn, payload, &r);
  if (rc != IMPULSE_S_OK)
    fprintf(stderr, "invoke %s: %s: %s\n", fn, impulse_status_name(rc),
            r && r->error ? r->error : impulse_client_error(client));
  assert_int_equal(rc, IMPULSE_S_OK);
  assert_non_null(r);
  assert_int_equal(r->len, strlen(want));
  assert_memory_equal(r->payload, want, strlen(want));
  assert_int_equal(r->version, version);
  impulse_response_free(r);
}

static int setup(void **state) { return it_fixture_setup(state, NULL); }
static int teardown(void **state) { return it_fixture_teardown(state); }

static void test_lifecycle(void **state) {
  it_server_t *s = *state;
  char echo_so[512], hello_so[512], line[256];
  it_function_path("echo", echo_so, sizeof echo_so);
  it_function_path("hello", hello_so, sizeof hello_so);

  impulse_client_t *c = it_connect(s, 1, CALL_TIMEOUT_MS);
  assert_non_null(c);
  uint32_t v = 0;
  assert_int_equal(it_deploy_file(c, "echo", echo_so, NULL, &v), IMPULSE_S_OK);
  assert_int_equal(v, 1);
  expect_answer(c, "echo", "hello", "hello", 1);

  /* Same name, new code: version 2 answers from now on. */
  assert_int_equal(it_deploy_file(c, "echo", hello_so, NULL, &v), IMPULSE_S_OK);
  assert_int_equal(v, 2);
  expect_answer(c, "echo", "hello", "Hello, hello!", 2);
  impulse_client_close(c);

  /* Clean stop: exit 0 and no worker left behind. */
  assert_int_equal(it_server_stop(s), 0);
  assert_int_equal(s->stragglers, 0);
  assert_int_equal(it_server_restart(s), 0);

  c = it_connect(s, 1, CALL_TIMEOUT_MS);
  assert_non_null(c);
  expect_answer(c, "echo", "hello", "Hello, hello!", 2);

  it_cli_t r;
  assert_int_equal(CLI(&r, NULL, "ls", "--addr", s->addr, "--token", s->token), 0);
  assert_int_equal(r.status, 0);
  assert_true(it_has_line_word(r.out, "echo"));
  it_cli_free(&r);

  assert_int_equal(CLI(&r, NULL, "describe", "echo", "--addr", s->addr,
                       "--token", s->token), 0);
  assert_int_equal(r.status, 0);
  assert_non_null(it_line_value(r.out, "name:", line, sizeof line));
  assert_string_equal(line, "echo");
  assert_non_null(it_line_value(r.out, "version:", line, sizeof line));
  assert_string_equal(line, "2");
  it_cli_free(&r);

  assert_int_equal(CLI(&r, NULL, "rm", "echo", "--addr", s->addr, "--token",
                       s->token), 0);
  assert_int_equal(r.status, 0);
  it_cli_free(&r);

  /* Deleted: invoke gets NOT_FOUND naming the function. */
  impulse_response_t *resp = NULL;
  assert_int_equal(it_invoke(c, "echo", "hello", &resp), IMPULSE_S_NOT_FOUND);
  assert_non_null(resp);
  assert_non_null(strstr(resp->error, "echo"));
  impulse_response_free(resp);

  /* ... and ls / describe no longer show it. */
  assert_int_equal(CLI(&r, NULL, "ls", "--addr", s->addr, "--token", s->token), 0);
  assert_int_equal(r.status, 0);
  assert_false(it_has_line_word(r.out, "echo"));
  it_cli_free(&r);
  assert_int_equal(CLI(&r, NULL, "describe", "echo", "--addr", s->addr,
                       "--token", s->token), 0);
  assert_int_equal(r.status, 1);
  assert_non_null(strstr(r.err, "NOT_FOUND"));
  it_cli_free(&r);

  impulse_client_close(c);
  s->test_passed = 1;
}

/* The CLI's output contract. */
static void test_cli_contract(void **state) {
  it_server_t *s = *state;
  char echo_so[512], word[64], addr_env[128], token_env[256], bin_path[512];
  it_function_path("echo", echo_so, sizeof echo_so);
  snprintf(addr_env, sizeof addr_env, "IMPULSE_ADDR=%s", s->addr);
  snprintf(token_env, sizeof token_env, "IMPULSE_TOKEN=%s", s->token);
  it_cli_t r;

  /* deploy with flags: "deployed NAME version N", N last. */
  assert_int_equal(CLI(&r, NULL, "deploy", "cli-echo", echo_so, "--addr",
                       s->addr, "--token", s->token), 0);
  assert_int_equal(r.status, 0);
  assert_string_equal(it_last_word(r.out, word, sizeof word), "1");
  it_cli_free(&r);

  /* deploy with the environment only. */
  const char *const env_both[] = {addr_env, token_env, NULL};
  assert_int_equal(CLI(&r, env_both, "deploy", "cli-echo", echo_so), 0);
  assert_int_equal(r.status, 0);
  assert_string_equal(it_last_word(r.out, word, sizeof word), "2");
  it_cli_free(&r);

  /* Flags win over the environment: a dead address and a wrong token in
   * the environment do not matter when --addr and --token are given. */
  const char *const env_bad[] = {"IMPULSE_ADDR=127.0.0.1:1",
                                 "IMPULSE_TOKEN=not-the-token", NULL};
  assert_int_equal(CLI(&r, env_bad, "deploy", "cli-echo", echo_so, "--addr",
                       s->addr, "--token", s->token), 0);
  assert_int_equal(r.status, 0);
  assert_string_equal(it_last_word(r.out, word, sizeof word), "3");
  it_cli_free(&r);

  /* invoke -d: stdout is exactly the payload (no newline), stderr empty. */
  static const char payload[] = "  exact\tbytes, no newline  ";
  assert_int_equal(CLI(&r, NULL, "invoke", "cli-echo", "-d", payload,
                       "--addr", s->addr), 0);
  assert_int_equal(r.status, 0);
  assert_int_equal(r.out_len, strlen(payload));
  assert_memory_equal(r.out, payload, strlen(payload));
  assert_int_equal(r.err_len, 0);
  it_cli_free(&r);

  /* IMPULSE_ADDR alone works for invoke (invocation needs no token). */
  const char *const env_addr[] = {addr_env, NULL};
  assert_int_equal(CLI(&r, env_addr, "invoke", "cli-echo", "-d", "via-env"), 0);
  assert_int_equal(r.status, 0);
  assert_int_equal(r.out_len, 7);
  assert_memory_equal(r.out, "via-env", 7);
  it_cli_free(&r);

  /* invoke -f: every byte value, NULs included, comes back unchanged. */
  unsigned char bin[512];
  for (size_t i = 0; i < sizeof bin; i++) bin[i] = (unsigned char)(i * 7 + 3);
  snprintf(bin_path, sizeof bin_path, "%s/payload.bin", s->root);
  assert_int_equal(it_write_file(bin_path, bin, sizeof bin), 0);
  assert_int_equal(CLI(&r, NULL, "invoke", "cli-echo", "-f", bin_path,
                       "--addr", s->addr), 0);
  assert_int_equal(r.status, 0);
  assert_int_equal(r.out_len, sizeof bin);
  assert_memory_equal(r.out, bin, sizeof bin);
  it_cli_free(&r);

  /* Unknown function: exit 1, nothing on stdout, NOT_FOUND on stderr. */
  assert_int_equal(CLI(&r, NULL, "invoke", "no-such-fn", "-d", "x", "--addr",
                       s->addr), 0);
  assert_int_equal(r.status, 1);
  assert_int_equal(r.out_len, 0);
  assert_non_null(strstr(r.err, "NOT_FOUND"));
  it_cli_free(&r);

  /* Deploy without a token: exit 1, UNAUTHENTICATED, nothing deployed. */
  assert_int_equal(CLI(&r, NULL, "deploy", "cli-anon", echo_so, "--addr",
                       s->addr), 0);
  assert_int_equal(r.status, 1);
  assert_int_equal(r.out_len, 0);
  assert_non_null(strstr(r.err, "UNAUTHENTICATED"));
  it_cli_free(&r);

  /* A wrong token is refused at connect: exit 1, UNAUTHENTICATED. */
  assert_int_equal(CLI(&r, NULL, "deploy", "cli-anon", echo_so, "--addr",
                       s->addr, "--token", "wrong"), 0);
  assert_int_equal(r.status, 1);
  assert_int_equal(r.out_len, 0);
  assert_non_null(strstr(r.err, "UNAUTHENTICATED"));
  it_cli_free(&r);

  assert_int_equal(CLI(&r, NULL, "ls", "--addr", s->addr, "--token", s->token), 0);
  assert_int_equal(r.status, 0);
  assert_true(it_has_line_word(r.out, "cli-echo"));
  assert_false(it_has_line_word(r.out, "cli-anon"));
  it_cli_free(&r);

  /* Nobody listening: exit 3, a message on stderr, nothing on stdout. */
  assert_int_equal(CLI(&r, NULL, "invoke", "cli-echo", "-d", "x", "--addr",
                       "127.0.0.1:1"), 0);
  assert_int_equal(r.status, 3);
  assert_int_equal(r.out_len, 0);
  assert_true(r.err_len > 0);
  it_cli_free(&r);

  /* Usage errors: exit 2. */
  assert_int_equal(CLI(&r, NULL, "invoke", "--addr", s->addr), 0);
  assert_int_equal(r.status, 2);
  assert_int_equal(r.out_len, 0);
  assert_true(r.err_len > 0);
  it_cli_free(&r);
  assert_int_equal(CLI(&r, NULL, "deploy", "cli-echo", "--addr", s->addr), 0);
  assert_int_equal(r.status, 2);
  it_cli_free(&r);

  /* A missing artifact file: exit 1, the path named on stderr. */
  assert_int_equal(CLI(&r, NULL, "deploy", "cli-echo", "/nonexistent/x.so",
                       "--addr", s->addr, "--token", s->token), 0);
  assert_int_equal(r.status, 1);
  assert_int_equal(r.out_len, 0);
  assert_non_null(strstr(r.err, "/nonexistent/x.so"));
  it_cli_free(&r);

  s->test_passed = 1;
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_lifecycle, setup, teardown),
      cmocka_unit_test_setup_teardown(test_cli_contract, setup, teardown),
  };
  return cmocka_run_group_tests_name("integration_lifecycle", tests, NULL, NULL);
}
