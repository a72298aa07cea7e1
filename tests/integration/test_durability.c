/*
 * Integration: a control change the server answered OK survives kill -9 of
 * the server and all its workers (a machine crash), because it was one
 * synced write before the answer.
 *
 * kill -9 keeps the page cache, so it cannot tell a synced write from one
 * that is not: each acknowledged change is also counted, as exactly one
 * synced write batch of the state store (impulse_store_synced_writes_total
 * of /metrics, read before the change and right after its answer).
 *
 *   deploy OK, kill -9 at once, restart -> the deployed version answers
 *   scale OK, kill -9, restart          -> describe shows the new bounds,
 *                                          and min instances are started
 *   rm OK, kill -9, restart             -> NOT_FOUND
 *   artifact files deleted from STATE/artifacts while down
 *                                       -> rewritten from the store; serves
 *   a second server on the same state dir
 *                                       -> exits 1 naming the lock; the
 *                                          first one keeps serving
 *   invoke with an idempotency key, kill -9, restart, same key again
 *                                       -> the stored answer; the function
 *                                          ran once (functions/recorder.c
 *                                          counts its runs); a new key runs
 *   the same key while the first call runs -> IN_PROGRESS
 *   a 257-byte key                      -> BAD_REQUEST
 *   kill -9 of the server process alone (workers live), restart
 *                                       -> the same worker pids serve
 *                                          again (re-attached, none
 *                                          restarted); the time until the
 *                                          first answer is printed; a
 *                                          stream of calls sees only
 *                                          connection errors meanwhile
 *   impulse backup DIR, then a second server on DIR (while the first
 *   one runs and has moved on to version 2)
 *                                       -> it serves version 1 with the
 *                                          same admin token; the first
 *                                          server is not disturbed
 *   backup to an existing DIR           -> BAD_REQUEST ("exists")
 *   backup without the admin token      -> UNAUTHENTICATED, nothing written
 *   a relative DIR, a DIR inside the
 *   state directory (raw RPC)           -> BAD_REQUEST; the CLI refuses a
 *                                          relative DIR itself (exit 2)
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cmocka.h>

#include <dirent.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "client/client_internal.h"
#include "harness.h"
#include "harness_load.h"
#include "tests/support/test_main.h"

#define CALL_TIMEOUT_MS 30000u

static void crash_and_restart(it_server_t *s) {
  it_server_kill9(s);
  assert_int_equal(it_server_group_alive(s), 0);
  assert_int_equal(it_server_restart(s), 0);
}

/* it_expect_synced(..., 1, ...) for a deploy of `name` that may have started
 * a rolling upgrade: the upgrade's end is a synced write of its own, which
 * may come before the count is read; then describe says it is done, and
 * the count is the deploy's and the end's. */
static void expect_deploy_synced(it_server_t *s, uint64_t before,
                                 const char *name) {
  uint64_t got = it_synced_writes(s) - before;
  char upg[256];
  if (got == 2 && it_describe_field(s, name, "upgrade:", upg, sizeof upg) &&
      strstr(upg, " done") != NULL)
    return;
  if (got != 1)
    fail_msg("deploy of %s: %llu synced store writes, expected 1", name,
             (unsigned long long)got);
}

static void expect_answer(it_server_t *s, const char *fn, const char *payload,
                          const char *want, uint32_t version) {
  impulse_client_t *c = it_connect_ok(s, 0, CALL_TIMEOUT_MS);
  assert_true(it_answers(c, fn, payload, want, version));
  impulse_client_close(c);
}

static void test_deploy_survives_kill9(void **state) {
  it_server_t *s = *state;
  static const char *const fns[] = {"echo", "hello", "echo"};
  char want[64];
  for (uint32_t round = 0; round < 3; round++) {
    impulse_client_t *c = it_connect_ok(s, 1, CALL_TIMEOUT_MS);
    uint32_t v = 0;
    uint64_t synced = it_synced_writes(s);
    assert_int_equal(it_deploy_fn(c, "durable", fns[round], NULL, &v),
                     IMPULSE_S_OK);
    assert_int_equal(v, round + 1);
    expect_deploy_synced(s, synced, "durable");
    /* No call in between: the kill follows the OK immediately. */
    crash_and_restart(s);
    impulse_client_close(c);

    if (strcmp(fns[round], "hello") == 0)
      snprintf(want, sizeof want, "Hello, round-%u!", round);
    else
      snprintf(want, sizeof want, "round-%u", round);
    char payload[32];
    snprintf(payload, sizeof payload, "round-%u", round);
    expect_answer(s, "durable", payload, want, round + 1);
    snprintf(want, sizeof want, "%u", round + 1);
    assert_true(IT_DESCRIBE_SHOWS(s, "durable", "version:", want));
  }
  s->test_passed = 1;
}

