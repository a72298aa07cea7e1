#include "policy/autoscaler.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MICRO 1e6      /* demand is summed in micro-calls: exact sums */
#define MAX_DEMAND 1e9 /* calls; a larger sample is clamped */
#define EPS 1e-9       /* ceil(0.7 / 0.7) must be 1, not 2 */

void imp_as_cfg_default(imp_as_cfg_t *cfg) {
  memset(cfg, 0, sizeof *cfg);
  cfg->policy = IMP_AS_PREDICTIVE;
  cfg->target_concurrency = 1.0;
  cfg->target_utilization = 0.7;
  cfg->stable_window_s = 60;
  cfg->panic_window_s = 6;
  cfg->panic_threshold = 2.0;
  cfg->max_scale_up_rate = 1000.0;
  cfg->max_scale_down_rate = 2.0;
  cfg->scale_to_zero_after_s = 30;
  cfg->min_instances = 0;
  cfg->max_instances = 1000;
  cfg->lag_threshold = 100.0;
  cfg->lag_partitions = 0;
  cfg->cold_start_ms = 1000;
  cfg->default_duration_ms = 100.0;
  cfg->dense_per_min = 2.0;
  cfg->dense_activity = 0.3;
  cfg->cold_cost_s = 1200.0;
}

int imp_as_cfg_check(const imp_as_cfg_t *cfg) {
  if (cfg->policy != IMP_AS_REACTIVE && cfg->policy != IMP_AS_PREDICTIVE)
    return -EINVAL;
  if (!(cfg->target_concurrency > 0.0 && cfg->target_concurrency <= 1e6))
    return -EINVAL;
  if (!(cfg->target_utilization > 0.0 && cfg->target_utilization <= 1.0))
    return -EINVAL;
  if (cfg->stable_window_s < 1 || cfg->stable_window_s > IMP_AS_MAX_WINDOW_S)
    return -EINVAL;
  if (cfg->panic_window_s < 1 || cfg->panic_window_s > cfg->stable_window_s)
    return -EINVAL;
  if (!(cfg->panic_threshold >= 1.0 && cfg->panic_threshold <= 1e6))
    return -EINVAL;
  if (!(cfg->max_scale_up_rate > 1.0 && cfg->max_scale_up_rate <= 1e6))
    return -EINVAL;
  if (!(cfg->max_scale_down_rate > 1.0 && cfg->max_scale_down_rate <= 1e6))
    return -EINVAL;
  if (cfg->scale_to_zero_after_s > 7 * 86400) return -EINVAL;
  if (cfg->max_instances < 1 || cfg->max_instances > IMP_AS_MAX_INSTANCES ||
      cfg->min_instances > cfg->max_instances)
    return -EINVAL;
  if (!(cfg->lag_threshold >= 1.0 && cfg->lag_threshold <= 1e12))
    return -EINVAL;
  if (cfg->cold_start_ms > 3600 * 1000) return -EINVAL;
  if (!(cfg->default_duration_ms > 0.0 && cfg->default_duration_ms <= 864e5))
    return -EINVAL;
  if (!(cfg->dense_per_min >= 0.0 && cfg->dense_per_min <= 1e9)) return -EINVAL;
  if (!(cfg->cold_cost_s >= 0.0 && cfg->cold_cost_s <= 86400.0)) return -EINVAL;
  if (!(cfg->dense_activity >= 0.0 && cfg->dense_activity <= 1.0))
    return -EINVAL;
  return 0;
}

static void reset_history(imp_as_t *as) {
  as->len = as->head = 0;
  as->second = INT64_MIN;
  as->stable_sum = as->panic_sum = 0;
}

int imp_as_init(imp_as_t *as, const imp_as_cfg_t *cfg) {
  imp_as_cfg_t def;
  memset(as, 0, sizeof *as);
  if (cfg == NULL) {
    imp_as_cfg_default(&def);
    cfg = &def;
  }
  int rc = imp_as_cfg_check(cfg);
  if (rc != 0) return rc;
  as->ring = calloc(cfg->stable_window_s, sizeof *as->ring);
  if (as->ring == NULL) return -ENOMEM;
  as->cfg = *cfg;
  as->cap = cfg->stable_window_s;
  reset_history(as);
  as->last_active_ms = INT64_MIN;
  as->panic_over_ms = INT64_MIN;
  as->last.idle_ms = -1;
  as->last.lag_records = -1;
  return 0;
}

