/*
 * Controller (the AppMaster): owns the functions, their versions and scale
 * bounds; validates and commits deployments; routes invocations through the
 * dispatcher onto instances; restores everything from the store at start.
 *
 * Every control change is committed as one synced WriteBatch before the
 * caller hears OK, then applied to the in-memory state.
 */
#include <ctype.h>
#include <elf.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/codec.h"
#include "server/server.h"
#include "server/upgrade.h"

#if defined(__x86_64__)
#define IMP_ELF_MACHINE EM_X86_64
#elif defined(__aarch64__)
#define IMP_ELF_MACHINE EM_AARCH64
#else
#error "unsupported architecture: add its ELF machine here"
#endif

/* A deploy waiting for its validation worker. */
typedef struct pending_deploy_s {
  imp_server_t *server;
  imp_rpc_t *rpc;         /* answered once validated and stored */
  Impulse__Envelope *req; /* the DeployRequest, owned */
  char sha[65];
  char path[600];
  uv_timer_t timer;
  imp_instance_t *inst;
  int done;
} pending_deploy_t;

/* ---- function table ------------------------------------------------------ */

static imp_function_t *fn_find(imp_server_t *server, const char *name) {
  return imp_registry_find(&server->invoke.registry, name);
}

#define fn_cfg(fn, which, def) imp_fn_setting((fn), (which), (def))
#define FN_MIN(s, f) fn_cfg((f), IMP_FN_MIN_INSTANCES, 0)
#define FN_MAX(s, f) \
  fn_cfg((f), IMP_FN_MAX_INSTANCES, (s)->cfg.default_max_instances)

static void artifact_path(imp_server_t *server, const char *sha, char *out,
                          size_t outlen) {
  int n = snprintf(out, outlen, "%s/%s.so", server->artifact_dir, sha);
  if (n < 0 || (size_t)n >= outlen)
    out[0] = '\0'; /* dirs are checked at start */
}

/* Writes bytes to path atomically (temp file, fsync, rename). */
static int write_file_atomic(const char *path, const void *data, size_t len) {
  char tmp[700];
  snprintf(tmp, sizeof tmp, "%s.tmp.%d", path, (int)getpid());
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return -errno;
  const char *p = data;
  size_t left = len;
  while (left > 0) {
    ssize_t n = write(fd, p, left);
    if (n < 0) {
      if (errno == EINTR) continue;
      int e = -errno;
      close(fd);
      unlink(tmp);
      return e;
    }
    p += n;
    left -= (size_t)n;
  }
  if (fsync(fd) != 0 || close(fd) != 0) {
    int e = -errno;
    unlink(tmp);
    return e;
  }
  if (rename(tmp, path) != 0) {
    int e = -errno;
    unlink(tmp);
    return e;
  }
  return 0;
}

/* Makes sure the artifact file of `sha` exists, from the store if needed. */
static int ensure_artifact_file(imp_server_t *server, const char *sha,
                                char *path, size_t pathlen) {
  artifact_path(server, sha, path, pathlen);
  if (access(path, R_OK) == 0) return 0;
  char *val;
  size_t vlen;
  int rc = imp_store_get(server->store, IMP_CF_ARTIFACTS, sha, strlen(sha),
                         &val, &vlen);
  if (rc != 0) return rc;
  char got[65];
  imp_sha256_hex(val, vlen, got);
  if (strcmp(got, sha) != 0) {
    free(val);
    IMP_LOG(IMP_LOG_ERROR, "artifact %s is corrupt in the store", sha);
    return IMP_ESTORE;
  }
  rc = write_file_atomic(path, val, vlen);
  free(val);
  return rc;
}

static imp_function_t *fn_create(imp_server_t *server,
                                 Impulse__FunctionRecord *rec,
                                 Impulse__VersionRecord *vrec) {
  imp_function_t *fn = imp_registry_add(&server->invoke.registry, rec, vrec);
  if (fn != NULL) imp_scaler_fn_init(server, fn);
  return fn;
}

static void fn_free(imp_server_t *server, imp_function_t *fn) {
  imp_scaler_fn_free(fn);
  imp_upg_free(fn);
  imp_registry_remove(&server->invoke.registry, fn);
}

/* ---- instances of a function ------------------------------------------------
 */

/* fn->starting counts attached instances that are not serving yet. */
void imp_controller_mark_starting(imp_function_t *fn, imp_instance_t *inst,
                                  int on) {
  if (on && !inst->counted_starting) fn->starting++;
  if (!on && inst->counted_starting) fn->starting--;
  inst->counted_starting = on;
}

static void attach(imp_function_t *fn, imp_instance_t *inst) {
  inst->function = fn;
  inst->owned = 1;
  inst->d.ready = 0;
  if (imp_dispatch_add(&fn->dispatch, &inst->d) != 0) abort();
  fn->instances++;
  imp_controller_mark_starting(fn, inst, 1);
}

static void detach(imp_function_t *fn, imp_instance_t *inst) {
  imp_dispatch_remove(&fn->dispatch, &inst->d);
  fn->instances--;
  imp_controller_mark_starting(fn, inst, 0);
}

/* Starts one more instance of fn: a warm worker if there is one, else a new
 * process. */
static int start_instance(imp_server_t *server, imp_function_t *fn) {
  imp_instance_t *inst = imp_instance_take_generic(&server->fleet);
  if (inst == NULL) {
    server->fleet.pool_misses++; /* sizes the warm pool (scaler.c) */
    inst = imp_instance_spawn(&server->fleet, 1);
  } else {
    fn->warm_starts++;
  }
  if (inst == NULL) return -EAGAIN;
  attach(fn, inst);
  imp_controller_load(server, fn, inst);
  imp_fleet_refill_later(&server->fleet);
  return 0;
}

