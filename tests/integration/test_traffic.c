/*
 * Integration: splitting traffic between versions.
 *
 *   deploy --no-promote          -> version 2 is stored; calls still get 1
 *   deploy --no-promote, unknown function
 *                                -> BAD_REQUEST
 *   traffic v1=90 v2=10, 10,000 calls
 *                                -> version 2 answers 10 % +- 2 % of them
 *                                   (the share is printed), none fails
 *   traffic v2=100               -> every later call gets version 2
 *   weights that do not add up to 100, an unknown version, a version
 *   given twice                  -> BAD_REQUEST, the split is unchanged
 *   traffic without the admin token
 *                                -> UNAUTHENTICATED
 *   a split, then a restart      -> describe shows the same split
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "client/client_internal.h"
#include "harness.h"
#include "tests/support/test_main.h"

#define CALL_TIMEOUT_MS 30000u
#define CALLS 10000
#define WINDOW 32

/* `impulse traffic` over the RPC: the status, and the answer's weights
 * as "v1=90 v2=10" in buf. */
static int traffic(impulse_client_t *c, const char *name, const char *spec,
                   char *buf, size_t len) {
  Impulse__Envelope req = IMPULSE__ENVELOPE__INIT, *resp = NULL;
  Impulse__TrafficRequest tr = IMPULSE__TRAFFIC_REQUEST__INIT;
  Impulse__TrafficWeight w[8], *wp[8];
  size_t n = 0;
  const char *p = spec;
  unsigned v, wt;
  int used;
  while (p && sscanf(p, " v%u=%u%n", &v, &wt, &used) == 2 && n < 8) {
    impulse__traffic_weight__init(&w[n]);
    w[n].version = v;
    w[n].weight = wt;
    wp[n] = &w[n];
    n++;
    p += used;
  }
  tr.name = (char *)name;
  tr.n_weights = n;
  tr.weights = wp;
  req.body_case = IMPULSE__ENVELOPE__BODY_TRAFFIC;
  req.traffic = &tr;
  int rc = imp_client_call_expect(c, &req, IMPULSE__ENVELOPE__BODY_TRAFFIC_OK,
                                  &resp);
  if (rc != 0) return rc;
  size_t off = 0;
  buf[0] = '\0';
  for (size_t i = 0; i < resp->traffic_ok->n_traffic && off < len; i++)
    off += (size_t)snprintf(buf + off, len - off, "%sv%u=%u", i ? " " : "",
                            (unsigned)resp->traffic_ok->traffic[i]->version,
                            (unsigned)resp->traffic_ok->traffic[i]->weight);
  impulse__envelope__free_unpacked(resp, NULL);
  return 0;
}

/* Calls `n` times, WINDOW in flight; counts answers by version. */
static void call_many(impulse_client_t *c, unsigned n, unsigned *by_version,
                      unsigned nversions, unsigned *failed) {
  unsigned sent = 0, got = 0;
  *failed = 0;
  while (got < n) {
    while (sent < n && sent - got < WINDOW) {
      uint64_t id;
      assert_int_equal(impulse_invoke_send(c, "canary", "x", 1, NULL, &id), 0);
      sent++;
    }
    impulse_response_t *r = NULL;
    assert_int_equal(impulse_invoke_recv(c, &r), 0);
    got++;
    if (r->status != IMPULSE_S_OK) {
      (*failed)++;
      fprintf(stderr, "call failed: %s\n", r->error ? r->error : "?");
    } else if (r->version < nversions) {
      by_version[r->version]++;
    }
    impulse_response_free(r);
  }
}

/* Waits until describe shows a ready instance of `version`. */
static void wait_version_ready(it_server_t *s, uint32_t version) {
  impulse_client_t *c = it_connect_ok(s, 0, CALL_TIMEOUT_MS);
  uint64_t until = it_now_ms() + 15000;
  for (;;) {
    Impulse__Envelope *resp = NULL;
    assert_int_equal(sup_describe(c, "canary", &resp), 0);
    int found = 0;
    for (size_t i = 0; i < resp->describe_ok->n_instances; i++) {
      const Impulse__InstanceInfo *ii = resp->describe_ok->instances[i];
      if (ii->version == version && ii->state &&
          strcmp(ii->state, "ready") == 0)
        found = 1;
    }
    impulse__envelope__free_unpacked(resp, NULL);
    if (found) break;
    if (it_now_ms() > until)
      fail_msg("no ready instance of version %u", version);
    it_sleep_ms(50);
  }
  impulse_client_close(c);
}

