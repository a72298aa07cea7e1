/*
 * Secrets (docs/security.md, "Secrets") against a real server, seen from
 * the admin, from the network without a token and from inside a function
 * (integration/inspect.c, its `getenv KEY` and `env` commands):
 *
 *   `secret set` from stdin            -> the value byte for byte (a
 *                                         trailing newline kept; dropped
 *                                         with --trim-newline) in the
 *                                         functions that name it, as NAME
 *                                         or as VAR; absent from the others
 *   secret ls, describe, ls, scale,    -> names only: the value is in no
 *   /api/state, the server's log          answer and no log line
 *   deploy --secret NOPE               -> NOT_FOUND naming NOPE
 *   --secret X=VAR with --env VAR=...  -> BAD_REQUEST naming VAR
 *   secret rm of a secret in use       -> BAD_REQUEST naming the function;
 *                                         allowed once it is deleted
 *   a changed value                    -> reaches new instances
 *   kill -9 after `secret set` answered-> the secret is there after restart
 *   set/ls/rm without the admin token  -> UNAUTHENTICATED
 *   a value of 64 KiB + 1              -> TOO_LARGE; a NUL byte, names
 *                                         "1X", "A-B", "A=B" -> BAD_REQUEST
 *   a value on the command line        -> refused by the CLI (usage)
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cmocka.h>

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "client/client_internal.h"
#include "core/limits.h"
#include "harness.h"
#include "tests/support/test_main.h"

#ifndef IT_ARTIFACTS_DIR
#error "IT_ARTIFACTS_DIR must be defined by the build"
#endif

#define CALL_TIMEOUT_MS 30000u
#define VALUE "hunter2-s3cr3t-V4lue"

/* `impulse secret set NAME [extra]` as the admin, the value on stdin from
 * a file holding `value`. Returns the exit status. */
static int secret_set_cli(it_server_t *s, const char *name, const char *value,
                          const char *extra) {
  char in[256];
  snprintf(in, sizeof in, "%s/value.in", s->root);
  assert_int_equal(it_write_file(in, value, strlen(value)), 0);
  const char *argv[] = {IMPULSE_BIN, "secret",  "set",    name,  "--addr",
                        s->addr,     "--token", s->token, extra, NULL};
  char *out = NULL;
  int rc = it_run(argv, in, &out, IT_CLI_TIMEOUT_MS);
  free(out);
  unlink(in);
  return rc;
}

/* Deploys inspect as `name` with `secrets` (n) and `env` (nenv). Returns
 * the client status; the server's message in err. */
static int deploy_inspect(it_server_t *s, const char *name,
                          const char *const *secrets, size_t n,
                          const char *const *env, size_t nenv, char *err,
                          size_t errlen) {
  char path[512];
  snprintf(path, sizeof path, "%s/inspect.so", IT_ARTIFACTS_DIR);
  impulse_client_t *c = it_connect_ok(s, 1, CALL_TIMEOUT_MS);
  impulse_deploy_opts_t opts = {0};
  opts.secrets = secrets;
  opts.nsecrets = n;
  opts.env = env;
  opts.nenv = nenv;
  int rc = it_deploy_file(c, name, path, &opts, NULL);
  snprintf(err, errlen, "%s", impulse_client_error(c));
  impulse_client_close(c);
  return rc;
}

static void expect_answer(it_server_t *s, const char *fn, const char *cmd,
                          const char *want) {
  impulse_client_t *c = it_connect_ok(s, 1, CALL_TIMEOUT_MS);
  assert_true(it_answers(c, fn, cmd, want, 0));
  impulse_client_close(c);
}

/* Fails when `text` (what `what` showed) holds the secret value. */
static void expect_no_value(const char *what, const char *text) {
  if (text != NULL && strstr(text, "s3cr3t") != NULL)
    fail_msg("%s shows the secret's value:\n%s", what, text);
}

static char *http_get(const it_server_t *s, const char *path) {
  int fd = it_http_connect(s);
  assert_true(fd >= 0);
  char req[512];
  int n = snprintf(req, sizeof req,
                   "GET %s HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer "
                   "%s\r\nConnection: close\r\n\r\n",
                   path, s->http_addr, s->token);
  assert_int_equal(it_raw_send(fd, req, (size_t)n), 0);
  int closed;
  char *buf = it_raw_read_all(fd, 10000, &closed);
  close(fd);
  assert_non_null(buf);
  return buf;
}