static void test_scale_survives_kill9(void **state) {
  it_server_t *s = *state;
  impulse_client_t *c = it_connect_ok(s, 1, CALL_TIMEOUT_MS);
  uint32_t v = 0;
  uint64_t synced = it_synced_writes(s);
  assert_int_equal(it_deploy_fn(c, "scaled", "echo", NULL, &v), IMPULSE_S_OK);
  it_expect_synced(s, synced, 1, "deploy of scaled");
  synced = it_synced_writes(s);
  assert_int_equal(impulse_scale(c, "scaled", 1, 3), IMPULSE_S_OK);
  it_expect_synced(s, synced, 1, "scale --min 1 --max 3");
  crash_and_restart(s);
  impulse_client_close(c);

  /* min 1 is recreated before the server reports ready (the harness
   * waits for the ready file): the instance serves already. */
  assert_true(IT_DESCRIBE_SHOWS(s, "scaled", "min instances:", "1",
                                "max instances:", "3",
                                "instances:", "1 (1 ready)"));
  expect_answer(s, "scaled", "after-scale", "after-scale", 1);

  /* Again through the CLI, changing both bounds. */
  it_cli_t r;
  synced = it_synced_writes(s);
  assert_int_equal(
      IT_CLI_ADMIN(&r, s, "scale", "scaled", "--min", "0", "--max", "5"), 0);
  assert_int_equal(r.status, 0);
  it_cli_free(&r);
  it_expect_synced(s, synced, 1, "impulse scale --min 0 --max 5");
  crash_and_restart(s);
  assert_true(IT_DESCRIBE_SHOWS(s, "scaled", "min instances:", "0",
                                "max instances:", "5"));
  /* Only max changes: min stays. */
  c = it_connect_ok(s, 1, CALL_TIMEOUT_MS);
  synced = it_synced_writes(s);
  assert_int_equal(impulse_scale(c, "scaled", -1, 7), IMPULSE_S_OK);
  it_expect_synced(s, synced, 1, "scale --max 7");
  impulse_client_close(c);
  crash_and_restart(s);
  assert_true(IT_DESCRIBE_SHOWS(s, "scaled", "min instances:", "0",
                                "max instances:", "7"));
  expect_answer(s, "scaled", "x", "x", 1);
  s->test_passed = 1;
}

static void test_delete_survives_kill9(void **state) {
  it_server_t *s = *state;
  impulse_client_t *c = it_connect_ok(s, 1, CALL_TIMEOUT_MS);
  uint32_t v = 0;
  assert_int_equal(it_deploy_fn(c, "doomed", "echo", NULL, &v), IMPULSE_S_OK);
  assert_int_equal(it_deploy_fn(c, "kept", "echo", NULL, &v), IMPULSE_S_OK);
  /* A function with recordings (the first calls are recorded): they go
   * in the deletion's own batch. */
  expect_answer(s, "doomed", "recorded", "recorded", 1);
  uint64_t synced = it_synced_writes(s);
  assert_int_equal(impulse_delete(c, "doomed"), IMPULSE_S_OK);
  it_expect_synced(s, synced, 1, "rm doomed");
  crash_and_restart(s);
  impulse_client_close(c);

  c = it_connect_ok(s, 1, CALL_TIMEOUT_MS);
  impulse_response_t *r = NULL;
  assert_int_equal(it_invoke(c, "doomed", "x", &r), IMPULSE_S_NOT_FOUND);
  impulse_response_free(r);
  impulse_client_close(c);
  expect_answer(s, "kept", "still here", "still here", 1);
  s->test_passed = 1;
}

