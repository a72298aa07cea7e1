/*
 * Traffic splits (traffic.h): `impulse traffic NAME v3=90 v4=10`, stored in
 * the FunctionRecord (synced), applied by the dispatcher with smooth
 * weighted round robin, and instances spread over the versions by weight.
 */
#include "server/control/traffic.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/common.h"
#include "server/control/instances.h"
#include "server/control/records.h"

/* Makes fn->rec->traffic live: artifacts on disk, the dispatcher's split.
 * Returns 0, or a negative error with `err` set (then nothing changed). */
int imp_ctl_traffic_apply(imp_control_t *ctl, imp_function_t *fn,
                          const Impulse__FunctionRecord *rec, char *err,
                          size_t errlen) {
  uint32_t tv[IMP_DISPATCH_MAX_SPLIT], tw[IMP_DISPATCH_MAX_SPLIT];
  char paths[IMP_DISPATCH_MAX_SPLIT][600];
  unsigned n = 0;
  for (size_t i = 0; i < rec->n_traffic && n < IMP_DISPATCH_MAX_SPLIT; i++) {
    const Impulse__TrafficWeight *w = rec->traffic[i];
    int rc = imp_ctl_version_lookup(ctl, fn->name, w->version, NULL, paths[n],
                                    sizeof paths[n]);
    if (rc == -ENOENT) {
      snprintf(err, errlen, "%s has no version %u", fn->name, w->version);
      return rc;
    }
    if (rc != 0) {
      snprintf(err, errlen, "artifact of %s version %u: %s", fn->name,
               w->version, imp_strerror(rc));
      return rc;
    }
    tv[n] = w->version;
    tw[n] = w->weight;
    n++;
  }
  fn->ntraffic = n;
  for (unsigned i = 0; i < n; i++) {
    fn->tversion[i] = tv[i];
    fn->tweight[i] = tw[i];
    memcpy(fn->tpath[i], paths[i], sizeof fn->tpath[i]);
  }
  imp_dispatch_set_split(&fn->dispatch, tv, tw, n);
  return 0;
}

/* After a split change: instances of versions that lost their traffic
 * drain and reload one that has it; a version with traffic and no
 * instance gets one (when the function runs any). */
static void traffic_rebalance(imp_control_t *ctl, imp_function_t *fn) {
  for (size_t i = 0; i < fn->dispatch.count; i++) {
    imp_instance_t *inst =
        IMP_CONTAINER_OF(fn->dispatch.inst[i], imp_instance_t, d);
    if (inst->state != IMP_INST_READY ||
        imp_ctl_version_live(fn, inst->version))
      continue;
    imp_ctl_drain_reload(ctl, fn, inst);
  }
  if (fn->instances == 0) return;
  for (unsigned e = 0; e < fn->ntraffic; e++) {
    if (fn->tweight[e] == 0) continue;
    int found = 0;
    for (size_t i = 0; i < fn->dispatch.count && !found; i++) {
      imp_instance_t *inst =
          IMP_CONTAINER_OF(fn->dispatch.inst[i], imp_instance_t, d);
      found = inst->version == fn->tversion[e] && !inst->stop_when_drained;
    }
    if (found) continue;
    /* Another version with two or more instances gives one up (it reloads
     * the missing version), so the count stays what the autoscaler wants;
     * else one more is started. */
    imp_instance_t *give = NULL;
    for (size_t i = 0; i < fn->dispatch.count && give == NULL; i++) {
      imp_instance_t *inst =
          IMP_CONTAINER_OF(fn->dispatch.inst[i], imp_instance_t, d);
      if (inst->state != IMP_INST_READY || inst->stop_when_drained) continue;
      unsigned same = 0;
      for (size_t j = 0; j < fn->dispatch.count; j++) {
        imp_instance_t *o =
            IMP_CONTAINER_OF(fn->dispatch.inst[j], imp_instance_t, d);
        if (!o->stop_when_drained && o->version == inst->version) same++;
      }
      if (same >= 2) give = inst;
    }
    if (give != NULL) {
      imp_ctl_drain_reload(ctl, fn, give);
    } else if (fn->instances < FN_MAX(ctl, fn)) {
      imp_ctl_start_instance(ctl, fn);
    }
  }
  imp_invoke_pump(&ctl->invoke, fn);
}

static void traffic_reply(imp_rpc_t *rpc, const imp_function_t *fn) {
  Impulse__TrafficWeight w[IMP_DISPATCH_MAX_SPLIT], *wp[IMP_DISPATCH_MAX_SPLIT];
  Impulse__TrafficWeight one = IMPULSE__TRAFFIC_WEIGHT__INIT;
  Impulse__TrafficWeight *onep = &one;
  Impulse__TrafficResponse ok = IMPULSE__TRAFFIC_RESPONSE__INIT;
  if (fn->ntraffic == 0) {
    one.version = fn->rec->version;
    one.weight = 100;
    ok.n_traffic = 1;
    ok.traffic = &onep;
  } else {
    for (unsigned i = 0; i < fn->ntraffic; i++) {
      impulse__traffic_weight__init(&w[i]);
      w[i].version = fn->tversion[i];
      w[i].weight = fn->tweight[i];
      wp[i] = &w[i];
    }
    ok.n_traffic = fn->ntraffic;
    ok.traffic = wp;
  }
  imp_rpc_answer(rpc, IMPULSE__ENVELOPE__BODY_TRAFFIC_OK, &ok);
}

