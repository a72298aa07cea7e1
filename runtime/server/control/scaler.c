/*
 * The autoscaler in the server: signals in, instances out.
 *
 * The controller counts, per function and per second, arrivals, calls in
 * flight (as an integral over time, so the sample is the true mean),
 * completions and their duration, queue waits; once a second
 * imp_scaler_tick() closes the second, feeds it to the function's
 * autoscaler (runtime/autoscaler.c: KPA, lag, and for the predictive policy
 * the Holt-Winters forecast and the hybrid histogram of runtime/
 * predictor.c, the same code `impulse sim` replays traces through) and
 * applies the decision: instances are started (from the warm pool when it
 * has one) up to the desired count, and idle ones above it are retired.
 * The predictor's state is saved to the `autoscaler` column family once a
 * minute (without fsync: it is a forecast, and losing the last minute of
 * it costs nothing), and read back when the function is restored.
 *
 * The warm pool of generic workers is sized by imp_as_pool_target() from
 * the platform-wide rate of instance starts, never below --warm-pool.
 */
#include "server/control/scaler.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/store.h"
#include "core/common.h"
#include "core/limits.h"
#include "server/control/instances.h"

#define SAVE_EVERY_MS 60000u

static int policy_of(const Impulse__FunctionConfig *c) {
  if (c && c->policy && strcmp(c->policy, "reactive") == 0)
    return IMP_AS_REACTIVE;
  return IMP_AS_PREDICTIVE;
}

const char *imp_scaler_policy_name(int policy) {
  return policy == IMP_AS_REACTIVE ? "reactive" : "predictive";
}

int imp_scaler_policy_valid(const char *s) {
  return s == NULL || strcmp(s, "reactive") == 0 ||
         strcmp(s, "predictive") == 0;
}

/* The autoscaler settings of a function from its stored configuration. */
static void cfg_of(imp_control_t *ctl, imp_function_t *fn, imp_as_cfg_t *cfg) {
  const Impulse__FunctionConfig *c = fn->rec->config;
  imp_as_cfg_default(cfg);
  unsigned conc =
      c && c->has_concurrency ? c->concurrency : ctl->cfg->default_concurrency;
  cfg->policy = policy_of(c);
  cfg->target_concurrency =
      c && c->has_target_concurrency && c->target_concurrency > 0
          ? c->target_concurrency
          : (conc ? conc : 1);
  cfg->scale_to_zero_after_s = c && c->has_scale_to_zero_after_s
                                   ? c->scale_to_zero_after_s
                                   : ctl->cfg->idle_timeout_s;
  cfg->min_instances = c && c->has_min_instances ? c->min_instances : 0;
  cfg->max_instances = c && c->has_max_instances
                           ? c->max_instances
                           : ctl->cfg->default_max_instances;
  if (cfg->max_instances < cfg->min_instances)
    cfg->max_instances = cfg->min_instances;
  /* The lead of the forecast: what starting an instance costs here. */
  cfg->cold_start_ms = 1000;
}

void imp_scaler_fn_init(imp_control_t *ctl, imp_function_t *fn) {
  imp_fn_scaler_t *sc = &fn->sc;
  imp_as_cfg_t cfg;
  cfg_of(ctl, fn, &cfg);
  if (imp_as_init(&sc->as, &cfg) != 0 && imp_as_init(&sc->as, NULL) != 0)
    abort(); /* out of memory for the history ring */
  imp_pred_init(&sc->pred, NULL);
  sc->last_ns = imp_now_ns();
  sc->saved_ms = (int64_t)imp_wall_ms();
  char *v;
  size_t vlen;
  if (imp_store_get(ctl->store, IMP_CF_AUTOSCALER, fn->name, strlen(fn->name),
                    &v, &vlen) == 0) {
    if (imp_pred_load(&sc->pred, (const uint8_t *)v, vlen) != 0) {
      IMP_LOG(IMP_LOG_WARN,
              "autoscaler: stored forecast of %s unreadable; "
              "starting afresh",
              fn->name);
      imp_pred_init(&sc->pred, NULL);
    } else {
      IMP_LOG(IMP_LOG_DEBUG, "autoscaler: forecast of %s restored", fn->name);
    }
    free(v);
  }
  sc->on = 1;
}

void imp_scaler_fn_config(imp_control_t *ctl, imp_function_t *fn) {
  if (!fn->sc.on) return;
  imp_as_cfg_t cfg;
  cfg_of(ctl, fn, &cfg);
  if (imp_as_reconfigure(&fn->sc.as, &cfg) != 0)
    IMP_LOG(IMP_LOG_WARN, "autoscaler: cannot apply the settings of %s",
            fn->name);
}