static void test_artifacts_restored_from_store(void **state) {
  it_server_t *s = *state;
  char dir[300];
  assert_int_equal(
      it_deploy_fn_on(s, CALL_TIMEOUT_MS, "greeter", "hello", NULL, NULL),
      IMPULSE_S_OK);
  it_server_kill9(s);

  /* Lose every artifact file: the store holds the bytes. */
  snprintf(dir, sizeof dir, "%s/artifacts", s->state_dir);
  DIR *d = opendir(dir);
  assert_non_null(d);
  int removed = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (e->d_name[0] == '.') continue;
    char f[600];
    snprintf(f, sizeof f, "%s/%s", dir, e->d_name);
    if (unlink(f) == 0) removed++;
  }
  closedir(d);
  assert_true(removed > 0);

  assert_int_equal(it_server_restart(s), 0);
  expect_answer(s, "greeter", "Ada", "Hello, Ada!", 1);
  s->test_passed = 1;
}

static void test_state_dir_locked(void **state) {
  it_server_t *s = *state;
  char listen[64];
  assert_int_equal(
      it_deploy_fn_on(s, CALL_TIMEOUT_MS, "echo", "echo", NULL, NULL),
      IMPULSE_S_OK);

  /* Another server on the same state directory (and another port) must
   * refuse to start, not share RocksDB with the running one. If it did
   * start, it_cli kills it after its timeout and the status check fails. */
  snprintf(listen, sizeof listen, "127.0.0.1:%d",
           s->port == 65535 ? 65534 : s->port + 1);
  it_cli_t r;
  assert_int_equal(IT_CLI(&r, NULL, "serve", "--state-dir", s->state_dir,
                          "--listen", listen),
                   0);
  fprintf(stderr, "second server: exit %d\n", r.status);
  assert_int_equal(r.status, 1);
  assert_non_null(strstr(r.err, "LOCK"));
  it_cli_free(&r);

  expect_answer(s, "echo", "still mine", "still mine", 1);
  s->test_passed = 1;
}

/* ---- idempotency ----------------------------------------------------------
 */

static char recfile[128];

static int setup_recorder(void **state) {
  snprintf(recfile, sizeof recfile, "/tmp/impulse-it-idem-XXXXXX");
  int fd = mkstemp(recfile);
  if (fd < 0) return -1;
  close(fd);
  /* The recorder appends to a file of this test's, which a sandboxed
   * instance cannot reach (test_sandbox covers the sandbox). */
  static const char *const extra[] = {"--sandbox", "none", NULL};
  return it_fixture_setup(state, extra);
}

static int teardown_recorder(void **state) {
  unlink(recfile);
  return it_fixture_teardown(state);
}

static size_t recorded_runs(void) {
  char *data = NULL;
  size_t len = 0, lines = 0;
  assert_int_equal(it_read_file(recfile, &data, &len), 0);
  for (size_t i = 0; i < len; i++) lines += data[i] == '\n';
  free(data);
  return lines;
}

static int invoke_key(it_server_t *s, const char *fn, const char *payload,
                      const char *key, impulse_response_t **out) {
  impulse_client_t *c = it_connect_ok(s, 0, CALL_TIMEOUT_MS);
  impulse_invoke_opts_t o = {0};
  o.idempotency_key = key;
  int rc = impulse_invoke(c, fn, payload, strlen(payload), &o, out);
  impulse_client_close(c);
  return rc;
}

static void expect_once(it_server_t *s, const char *key, size_t runs) {
  impulse_response_t *r = NULL;
  int rc = invoke_key(s, "recorder", "p", key, &r);
  assert_int_equal(rc, IMPULSE_S_OK);
  if (r->status != IMPULSE_S_OK) fprintf(stderr, "recorder: %s\n", r->error);
  assert_int_equal(r->status, IMPULSE_S_OK);
  assert_int_equal(r->len, 2);
  assert_memory_equal(r->payload, "ok", 2);
  impulse_response_free(r);
  assert_int_equal(recorded_runs(), runs);
}