static void test_canary_and_switch(void **state) {
  it_server_t *s = *state;
  impulse_client_t *admin = it_connect_ok(s, 1, CALL_TIMEOUT_MS);
  char buf[128];
  impulse_deploy_opts_t o = {0};
  o.min_instances = 2;
  o.has_min = 1;
  o.concurrency = 4;
  o.policy = "reactive";
  uint32_t v = 0;
  assert_int_equal(it_deploy_fn(admin, "canary", "echo", &o, &v), 0);
  assert_int_equal(v, 1);
  impulse_deploy_opts_t np = {0};
  np.no_promote = 1;
  assert_int_equal(it_deploy_fn(admin, "canary", "echo", &np, &v), 0);
  assert_int_equal(v, 2);
  assert_int_equal(it_deploy_fn(admin, "nothing-yet", "echo", &np, &v),
                   IMPULSE_S_BAD_REQUEST);

  impulse_client_t *c = it_connect_ok(s, 0, CALL_TIMEOUT_MS);
  unsigned by[4] = {0}, failed = 0;
  call_many(c, 200, by, 4, &failed);
  assert_int_equal(failed, 0);
  assert_int_equal(by[1], 200); /* not promoted: no traffic */

  /* Bad splits change nothing. */
  assert_int_equal(traffic(admin, "canary", "v1=90 v2=5", buf, sizeof buf),
                   IMPULSE_S_BAD_REQUEST);
  assert_int_equal(traffic(admin, "canary", "v1=90 v9=10", buf, sizeof buf),
                   IMPULSE_S_BAD_REQUEST);
  assert_int_equal(traffic(admin, "canary", "v1=50 v1=50", buf, sizeof buf),
                   IMPULSE_S_BAD_REQUEST);
  assert_int_equal(traffic(c, "canary", "v1=50 v2=50", buf, sizeof buf),
                   IMPULSE_S_UNAUTHENTICATED);
  assert_int_equal(traffic(admin, "canary", "", buf, sizeof buf), 0);
  assert_string_equal(buf, "v1=100");

  /* Canary. */
  assert_int_equal(traffic(admin, "canary", "v1=90 v2=10", buf, sizeof buf), 0);
  assert_string_equal(buf, "v1=90 v2=10");
  wait_version_ready(s, 2);
  /* Warm-up: a version whose one instance was just loaded can be full for
   * its first calls (slow under sanitizers), and a version with no free
   * slot gets no credit in the split; the share is that of the steady
   * state that follows. */
  call_many(c, CALLS / 10, by, 4, &failed);
  assert_int_equal(failed, 0);
  memset(by, 0, sizeof by);
  call_many(c, CALLS, by, 4, &failed);
  fprintf(stderr, "90/10 over %d calls: v1 %u, v2 %u (%.2f %%), %u failed\n",
          CALLS, by[1], by[2], 100.0 * by[2] / CALLS, failed);
  assert_int_equal(failed, 0);
  assert_int_equal(by[1] + by[2], CALLS);
  assert_true(by[2] >= CALLS * 8 / 100 && by[2] <= CALLS * 12 / 100);

  /* Blue-green switch. */
  assert_int_equal(traffic(admin, "canary", "v2=100", buf, sizeof buf), 0);
  assert_string_equal(buf, "v2=100");
  memset(by, 0, sizeof by);
  call_many(c, 500, by, 4, &failed);
  assert_int_equal(failed, 0);
  assert_int_equal(by[2], 500);

  /* A split survives a restart. */
  assert_int_equal(traffic(admin, "canary", "v1=30 v2=70", buf, sizeof buf), 0);
  impulse_client_close(c);
  impulse_client_close(admin);
  assert_int_equal(it_server_stop(s), 0);
  assert_int_equal(it_server_restart(s), 0);
  admin = it_connect_ok(s, 1, CALL_TIMEOUT_MS);
  assert_int_equal(traffic(admin, "canary", "", buf, sizeof buf), 0);
  assert_string_equal(buf, "v1=30 v2=70");
  c = it_connect(s, 0, CALL_TIMEOUT_MS);
  wait_version_ready(s, 1);
  wait_version_ready(s, 2);
  memset(by, 0, sizeof by);
  call_many(c, 1000, by, 4, &failed);
  assert_int_equal(failed, 0);
  fprintf(stderr, "30/70 after a restart over 1000 calls: v1 %u, v2 %u\n",
          by[1], by[2]);
  assert_true(by[1] >= 250 && by[1] <= 350);
  impulse_client_close(c);
  impulse_client_close(admin);
  s->test_passed = 1;
}

TEST_MAIN("integration_traffic", NULL, NULL,
          IT_SERVER_TEST(test_canary_and_switch, it_fixture_plain))