void imp_as_free(imp_as_t *as) {
  free(as->ring);
  as->ring = NULL;
  as->cap = 0;
  reset_history(as);
}

/* Demand of a sample in micro-calls: in flight plus queued. The same sample
 * always gives the same integer, so subtracting it later is exact. */
static int64_t demand_u(const imp_as_sample_t *s) {
  double d = s->inflight + (double)s->queue_len;
  if (!(d > 0.0)) return 0; /* also NaN */
  if (d > MAX_DEMAND) d = MAX_DEMAND;
  return (int64_t)llround(d * MICRO);
}

/* The sample `back` seconds before the newest (0 = newest). */
static const imp_as_sample_t *at_back(const imp_as_t *as, uint32_t back) {
  return &as->ring[(as->head + as->cap - 1 - back) % as->cap];
}

static void push(imp_as_t *as, const imp_as_sample_t *s) {
  int64_t d = demand_u(s);
  uint32_t pw = as->cfg.panic_window_s;
  /* What leaves the windows: the oldest sample when the ring is full, and
   * the one panic_window seconds back. */
  if (as->len >= pw) as->panic_sum -= demand_u(at_back(as, pw - 1));
  if (as->len == as->cap) as->stable_sum -= demand_u(&as->ring[as->head]);
  as->ring[as->head] = *s;
  as->head = (as->head + 1) % as->cap;
  if (as->len < as->cap) as->len++;
  as->stable_sum += d;
  as->panic_sum += d;
}

int imp_as_reconfigure(imp_as_t *as, const imp_as_cfg_t *cfg) {
  int rc = imp_as_cfg_check(cfg);
  if (rc != 0) return rc;
  imp_as_sample_t *ring = calloc(cfg->stable_window_s, sizeof *ring);
  if (ring == NULL) return -ENOMEM;
  /* Replay the newest samples into the new ring, oldest first. */
  uint32_t keep =
      as->len < cfg->stable_window_s ? as->len : cfg->stable_window_s;
  imp_as_sample_t *old = as->ring;
  uint32_t old_cap = as->cap, old_head = as->head;
  int64_t second = as->second;
  as->ring = ring;
  as->cap = cfg->stable_window_s;
  as->cfg = *cfg;
  reset_history(as);
  for (uint32_t i = keep; i > 0; i--)
    push(as, &old[(old_head + old_cap - i) % old_cap]);
  as->second = keep > 0 ? second : INT64_MIN;
  free(old);
  if (as->panicking == 0) as->panic_max = 0;
  return 0;
}

static int64_t floor_div(int64_t a, int64_t b) {
  int64_t q = a / b;
  if (a % b < 0) q--;
  return q;
}

void imp_as_record(imp_as_t *as, const imp_as_sample_t *s) {
  int64_t sec = floor_div(s->t_ms, 1000);
  imp_as_sample_t cur = *s;
  if (as->second != INT64_MIN && sec <= as->second) {
    /* Same (or an older) second again: merge into the newest. */
    imp_as_sample_t *n = &as->ring[(as->head + as->cap - 1) % as->cap];
    int64_t before = demand_u(n);
    cur.arrivals = n->arrivals > UINT32_MAX - cur.arrivals
                       ? UINT32_MAX
                       : n->arrivals + cur.arrivals;
    cur.completions = n->completions > UINT32_MAX - cur.completions
                          ? UINT32_MAX
                          : n->completions + cur.completions;
    cur.t_ms = n->t_ms;
    *n = cur;
    int64_t after = demand_u(n);
    as->stable_sum += after - before;
    as->panic_sum += after - before;
  } else {
    if (as->second != INT64_MIN) {
      /* Skipped seconds had no calls: push zeros, at most a ring's worth. */
      int64_t gap = sec - as->second - 1;
      if (gap > (int64_t)as->cap) gap = as->cap;
      imp_as_sample_t zero;
      memset(&zero, 0, sizeof zero);
      zero.lag = -1;
      for (int64_t i = gap; i > 0; i--) {
        zero.t_ms = (sec - i) * 1000;
        push(as, &zero);
      }
    }
    push(as, &cur);
    as->second = sec;
  }
  if (demand_u(s) > 0 || s->arrivals > 0 || s->lag > 0)
    as->last_active_ms = s->t_ms;
  if (s->completions > 0 && isfinite(s->duration_ms) && s->duration_ms >= 0.0 &&
      s->duration_ms <= 864e5) {
    /* Smoothed mean, weighted by how many calls the sample saw. */
    double w = 1.0 - pow(0.95, (double)s->completions);
    as->duration_ms =
        as->duration_ms > 0.0
            ? as->duration_ms + w * (s->duration_ms - as->duration_ms)
            : s->duration_ms;
  }
}

