/*
 * Integration: dispatching onto instances.
 *
 *   all slots busy, max instances reached -> the queued calls fail with
 *     OVERLOADED once --queue-timeout passes (they do not hang until a
 *     slot frees); the call holding the slot still succeeds
 *   concurrency N on one instance         -> N calls run at the same time
 *   min 0, first call                     -> an instance is started for it
 *     (scale from zero) and the call succeeds
 *   redeploy while a call runs            -> the running call finishes on
 *     the old version, the next call gets the new one; nothing fails
 *   redeploy while the only instance runs a long call -> a call made
 *     meanwhile is served by a new instance of the new version, not after
 *     the long call or the queue timeout
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "tests/support/test_main.h"

#define CALL_TIMEOUT_MS 30000u
#define QUEUE_TIMEOUT_MS 300u

static int setup_short_queue(void **state) {
  static const char *const flags[] = {"--queue-timeout", "300", NULL};
  return it_fixture_setup(state, flags);
}

static void deploy_hang(impulse_client_t *c, const char *name,
                        uint32_t concurrency) {
  impulse_deploy_opts_t opts = {0};
  opts.concurrency = concurrency;
  opts.max_instances = 1;
  opts.has_max = 1;
  opts.timeout_ms = 5000;
  uint32_t v = 0;
  assert_int_equal(it_deploy_fn(c, name, "hang", &opts, &v), IMPULSE_S_OK);
}

/* Calls until one succeeds, so an instance is up (a cold start may take
 * longer than a short queue timeout). */
static void warm_up(impulse_client_t *c, const char *name) {
  uint64_t until = it_now_ms() + 15000;
  for (;;) {
    impulse_response_t *r = NULL;
    int rc = it_invoke(c, name, "1", &r);
    if (rc == IMPULSE_S_OK) {
      assert_int_equal(r->len, 7);
      assert_memory_equal(r->payload, "slept 1", 7);
      impulse_response_free(r);
      return;
    }
    fprintf(stderr, "warm-up %s: %s: %s\n", name, impulse_status_name(rc),
            r && r->error ? r->error : impulse_client_error(c));
    impulse_response_free(r);
    assert_int_equal(rc, IMPULSE_S_OVERLOADED);
    if (it_now_ms() > until) fail_msg("%s never became ready", name);
    it_sleep_ms(50);
  }
}

static void test_queue_timeout_overloaded(void **state) {
  it_server_t *s = *state;
  impulse_client_t *c = it_connect_ok(s, 1, CALL_TIMEOUT_MS);
  deploy_hang(c, "busy", 1);
  warm_up(c, "busy");

  for (int round = 0; round < 2; round++) {
    uint64_t ids[3];
    uint64_t t0 = it_now_ms();
    for (int i = 0; i < 3; i++)
      assert_int_equal(impulse_invoke_send(c, "busy", "1000", 4, NULL, &ids[i]),
                       IMPULSE_S_OK);
    int ok = 0, overloaded = 0;
    for (int i = 0; i < 3; i++) {
      impulse_response_t *r = NULL;
      assert_int_equal(impulse_invoke_recv(c, &r), IMPULSE_S_OK);
      uint64_t at = it_now_ms() - t0;
      fprintf(stderr, "round %d: call %llu -> %s after %llu ms %s\n", round,
              (unsigned long long)r->id, impulse_status_name(r->status),
              (unsigned long long)at, r->error ? r->error : "");
      if (r->status == IMPULSE_S_OK) {
        /* The one that got the slot: the first sent, after its full sleep. */
        ok++;
        assert_int_equal(r->id, ids[0]);
        assert_int_equal(r->len, 10);
        assert_memory_equal(r->payload, "slept 1000", 10);
        assert_true(at >= 1000);
        assert_true(at < 4000);
      } else {
        /* Queued ones: OVERLOADED at the queue timeout, long before the
         * busy slot frees at 1000 ms. */
        overloaded++;
        assert_int_equal(r->status, IMPULSE_S_OVERLOADED);
        assert_true(r->id == ids[1] || r->id == ids[2]);
        assert_true(at >= QUEUE_TIMEOUT_MS - 50);
        assert_true(at < 950);
      }
      impulse_response_free(r);
    }
    assert_int_equal(ok, 1);
    assert_int_equal(overloaded, 2);
  }
  impulse_client_close(c);
  s->test_passed = 1;
}

