/*
 * Deploys (deploy.h): name and bounds checked, the bytes checked to be an
 * ELF shared object for this machine, the artifact written content-
 * addressed and loaded by a throw-away worker (validate_only), and only
 * then one synced WriteBatch stores the artifact, the version and the
 * function. A promoting deploy of a function with serving instances starts
 * a rolling upgrade (upgrade.c).
 */
#include "server/control/deploy.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/common.h"
#include "core/limits.h"
#include "server/control/elf_check.h"
#include "server/control/functions.h"
#include "server/control/instances.h"
#include "server/control/records.h"
#include "server/control/scaler.h"
#include "server/control/secrets.h"
#include "server/control/upgrade.h"

/* A deploy waiting for its validation worker. */
typedef struct pending_deploy_s {
  imp_control_t *ctl;
  imp_rpc_t *rpc;         /* answered once validated and stored */
  Impulse__Envelope *req; /* the DeployRequest, owned */
  char sha[65];
  char path[600];
  uv_timer_t timer;
  imp_instance_t *inst;
  int done;
} pending_deploy_t;

/* ---- deploy -------------------------------------------------------------- */

static void pd_timer_closed(uv_handle_t *h) {
  pending_deploy_t *pd = IMP_CONTAINER_OF(h, pending_deploy_t, timer);
  impulse__envelope__free_unpacked(pd->req, NULL);
  free(pd);
}

static void pd_finish(pending_deploy_t *pd) {
  pd->done = 1;
  uv_timer_stop(&pd->timer);
  uv_close((uv_handle_t *)&pd->timer, pd_timer_closed);
}

static void on_pd_timeout(uv_timer_t *t) {
  pending_deploy_t *pd = IMP_CONTAINER_OF(t, pending_deploy_t, timer);
  imp_instance_t *inst = pd->inst;
  inst->pending_deploy = NULL;
  imp_rpc_error(pd->rpc, IMPULSE__ERROR_CODE__INVALID_ARTIFACT,
                "artifact rejected: loading it did not finish within %u ms",
                pd->ctl->cfg->validate_timeout_ms);
  imp_instance_kill(inst);
  pd_finish(pd);
}