void imp_control_traffic(imp_control_t *ctl, imp_rpc_t *rpc,
                         Impulse__Envelope *env) {
  Impulse__TrafficRequest *req = env->traffic;
  imp_function_t *fn = imp_ctl_fn_find(ctl, req->name);
  char err[256];
  if (fn == NULL) {
    imp_rpc_error(rpc, IMPULSE__ERROR_CODE__NOT_FOUND, "unknown function '%s'",
                  req->name);
    goto out;
  }
  if (req->n_weights == 0) {
    traffic_reply(rpc, fn);
    goto out;
  }
  if (fn->upg) {
    imp_rpc_error(rpc, IMPULSE__ERROR_CODE__BAD_REQUEST,
                  "an upgrade of '%s' is moving its traffic; wait for it "
                  "(impulse upgrade status %s)",
                  fn->name, fn->name);
    goto out;
  }
  unsigned sum = 0;
  if (req->n_weights > IMP_DISPATCH_MAX_SPLIT) {
    imp_rpc_error(rpc, IMPULSE__ERROR_CODE__BAD_REQUEST,
                  "at most %d versions may share the traffic",
                  IMP_DISPATCH_MAX_SPLIT);
    goto out;
  }
  for (size_t i = 0; i < req->n_weights; i++) {
    const Impulse__TrafficWeight *w = req->weights[i];
    for (size_t j = 0; j < i; j++)
      if (req->weights[j]->version == w->version) {
        imp_rpc_error(rpc, IMPULSE__ERROR_CODE__BAD_REQUEST,
                      "version %u is given twice", w->version);
        goto out;
      }
    if (w->weight > 100) {
      imp_rpc_error(rpc, IMPULSE__ERROR_CODE__BAD_REQUEST,
                    "weight %u of version %u is above 100", w->weight,
                    w->version);
      goto out;
    }
    sum += w->weight;
  }
  if (sum != 100) {
    imp_rpc_error(rpc, IMPULSE__ERROR_CODE__BAD_REQUEST,
                  "weights add up to %u, not 100", sum);
    goto out;
  }
  /* A single version at 100 % is no split: it becomes the current one. */
  Impulse__FunctionRecord rec = *fn->rec;
  Impulse__TrafficWeight *live[IMP_DISPATCH_MAX_SPLIT];
  size_t nlive = 0;
  uint32_t single = 0;
  for (size_t i = 0; i < req->n_weights; i++)
    if (req->weights[i]->weight == 100) single = req->weights[i]->version;
  Impulse__FunctionRecord probe = rec;
  probe.n_traffic = req->n_weights;
  probe.traffic = req->weights;
  /* Checks every version exists and its artifact is there. */
  imp_function_t scratch = *fn;
  if (imp_ctl_traffic_apply(ctl, &scratch, &probe, err, sizeof err) != 0) {
    imp_dispatch_set_split(&fn->dispatch, fn->tversion, fn->tweight,
                           fn->ntraffic);
    imp_rpc_error(rpc, IMPULSE__ERROR_CODE__BAD_REQUEST, "%s", err);
    goto out;
  }
  if (single) {
    rec.version = single;
    rec.n_traffic = 0;
    rec.traffic = NULL;
  } else {
    for (size_t i = 0; i < req->n_weights; i++) live[nlive++] = req->weights[i];
    rec.n_traffic = nlive;
    rec.traffic = live;
  }
  rec.has_updated_ms = 1;
  rec.updated_ms = imp_wall_ms();
  imp_batch_t *b = imp_batch_new();
  imp_batch_put_msg(b, ctl->store, IMP_CF_FUNCTIONS, fn->name, strlen(fn->name),
                    &rec.base);
  int rc = imp_store_write(ctl->store, b, 1, err, sizeof err);
  imp_batch_free(b);
  if (rc != 0) {
    imp_dispatch_set_split(&fn->dispatch, fn->tversion, fn->tweight,
                           fn->ntraffic);
    imp_rpc_error(rpc, IMPULSE__ERROR_CODE__INTERNAL,
                  "could not store the traffic split: %s", err);
    goto out;
  }
  Impulse__FunctionRecord *nrec =
      CLONE(Impulse__FunctionRecord, impulse__function_record, &rec);
  impulse__function_record__free_unpacked(fn->rec, NULL);
  fn->rec = nrec;
  if (single) {
    imp_ctl_set_current(ctl, fn, single);
  }
  imp_ctl_traffic_apply(ctl, fn, fn->rec, err, sizeof err);
  IMP_LOG(IMP_LOG_INFO, "traffic of %s: %s", fn->name,
          single ? "one version" : "split");
  traffic_rebalance(ctl, fn);
  traffic_reply(rpc, fn);
out:
  impulse__envelope__free_unpacked(env, NULL);
}
