/*
 * Unit tests for runtime/autoscaler.c: the KPA rules (stable and panic
 * windows, rate limits, scale to zero), the lag rule, the combined decision
 * with the predictor, Erlang sizing and the warm pool. Time is virtual, so
 * every expected instance count is exact.
 */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "policy/autoscaler.h"
#include "policy/predictor.h"
#include "tests/support/test_main.h"

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

static void reactive_cfg(imp_as_cfg_t *cfg) {
  imp_as_cfg_default(cfg);
  cfg->policy = IMP_AS_REACTIVE;
}

/* `as` initialised with the reactive policy's defaults, left in *cfg. */
static void init_reactive(imp_as_t *as, imp_as_cfg_t *cfg) {
  reactive_cfg(cfg);
  assert_int_equal(imp_as_init(as, cfg), 0);
}

/* Records the second ending at t_s with `inflight` calls in flight on
 * average (one arrival when any), then decides with `ready` instances. */
static uint32_t step_lag(imp_as_t *as, int64_t t_s, double inflight,
                         int64_t lag, uint32_t ready, imp_as_decision_t *d) {
  imp_as_sample_t s;
  memset(&s, 0, sizeof s);
  s.t_ms = t_s * 1000;
  s.inflight = inflight;
  s.arrivals = inflight > 0.0 ? 1 : 0;
  s.lag = lag;
  imp_as_record(as, &s);
  return imp_as_decide(as, t_s * 1000, ready, NULL, d);
}

static uint32_t step(imp_as_t *as, int64_t t_s, double inflight, uint32_t ready,
                     imp_as_decision_t *d) {
  return step_lag(as, t_s, inflight, -1, ready, d);
}

static void assert_reason(const imp_as_decision_t *d, const char *want) {
  char buf[IMP_AS_REASON_MAX];
  assert_string_equal(imp_as_reason(d, buf, sizeof buf), want);
}

/* Target 1 x 0.7 per instance: ceil(stable average / 0.7). */
static void test_stable_window(void **state) {
  (void)state;
  imp_as_cfg_t cfg;
  imp_as_t as;
  init_reactive(&as, &cfg);
  imp_as_decision_t d;
  /* A partial window averages what it has: 1.4 / 0.7 = 2. */
  assert_int_equal(step(&as, 1, 1.4, 2, &d), 2);
  assert_int_equal(d.why, IMP_AS_WHY_STABLE);
  /* Then between 1.75 and 2.09: 3. */
  for (int64_t t = 2; t <= 60; t++)
    assert_int_equal(step(&as, t, 2.1, 3, &d), 3);
  /* 60 s at 2.1 (the first second at 1.4): 2.1 x 59 + 1.4 = 125.3 / 60 =
   * 2.088 -> 2.98 -> 3. */
  assert_int_equal(d.desired, 3);
  assert_int_equal(d.panic, 0);
  assert_true(fabs(d.stable_demand - 125.3 / 60) < 1e-9);
  assert_reason(&d, "stable: 60s demand 2.09 / 0.70 per instance");
  /* Half the window at 3.5: (2.1 x 30 + 3.5 x 30) / 60 = 2.8 -> 4. */
  for (int64_t t = 61; t <= 90; t++) step(&as, t, 3.5, 3, &d);
  assert_int_equal(d.desired, 4);
  assert_int_equal(d.panic, 0); /* 3.5 / 0.7 = 5 < 2 x 3 */
  /* The whole window at 3.5: 5. */
  for (int64_t t = 91; t <= 120; t++) step(&as, t, 3.5, 4, &d);
  assert_int_equal(d.desired, 5);
  assert_int_equal(as.len, 60);
  imp_as_free(&as);
}

/*
 * Panic: entered when the 6 s window asks for >= 2 x ready, holds the
 * highest count (no scale-down) and ends a whole stable window (60 s) after
 * the condition last held.
 */
