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
 *
 * Refused control calls, and what each gets:
 *   deploy name "../x", "-x", 65 chars, "a b"  -> BAD_REQUEST
 *   deploy min 3 > max 1, concurrency 5000     -> BAD_REQUEST
 *   scale min 5 > max 2                        -> BAD_REQUEST
 *   scale / rm / describe of an unknown name   -> NOT_FOUND
 *   (none of them creates or changes anything)
 * and five deploys of one name pipelined on one connection get five
 * distinct versions 1..5, the last one serving. With --invoke-auth token,
 * an anonymous invoke, ls or describe gets UNAUTHENTICATED (CLI: exit 1).
 *
 * Starting: `impulse serve` on an RPC or --http address in use exits 4
 * (and nothing else does); the harness starts a server again only then, so
 * a server that exits for another reason before it is ready (here a usage
 * error, exit 2) is started once and the start fails.
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

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"
#include "tests/support/test_main.h"

#define CALL_TIMEOUT_MS 30000u

static void test_lifecycle(void **state) {
  it_server_t *s = *state;

  impulse_client_t *c = it_connect_ok(s, 1, CALL_TIMEOUT_MS);
  uint32_t v = 0;
  assert_int_equal(it_deploy_fn(c, "echo", "echo", NULL, &v), IMPULSE_S_OK);
  assert_int_equal(v, 1);
  assert_true(it_answers(c, "echo", "hello", "hello", 1));

  /* Same name, new code: version 2 answers from now on. */
  assert_int_equal(it_deploy_fn(c, "echo", "hello", NULL, &v), IMPULSE_S_OK);
  assert_int_equal(v, 2);
  assert_true(it_answers(c, "echo", "hello", "Hello, hello!", 2));
  impulse_client_close(c);

  /* Clean stop: exit 0 and no worker left behind. */
  assert_int_equal(it_server_stop(s), 0);
  assert_int_equal(s->stragglers, 0);
  assert_int_equal(it_server_restart(s), 0);

  c = it_connect_ok(s, 1, CALL_TIMEOUT_MS);
  assert_true(it_answers(c, "echo", "hello", "Hello, hello!", 2));

  assert_int_equal(it_lists(s, "echo"), 1);
  assert_true(IT_DESCRIBE_SHOWS(s, "echo", "name:", "echo", "version:", "2"));
  it_cli_t r;

  assert_int_equal(IT_CLI_ADMIN(&r, s, "rm", "echo"), 0);
  assert_int_equal(r.status, 0);
  it_cli_free(&r);

  /* Deleted: invoke gets NOT_FOUND naming the function. */
  impulse_response_t *resp = NULL;
  assert_int_equal(it_invoke(c, "echo", "hello", &resp), IMPULSE_S_NOT_FOUND);
  assert_non_null(resp);
  assert_non_null(strstr(resp->error, "echo"));
  impulse_response_free(resp);

  /* ... and ls / describe no longer show it. */
  assert_int_equal(it_lists(s, "echo"), 0);
  assert_int_equal(IT_CLI_ADMIN(&r, s, "describe", "echo"), 0);
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
  assert_int_equal(IT_CLI(&r, NULL, "deploy", "cli-echo", echo_so, "--addr",
                          s->addr, "--token", s->token),
                   0);
  assert_int_equal(r.status, 0);
  assert_string_equal(it_last_word(r.out, word, sizeof word), "1");
  it_cli_free(&r);

  /* deploy with the environment only. */
  const char *const env_both[] = {addr_env, token_env, NULL};
  assert_int_equal(IT_CLI(&r, env_both, "deploy", "cli-echo", echo_so), 0);
  assert_int_equal(r.status, 0);
  assert_string_equal(it_last_word(r.out, word, sizeof word), "2");
  it_cli_free(&r);

  /* Flags win over the environment: a dead address and a wrong token in
   * the environment do not matter when --addr and --token are given. */
  const char *const env_bad[] = {"IMPULSE_ADDR=127.0.0.1:1",
                                 "IMPULSE_TOKEN=not-the-token", NULL};
  assert_int_equal(IT_CLI(&r, env_bad, "deploy", "cli-echo", echo_so, "--addr",
                          s->addr, "--token", s->token),
                   0);
  assert_int_equal(r.status, 0);
  assert_string_equal(it_last_word(r.out, word, sizeof word), "3");
  it_cli_free(&r);

  /* invoke -d: stdout is exactly the payload (no newline), stderr empty. */
  static const char payload[] = "  exact\tbytes, no newline  ";
  assert_int_equal(
      IT_CLI(&r, NULL, "invoke", "cli-echo", "-d", payload, "--addr", s->addr),
      0);
  assert_int_equal(r.status, 0);
  assert_int_equal(r.out_len, strlen(payload));
  assert_memory_equal(r.out, payload, strlen(payload));
  assert_int_equal(r.err_len, 0);
  it_cli_free(&r);

  /* IMPULSE_ADDR alone works for invoke (invocation needs no token). */
  const char *const env_addr[] = {addr_env, NULL};
  assert_int_equal(IT_CLI(&r, env_addr, "invoke", "cli-echo", "-d", "via-env"),
                   0);
  assert_int_equal(r.status, 0);
  assert_int_equal(r.out_len, 7);
  assert_memory_equal(r.out, "via-env", 7);
  it_cli_free(&r);

  /* invoke -f: every byte value, NULs included, comes back unchanged. */
  unsigned char bin[512];
  for (size_t i = 0; i < sizeof bin; i++) bin[i] = (unsigned char)(i * 7 + 3);
  snprintf(bin_path, sizeof bin_path, "%s/payload.bin", s->root);
  assert_int_equal(it_write_file(bin_path, bin, sizeof bin), 0);
  assert_int_equal(
      IT_CLI(&r, NULL, "invoke", "cli-echo", "-f", bin_path, "--addr", s->addr),
      0);
  assert_int_equal(r.status, 0);
  assert_int_equal(r.out_len, sizeof bin);
  assert_memory_equal(r.out, bin, sizeof bin);
  it_cli_free(&r);

  /* Unknown function: exit 1, nothing on stdout, NOT_FOUND on stderr. */
  assert_int_equal(
      IT_CLI(&r, NULL, "invoke", "no-such-fn", "-d", "x", "--addr", s->addr),
      0);
  assert_int_equal(r.status, 1);
  assert_int_equal(r.out_len, 0);
  assert_non_null(strstr(r.err, "NOT_FOUND"));
  it_cli_free(&r);

  /* Deploy without a token: exit 1, UNAUTHENTICATED, nothing deployed. */
  assert_int_equal(
      IT_CLI(&r, NULL, "deploy", "cli-anon", echo_so, "--addr", s->addr), 0);
  assert_int_equal(r.status, 1);
  assert_int_equal(r.out_len, 0);
  assert_non_null(strstr(r.err, "UNAUTHENTICATED"));
  it_cli_free(&r);

  /* A wrong token is refused at connect: exit 1, UNAUTHENTICATED. */
  assert_int_equal(IT_CLI(&r, NULL, "deploy", "cli-anon", echo_so, "--addr",
                          s->addr, "--token", "wrong"),
                   0);
  assert_int_equal(r.status, 1);
  assert_int_equal(r.out_len, 0);
  assert_non_null(strstr(r.err, "UNAUTHENTICATED"));
  it_cli_free(&r);

  assert_int_equal(it_lists(s, "cli-echo"), 1);
  assert_int_equal(it_lists(s, "cli-anon"), 0);

  /* Nobody listening: exit 3, a message on stderr, nothing on stdout. */
  assert_int_equal(IT_CLI(&r, NULL, "invoke", "cli-echo", "-d", "x", "--addr",
                          "127.0.0.1:1"),
                   0);
  assert_int_equal(r.status, 3);
  assert_int_equal(r.out_len, 0);
  assert_true(r.err_len > 0);
  it_cli_free(&r);

  /* Usage errors: exit 2. */
  assert_int_equal(IT_CLI(&r, NULL, "invoke", "--addr", s->addr), 0);
  assert_int_equal(r.status, 2);
  assert_int_equal(r.out_len, 0);
  assert_true(r.err_len > 0);
  it_cli_free(&r);
  assert_int_equal(IT_CLI(&r, NULL, "deploy", "cli-echo", "--addr", s->addr),
                   0);
  assert_int_equal(r.status, 2);
  it_cli_free(&r);

  /* A missing artifact file: exit 1, the path named on stderr. */
  assert_int_equal(
      IT_CLI_ADMIN(&r, s, "deploy", "cli-echo", "/nonexistent/x.so"), 0);
  assert_int_equal(r.status, 1);
  assert_int_equal(r.out_len, 0);
  assert_non_null(strstr(r.err, "/nonexistent/x.so"));
  it_cli_free(&r);

  s->test_passed = 1;
}