static void test_concurrency_in_one_instance(void **state) {
  it_server_t *s = *state;
  impulse_client_t *c = it_connect_ok(s, 1, CALL_TIMEOUT_MS);
  deploy_hang(c, "wide", 3);
  warm_up(c, "wide");
  uint64_t t0 = it_now_ms();
  for (int i = 0; i < 3; i++)
    assert_int_equal(impulse_invoke_send(c, "wide", "600", 3, NULL, NULL),
                     IMPULSE_S_OK);
  for (int i = 0; i < 3; i++) {
    impulse_response_t *r = NULL;
    assert_int_equal(impulse_invoke_recv(c, &r), IMPULSE_S_OK);
    assert_int_equal(r->status, IMPULSE_S_OK);
    assert_int_equal(r->len, 9);
    assert_memory_equal(r->payload, "slept 600", 9);
    impulse_response_free(r);
  }
  uint64_t took = it_now_ms() - t0;
  fprintf(stderr, "3 x 600 ms with concurrency 3 on one instance: %llu ms\n",
          (unsigned long long)took);
  /* In parallel: about 600 ms, far from the 1800 ms of one at a time. */
  assert_true(took >= 600);
  assert_true(took < 1500);
  impulse_client_close(c);
  s->test_passed = 1;
}

static void test_scale_from_zero(void **state) {
  it_server_t *s = *state;
  impulse_client_t *c = it_connect_ok(s, 1, CALL_TIMEOUT_MS);
  impulse_deploy_opts_t opts = {0};
  opts.has_min = 1; /* min 0 */
  uint32_t v = 0;
  assert_int_equal(it_deploy_fn(c, "lazy", "echo", &opts, &v), IMPULSE_S_OK);

  /* Nothing runs for it yet. */
  assert_true(IT_DESCRIBE_SHOWS(s, "lazy", "min instances:", "0",
                                "instances:", "0 (0 ready)"));

  /* The very first call succeeds: an instance is started for it. */
  impulse_response_t *resp = NULL;
  int rc = it_invoke(c, "lazy", "first", &resp);
  if (rc != IMPULSE_S_OK)
    fprintf(stderr, "first call: %s: %s\n", impulse_status_name(rc),
            resp && resp->error ? resp->error : impulse_client_error(c));
  assert_int_equal(rc, IMPULSE_S_OK);
  assert_int_equal(resp->len, 5);
  assert_memory_equal(resp->payload, "first", 5);
  impulse_response_free(resp);

  assert_true(IT_DESCRIBE_SHOWS(s, "lazy", "instances:", "1 (1 ready)",
                                "cold starts:", "1"));
  impulse_client_close(c);
  s->test_passed = 1;
}

/* Sends a call of `name` with `payload` on c and makes sure it runs: a
 * synchronous call on c flushes it, and the immediate answer to that one
 * (NOT_FOUND) means the server has read both. Returns the call's id. */
static uint64_t call_under_way(impulse_client_t *c, const char *name,
                               const char *payload) {
  uint64_t id;
  assert_int_equal(
      impulse_invoke_send(c, name, payload, strlen(payload), NULL, &id),
      IMPULSE_S_OK);
  impulse_response_t *r = NULL;
  assert_int_equal(impulse_invoke(c, "no-such-fn", "", 0, NULL, &r),
                   IMPULSE_S_OK);
  assert_int_equal(r->status, IMPULSE_S_NOT_FOUND);
  impulse_response_free(r);
  return id;
}

static void test_redeploy_drains(void **state) {
  it_server_t *s = *state;
  impulse_client_t *c1 = it_connect_ok(s, 0, CALL_TIMEOUT_MS);
  impulse_client_t *c2 = it_connect_ok(s, 1, CALL_TIMEOUT_MS);
  deploy_hang(c2, "upg", 2);
  warm_up(c2, "upg");

  /* c1's call runs on version 1... */
  uint64_t id = call_under_way(c1, "upg", "700");

  /* ...while version 2 is deployed. */
  impulse_response_t *r = NULL;
  uint64_t t0 = it_now_ms();
  deploy_hang(c2, "upg", 2);
  assert_int_equal(it_invoke(c2, "upg", "1", &r), IMPULSE_S_OK);
  fprintf(stderr, "first call after redeploy: version %u after %llu ms\n",
          r->version, (unsigned long long)(it_now_ms() - t0));
  assert_int_equal(r->version, 2);
  impulse_response_free(r);

  assert_int_equal(impulse_invoke_recv(c1, &r), IMPULSE_S_OK);
  assert_int_equal(r->id, id);
  assert_int_equal(r->status, IMPULSE_S_OK);
  assert_int_equal(r->version, 1);
  assert_int_equal(r->len, 9);
  assert_memory_equal(r->payload, "slept 700", 9);
  impulse_response_free(r);
  impulse_client_close(c1);
  impulse_client_close(c2);
  s->test_passed = 1;
}

