/*
 * The controller's heart (control.h): its init, restore at start, the
 * one-second tick, stopping, and the handlers of the fleet's and the call
 * path's events, which it dispatches to its parts.
 */
#include "server/control/control.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/common.h"
#include "server/control/deploy.h"
#include "server/control/functions.h"
#include "server/control/instances.h"
#include "server/control/records.h"
#include "server/control/scaler.h"
#include "server/control/traffic.h"
#include "server/control/upgrade.h"
#include "server/invoke/idempotency.h"
#include "server/invoke/invoke.h"

/* ---- the call path's owner (invoke/call.h) ------------------------------ */

/* fn's queue holds more calls than its starting instances will take. */
static void iv_queued(void *owner, imp_function_t *fn) {
  imp_ctl_scale_for_queue(owner, fn);
}

/* A call of fn timed out; its instance is being replaced. */
static void iv_timed_out(void *owner, imp_function_t *fn) {
  imp_control_t *ctl = owner;
  imp_ctl_ensure_min(ctl, fn);
  imp_ctl_scale_for_queue(ctl, fn);
  if (fn->dispatch.queued && fn->starting == 0 &&
      imp_dispatch_free_slots(&fn->dispatch) == 0)
    imp_ctl_start_instance(ctl, fn);
}

static const imp_invoke_ops_t invoke_ops = {iv_queued, iv_timed_out};

/* ---- instance events ----------------------------------------------------- */

static void instance_ready(imp_control_t *ctl, imp_instance_t *inst) {
  imp_function_t *fn = inst->function;
  if (fn == NULL) { /* detached while loading */
    imp_instance_kill(inst);
    return;
  }
  if (fn->deleted || !imp_ctl_version_live(fn, inst->version)) {
    /* Deleted, redeployed or taken out of the split while loading. */
    if (fn->deleted) {
      inst->state = IMP_INST_DRAINING;
      imp_instance_kill(inst);
    } else {
      imp_ctl_load(ctl, fn, inst);
    }
    return;
  }
  if (imp_upg_on_ready(ctl, fn, inst)) return;
  imp_ctl_mark_starting(fn, inst, 0);
  inst->d.ready = 1;
  IMP_LOG(IMP_LOG_DEBUG, "instance %llu serves %s v%u (%llu ms after start)",
          (unsigned long long)inst->id, fn->name, inst->version,
          (unsigned long long)(inst->ready_ms - inst->started_ms));
  imp_invoke_room(&ctl->invoke, fn);
}

static void instance_load_failed(imp_control_t *ctl, imp_instance_t *inst,
                                 int code, const char *message) {
  imp_function_t *fn = inst->function;
  IMP_LOG(IMP_LOG_ERROR, "instance %llu failed to load %s: %s",
          (unsigned long long)inst->id, fn ? fn->name : "?", message);
  inst->state = IMP_INST_DRAINING;
  imp_instance_kill(inst);
  if (fn && fn->starting <= 1 && imp_dispatch_free_slots(&fn->dispatch) == 0) {
    char msg[512];
    snprintf(msg, sizeof msg, "no instance of '%s' could start: %s", fn->name,
             message);
    imp_invoke_fail_queue(fn, IMPULSE__ERROR_CODE__UNAVAILABLE, msg);
  }
  (void)ctl;
  (void)code;
}

/* The fleet: an instance ended; the calls it carried have been told
 * (with crash blame, policy/blame.h). */
static void instance_gone(imp_control_t *ctl, imp_instance_t *inst, int code,
                          const char *message) {
  (void)code;
  if (inst->validate_only) {
    if (inst->pending_deploy) {
      char msg[512];
      snprintf(msg, sizeof msg, "loading it crashed the validation worker (%s)",
               message);
      imp_ctl_validated(ctl, inst, IMPULSE__ERROR_CODE__INVALID_ARTIFACT, msg);
    }
    return;
  }
  imp_function_t *fn = inst->function;
  if (fn == NULL) return;
  int was_loading = inst->ready_ms == 0 || inst->load_wid != 0;
  imp_ctl_detach(fn, inst);
  if (fn->deleted || ctl->stopping) return;
  if (was_loading && !inst->stop_when_drained) {
    char msg[600];
    snprintf(msg, sizeof msg, "no instance of '%s' could start: %s", fn->name,
             message);
    if (fn->starting == 0 && imp_dispatch_free_slots(&fn->dispatch) == 0)
      imp_invoke_fail_queue(fn, IMPULSE__ERROR_CODE__UNAVAILABLE, msg);
    return; /* do not loop on an instance that dies while loading */
  }
  imp_ctl_ensure_min(ctl, fn);
  imp_ctl_scale_for_queue(ctl, fn);
}

/* ---- restore, tick, stop ------------------------------------------------- */

typedef struct restore_ctx_s {
  imp_control_t *ctl;
  unsigned restored, failed;
} restore_ctx_t;