static void test_secret_reaches_only_functions_naming_it(void **state) {
  it_server_t *s = *state;
  char err[512];
  /* From stdin, kept byte for byte: the newline stays. */
  assert_int_equal(secret_set_cli(s, "DB_PASS", VALUE "\n", NULL), 0);
  assert_int_equal(
      secret_set_cli(s, "API_KEY", "s3cr3t-api\r\n", "--trim-newline"), 0);
  const char *both[] = {"DB_PASS", "API_KEY=KEY"};
  const char *env[] = {"GREETING=hi"};
  assert_int_equal(deploy_inspect(s, "with", both, 2, env, 1, err, sizeof err),
                   0);
  assert_int_equal(
      deploy_inspect(s, "without", NULL, 0, env, 1, err, sizeof err), 0);
  expect_answer(s, "with", "getenv DB_PASS", VALUE "\n");
  expect_answer(s, "with", "getenv KEY", "s3cr3t-api");
  expect_answer(s, "with", "getenv API_KEY", "(unset)");
  expect_answer(s, "with", "env",
                "GREETING=hi\nDB_PASS=" VALUE "\n\nKEY=s3cr3t-api\n");
  expect_answer(s, "without", "env", "GREETING=hi\n");

  /* Every answer that shows a function or a secret: names only. */
  it_cli_t r;
  assert_int_equal(IT_CLI_ADMIN(&r, s, "secret", "ls"), 0);
  assert_int_equal(r.status, 0);
  assert_non_null(strstr(r.out, "DB_PASS"));
  assert_non_null(strstr(r.out, "with")); /* used by */
  expect_no_value("secret ls", r.out);
  it_cli_free(&r);
  assert_int_equal(IT_CLI_ADMIN(&r, s, "describe", "with"), 0);
  assert_int_equal(r.status, 0);
  assert_non_null(strstr(r.out, "DB_PASS API_KEY=KEY"));
  expect_no_value("describe", r.out);
  /* The environment by name too: describe used to leave it out, and a
   * value of --env is no more public than a secret. */
  assert_non_null(strstr(r.out, "GREETING"));
  assert_null(strstr(r.out, "GREETING=hi"));
  it_cli_free(&r);
  assert_int_equal(IT_CLI_ADMIN(&r, s, "ls"), 0);
  expect_no_value("ls", r.out);
  it_cli_free(&r);
  assert_int_equal(IT_CLI_ADMIN(&r, s, "scale", "with", "--max", "3"), 0);
  assert_int_equal(r.status, 0);
  it_cli_free(&r);
  char *state_json = http_get(s, "/api/state");
  expect_no_value("/api/state", state_json);
  assert_non_null(strstr(state_json, "\"DB_PASS\""));
  assert_null(strstr(state_json, "GREETING=hi"));
  free(state_json);
  /* The raw answers: describe's versions and scale's config hold stored
   * configs, cut to names. */
  impulse_client_t *c = it_connect_ok(s, 1, CALL_TIMEOUT_MS);
  Impulse__Envelope req = IMPULSE__ENVELOPE__INIT, *resp = NULL;
  Impulse__DescribeRequest d = IMPULSE__DESCRIBE_REQUEST__INIT;
  d.name = "with";
  req.body_case = IMPULSE__ENVELOPE__BODY_DESCRIBE;
  req.describe = &d;
  assert_int_equal(imp_client_call(c, &req, &resp), 0);
  for (size_t i = 0; i < resp->describe_ok->n_versions; i++) {
    const Impulse__FunctionConfig *vc = resp->describe_ok->versions[i]->config;
    for (size_t j = 0; vc && j < vc->n_env; j++)
      assert_null(strchr(vc->env[j], '='));
  }
  impulse__envelope__free_unpacked(resp, NULL);
  Impulse__ScaleRequest sc = IMPULSE__SCALE_REQUEST__INIT;
  sc.name = "with";
  sc.has_max_instances = 1;
  sc.max_instances = 4;
  req.body_case = IMPULSE__ENVELOPE__BODY_SCALE;
  req.scale = &sc;
  assert_int_equal(imp_client_call(c, &req, &resp), 0);
  assert_non_null(resp->scale_ok->config);
  assert_int_equal(resp->scale_ok->config->n_env, 1);
  assert_string_equal(resp->scale_ok->config->env[0], "GREETING");
  impulse__envelope__free_unpacked(resp, NULL);

  /* A new value reaches the next instance: delete and redeploy start
   * new ones. */
  assert_int_equal(secret_set_cli(s, "DB_PASS", "s3cr3t-rotated", NULL), 0);
  assert_int_equal(impulse_delete(c, "with"), IMPULSE_S_OK);
  impulse_client_close(c);
  assert_int_equal(deploy_inspect(s, "with", both, 2, NULL, 0, err, sizeof err),
                   0);
  expect_answer(s, "with", "getenv DB_PASS", "s3cr3t-rotated");

  /* The server's log never had a value, at any level it writes. */
  char *log = NULL;
  size_t loglen = 0;
  assert_int_equal(it_read_file(s->log_file, &log, &loglen), 0);
  assert_true(strstr(log, "DB_PASS") != NULL); /* it did log the names */
  expect_no_value("the server's log", log);
  free(log);
  s->test_passed = 1;
}