static void test_panic(void **state) {
  (void)state;
  imp_as_cfg_t cfg;
  imp_as_t as;
  init_reactive(&as, &cfg);
  imp_as_decision_t d;
  for (int64_t t = 1; t <= 60; t++)
    assert_int_equal(step(&as, t, 1.4, 2, &d), 2);
  /* t=61: panic window (5 x 1.4 + 5.6) / 6 = 2.1 -> 3 = 1.5 x ready: no
   * panic; stable (59 x 1.4 + 5.6) / 60 = 1.47 -> 3. */
  assert_int_equal(step(&as, 61, 5.6, 2, &d), 3);
  assert_int_equal(d.panic, 0);
  /* t=62: (4 x 1.4 + 2 x 5.6) / 6 = 2.8 -> 4 = 2 x 2 ready: panic. */
  assert_int_equal(step(&as, 62, 5.6, 2, &d), 4);
  assert_int_equal(d.panic, 1);
  assert_int_equal(d.why, IMP_AS_WHY_PANIC);
  assert_reason(&d, "panic: 6s demand 4.0 >= 2x 2 ready");
  /* The panic window fills with 5.6: 5, 6, 7, 8 (= 5.6 / 0.7). */
  assert_int_equal(step(&as, 63, 5.6, 2, &d), 5);
  assert_int_equal(step(&as, 64, 5.6, 2, &d), 6);
  assert_int_equal(step(&as, 65, 5.6, 2, &d), 7);
  assert_int_equal(step(&as, 66, 5.6, 2, &d), 8); /* last time over */
  /* Demand falls back; 8 ready. No scale-down while panicking, although
   * the stable window alone would ask for 3 and then 2. */
  for (int64_t t = 67; t <= 125; t++) {
    assert_int_equal(step(&as, t, 1.4, 8, &d), 8);
    assert_int_equal(d.panic, 1);
  }
  assert_reason(&d, "panic: holding 8 until 60s calm");
  /* t=126 = 66 + 60: panic ends; stable 1.4 -> 2, but at most halving:
   * floor(8 / 2) = 4. Then 2. */
  assert_int_equal(step(&as, 126, 1.4, 8, &d), 4);
  assert_int_equal(d.panic, 0);
  assert_int_equal(d.why, IMP_AS_WHY_STABLE);
  assert_int_equal(step(&as, 127, 1.4, 4, &d), 2);
  assert_int_equal(step(&as, 128, 1.4, 2, &d), 2);
  imp_as_free(&as);
}

/* Scale-up at most ceil(rate x ready), scale-down at least floor(ready /
 * rate). */
static void test_rate_limits(void **state) {
  (void)state;
  imp_as_cfg_t cfg;
  reactive_cfg(&cfg);
  cfg.max_scale_up_rate = 2.0;
  imp_as_t as;
  assert_int_equal(imp_as_init(&as, &cfg), 0);
  imp_as_decision_t d;
  /* 70 in flight wants 100; from 3 ready at most 6, then 12, 24, 48, 96,
   * 100 (in panic, each step holds the highest). */
  uint32_t ready = 3;
  const uint32_t want[] = {6, 12, 24, 48, 96, 100, 100};
  for (size_t i = 0; i < N_OF(want); i++) {
    assert_int_equal(step(&as, (int64_t)i + 1, 70.0, ready, &d), want[i]);
    ready = d.desired;
  }
  assert_int_equal(d.panic, 1);
  imp_as_free(&as);

  /* Down: 10 ready, demand for 1: 5, then 2, then 1. */
  init_reactive(&as, &cfg);
  assert_int_equal(step(&as, 1, 0.7, 10, &d), 5);
  assert_int_equal(d.panic, 0);
  assert_int_equal(step(&as, 2, 0.7, 5, &d), 2);
  assert_int_equal(step(&as, 3, 0.7, 2, &d), 1);
  assert_int_equal(step(&as, 4, 0.7, 1, &d), 1);
  /* A scale-down rate of 4: from 10 straight to floor(10 / 4) = 2. */
  imp_as_free(&as);
  cfg.max_scale_down_rate = 4.0;
  assert_int_equal(imp_as_init(&as, &cfg), 0);
  assert_int_equal(step(&as, 1, 0.7, 10, &d), 2);
  imp_as_free(&as);
}

