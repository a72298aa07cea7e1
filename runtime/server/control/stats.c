/*
 * The server's own /metrics families: functions and their calls,
 * instances, the warm pool, triggers, store writes, uptime and build info.
 */
#include "server/control/stats.h"

#include <stdio.h>

#include "core/common.h"
#include "server/control/upgrade.h"

/* ---- the server's families ----------------------------------------------- */

static void collect_functions(imp_metrics_writer_t *w, void *arg) {
  imp_control_t *ctl = arg;
  imp_function_t *fn;
#define EACH_FN IMP_REGISTRY_EACH(fn, &ctl->invoke.registry) if (!fn->deleted)

  imp_metrics_family(w, "impulse_invocations_total", IMP_METRIC_COUNTER,
                     "Calls answered, by function and outcome (ok, or the "
                     "error code in lower case).");
  EACH_FN {
    for (unsigned s = 0; s < IMP_OUTCOMES; s++) {
      if (s != 0 && fn->metrics.outcomes[s] == 0) continue;
      char outcome[40];
      imp_label_t l[2] = {
          {"function", fn->name},
          {"outcome", imp_metrics_outcome_name(s, outcome, sizeof outcome)}};
      imp_metrics_sample_u64(w, "impulse_invocations_total", l, 2,
                             fn->metrics.outcomes[s]);
    }
  }

  imp_metrics_family(w, "impulse_invocation_duration_seconds",
                     IMP_METRIC_HISTOGRAM,
                     "Time from a call's arrival to its answer, queueing "
                     "included, every outcome.");
  EACH_FN {
    imp_label_t l[1] = {{"function", fn->name}};
    imp_histogram_t empty;
    const imp_histogram_t *h = &fn->metrics.duration;
    if (h->bounds == NULL) {
      imp_histogram_init(&empty, imp_metrics_duration_bounds,
                         imp_metrics_duration_nbounds);
      h = &empty;
    }
    imp_metrics_histogram(w, "impulse_invocation_duration_seconds", l, 1, h);
  }

  imp_metrics_family(w, "impulse_in_flight", IMP_METRIC_GAUGE,
                     "Calls sent to instances and not answered yet.");
  EACH_FN {
    imp_label_t l[1] = {{"function", fn->name}};
    size_t queued = fn->dispatch.queued;
    double running =
        fn->in_flight > queued ? (double)(fn->in_flight - queued) : 0.0;
    imp_metrics_sample(w, "impulse_in_flight", l, 1, running);
  }

  imp_metrics_family(w, "impulse_queue_length", IMP_METRIC_GAUGE,
                     "Calls waiting for an instance with a free slot.");
  EACH_FN {
    imp_label_t l[1] = {{"function", fn->name}};
    imp_metrics_sample(w, "impulse_queue_length", l, 1,
                       (double)fn->dispatch.queued);
  }

  imp_metrics_family(w, "impulse_cold_starts_total", IMP_METRIC_COUNTER,
                     "Instances started because calls were waiting.");
  EACH_FN {
    imp_label_t l[1] = {{"function", fn->name}};
    imp_metrics_sample_u64(w, "impulse_cold_starts_total", l, 1,
                           fn->cold_starts);
  }

  imp_metrics_family(w, "impulse_instances", IMP_METRIC_GAUGE,
                     "Instances attached to a function, by state.");
  EACH_FN {
    unsigned by_state[IMP_INST_DEAD + 1] = {0};
    for (size_t i = 0; i < fn->dispatch.count; i++) {
      imp_instance_t *inst =
          IMP_CONTAINER_OF(fn->dispatch.inst[i], imp_instance_t, d);
      if ((unsigned)inst->state <= IMP_INST_DEAD) by_state[inst->state]++;
    }
    for (unsigned s = 0; s <= IMP_INST_DEAD; s++) {
      if (by_state[s] == 0) continue;
      imp_label_t l[2] = {{"function", fn->name},
                          {"state", imp_instance_state_name(s)}};
      imp_metrics_sample(w, "impulse_instances", l, 2, by_state[s]);
    }
  }

  imp_metrics_family(w, "impulse_warm_starts_total", IMP_METRIC_COUNTER,
                     "Instances started from the warm pool (a Load into a "
                     "generic worker, no process start).");
  EACH_FN {
    imp_label_t l[1] = {{"function", fn->name}};
    imp_metrics_sample_u64(w, "impulse_warm_starts_total", l, 1,
                           fn->warm_starts);
  }

  imp_metrics_family(w, "impulse_idempotent_hits_total", IMP_METRIC_COUNTER,
                     "Calls answered from the idempotency store without "
                     "running the function.");
  EACH_FN {
    imp_label_t l[1] = {{"function", fn->name}};
    imp_metrics_sample_u64(w, "impulse_idempotent_hits_total", l, 1,
                           fn->idempotent_hits);
  }

  /* The autoscaler's last decision; a function whose autoscaler has not
   * started has no sample. */
  imp_metrics_family(w, "impulse_instances_desired", IMP_METRIC_GAUGE,
                     "Instances the autoscaler wants for the function now.");
  EACH_FN {
    if (!fn->sc.on) continue;
    imp_label_t l[1] = {{"function", fn->name}};
    imp_metrics_sample(w, "impulse_instances_desired", l, 1, fn->sc.desired);
  }

  imp_metrics_family(w, "impulse_forecast_arrivals_per_minute",
                     IMP_METRIC_GAUGE,
                     "Arrivals per minute the autoscaler forecasts one lead "
                     "time ahead.");
  EACH_FN {
    if (!fn->sc.on) continue;
    imp_label_t l[1] = {{"function", fn->name}};
    imp_metrics_sample(w, "impulse_forecast_arrivals_per_minute", l, 1,
                       fn->sc.decision.forecast_per_min);
  }

  imp_metrics_family(w, "impulse_autoscaler_panic", IMP_METRIC_GAUGE,
                     "1 while the function's autoscaler is in panic mode, "
                     "else 0.");
  EACH_FN {
    if (!fn->sc.on) continue;
    imp_label_t l[1] = {{"function", fn->name}};
    imp_metrics_sample(w, "impulse_autoscaler_panic", l, 1,
                       fn->sc.decision.panic ? 1 : 0);
  }

  imp_metrics_family(w, "impulse_upgrade_state", IMP_METRIC_GAUGE,
                     "Rolling upgrade of the function: 0 none running, 1 "
                     "running, 2 rolling back.");
  EACH_FN {
    imp_label_t l[1] = {{"function", fn->name}};
    imp_metrics_sample(w, "impulse_upgrade_state", l, 1,
                       fn->upg == NULL                        ? 0
                       : FN_UPG(fn)->state == IMP_UPG_RUNNING ? 1
                                                              : 2);
  }
  imp_metrics_family(w, "impulse_upgrade_versions", IMP_METRIC_GAUGE,
                     "Serving instances per version during a rolling "
                     "upgrade.");
  EACH_FN {
    if (fn->upg == NULL) continue;
    uint32_t vs[2] = {FN_UPG(fn)->from, FN_UPG(fn)->to};
    for (int k = 0; k < 2; k++) {
      unsigned n = 0;
      for (size_t i = 0; i < fn->dispatch.count; i++)
        if (fn->dispatch.inst[i]->ready &&
            fn->dispatch.inst[i]->version == vs[k])
          n++;
      char vb[16];
      snprintf(vb, sizeof vb, "%u", vs[k]);
      imp_label_t l[2] = {{"function", fn->name}, {"version", vb}};
      imp_metrics_sample(w, "impulse_upgrade_versions", l, 2, n);
    }
  }
#undef EACH_FN

  unsigned warm = imp_fleet_warm(&ctl->fleet);
  imp_metrics_family(w, "impulse_warm_pool_instances", IMP_METRIC_GAUGE,
                     "Generic workers started and waiting for a function.");
  imp_metrics_sample(w, "impulse_warm_pool_instances", NULL, 0, warm);

  /* Sized once a second from the rate of instance starts, never below
   * --warm-pool (before the first second: --warm-pool). */
  imp_metrics_family(w, "impulse_warm_pool_target", IMP_METRIC_GAUGE,
                     "Generic workers the server keeps started.");
  imp_metrics_sample(w, "impulse_warm_pool_target", NULL, 0,
                     ctl->pool_target > ctl->cfg->warm_pool
                         ? ctl->pool_target
                         : ctl->cfg->warm_pool);
}