/*
 * Mean demand over the stable and panic windows ending at `now_ms`. The
 * running sums end at the newest sample; seconds after it that were never
 * recorded (a late tick) count as seconds without calls.
 */
static void window_demand(const imp_as_t *as, int64_t now_ms, double *stable,
                          double *panic) {
  uint32_t sw = as->cap, pw = as->cfg.panic_window_s;
  int64_t stale = 0;
  if (as->second != INT64_MIN) {
    stale = floor_div(now_ms, 1000) - as->second;
    if (stale < 0) stale = 0;
  }
  int64_t s_sum = as->stable_sum, p_sum = as->panic_sum;
  if (stale > 0) {
    /* Sum only the samples still inside each window. */
    s_sum = p_sum = 0;
    for (uint32_t back = 0; back < as->len; back++) {
      if ((int64_t)back + stale >= (int64_t)sw) break;
      int64_t v = demand_u(at_back(as, back));
      s_sum += v;
      if ((int64_t)back + stale < (int64_t)pw) p_sum += v;
    }
  }
  int64_t ns = (int64_t)as->len + stale, np = ns;
  if (ns > (int64_t)sw) ns = sw;
  if (np > (int64_t)pw) np = pw;
  *stable = ns ? (double)s_sum / MICRO / (double)ns : 0.0;
  *panic = np ? (double)p_sum / MICRO / (double)np : 0.0;
}

/* ceil() that forgives rounding: ceil(0.7 / 0.7) is 1. */
static double ceil_eps(double x) {
  return ceil(x - EPS);
}

static uint32_t to_count(double x) {
  if (!(x > 0.0)) return 0;
  if (x >= (double)IMP_AS_MAX_INSTANCES) return IMP_AS_MAX_INSTANCES;
  return (uint32_t)x;
}