static void test_control_errors(void **state) {
  it_server_t *s = *state;
  char *so;
  size_t solen;
  assert_int_equal(it_read_function("echo", &so, &solen), 0);
  impulse_client_t *c = it_connect_ok(s, 1, CALL_TIMEOUT_MS);
  uint32_t v = 0;
  assert_int_equal(impulse_deploy(c, "fine", so, solen, NULL, &v),
                   IMPULSE_S_OK);

  char longname[66];
  memset(longname, 'a', 65);
  longname[65] = '\0';
  const char *const bad_names[] = {"../x", "-x", longname, "a b", "x/y", NULL};
  for (int i = 0; bad_names[i]; i++) {
    int rc = impulse_deploy(c, bad_names[i], so, solen, NULL, &v);
    fprintf(stderr, "deploy name '%.20s' -> %s: %s\n", bad_names[i],
            impulse_status_name(rc), impulse_client_error(c));
    assert_int_equal(rc, IMPULSE_S_BAD_REQUEST);
  }
  /* A deadline above the limit the CLI also enforces (core/limits.h). */
  impulse_invoke_opts_t io = {0};
  io.deadline_ms = IMP_DEADLINE_MAX_MS + 1;
  impulse_response_t *resp = NULL;
  assert_int_equal(impulse_invoke(c, "fine", "x", 1, &io, &resp), IMPULSE_S_OK);
  assert_int_equal(resp->status, IMPULSE_S_BAD_REQUEST);
  assert_non_null(strstr(resp->error, "deadline must be at most"));
  impulse_response_free(resp);
  io.deadline_ms = IMP_DEADLINE_MAX_MS;
  assert_int_equal(impulse_invoke(c, "fine", "x", 1, &io, &resp), IMPULSE_S_OK);
  assert_int_equal(resp->status, IMPULSE_S_OK);
  impulse_response_free(resp);
  impulse_deploy_opts_t opts = {0};
  opts.min_instances = 3;
  opts.max_instances = 1;
  assert_int_equal(impulse_deploy(c, "fine", so, solen, &opts, &v),
                   IMPULSE_S_BAD_REQUEST);
  memset(&opts, 0, sizeof opts);
  opts.concurrency = 5000;
  assert_int_equal(impulse_deploy(c, "fine", so, solen, &opts, &v),
                   IMPULSE_S_BAD_REQUEST);

  assert_int_equal(impulse_scale(c, "fine", 5, 2), IMPULSE_S_BAD_REQUEST);
  assert_int_equal(impulse_scale(c, "nope", 0, 2), IMPULSE_S_NOT_FOUND);
  assert_int_equal(impulse_delete(c, "nope"), IMPULSE_S_NOT_FOUND);

  /* Nothing changed: "fine" is still version 1 with default bounds. */
  assert_true(
      IT_DESCRIBE_SHOWS(s, "fine", "version:", "1", "min instances:", "0"));
  it_cli_t r;
  for (int i = 0; bad_names[i]; i++)
    assert_int_equal(it_lists(s, bad_names[i]), 0);
  /* The CLI's own checks: exit 2 before any call. */
  assert_int_equal(
      IT_CLI_ADMIN(&r, s, "scale", "fine", "--min", "5", "--max", "2"), 0);
  assert_int_equal(r.status, 2);
  it_cli_free(&r);
  assert_int_equal(IT_CLI_ADMIN(&r, s, "scale", "nope", "--max", "2"), 0);
  assert_int_equal(r.status, 1);
  assert_non_null(strstr(r.err, "NOT_FOUND"));
  it_cli_free(&r);
  impulse_client_close(c);
  free(so);
  s->test_passed = 1;
}

