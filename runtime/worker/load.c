/*
 * Loading a function into the worker (the load request): dlopen() of the
 * object with RTLD_NOW | RTLD_LOCAL, the ABI version check, its symbols,
 * impulse_init(), and once per process the memory limit. A load with
 * validate_only checks an object and unloads it again; any other load
 * specialises the worker, replacing what it served before, handler
 * threads included.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

#include "core/common.h"
#include "core/limits.h"
#include "worker/confine.h"
#include "worker/crash.h"
#include "worker/invoke.h"
#include "worker/load.h"
#include "worker/pool.h"
#include "worker/sandbox.h"

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
  if (fn->memfd >= 0) close(fn->memfd);
  free(fn->name);
  memset(fn, 0, sizeof *fn);
  fn->memfd = -1;
}

/* Writes all of buf to fd: 0, or -1 with errno set. */
static int write_all(int fd, const char *buf, size_t len) {
  while (len > 0) {
    ssize_t n = write(fd, buf, len);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return -1;
    buf += n;
    len -= (size_t)n;
  }
  return 0;
}

/*
 * Copies the artifact into a new memfd while hashing it, and checks the
 * hash against `sha256`: the object is then loaded from the sealed copy,
 * so what runs is exactly what was checked. The bytes come in the Load
 * (`data`), since a sandboxed worker sees no file of the server; without
 * them, from the file at `path`. Returns the memfd, or IMP_EARTIFACT with
 * a message in err, or -ENOMEM.
 */
static int artifact_copy(const char *name, uint32_t version, const char *path,
                         const ProtobufCBinaryData *data, const char *sha256,
                         char *err, size_t errlen) {
  int in = -1;
  if (data == NULL) {
    in = open(path, O_RDONLY | O_CLOEXEC);
    if (in < 0) {
      snprintf(err, errlen, "cannot open the artifact of %s version %u: %s",
               name, (unsigned)version, strerror(errno));
      return IMP_EARTIFACT;
    }
  }
  int out = memfd_create("impulse-function", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  EVP_MD_CTX *md = EVP_MD_CTX_new();
  if (out < 0 || md == NULL || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1) {
    int e = errno;
    if (in >= 0) close(in);
    if (out >= 0) close(out);
    EVP_MD_CTX_free(md);
    if (e == ENOMEM || md == NULL) return -ENOMEM;
    snprintf(err, errlen, "memfd_create: %s", strerror(e));
    return IMP_EARTIFACT;
  }
  int rc = 0;
  if (data != NULL) {
    if (write_all(out, (const char *)data->data, data->len) != 0) {
      snprintf(err, errlen, "copying the artifact of %s version %u: %s", name,
               (unsigned)version, strerror(errno));
      rc = errno == ENOMEM ? -ENOMEM : IMP_EARTIFACT;
    } else {
      EVP_DigestUpdate(md, data->data, data->len);
    }
  } else {
    char buf[64 << 10];
    ssize_t n;
    while ((n = read(in, buf, sizeof buf)) != 0) {
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 || write_all(out, buf, (size_t)n) != 0) {
        snprintf(err, errlen, "copying the artifact of %s version %u: %s", name,
                 (unsigned)version, strerror(errno));
        rc = errno == ENOMEM ? -ENOMEM : IMP_EARTIFACT;
        break;
      }
      EVP_DigestUpdate(md, buf, (size_t)n);
    }
    close(in);
  }
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int dlen = 0;
  char hex[2 * EVP_MAX_MD_SIZE + 1];
  if (rc == 0 && EVP_DigestFinal_ex(md, digest, &dlen) == 1) {
    imp_hex(digest, dlen, hex);
    if (strcmp(hex, sha256) != 0) {
      snprintf(err, errlen,
               "the artifact of %s version %u was changed after its deploy "
               "(sha256 %.12s, expected %.12s): not loaded; deploy the "
               "function again to repair it",
               name, (unsigned)version, hex, sha256);
      rc = IMP_EARTIFACT;
    }
  }
  EVP_MD_CTX_free(md);
  if (rc == 0)
    fcntl(out, F_ADD_SEALS,
          F_SEAL_WRITE | F_SEAL_GROW | F_SEAL_SHRINK | F_SEAL_SEAL);
  if (rc != 0) {
    close(out);
    return rc;
  }
  return out;
}

/*
 * Loads the object `path` into `fn` and checks its symbols. Returns 0, or
 * IMP_EARTIFACT with a message in err, or -ENOMEM.
 */
static int function_open(const char *name, uint32_t version, const char *path,
                         const ProtobufCBinaryData *data, const char *sha256,
                         function_t *fn, char *err, size_t errlen) {
  char local[PATH_MAX];
  memset(fn, 0, sizeof *fn);
  fn->memfd = -1;
  int memfd = -1;
  if (sha256 != NULL && sha256[0] != '\0') {
    memfd = artifact_copy(name, version, path, data, sha256, err, errlen);
    if (memfd < 0) return memfd;
    snprintf(local, sizeof local, "/proc/self/fd/%d", memfd);
    path = local;
  }
  /* dlopen() searches the library path for a name without a slash. */
  else if (strchr(path, '/') == NULL) {
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
    if (memfd >= 0) close(memfd);
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
    if (memfd >= 0) close(memfd);
    memset(fn, 0, sizeof *fn);
    fn->memfd = -1;
    return -ENOMEM;
  }
  fn->version = version;
  fn->dl = dl;
  fn->memfd = memfd;
  return 0;
fail:
  dlclose(dl);
  if (memfd >= 0) close(memfd);
  memset(fn, 0, sizeof *fn);
  fn->memfd = -1;
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
  /* No code of a function runs before the worker is confined and its
   * sandbox sealed (network, capabilities, namespaces). */
  int network_none =
      load->network != NULL && strcmp(load->network, "none") == 0;
  unsigned want = load->has_concurrency ? load->concurrency : 1;
  if (imp_wk_confine(0, err, sizeof err) != 0 ||
      imp_wk_sandbox_seal(network_none, want, err, sizeof err) != 0) {
    char msg[1100];
    snprintf(msg, sizeof msg, "the worker cannot confine itself: %s", err);
    imp_wk_reply_error(worker, id, IMPULSE__ERROR_CODE__INTERNAL, msg);
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
    int rc = function_open(load->function, load->version, load->path,
                           load->has_artifact ? &load->artifact : NULL,
                           load->sha256, &fn, err, sizeof err);
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
  int rc = function_open(load->function, load->version, load->path,
                         load->has_artifact ? &load->artifact : NULL,
                         load->sha256, &fn, err, sizeof err);
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
