/*
 * Deleting a function and changing its scale bounds (manage.h).
 */
#include "server/control/manage.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/common.h"
#include "core/limits.h"
#include "server/control/instances.h"
#include "server/control/records.h"
#include "server/control/scaler.h"
#include "server/control/secrets.h"

/* ---- delete, scale ------------------------------------------------------- */

static void stop_all_instances(imp_function_t *fn) {
  for (size_t i = 0; i < fn->dispatch.count; i++)
    imp_instance_retire(
        IMP_CONTAINER_OF(fn->dispatch.inst[i], imp_instance_t, d));
}

void imp_control_delete(imp_control_t *ctl, imp_rpc_t *rpc,
                        Impulse__Envelope *env) {
  const char *name = env->delete_->name;
  imp_function_t *fn = imp_ctl_fn_find(ctl, name);
  if (fn == NULL) {
    imp_rpc_error(rpc, IMPULSE__ERROR_CODE__NOT_FOUND, "unknown function '%s'",
                  name);
    goto out;
  }
  imp_batch_t *b = imp_batch_new();
  imp_batch_delete_prefix(b, ctl->store, IMP_CF_VERSIONS, name,
                          strlen(name) + 1);
  imp_batch_delete(b, ctl->store, IMP_CF_FUNCTIONS, name, strlen(name));
  imp_rec_forget(b, ctl->store, name);
  char err[256];
  int rc = imp_store_write(ctl->store, b, 1, err, sizeof err);
  imp_batch_free(b);
  if (rc != 0) {
    imp_rpc_error(rpc, IMPULSE__ERROR_CODE__INTERNAL,
                  "could not store the deletion: %s", err);
    goto out;
  }
  fn->deleted = 1;
  imp_scaler_fn_forget(ctl, fn);
  char msg[128];
  snprintf(msg, sizeof msg, "function '%s' was deleted", fn->name);
  imp_invoke_fail_queue(fn, IMPULSE__ERROR_CODE__NOT_FOUND, msg);
  stop_all_instances(fn);
  IMP_LOG(IMP_LOG_INFO, "deleted %s", fn->name);
  Impulse__DeleteResponse ok = IMPULSE__DELETE_RESPONSE__INIT;
  imp_rpc_answer(rpc, IMPULSE__ENVELOPE__BODY_DELETE_OK, &ok);
out:
  impulse__envelope__free_unpacked(env, NULL);
}

void imp_control_scale(imp_control_t *ctl, imp_rpc_t *rpc,
                       Impulse__Envelope *env) {
  Impulse__ScaleRequest *req = env->scale;
  imp_function_t *fn = imp_ctl_fn_find(ctl, req->name);
  if (fn == NULL) {
    imp_rpc_error(rpc, IMPULSE__ERROR_CODE__NOT_FOUND, "unknown function '%s'",
                  req->name);
    goto out;
  }
  Impulse__FunctionConfig cfg = IMPULSE__FUNCTION_CONFIG__INIT;
  Impulse__FunctionConfig upd = IMPULSE__FUNCTION_CONFIG__INIT;
  upd.has_min_instances = req->has_min_instances;
  upd.min_instances = req->min_instances;
  upd.has_max_instances = req->has_max_instances;
  upd.max_instances = req->max_instances;
  if (req->config) {
    const Impulse__FunctionConfig *a = req->config;
    if (a->has_target_concurrency) {
      upd.has_target_concurrency = 1;
      upd.target_concurrency = a->target_concurrency;
    }
    if (a->has_scale_to_zero_after_s) {
      upd.has_scale_to_zero_after_s = 1;
      upd.scale_to_zero_after_s = a->scale_to_zero_after_s;
    }
    upd.policy = a->policy;
  }
  const char *bad = imp_scaler_check(&upd);
  if (bad != NULL) {
    imp_rpc_error(rpc, IMPULSE__ERROR_CODE__BAD_REQUEST, "%s", bad);
    goto out;
  }
  imp_ctl_merge_config(&cfg, &upd, fn->rec->config);
  uint32_t min = cfg.has_min_instances ? cfg.min_instances : 0;
  uint32_t max = cfg.has_max_instances ? cfg.max_instances
                                       : ctl->cfg->default_max_instances;
  if (min > max || max > IMP_INSTANCES_MAX || max == 0) {
    imp_rpc_error(
        rpc, IMPULSE__ERROR_CODE__BAD_REQUEST,
        "invalid bounds: min %u, max %u (need min <= max, 1 <= max <= 10000)",
        min, max);
    goto out;
  }
  Impulse__FunctionRecord rec = *fn->rec;
  rec.config = &cfg;
  rec.has_updated_ms = 1;
  rec.updated_ms = imp_wall_ms();
  imp_batch_t *b = imp_batch_new();
  imp_batch_put_msg(b, ctl->store, IMP_CF_FUNCTIONS, fn->name, strlen(fn->name),
                    &rec.base);
  char err[256];
  int rc = imp_store_write(ctl->store, b, 1, err, sizeof err);
  imp_batch_free(b);
  if (rc != 0) {
    imp_rpc_error(rpc, IMPULSE__ERROR_CODE__INTERNAL,
                  "could not store the new bounds: %s", err);
    goto out;
  }
  Impulse__FunctionRecord *nrec =
      CLONE(Impulse__FunctionRecord, impulse__function_record, &rec);
  impulse__function_record__free_unpacked(fn->rec, NULL);
  fn->rec = nrec;
  imp_scaler_fn_config(ctl, fn);
  imp_ctl_ensure_min(ctl, fn);
  /* Above max: retire idle instances first; busy ones drain. */
  for (size_t i = fn->dispatch.count; i > 0 && fn->instances > max; i--) {
    imp_instance_t *inst =
        IMP_CONTAINER_OF(fn->dispatch.inst[i - 1], imp_instance_t, d);
    if (inst->stop_when_drained) continue;
    imp_instance_retire(inst);
    imp_ctl_detach(fn, inst);
    inst->function = NULL;
  }
  /* The stored config, with the environment's names only. */
  Impulse__FunctionConfig shown = *fn->rec->config;
  shown.env = imp_ctl_env_names(fn->rec->config, &shown.n_env);
  Impulse__ScaleResponse ok = IMPULSE__SCALE_RESPONSE__INIT;
  ok.config = &shown;
  imp_rpc_answer(rpc, IMPULSE__ENVELOPE__BODY_SCALE_OK, &ok);
  free(shown.env);
out:
  impulse__envelope__free_unpacked(env, NULL);
}