uint32_t imp_as_decide(imp_as_t *as, int64_t now_ms, uint32_t ready,
                       const imp_pred_t *pred, imp_as_decision_t *out) {
  const imp_as_cfg_t *cfg = &as->cfg;
  imp_as_decision_t d;
  memset(&d, 0, sizeof d);
  d.t_ms = now_ms;
  d.ready = ready;
  d.target = cfg->target_concurrency * cfg->target_utilization;
  d.panic_threshold = cfg->panic_threshold;
  d.stable_window_s = cfg->stable_window_s;
  d.panic_window_s = cfg->panic_window_s;
  d.grace_s = cfg->scale_to_zero_after_s;
  d.lead_ms = cfg->cold_start_ms;
  d.lag_threshold = cfg->lag_threshold;
  d.lag_partitions = cfg->lag_partitions;
  d.lag_records = -1;

  /* ---- reactive: KPA ---- */
  window_demand(as, now_ms, &d.stable_demand, &d.panic_demand);
  double r = ready > 0 ? (double)ready : 1.0;
  double max_up = ceil(cfg->max_scale_up_rate * r);
  double max_down = floor(r / cfg->max_scale_down_rate);
  double dspc = ceil_eps(d.stable_demand / d.target);
  double dppc = ceil_eps(d.panic_demand / d.target);
  double stable = fmin(fmax(dspc, max_down), max_up);
  double panic = fmin(fmax(dppc, max_down), max_up);
  int over = dppc / r >= cfg->panic_threshold;
  if (over) {
    if (!as->panicking) {
      as->panicking = 1;
      as->panic_max = as->last.reactive; /* never below what we had */
    }
    as->panic_over_ms = now_ms;
  } else if (as->panicking && now_ms - as->panic_over_ms >=
                                  (int64_t)cfg->stable_window_s * 1000) {
    as->panicking = 0;
    as->panic_max = 0;
  }
  /* ---- predictive inputs: forecast one lead ahead, and the histogram ---- */
  int sparse_drop = 0;
  d.duration_ms =
      as->duration_ms > 0.0 ? as->duration_ms : cfg->default_duration_ms;
  if (cfg->policy == IMP_AS_PREDICTIVE && pred != NULL) {
    int64_t at = now_ms + cfg->cold_start_ms;
    d.forecast_per_min = imp_pred_forecast(pred, at);
    if (d.forecast_per_min >= cfg->dense_per_min && d.forecast_per_min > 0.0 &&
        imp_pred_activity(pred) >= cfg->dense_activity) {
      /* Little's law: calls in flight = rate x duration; and since a call
       * that finds every instance busy is a cold start, as many more as
       * the loss system (Erlang B) says pay for themselves. */
      double load = d.forecast_per_min / 60.0 * d.duration_ms / 1000.0;
      double little = ceil_eps(load / d.target);
      uint32_t servers = imp_as_erlang_servers(
          load, d.duration_ms / 1000.0, cfg->cold_cost_s,
          to_count(cfg->max_instances * cfg->target_concurrency));
      double erlang = ceil_eps(servers / cfg->target_concurrency);
      d.predictive = to_count(fmax(little, erlang));
      if (d.predictive == 0) d.predictive = 1;
    }
    imp_pred_window_t w;
    d.warm = imp_as_warm(as, pred, at, &w);
    d.warm_kind = w.kind;
    d.prewarm_ms = w.prewarm_ms;
    d.keepalive_ms = w.keepalive_ms;
    /* A sparse function whose histogram says the next call is minutes (or
     * hours) away gains nothing from a long idle grace: the pre-warm brings
     * an instance back in time. The grace shrinks to the panic window, so
     * that a burst still keeps its instances. */
    sparse_drop = d.predictive == 0 &&
                  (w.kind == IMP_PRED_WIN_HIST || w.kind == IMP_PRED_WIN_OOB);
  }

  d.idle_ms =
      as->last_active_ms == INT64_MIN ? -1 : now_ms - as->last_active_ms;
  if (d.idle_ms < 0 && as->last_active_ms != INT64_MIN) d.idle_ms = 0;
  uint32_t reactive;
  if (as->panicking) {
    if (to_count(panic) > as->panic_max) as->panic_max = to_count(panic);
    reactive = as->panic_max;
    d.why = IMP_AS_WHY_PANIC;
  } else {
    reactive = to_count(stable);
    d.why = IMP_AS_WHY_STABLE;
    /* Scale to zero only after the grace without any call; inside it keep
     * one instance even if the windows average to nothing. */
    int64_t grace = (int64_t)cfg->scale_to_zero_after_s * 1000;
    if (sparse_drop && cfg->panic_window_s < cfg->scale_to_zero_after_s) {
      d.grace_s = cfg->panic_window_s;
      grace = (int64_t)cfg->panic_window_s * 1000;
    }
    if (d.idle_ms < 0 || d.idle_ms >= grace) {
      reactive = to_count(max_down); /* toward zero at the scale-down rate */
      d.why = IMP_AS_WHY_ZERO;
    } else if (reactive == 0) {
      reactive = 1;
      d.why = IMP_AS_WHY_HOLD_IDLE;
    }
  }
  d.panic = as->panicking;
  d.reactive = reactive;

  /* ---- lag of the trigger(s) feeding the function ---- */
  if (as->second != INT64_MIN) {
    int64_t lag = at_back(as, 0)->lag;
    if (lag >= 0) {
      d.lag_records = lag;
      d.lag = to_count(ceil_eps((double)lag / cfg->lag_threshold));
      if (cfg->lag_partitions > 0 && d.lag > cfg->lag_partitions)
        d.lag = cfg->lag_partitions;
    }
  }

  /* ---- combined ---- */
  uint32_t want = reactive;
  if (d.predictive > want) {
    want = d.predictive;
    d.why = IMP_AS_WHY_PREDICTIVE;
  }
  if (d.warm > want) {
    want = d.warm;
    d.why = IMP_AS_WHY_WARM;
  }
  if (d.lag > want) {
    want = d.lag;
    d.why = IMP_AS_WHY_LAG;
  }
  d.wanted = want;
  if (want < cfg->min_instances) {
    want = cfg->min_instances;
    d.why = IMP_AS_WHY_MIN;
  } else if (want > cfg->max_instances) {
    want = cfg->max_instances;
    d.why = IMP_AS_WHY_MAX;
  }
  d.desired = want;
  as->last = d;
  if (out != NULL) *out = d;
  return want;
}