/* Zero only after the grace without calls, and at the scale-down rate. */
static void test_scale_to_zero(void **state) {
  (void)state;
  imp_as_cfg_t cfg;
  imp_as_t as;
  imp_as_decision_t d;
  init_reactive(&as, &cfg);
  /* Never called: zero from the start. */
  assert_int_equal(imp_as_decide(&as, 5000, 0, NULL, &d), 0);
  assert_reason(&d, "scale-to-zero: never called");
  for (int64_t t = 1; t <= 10; t++)
    assert_int_equal(step(&as, t, 0.5, 1, &d), 1);
  for (int64_t t = 11; t <= 39; t++)
    assert_int_equal(step(&as, t, 0.0, 1, &d), 1);
  assert_int_equal(d.idle_ms, 29000);
  /* t=40: idle 30 s >= 30 s. */
  assert_int_equal(step(&as, 40, 0.0, 1, &d), 0);
  assert_int_equal(d.why, IMP_AS_WHY_ZERO);
  assert_reason(&d, "scale-to-zero: idle 30s >= 30s");
  /* From 4 instances: 2, 1, 0. */
  assert_int_equal(step(&as, 41, 0.0, 4, &d), 2);
  assert_int_equal(step(&as, 42, 0.0, 2, &d), 1);
  assert_int_equal(step(&as, 43, 0.0, 1, &d), 0);
  /* A call again: back to 1. */
  assert_int_equal(step(&as, 44, 0.3, 0, &d), 1);
  imp_as_free(&as);

  /* A grace longer than the stable window: the window empties at t=70 but
   * one instance stays until idle 120 s. */
  cfg.scale_to_zero_after_s = 120;
  assert_int_equal(imp_as_init(&as, &cfg), 0);
  for (int64_t t = 1; t <= 10; t++) step(&as, t, 0.5, 1, &d);
  for (int64_t t = 11; t <= 129; t++) {
    assert_int_equal(step(&as, t, 0.0, 1, &d), 1);
    if (t == 70) {
      assert_true(d.stable_demand == 0.0);
      assert_int_equal(d.why, IMP_AS_WHY_HOLD_IDLE);
      assert_reason(&d, "idle 60s < 120s: keep 1");
    }
  }
  assert_int_equal(step(&as, 130, 0.0, 1, &d), 0);
  imp_as_free(&as);

  /* Seconds never recorded count as seconds without calls, in the
   * windows as in the grace. */
  cfg.scale_to_zero_after_s = 30;
  assert_int_equal(imp_as_init(&as, &cfg), 0);
  for (int64_t t = 1; t <= 10; t++) step(&as, t, 2.1, 3, &d);
  assert_int_equal(d.desired, 3);
  /* At 39 s: 10 s of 2.1 over a window of 39 s: 0.54 -> 1. */
  assert_int_equal(imp_as_decide(&as, 39000, 1, NULL, &d), 1);
  assert_true(fabs(d.stable_demand - 21.0 / 39.0) < 1e-12);
  assert_true(d.panic_demand == 0.0);
  assert_int_equal(imp_as_decide(&as, 40000, 1, NULL, &d), 0);
  /* 100 s on, the 10 busy seconds left the 60 s window. */
  assert_int_equal(imp_as_decide(&as, 70000, 0, NULL, &d), 0);
  assert_true(d.stable_demand == 0.0);
  imp_as_free(&as);
}

/* desired >= ceil(lag / threshold), capped at the partitions; the result
 * is clamp(max(terms), min, max). */