void imp_scaler_fn_free(imp_function_t *fn) {
  if (!fn->sc.on) return;
  imp_as_free(&fn->sc.as);
  fn->sc.on = 0;
}

void imp_scaler_fn_forget(imp_control_t *ctl, imp_function_t *fn) {
  imp_batch_t *b = imp_batch_new();
  imp_batch_delete(b, ctl->store, IMP_CF_AUTOSCALER, fn->name,
                   strlen(fn->name));
  char err[256];
  if (imp_store_write(ctl->store, b, 0, err, sizeof err) != 0)
    IMP_LOG(IMP_LOG_WARN, "autoscaler: %s", err);
  imp_batch_free(b);
}

/* ---- consumer lag of trigger-fed functions ------------------------------- */

typedef struct lag_s {
  imp_control_t *ctl;
} lag_t;

static void on_trigger(void *arg, const Impulse__TriggerInfo *info) {
  lag_t *l = arg;
  if (info->spec == NULL || info->spec->function == NULL) return;
  imp_function_t *fn = NULL;
  imp_function_t *f;
  IMP_REGISTRY_EACH(f, &l->ctl->invoke.registry) {
    if (!f->deleted && strcmp(f->name, info->spec->function) == 0) fn = f;
  }
  if (fn == NULL) return;
  int64_t lag = 0;
  for (size_t i = 0; i < info->n_partitions; i++)
    if (info->partitions[i]->has_lag) lag += info->partitions[i]->lag;
  if (fn->sc.lag < 0) fn->sc.lag = 0;
  fn->sc.lag += lag;
  /* One call at a time per partition: more instances than partitions
   * cannot help. */
  const char *ord = info->spec->ordering;
  if (ord == NULL || strcmp(ord, "partition") == 0)
    fn->sc.lag_partitions += (uint32_t)info->n_partitions;
  else
    fn->sc.lag_uncapped = 1;
}

static void collect_lag(imp_control_t *ctl) {
  imp_function_t *f;
  IMP_REGISTRY_EACH(f, &ctl->invoke.registry) {
    f->sc.lag = -1;
    f->sc.lag_partitions = 0;
    f->sc.lag_uncapped = 0;
  }
  if (ctl->lag_source == NULL) return;
  lag_t l = {ctl};
  ctl->lag_source(ctl->lag_source_arg, on_trigger, &l);
}

/* ---- the tick ------------------------------------------------------------ */

static void save_forecast(imp_control_t *ctl, imp_function_t *fn) {
  uint8_t *buf = malloc(IMP_PRED_STATE_SIZE);
  if (buf == NULL) return;
  int n = imp_pred_save(&fn->sc.pred, buf, IMP_PRED_STATE_SIZE);
  if (n <= 0) {
    free(buf);
    return;
  }
  imp_batch_t *b = imp_batch_new();
  imp_batch_put(b, ctl->store, IMP_CF_AUTOSCALER, fn->name, strlen(fn->name),
                buf, (size_t)n);
  char err[256];
  if (imp_store_write(ctl->store, b, 0, err, sizeof err) != 0)
    IMP_LOG(IMP_LOG_WARN, "autoscaler: cannot save the forecast of %s: %s",
            fn->name, err);
  imp_batch_free(b);
  free(buf);
}