static void test_pipelined_deploys(void **state) {
  it_server_t *s = *state;
  char *so;
  size_t solen;
  assert_int_equal(it_read_function("echo", &so, &solen), 0);
  int fd = it_raw_connect(s);
  assert_true(fd >= 0);

  Impulse__Envelope env = IMPULSE__ENVELOPE__INIT;
  Impulse__HelloRequest hello = IMPULSE__HELLO_REQUEST__INIT;
  hello.token = s->token;
  env.id = 1;
  env.body_case = IMPULSE__ENVELOPE__BODY_HELLO;
  env.hello = &hello;
  Impulse__Envelope *r = it_raw_call(fd, &env, 10000);
  assert_non_null(r);
  assert_int_equal(r->body_case, IMPULSE__ENVELOPE__BODY_HELLO_OK);
  assert_true(r->hello_ok->admin);
  impulse__envelope__free_unpacked(r, NULL);

  /* Five deploys of one name without waiting in between. */
  Impulse__DeployRequest dep = IMPULSE__DEPLOY_REQUEST__INIT;
  dep.name = "piped";
  dep.artifact.data = (uint8_t *)so;
  dep.artifact.len = solen;
  for (uint64_t id = 10; id < 15; id++) {
    Impulse__Envelope d = IMPULSE__ENVELOPE__INIT;
    d.id = id;
    d.body_case = IMPULSE__ENVELOPE__BODY_DEPLOY;
    d.deploy = &dep;
    assert_int_equal(it_raw_send_env(fd, &d), 0);
  }
  unsigned seen = 0;
  for (int i = 0; i < 5; i++) {
    r = it_raw_read_frame(fd, 20000);
    assert_non_null(r);
    if (r->body_case == IMPULSE__ENVELOPE__BODY_ERROR)
      fprintf(stderr, "deploy %llu: %s\n", (unsigned long long)r->id,
              r->error->message ? r->error->message : "");
    assert_int_equal(r->body_case, IMPULSE__ENVELOPE__BODY_DEPLOY_OK);
    assert_true(r->id >= 10 && r->id < 15);
    uint32_t v = r->deploy_ok->version;
    assert_true(v >= 1 && v <= 5);
    assert_false(seen & (1u << v)); /* every version once */
    seen |= 1u << v;
    impulse__envelope__free_unpacked(r, NULL);
  }
  close(fd);
  free(so);

  impulse_client_t *c = it_connect_ok(s, 0, CALL_TIMEOUT_MS);
  assert_true(it_answers(c, "piped", "p", "p", 5));
  impulse_client_close(c);
  s->test_passed = 1;
}