static void test_lag(void **state) {
  (void)state;
  imp_as_cfg_t cfg;
  imp_as_t as;
  imp_as_decision_t d;
  init_reactive(&as, &cfg);
  assert_int_equal(step_lag(&as, 1, 0.0, 1200, 0, &d), 12);
  assert_int_equal(d.lag, 12);
  assert_int_equal(d.why, IMP_AS_WHY_LAG);
  assert_reason(&d, "lag 1200/100");
  /* (ready drives the reactive floor: from 12 it would hold 6) */
  assert_int_equal(step_lag(&as, 2, 0.0, 150, 2, &d), 2);
  assert_int_equal(step_lag(&as, 3, 0.0, 1, 2, &d), 1);
  assert_int_equal(step_lag(&as, 4, 0.0, 100, 1, &d), 1);
  assert_int_equal(step_lag(&as, 5, 0.0, 101, 1, &d), 2);
  imp_as_free(&as);

  /* Per-partition ordering: at most one instance per partition. */
  cfg.lag_partitions = 8;
  assert_int_equal(imp_as_init(&as, &cfg), 0);
  assert_int_equal(step_lag(&as, 1, 0.0, 1200, 0, &d), 8);
  assert_reason(&d, "lag 1200/100 capped at 8 partitions");
  assert_int_equal(step_lag(&as, 2, 0.0, 500, 8, &d), 5);
  imp_as_free(&as);

  /* Combined with the reactive term: the larger wins. */
  cfg.lag_partitions = 0;
  assert_int_equal(imp_as_init(&as, &cfg), 0);
  for (int64_t t = 1; t <= 60; t++) step_lag(&as, t, 2.1, 300, 3, &d);
  assert_int_equal(d.reactive, 3);
  assert_int_equal(d.lag, 3);
  assert_int_equal(d.desired, 3);
  assert_int_equal(step_lag(&as, 61, 2.1, 1000, 3, &d), 10);
  assert_int_equal(step_lag(&as, 62, 2.1, 0, 10, &d), 5); /* halving */
  assert_int_equal(d.lag, 0);
  imp_as_free(&as);

  /* Bounds: min and max apply last. */
  cfg.min_instances = 3;
  cfg.max_instances = 10;
  assert_int_equal(imp_as_init(&as, &cfg), 0);
  assert_int_equal(step_lag(&as, 1, 0.0, 0, 0, &d), 3);
  assert_int_equal(d.why, IMP_AS_WHY_MIN);
  assert_reason(&d, "min 3 instances");
  assert_int_equal(step_lag(&as, 2, 0.0, 5000, 3, &d), 10);
  assert_int_equal(d.wanted, 50);
  assert_int_equal(d.why, IMP_AS_WHY_MAX);
  assert_reason(&d, "max 10 instances (wanted 50)");
  imp_as_free(&as);
}

/* Erlang B servers, priced: exact counts. */
static void test_erlang(void **state) {
  (void)state;
  /* A = 1: B(n) = 0.5, 0.2, 0.0625, 0.0154, 0.00307, 0.000511; with calls
   * of 1 s and a cold start worth 1200 s a server pays while
   * B(n) - B(n+1) > 1 / 1201: up to 6. */
  assert_int_equal(imp_as_erlang_servers(1.0, 1.0, 1200.0, 1000), 6);
  /* Free cold starts: only the mean load. */
  assert_int_equal(imp_as_erlang_servers(1.0, 1.0, 0.0, 1000), 1);
  assert_int_equal(imp_as_erlang_servers(10.0, 0.2, 1200.0, 1000), 26);
  assert_int_equal(imp_as_erlang_servers(1000.0, 1.0, 1e4, 50), 50);
  assert_int_equal(imp_as_erlang_servers(0.0, 1.0, 1200.0, 1000), 0);
  assert_int_equal(imp_as_erlang_servers(1.0, 0.0, 1200.0, 1000), 0);
}

/* 60 calls a minute of 1 s each: Little's law says 1 in flight, 2
 * instances at 0.7; the priced Erlang term 6. The predictive policy takes
 * it one cold start ahead, the reactive one ignores the predictor. */
