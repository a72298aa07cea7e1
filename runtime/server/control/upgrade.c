/*
 * Rolling upgrades.
 *
 * A promoting deploy of a function with serving instances replaces them in
 * steps instead of all at once. Per instance: SERVING -> DETACHED (no new
 * calls; in-flight calls finish) -> UPGRADING (the new version is loaded in
 * place, same process) -> VALIDATING (the function's recorded calls are
 * replayed on it: a call the old version answered OK must be answered OK,
 * with --validate exact also with the same payload) -> SERVING on the new
 * version. At most max-step % of the instances (at least one) are out of
 * SERVING at once; meanwhile calls go to the serving instances of both
 * versions in proportion to their counts. A failed validation rolls the
 * upgrade back: the version is reverted in the store, and the instances
 * already upgraded go through the same steps back to the old version (no
 * validation). The upgrade's state is part of the FunctionRecord (synced on
 * every change of state), so a restarted server resumes it; per-instance
 * progress is re-derived from the versions the instances have loaded.
 */

#include "server/control/upgrade.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/store.h"
#include "core/common.h"
#include "server/control/instances.h"
#include "server/control/records.h"
#include "server/invoke/call.h"
#include "server/invoke/recordings.h"

static void upg_advance(imp_control_t *ctl, imp_function_t *fn);

static const char *upg_state_text(int state) {
  return state == IMP_UPG_ROLLBACK ? "rolling_back" : "running";
}

/* Calls go to serving instances of either version, by their numbers. */
void imp_upg_weights(imp_function_t *fn) {
  imp_upgrade_t *u = fn->upg;
  uint32_t v[2] = {u->from, u->to}, w[2] = {0, 0};
  for (size_t i = 0; i < fn->dispatch.count; i++) {
    const imp_dinst_t *d = fn->dispatch.inst[i];
    if (!d->ready) continue;
    if (d->version == u->from) w[0]++;
    if (d->version == u->to) w[1]++;
  }
  if (w[0] + w[1] == 0) w[0] = w[1] = 1;
  imp_dispatch_set_split(&fn->dispatch, v, w, 2);
}

/* Stores the upgrade's state (and the function's current version) with one
 * synced write. */
static void imp_upg_persist(imp_control_t *ctl, imp_function_t *fn,
                            const char *state, uint32_t version,
                            const char *reason) {
  imp_upgrade_t *u = fn->upg;
  Impulse__FunctionRecord rec = *fn->rec;
  Impulse__UpgradeRecord ur = IMPULSE__UPGRADE_RECORD__INIT;
  const Impulse__UpgradeRecord *prev = fn->rec->upgrade;
  ur.from_version = u ? u->from : prev ? prev->from_version : 0;
  ur.to_version = u ? u->to : prev ? prev->to_version : 0;
  ur.state = (char *)state;
  ur.has_max_step_pct = ur.has_started_ms = ur.has_updated_ms = 1;
  ur.max_step_pct = u ? u->max_step_pct : 25;
  ur.validate = (char *)(u && u->exact ? "exact" : "status");
  ur.reason = reason && *reason ? (char *)reason : NULL;
  ur.started_ms =
      prev && prev->has_started_ms ? prev->started_ms : imp_wall_ms();
  ur.updated_ms = imp_wall_ms();
  rec.upgrade = &ur;
  rec.version = version;
  rec.has_updated_ms = 1;
  rec.updated_ms = ur.updated_ms;
  imp_batch_t *b = imp_batch_new();
  imp_batch_put_msg(b, ctl->store, IMP_CF_FUNCTIONS, fn->name, strlen(fn->name),
                    &rec.base);
  char err[256];
  if (imp_store_write(ctl->store, b, 1, err, sizeof err) != 0)
    IMP_LOG(IMP_LOG_ERROR, "upgrade of %s: cannot store its state: %s",
            fn->name, err);
  imp_batch_free(b);
  Impulse__FunctionRecord *nrec = imp_ctl_clone_record(&rec);
  impulse__function_record__free_unpacked(fn->rec, NULL);
  fn->rec = nrec;
}

static void on_upg_timer_closed(uv_handle_t *h) {
  imp_upgrade_t *u = h->data;
  imp_rec_free(u->recs, u->nrecs);
  free(u);
}

void imp_upg_free(imp_function_t *fn) {
  imp_upgrade_t *u = fn->upg;
  if (u == NULL) return;
  fn->upg = NULL;
  u->timer.data = u;
  uv_close((uv_handle_t *)&u->timer, on_upg_timer_closed);
}