static void test_idempotent_invoke_survives_kill9(void **state) {
  it_server_t *s = *state;
  impulse_client_t *admin = it_connect_ok(s, 1, CALL_TIMEOUT_MS);
  char var[200];
  snprintf(var, sizeof var, "IMPULSE_RECORDER_FILE=%s", recfile);
  const char *env[] = {var};
  impulse_deploy_opts_t opts = {0};
  opts.env = env;
  opts.nenv = 1;
  assert_int_equal(it_deploy_fn(admin, "recorder", "recorder", &opts, NULL), 0);
  assert_int_equal(it_deploy_fn(admin, "hang", "hang", NULL, NULL), 0);
  impulse_client_close(admin);

  expect_once(s, "order-1", 1);
  expect_once(s, "order-1", 1); /* answered from the store */
  crash_and_restart(s);
  expect_once(s, "order-1", 1); /* the store survived kill -9 */
  expect_once(s, "order-2", 2); /* a new key runs */

  /* The same key while its first call runs: IN_PROGRESS at once, on the
   * pipelined path (the synchronous call would retry it). */
  impulse_client_t *c = it_connect_ok(s, 0, CALL_TIMEOUT_MS);
  impulse_invoke_opts_t o = {0};
  o.idempotency_key = "slow-1";
  uint64_t id1, id2;
  assert_int_equal(impulse_invoke_send(c, "hang", "1500", 4, &o, &id1), 0);
  assert_int_equal(impulse_invoke_send(c, "hang", "1500", 4, &o, &id2), 0);
  impulse_response_t *r = NULL;
  assert_int_equal(impulse_invoke_recv(c, &r), IMPULSE_S_OK);
  assert_int_equal(r->id, id2);
  assert_int_equal(r->status, IMPULSE_S_IN_PROGRESS);
  impulse_response_free(r);
  assert_int_equal(impulse_invoke_recv(c, &r), IMPULSE_S_OK);
  assert_int_equal(r->id, id1);
  assert_int_equal(r->status, IMPULSE_S_OK);
  impulse_response_free(r);
  impulse_client_close(c);
  /* The synchronous call retries IN_PROGRESS; here it is answered from
   * the store at once. */
  assert_int_equal(invoke_key(s, "hang", "1500", "slow-1", &r), 0);
  assert_int_equal(r->status, IMPULSE_S_OK);
  assert_memory_equal(r->payload, "slept 1500", r->len);
  impulse_response_free(r);

  char longkey[258];
  memset(longkey, 'k', 257);
  longkey[257] = '\0';
  assert_int_equal(invoke_key(s, "recorder", "p", longkey, &r), 0);
  assert_int_equal(r->status, IMPULSE_S_BAD_REQUEST);
  impulse_response_free(r);
  assert_int_equal(recorded_runs(), 2);
  s->test_passed = 1;
}

/* ---- re-attach after a crash of the server alone ------------------------- */

static int setup_grace(void **state) {
  static const char *const flags[] = {"--worker-grace", "20000", NULL};
  return it_fixture_setup(state, flags);
}

/* The pids of echo's ready instances, sorted, into pids (max n). */
static size_t echo_pids(it_server_t *s, int *pids, size_t n) {
  impulse_client_t *c = it_connect_ok(s, 0, CALL_TIMEOUT_MS);
  Impulse__Envelope *resp = NULL;
  assert_int_equal(sup_describe(c, "echo", &resp), 0);
  size_t k = 0;
  for (size_t i = 0; i < resp->describe_ok->n_instances && k < n; i++) {
    const Impulse__InstanceInfo *ii = resp->describe_ok->instances[i];
    if (ii->state && strcmp(ii->state, "ready") == 0) pids[k++] = ii->pid;
  }
  impulse__envelope__free_unpacked(resp, NULL);
  impulse_client_close(c);
  for (size_t i = 1; i < k; i++)
    for (size_t j = i; j > 0 && pids[j - 1] > pids[j]; j--) {
      int t = pids[j];
      pids[j] = pids[j - 1];
      pids[j - 1] = t;
    }
  return k;
}

