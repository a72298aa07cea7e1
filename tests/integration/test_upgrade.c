/*
 * Integration: rolling upgrades validated with recorded calls.
 *
 *   20 instances, callers running, deploy v2 (--max-step 25)
 *     -> done; every instance on v2; never more than 5 of 20 out of
 *        service (sampled); no call failed; the wall time is printed
 *   deploy a version that fails the recorded calls (functions/crash.c
 *   answers them with an error), callers running
 *     -> rolled back by itself: state failed with the reason, every
 *        instance back on the old version, no call failed, every answer
 *        from the old version
 *   deploy a version with other output (functions/hello.c) with
 *   --validate exact -> rolled back; with --validate status it passes
 *   kill -9 of the server in the middle of an upgrade, restart
 *     -> it resumes and finishes: state done, every instance on the new
 *        version
 *   another promoting deploy while an upgrade runs -> BAD_REQUEST
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cmocka.h>

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "harness_load.h"
#include "tests/support/test_main.h"

#define CALL_TIMEOUT_MS 30000u
#define CALLERS 4

static int setup(void **state) {
  static const char *const flags[] = {"--worker-grace", "20000", NULL};
  return it_fixture_setup(state, flags);
}

static Impulse__Envelope *describe(impulse_client_t *c, const char *name) {
  Impulse__Envelope *resp = NULL;
  assert_int_equal(sup_describe(c, name, &resp), 0);
  return resp;
}

/* Waits until `n` instances are ready. */
static void wait_ready(impulse_client_t *c, const char *name, unsigned n) {
  uint64_t until = it_now_ms() + 30000;
  for (;;) {
    Impulse__Envelope *e = describe(c, name);
    unsigned ready = e->describe_ok->function->ready;
    impulse__envelope__free_unpacked(e, NULL);
    if (ready >= n) return;
    if (it_now_ms() > until) fail_msg("%u of %u instances ready", ready, n);
    it_sleep_ms(50);
  }
}

/* Polls describe until the upgrade to `to` is over; returns its state and
 * copies the reason. Tracks the most instances out of service at once. */
static char *wait_upgrade(impulse_client_t *c, const char *name, uint32_t to,
                          unsigned *max_out, unsigned *instances, char *reason,
                          size_t rlen, uint64_t *took_ms) {
  static char state[32];
  uint64_t t0 = it_now_ms(), until = t0 + 60000;
  *max_out = 0;
  for (;;) {
    Impulse__Envelope *e = describe(c, name);
    const Impulse__FunctionInfo *f = e->describe_ok->function;
    const Impulse__UpgradeInfo *u = f->upgrade;
    *instances = f->instances;
    int over = 0;
    if (u && u->record && u->record->to_version == to) {
      if (u->has_out_of_service && u->out_of_service > *max_out)
        *max_out = u->out_of_service;
      if (strcmp(u->record->state, "done") == 0 ||
          strcmp(u->record->state, "failed") == 0) {
        snprintf(state, sizeof state, "%s", u->record->state);
        snprintf(reason, rlen, "%s",
                 u->record->reason ? u->record->reason : "");
        *took_ms = u->record->updated_ms - u->record->started_ms;
        over = 1;
      }
    }
    impulse__envelope__free_unpacked(e, NULL);
    if (over) return state;
    if (it_now_ms() > until) fail_msg("upgrade to v%u not over in 60 s", to);
    it_sleep_ms(5);
  }
}

/* Every instance of `name` is ready on `version`. */
static void all_on(impulse_client_t *c, const char *name, uint32_t version,
                   unsigned n) {
  uint64_t until = it_now_ms() + 15000;
  for (;;) {
    Impulse__Envelope *e = describe(c, name);
    unsigned on = 0;
    for (size_t i = 0; i < e->describe_ok->n_instances; i++) {
      const Impulse__InstanceInfo *ii = e->describe_ok->instances[i];
      if (ii->version == version && strcmp(ii->state, "ready") == 0) on++;
    }
    size_t total = e->describe_ok->n_instances;
    impulse__envelope__free_unpacked(e, NULL);
    if (on >= n && on == total) return;
    if (it_now_ms() > until)
      fail_msg("%u of %zu instances ready on v%u", on, total, version);
    it_sleep_ms(50);
  }
}

static void deploy(impulse_client_t *admin, const char *name, const char *so,
                   const impulse_deploy_opts_t *o, uint32_t want_version) {
  uint32_t v = 0;
  assert_int_equal(it_deploy_fn(admin, name, so, o, &v), 0);
  assert_int_equal(v, want_version);
}

/* Calls that the recordings will hold. */
static void record_calls(const it_server_t *s, const char *name,
                         const char *payload, int n) {
  impulse_client_t *c = it_connect_ok(s, 0, CALL_TIMEOUT_MS);
  for (int i = 0; i < n; i++) {
    impulse_response_t *r = NULL;
    assert_int_equal(it_invoke(c, name, payload, &r), IMPULSE_S_OK);
    assert_int_equal(r->status, IMPULSE_S_OK);
    impulse_response_free(r);
  }
  impulse_client_close(c);
}

/* Version 1 of `name` from the example function `so` on exactly n
 * instances of concurrency 1, all ready, with `calls` calls of `payload`
 * recorded for the upgrades to replay. */