static void test_refusals(void **state) {
  it_server_t *s = *state;
  char err[512];
  assert_int_equal(secret_set_cli(s, "TOKEN", "s3cr3t", NULL), 0);
  /* A deploy naming a secret that does not exist. */
  const char *nope[] = {"TOKEN", "NOPE"};
  assert_int_equal(deploy_inspect(s, "f", nope, 2, NULL, 0, err, sizeof err),
                   IMPULSE_S_NOT_FOUND);
  assert_non_null(strstr(err, "NOPE"));
  /* A secret's variable that the environment has too. */
  const char *as_var[] = {"TOKEN=VAR"};
  const char *env[] = {"VAR=1"};
  assert_int_equal(deploy_inspect(s, "f", as_var, 1, env, 1, err, sizeof err),
                   IMPULSE_S_BAD_REQUEST);
  assert_non_null(strstr(err, "VAR"));
  /* Bad references. */
  const char *bad_ref[] = {"TOKEN=1X"};
  assert_int_equal(deploy_inspect(s, "f", bad_ref, 1, NULL, 0, err, sizeof err),
                   IMPULSE_S_BAD_REQUEST);
  const char *twice[] = {"TOKEN", "TOKEN"};
  assert_int_equal(deploy_inspect(s, "f", twice, 2, NULL, 0, err, sizeof err),
                   IMPULSE_S_BAD_REQUEST);
  assert_non_null(strstr(err, "twice") ? err : strstr(err, "two secrets"));

  /* Removing a secret in use names the function; once it is gone, the
   * removal goes through. */
  const char *one[] = {"TOKEN"};
  assert_int_equal(deploy_inspect(s, "user1", one, 1, NULL, 0, err, sizeof err),
                   0);
  impulse_client_t *c = it_connect_ok(s, 1, CALL_TIMEOUT_MS);
  assert_int_equal(impulse_secret_rm(c, "TOKEN"), IMPULSE_S_BAD_REQUEST);
  assert_non_null(strstr(impulse_client_error(c), "user1"));
  assert_int_equal(impulse_secret_rm(c, "GONE"), IMPULSE_S_NOT_FOUND);
  assert_int_equal(impulse_delete(c, "user1"), IMPULSE_S_OK);
  assert_int_equal(impulse_secret_rm(c, "TOKEN"), IMPULSE_S_OK);
  it_cli_t r;
  assert_int_equal(IT_CLI_ADMIN(&r, s, "secret", "ls"), 0);
  assert_null(strstr(r.out, "TOKEN"));
  it_cli_free(&r);

  /* Values: above the cap, a NUL byte; names. */
  size_t big = IMP_SECRET_MAX_BYTES + 1;
  char *v = malloc(big);
  assert_non_null(v);
  memset(v, 'x', big);
  assert_int_equal(impulse_secret_set(c, "BIG", v, big, NULL),
                   IMPULSE_S_TOO_LARGE);
  assert_non_null(strstr(impulse_client_error(c), "65537"));
  assert_int_equal(impulse_secret_set(c, "BIG", v, big - 1, NULL),
                   IMPULSE_S_OK);
  free(v);
  assert_int_equal(impulse_secret_set(c, "NUL", "a\0b", 3, NULL),
                   IMPULSE_S_BAD_REQUEST);
  const char *bad_names[] = {"1X", "A-B", "A=B", "A B"};
  for (size_t i = 0; i < 4; i++) {
    assert_int_equal(impulse_secret_set(c, bad_names[i], "v", 1, NULL),
                     IMPULSE_S_BAD_REQUEST);
    assert_non_null(strstr(impulse_client_error(c), "invalid secret name"));
  }
  impulse_client_close(c);
  /* The CLI never takes a value from its arguments. */
  assert_int_equal(
      IT_CLI_ADMIN(&r, s, "secret", "set", "ARGV", "s3cr3t-in-argv"), 0);
  assert_int_equal(r.status, 2);
  assert_non_null(strstr(r.err, "never taken on the command line"));
  it_cli_free(&r);
  s->test_passed = 1;
}