static void test_predictive(void **state) {
  (void)state;
  imp_pred_t *p = malloc(sizeof *p);
  assert_non_null(p);
  imp_pred_init(p, NULL);
  for (int64_t m = 0; m < 30; m++) {
    imp_pred_observe(p, m * 60000 + 30000, 60);
    imp_pred_advance(p, (m + 1) * 60000);
  }
  imp_as_cfg_t cfg;
  imp_as_cfg_default(&cfg);
  assert_int_equal(cfg.policy, IMP_AS_PREDICTIVE);
  imp_as_t as;
  assert_int_equal(imp_as_init(&as, &cfg), 0);
  imp_as_sample_t s;
  memset(&s, 0, sizeof s);
  s.t_ms = 1800000;
  s.inflight = 1.0;
  s.arrivals = 1;
  s.completions = 5;
  s.duration_ms = 1000.0;
  s.lag = -1;
  imp_as_record(&as, &s);
  imp_as_decision_t d;
  assert_int_equal(imp_as_decide(&as, 1800000, 1, p, &d), 6);
  assert_true(d.forecast_per_min == 60.0);
  assert_true(d.duration_ms == 1000.0);
  assert_int_equal(d.reactive, 2);
  assert_int_equal(d.predictive, 6);
  assert_int_equal(d.warm, 1);
  assert_int_equal(d.why, IMP_AS_WHY_PREDICTIVE);
  assert_reason(&d, "predictive: forecast 60/min in 1s lead x 1000ms");
  imp_as_free(&as);

  cfg.policy = IMP_AS_REACTIVE;
  assert_int_equal(imp_as_init(&as, &cfg), 0);
  imp_as_record(&as, &s);
  assert_int_equal(imp_as_decide(&as, 1800000, 1, p, &d), 2);
  assert_int_equal(d.predictive, 0);
  assert_int_equal(d.warm, 0);
  imp_as_free(&as);

  /* Sparse: one call every 10 minutes, nothing for the forecast to work
   * with; the histogram pre-warms one instance for the next call and
   * gives it back after it (the idle grace shrinks to the panic window). */
  imp_pred_init(p, NULL);
  for (int64_t m = 0; m <= 60; m += 10) {
    imp_pred_observe(p, m * 60000 + 55000, 1);
    imp_pred_advance(p, (m + 1) * 60000);
  }
  cfg.policy = IMP_AS_PREDICTIVE;
  assert_int_equal(imp_as_init(&as, &cfg), 0);
  s.t_ms = 3656000; /* the call at minute 60 + 55 s */
  s.inflight = 0.1;
  s.completions = 1;
  s.duration_ms = 100.0;
  imp_as_record(&as, &s);
  assert_int_equal(imp_as_decide(&as, 3656000, 1, p, &d), 1); /* same minute */
  assert_int_equal(d.predictive, 0);
  /* 7 s later, past the minute: no call for 7 s >= the 6 s panic window,
   * where the reactive policy alone would wait 30 s. */
  assert_int_equal(imp_as_decide(&as, 3663000, 1, p, &d), 0);
  assert_int_equal(d.why, IMP_AS_WHY_ZERO);
  assert_reason(&d, "scale-to-zero: idle 7s >= 6s");
  /* Pre-warm: bin 9, warm from 9.5 min after the start of minute 60. */
  assert_int_equal(imp_as_decide(&as, 3600000 + 568000, 0, p, &d), 0);
  assert_int_equal(imp_as_decide(&as, 3600000 + 570000, 0, p, &d), 1);
  assert_int_equal(d.why, IMP_AS_WHY_WARM);
  assert_reason(&d, "warm: histogram 9.5-11.6m after last call");
  imp_as_free(&as);
  free(p);
}

/* Skipped seconds are zeros; a second recorded twice is merged. */
static void test_record(void **state) {
  (void)state;
  imp_as_t as;
  assert_int_equal(imp_as_init(&as, NULL), 0);
  imp_as_sample_t s;
  memset(&s, 0, sizeof s);
  s.lag = -1;
  s.t_ms = 5000;
  s.inflight = 1.0;
  s.arrivals = 2;
  imp_as_record(&as, &s);
  s.t_ms = 5500; /* same second */
  s.inflight = 2.0;
  s.arrivals = 3;
  imp_as_record(&as, &s);
  assert_int_equal(as.len, 1);
  assert_int_equal(as.ring[0].arrivals, 5);
  assert_int_equal(as.stable_sum, 2000000);
  s.t_ms = 9000; /* seconds 6, 7, 8 skipped */
  s.inflight = 1.0;
  s.arrivals = 1;
  imp_as_record(&as, &s);
  assert_int_equal(as.len, 5);
  imp_as_decision_t d;
  imp_as_decide(&as, 9000, 1, NULL, &d);
  assert_true(fabs(d.stable_demand - 0.6) < 1e-12);
  assert_true(fabs(d.panic_demand - 0.6) < 1e-12);
  /* A gap longer than the ring resets it to zeros: no drift. */
  s.t_ms = 1000000;
  s.inflight = 0.0;
  s.arrivals = 0;
  imp_as_record(&as, &s);
  assert_int_equal(as.len, 60);
  assert_int_equal(as.stable_sum, 0);
  assert_int_equal(as.panic_sum, 0);
  imp_as_free(&as);
}