int imp_controller_start_instance(imp_server_t *server, imp_function_t *fn) {
  return start_instance(server, fn);
}

void imp_controller_retire_idle(imp_server_t *server, imp_function_t *fn,
                                unsigned keep) {
  unsigned min = FN_MIN(server, fn);
  if (keep < min) keep = min;
  for (size_t i = fn->dispatch.count; i > 0 && fn->instances > keep; i--) {
    imp_instance_t *inst =
        IMP_CONTAINER_OF(fn->dispatch.inst[i - 1], imp_instance_t, d);
    if (inst->state != IMP_INST_READY || inst->d.outstanding) continue;
    IMP_LOG(IMP_LOG_DEBUG, "retiring idle instance %llu of %s (%u wanted)",
            (unsigned long long)inst->id, fn->name, keep);
    inst->state = IMP_INST_DRAINING;
    detach(fn, inst);
    inst->function = NULL;
    imp_instance_kill(inst);
  }
}

static void ensure_min(imp_server_t *server, imp_function_t *fn) {
  unsigned min = FN_MIN(server, fn);
  while (fn->instances < min)
    if (start_instance(server, fn) != 0) break;
}

/* Starts instances while the queue holds more calls than the instances being
 * started will be able to take. */
static void scale_for_queue(imp_server_t *server, imp_function_t *fn) {
  unsigned conc =
      fn_cfg(fn, IMP_FN_CONCURRENCY, server->cfg.default_concurrency);
  if (conc == 0) conc = 1;
  while (fn->dispatch.queued > (size_t)fn->starting * conc &&
         fn->instances < FN_MAX(server, fn)) {
    if (start_instance(server, fn) != 0) break;
    fn->cold_starts++;
  }
}

/* What loading fn's `version` (its artifact at `path`) into an instance
 * means: its settings, and the pipelining allowance of the moment. */
static void load_spec(imp_server_t *server, imp_function_t *fn,
                      uint32_t version, const char *path, imp_load_t *out) {
  uint32_t conc =
      fn_cfg(fn, IMP_FN_CONCURRENCY, server->cfg.default_concurrency);
  if (conc == 0) conc = 1;
  out->function = fn->name;
  out->version = version;
  out->path = path;
  out->concurrency = conc;
  out->extra = imp_pipe_extra(&fn->pipe, conc);
  out->memory_mb = fn_cfg(fn, IMP_FN_MEMORY_MB, server->cfg.default_memory_mb);
}

int imp_controller_load(imp_server_t *server, imp_function_t *fn,
                        imp_instance_t *inst) {
  inst->function = fn;
  if (inst->upg_state == IMP_UPGI_DETACHED)
    inst->upg_state = IMP_UPGI_UPGRADING;
  if (inst->state == IMP_INST_STARTING) return 0; /* when connected */
  uint32_t version;
  const char *path = imp_controller_load_target(fn, inst, &version);
  imp_load_t load;
  load_spec(server, fn, version, path, &load);
  return imp_instance_load(inst, &load);
}

/* ---- the call path's owner (invoke/call.h) ------------------------------ */

/* fn's queue holds more calls than its starting instances will take. */
static void iv_queued(void *owner, imp_function_t *fn) {
  scale_for_queue(owner, fn);
}

/* A call of fn timed out; its instance is being replaced. */
static void iv_timed_out(void *owner, imp_function_t *fn) {
  imp_server_t *server = owner;
  ensure_min(server, fn);
  scale_for_queue(server, fn);
  if (fn->dispatch.queued && fn->starting == 0 &&
      imp_dispatch_free_slots(&fn->dispatch) == 0)
    start_instance(server, fn);
}

static const imp_invoke_ops_t invoke_ops = {iv_queued, iv_timed_out};

void imp_controller_invoke_init(imp_server_t *server) {
  imp_invoke_init(&server->invoke, server->loop, &server->cfg, server->store,
                  &invoke_ops, server);
  imp_invoke_invoker_init(&server->invoke);
}

static void validated(imp_server_t *server, imp_instance_t *inst, int code,
                      const char *message);

/* ---- instance events ------------------------------------------------------
 */

static void instance_ready(imp_server_t *server, imp_instance_t *inst) {
  imp_function_t *fn = inst->function;
  if (fn == NULL) { /* detached while loading */
    imp_instance_kill(inst);
    return;
  }
  if (fn->deleted || !imp_controller_version_live(fn, inst->version)) {
    /* Deleted, redeployed or taken out of the split while loading. */
    if (fn->deleted) {
      inst->state = IMP_INST_DRAINING;
      imp_instance_kill(inst);
    } else {
      imp_controller_load(server, fn, inst);
    }
    return;
  }
  if (imp_upg_on_ready(server, fn, inst)) return;
  imp_controller_mark_starting(fn, inst, 0);
  inst->d.ready = 1;
  IMP_LOG(IMP_LOG_DEBUG, "instance %llu serves %s v%u (%llu ms after start)",
          (unsigned long long)inst->id, fn->name, inst->version,
          (unsigned long long)(inst->ready_ms - inst->started_ms));
  imp_invoke_room(&server->invoke, fn);
}

static void instance_load_failed(imp_server_t *server, imp_instance_t *inst,
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
  (void)server;
  (void)code;
}