static void test_workers_reattached_after_kill9(void **state) {
  it_server_t *s = *state;
  impulse_client_t *admin = it_connect_ok(s, 1, CALL_TIMEOUT_MS);
  impulse_deploy_opts_t o = {0};
  o.min_instances = 2;
  o.has_min = 1;
  o.concurrency = 1;
  o.policy = "reactive";
  uint64_t synced = it_synced_writes(s);
  assert_int_equal(it_deploy_fn(admin, "echo", "echo", &o, NULL), 0);
  it_expect_synced(s, synced, 1, "deploy of echo");
  /* A second version sharing the traffic, and a trigger: none of it may
   * be lost. */
  impulse_deploy_opts_t np = {0};
  np.no_promote = 1;
  synced = it_synced_writes(s);
  assert_int_equal(it_deploy_fn(admin, "echo", "echo", &np, NULL), 0);
  it_expect_synced(s, synced, 1, "deploy --no-promote of echo");
  impulse_client_close(admin);
  it_cli_t r;
  synced = it_synced_writes(s);
  assert_int_equal(IT_CLI_ADMIN(&r, s, "traffic", "echo", "v1=50", "v2=50"), 0);
  assert_int_equal(r.status, 0);
  it_cli_free(&r);
  it_expect_synced(s, synced, 1, "traffic echo v1=50 v2=50");
  synced = it_synced_writes(s);
  assert_int_equal(IT_CLI_ADMIN(&r, s, "trigger", "create", "chaos", "--topic",
                                "chaos-events", "--function", "echo"),
                   0);
  if (r.status != 0) fprintf(stderr, "trigger create: %s", r.err);
  assert_int_equal(r.status, 0);
  it_cli_free(&r);
  it_expect_synced(s, synced, 1, "trigger create chaos");
  int before[8], after[8];
  size_t nb = 0;
  uint64_t until = it_now_ms() + 15000;
  while ((nb = echo_pids(s, before, 8)) < 2 && it_now_ms() < until)
    it_sleep_ms(50);
  assert_int_equal(nb, 2);

  /* Calls echo in a loop, connecting again whenever it fails. */
  static it_stream_t st;
  assert_int_equal(it_stream_start(&st, s, "call", 2000, 0), 0);
  it_sleep_ms(500);
  unsigned long ok_before = atomic_load(&st.ok);
  assert_true(ok_before > 0);

  uint64_t t_kill = it_now_ms();
  it_server_kill9_server_only(s);
  assert_int_equal(it_server_restart(s), 0);
  /* Serving again: the stream's first answer after the restart. */
  unsigned long ok_at_restart = atomic_load(&st.ok);
  until = it_now_ms() + 15000;
  while (atomic_load(&st.ok) == ok_at_restart && it_now_ms() < until)
    it_sleep_ms(2);
  uint64_t t_back = it_now_ms();
  assert_true(atomic_load(&st.ok) > ok_at_restart);
  fprintf(stderr, "kill -9 -> serving again after %llu ms\n",
          (unsigned long long)(t_back - t_kill));
  it_sleep_ms(500);
  it_stream_stop(&st);
  fprintf(stderr, "stream: %lu ok, %lu connection errors, %lu wrong\n",
          atomic_load(&st.ok), atomic_load(&st.refused),
          atomic_load(&st.wrong));
  assert_int_equal(atomic_load(&st.wrong), 0);

  size_t na = echo_pids(s, after, 8);
  assert_int_equal(na, 2);
  for (size_t i = 0; i < 2; i++) assert_int_equal(after[i], before[i]);
  /* Versions, weights and the trigger came back with the restart. */
  assert_int_equal(IT_CLI_ADMIN(&r, s, "traffic", "echo"), 0);
  assert_int_equal(r.status, 0);
  assert_non_null(strstr(r.out, "v1=50 v2=50"));
  it_cli_free(&r);
  assert_int_equal(IT_CLI_ADMIN(&r, s, "trigger", "ls"), 0);
  assert_int_equal(r.status, 0);
  assert_non_null(strstr(r.out, "chaos"));
  it_cli_free(&r);
  s->test_passed = 1;
}

/* ---- backup and restore ---------------------------------------------------
 */

/* A Backup RPC on an admin connection; returns the client status. */
static int backup_rpc(it_server_t *s, const char *dir) {
  impulse_client_t *c = it_connect_ok(s, 1, CALL_TIMEOUT_MS);
  Impulse__Envelope req = IMPULSE__ENVELOPE__INIT, *resp = NULL;
  Impulse__BackupRequest b = IMPULSE__BACKUP_REQUEST__INIT;
  b.dir = (char *)dir;
  req.body_case = IMPULSE__ENVELOPE__BODY_BACKUP;
  req.backup = &b;
  int rc =
      imp_client_call_expect(c, &req, IMPULSE__ENVELOPE__BODY_BACKUP_OK, &resp);
  if (resp) impulse__envelope__free_unpacked(resp, NULL);
  impulse_client_close(c);
  return rc;
}

