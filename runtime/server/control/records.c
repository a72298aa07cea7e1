/*
 * Artifacts and stored records of the controller (records.h).
 */
#include "server/control/records.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/store.h"
#include "core/common.h"

void imp_ctl_artifact_path(imp_control_t *ctl, const char *sha, char *out,
                           size_t outlen) {
  int n = snprintf(out, outlen, "%s/%s.so", ctl->artifact_dir, sha);
  if (n < 0 || (size_t)n >= outlen)
    out[0] = '\0'; /* dirs are checked at start */
}

const char *imp_ctl_path_sha(const char *path, char out[65]) {
  const char *base = strrchr(path, '/');
  base = base ? base + 1 : path;
  if (strlen(base) != 64 + 3 || strcmp(base + 64, ".so") != 0) return NULL;
  for (int i = 0; i < 64; i++)
    if (!strchr("0123456789abcdef", base[i])) return NULL;
  memcpy(out, base, 64);
  out[64] = '\0';
  return out;
}

/* Writes bytes to path atomically (temp file, fsync, rename). */
int imp_ctl_write_file(const char *path, const void *data, size_t len) {
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

int imp_ctl_artifact_intact(const char *path, const char *sha) {
  char *data;
  size_t len;
  if (imp_read_file(path, (size_t)1 << 31, &data, &len) != 0) return 0;
  char got[65];
  imp_sha256_hex(data, len, got);
  free(data);
  return strcmp(got, sha) == 0;
}

/* Makes sure an intact artifact file of `sha` exists, from the store if
 * needed. */
int imp_ctl_ensure_artifact(imp_control_t *ctl, const char *sha, char *path,
                            size_t pathlen) {
  imp_ctl_artifact_path(ctl, sha, path, pathlen);
  if (imp_ctl_artifact_intact(path, sha)) return 0;
  if (access(path, F_OK) == 0)
    IMP_LOG(IMP_LOG_ERROR,
            "artifact %s was changed on disk: written again from the store",
            path);
  char *val;
  size_t vlen;
  int rc = imp_store_get(ctl->store, IMP_CF_ARTIFACTS, sha, strlen(sha), &val,
                         &vlen);
  if (rc != 0) return rc;
  char got[65];
  imp_sha256_hex(val, vlen, got);
  if (strcmp(got, sha) != 0) {
    free(val);
    IMP_LOG(IMP_LOG_ERROR, "artifact %s is corrupt in the store", sha);
    return IMP_ESTORE;
  }
  rc = imp_ctl_write_file(path, val, vlen);
  free(val);
  return rc;
}

int imp_ctl_artifact_in_store(imp_control_t *ctl, const char *sha) {
  char *v;
  size_t vl;
  if (imp_store_get(ctl->store, IMP_CF_ARTIFACTS, sha, strlen(sha), &v, &vl) !=
      0)
    return 0;
  free(v);
  return 1;
}

/* Fills a FunctionConfig from the request, falling back to `prev`. */
void imp_ctl_merge_config(Impulse__FunctionConfig *out,
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
  MERGE(cpu_millis)
#undef MERGE
  if (req && req->network)
    out->network = req->network;
  else if (prev && prev->network)
    out->network = prev->network;
  /* The environment is replaced as a whole, or kept. */
  if (req && (req->env_replace || req->n_env > 0)) {
    out->n_env = req->n_env;
    out->env = req->env;
  } else if (prev) {
    out->n_env = prev->n_env;
    out->env = prev->env;
  }
  /* So are the secrets it names. */
  if (req && (req->secrets_replace || req->n_secrets > 0)) {
    out->n_secrets = req->n_secrets;
    out->secrets = req->secrets;
  } else if (prev) {
    out->n_secrets = prev->n_secrets;
    out->secrets = prev->secrets;
  }
  if (req && req->policy)
    out->policy = req->policy;
  else if (prev && prev->policy)
    out->policy = prev->policy;
}

/* ---- traffic split ------------------------------------------------------- */

int imp_ctl_version_lookup(imp_control_t *ctl, const char *name,
                           uint32_t version, Impulse__VersionRecord **out,
                           char *path, size_t pathlen) {
  char vkey[80], *v;
  size_t vlen;
  size_t kl = imp_store_version_key(name, version, vkey);
  int rc = imp_store_get(ctl->store, IMP_CF_VERSIONS, vkey, kl, &v, &vlen);
  if (rc != 0) return rc;
  Impulse__VersionRecord *vr =
      impulse__version_record__unpack(NULL, vlen, (uint8_t *)v);
  free(v);
  if (vr == NULL) return IMP_ESTORE;
  rc = imp_ctl_ensure_artifact(ctl, vr->sha256, path, pathlen);
  if (rc != 0 || out == NULL)
    impulse__version_record__free_unpacked(vr, NULL);
  else
    *out = vr;
  return rc;
}

void imp_ctl_set_current(imp_control_t *ctl, imp_function_t *fn,
                         uint32_t version) {
  Impulse__VersionRecord *vr = NULL;
  char path[600];
  if (imp_ctl_version_lookup(ctl, fn->name, version, &vr, path, sizeof path) ==
      0) {
    impulse__version_record__free_unpacked(fn->vrec, NULL);
    fn->vrec = vr;
    snprintf(fn->artifact_path, sizeof fn->artifact_path, "%s", path);
  }
  fn->dispatch.version = version;
}

Impulse__FunctionRecord *imp_ctl_clone_record(
    const Impulse__FunctionRecord *rec) {
  return CLONE(Impulse__FunctionRecord, impulse__function_record, rec);
}