static void test_invoke_auth_token(void **state) {
  it_server_t *s = *state;
  impulse_client_t *admin = it_connect_ok(s, 1, CALL_TIMEOUT_MS);
  impulse_client_t *anon = it_connect_ok(s, 0, CALL_TIMEOUT_MS);
  uint32_t v = 0;
  assert_int_equal(it_deploy_fn(admin, "guarded", "echo", NULL, &v),
                   IMPULSE_S_OK);
  assert_true(it_answers(admin, "guarded", "with token", "with token", 1));
  impulse_response_t *r = NULL;
  assert_int_equal(it_invoke(anon, "guarded", "no token", &r),
                   IMPULSE_S_UNAUTHENTICATED);
  impulse_response_free(r);

  it_cli_t cli;
  assert_int_equal(
      IT_CLI(&cli, NULL, "invoke", "guarded", "-d", "x", "--addr", s->addr), 0);
  assert_int_equal(cli.status, 1);
  assert_int_equal(cli.out_len, 0);
  assert_non_null(strstr(cli.err, "UNAUTHENTICATED"));
  it_cli_free(&cli);
  assert_int_equal(IT_CLI(&cli, NULL, "ls", "--addr", s->addr), 0);
  assert_int_equal(cli.status, 1);
  it_cli_free(&cli);
  char token_env[256];
  snprintf(token_env, sizeof token_env, "IMPULSE_TOKEN=%s", s->token);
  const char *const env[] = {token_env, NULL};
  assert_int_equal(
      IT_CLI(&cli, env, "invoke", "guarded", "-d", "ok", "--addr", s->addr), 0);
  assert_int_equal(cli.status, 0);
  assert_int_equal(cli.out_len, 2);
  assert_memory_equal(cli.out, "ok", 2);
  it_cli_free(&cli);
  impulse_client_close(anon);
  impulse_client_close(admin);
  s->test_passed = 1;
}

/* Copies a file with its mode; 0 or -1. */
static int copy_file(const char *from, const char *to) {
  char *data;
  size_t len;
  if (it_read_file(from, &data, &len) != 0) return -1;
  int rc = it_write_file(to, data, len);
  free(data);
  return rc == 0 ? chmod(to, 0755) : -1;
}

/* The worker executable disappears under a running server (a package
 * upgrade replaced it, a cleanup removed it): starting a worker fails. The
 * caller hears so, and the server serves on and stops cleanly. */