/* The fleet: an instance ended; the calls it carried have been told
 * (with crash blame, policy/blame.h). */
static void instance_gone(imp_server_t *server, imp_instance_t *inst, int code,
                          const char *message) {
  (void)code;
  if (inst->validate_only) {
    if (inst->pending_deploy) {
      char msg[512];
      snprintf(msg, sizeof msg, "loading it crashed the validation worker (%s)",
               message);
      validated(server, inst, IMPULSE__ERROR_CODE__INVALID_ARTIFACT, msg);
    }
    return;
  }
  imp_function_t *fn = inst->function;
  if (fn == NULL) return;
  int was_loading = inst->ready_ms == 0 || inst->load_wid != 0;
  detach(fn, inst);
  if (fn->deleted || server->stopping) return;
  if (was_loading && !inst->stop_when_drained) {
    char msg[600];
    snprintf(msg, sizeof msg, "no instance of '%s' could start: %s", fn->name,
             message);
    if (fn->starting == 0 && imp_dispatch_free_slots(&fn->dispatch) == 0)
      imp_invoke_fail_queue(fn, IMPULSE__ERROR_CODE__UNAVAILABLE, msg);
    return; /* do not loop on an instance that dies while loading */
  }
  ensure_min(server, fn);
  scale_for_queue(server, fn);
}

/* ---- deploy ----------------------------------------------------------------
 */

/* Checks that bytes are an ELF shared object for this machine. Writes the
 * reason to why on failure. */
static int check_elf(const uint8_t *p, size_t n, char *why, size_t whylen) {
  if (n < sizeof(Elf64_Ehdr) || memcmp(p, ELFMAG, SELFMAG) != 0) {
    snprintf(why, whylen, "not an ELF file (%zu bytes, no ELF magic)", n);
    return -1;
  }
  if (p[EI_CLASS] != ELFCLASS64) {
    snprintf(why, whylen, "ELF class %d, this machine needs 64-bit objects",
             p[EI_CLASS]);
    return -1;
  }
  if (p[EI_DATA] != ELFDATA2LSB) {
    snprintf(why, whylen, "ELF byte order is not little-endian");
    return -1;
  }
  Elf64_Ehdr eh;
  memcpy(&eh, p, sizeof eh);
  if (eh.e_type != ET_DYN) {
    snprintf(why, whylen,
             "ELF type %u is not a shared object (build with -shared -fPIC)",
             eh.e_type);
    return -1;
  }
  if (eh.e_machine != IMP_ELF_MACHINE) {
    snprintf(why, whylen, "ELF machine %u does not match this machine (%u)",
             eh.e_machine, IMP_ELF_MACHINE);
    return -1;
  }
  return 0;
}

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
                pd->server->cfg.validate_timeout_ms);
  imp_instance_kill(inst);
  pd_finish(pd);
}

static int artifact_in_store(imp_server_t *server, const char *sha) {
  char *v;
  size_t vl;
  if (imp_store_get(server->store, IMP_CF_ARTIFACTS, sha, strlen(sha), &v,
                    &vl) != 0)
    return 0;
  free(v);
  return 1;
}

/* Fills a FunctionConfig from the request, falling back to `prev`. */
static void merge_config(Impulse__FunctionConfig *out,
                         const Impulse__FunctionConfig *req,
                         const Impulse__FunctionConfig *prev) {
#define MERGE(f)                      \
  if (req && req->has_##f) {          \
    out->has_##f = 1;                 \
    out->f = req->f;                  \
  } else if (prev && prev->has_##f) { \
    out->has_##f = 1;                 \
    out->f = prev->f;                 \
  }
  MERGE(concurrency)
  MERGE(timeout_ms)
  MERGE(memory_mb)
  MERGE(min_instances)
  MERGE(max_instances)
  MERGE(target_concurrency)
  MERGE(scale_to_zero_after_s)
#undef MERGE
  if (req && req->policy)
    out->policy = req->policy;
  else if (prev && prev->policy)
    out->policy = prev->policy;
}

/* Packs and re-reads a message so the in-memory copy is owned the same way
 * as one read from the store. */
#define CLONE(type, fname, msg)                                              \
  ({                                                                         \
    size_t _n =                                                              \
        protobuf_c_message_get_packed_size((const ProtobufCMessage *)(msg)); \
    uint8_t *_b = malloc(_n ? _n : 1);                                       \
    protobuf_c_message_pack((const ProtobufCMessage *)(msg), _b);            \
    type *_r = fname##__unpack(NULL, _n, _b);                                \
    free(_b);                                                                \
    _r;                                                                      \
  })

/* ---- traffic split ----------------------------------------------------------
 */

int imp_ctl_version_lookup(imp_server_t *server, const char *name,
                           uint32_t version, Impulse__VersionRecord **out,
                           char *path, size_t pathlen) {
  char vkey[80], *v;
  size_t vlen;
  size_t kl = imp_store_version_key(name, version, vkey);
  int rc = imp_store_get(server->store, IMP_CF_VERSIONS, vkey, kl, &v, &vlen);
  if (rc != 0) return rc;
  Impulse__VersionRecord *vr =
      impulse__version_record__unpack(NULL, vlen, (uint8_t *)v);
  free(v);
  if (vr == NULL) return IMP_ESTORE;
  rc = ensure_artifact_file(server, vr->sha256, path, pathlen);
  if (rc != 0 || out == NULL)
    impulse__version_record__free_unpacked(vr, NULL);
  else
    *out = vr;
  return rc;
}