uint32_t imp_as_warm(const imp_as_t *as, const imp_pred_t *pred, int64_t at_ms,
                     imp_pred_window_t *w) {
  if (w != NULL) imp_pred_window(pred, w);
  uint32_t calls = imp_pred_warm_calls(pred, at_ms);
  if (calls == 0) return 0;
  uint32_t n = to_count(ceil_eps(calls / as->cfg.target_concurrency));
  return n > 0 ? n : 1;
}

uint32_t imp_as_erlang_servers(double load, double duration_s,
                               double cold_cost_s, uint32_t max) {
  if (!(load > 0.0) || !(duration_s > 0.0)) return 0;
  /* B(0) = 1, B(n + 1) = A B(n) / (n + 1 + A B(n)). With rate = A / d,
   * server n + 1 pays while (B(n) - B(n+1)) A (cost / d + 1) > 1. */
  double gain = load * (cold_cost_s / duration_s + 1.0);
  double b = 1.0;
  for (uint32_t n = 0; n < max; n++) {
    double next = load * b / ((double)(n + 1) + load * b);
    if ((b - next) * gain <= 1.0 && (double)n >= load) return n;
    b = next;
  }
  return max;
}

const char *imp_as_reason(const imp_as_decision_t *d, char *buf, size_t len) {
  if (len == 0) return buf;
  switch (d->why) {
    case IMP_AS_WHY_STABLE:
      snprintf(buf, len, "stable: %us demand %.2f / %.2f per instance",
               d->stable_window_s, d->stable_demand, d->target);
      break;
    case IMP_AS_WHY_PANIC:
      if (d->panic_demand / d->target / (d->ready ? d->ready : 1) >=
          d->panic_threshold)
        snprintf(buf, len, "panic: %us demand %.1f >= %gx %u ready",
                 d->panic_window_s, d->panic_demand / d->target,
                 d->panic_threshold, d->ready);
      else
        snprintf(buf, len, "panic: holding %u until %us calm", d->reactive,
                 d->stable_window_s);
      break;
    case IMP_AS_WHY_ZERO:
      if (d->idle_ms < 0)
        snprintf(buf, len, "scale-to-zero: never called");
      else
        snprintf(buf, len, "scale-to-zero: idle %llds >= %us",
                 (long long)(d->idle_ms / 1000), d->grace_s);
      break;
    case IMP_AS_WHY_HOLD_IDLE:
      snprintf(buf, len, "idle %llds < %us: keep 1",
               (long long)(d->idle_ms / 1000), d->grace_s);
      break;
    case IMP_AS_WHY_PREDICTIVE:
      snprintf(buf, len, "predictive: forecast %.0f/min in %.0fs lead x %.0fms",
               d->forecast_per_min, d->lead_ms / 1000.0, d->duration_ms);
      break;
    case IMP_AS_WHY_WARM:
      if (d->warm_kind == IMP_PRED_WIN_HIST)
        snprintf(buf, len, "warm: histogram %.1f-%.1fm after last call",
                 d->prewarm_ms / 60000.0, d->keepalive_ms / 60000.0);
      else
        snprintf(buf, len, "warm: %s keep-alive %.1fm",
                 imp_pred_window_name(d->warm_kind), d->keepalive_ms / 60000.0);
      break;
    case IMP_AS_WHY_LAG:
      if (d->lag_partitions > 0 && d->lag == d->lag_partitions)
        snprintf(buf, len, "lag %lld/%g capped at %u partitions",
                 (long long)d->lag_records, d->lag_threshold,
                 d->lag_partitions);
      else
        snprintf(buf, len, "lag %lld/%g", (long long)d->lag_records,
                 d->lag_threshold);
      break;
    case IMP_AS_WHY_MIN:
      snprintf(buf, len, "min %u instances", d->desired);
      break;
    case IMP_AS_WHY_MAX:
      snprintf(buf, len, "max %u instances (wanted %u)", d->desired, d->wanted);
      break;
    default: snprintf(buf, len, "?");
  }
  return buf;
}