static int restore_one(void *arg, const char *k, size_t kl, const char *v,
                       size_t vl) {
  restore_ctx_t *rc = arg;
  imp_control_t *ctl = rc->ctl;
  (void)k;
  (void)kl;
  Impulse__FunctionRecord *rec =
      impulse__function_record__unpack(NULL, vl, (const uint8_t *)v);
  if (rec == NULL) {
    IMP_LOG(IMP_LOG_ERROR, "restore: undecodable function record (%.*s)",
            (int)kl, k);
    rc->failed++;
    return 0;
  }
  char vkey[80];
  size_t vklen = imp_store_version_key(rec->name, rec->version, vkey);
  char *vv;
  size_t vvl;
  Impulse__VersionRecord *vrec = NULL;
  if (imp_store_get(ctl->store, IMP_CF_VERSIONS, vkey, vklen, &vv, &vvl) == 0) {
    vrec = impulse__version_record__unpack(NULL, vvl, (uint8_t *)vv);
    free(vv);
  }
  if (vrec == NULL) {
    IMP_LOG(IMP_LOG_ERROR, "restore: %s version %u has no version record",
            rec->name, rec->version);
    impulse__function_record__free_unpacked(rec, NULL);
    rc->failed++;
    return 0;
  }
  char path[600];
  int r = imp_ctl_ensure_artifact(ctl, vrec->sha256, path, sizeof path);
  if (r != 0) {
    IMP_LOG(IMP_LOG_ERROR, "restore: %s artifact %s: %s", rec->name,
            vrec->sha256, imp_strerror(r));
    impulse__function_record__free_unpacked(rec, NULL);
    impulse__version_record__free_unpacked(vrec, NULL);
    rc->failed++;
    return 0;
  }
  imp_function_t *fn = imp_ctl_fn_create(ctl, rec, vrec);
  if (fn == NULL) abort();
  snprintf(fn->artifact_path, sizeof fn->artifact_path, "%s", path);
  imp_upg_restore(ctl, fn);
  if (rec->n_traffic > 0 && fn->upg == NULL) {
    char err[256];
    if (imp_ctl_traffic_apply(ctl, fn, fn->rec, err, sizeof err) != 0)
      IMP_LOG(IMP_LOG_ERROR,
              "restore: traffic split of %s: %s (all calls "
              "go to version %u)",
              fn->name, err, fn->rec->version);
  }
  rc->restored++;
  IMP_LOG(IMP_LOG_DEBUG, "restored %s version %u", fn->name, rec->version);
  return 0;
}

/* The workers of a previous run being adopted. */
typedef struct adopt_ctx_s {
  imp_batch_t *b; /* records of workers that are gone, deleted */
  imp_store_t *store;
  imp_control_t *ctl;
  unsigned adopted;
} adopt_ctx_t;

/* A worker of a previous run: adopted when its process still exists (it
 * is attached once connected), else its record is dropped. */
static int adopt_instance_record(void *arg, const char *k, size_t kl,
                                 const char *v, size_t vl) {
  adopt_ctx_t *dc = arg;
  imp_control_t *ctl = dc->ctl;
  Impulse__InstanceRecord *rec =
      impulse__instance_record__unpack(NULL, vl, (const uint8_t *)v);
  imp_instance_t *inst = rec != NULL && ctl->cfg->worker_grace_ms > 0
                             ? imp_instance_adopt(&ctl->fleet, rec)
                             : NULL;
  if (inst == NULL) {
    imp_batch_delete(dc->b, dc->store, IMP_CF_INSTANCES, k, kl);
  } else {
    dc->adopted++;
    imp_function_t *fn =
        rec->function ? imp_ctl_fn_find(ctl, rec->function) : NULL;
    if (fn != NULL) {
      /* Counted as starting, so imp_ctl_ensure_min() does not start another. */
      imp_ctl_attach(fn, inst);
      inst->version = rec->version;
    }
  }
  if (rec) impulse__instance_record__free_unpacked(rec, NULL);
  return 0;
}

/* The fleet: an adopted worker answered Attach with what it has loaded. */
static void instance_attached(imp_control_t *ctl, imp_instance_t *inst,
                              const char *function, uint32_t version) {
  imp_function_t *fn = inst->function;
  if (fn == NULL && function != NULL) {
    fn = imp_ctl_fn_find(ctl, function);
    if (fn != NULL) imp_ctl_attach(fn, inst);
  }
  if (fn == NULL) {
    if (function != NULL) { /* its function was deleted meanwhile */
      imp_instance_kill(inst);
      return;
    }
    inst->state = IMP_INST_GENERIC; /* back in the warm pool */
    return;
  }
  if (function != NULL && strcmp(function, fn->name) == 0 &&
      imp_ctl_version_live(fn, version)) {
    imp_load_t load;
    imp_ctl_load_spec(ctl, fn, version, NULL, &load);
    imp_instance_adopted_ready(inst, &load);
    instance_ready(ctl, inst);
  } else {
    /* Generic, or an older version: load the current one in place. */
    inst->state = IMP_INST_GENERIC;
    imp_ctl_load(ctl, fn, inst);
  }
}