static void test_worker_spawn_fails(void **state) {
  (void)state;
  it_server_t s;
  memset(&s, 0, sizeof s);
  char dir[] = "/tmp/impulse-bin-XXXXXX", worker[300], bin_worker[300];
  assert_non_null(mkdtemp(dir));
  snprintf(s.bin, sizeof s.bin, "%s/impulse", dir);
  snprintf(worker, sizeof worker, "%s/impulse-worker", dir);
  snprintf(bin_worker, sizeof bin_worker, "%s", IMPULSE_BIN);
  char *slash = strrchr(bin_worker, '/');
  assert_non_null(slash);
  snprintf(slash + 1, sizeof bin_worker - (size_t)(slash + 1 - bin_worker),
           "impulse-worker");
  assert_int_equal(copy_file(IMPULSE_BIN, s.bin), 0);
  assert_int_equal(copy_file(bin_worker, worker), 0);
  const char *flags[] = {"--warm-pool", "0", NULL};
  int started = it_server_start(&s, flags);
  unlink(s.bin);
  unlink(worker);
  rmdir(dir);
  assert_int_equal(started, 0);

  impulse_client_t *c = it_connect_ok(&s, 1, CALL_TIMEOUT_MS);
  uint32_t v = 0;
  assert_int_equal(it_deploy_fn(c, "echo", "echo", NULL, &v),
                   IMPULSE_S_INTERNAL);
  assert_non_null(strstr(impulse_client_error(c), "validation worker"));
  /* Nothing was deployed, and the server answers on. */
  assert_int_equal(it_lists(&s, "echo"), 0);
  impulse_client_close(c);
  assert_int_equal(it_server_stop_checked(&s), 0);
  it_server_destroy(&s);
}

/* A listening socket on a free loopback port: its fd, the port in *port. */
static int hold_port(int *port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  assert_true(fd >= 0);
  struct sockaddr_in a = {.sin_family = AF_INET};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
  assert_int_equal(listen(fd, 1), 0);
  socklen_t len = sizeof a;
  assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
  *port = ntohs(a.sin_port);
  return fd;
}

static void test_start_exit_status(void **state) {
  (void)state;
  char dir[] = "/tmp/impulse-it-addr-XXXXXX", sdir[64], addr[64];
  assert_non_null(mkdtemp(dir));
  snprintf(sdir, sizeof sdir, "%s/state", dir);
  int port;
  int fd = hold_port(&port);
  snprintf(addr, sizeof addr, "127.0.0.1:%d", port);
  it_cli_t r;
  assert_int_equal(IT_CLI(&r, NULL, "serve", "--state-dir", sdir, "--listen",
                          addr, "--http", "off"),
                   0);
  assert_int_equal(r.status, 4);
  assert_non_null(strstr(r.err, "address already in use"));
  it_cli_free(&r);
  char free_addr[64];
  snprintf(free_addr, sizeof free_addr, "127.0.0.1:%d", sup_free_port());
  assert_int_equal(IT_CLI(&r, NULL, "serve", "--state-dir", sdir, "--listen",
                          free_addr, "--http", addr),
                   0);
  assert_int_equal(r.status, 4);
  assert_non_null(strstr(r.err, "cannot listen for HTTP"));
  it_cli_free(&r);
  close(fd);
  sup_rm_tree(dir);

  /* Exit 2 before ready: one start, no retry. */
  it_server_t s;
  memset(&s, 0, sizeof s);
  const char *bad[] = {"--queue-timeout", "0", NULL};
  assert_int_equal(it_server_start(&s, bad), -1);
  char *log = NULL;
  size_t len = 0;
  assert_int_equal(it_read_file(s.log_file, &log, &len), 0);
  size_t starts = 0;
  for (const char *p = log; (p = strstr(p, "harness: starting server")); p++)
    starts++;
  free(log);
  assert_int_equal(starts, 1);
  it_server_destroy(&s);
}

TEST_MAIN("integration_lifecycle", NULL, NULL,
          cmocka_unit_test(test_start_exit_status),
          IT_SERVER_TEST(test_lifecycle, it_fixture_plain),
          IT_SERVER_TEST(test_cli_contract, it_fixture_plain),
          IT_SERVER_TEST(test_control_errors, it_fixture_plain),
          IT_SERVER_TEST(test_pipelined_deploys, it_fixture_plain),
          cmocka_unit_test(test_worker_spawn_fails),
          IT_SERVER_TEST(test_invoke_auth_token, it_fixture_invoke_auth))
