/*
 * Loading a function into the worker (the load request): dlopen() of the
 * object with RTLD_NOW | RTLD_LOCAL, the ABI version check, its symbols,
 * impulse_init(), and once per process the memory limit. A load with
 * validate_only checks an object and unloads it again; any other load
 * specialises the worker, replacing what it served before, handler
 * threads included.
 */
#include <dlfcn.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "core/limits.h"
#include "worker/crash.h"
#include "worker/invoke.h"
#include "worker/load.h"
#include "worker/pool.h"

#define DEFAULT_MEMORY_MB 256u

void imp_wk_function_close(function_t *fn) {
  if (fn->dl == NULL) return;
  if (fn->fini != NULL) {
    /* Shutdown paths call this after SIGTERM: no imp_wk_call_begin(). */
    imp_wk_call_enter();
    fn->fini();
    imp_wk_call_end();
  }
  dlclose(fn->dl);
  free(fn->name);
  memset(fn, 0, sizeof *fn);
}

/*
 * Loads the object `path` into `fn` and checks its symbols. Returns 0, or
 * IMP_EARTIFACT with a message in err, or -ENOMEM.
 */
static int function_open(const char *name, uint32_t version, const char *path,
                         function_t *fn, char *err, size_t errlen) {
  char local[PATH_MAX];
  memset(fn, 0, sizeof *fn);
  /* dlopen() searches the library path for a name without a slash. */
  if (strchr(path, '/') == NULL) {
    if ((size_t)snprintf(local, sizeof local, "./%s", path) >= sizeof local) {
      snprintf(err, errlen, "artifact path is too long");
      return IMP_EARTIFACT;
    }
    path = local;
  }
  dlerror();
  void *dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  if (dl == NULL) {
    const char *why = dlerror();
    snprintf(err, errlen, "%s", why != NULL ? why : "dlopen failed");
    return IMP_EARTIFACT;
  }
  const uint32_t *abi = dlsym(dl, "impulse_abi_version");
  if (abi == NULL) {
    snprintf(err, errlen, "missing symbol impulse_abi_version");
    goto fail;
  }
  if (*abi != IMPULSE_ABI_VERSION) {
    snprintf(err, errlen,
             "ABI version %u does not match runtime ABI version %u",
             (unsigned)*abi, (unsigned)IMPULSE_ABI_VERSION);
    goto fail;
  }
  fn->handle = (int (*)(impulse_ctx_t *))dlsym(dl, "impulse_handle");
  if (fn->handle == NULL) {
    snprintf(err, errlen, "missing symbol impulse_handle");
    goto fail;
  }
  fn->init = (int (*)(impulse_ctx_t *))dlsym(dl, "impulse_init");
  fn->fini = (void (*)(void))dlsym(dl, "impulse_fini");
  fn->name = strdup(name);
  if (fn->name == NULL) {
    imp_wk_note_alloc_failure();
    dlclose(dl);
    memset(fn, 0, sizeof *fn);
    return -ENOMEM;
  }
  fn->version = version;
  fn->dl = dl;
  return 0;
fail:
  dlclose(dl);
  memset(fn, 0, sizeof *fn);
  return IMP_EARTIFACT;
}

/* Runs impulse_init() if the object has one. Returns 0, or IMP_EARTIFACT
 * with a message in err. */
static int function_init(imp_worker_t *worker, function_t *fn, char *err,
                         size_t errlen) {
  if (fn->init == NULL) return 0;
  invocation_t invocation;
  imp_wk_invocation_init(&invocation, worker, fn, NULL, 0);
  int status = IMPULSE_ERROR;
  if (imp_wk_call_begin()) {
    status = fn->init(&invocation.ctx);
    imp_wk_call_end();
  }
  if (status != 0) {
    if (invocation.has_error && invocation.error[0] != '\0')
      snprintf(err, errlen, "impulse_init failed: %.960s", invocation.error);
    else
      snprintf(err, errlen, "impulse_init failed with status %d", status);
  }
  imp_wk_invocation_free(&invocation);
  return status != 0 ? IMP_EARTIFACT : 0;
}

/*
 * Limits the data segment so the function gets `memory_mb` MiB beyond what
 * the runtime already uses plus the stacks of the `threads` handler threads
 * about to start. Applied once: the hard limit cannot be raised again.
 */
static void memory_limit_apply(imp_worker_t *worker, uint32_t memory_mb,
                               unsigned threads) {
#if defined(IMPULSE_ASAN) || defined(__SANITIZE_ADDRESS__) || \
    defined(__SANITIZE_THREAD__)
  /* Sanitizers reserve terabytes of shadow memory, all of it counted in
   * VmData: any RLIMIT_DATA would make every later allocation fail. */
  (void)worker;
  (void)memory_mb;
  (void)threads;
#else
  if (memory_mb == 0) return;
  size_t base = imp_wk_vmdata_bytes();
  if (base == 0) {
    IMP_LOG(IMP_LOG_WARN, "%s: cannot read VmData, no memory limit applied",
            worker->label);
    return;
  }
  size_t page = (size_t)sysconf(_SC_PAGESIZE);
  size_t stacks = (size_t)threads * (HANDLER_STACK + page + ALT_STACK);
  size_t limit = base + stacks + ((size_t)memory_mb << 20);
  struct rlimit rl;
  if (getrlimit(RLIMIT_DATA, &rl) == 0 && rl.rlim_max != RLIM_INFINITY &&
      rl.rlim_max < limit)
    limit = rl.rlim_max;
  rl.rlim_cur = rl.rlim_max = limit;
  if (setrlimit(RLIMIT_DATA, &rl) != 0) {
    IMP_LOG(IMP_LOG_WARN, "%s: setrlimit(RLIMIT_DATA): %s", worker->label,
            strerror(errno));
    return;
  }
  imp_wk_mem_limit_set(limit);
  IMP_LOG(IMP_LOG_DEBUG, "%s: memory limit %u MiB (RLIMIT_DATA %zu bytes)",
          worker->label, (unsigned)memory_mb, limit);
#endif
}

