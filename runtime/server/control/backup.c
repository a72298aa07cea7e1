/*
 * Backup RPC: a consistent copy of the state store, taken while the server
 * serves.
 *
 * The copy is a RocksDB checkpoint (runtime/store.c) written to DIR/db,
 * plus the admin token as DIR/admin.token, so that DIR is a state
 * directory of its own: `impulse serve --state-dir DIR` restores it. The
 * artifacts are in the store (the artifacts column family) and are written
 * back to DIR/artifacts at the restored server's start. InstanceRecords
 * are removed from the copy: they name the worker processes of the running
 * server, which a restored server must never try to adopt.
 *
 * The checkpoint flushes the memtables and links or copies every table
 * file, which takes from milliseconds to seconds with the size of the
 * store, so it runs on libuv's thread pool; the loop thread only checks
 * the request and sends the answer. A pending backup keeps the loop, and so
 * the store, alive: a server that is asked to stop finishes it first.
 */
#include "server/control/backup.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/store.h"
#include "core/common.h"

/* Longest DIR accepted: room for "/db/" and RocksDB's file names. */
#define BACKUP_MAX_DIR (PATH_MAX - 64)

typedef struct backup_s {
  uv_work_t work;
  imp_rpc_t *rpc;     /* answered when done */
  imp_store_t *store; /* borrowed; open while the loop runs */
  char dir[PATH_MAX];
  char state_dir[PATH_MAX]; /* copied: read on the pool thread */
  char token[65];
  int code; /* 0 or an ErrorCode */
  char message[PATH_MAX + 256];
  uint64_t bytes;
  uint64_t took_ms;
} backup_t;

static void fail(backup_t *b, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void fail(backup_t *b, int code, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(b->message, sizeof b->message, fmt, ap);
  va_end(ap);
  b->code = code;
}

/* Sums the sizes of the regular files directly in `dir` (RocksDB's
 * directory is flat). */
static uint64_t dir_bytes(const char *dir) {
  uint64_t total = 0;
  DIR *d = opendir(dir);
  if (d == NULL) return 0;
  struct dirent *e;
  struct stat st;
  while ((e = readdir(d)) != NULL)
    if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
        S_ISREG(st.st_mode))
      total += (uint64_t)st.st_size;
  closedir(d);
  return total;
}

/* Removes what a failed backup wrote: DIR/db (flat), the token, DIR. */
static void remove_partial(const char *dir) {
  char path[PATH_MAX + 64];
  snprintf(path, sizeof path, "%s/db", dir);
  DIR *d = opendir(path);
  if (d != NULL) {
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
      if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
        unlinkat(dirfd(d), e->d_name, 0);
    closedir(d);
    rmdir(path);
  }
  snprintf(path, sizeof path, "%s/admin.token", dir);
  unlink(path);
  rmdir(dir);
}

static int drop_instance(void *arg, const char *key, size_t klen,
                         const char *val, size_t vlen) {
  void **a = arg;
  (void)val;
  (void)vlen;
  imp_batch_delete(a[0], a[1], IMP_CF_INSTANCES, key, klen);
  return 0;
}

/* Opens the copy and deletes its InstanceRecords (see the top comment);
 * this also proves that the copy opens. */
static int scrub_copy(const char *dbdir, char *err, size_t errlen) {
  imp_store_t *copy = NULL;
  int rc = imp_store_open(dbdir, &copy, err, errlen);
  if (rc != 0) return rc;
  imp_batch_t *batch = imp_batch_new();
  void *arg[2] = {batch, copy};
  rc = imp_store_scan(copy, IMP_CF_INSTANCES, NULL, 0, drop_instance, arg);
  if (rc != 0)
    snprintf(err, errlen, "cannot read the copy's instance records");
  else
    rc = imp_store_write(copy, batch, 1, err, errlen);
  imp_batch_free(batch);
  imp_store_close(copy);
  return rc;
}

static int write_token(const char *dir, const char *token) {
  char path[PATH_MAX + 64], line[80];
  snprintf(path, sizeof path, "%s/admin.token", dir);
  int n = snprintf(line, sizeof line, "%s\n", token);
  int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) return -errno;
  int rc = 0;
  ssize_t w = write(fd, line, (size_t)n);
  if (w != n)
    rc = w < 0 ? -errno : -EIO;
  else if (fsync(fd) != 0)
    rc = -errno;
  close(fd);
  return rc;
}

/* Whether `path` (a resolved directory) is `base` or below it. */
static int is_under(const char *path, const char *base) {
  size_t n = strlen(base);
  return strncmp(path, base, n) == 0 && (path[n] == '\0' || path[n] == '/');
}