/*
 * A redeploy while the only instance runs a long call: the rolling upgrade
 * takes the busy instance out of service, so a call that comes meanwhile
 * must be served by a new instance of version 2 as soon as that one has
 * loaded and passed its validation (a replay of the recorded calls), far
 * sooner than the old call ends or the queue timeout (1000 ms).
 *
 * Regression: an instance that passed its validation became ready without
 * the queue being pumped (upgrade.c upg_verdicts), so the queued call
 * waited for the controller's one-second tick: 0 to 1000 ms more, up to
 * OVERLOADED (683-881 ms measured with the bug, 22-331 ms without, on 2
 * quiet cores). The call must be served by version 2 (not OVERLOADED at the
 * queue timeout), in each of three functions in a row. No tighter bound is
 * asserted: with the machine loaded 5 times over, a worker's start alone
 * took up to 1.2 s here, as long as the tick's wait; --warm-pool 6 keeps
 * started workers at hand so that the new instance rarely waits for one.
 */
#define LONG_CALL "1500"

static void redeploy_during_long_call(impulse_client_t *c1,
                                      impulse_client_t *c2, const char *name) {
  impulse_deploy_opts_t opts = {0};
  opts.concurrency = 1;
  opts.timeout_ms = 20000; /* max instances: the default (10) */
  uint32_t v = 0;
  assert_int_equal(it_deploy_fn(c2, name, "hang", &opts, &v), IMPULSE_S_OK);
  assert_int_equal(v, 1);
  warm_up(c2, name);
  uint64_t id = call_under_way(c1, name, LONG_CALL);
  assert_int_equal(it_deploy_fn(c2, name, "hang", &opts, &v), IMPULSE_S_OK);
  assert_int_equal(v, 2);
  impulse_response_t *r = NULL;
  uint64_t t0 = it_now_ms();
  int rc = it_invoke(c2, name, "1", &r);
  uint64_t took = it_now_ms() - t0;
  fprintf(stderr, "%s: call after redeploy: %s after %llu ms %s\n", name,
          impulse_status_name(rc), (unsigned long long)took,
          r && r->error ? r->error : "");
  assert_int_equal(rc, IMPULSE_S_OK);
  assert_int_equal(r->version, 2);
  impulse_response_free(r);
  /* The old call finishes on version 1. */
  assert_int_equal(impulse_invoke_recv(c1, &r), IMPULSE_S_OK);
  assert_int_equal(r->id, id);
  assert_int_equal(r->status, IMPULSE_S_OK);
  assert_int_equal(r->version, 1);
  assert_int_equal(r->len, 10);
  assert_memory_equal(r->payload, "slept " LONG_CALL, 10);
  impulse_response_free(r);
}

static void test_redeploy_during_long_call(void **state) {
  it_server_t *s = *state;
  impulse_client_t *c1 = it_connect_ok(s, 0, CALL_TIMEOUT_MS);
  impulse_client_t *c2 = it_connect_ok(s, 1, CALL_TIMEOUT_MS);
  redeploy_during_long_call(c1, c2, "long1");
  redeploy_during_long_call(c1, c2, "long2");
  redeploy_during_long_call(c1, c2, "long3");
  impulse_client_close(c1);
  impulse_client_close(c2);
  s->test_passed = 1;
}

static int setup_queue_1s(void **state) {
  static const char *const flags[] = {"--queue-timeout", "1000", "--warm-pool",
                                      "6", NULL};
  return it_fixture_setup(state, flags);
}

TEST_MAIN("integration_dispatch", NULL, NULL,
          IT_SERVER_TEST(test_queue_timeout_overloaded, setup_short_queue),
          IT_SERVER_TEST(test_concurrency_in_one_instance, it_fixture_plain),
          IT_SERVER_TEST(test_scale_from_zero, it_fixture_plain),
          IT_SERVER_TEST(test_redeploy_drains, it_fixture_plain),
          IT_SERVER_TEST(test_redeploy_during_long_call, setup_queue_1s))