static void reply_load_ok(imp_worker_t *worker, uint64_t id,
                          uint64_t started_ns) {
  if (imp_wire_append_load_ok(&worker->out, worker->max_frame, id,
                              IMPULSE_ABI_VERSION,
                              (imp_now_ns() - started_ns) / 1000u) != 0)
    imp_wk_fatal_oom("queueing a reply");
}

/* Gives the process exactly the function's environment ("KEY=VALUE" each,
 * checked by the server): nothing of the worker's own stays. Only reached
 * with no handler thread running, since getenv() is not safe against a
 * concurrent change. */
static void env_apply(const Impulse__LoadRequest *load) {
  clearenv();
  for (size_t i = 0; i < load->n_env; i++) {
    const char *kv = load->env[i];
    const char *eq = kv ? strchr(kv, '=') : NULL;
    if (eq == NULL || eq == kv) continue;
    char key[IMP_ENV_KEY_MAX + 1];
    if ((size_t)(eq - kv) >= sizeof key) continue;
    memcpy(key, kv, (size_t)(eq - kv));
    key[eq - kv] = '\0';
    if (setenv(key, eq + 1, 1) != 0)
      imp_wk_fatal_oom("setting the environment");
  }
}

void imp_wk_load(imp_worker_t *worker, uint64_t id,
                 const Impulse__LoadRequest *load, uint64_t started_ns) {
  char err[1024];
  function_t fn;
  if (load->function == NULL || load->function[0] == '\0' ||
      load->path == NULL || load->path[0] == '\0') {
    imp_wk_reply_error(worker, id, IMPULSE__ERROR_CODE__BAD_REQUEST,
                       "load request without a function name or path");
    return;
  }
  unsigned concurrency =
      load->has_concurrency && load->concurrency > 0 ? load->concurrency : 1;
  if (concurrency > MAX_CONCURRENCY) concurrency = MAX_CONCURRENCY;
  uint32_t memory_mb =
      load->has_memory_mb ? load->memory_mb : DEFAULT_MEMORY_MB;

  if (load->has_validate_only && load->validate_only) {
    /* The object could be the one being served: a second init/fini on it
     * would tear down the live instance's state. */
    if (worker->fn.dl != NULL) {
      snprintf(err, sizeof err,
               "cannot validate in a worker that serves %s version %u",
               worker->fn.name, (unsigned)worker->fn.version);
      imp_wk_reply_error(worker, id, IMPULSE__ERROR_CODE__BAD_REQUEST, err);
      return;
    }
    env_apply(load);
    int rc = function_open(load->function, load->version, load->path, &fn, err,
                           sizeof err);
    if (rc == 0) {
      rc = function_init(worker, &fn, err, sizeof err);
      if (rc != 0) fn.fini = NULL; /* fini pairs with a successful init */
      imp_wk_function_close(&fn);
    }
    if (rc == -ENOMEM) imp_wk_fatal_oom("loading a function");
    if (rc != 0) {
      imp_wk_reply_error(worker, id, IMPULSE__ERROR_CODE__INVALID_ARTIFACT,
                         err);
      return;
    }
    IMP_LOG(IMP_LOG_DEBUG, "%s: validated %s version %u (%s)", worker->label,
            load->function, (unsigned)load->version, load->path);
    reply_load_ok(worker, id, started_ns);
    return;
  }

  /* Reload in place: the old object goes first, with its handler threads. */
  if (worker->fn.dl != NULL) {
    IMP_LOG(IMP_LOG_DEBUG, "%s: unloading %s version %u", worker->label,
            worker->fn.name, (unsigned)worker->fn.version);
    imp_wk_pool_stop(worker);
    imp_wk_function_close(&worker->fn);
  }
  if (!worker->limit_applied) {
    /* Before dlopen so the object's data and impulse_init() count too. */
    memory_limit_apply(worker, memory_mb, concurrency > 1 ? concurrency : 0);
    worker->limit_applied = true;
  }
  env_apply(load);
  int rc = function_open(load->function, load->version, load->path, &fn, err,
                         sizeof err);
  if (rc == -ENOMEM) imp_wk_fatal_oom("loading a function");
  if (rc != 0) {
    imp_wk_reply_error(worker, id, IMPULSE__ERROR_CODE__INVALID_ARTIFACT, err);
    return;
  }
  rc = function_init(worker, &fn, err, sizeof err);
  if (rc != 0) {
    fn.fini = NULL;
    imp_wk_function_close(&fn);
    imp_wk_reply_error(worker, id, IMPULSE__ERROR_CODE__INVALID_ARTIFACT, err);
    return;
  }
  fn.concurrency = concurrency;
  worker->fn = fn;
  if (concurrency > 1) {
    rc = imp_wk_pool_start(worker, concurrency);
    if (rc != 0) {
      imp_wk_function_close(&worker->fn);
      snprintf(err, sizeof err, "cannot start %u handler threads: %s",
               concurrency, strerror(-rc));
      imp_wk_reply_error(worker, id, IMPULSE__ERROR_CODE__INTERNAL, err);
      return;
    }
  }
  IMP_LOG(IMP_LOG_DEBUG, "%s: loaded %s version %u (%s), concurrency %u",
          worker->label, fn.name, (unsigned)fn.version, load->path,
          concurrency);
  reply_load_ok(worker, id, started_ns);
}