static void commit_deploy(imp_control_t *ctl, pending_deploy_t *pd) {
  Impulse__DeployRequest *req = pd->req->deploy;
  imp_function_t *fn = imp_ctl_fn_find(ctl, req->name);
  uint64_t now = imp_wall_ms();
  uint32_t version = 1;
  if (fn)
    version = fn->rec->has_next_version ? fn->rec->next_version
                                        : fn->rec->version + 1;

  int promote = !(req->has_no_promote && req->no_promote && fn != NULL);
  /* A promoting deploy of a function with serving instances rolls them
   * over step by step (upgrade.c). */
  int rolling = 0;
  if (promote && fn != NULL)
    for (size_t i = 0; i < fn->dispatch.count && !rolling; i++)
      rolling = fn->dispatch.inst[i]->ready;
  char from_path[600];
  uint32_t from_version = fn ? fn->rec->version : 0;
  snprintf(from_path, sizeof from_path, "%s", fn ? fn->artifact_path : "");
  Impulse__FunctionConfig cfg = IMPULSE__FUNCTION_CONFIG__INIT;
  imp_ctl_merge_config(&cfg, req->config, fn ? fn->rec->config : NULL);
  Impulse__FunctionRecord rec = IMPULSE__FUNCTION_RECORD__INIT;
  rec.name = req->name;
  rec.version = version;
  rec.config = &cfg;
  Impulse__UpgradeRecord ur = IMPULSE__UPGRADE_RECORD__INIT;
  if (rolling) {
    ur.from_version = from_version;
    ur.to_version = version;
    ur.state = (char *)"running";
    ur.has_max_step_pct = ur.has_started_ms = ur.has_updated_ms = 1;
    ur.max_step_pct =
        req->has_max_step_pct && req->max_step_pct ? req->max_step_pct : 25;
    ur.validate = req->validate ? req->validate : (char *)"status";
    ur.started_ms = ur.updated_ms = now;
    rec.upgrade = &ur;
  }
  if (!promote) {
    /* Stored, with no traffic: the current version and split stay. */
    rec.version = fn->rec->version;
    rec.n_traffic = fn->rec->n_traffic;
    rec.traffic = fn->rec->traffic;
    rec.config = fn->rec->config;
  }
  rec.has_created_ms = rec.has_updated_ms = rec.has_next_version = 1;
  rec.created_ms = fn && fn->rec->has_created_ms ? fn->rec->created_ms : now;
  rec.updated_ms = now;
  rec.next_version = version + 1;
  Impulse__VersionRecord vrec = IMPULSE__VERSION_RECORD__INIT;
  vrec.function = req->name;
  vrec.version = version;
  vrec.sha256 = pd->sha;
  vrec.has_size = vrec.has_created_ms = 1;
  vrec.size = req->artifact.len;
  vrec.created_ms = now;
  vrec.config = &cfg;

  char vkey[80];
  size_t vklen = imp_store_version_key(req->name, version, vkey);
  imp_batch_t *b = imp_batch_new();
  if (!imp_ctl_artifact_in_store(ctl, pd->sha))
    imp_batch_put(b, ctl->store, IMP_CF_ARTIFACTS, pd->sha, strlen(pd->sha),
                  req->artifact.data, req->artifact.len);
  imp_batch_put_msg(b, ctl->store, IMP_CF_VERSIONS, vkey, vklen, &vrec.base);
  imp_batch_put_msg(b, ctl->store, IMP_CF_FUNCTIONS, req->name,
                    strlen(req->name), &rec.base);
  char err[256];
  int rc = imp_store_write(ctl->store, b, 1, err, sizeof err);
  imp_batch_free(b);
  if (rc != 0) {
    imp_rpc_error(pd->rpc, IMPULSE__ERROR_CODE__INTERNAL,
                  "could not store the deployment: %s", err);
    return;
  }

  Impulse__FunctionRecord *nrec =
      CLONE(Impulse__FunctionRecord, impulse__function_record, &rec);
  Impulse__VersionRecord *nvrec =
      CLONE(Impulse__VersionRecord, impulse__version_record, &vrec);
  if (!promote) {
    impulse__function_record__free_unpacked(fn->rec, NULL);
    fn->rec = nrec;
    impulse__version_record__free_unpacked(nvrec, NULL);
    IMP_LOG(IMP_LOG_INFO, "stored %s version %u without traffic (sha256 %.12s)",
            fn->name, version, pd->sha);
  } else if (fn == NULL) {
    fn = imp_ctl_fn_create(ctl, nrec, nvrec);
    if (fn == NULL) abort();
    snprintf(fn->artifact_path, sizeof fn->artifact_path, "%s", pd->path);
  } else {
    snprintf(fn->artifact_path, sizeof fn->artifact_path, "%s", pd->path);
    impulse__function_record__free_unpacked(fn->rec, NULL);
    impulse__version_record__free_unpacked(fn->vrec, NULL);
    fn->rec = nrec;
    fn->vrec = nvrec;
    fn->dispatch.version = version;
    /* Promoted: all traffic to the new version, the split is gone. */
    fn->ntraffic = 0;
    imp_dispatch_set_split(&fn->dispatch, NULL, NULL, 0);
    imp_scaler_fn_config(ctl, fn);
    if (rolling) {
      imp_upgrade_t *u =
          imp_upg_new(ctl, fn, from_version, version, ur.max_step_pct,
                      strcmp(ur.validate, "exact") == 0);
      snprintf(u->from_path, sizeof u->from_path, "%s", from_path);
      snprintf(u->to_path, sizeof u->to_path, "%s", pd->path);
      for (size_t i = 0; i < fn->dispatch.count; i++)
        IMP_CONTAINER_OF(fn->dispatch.inst[i], imp_instance_t, d)->upg_state =
            IMP_UPGI_SERVING;
      IMP_LOG(IMP_LOG_INFO,
              "upgrading %s v%u -> v%u, %u%% of the instances at a time, "
              "validated with %zu recorded calls",
              fn->name, from_version, version, ur.max_step_pct, u->nrecs);
      imp_upg_weights(fn);
      imp_upg_kick(fn);
    }
  }
  if (promote && from_version != 0 && !rolling) {
    /* No instance serves: the ones starting reload the new version as soon
     * as their in-flight calls are done. */
    for (size_t i = 0; i < fn->dispatch.count; i++) {
      imp_instance_t *inst =
          IMP_CONTAINER_OF(fn->dispatch.inst[i], imp_instance_t, d);
      if (inst->state == IMP_INST_READY) imp_ctl_drain_reload(ctl, fn, inst);
    }
  }
  if (promote)
    IMP_LOG(IMP_LOG_INFO, "deployed %s version %u (sha256 %.12s, %zu bytes)",
            fn->name, version, pd->sha, req->artifact.len);

  Impulse__DeployResponse ok = IMPULSE__DEPLOY_RESPONSE__INIT;
  ok.version = version;
  ok.sha256 = pd->sha;
  imp_rpc_answer(pd->rpc, IMPULSE__ENVELOPE__BODY_DEPLOY_OK, &ok);
  imp_ctl_ensure_min(ctl, fn);
  imp_invoke_pump(&ctl->invoke, fn);
}

