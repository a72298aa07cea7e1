/*
 * What the controller tells about functions (info.h).
 */
#include "server/control/info.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/codec.h"
#include "core/common.h"
#include "server/control/scaler.h"
#include "server/control/secrets.h"
#include "server/control/upgrade.h"

/* ---- list, describe ------------------------------------------------------ */

static void fill_info(imp_control_t *ctl, imp_function_t *fn,
                      Impulse__FunctionInfo *fi, Impulse__FunctionConfig *cfg) {
  impulse__function_info__init(fi);
  impulse__function_config__init(cfg);
  cfg->has_concurrency = cfg->has_timeout_ms = cfg->has_memory_mb = 1;
  cfg->has_min_instances = cfg->has_max_instances = 1;
  cfg->concurrency =
      fn_cfg(fn, IMP_FN_CONCURRENCY, ctl->cfg->default_concurrency);
  cfg->timeout_ms = fn_cfg(fn, IMP_FN_TIMEOUT_MS, ctl->cfg->default_timeout_ms);
  cfg->memory_mb = fn_cfg(fn, IMP_FN_MEMORY_MB, ctl->cfg->default_memory_mb);
  cfg->min_instances = FN_MIN(ctl, fn);
  cfg->max_instances = FN_MAX(ctl, fn);
  const Impulse__FunctionConfig *rc = fn->rec->config;
  cfg->network = rc && rc->network ? rc->network : "outbound";
  cfg->has_cpu_millis = 1;
  cfg->cpu_millis = rc && rc->has_cpu_millis ? rc->cpu_millis : 0;
  fi->name = fn->name;
  fi->has_version = 1;
  fi->version = fn->rec->version;
  fi->config = cfg;
  fi->sha256 = fn->vrec->sha256;
  fi->has_artifact_size = fi->has_created_ms = fi->has_updated_ms = 1;
  fi->artifact_size = fn->vrec->size;
  fi->created_ms = fn->rec->created_ms;
  fi->updated_ms = fn->rec->updated_ms;
  fi->has_instances = fi->has_ready = fi->has_queued = fi->has_in_flight = 1;
  fi->instances = fn->instances;
  unsigned ready = 0;
  for (size_t i = 0; i < fn->dispatch.count; i++)
    if (fn->dispatch.inst[i]->ready) ready++;
  fi->ready = ready;
  fi->queued = (uint32_t)fn->dispatch.queued;
  fi->in_flight = fn->in_flight;
  fi->has_invocations = fi->has_errors = fi->has_cold_starts = 1;
  fi->invocations = fn->invocations;
  fi->errors = fn->errors;
  fi->cold_starts = fn->cold_starts;
  fi->has_warm_starts = 1;
  fi->warm_starts = fn->warm_starts;
  fi->n_traffic = fn->rec->n_traffic;
  fi->traffic = fn->rec->traffic;
  if (fn->upg || fn->rec->upgrade) {
    imp_upg_info(fn, &fn->upg_info);
    fi->upgrade = &fn->upg_info;
  }
  const Impulse__FunctionConfig *c = fn->rec->config;
  cfg->has_target_concurrency = cfg->has_scale_to_zero_after_s = 1;
  cfg->target_concurrency = fn->sc.as.cfg.target_concurrency;
  cfg->scale_to_zero_after_s = fn->sc.as.cfg.scale_to_zero_after_s;
  cfg->policy = c && c->policy ? c->policy : (char *)"predictive";
  /* Secrets by name (a config holds no values); the environment's names
   * are added by the answers that show them (with_env_names). */
  cfg->n_secrets = c ? c->n_secrets : 0;
  cfg->secrets = c ? c->secrets : NULL;
  imp_scaler_fill_info(fn, fi);
}

/* Adds the names of fn's environment, never its values, to cfg (freed with
 * free(cfg->env)). */
static void with_env_names(imp_function_t *fn, Impulse__FunctionConfig *cfg) {
  cfg->env = imp_ctl_env_names(fn->rec->config, &cfg->n_env);
}