static void on_upg_timer(uv_timer_t *t) {
  imp_upgrade_t *u = t->data;
  imp_upg_tick(u->ctl, u->fn);
}

/* Runs upg_advance() from the loop (never inside a call's callback). */
void imp_upg_kick(imp_function_t *fn) {
  if (fn->upg && !uv_is_active((uv_handle_t *)&FN_UPG(fn)->timer))
    uv_timer_start(&FN_UPG(fn)->timer, on_upg_timer, 0, 0);
}

imp_upgrade_t *imp_upg_new(imp_control_t *ctl, imp_function_t *fn,
                           uint32_t from, uint32_t to, unsigned step,
                           int exact) {
  imp_upgrade_t *u = calloc(1, sizeof *u);
  if (u == NULL) abort();
  u->ctl = ctl;
  u->fn = fn;
  u->state = IMP_UPG_RUNNING;
  u->from = from;
  u->to = to;
  u->max_step_pct = step ? step : 25;
  u->exact = exact;
  u->started_ms = imp_now_ms();
  uv_timer_init(ctl->loop, &u->timer);
  u->timer.data = u;
  uv_unref((uv_handle_t *)&u->timer);
  /* The recorded calls of earlier versions are the yardstick. */
  imp_recorded_t *all = NULL;
  size_t n = 0;
  if (imp_rec_load(ctl->store, fn->name, &all, &n) == 0) {
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
      if (all[i].version == to) {
        free(all[i].request);
        free(all[i].answer);
        continue;
      }
      all[k++] = all[i];
    }
    u->recs = all;
    u->nrecs = k;
  }
  fn->upg = u;
  return u;
}

/* The upgrade is over: state stored, the split back to one version. */
static void upg_finish(imp_control_t *ctl, imp_function_t *fn) {
  imp_upgrade_t *u = fn->upg;
  int failed = u->state == IMP_UPG_ROLLBACK;
  uint32_t version = failed ? u->from : u->to;
  char reason[sizeof u->reason];
  snprintf(reason, sizeof reason, "%s", u->reason);
  IMP_LOG(failed ? IMP_LOG_WARN : IMP_LOG_INFO,
          "upgrade of %s v%u -> v%u %s after %llu ms (%u instances validated,"
          " %u recorded calls replayed)%s%s",
          fn->name, u->from, u->to, failed ? "rolled back" : "done",
          (unsigned long long)(imp_now_ms() - u->started_ms), u->validated,
          u->replayed, failed ? ": " : "", failed ? reason : "");
  imp_upg_persist(ctl, fn, failed ? "failed" : "done", version, reason);
  imp_upg_free(fn);
  fn->dispatch.version = version;
  imp_dispatch_set_split(&fn->dispatch, NULL, NULL, 0);
  for (size_t i = 0; i < fn->dispatch.count; i++) {
    imp_instance_t *inst =
        IMP_CONTAINER_OF(fn->dispatch.inst[i], imp_instance_t, d);
    inst->upg_state = IMP_UPGI_SERVING;
    inst->upg_validated = 0;
  }
  imp_invoke_pump(&ctl->invoke, fn);
}

/* Starts rolling back: the old version is current again (stored), and the
 * instances on the new one go back step by step. */
static void upg_rollback(imp_control_t *ctl, imp_function_t *fn,
                         const char *reason) {
  imp_upgrade_t *u = fn->upg;
  if (u == NULL || u->state == IMP_UPG_ROLLBACK) return;
  u->state = IMP_UPG_ROLLBACK;
  snprintf(u->reason, sizeof u->reason, "%s", reason);
  IMP_LOG(IMP_LOG_WARN, "upgrade of %s v%u -> v%u: rolling back: %s", fn->name,
          u->from, u->to, reason);
  imp_ctl_set_current(ctl, fn, u->from);
  imp_upg_persist(ctl, fn, "rolling_back", u->from, reason);
  /* Instances on the new version that do not serve yet go back now. */
  for (size_t i = 0; i < fn->dispatch.count; i++) {
    imp_instance_t *inst =
        IMP_CONTAINER_OF(fn->dispatch.inst[i], imp_instance_t, d);
    if (inst->upg_state == IMP_UPGI_VALIDATING) {
      inst->upg_state = IMP_UPGI_DETACHED;
      imp_ctl_drain_reload(ctl, fn, inst);
    }
  }
  imp_upg_kick(fn);
}