int imp_control_restore(imp_control_t *ctl) {
  restore_ctx_t rc = {ctl, 0, 0};
  int r =
      imp_store_scan(ctl->store, IMP_CF_FUNCTIONS, NULL, 0, restore_one, &rc);
  if (r != 0) return r;
  /* Workers that outlived the previous run are adopted; the others'
   * records are dropped and imp_ctl_ensure_min() recreates what is missing. */
  imp_batch_t *b = imp_batch_new();
  adopt_ctx_t dc = {b, ctl->store, ctl, 0};
  imp_store_scan(ctl->store, IMP_CF_INSTANCES, NULL, 0, adopt_instance_record,
                 &dc);
  if (dc.adopted)
    IMP_LOG(IMP_LOG_INFO, "re-attaching %u worker%s of the previous run",
            dc.adopted, dc.adopted == 1 ? "" : "s");
  char err[256];
  imp_store_write(ctl->store, b, 0, err, sizeof err);
  imp_batch_free(b);
  imp_function_t *f;
  IMP_REGISTRY_EACH(f, &ctl->invoke.registry) {
    imp_ctl_ensure_min(ctl, f);
  }
  IMP_LOG(IMP_LOG_INFO, "restored %u function%s from the state store%s",
          rc.restored, rc.restored == 1 ? "" : "s",
          rc.failed ? " (some records failed: see above)" : "");
  return 0;
}

void imp_control_tick(imp_control_t *ctl) {
  if (++ctl->ticks % 10 == 0) imp_idem_sweep(ctl->store, &ctl->invoke.idem);
  imp_function_t *next;
  for (imp_function_t *fn = imp_registry_first(&ctl->invoke.registry);
       fn != NULL; fn = next) {
    next = imp_registry_next(&ctl->invoke.registry, fn);
    if (fn->deleted) {
      if (fn->instances == 0 && imp_list_empty(&fn->calls))
        imp_ctl_fn_free(ctl, fn);
      continue;
    }
    imp_ctl_ensure_min(ctl, fn);
    imp_upg_tick(ctl, fn);
  }
  /* Scale up and down, size the warm pool (scaler.c). */
  imp_scaler_tick(ctl);
  imp_fleet_fill_pool(&ctl->fleet);
}

void imp_control_stop(imp_control_t *ctl) {
  imp_scaler_save_all(ctl);
  imp_invoke_stop(&ctl->invoke);
  imp_fleet_signal_all(&ctl->fleet, SIGTERM);
}

void imp_control_free(imp_control_t *ctl) {
  free(ctl->load_env);
  ctl->load_env = NULL;
  imp_function_t *fn;
  while ((fn = imp_registry_first(&ctl->invoke.registry)) != NULL)
    imp_ctl_fn_free(ctl, fn);
}

/* ---- the fleet's owner (fleet/instance.h) -------------------------------- */

static void fl_connected(void *owner, imp_instance_t *inst) {
  if (inst->function != NULL) imp_ctl_load(owner, inst->function, inst);
}

static void fl_loaded(void *owner, imp_instance_t *inst, int code,
                      const char *message) {
  if (inst->validate_only)
    imp_ctl_validated(owner, inst, code, message);
  else if (code == 0)
    instance_ready(owner, inst);
  else
    instance_load_failed(owner, inst, code, message);
}

static void fl_attached(void *owner, imp_instance_t *inst, const char *function,
                        uint32_t version) {
  instance_attached(owner, inst, function, version);
}

static void fl_gone(void *owner, imp_instance_t *inst, int code,
                    const char *message) {
  instance_gone(owner, inst, code, message);
}

static void fl_drained(void *owner, imp_instance_t *inst) {
  if (inst->function == NULL) {
    imp_instance_kill(inst);
    return;
  }
  imp_ctl_mark_starting(inst->function, inst, 1);
  imp_ctl_load(owner, inst->function, inst);
}

static const imp_fleet_ops_t fleet_ops = {fl_connected, fl_loaded, fl_attached,
                                          fl_gone, fl_drained};

void imp_control_init(imp_control_t *ctl) {
  imp_fleet_init(&ctl->fleet, ctl->loop, ctl->cl, ctl->store, ctl->cfg,
                 &fleet_ops, ctl);
  imp_fnlogs_init(&ctl->logs, ctl->cfg->log_ring_bytes,
                  ctl->cfg->log_rate_bytes);
  ctl->fleet.logs = &ctl->logs;
  imp_invoke_init(&ctl->invoke, ctl->loop, ctl->cfg, ctl->store, &invoke_ops,
                  ctl);
  imp_invoke_invoker_init(&ctl->invoke);
}

void imp_control_drain(imp_control_t *ctl) {
  ctl->stopping = 1;
  imp_fleet_stop(&ctl->fleet);
  imp_invoke_drain(&ctl->invoke);
}

int imp_control_restored(imp_control_t *ctl) {
  imp_function_t *fn;
  IMP_REGISTRY_EACH(fn, &ctl->invoke.registry) {
    if (fn->deleted) continue;
    unsigned min = FN_MIN(ctl, fn);
    unsigned ready = 0;
    for (size_t i = 0; i < fn->dispatch.count; i++)
      if (fn->dispatch.inst[i]->ready) ready++;
    if (ready < min) return 0;
  }
  return 1;
}