/* ---- warm pool ----------------------------------------------------------- */

void imp_as_pool_cfg_default(imp_as_pool_cfg_t *cfg) {
  memset(cfg, 0, sizeof *cfg);
  cfg->refill_s = 1.0;
  cfg->headroom = 1.5;
  cfg->floor = 2;
  cfg->cap = 64;
  cfg->window_s = 10;
  cfg->ewma_s = 120.0;
}

int imp_as_pool_init(imp_as_pool_t *pool, const imp_as_pool_cfg_t *cfg) {
  imp_as_pool_cfg_t def;
  memset(pool, 0, sizeof *pool);
  if (cfg == NULL) {
    imp_as_pool_cfg_default(&def);
    cfg = &def;
  }
  if (!(cfg->refill_s > 0.0 && cfg->refill_s <= 3600.0) ||
      !(cfg->headroom >= 1.0 && cfg->headroom <= 100.0) ||
      cfg->floor > cfg->cap || cfg->cap > IMP_AS_MAX_INSTANCES ||
      cfg->window_s < 1 || cfg->window_s > IMP_AS_POOL_RING ||
      !(cfg->ewma_s >= 1.0 && cfg->ewma_s <= 86400.0)) {
    imp_as_pool_cfg_default(&pool->cfg);
    pool->second = INT64_MIN;
    return -EINVAL;
  }
  pool->cfg = *cfg;
  pool->second = INT64_MIN;
  return 0;
}

/* Closes the seconds up to `sec` (exclusive of `sec` itself, which opens). */
static void pool_advance(imp_as_pool_t *pool, int64_t sec) {
  if (pool->second == INT64_MIN) {
    pool->second = sec;
    return;
  }
  if (sec <= pool->second) return;
  double k = 1.0 - exp(-1.0 / pool->cfg.ewma_s);
  int64_t gap = sec - pool->second;
  /* The open second goes into the smoothed rate, then the silent ones. */
  pool->ewma +=
      k * ((double)pool->ring[pool->second % IMP_AS_POOL_RING] - pool->ewma);
  if (gap > 1) pool->ewma *= exp(-(double)(gap - 1) / pool->cfg.ewma_s);
  int64_t clear = gap < IMP_AS_POOL_RING ? gap : IMP_AS_POOL_RING;
  for (int64_t i = 0; i < clear; i++)
    pool->ring[(sec - i) % IMP_AS_POOL_RING] = 0;
  pool->second = sec;
}

void imp_as_pool_record(imp_as_pool_t *pool, int64_t now_ms, uint32_t starts) {
  int64_t sec = floor_div(now_ms, 1000);
  if (sec < 0) sec = 0;
  pool_advance(pool, sec);
  uint32_t *slot = &pool->ring[pool->second % IMP_AS_POOL_RING];
  *slot = *slot > UINT32_MAX - starts ? UINT32_MAX : *slot + starts;
}

uint32_t imp_as_pool_target(const imp_as_pool_t *pool, int64_t now_ms,
                            const imp_pred_t *pred) {
  const imp_as_pool_cfg_t *cfg = &pool->cfg;
  double recent = 0.0, smooth = 0.0, fc = 0.0;
  int64_t sec = floor_div(now_ms, 1000);
  if (pool->second != INT64_MIN) {
    uint64_t sum = 0;
    for (uint32_t i = 0; i < cfg->window_s; i++) {
      int64_t s = sec - i;
      if (s <= pool->second && s > pool->second - IMP_AS_POOL_RING && s >= 0)
        sum += pool->ring[s % IMP_AS_POOL_RING];
    }
    recent = (double)sum / cfg->window_s;
    smooth = pool->ewma;
    if (sec > pool->second)
      smooth *= exp(-(double)(sec - pool->second) / cfg->ewma_s);
  }
  if (pred != NULL)
    fc = imp_pred_forecast(pred, now_ms + (int64_t)(cfg->refill_s * 1000)) /
         60.0;
  double rate = fmax(recent, fmax(smooth, fc));
  double n = ceil_eps(rate * cfg->refill_s * cfg->headroom);
  if (n < cfg->floor) n = cfg->floor;
  if (n > cfg->cap) n = cfg->cap;
  return (uint32_t)n;
}