static void test_backup_and_restore(void **state) {
  it_server_t *s = *state;
  char dir[256], other[256], inside[300], want[400];
  impulse_client_t *c = it_connect_ok(s, 1, CALL_TIMEOUT_MS);
  uint32_t v = 0;
  assert_int_equal(it_deploy_fn(c, "saved", "hello", NULL, &v), IMPULSE_S_OK);
  expect_answer(s, "saved", "Ada", "Hello, Ada!", 1);

  snprintf(dir, sizeof dir, "%s/backup", s->root);
  it_cli_t r;
  assert_int_equal(IT_CLI_ADMIN(&r, s, "backup", dir), 0);
  if (r.status != 0) fprintf(stderr, "backup: %s", r.err);
  assert_int_equal(r.status, 0);
  fprintf(stderr, "%s", r.out);
  snprintf(want, sizeof want, "backup written to %s (", dir);
  assert_non_null(strstr(r.out, want));
  assert_true(atoll(strstr(r.out, want) + strlen(want)) > 0); /* bytes */
  it_cli_free(&r);

  /* The same directory again: it exists now. */
  assert_int_equal(IT_CLI_ADMIN(&r, s, "backup", dir), 0);
  assert_int_equal(r.status, 1);
  assert_non_null(strstr(r.err, "BAD_REQUEST"));
  assert_non_null(strstr(r.err, "exists"));
  it_cli_free(&r);

  /* Without the token: refused, nothing written. */
  snprintf(other, sizeof other, "%s/backup2", s->root);
  assert_int_equal(IT_CLI(&r, NULL, "backup", other, "--addr", s->addr), 0);
  assert_int_equal(r.status, 1);
  assert_non_null(strstr(r.err, "UNAUTHENTICATED"));
  it_cli_free(&r);
  assert_int_not_equal(access(other, F_OK), 0);

  /* Relative: the CLI refuses it itself; the server too. */
  assert_int_equal(IT_CLI_ADMIN(&r, s, "backup", "relative/dir"), 0);
  assert_int_equal(r.status, 2);
  it_cli_free(&r);
  assert_int_equal(backup_rpc(s, "relative/dir"), IMPULSE_S_BAD_REQUEST);
  snprintf(inside, sizeof inside, "%s/copy", s->state_dir);
  assert_int_equal(backup_rpc(s, inside), IMPULSE_S_BAD_REQUEST);
  assert_int_not_equal(access(inside, F_OK), 0);

  /* The original moves on: version 2 answers like echo. */
  assert_int_equal(it_deploy_fn(c, "saved", "echo", NULL, &v), IMPULSE_S_OK);
  assert_int_equal(v, 2);
  impulse_client_close(c);

  /* Restore: a second server on the backup is the state at backup time. */
  it_server_t *restored = calloc(1, sizeof *restored);
  assert_non_null(restored);
  assert_int_equal(it_server_start_on(restored, dir, NULL), 0);
  assert_string_equal(restored->token, s->token);
  expect_answer(restored, "saved", "Ada", "Hello, Ada!", 1);
  expect_answer(s, "saved", "Ada", "Ada", 2);
  restored->test_passed = 1;
  assert_int_equal(it_server_finish(restored), 0);
  free(restored);
  expect_answer(s, "saved", "still", "still", 2);
  s->test_passed = 1;
}

TEST_MAIN("integration_durability", NULL, NULL,
          IT_SERVER_TEST(test_deploy_survives_kill9, it_fixture_plain),
          IT_SERVER_TEST(test_scale_survives_kill9, it_fixture_plain),
          IT_SERVER_TEST(test_delete_survives_kill9, it_fixture_plain),
          IT_SERVER_TEST(test_artifacts_restored_from_store, it_fixture_plain),
          IT_SERVER_TEST(test_state_dir_locked, it_fixture_plain),
          cmocka_unit_test_setup_teardown(test_idempotent_invoke_survives_kill9,
                                          setup_recorder, teardown_recorder),
          IT_SERVER_TEST(test_workers_reattached_after_kill9, setup_grace),
          IT_SERVER_TEST(test_backup_and_restore, it_fixture_plain))