/* Takes a serving instance out for its reload. */
static void upg_detach(imp_control_t *ctl, imp_function_t *fn,
                       imp_instance_t *inst) {
  inst->upg_state = IMP_UPGI_DETACHED; /* UPGRADING once the load is sent */
  inst->upg_validated = 0;
  imp_ctl_drain_reload(ctl, fn, inst);
}

static void upg_advance(imp_control_t *ctl, imp_function_t *fn) {
  imp_upgrade_t *u = fn->upg;
  if (u == NULL || fn->deleted) return;
  uint32_t old = u->state == IMP_UPG_RUNNING ? u->from : u->to;
  unsigned total = 0, out = 0, left_old = 0;
  for (size_t i = 0; i < fn->dispatch.count; i++) {
    imp_instance_t *inst =
        IMP_CONTAINER_OF(fn->dispatch.inst[i], imp_instance_t, d);
    if (inst->stop_when_drained) continue;
    total++;
    if (inst->upg_state != IMP_UPGI_SERVING) out++;
    if (inst->version == old) left_old++;
  }
  unsigned step = total * u->max_step_pct / 100;
  if (step == 0) step = 1;
  /* Idle ones first: they leave at once. */
  for (int pass = 0; pass < 2 && out < step; pass++)
    for (size_t i = 0; i < fn->dispatch.count && out < step; i++) {
      imp_instance_t *inst =
          IMP_CONTAINER_OF(fn->dispatch.inst[i], imp_instance_t, d);
      if (inst->stop_when_drained || inst->upg_state != IMP_UPGI_SERVING ||
          inst->version != old || inst->state != IMP_INST_READY ||
          !inst->d.ready)
        continue;
      if (pass == 0 && inst->d.outstanding > 0) continue;
      upg_detach(ctl, fn, inst);
      out++;
    }
  imp_upg_weights(fn);
  if (out == 0 && left_old == 0) upg_finish(ctl, fn);
}

/* ---- validation ---- */

/* The payload of a recorded invoke_ok answer (a copy in *out, free
 * out->data), or empty. */
static void answer_payload(const char *answer, size_t len,
                           ProtobufCBinaryData *out) {
  out->len = 0;
  out->data = NULL;
  uint8_t *buf = malloc(len + 2);
  if (buf == NULL) return;
  buf[0] = 0x08; /* id 0 in front, as deliver_internal() does */
  buf[1] = 0x00;
  memcpy(buf + 2, answer, len);
  Impulse__Envelope *env = impulse__envelope__unpack(NULL, len + 2, buf);
  free(buf);
  if (env && env->body_case == IMPULSE__ENVELOPE__BODY_INVOKE_OK &&
      env->invoke_ok->has_payload && env->invoke_ok->payload.len) {
    out->data = malloc(env->invoke_ok->payload.len);
    if (out->data) {
      memcpy(out->data, env->invoke_ok->payload.data,
             env->invoke_ok->payload.len);
      out->len = env->invoke_ok->payload.len;
    }
  }
  if (env) impulse__envelope__free_unpacked(env, NULL);
}

typedef struct replay_s {
  imp_instance_t *inst;
  size_t index; /* into FN_UPG(fn)->recs */
} replay_t;

static void replay_more(imp_control_t *ctl, imp_function_t *fn,
                        imp_instance_t *inst);

static void on_replayed(void *arg, uint64_t tag, const imp_answer_t *answer) {
  replay_t *r = arg;
  const Impulse__InvokeResponse *resp = answer->resp;
  (void)tag;
  imp_instance_t *inst = r->inst;
  size_t index = r->index;
  free(r);
  inst->val_pending--;
  imp_function_t *fn = inst->function;
  if (fn == NULL || fn->upg == NULL || index >= FN_UPG(fn)->nrecs) return;
  imp_upgrade_t *u = fn->upg;
  u->replayed++;
  const imp_recorded_t *rec = &u->recs[index];
  int was_ok = imp_rec_answer_ok(rec->answer, rec->anslen);
  int now_ok = answer->code == 0 && resp != NULL &&
               (!resp->has_status || resp->status == 0);
  if (was_ok && !now_ok && inst->val_failed++ == 0) {
    snprintf(
        inst->val_reason, sizeof inst->val_reason,
        "recorded call %zu answered OK on v%u; v%u answered %s: %s", index + 1,
        rec->version, inst->version,
        answer->code ? imp_error_code_name(answer->code) : "a non-zero status",
        answer->message ? answer->message : "-");
  } else if (was_ok && now_ok && u->exact) {
    ProtobufCBinaryData want = {0, NULL};
    answer_payload(rec->answer, rec->anslen, &want);
    ProtobufCBinaryData got =
        resp->has_payload ? resp->payload : (ProtobufCBinaryData){0, NULL};
    if ((want.len != got.len ||
         (want.len && memcmp(want.data, got.data, want.len) != 0)) &&
        inst->val_failed++ == 0)
      snprintf(inst->val_reason, sizeof inst->val_reason,
               "recorded call %zu: v%u answered %zu bytes that differ from "
               "v%u's %zu (--validate exact)",
               index + 1, inst->version, got.len, rec->version, want.len);
    free(want.data);
  }
  imp_upg_kick(fn); /* replay_more / the verdict run from the loop */
}

