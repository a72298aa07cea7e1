/*
 * A function's instances (instances.h).
 */
#include "server/control/instances.h"

#include <errno.h>
#include <stdlib.h>

#include "core/common.h"
#include "policy/pipeline.h"
#include "policy/traffic.h"
#include "server/control/records.h"
#include "server/control/secrets.h"
#include "server/fleet/instance.h"

/* ---- instances of a function --------------------------------------------- */

/* fn->starting counts attached instances that are not serving yet. */
void imp_ctl_mark_starting(imp_function_t *fn, imp_instance_t *inst, int on) {
  if (on && !inst->counted_starting) fn->starting++;
  if (!on && inst->counted_starting) fn->starting--;
  inst->counted_starting = on;
}

void imp_ctl_attach(imp_function_t *fn, imp_instance_t *inst) {
  inst->function = fn;
  inst->owned = 1;
  inst->d.ready = 0;
  if (imp_dispatch_add(&fn->dispatch, &inst->d) != 0) abort();
  fn->instances++;
  imp_ctl_mark_starting(fn, inst, 1);
}

void imp_ctl_detach(imp_function_t *fn, imp_instance_t *inst) {
  imp_dispatch_remove(&fn->dispatch, &inst->d);
  fn->instances--;
  imp_ctl_mark_starting(fn, inst, 0);
}

/* Starts one more instance of fn: a warm worker if there is one, else a new
 * process. */
int imp_ctl_start_instance(imp_control_t *ctl, imp_function_t *fn) {
  imp_instance_t *inst = imp_instance_take_generic(&ctl->fleet);
  if (inst == NULL) {
    ctl->fleet.pool_misses++; /* sizes the warm pool (scaler.c) */
    inst = imp_instance_spawn(&ctl->fleet, 1);
  } else {
    fn->warm_starts++;
  }
  if (inst == NULL) return -EAGAIN;
  imp_ctl_attach(fn, inst);
  imp_ctl_load(ctl, fn, inst);
  imp_fleet_refill_later(&ctl->fleet);
  return 0;
}

void imp_ctl_retire_idle(imp_control_t *ctl, imp_function_t *fn,
                         unsigned keep) {
  unsigned min = FN_MIN(ctl, fn);
  if (keep < min) keep = min;
  for (size_t i = fn->dispatch.count; i > 0 && fn->instances > keep; i--) {
    imp_instance_t *inst =
        IMP_CONTAINER_OF(fn->dispatch.inst[i - 1], imp_instance_t, d);
    if (inst->state != IMP_INST_READY || inst->d.outstanding) continue;
    IMP_LOG(IMP_LOG_DEBUG, "retiring idle instance %llu of %s (%u wanted)",
            (unsigned long long)inst->id, fn->name, keep);
    inst->state = IMP_INST_DRAINING;
    imp_ctl_detach(fn, inst);
    inst->function = NULL;
    imp_instance_kill(inst);
  }
}

void imp_ctl_ensure_min(imp_control_t *ctl, imp_function_t *fn) {
  unsigned min = FN_MIN(ctl, fn);
  while (fn->instances < min)
    if (imp_ctl_start_instance(ctl, fn) != 0) break;
}

/* Starts instances while the queue holds more calls than the instances being
 * started will be able to take. */
void imp_ctl_scale_for_queue(imp_control_t *ctl, imp_function_t *fn) {
  unsigned conc = fn_cfg(fn, IMP_FN_CONCURRENCY, ctl->cfg->default_concurrency);
  if (conc == 0) conc = 1;
  unsigned want =
      imp_dispatch_starts_for_queue(fn->dispatch.queued, fn->starting, conc);
  unsigned max = FN_MAX(ctl, fn);
  for (unsigned i = 0; i < want && fn->instances < max; i++) {
    if (imp_ctl_start_instance(ctl, fn) != 0) break;
    fn->cold_starts++;
  }
}

/* What loading fn's `version` (its artifact at `path`) into an instance
 * means: its settings, and the pipelining allowance of the moment. */