static void collect_process(imp_metrics_writer_t *w, void *arg) {
  imp_control_t *ctl = arg;
  imp_metrics_family(w, "impulse_store_write_seconds", IMP_METRIC_HISTOGRAM,
                     "Time of state store (RocksDB) write batches, synced "
                     "or not.");
  if (ctl->metrics)
    imp_metrics_histogram(w, "impulse_store_write_seconds", NULL, 0,
                          imp_metrics_store_writes(ctl->metrics));
  imp_metrics_family(w, "impulse_store_synced_writes_total", IMP_METRIC_COUNTER,
                     "State store write batches fsync'd before the change "
                     "they carry was answered.");
  imp_metrics_sample_u64(w, "impulse_store_synced_writes_total", NULL, 0,
                         imp_store_synced_writes(ctl->store));
  imp_metrics_family(w, "impulse_uptime_seconds", IMP_METRIC_GAUGE,
                     "Seconds since the server started.");
  imp_metrics_sample(w, "impulse_uptime_seconds", NULL, 0,
                     (double)(imp_now_ms() - ctl->started_ms) / 1000.0);
  imp_metrics_family(w, "impulse_build_info", IMP_METRIC_GAUGE,
                     "Always 1; the version of the running server is a "
                     "label.");
  imp_label_t l[1] = {{"version", IMPULSE_VERSION}};
  imp_metrics_sample(w, "impulse_build_info", l, 1, 1);
  imp_metrics_family(w, "impulse_sandbox_info", IMP_METRIC_GAUGE,
                     "Always 1; how instances are isolated (mode: userns, "
                     "uid, none) and limited (cgroup: v1, v2, none).");
  const imp_isolate_t *iso = &ctl->fleet.iso;
  imp_label_t sl[2] = {{"mode", iso->mode},
                       {"cgroup", iso->cgroup == 1   ? "v1"
                                  : iso->cgroup == 2 ? "v2"
                                                     : "none"}};
  imp_metrics_sample(w, "impulse_sandbox_info", sl, 2, 1);
}

int imp_control_register_metrics(imp_control_t *ctl, imp_metrics_t *m) {
  int rc = imp_metrics_register(m, collect_functions, ctl);
  if (rc == 0) rc = imp_metrics_register(m, collect_process, ctl);
  return rc;
}