static void deploy_recorded(const it_server_t *s, impulse_client_t *admin,
                            const char *name, const char *so, uint32_t n,
                            const char *payload, int calls) {
  impulse_deploy_opts_t o = {0};
  o.min_instances = n;
  o.has_min = 1;
  o.max_instances = n;
  o.has_max = 1;
  o.concurrency = 1;
  o.policy = "reactive";
  deploy(admin, name, so, &o, 1);
  wait_ready(admin, name, n);
  record_calls(s, name, payload, calls);
}

static void test_upgrade_under_load_and_rollback(void **state) {
  it_server_t *s = *state;
  impulse_client_t *admin = it_connect_ok(s, 1, CALL_TIMEOUT_MS);
  deploy_recorded(s, admin, "up", "echo", 20, "hello", 40);

  static it_load_t l;
  assert_int_equal(it_load_start(&l, s, "up", "hello", CALLERS, CALLERS), 0);
  it_sleep_ms(300);
  impulse_deploy_opts_t o2 = {0};
  o2.max_step_pct = 25;
  deploy(admin, "up", "echo", &o2, 2);
  unsigned max_out = 0, n = 0;
  char reason[512];
  uint64_t took = 0;
  const char *st =
      wait_upgrade(admin, "up", 2, &max_out, &n, reason, sizeof reason, &took);
  fprintf(stderr,
          "upgrade of 20 instances: %s in %llu ms, at most %u out "
          "of service at once\n",
          st, (unsigned long long)took, max_out);
  assert_string_equal(st, "done");
  assert_true(max_out <= 5);
  all_on(admin, "up", 2, 20);
  it_sleep_ms(200);
  it_load_stop(&l);
  fprintf(stderr, "calls during the upgrade: %lu ok, %lu failed\n",
          atomic_load(&l.ok), atomic_load(&l.failed));
  assert_int_equal(atomic_load(&l.failed), 0);

  /* A version that fails the recorded calls: rolled back by itself. */
  assert_int_equal(it_load_start(&l, s, "up", "hello", CALLERS, CALLERS), 0);
  it_sleep_ms(200);
  deploy(admin, "up", "crash", &o2, 3);
  st = wait_upgrade(admin, "up", 3, &max_out, &n, reason, sizeof reason, &took);
  fprintf(stderr, "bad version: %s in %llu ms: %s\n", st,
          (unsigned long long)took, reason);
  assert_string_equal(st, "failed");
  assert_non_null(strstr(reason, "failed validation"));
  all_on(admin, "up", 2, 20);
  it_load_stop(&l);
  fprintf(stderr, "calls during the rollback: %lu ok, %lu failed\n",
          atomic_load(&l.ok), atomic_load(&l.failed));
  assert_int_equal(atomic_load(&l.failed), 0);
  assert_int_equal(atomic_load(&l.versions_seen), 1u << 2); /* only v2 */

  /* Other output: rolled back with --validate exact. */
  impulse_deploy_opts_t o3 = {0};
  o3.validate = "exact";
  deploy(admin, "up", "hello", &o3, 4);
  st = wait_upgrade(admin, "up", 4, &max_out, &n, reason, sizeof reason, &took);
  assert_string_equal(st, "failed");
  assert_non_null(strstr(reason, "differ"));
  all_on(admin, "up", 2, 20);
  impulse_client_close(admin);
  s->test_passed = 1;
}

static void test_upgrade_resumes_after_kill9(void **state) {
  it_server_t *s = *state;
  impulse_client_t *admin = it_connect_ok(s, 1, CALL_TIMEOUT_MS);
  /* 20 ms each: replays take a while. */
  deploy_recorded(s, admin, "slow", "hang", 6, "20", 32);

  impulse_deploy_opts_t o2 = {0};
  o2.max_step_pct = 10; /* one instance at a time */
  deploy(admin, "slow", "hang", &o2, 2);
  /* Another promoting deploy meanwhile is refused. */
  assert_int_equal(it_deploy_fn(admin, "slow", "hang", &o2, NULL),
                   IMPULSE_S_BAD_REQUEST);
  /* Wait until it is under way, then kill the server alone. */
  uint64_t until = it_now_ms() + 20000;
  for (;;) {
    Impulse__Envelope *e = describe(admin, "slow");
    const Impulse__UpgradeInfo *u = e->describe_ok->function->upgrade;
    int going = u && u->has_validated && u->validated >= 1;
    impulse__envelope__free_unpacked(e, NULL);
    if (going) break;
    assert_true(it_now_ms() < until);
    it_sleep_ms(10);
  }
  impulse_client_close(admin);
  it_server_kill9_server_only(s);
  assert_int_equal(it_server_restart(s), 0);
  admin = it_connect_ok(s, 1, CALL_TIMEOUT_MS);
  unsigned max_out = 0, n = 0;
  char reason[512];
  uint64_t took = 0;
  const char *st = wait_upgrade(admin, "slow", 2, &max_out, &n, reason,
                                sizeof reason, &took);
  fprintf(stderr, "upgrade after kill -9 and restart: %s (%s)\n", st, reason);
  assert_string_equal(st, "done");
  all_on(admin, "slow", 2, 6);
  impulse_client_close(admin);
  s->test_passed = 1;
}

TEST_MAIN("integration_upgrade", NULL, NULL,
          IT_SERVER_TEST(test_upgrade_under_load_and_rollback, setup),
          IT_SERVER_TEST(test_upgrade_resumes_after_kill9, setup))