/* Sends recorded calls to a validating instance, as many as it has slots. */
static void replay_more(imp_control_t *ctl, imp_function_t *fn,
                        imp_instance_t *inst) {
  imp_upgrade_t *u = fn->upg;
  while (inst->val_next < u->nrecs && inst->nfree > 0 && !inst->val_failed &&
         inst->state != IMP_INST_DEAD) {
    const imp_recorded_t *rec = &u->recs[inst->val_next];
    replay_t *r = malloc(sizeof *r);
    if (r == NULL) abort();
    r->inst = inst;
    r->index = inst->val_next++;
    imp_call_t *call = imp_call_new(&ctl->invoke, on_replayed, r, 0);
    call->started_ms = imp_now_ms();
    call->replay = 1;
    call->decode = 1;
    inst->val_pending++;
    imp_call_send(call, fn, inst, rec->request, rec->reqlen);
  }
}

/* Validation of instances that finished replaying; called from the loop.
 * Returns how many instances it put in service. */
static unsigned upg_verdicts(imp_control_t *ctl, imp_function_t *fn) {
  imp_upgrade_t *u = fn->upg;
  unsigned serving = 0;
  for (size_t i = 0; i < fn->dispatch.count && fn->upg; i++) {
    imp_instance_t *inst =
        IMP_CONTAINER_OF(fn->dispatch.inst[i], imp_instance_t, d);
    if (inst->upg_state != IMP_UPGI_VALIDATING) continue;
    if (inst->val_failed) {
      if (inst->val_pending > 0) continue; /* let its calls come back */
      char reason[sizeof inst->val_reason + 64];
      snprintf(reason, sizeof reason, "instance %llu failed validation: %s",
               (unsigned long long)inst->id, inst->val_reason);
      upg_rollback(ctl, fn, reason);
      return serving;
    }
    if (inst->val_next < u->nrecs) {
      replay_more(ctl, fn, inst);
      continue;
    }
    if (inst->val_pending > 0) continue;
    inst->upg_state = IMP_UPGI_SERVING;
    inst->upg_validated = 1;
    u->validated++;
    imp_ctl_mark_starting(fn, inst, 0);
    inst->d.ready = 1;
    serving++;
  }
  return serving;
}

/* An instance loaded the upgrade's new version: replay the recordings on
 * it before it serves. */
static void upg_validate(imp_control_t *ctl, imp_function_t *fn,
                         imp_instance_t *inst) {
  inst->upg_state = IMP_UPGI_VALIDATING;
  inst->val_next = inst->val_pending = inst->val_failed = 0;
  inst->val_reason[0] = '\0';
  inst->d.ready = 0;
  replay_more(ctl, fn, inst);
  imp_upg_kick(fn);
}

/* From the controller, when an instance is ready (control.c): 1 when the
 * upgrade took the instance (validation, or a reload back), 0 when it may
 * serve. */
int imp_upg_on_ready(imp_control_t *ctl, imp_function_t *fn,
                     imp_instance_t *inst) {
  imp_upgrade_t *u = fn->upg;
  if (u == NULL) return 0;
  if (u->state == IMP_UPG_RUNNING && inst->version == u->to &&
      !inst->upg_validated) {
    upg_validate(ctl, fn, inst);
    return 1;
  }
  if (u->state == IMP_UPG_ROLLBACK && inst->version == u->to &&
      inst->upg_state != IMP_UPGI_SERVING) {
    inst->upg_state = IMP_UPGI_UPGRADING;
    imp_ctl_load(ctl, fn, inst);
    return 1;
  }
  inst->upg_state = IMP_UPGI_SERVING;
  imp_upg_kick(fn);
  return 0;
}