static void scale_fn(imp_control_t *ctl, imp_function_t *fn, int64_t now_ms,
                     uint32_t *starts) {
  imp_fn_scaler_t *sc = &fn->sc;
  imp_as_sample_t s;
  memset(&s, 0, sizeof s);
  uint64_t now_ns = imp_now_ns();
  sc->busy_ns += (uint64_t)fn->in_flight * (now_ns - sc->last_ns);
  sc->last_ns = now_ns;
  uint64_t span_ns = now_ns - sc->sample_ns;
  if (sc->sample_ns == 0 || span_ns == 0) span_ns = 1000000000ull;
  s.t_ms = now_ms;
  s.inflight = (double)sc->busy_ns / (double)span_ns;
  s.inflight_max =
      sc->inflight_max > fn->in_flight ? sc->inflight_max : fn->in_flight;
  s.arrivals = sc->arrivals;
  s.queue_len = (uint32_t)fn->dispatch.queued;
  s.queue_wait_ms = sc->waited ? sc->wait_sum_ms / sc->waited : 0;
  s.completions = sc->completions;
  s.duration_ms = sc->completions ? sc->dur_sum_ms / sc->completions : 0;
  s.lag = sc->lag;
  sc->busy_ns = 0;
  sc->sample_ns = now_ns;
  sc->arrivals = sc->completions = sc->inflight_max = sc->waited = 0;
  sc->dur_sum_ms = sc->wait_sum_ms = 0;

  imp_as_cfg_t *cfg = &sc->as.cfg;
  cfg->lag_partitions = sc->lag_uncapped ? 0 : sc->lag_partitions;
  imp_as_record(&sc->as, &s);
  /* The second ends at now_ms: its calls belong to the minute it was in. */
  imp_pred_observe(&sc->pred, now_ms - 1, s.arrivals);
  imp_pred_observe_inflight(&sc->pred, now_ms - 1, s.inflight_max);
  imp_pred_advance(&sc->pred, now_ms);

  unsigned ready = 0;
  for (size_t i = 0; i < fn->dispatch.count; i++)
    if (fn->dispatch.inst[i]->ready) ready++;
  imp_as_decision_t d;
  uint32_t want =
      imp_as_decide(&sc->as, now_ms, ready,
                    cfg->policy == IMP_AS_PREDICTIVE ? &sc->pred : NULL, &d);
  sc->desired = want;
  sc->decision = d;
  imp_as_reason(&d, sc->reason, sizeof sc->reason);

  if (want > fn->instances) {
    uint32_t add = want - fn->instances;
    for (uint32_t i = 0; i < add; i++) {
      if (imp_ctl_start_instance(ctl, fn) != 0) break;
      (*starts)++;
    }
  } else if (want < fn->instances && fn->dispatch.queued == 0) {
    imp_ctl_retire_idle(ctl, fn, want);
  }

  if ((uint64_t)(now_ms - sc->saved_ms) >= SAVE_EVERY_MS) {
    sc->saved_ms = now_ms;
    save_forecast(ctl, fn);
  }
}

void imp_scaler_tick(imp_control_t *ctl) {
  /* Wall clock: the forecast's daily season is indexed by UTC minute. */
  int64_t now = (int64_t)imp_wall_ms();
  if (ctl->pool.cfg.refill_s == 0) imp_as_pool_init(&ctl->pool, NULL);
  uint32_t starts = 0;
  collect_lag(ctl);
  imp_function_t *fn;
  IMP_REGISTRY_EACH(fn, &ctl->invoke.registry)
  if (!fn->deleted && fn->sc.on) scale_fn(ctl, fn, now, &starts);
  /* Starts that found no warm worker size the next pool. */
  imp_as_pool_record(&ctl->pool, now, ctl->fleet.pool_misses);
  ctl->fleet.pool_misses = 0;
  uint32_t target = imp_as_pool_target(&ctl->pool, now, NULL);
  ctl->pool_target =
      target > ctl->cfg->warm_pool ? target : ctl->cfg->warm_pool;
}

void imp_scaler_save_all(imp_control_t *ctl) {
  imp_function_t *fn;
  IMP_REGISTRY_EACH(fn, &ctl->invoke.registry)
  if (!fn->deleted && fn->sc.on) save_forecast(ctl, fn);
}

void imp_scaler_fill_info(imp_function_t *fn, Impulse__FunctionInfo *fi) {
  if (!fn->sc.on) return;
  const imp_as_decision_t *d = &fn->sc.decision;
  fi->has_desired = fi->has_forecast_per_min = fi->has_forecast_instances = 1;
  fi->has_panic = 1;
  fi->desired = fn->sc.desired;
  fi->forecast_per_min = d->forecast_per_min;
  fi->forecast_instances = d->predictive;
  fi->panic = d->panic != 0;
  fi->policy = (char *)imp_scaler_policy_name(fn->sc.as.cfg.policy);
  if (fn->sc.reason[0]) fi->scale_reason = fn->sc.reason;
}

/* The autoscaling settings of a deploy or scale: NULL when valid, else
 * why not. */
const char *imp_scaler_check(const Impulse__FunctionConfig *c) {
  if (c->has_target_concurrency &&
      !(c->target_concurrency >= IMP_TARGET_CONCURRENCY_MIN &&
        c->target_concurrency <= IMP_TARGET_CONCURRENCY_MAX))
    return "target concurrency must be between 0.01 and 10000";
  if (c->has_scale_to_zero_after_s &&
      c->scale_to_zero_after_s > IMP_SCALE_TO_ZERO_MAX_S)
    return "scale-to-zero-after must be at most 86400 s";
  if (!imp_scaler_policy_valid(c->policy))
    return "policy must be 'reactive' or 'predictive'";
  return NULL;
}