void imp_ctl_set_current(imp_server_t *server, imp_function_t *fn,
                         uint32_t version) {
  Impulse__VersionRecord *vr = NULL;
  char path[600];
  if (imp_ctl_version_lookup(server, fn->name, version, &vr, path,
                             sizeof path) == 0) {
    impulse__version_record__free_unpacked(fn->vrec, NULL);
    fn->vrec = vr;
    snprintf(fn->artifact_path, sizeof fn->artifact_path, "%s", path);
  }
  fn->dispatch.version = version;
}

void imp_ctl_drain_reload(imp_server_t *server, imp_function_t *fn,
                          imp_instance_t *inst) {
  inst->state = IMP_INST_DRAINING;
  inst->d.ready = 0;
  if (inst->d.outstanding == 0) {
    imp_controller_mark_starting(fn, inst, 1);
    imp_controller_load(server, fn, inst);
  } else {
    /* Counted as starting only once its reload is sent, so calls that
     * queue meanwhile start new instances (up to max) instead of waiting
     * for a long call to finish. */
    inst->reload_when_drained = 1;
  }
}

int imp_controller_version_live(const imp_function_t *fn, uint32_t version) {
  if (fn->upg) return version == fn->upg->from || version == fn->upg->to;
  return imp_dispatch_version_live(&fn->dispatch, version);
}