void imp_upg_tick(imp_control_t *ctl, imp_function_t *fn) {
  if (fn->upg == NULL) return;
  unsigned serving = upg_verdicts(ctl, fn);
  if (fn->upg) upg_advance(ctl, fn); /* the split counts the new ones */
  /* As when an instance is ready (control.c): calls queued meanwhile go to
   * the instances validated now, not at the next event that happens to
   * pump the queue (the one-second tick, another instance's load). */
  if (serving > 0) imp_invoke_room(&ctl->invoke, fn);
}

/* ---- the RPC ---- */

void imp_upg_info(imp_function_t *fn, Impulse__UpgradeInfo *ui) {
  impulse__upgrade_info__init(ui);
  ui->record = fn->rec->upgrade;
  imp_upgrade_t *u = fn->upg;
  if (u == NULL) return;
  ui->has_serving_from = ui->has_serving_to = ui->has_out_of_service = 1;
  ui->has_validated = ui->has_replayed = 1;
  for (size_t i = 0; i < fn->dispatch.count; i++) {
    imp_instance_t *inst =
        IMP_CONTAINER_OF(fn->dispatch.inst[i], imp_instance_t, d);
    if (inst->upg_state != IMP_UPGI_SERVING)
      ui->out_of_service++;
    else if (inst->d.ready && inst->version == u->from)
      ui->serving_from++;
    else if (inst->d.ready && inst->version == u->to)
      ui->serving_to++;
  }
  ui->validated = u->validated;
  ui->replayed = u->replayed;
}

void imp_control_upgrade(imp_control_t *ctl, imp_rpc_t *rpc,
                         Impulse__Envelope *env) {
  Impulse__UpgradeRequest *req = env->upgrade;
  imp_function_t *fn = imp_ctl_fn_find(ctl, req->name);
  if (fn == NULL) {
    imp_rpc_error(rpc, IMPULSE__ERROR_CODE__NOT_FOUND, "unknown function '%s'",
                  req->name);
    goto out;
  }
  if (req->has_abort && req->abort) {
    if (fn->upg == NULL || FN_UPG(fn)->state != IMP_UPG_RUNNING) {
      imp_rpc_error(rpc, IMPULSE__ERROR_CODE__BAD_REQUEST,
                    "no upgrade of '%s' is running", fn->name);
      goto out;
    }
    upg_rollback(ctl, fn, "aborted by the operator");
  }
  Impulse__UpgradeInfo ui;
  imp_upg_info(fn, &ui);
  Impulse__UpgradeResponse ok = IMPULSE__UPGRADE_RESPONSE__INIT;
  ok.upgrade = &ui;
  imp_rpc_answer(rpc, IMPULSE__ENVELOPE__BODY_UPGRADE_OK, &ok);
out:
  impulse__envelope__free_unpacked(env, NULL);
}

/* A stored upgrade that was running when the server stopped: resumed. */
void imp_upg_restore(imp_control_t *ctl, imp_function_t *fn) {
  const Impulse__UpgradeRecord *ur = fn->rec->upgrade;
  if (ur == NULL || ur->state == NULL) return;
  int rolling = strcmp(ur->state, "rolling_back") == 0;
  if (!rolling && strcmp(ur->state, "running") != 0) return;
  imp_upgrade_t *u =
      imp_upg_new(ctl, fn, ur->from_version, ur->to_version,
                  ur->has_max_step_pct ? ur->max_step_pct : 25,
                  ur->validate && strcmp(ur->validate, "exact") == 0);
  if (imp_ctl_version_lookup(ctl, fn->name, u->from, NULL, u->from_path,
                             sizeof u->from_path) != 0 ||
      imp_ctl_version_lookup(ctl, fn->name, u->to, NULL, u->to_path,
                             sizeof u->to_path) != 0) {
    IMP_LOG(IMP_LOG_ERROR,
            "restore: the upgrade of %s lost a version; "
            "it is dropped",
            fn->name);
    imp_upg_free(fn);
    return;
  }
  if (rolling) {
    u->state = IMP_UPG_ROLLBACK;
    snprintf(u->reason, sizeof u->reason, "%s",
             ur->reason ? ur->reason : "rolled back");
  }
  imp_upg_weights(fn);
  IMP_LOG(IMP_LOG_INFO, "resuming the upgrade of %s v%u -> v%u (%s)", fn->name,
          u->from, u->to, upg_state_text(u->state));
}