/* Reconfiguring keeps the newest samples the new window holds. */
static void test_reconfigure(void **state) {
  (void)state;
  imp_as_cfg_t cfg;
  imp_as_t as;
  init_reactive(&as, &cfg);
  imp_as_decision_t d;
  for (int64_t t = 1; t <= 30; t++) step(&as, t, 0.7, 2, &d);
  for (int64_t t = 31; t <= 60; t++) step(&as, t, 2.1, 2, &d);
  assert_int_equal(d.desired, 2); /* average 1.4 */
  cfg.stable_window_s = 30;
  assert_int_equal(imp_as_reconfigure(&as, &cfg), 0);
  assert_int_equal(as.cap, 30);
  assert_int_equal(as.len, 30);
  assert_int_equal(imp_as_decide(&as, 60000, 3, NULL, &d), 3); /* 2.1 */
  assert_int_equal(step(&as, 61, 2.1, 3, &d), 3);
  cfg.panic_window_s = 31;
  assert_int_equal(imp_as_reconfigure(&as, &cfg), -EINVAL);
  assert_int_equal(as.cap, 30);
  imp_as_free(&as);
  imp_as_free(&as); /* twice is harmless */
}

static void test_cfg_check(void **state) {
  (void)state;
  imp_as_cfg_t c;
  imp_as_cfg_default(&c);
  assert_int_equal(imp_as_cfg_check(&c), 0);
  /* The defaults with one thing wrong each. */
  imp_as_cfg_t bad[6];
  for (size_t i = 0; i < N_OF(bad); i++) imp_as_cfg_default(&bad[i]);
  bad[0].panic_window_s = 61;
  bad[1].min_instances = 5;
  bad[1].max_instances = 4;
  bad[2].target_utilization = 0.0;
  bad[3].max_scale_down_rate = 1.0;
  bad[4].stable_window_s = IMP_AS_MAX_WINDOW_S + 1;
  bad[5].target_concurrency = NAN;
  for (size_t i = 0; i < N_OF(bad); i++)
    assert_int_equal(imp_as_cfg_check(&bad[i]), -EINVAL);
  /* One of them is refused at init too, with nothing allocated. */
  c.target_concurrency = NAN;
  imp_as_t as;
  assert_int_equal(imp_as_init(&as, &c), -EINVAL);
  assert_null(as.ring);
  imp_as_free(&as);
}

/* The pool: clamp(ceil(max(recent, smoothed, forecast) x refill x 1.5),
 * 2, 64). */
static void test_pool(void **state) {
  (void)state;
  imp_as_pool_t pool;
  assert_int_equal(imp_as_pool_init(&pool, NULL), 0);
  assert_int_equal(imp_as_pool_target(&pool, 0, NULL), 2); /* floor */
  /* 30 starts in second 100: 3/s over the 10 s window -> 4.5 -> 5. */
  imp_as_pool_record(&pool, 100000, 30);
  assert_int_equal(imp_as_pool_target(&pool, 100500, NULL), 5);
  imp_as_pool_record(&pool, 101000, 0);
  assert_int_equal(imp_as_pool_target(&pool, 109999, NULL), 5);
  /* Out of the window: the smoothed rate alone (about 0.25/s): floor. */
  imp_as_pool_record(&pool, 115000, 0);
  assert_int_equal(imp_as_pool_target(&pool, 115000, NULL), 2);
  /* A storm: capped. */
  imp_as_pool_record(&pool, 200000, 1000);
  assert_int_equal(imp_as_pool_target(&pool, 200000, NULL), 64);
  /* A forecast of 600 starts a minute: 10/s -> 15. */
  imp_pred_t *p = malloc(sizeof *p);
  assert_non_null(p);
  imp_pred_init(p, NULL);
  for (int64_t m = 0; m < 10; m++) {
    imp_pred_observe(p, m * 60000 + 1000, 600);
    imp_pred_advance(p, (m + 1) * 60000);
  }
  imp_as_pool_init(&pool, NULL);
  assert_int_equal(imp_as_pool_target(&pool, 600000, p), 15);
  free(p);
  /* Bad settings are refused. */
  imp_as_pool_cfg_t pc;
  imp_as_pool_cfg_default(&pc);
  pc.floor = 10;
  pc.cap = 5;
  assert_int_equal(imp_as_pool_init(&pool, &pc), -EINVAL);
}

TEST_MAIN("unit_autoscaler", NULL, NULL, cmocka_unit_test(test_stable_window),
          cmocka_unit_test(test_panic), cmocka_unit_test(test_rate_limits),
          cmocka_unit_test(test_scale_to_zero), cmocka_unit_test(test_lag),
          cmocka_unit_test(test_erlang), cmocka_unit_test(test_predictive),
          cmocka_unit_test(test_record), cmocka_unit_test(test_reconfigure),
          cmocka_unit_test(test_cfg_check), cmocka_unit_test(test_pool))