const char *imp_controller_load_target(imp_function_t *fn,
                                       const imp_instance_t *inst,
                                       uint32_t *version) {
  if (fn->upg) {
    int back = fn->upg->state == IMP_UPG_ROLLBACK;
    *version = back ? fn->upg->from : fn->upg->to;
    return back ? fn->upg->from_path : fn->upg->to_path;
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
  /* Furthest below its share of the instances (with this one). */
  int best = -1;
  double best_gap = 0;
  for (unsigned e = 0; e < fn->ntraffic; e++) {
    if (fn->tweight[e] == 0) continue;
    double gap = total * fn->tweight[e] / 100.0 - have[e];
    if (have[e] == 0) gap += total; /* every live version gets one first */
    if (best < 0 || gap > best_gap) {
      best = (int)e;
      best_gap = gap;
    }
  }
  if (best < 0) best = 0;
  *version = fn->tversion[best];
  return fn->tpath[best];
}

/* Makes fn->rec->traffic live: artifacts on disk, the dispatcher's split.
 * Returns 0, or a negative error with `err` set (then nothing changed). */
static int traffic_apply(imp_server_t *server, imp_function_t *fn,
                         const Impulse__FunctionRecord *rec, char *err,
                         size_t errlen) {
  uint32_t tv[IMP_DISPATCH_MAX_SPLIT], tw[IMP_DISPATCH_MAX_SPLIT];
  char paths[IMP_DISPATCH_MAX_SPLIT][600];
  unsigned n = 0;
  for (size_t i = 0; i < rec->n_traffic && n < IMP_DISPATCH_MAX_SPLIT; i++) {
    const Impulse__TrafficWeight *w = rec->traffic[i];
    int rc = imp_ctl_version_lookup(server, fn->name, w->version, NULL,
                                    paths[n], sizeof paths[n]);
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
static void traffic_rebalance(imp_server_t *server, imp_function_t *fn) {
  for (size_t i = 0; i < fn->dispatch.count; i++) {
    imp_instance_t *inst =
        IMP_CONTAINER_OF(fn->dispatch.inst[i], imp_instance_t, d);
    if (inst->state != IMP_INST_READY ||
        imp_controller_version_live(fn, inst->version))
      continue;
    imp_ctl_drain_reload(server, fn, inst);
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
      imp_ctl_drain_reload(server, fn, give);
    } else if (fn->instances < FN_MAX(server, fn)) {
      start_instance(server, fn);
    }
  }
  imp_invoke_pump(&server->invoke, fn);
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
  Impulse__Envelope r = IMPULSE__ENVELOPE__INIT;
  r.body_case = IMPULSE__ENVELOPE__BODY_TRAFFIC_OK;
  r.traffic_ok = &ok;
  imp_rpc_reply(rpc, &r);
}

void imp_controller_traffic(imp_server_t *server, imp_rpc_t *rpc,
                            Impulse__Envelope *env) {
  Impulse__TrafficRequest *req = env->traffic;
  imp_function_t *fn = fn_find(server, req->name);
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
  if (traffic_apply(server, &scratch, &probe, err, sizeof err) != 0) {
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
  imp_batch_put_msg(b, server->store, IMP_CF_FUNCTIONS, fn->name,
                    strlen(fn->name), &rec.base);
  int rc = imp_store_write(server->store, b, 1, err, sizeof err);
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
    imp_ctl_set_current(server, fn, single);
  }
  traffic_apply(server, fn, fn->rec, err, sizeof err);
  IMP_LOG(IMP_LOG_INFO, "traffic of %s: %s", fn->name,
          single ? "one version" : "split");
  traffic_rebalance(server, fn);
  traffic_reply(rpc, fn);
out:
  impulse__envelope__free_unpacked(env, NULL);
}

static void commit_deploy(imp_server_t *server, pending_deploy_t *pd) {
  Impulse__DeployRequest *req = pd->req->deploy;
  imp_function_t *fn = fn_find(server, req->name);
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
  merge_config(&cfg, req->config, fn ? fn->rec->config : NULL);
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
  if (!artifact_in_store(server, pd->sha))
    imp_batch_put(b, server->store, IMP_CF_ARTIFACTS, pd->sha, strlen(pd->sha),
                  req->artifact.data, req->artifact.len);
  imp_batch_put_msg(b, server->store, IMP_CF_VERSIONS, vkey, vklen, &vrec.base);
  imp_batch_put_msg(b, server->store, IMP_CF_FUNCTIONS, req->name,
                    strlen(req->name), &rec.base);
  char err[256];
  int rc = imp_store_write(server->store, b, 1, err, sizeof err);
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
    fn = fn_create(server, nrec, nvrec);
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
    imp_scaler_fn_config(server, fn);
    if (rolling) {
      imp_upgrade_t *u =
          imp_upg_new(server, fn, from_version, version, ur.max_step_pct,
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
      if (inst->state == IMP_INST_READY) imp_ctl_drain_reload(server, fn, inst);
    }
  }
  if (promote)
    IMP_LOG(IMP_LOG_INFO, "deployed %s version %u (sha256 %.12s, %zu bytes)",
            fn->name, version, pd->sha, req->artifact.len);

  Impulse__Envelope env = IMPULSE__ENVELOPE__INIT;
  Impulse__DeployResponse ok = IMPULSE__DEPLOY_RESPONSE__INIT;
  ok.version = version;
  ok.sha256 = pd->sha;
  env.body_case = IMPULSE__ENVELOPE__BODY_DEPLOY_OK;
  env.deploy_ok = &ok;
  imp_rpc_reply(pd->rpc, &env);
  ensure_min(server, fn);
  imp_invoke_pump(&server->invoke, fn);
}

static void validated(imp_server_t *server, imp_instance_t *inst, int code,
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
    if (!artifact_in_store(server, pd->sha)) unlink(pd->path);
  } else {
    commit_deploy(server, pd);
  }
  pd_finish(pd);
}

/* The autoscaling settings of a deploy or scale: NULL when valid, else
 * why not. */
static const char *autoscale_check(const Impulse__FunctionConfig *c) {
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

void imp_controller_deploy(imp_server_t *server, imp_rpc_t *rpc,
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
  imp_function_t *running = fn_find(server, req->name);
  if (running && running->upg && !(req->has_no_promote && req->no_promote)) {
    imp_rpc_error(
        rpc, IMPULSE__ERROR_CODE__BAD_REQUEST,
        "an upgrade of '%s' (v%u -> v%u) is %s; wait for it or "
        "`impulse upgrade abort %s`",
        req->name, running->upg->from, running->upg->to,
        running->upg->state == IMP_UPG_ROLLBACK ? "rolling back" : "running",
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
      fn_find(server, req->name) == NULL) {
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
  const char *bad = req->config ? autoscale_check(req->config) : NULL;
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
  if (check_elf(req->artifact.data, req->artifact.len, why, sizeof why) != 0) {
    imp_rpc_error(rpc, IMPULSE__ERROR_CODE__INVALID_ARTIFACT,
                  "artifact rejected: %s", why);
    goto drop;
  }
  pending_deploy_t *pd = calloc(1, sizeof *pd);
  if (pd == NULL) {
    imp_rpc_error(rpc, IMPULSE__ERROR_CODE__INTERNAL, "out of memory");
    goto drop;
  }
  pd->server = server;
  imp_sha256_hex(req->artifact.data, req->artifact.len, pd->sha);
  artifact_path(server, pd->sha, pd->path, sizeof pd->path);
  if (access(pd->path, R_OK) != 0) {
    int rc = write_file_atomic(pd->path, req->artifact.data, req->artifact.len);
    if (rc != 0) {
      imp_rpc_error(rpc, IMPULSE__ERROR_CODE__INTERNAL,
                    "cannot write artifact: %s", imp_strerror(rc));
      free(pd);
      goto drop;
    }
  }
  imp_instance_t *inst = imp_instance_take_generic(&server->fleet);
  if (inst == NULL) inst = imp_instance_spawn(&server->fleet, 1);
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
  uv_timer_init(server->loop, &pd->timer);
  uv_timer_start(&pd->timer, on_pd_timeout, server->cfg.validate_timeout_ms, 0);
  imp_instance_validate(inst, pd->path, req->name);
  imp_fleet_refill_later(&server->fleet);
  return;
drop:
  impulse__envelope__free_unpacked(env, NULL);
}

/* ---- delete, scale
 * ------------------------------------------------------------ */

typedef struct del_ctx_s {
  imp_batch_t *b;
  imp_store_t *store;
  imp_server_t *server; /* restore only */
  unsigned adopted;
} del_ctx_t;

static int del_version(void *arg, const char *k, size_t kl, const char *v,
                       size_t vl) {
  del_ctx_t *dc = arg;
  (void)v;
  (void)vl;
  imp_batch_delete(dc->b, dc->store, IMP_CF_VERSIONS, k, kl);
  return 0;
}

static void stop_all_instances(imp_function_t *fn) {
  for (size_t i = 0; i < fn->dispatch.count; i++)
    imp_instance_retire(
        IMP_CONTAINER_OF(fn->dispatch.inst[i], imp_instance_t, d));
}

void imp_controller_delete(imp_server_t *server, imp_rpc_t *rpc,
                           Impulse__Envelope *env) {
  const char *name = env->delete_->name;
  imp_function_t *fn = fn_find(server, name);
  if (fn == NULL) {
    imp_rpc_error(rpc, IMPULSE__ERROR_CODE__NOT_FOUND, "unknown function '%s'",
                  name);
    goto out;
  }
  imp_batch_t *b = imp_batch_new();
  del_ctx_t dc = {b, server->store, NULL, 0};
  size_t plen = strlen(name) + 1;
  imp_store_scan(server->store, IMP_CF_VERSIONS, name, plen, del_version, &dc);
  imp_batch_delete(b, server->store, IMP_CF_FUNCTIONS, name, strlen(name));
  char err[256];
  int rc = imp_store_write(server->store, b, 1, err, sizeof err);
  imp_batch_free(b);
  if (rc != 0) {
    imp_rpc_error(rpc, IMPULSE__ERROR_CODE__INTERNAL,
                  "could not store the deletion: %s", err);
    goto out;
  }
  fn->deleted = 1;
  imp_scaler_fn_forget(server, fn);
  imp_rec_forget(server->store, fn->name);
  char msg[128];
  snprintf(msg, sizeof msg, "function '%s' was deleted", fn->name);
  imp_invoke_fail_queue(fn, IMPULSE__ERROR_CODE__NOT_FOUND, msg);
  stop_all_instances(fn);
  IMP_LOG(IMP_LOG_INFO, "deleted %s", fn->name);
  Impulse__Envelope r = IMPULSE__ENVELOPE__INIT;
  Impulse__DeleteResponse ok = IMPULSE__DELETE_RESPONSE__INIT;
  r.id = env->id;
  r.body_case = IMPULSE__ENVELOPE__BODY_DELETE_OK;
  r.delete_ok = &ok;
  imp_rpc_reply(rpc, &r);
out:
  impulse__envelope__free_unpacked(env, NULL);
}

void imp_controller_scale(imp_server_t *server, imp_rpc_t *rpc,
                          Impulse__Envelope *env) {
  Impulse__ScaleRequest *req = env->scale;
  imp_function_t *fn = fn_find(server, req->name);
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
  const char *bad = autoscale_check(&upd);
  if (bad != NULL) {
    imp_rpc_error(rpc, IMPULSE__ERROR_CODE__BAD_REQUEST, "%s", bad);
    goto out;
  }
  merge_config(&cfg, &upd, fn->rec->config);
  uint32_t min = cfg.has_min_instances ? cfg.min_instances : 0;
  uint32_t max = cfg.has_max_instances ? cfg.max_instances
                                       : server->cfg.default_max_instances;
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
  imp_batch_put_msg(b, server->store, IMP_CF_FUNCTIONS, fn->name,
                    strlen(fn->name), &rec.base);
  char err[256];
  int rc = imp_store_write(server->store, b, 1, err, sizeof err);
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
  imp_scaler_fn_config(server, fn);
  ensure_min(server, fn);
  /* Above max: retire idle instances first; busy ones drain. */
  for (size_t i = fn->dispatch.count; i > 0 && fn->instances > max; i--) {
    imp_instance_t *inst =
        IMP_CONTAINER_OF(fn->dispatch.inst[i - 1], imp_instance_t, d);
    if (inst->stop_when_drained) continue;
    imp_instance_retire(inst);
    detach(fn, inst);
    inst->function = NULL;
  }
  Impulse__Envelope r = IMPULSE__ENVELOPE__INIT;
  Impulse__ScaleResponse ok = IMPULSE__SCALE_RESPONSE__INIT;
  ok.config = fn->rec->config;
  r.id = env->id;
  r.body_case = IMPULSE__ENVELOPE__BODY_SCALE_OK;
  r.scale_ok = &ok;
  imp_rpc_reply(rpc, &r);
out:
  impulse__envelope__free_unpacked(env, NULL);
}

/* ---- list, describe
 * ----------------------------------------------------------- */

static void fill_info(imp_server_t *server, imp_function_t *fn,
                      Impulse__FunctionInfo *fi, Impulse__FunctionConfig *cfg) {
  impulse__function_info__init(fi);
  impulse__function_config__init(cfg);
  cfg->has_concurrency = cfg->has_timeout_ms = cfg->has_memory_mb = 1;
  cfg->has_min_instances = cfg->has_max_instances = 1;
  cfg->concurrency =
      fn_cfg(fn, IMP_FN_CONCURRENCY, server->cfg.default_concurrency);
  cfg->timeout_ms =
      fn_cfg(fn, IMP_FN_TIMEOUT_MS, server->cfg.default_timeout_ms);
  cfg->memory_mb = fn_cfg(fn, IMP_FN_MEMORY_MB, server->cfg.default_memory_mb);
  cfg->min_instances = FN_MIN(server, fn);
  cfg->max_instances = FN_MAX(server, fn);
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
  imp_scaler_fill_info(fn, fi);
}

void imp_controller_list(imp_server_t *server, imp_rpc_t *rpc,
                         Impulse__Envelope *env) {
  size_t n = server->invoke.registry.count, k = 0;
  Impulse__FunctionInfo *infos = calloc(n + 1, sizeof *infos);
  Impulse__FunctionConfig *cfgs = calloc(n + 1, sizeof *cfgs);
  Impulse__FunctionInfo **ptrs = calloc(n + 1, sizeof *ptrs);
  if (!infos || !cfgs || !ptrs) abort();
  imp_function_t *f;
  IMP_REGISTRY_EACH(f, &server->invoke.registry) {
    if (f->deleted) continue;
    fill_info(server, f, &infos[k], &cfgs[k]);
    ptrs[k] = &infos[k];
    k++;
  }
  Impulse__Envelope r = IMPULSE__ENVELOPE__INIT;
  Impulse__ListResponse ok = IMPULSE__LIST_RESPONSE__INIT;
  ok.n_functions = k;
  ok.functions = ptrs;
  r.id = env->id;
  r.body_case = IMPULSE__ENVELOPE__BODY_LIST_OK;
  r.list_ok = &ok;
  imp_rpc_reply(rpc, &r);
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
  if (r) vc->v[vc->n++] = r;
  return 0;
}

void imp_controller_describe(imp_server_t *server, imp_rpc_t *rpc,
                             Impulse__Envelope *env) {
  imp_function_t *fn = fn_find(server, env->describe->name);
  if (fn == NULL) {
    imp_rpc_error(rpc, IMPULSE__ERROR_CODE__NOT_FOUND, "unknown function '%s'",
                  env->describe->name);
    impulse__envelope__free_unpacked(env, NULL);
    return;
  }
  Impulse__FunctionInfo fi;
  Impulse__FunctionConfig cfg;
  fill_info(server, fn, &fi, &cfg);
  vers_ctx_t vc = {0};
  imp_store_scan(server->store, IMP_CF_VERSIONS, fn->name, strlen(fn->name) + 1,
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
  Impulse__Envelope r = IMPULSE__ENVELOPE__INIT;
  Impulse__DescribeResponse ok = IMPULSE__DESCRIBE_RESPONSE__INIT;
  ok.function = &fi;
  ok.n_versions = vc.n;
  ok.versions = vc.v;
  ok.n_instances = ni;
  ok.instances = ip;
  r.id = env->id;
  r.body_case = IMPULSE__ENVELOPE__BODY_DESCRIBE_OK;
  r.describe_ok = &ok;
  imp_rpc_reply(rpc, &r);
  for (size_t i = 0; i < vc.n; i++)
    impulse__version_record__free_unpacked(vc.v[i], NULL);
  free(vc.v);
  free(ii);
  free(ip);
  impulse__envelope__free_unpacked(env, NULL);
}

/* ---- restore, tick, stop
 * ------------------------------------------------------ */

typedef struct restore_ctx_s {
  imp_server_t *server;
  unsigned restored, failed;
} restore_ctx_t;

static int restore_one(void *arg, const char *k, size_t kl, const char *v,
                       size_t vl) {
  restore_ctx_t *rc = arg;
  imp_server_t *server = rc->server;
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
  if (imp_store_get(server->store, IMP_CF_VERSIONS, vkey, vklen, &vv, &vvl) ==
      0) {
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
  int r = ensure_artifact_file(server, vrec->sha256, path, sizeof path);
  if (r != 0) {
    IMP_LOG(IMP_LOG_ERROR, "restore: %s artifact %s: %s", rec->name,
            vrec->sha256, imp_strerror(r));
    impulse__function_record__free_unpacked(rec, NULL);
    impulse__version_record__free_unpacked(vrec, NULL);
    rc->failed++;
    return 0;
  }
  imp_function_t *fn = fn_create(server, rec, vrec);
  if (fn == NULL) abort();
  snprintf(fn->artifact_path, sizeof fn->artifact_path, "%s", path);
  imp_upg_restore(server, fn);
  if (rec->n_traffic > 0 && fn->upg == NULL) {
    char err[256];
    if (traffic_apply(server, fn, fn->rec, err, sizeof err) != 0)
      IMP_LOG(IMP_LOG_ERROR,
              "restore: traffic split of %s: %s (all calls "
              "go to version %u)",
              fn->name, err, fn->rec->version);
  }
  rc->restored++;
  IMP_LOG(IMP_LOG_DEBUG, "restored %s version %u", fn->name, rec->version);
  return 0;
}

/* A worker of a previous run: adopted when its process still exists (it
 * is attached once connected), else its record is dropped. */
static int adopt_instance_record(void *arg, const char *k, size_t kl,
                                 const char *v, size_t vl) {
  del_ctx_t *dc = arg;
  imp_server_t *server = dc->server;
  Impulse__InstanceRecord *rec =
      impulse__instance_record__unpack(NULL, vl, (const uint8_t *)v);
  imp_instance_t *inst = rec != NULL && server->cfg.worker_grace_ms > 0
                             ? imp_instance_adopt(&server->fleet, rec)
                             : NULL;
  if (inst == NULL) {
    imp_batch_delete(dc->b, dc->store, IMP_CF_INSTANCES, k, kl);
  } else {
    dc->adopted++;
    imp_function_t *fn = rec->function ? fn_find(server, rec->function) : NULL;
    if (fn != NULL) {
      /* Counted as starting, so ensure_min() does not start another. */
      attach(fn, inst);
      inst->version = rec->version;
    }
  }
  if (rec) impulse__instance_record__free_unpacked(rec, NULL);
  return 0;
}

/* The fleet: an adopted worker answered Attach with what it has loaded. */
static void instance_attached(imp_server_t *server, imp_instance_t *inst,
                              const char *function, uint32_t version) {
  imp_function_t *fn = inst->function;
  if (fn == NULL && function != NULL) {
    fn = fn_find(server, function);
    if (fn != NULL) attach(fn, inst);
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
      imp_controller_version_live(fn, version)) {
    imp_load_t load;
    load_spec(server, fn, version, NULL, &load);
    imp_instance_adopted_ready(inst, &load);
    instance_ready(server, inst);
  } else {
    /* Generic, or an older version: load the current one in place. */
    inst->state = IMP_INST_GENERIC;
    imp_controller_load(server, fn, inst);
  }
}

int imp_controller_restore(imp_server_t *server) {
  restore_ctx_t rc = {server, 0, 0};
  int r = imp_store_scan(server->store, IMP_CF_FUNCTIONS, NULL, 0, restore_one,
                         &rc);
  if (r != 0) return r;
  /* Workers that outlived the previous run are adopted; the others'
   * records are dropped and ensure_min() recreates what is missing. */
  imp_batch_t *b = imp_batch_new();
  del_ctx_t dc = {b, server->store, server, 0};
  imp_store_scan(server->store, IMP_CF_INSTANCES, NULL, 0,
                 adopt_instance_record, &dc);
  if (dc.adopted)
    IMP_LOG(IMP_LOG_INFO, "re-attaching %u worker%s of the previous run",
            dc.adopted, dc.adopted == 1 ? "" : "s");
  char err[256];
  imp_store_write(server->store, b, 0, err, sizeof err);
  imp_batch_free(b);
  imp_function_t *f;
  IMP_REGISTRY_EACH(f, &server->invoke.registry) {
    ensure_min(server, f);
  }
  IMP_LOG(IMP_LOG_INFO, "restored %u function%s from the state store%s",
          rc.restored, rc.restored == 1 ? "" : "s",
          rc.failed ? " (some records failed: see above)" : "");
  return 0;
}

void imp_controller_tick(imp_server_t *server) {
  if (++server->ticks % 10 == 0)
    imp_idem_sweep(server->store, &server->invoke.idem);
  imp_function_t *next;
  for (imp_function_t *fn = imp_registry_first(&server->invoke.registry);
       fn != NULL; fn = next) {
    next = imp_registry_next(&server->invoke.registry, fn);
    if (fn->deleted) {
      if (fn->instances == 0 && imp_list_empty(&fn->calls)) fn_free(server, fn);
      continue;
    }
    ensure_min(server, fn);
    imp_upg_tick(server, fn);
  }
  /* Scale up and down, size the warm pool (scaler.c). */
  imp_scaler_tick(server);
  imp_fleet_fill_pool(&server->fleet);
}

void imp_controller_stop(imp_server_t *server) {
  imp_scaler_save_all(server);
  imp_invoke_stop(&server->invoke);
  imp_fleet_signal_all(&server->fleet, SIGTERM);
}

void imp_controller_free(imp_server_t *server) {
  imp_function_t *fn;
  while ((fn = imp_registry_first(&server->invoke.registry)) != NULL)
    fn_free(server, fn);
}

void imp_controller_function_info(imp_server_t *server, imp_function_t *fn,
                                  Impulse__FunctionInfo *fi,
                                  Impulse__FunctionConfig *cfg) {
  fill_info(server, fn, fi, cfg);
}

/* ---- for the other parts of the controller (controller_internal.h) ------ */

int imp_ctl_ensure_artifact(imp_server_t *server, const char *sha, char *path,
                            size_t pathlen) {
  return ensure_artifact_file(server, sha, path, pathlen);
}

imp_function_t *imp_ctl_fn_find(imp_server_t *server, const char *name) {
  return fn_find(server, name);
}

Impulse__FunctionRecord *imp_ctl_clone_record(
    const Impulse__FunctionRecord *rec) {
  return CLONE(Impulse__FunctionRecord, impulse__function_record, rec);
}

/* ---- the fleet's owner (fleet/instance.h) -------------------------------- */

static void fl_connected(void *owner, imp_instance_t *inst) {
  if (inst->function != NULL) imp_controller_load(owner, inst->function, inst);
}

static void fl_loaded(void *owner, imp_instance_t *inst, int code,
                      const char *message) {
  if (inst->validate_only)
    validated(owner, inst, code, message);
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
  imp_controller_mark_starting(inst->function, inst, 1);
  imp_controller_load(owner, inst->function, inst);
}

static const imp_fleet_ops_t fleet_ops = {fl_connected, fl_loaded, fl_attached,
                                          fl_gone, fl_drained};

void imp_controller_fleet_init(imp_server_t *server) {
  imp_fleet_init(&server->fleet, server->loop, &server->cl, server->store,
                 &server->cfg, &fleet_ops, server);
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

void imp_controller_record_list(imp_server_t *server, imp_rpc_t *rpc,
                                Impulse__Envelope *env) {
  const char *name = env->record_list->name;
  imp_recorded_t *r = NULL;
  size_t n = 0;
  Impulse__RecordedCallInfo *info = NULL, **infop = NULL;
  char(*status)[32] = NULL;
  uint8_t(*preview)[PREVIEW_BYTES] = NULL;
  if (fn_find(server, name) == NULL) {
    imp_rpc_error(rpc, IMPULSE__ERROR_CODE__NOT_FOUND, "unknown function '%s'",
                  name);
    goto out;
  }
  int rc = imp_rec_load(server->store, name, &r, &n);
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
  Impulse__Envelope resp = IMPULSE__ENVELOPE__INIT;
  Impulse__RecordListResponse ok = IMPULSE__RECORD_LIST_RESPONSE__INIT;
  ok.n_calls = n;
  ok.calls = infop;
  resp.body_case = IMPULSE__ENVELOPE__BODY_RECORD_LIST_OK;
  resp.record_list_ok = &ok;
  imp_rpc_reply(rpc, &resp);
out:
  imp_rec_free(r, n);
  free(info);
  free(infop);
  free(status);
  free(preview);
  impulse__envelope__free_unpacked(env, NULL);
}