static void test_without_token_everything_is_refused(void **state) {
  it_server_t *s = *state;
  assert_int_equal(secret_set_cli(s, "KEPT", "s3cr3t", NULL), 0);
  impulse_client_t *c = it_connect_ok(s, 0, CALL_TIMEOUT_MS);
  assert_int_equal(impulse_secret_set(c, "KEPT", "evil", 4, NULL),
                   IMPULSE_S_UNAUTHENTICATED);
  assert_int_equal(impulse_secret_rm(c, "KEPT"), IMPULSE_S_UNAUTHENTICATED);
  Impulse__Envelope req = IMPULSE__ENVELOPE__INIT, *resp = NULL;
  Impulse__SecretListRequest ls = IMPULSE__SECRET_LIST_REQUEST__INIT;
  req.body_case = IMPULSE__ENVELOPE__BODY_SECRET_LIST;
  req.secret_list = &ls;
  assert_int_equal(imp_client_call(c, &req, &resp), IMPULSE_S_UNAUTHENTICATED);
  impulse_client_close(c);
  /* A wrong token is no better. */
  it_cli_t r;
  assert_int_equal(IT_CLI(&r, NULL, "secret", "ls", "--addr", s->addr,
                          "--token", "not-the-token"),
                   0);
  assert_int_not_equal(r.status, 0);
  expect_no_value("secret ls with a wrong token", r.out);
  it_cli_free(&r);
  /* Nothing changed. */
  const char *one[] = {"KEPT"};
  char err[256];
  assert_int_equal(deploy_inspect(s, "f", one, 1, NULL, 0, err, sizeof err), 0);
  expect_answer(s, "f", "getenv KEPT", "s3cr3t");
  s->test_passed = 1;
}

static void test_secret_survives_kill9(void **state) {
  it_server_t *s = *state;
  uint64_t synced = it_synced_writes(s);
  assert_int_equal(secret_set_cli(s, "DURABLE", "s3cr3t-durable", NULL), 0);
  it_expect_synced(s, synced, 1, "secret set");
  it_server_kill9(s); /* right after the answer */
  assert_int_equal(it_server_restart(s), 0);
  it_cli_t r;
  assert_int_equal(IT_CLI_ADMIN(&r, s, "secret", "ls"), 0);
  assert_int_equal(r.status, 0);
  assert_non_null(strstr(r.out, "DURABLE"));
  it_cli_free(&r);
  const char *one[] = {"DURABLE"};
  char err[256];
  assert_int_equal(deploy_inspect(s, "f", one, 1, NULL, 0, err, sizeof err), 0);
  expect_answer(s, "f", "getenv DURABLE", "s3cr3t-durable");
  s->test_passed = 1;
}

TEST_MAIN("integration_secrets", NULL, NULL,
          IT_SERVER_TEST(test_secret_reaches_only_functions_naming_it,
                         it_fixture_plain),
          IT_SERVER_TEST(test_refusals, it_fixture_plain),
          IT_SERVER_TEST(test_without_token_everything_is_refused,
                         it_fixture_plain),
          IT_SERVER_TEST(test_secret_survives_kill9, it_fixture_plain))