void imp_control_list(imp_control_t *ctl, imp_rpc_t *rpc,
                      Impulse__Envelope *env) {
  size_t n = ctl->invoke.registry.count, k = 0;
  Impulse__FunctionInfo *infos = calloc(n + 1, sizeof *infos);
  Impulse__FunctionConfig *cfgs = calloc(n + 1, sizeof *cfgs);
  Impulse__FunctionInfo **ptrs = calloc(n + 1, sizeof *ptrs);
  if (!infos || !cfgs || !ptrs) abort();
  imp_function_t *f;
  IMP_REGISTRY_EACH(f, &ctl->invoke.registry) {
    if (f->deleted) continue;
    fill_info(ctl, f, &infos[k], &cfgs[k]);
    with_env_names(f, &cfgs[k]);
    ptrs[k] = &infos[k];
    k++;
  }
  Impulse__ListResponse ok = IMPULSE__LIST_RESPONSE__INIT;
  ok.n_functions = k;
  ok.functions = ptrs;
  imp_rpc_answer(rpc, IMPULSE__ENVELOPE__BODY_LIST_OK, &ok);
  for (size_t i = 0; i < k; i++) free(cfgs[i].env);
  free(infos);
  free(cfgs);
  free(ptrs);
  impulse__envelope__free_unpacked(env, NULL);
}

typedef struct vers_ctx_s {
  Impulse__VersionRecord **v;
  size_t n, cap;
} vers_ctx_t;

static int collect_version(void *arg, const char *k, size_t kl, const char *v,
                           size_t vl) {
  vers_ctx_t *vc = arg;
  (void)k;
  (void)kl;
  if (vc->n == vc->cap) {
    vc->cap = vc->cap ? vc->cap * 2 : 8;
    vc->v = realloc(vc->v, vc->cap * sizeof *vc->v);
    if (vc->v == NULL) abort();
  }
  Impulse__VersionRecord *r =
      impulse__version_record__unpack(NULL, vl, (const uint8_t *)v);
  if (r) {
    imp_ctl_env_strip(r->config); /* names only in the answer */
    vc->v[vc->n++] = r;
  }
  return 0;
}

void imp_control_describe(imp_control_t *ctl, imp_rpc_t *rpc,
                          Impulse__Envelope *env) {
  imp_function_t *fn = imp_ctl_fn_find(ctl, env->describe->name);
  if (fn == NULL) {
    imp_rpc_error(rpc, IMPULSE__ERROR_CODE__NOT_FOUND, "unknown function '%s'",
                  env->describe->name);
    impulse__envelope__free_unpacked(env, NULL);
    return;
  }
  Impulse__FunctionInfo fi;
  Impulse__FunctionConfig cfg;
  fill_info(ctl, fn, &fi, &cfg);
  with_env_names(fn, &cfg);
  vers_ctx_t vc = {0};
  imp_store_scan(ctl->store, IMP_CF_VERSIONS, fn->name, strlen(fn->name) + 1,
                 collect_version, &vc);
  size_t ni = fn->dispatch.count;
  Impulse__InstanceInfo *ii = calloc(ni + 1, sizeof *ii);
  Impulse__InstanceInfo **ip = calloc(ni + 1, sizeof *ip);
  if (!ii || !ip) abort();
  for (size_t i = 0; i < ni; i++) {
    imp_instance_t *inst =
        IMP_CONTAINER_OF(fn->dispatch.inst[i], imp_instance_t, d);
    impulse__instance_info__init(&ii[i]);
    ii[i].id = inst->id;
    ii[i].function = fn->name;
    ii[i].has_version = ii[i].has_pid = ii[i].has_outstanding = 1;
    ii[i].has_concurrency = ii[i].has_served = ii[i].has_started_ms = 1;
    ii[i].version = inst->version;
    ii[i].pid = inst->pid;
    ii[i].state = (char *)imp_instance_state_name(inst->state);
    ii[i].outstanding = inst->d.outstanding;
    ii[i].concurrency = inst->d.concurrency;
    ii[i].served = inst->served;
    ii[i].started_ms = imp_wall_ms() - (imp_now_ms() - inst->started_ms);
    static const char *const upg_names[] = {NULL, "detached", "upgrading",
                                            "validating"};
    if (inst->upg_state > 0 && inst->upg_state <= IMP_UPGI_VALIDATING)
      ii[i].upgrade = (char *)upg_names[inst->upg_state];
    ip[i] = &ii[i];
  }
  Impulse__DescribeResponse ok = IMPULSE__DESCRIBE_RESPONSE__INIT;
  ok.function = &fi;
  ok.n_versions = vc.n;
  ok.versions = vc.v;
  ok.n_instances = ni;
  ok.instances = ip;
  imp_rpc_answer(rpc, IMPULSE__ENVELOPE__BODY_DESCRIBE_OK, &ok);
  for (size_t i = 0; i < vc.n; i++)
    impulse__version_record__free_unpacked(vc.v[i], NULL);
  free(vc.v);
  free(cfg.env);
  free(ii);
  free(ip);
  impulse__envelope__free_unpacked(env, NULL);
}