/* Pool thread: everything that touches the file system. */
static void backup_work(uv_work_t *req) {
  backup_t *b = IMP_CONTAINER_OF(req, backup_t, work);
  uint64_t t0 = imp_now_ms();
  char parent[PATH_MAX], real[PATH_MAX], dbdir[PATH_MAX + 8];
  char err[1024];

  /* The parent must exist, and the copy must not land in the live state
   * directory (a restore would then find a store inside its store). */
  memcpy(parent, b->dir, strlen(b->dir) + 1);
  char *slash = strrchr(parent, '/');
  if (slash == parent)
    slash[1] = '\0';
  else
    *slash = '\0';
  if (realpath(parent, real) == NULL) {
    fail(b, IMPULSE__ERROR_CODE__BAD_REQUEST, "cannot use %s: %s: %s", b->dir,
         parent, strerror(errno));
    return;
  }
  char state[PATH_MAX];
  if (realpath(b->state_dir, state) != NULL && is_under(real, state)) {
    fail(b, IMPULSE__ERROR_CODE__BAD_REQUEST,
         "%s is inside the state directory %s", b->dir, state);
    return;
  }
  if (mkdir(b->dir, 0700) != 0) {
    int e = errno;
    fail(b, IMPULSE__ERROR_CODE__BAD_REQUEST, "%s %s", b->dir,
         e == EEXIST ? "exists: a backup is written to a new directory"
                     : strerror(e));
    return;
  }
  snprintf(dbdir, sizeof dbdir, "%s/db", b->dir);
  int rc = imp_store_checkpoint(b->store, dbdir, err, sizeof err);
  if (rc == 0) rc = scrub_copy(dbdir, err, sizeof err);
  if (rc != 0) {
    fail(b, IMPULSE__ERROR_CODE__INTERNAL, "checkpoint into %s: %s", dbdir,
         err);
    remove_partial(b->dir);
    return;
  }
  rc = write_token(b->dir, b->token);
  if (rc != 0) {
    fail(b, IMPULSE__ERROR_CODE__INTERNAL, "cannot write %s/admin.token: %s",
         b->dir, strerror(-rc));
    remove_partial(b->dir);
    return;
  }
  /* The directory entries themselves (RocksDB syncs its own). */
  int dfd = open(b->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    fsync(dfd);
    close(dfd);
  }
  b->bytes = dir_bytes(dbdir) + (uint64_t)strlen(b->token) + 1;
  b->took_ms = imp_now_ms() - t0;
}

/* Loop thread: the answer. */
static void backup_done(uv_work_t *req, int status) {
  backup_t *b = IMP_CONTAINER_OF(req, backup_t, work);
  if (status != 0 && b->code == 0)
    fail(b, IMPULSE__ERROR_CODE__INTERNAL, "backup cancelled");
  if (b->code != 0) {
    IMP_LOG(IMP_LOG_WARN, "backup: %s", b->message);
    imp_rpc_error(b->rpc, b->code, "%s", b->message);
  } else {
    IMP_LOG(IMP_LOG_INFO, "backup written to %s (%llu bytes, %llu ms)", b->dir,
            (unsigned long long)b->bytes, (unsigned long long)b->took_ms);
    Impulse__BackupResponse ok = IMPULSE__BACKUP_RESPONSE__INIT;
    ok.dir = b->dir;
    ok.has_bytes = ok.has_took_ms = 1;
    ok.bytes = b->bytes;
    ok.took_ms = b->took_ms;
    imp_rpc_answer(b->rpc, IMPULSE__ENVELOPE__BODY_BACKUP_OK, &ok);
  }
  free(b);
}

void imp_control_backup(imp_control_t *ctl, imp_rpc_t *rpc,
                        Impulse__Envelope *env) {
  const char *dir = env->backup->dir;
  size_t len = dir ? strlen(dir) : 0;
  if (len == 0 || dir[0] != '/') {
    imp_rpc_error(rpc, IMPULSE__ERROR_CODE__BAD_REQUEST,
                  "the backup directory must be an absolute path on the "
                  "server's machine");
    goto out;
  }
  if (len > BACKUP_MAX_DIR) {
    imp_rpc_error(rpc, IMPULSE__ERROR_CODE__BAD_REQUEST,
                  "the backup directory path is longer than %d bytes",
                  BACKUP_MAX_DIR);
    goto out;
  }
  backup_t *b = calloc(1, sizeof *b);
  if (b == NULL) {
    imp_rpc_error(rpc, IMPULSE__ERROR_CODE__INTERNAL, "out of memory");
    goto out;
  }
  /* "/a/b///" names the same directory as "/a/b". */
  while (len > 1 && dir[len - 1] == '/') len--;
  memcpy(b->dir, dir, len);
  b->dir[len] = '\0';
  snprintf(b->state_dir, sizeof b->state_dir, "%s", ctl->cfg->state_dir);
  memcpy(b->token, ctl->token, sizeof b->token);
  b->store = ctl->store;
  b->rpc = rpc;
  int rc = uv_queue_work(ctl->loop, &b->work, backup_work, backup_done);
  if (rc != 0) {
    imp_rpc_error(rpc, IMPULSE__ERROR_CODE__INTERNAL,
                  "cannot start the backup: %s", uv_strerror(rc));
    free(b);
  }
out:
  impulse__envelope__free_unpacked(env, NULL);
}