void imp_ctl_validated(imp_control_t *ctl, imp_instance_t *inst, int code,
                       const char *message) {
  pending_deploy_t *pd = inst->pending_deploy;
  inst->pending_deploy = NULL;
  /* The validation worker is thrown away whatever the outcome: the object's
   * constructors have run in it. */
  imp_instance_kill(inst);
  if (pd == NULL || pd->done) return;
  if (code != 0) {
    /* The loader names the file it was given: a server path that means
     * nothing to the caller. */
    char clean[512];
    const char *m = message ? message : "load failed";
    size_t pl = strlen(pd->path);
    const char *at = strstr(m, pd->path);
    if (at != NULL)
      snprintf(clean, sizeof clean, "%.*sthe artifact%s", (int)(at - m), m,
               at + pl);
    else
      snprintf(clean, sizeof clean, "%s", m);
    imp_rpc_error(pd->rpc, IMPULSE__ERROR_CODE__INVALID_ARTIFACT,
                  "artifact rejected: %s", clean);
    if (!imp_ctl_artifact_in_store(ctl, pd->sha)) unlink(pd->path);
  } else {
    commit_deploy(ctl, pd);
  }
  pd_finish(pd);
}

void imp_control_deploy(imp_control_t *ctl, imp_rpc_t *rpc,
                        Impulse__Envelope *env) {
  Impulse__DeployRequest *req = env->deploy;
  char why[256];
  if (!imp_name_valid(req->name)) {
    imp_rpc_error(rpc, IMPULSE__ERROR_CODE__BAD_REQUEST,
                  "invalid function name '%.80s': use 1-64 letters, digits, "
                  "'-', '_' or '.', starting with a letter or digit",
                  req->name);
    goto drop;
  }
  imp_function_t *running = imp_ctl_fn_find(ctl, req->name);
  if (running && running->upg && !(req->has_no_promote && req->no_promote)) {
    imp_rpc_error(
        rpc, IMPULSE__ERROR_CODE__BAD_REQUEST,
        "an upgrade of '%s' (v%u -> v%u) is %s; wait for it or "
        "`impulse upgrade abort %s`",
        req->name, FN_UPG(running)->from, FN_UPG(running)->to,
        FN_UPG(running)->state == IMP_UPG_ROLLBACK ? "rolling back" : "running",
        req->name);
    goto drop;
  }
  if (req->max_step_pct > IMP_MAX_STEP_PCT_MAX ||
      (req->validate && strcmp(req->validate, "status") != 0 &&
       strcmp(req->validate, "exact") != 0)) {
    imp_rpc_error(rpc, IMPULSE__ERROR_CODE__BAD_REQUEST,
                  "--max-step must be 1-100 and --validate status or exact");
    goto drop;
  }
  if (req->has_no_promote && req->no_promote &&
      imp_ctl_fn_find(ctl, req->name) == NULL) {
    imp_rpc_error(rpc, IMPULSE__ERROR_CODE__BAD_REQUEST,
                  "--no-promote needs a deployed function: '%s' has no "
                  "version serving yet",
                  req->name);
    goto drop;
  }
  if (req->config && req->config->has_concurrency &&
      (req->config->concurrency < 1 ||
       req->config->concurrency > IMP_CONCURRENCY_MAX)) {
    imp_rpc_error(rpc, IMPULSE__ERROR_CODE__BAD_REQUEST,
                  "concurrency must be between 1 and %u", IMP_CONCURRENCY_MAX);
    goto drop;
  }
  if (req->config && req->config->has_timeout_ms &&
      (req->config->timeout_ms < 1 ||
       req->config->timeout_ms > IMP_TIMEOUT_MAX_MS)) {
    imp_rpc_error(rpc, IMPULSE__ERROR_CODE__BAD_REQUEST,
                  "timeout must be between 1 and %u ms", IMP_TIMEOUT_MAX_MS);
    goto drop;
  }
  if (req->config && req->config->has_max_instances &&
      (req->config->max_instances < 1 ||
       req->config->max_instances > IMP_INSTANCES_MAX)) {
    imp_rpc_error(rpc, IMPULSE__ERROR_CODE__BAD_REQUEST,
                  "max instances must be between 1 and %u", IMP_INSTANCES_MAX);
    goto drop;
  }
  const char *bad = req->config ? imp_scaler_check(req->config) : NULL;
  if (bad != NULL) {
    imp_rpc_error(rpc, IMPULSE__ERROR_CODE__BAD_REQUEST, "%s", bad);
    goto drop;
  }
  if (req->config && req->config->has_min_instances &&
      req->config->min_instances > IMP_INSTANCES_MAX) {
    imp_rpc_error(rpc, IMPULSE__ERROR_CODE__BAD_REQUEST,
                  "min instances must be at most %u", IMP_INSTANCES_MAX);
    goto drop;
  }
  if (req->config && req->config->has_memory_mb &&
      req->config->memory_mb > IMP_MEMORY_MAX_MB) {
    imp_rpc_error(rpc, IMPULSE__ERROR_CODE__BAD_REQUEST,
                  "memory must be at most 1048576 MB (0 = no limit)");
    goto drop;
  }
  if (req->config && req->config->has_min_instances &&
      req->config->has_max_instances &&
      req->config->min_instances > req->config->max_instances) {
    imp_rpc_error(rpc, IMPULSE__ERROR_CODE__BAD_REQUEST,
                  "min instances (%u) is above max instances (%u)",
                  req->config->min_instances, req->config->max_instances);
    goto drop;
  }
  if (req->config && req->config->network &&
      strcmp(req->config->network, "none") != 0 &&
      strcmp(req->config->network, "outbound") != 0) {
    imp_rpc_error(rpc, IMPULSE__ERROR_CODE__BAD_REQUEST,
                  "network must be none or outbound, not '%.64s'",
                  req->config->network);
    goto drop;
  }
  if (req->config && req->config->network &&
      strcmp(req->config->network, "none") == 0 &&
      strcmp(ctl->fleet.iso.mode, "userns") != 0) {
    imp_rpc_error(rpc, IMPULSE__ERROR_CODE__BAD_REQUEST,
                  "network none needs the userns sandbox; this server's is "
                  "'%s' (see `impulse info`)",
                  ctl->fleet.iso.mode);
    goto drop;
  }
  if (req->config && req->config->has_cpu_millis &&
      req->config->cpu_millis > 0 && !ctl->fleet.iso.has_cpu) {
    imp_rpc_error(rpc, IMPULSE__ERROR_CODE__BAD_REQUEST,
                  "a cpu limit needs a cpu cgroup, which this server does "
                  "not have (see `impulse info`)");
    goto drop;
  }
  if (req->config && req->config->has_cpu_millis &&
      req->config->cpu_millis > IMP_CPU_MAX_MILLIS) {
    imp_rpc_error(rpc, IMPULSE__ERROR_CODE__BAD_REQUEST,
                  "cpu must be at most %u CPUs", IMP_CPU_MAX_MILLIS / 1000);
    goto drop;
  }
  if (req->config && imp_env_valid(req->config->env, req->config->n_env, why,
                                   sizeof why) != 0) {
    imp_rpc_error(rpc, IMPULSE__ERROR_CODE__BAD_REQUEST, "%s", why);
    goto drop;
  }
  /* The secrets it names exist and their variables clash with nothing of
   * the environment it will have. */
  Impulse__FunctionConfig merged = IMPULSE__FUNCTION_CONFIG__INIT;
  imp_function_t *prev = imp_ctl_fn_find(ctl, req->name);
  imp_ctl_merge_config(&merged, req->config, prev ? prev->rec->config : NULL);
  int code = imp_ctl_secrets_check(ctl, &merged, why, sizeof why);
  if (code != 0) {
    imp_rpc_error(rpc, code, "%s", why);
    goto drop;
  }
  if (imp_elf_check(req->artifact.data, req->artifact.len, why, sizeof why) !=
      0) {
    imp_rpc_error(rpc, IMPULSE__ERROR_CODE__INVALID_ARTIFACT,
                  "artifact rejected: %s", why);
    goto drop;
  }
  pending_deploy_t *pd = calloc(1, sizeof *pd);
  if (pd == NULL) {
    imp_rpc_error(rpc, IMPULSE__ERROR_CODE__INTERNAL, "out of memory");
    goto drop;
  }
  pd->ctl = ctl;
  imp_sha256_hex(req->artifact.data, req->artifact.len, pd->sha);
  imp_ctl_artifact_path(ctl, pd->sha, pd->path, sizeof pd->path);
  /* Written unless an intact copy is there: a redeploy of the same bytes
   * repairs a copy changed on disk. */
  if (!imp_ctl_artifact_intact(pd->path, pd->sha)) {
    if (access(pd->path, F_OK) == 0)
      IMP_LOG(IMP_LOG_WARN,
              "artifact %s of %s was changed on disk: written again", pd->sha,
              req->name);
    int rc =
        imp_ctl_write_file(pd->path, req->artifact.data, req->artifact.len);
    if (rc != 0) {
      imp_rpc_error(rpc, IMPULSE__ERROR_CODE__INTERNAL,
                    "cannot write artifact: %s", imp_strerror(rc));
      free(pd);
      goto drop;
    }
  }
  imp_instance_t *inst = imp_instance_take_generic(&ctl->fleet);
  if (inst == NULL) inst = imp_instance_spawn(&ctl->fleet, 1);
  if (inst == NULL) {
    imp_rpc_error(rpc, IMPULSE__ERROR_CODE__INTERNAL,
                  "cannot start a validation worker");
    free(pd);
    goto drop;
  }
  pd->rpc = rpc;
  pd->req = env;
  pd->inst = inst;
  inst->pending_deploy = pd;
  uv_timer_init(ctl->loop, &pd->timer);
  uv_timer_start(&pd->timer, on_pd_timeout, ctl->cfg->validate_timeout_ms, 0);
  /* Validated with the environment it will run with, its secrets too. */
  char **fn_env = NULL;
  size_t nenv = 0;
  if (imp_ctl_secrets_env(ctl, &merged, &fn_env, &nenv) != 0) abort();
  imp_instance_validate(inst, pd->path, pd->sha, req->name, fn_env, nenv);
  free(fn_env);
  imp_fleet_refill_later(&ctl->fleet);
  return;
drop:
  impulse__envelope__free_unpacked(env, NULL);
}