void imp_control_function_info(imp_control_t *ctl, imp_function_t *fn,
                               Impulse__FunctionInfo *fi,
                               Impulse__FunctionConfig *cfg) {
  fill_info(ctl, fn, fi, cfg);
}

/* Bytes of a recorded request's payload `impulse record ls` shows. */
#define PREVIEW_BYTES 64

/* ---- RecordList RPC --------------------------------------------------- */

/* What `impulse record ls` shows of an answer, into buf. */
static const char *answer_status(const char *answer, size_t len, char *buf,
                                 size_t buflen) {
  Impulse__Envelope *env = imp_body_decode(answer, len, NULL);
  if (env == NULL) {
    snprintf(buf, buflen, "undecodable");
  } else if (env->body_case == IMPULSE__ENVELOPE__BODY_INVOKE_OK) {
    const Impulse__InvokeResponse *ok = env->invoke_ok;
    if (!ok->has_status || ok->status == 0)
      snprintf(buf, buflen, "ok");
    else
      snprintf(buf, buflen, "status %d", (int)ok->status);
  } else if (env->body_case == IMPULSE__ENVELOPE__BODY_ERROR) {
    snprintf(buf, buflen, "%s", imp_error_code_name(env->error->code));
  } else {
    snprintf(buf, buflen, "unexpected answer");
  }
  if (env) impulse__envelope__free_unpacked(env, NULL);
  return buf;
}

void imp_control_record_list(imp_control_t *ctl, imp_rpc_t *rpc,
                             Impulse__Envelope *env) {
  const char *name = env->record_list->name;
  imp_recorded_t *r = NULL;
  size_t n = 0;
  Impulse__RecordedCallInfo *info = NULL, **infop = NULL;
  char(*status)[32] = NULL;
  uint8_t(*preview)[PREVIEW_BYTES] = NULL;
  if (imp_ctl_fn_find(ctl, name) == NULL) {
    imp_rpc_error(rpc, IMPULSE__ERROR_CODE__NOT_FOUND, "unknown function '%s'",
                  name);
    goto out;
  }
  int rc = imp_rec_load(ctl->store, name, &r, &n);
  if (rc != 0) {
    imp_rpc_error(rpc, IMPULSE__ERROR_CODE__INTERNAL,
                  "cannot read the recordings of '%s': %s", name,
                  imp_strerror(rc));
    goto out;
  }
  info = calloc(n + 1, sizeof *info);
  infop = calloc(n + 1, sizeof *infop);
  status = calloc(n + 1, sizeof *status);
  preview = calloc(n + 1, sizeof *preview);
  if (info == NULL || infop == NULL || status == NULL || preview == NULL) {
    imp_rpc_error(rpc, IMPULSE__ERROR_CODE__INTERNAL, "out of memory");
    goto out;
  }
  for (size_t i = 0; i < n; i++) {
    Impulse__RecordedCallInfo *ci = &info[i];
    impulse__recorded_call_info__init(ci);
    ci->has_version = ci->has_recorded_ms = ci->has_request_bytes = 1;
    ci->has_duration_us = ci->has_payload_preview = 1;
    ci->version = r[i].version;
    ci->recorded_ms = r[i].recorded_ms;
    ci->duration_us = r[i].duration_us;
    ci->answer_status =
        (char *)answer_status(r[i].answer, r[i].anslen, status[i], 32);
    Impulse__Envelope *req = imp_body_decode(r[i].request, r[i].reqlen, NULL);
    if (req != NULL && req->body_case == IMPULSE__ENVELOPE__BODY_INVOKE) {
      const ProtobufCBinaryData *p = &req->invoke->payload;
      size_t k = p->len < PREVIEW_BYTES ? p->len : PREVIEW_BYTES;
      if (k) memcpy(preview[i], p->data, k);
      ci->request_bytes = p->len;
      ci->payload_preview.data = preview[i];
      ci->payload_preview.len = k;
    }
    if (req != NULL) impulse__envelope__free_unpacked(req, NULL);
    infop[i] = ci;
  }
  Impulse__RecordListResponse ok = IMPULSE__RECORD_LIST_RESPONSE__INIT;
  ok.n_calls = n;
  ok.calls = infop;
  imp_rpc_answer(rpc, IMPULSE__ENVELOPE__BODY_RECORD_LIST_OK, &ok);
out:
  imp_rec_free(r, n);
  free(info);
  free(infop);
  free(status);
  free(preview);
  impulse__envelope__free_unpacked(env, NULL);
}