void imp_ctl_load_spec(imp_control_t *ctl, imp_function_t *fn, uint32_t version,
                       const char *path, imp_load_t *out) {
  uint32_t conc = fn_cfg(fn, IMP_FN_CONCURRENCY, ctl->cfg->default_concurrency);
  if (conc == 0) conc = 1;
  out->function = fn->name;
  out->version = version;
  out->path = path;
  out->sha256 = path ? imp_ctl_path_sha(path, out->sha_buf) : NULL;
  out->concurrency = conc;
  out->extra = imp_pipe_extra(&fn->pipe, conc);
  out->memory_mb = fn_cfg(fn, IMP_FN_MEMORY_MB, ctl->cfg->default_memory_mb);
  /* Its environment with the values of its secrets, read now: a changed
   * secret reaches every instance loaded from now on. Kept until the next
   * load spec (the Load is sent, or its environment copied, before that). */
  const Impulse__FunctionConfig *cfg = fn->rec ? fn->rec->config : NULL;
  out->network = cfg ? cfg->network : NULL;
  out->cpu_millis = cfg && cfg->has_cpu_millis ? cfg->cpu_millis : 0;
  free(ctl->load_env);
  ctl->load_env = NULL;
  if (imp_ctl_secrets_env(ctl, cfg, &ctl->load_env, &out->nenv) != 0) abort();
  out->env = ctl->load_env;
}

int imp_ctl_load(imp_control_t *ctl, imp_function_t *fn, imp_instance_t *inst) {
  inst->function = fn;
  if (inst->upg_state == IMP_UPGI_DETACHED)
    inst->upg_state = IMP_UPGI_UPGRADING;
  if (inst->state == IMP_INST_STARTING) return 0; /* when connected */
  uint32_t version;
  const char *path = imp_ctl_load_target(fn, inst, &version);
  imp_load_t load;
  imp_ctl_load_spec(ctl, fn, version, path, &load);
  return imp_instance_load(inst, &load);
}

void imp_ctl_drain_reload(imp_control_t *ctl, imp_function_t *fn,
                          imp_instance_t *inst) {
  inst->state = IMP_INST_DRAINING;
  inst->d.ready = 0;
  if (inst->d.outstanding == 0) {
    imp_ctl_mark_starting(fn, inst, 1);
    imp_ctl_load(ctl, fn, inst);
  } else {
    /* Counted as starting only once its reload is sent, so calls that
     * queue meanwhile start new instances (up to max) instead of waiting
     * for a long call to finish. */
    inst->reload_when_drained = 1;
  }
}

int imp_ctl_version_live(const imp_function_t *fn, uint32_t version) {
  if (fn->upg) return version == FN_UPG(fn)->from || version == FN_UPG(fn)->to;
  return imp_dispatch_version_live(&fn->dispatch, version);
}

const char *imp_ctl_load_target(imp_function_t *fn, const imp_instance_t *inst,
                                uint32_t *version) {
  if (fn->upg) {
    int back = FN_UPG(fn)->state == IMP_UPG_ROLLBACK;
    *version = back ? FN_UPG(fn)->from : FN_UPG(fn)->to;
    return back ? FN_UPG(fn)->from_path : FN_UPG(fn)->to_path;
  }
  if (fn->ntraffic == 0) {
    *version = fn->rec->version;
    return fn->artifact_path;
  }
  unsigned have[IMP_DISPATCH_MAX_SPLIT] = {0}, total = 1;
  for (size_t i = 0; i < fn->dispatch.count; i++) {
    const imp_instance_t *o =
        IMP_CONTAINER_OF(fn->dispatch.inst[i], imp_instance_t, d);
    if (o == inst || o->stop_when_drained) continue;
    total++;
    for (unsigned e = 0; e < fn->ntraffic; e++)
      if (fn->tversion[e] == o->version) have[e]++;
  }
  unsigned weight[IMP_DISPATCH_MAX_SPLIT];
  for (unsigned e = 0; e < fn->ntraffic; e++) weight[e] = fn->tweight[e];
  unsigned best = imp_traffic_pick(weight, have, fn->ntraffic, total);
  *version = fn->tversion[best];
  return fn->tpath[best];
}
