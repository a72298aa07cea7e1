#include "base/store.h"

#include <rocksdb/c.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/metrics.h"
#include "core/common.h"

static const char *cf_names[IMP_CF_COUNT] = {
    "functions",  "versions",   "artifacts", "instances",
    "meta",       "triggers",   "attempts",  "idempotency",
    "autoscaler", "recordings", "secrets",   "tokens"};

struct imp_store_s {
  rocksdb_t *db;
  rocksdb_options_t *options;
  rocksdb_column_family_handle_t *cf[IMP_CF_COUNT + 1]; /* +1: default */
  rocksdb_writeoptions_t *wsync;
  rocksdb_writeoptions_t *wnosync;
  rocksdb_readoptions_t *ropts;
  imp_histogram_t *write_hist; /* borrowed; NULL = writes not timed */
  /* Successful writes with sync: atomic, as a backup's copy is written from
   * libuv's pool while the loop reads the count of its own store. */
  atomic_uint_least64_t synced_writes;
};

struct imp_batch_s {
  rocksdb_writebatch_t *wb;
};

static int store_error(char *rerr, char *err, size_t errlen) {
  if (err && errlen) snprintf(err, errlen, "%s", rerr ? rerr : "unknown");
  free(rerr);
  return IMP_ESTORE;
}

void imp_store_close(imp_store_t *store) {
  if (store == NULL) return;
  for (int i = 0; i <= IMP_CF_COUNT; i++)
    if (store->cf[i]) rocksdb_column_family_handle_destroy(store->cf[i]);
  if (store->db) rocksdb_close(store->db);
  if (store->options) rocksdb_options_destroy(store->options);
  if (store->wsync) rocksdb_writeoptions_destroy(store->wsync);
  if (store->wnosync) rocksdb_writeoptions_destroy(store->wnosync);
  if (store->ropts) rocksdb_readoptions_destroy(store->ropts);
  free(store);
}

static int check_schema(imp_store_t *store, char *err, size_t errlen) {
  static const char key[] = "schema_version";
  char *val = NULL;
  size_t vlen = 0;
  int rc = imp_store_get(store, IMP_CF_META, key, sizeof key - 1, &val, &vlen);
  if (rc == -ENOENT) {
    char buf[16];
    int n = snprintf(buf, sizeof buf, "%d", IMP_STORE_SCHEMA_VERSION);
    imp_batch_t *b = imp_batch_new();
    imp_batch_put(b, store, IMP_CF_META, key, sizeof key - 1, buf, (size_t)n);
    rc = imp_store_write(store, b, 1, err, errlen);
    imp_batch_free(b);
    return rc;
  }
  if (rc != 0) {
    snprintf(err, errlen, "cannot read schema version");
    return rc;
  }
  char tmp[16] = {0};
  memcpy(tmp, val, vlen < sizeof tmp - 1 ? vlen : sizeof tmp - 1);
  free(val);
  char *end;
  long v = strtol(tmp, &end, 10);
  if (*end != '\0' || v > IMP_STORE_SCHEMA_VERSION || v <= 0) {
    snprintf(err, errlen,
             "state store has schema version %s, this build supports up to %d",
             tmp, IMP_STORE_SCHEMA_VERSION);
    return IMP_ESTORE;
  }
  return 0;
}

int imp_store_open(const char *dir, imp_store_t **out, char *err,
                   size_t errlen) {
  char *rerr = NULL;
  int rc;
  imp_store_t *store = calloc(1, sizeof *store);
  if (store == NULL) return -ENOMEM;

  store->options = rocksdb_options_create();
  rocksdb_options_set_create_if_missing(store->options, 1);
  /* A state directory of an earlier release, with fewer families, opens:
   * the missing ones are created empty. */
  rocksdb_options_set_create_missing_column_families(store->options, 1);
  /* Control-plane data is small: keep the footprint small too. */
  rocksdb_options_set_max_background_jobs(store->options, 2);
  rocksdb_options_set_keep_log_file_num(store->options, 4);
  rocksdb_options_set_max_total_wal_size(store->options, 64 << 20);

  const char *names[IMP_CF_COUNT + 1];
  const rocksdb_options_t *cfopts[IMP_CF_COUNT + 1];
  names[0] = "default";
  cfopts[0] = store->options;
  for (int i = 0; i < IMP_CF_COUNT; i++) {
    names[i + 1] = cf_names[i];
    cfopts[i + 1] = store->options;
  }
  rocksdb_column_family_handle_t *handles[IMP_CF_COUNT + 1] = {0};
  store->db = rocksdb_open_column_families(
      store->options, dir, IMP_CF_COUNT + 1, names, cfopts, handles, &rerr);
  if (rerr != NULL) {
    rc = store_error(rerr, err, errlen);
    goto fail;
  }
  /* cf[i] for i < IMP_CF_COUNT are ours; the default family goes last. */
  for (int i = 0; i < IMP_CF_COUNT; i++) store->cf[i] = handles[i + 1];
  store->cf[IMP_CF_COUNT] = handles[0];

  store->wsync = rocksdb_writeoptions_create();
  rocksdb_writeoptions_set_sync(store->wsync, 1);
  store->wnosync = rocksdb_writeoptions_create();
  store->ropts = rocksdb_readoptions_create();

  rc = check_schema(store, err, errlen);
  if (rc != 0) goto fail;
  *out = store;
  return 0;
fail:
  imp_store_close(store);
  return rc;
}

imp_batch_t *imp_batch_new(void) {
  imp_batch_t *b = malloc(sizeof *b);
  if (b == NULL) abort(); /* a control change without memory cannot go on */
  b->wb = rocksdb_writebatch_create();
  return b;
}

void imp_batch_free(imp_batch_t *batch) {
  if (batch == NULL) return;
  rocksdb_writebatch_destroy(batch->wb);
  free(batch);
}

void imp_batch_put(imp_batch_t *batch, imp_store_t *store, imp_cf_t cf,
                   const void *key, size_t klen, const void *val, size_t vlen) {
  rocksdb_writebatch_put_cf(batch->wb, store->cf[cf], key, klen, val, vlen);
}

int imp_batch_put_msg(imp_batch_t *batch, imp_store_t *store, imp_cf_t cf,
                      const void *key, size_t klen,
                      const ProtobufCMessage *msg) {
  size_t n = protobuf_c_message_get_packed_size(msg);
  uint8_t *buf = malloc(n ? n : 1);
  if (buf == NULL) return -ENOMEM;
  protobuf_c_message_pack(msg, buf);
  imp_batch_put(batch, store, cf, key, klen, buf, n);
  free(buf);
  return 0;
}

void imp_batch_delete(imp_batch_t *batch, imp_store_t *store, imp_cf_t cf,
                      const void *key, size_t klen) {
  rocksdb_writebatch_delete_cf(batch->wb, store->cf[cf], key, klen);
}

int imp_store_write(imp_store_t *store, imp_batch_t *batch, int sync, char *err,
                    size_t errlen) {
  char *rerr = NULL;
  uint64_t t0 = store->write_hist ? imp_now_ns() : 0;
  rocksdb_write(store->db, sync ? store->wsync : store->wnosync, batch->wb,
                &rerr);
  if (store->write_hist)
    imp_histogram_observe(store->write_hist, (double)(imp_now_ns() - t0) / 1e9);
  if (rerr != NULL) return store_error(rerr, err, errlen);
  if (sync)
    atomic_fetch_add_explicit(&store->synced_writes, 1, memory_order_relaxed);
  return 0;
}

uint64_t imp_store_synced_writes(imp_store_t *store) {
  return atomic_load_explicit(&store->synced_writes, memory_order_relaxed);
}

void imp_store_set_write_histogram(imp_store_t *store, imp_histogram_t *h) {
  store->write_hist = h;
}

int imp_store_get(imp_store_t *store, imp_cf_t cf, const void *key, size_t klen,
                  char **val, size_t *vlen) {
  char *rerr = NULL;
  char *v = rocksdb_get_cf(store->db, store->ropts, store->cf[cf], key, klen,
                           vlen, &rerr);
  if (rerr != NULL) {
    IMP_LOG(IMP_LOG_ERROR, "store get: %s", rerr);
    free(rerr);
    return IMP_ESTORE;
  }
  if (v == NULL) return -ENOENT;
  *val = v;
  return 0;
}

static int scan(imp_store_t *store, imp_cf_t cf, const void *start, size_t slen,
                int bounded, imp_store_scan_cb cb, void *arg) {
  rocksdb_iterator_t *it =
      rocksdb_create_iterator_cf(store->db, store->ropts, store->cf[cf]);
  int rc = 0;
  if (slen)
    rocksdb_iter_seek(it, start, slen);
  else
    rocksdb_iter_seek_to_first(it);
  for (; rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
    size_t klen, vlen;
    const char *k = rocksdb_iter_key(it, &klen);
    if (bounded && slen && (klen < slen || memcmp(k, start, slen) != 0)) break;
    const char *v = rocksdb_iter_value(it, &vlen);
    rc = cb(arg, k, klen, v, vlen);
    if (rc != 0) break;
  }
  char *rerr = NULL;
  rocksdb_iter_get_error(it, &rerr);
  if (rerr != NULL && rc == 0) {
    IMP_LOG(IMP_LOG_ERROR, "store scan: %s", rerr);
    rc = IMP_ESTORE;
  }
  free(rerr);
  rocksdb_iter_destroy(it);
  return rc;
}

int imp_store_scan(imp_store_t *store, imp_cf_t cf, const void *prefix,
                   size_t plen, imp_store_scan_cb cb, void *arg) {
  return scan(store, cf, prefix, plen, 1, cb, arg);
}

int imp_store_scan_from(imp_store_t *store, imp_cf_t cf, const void *start,
                        size_t slen, imp_store_scan_cb cb, void *arg) {
  return scan(store, cf, start, slen, 0, cb, arg);
}

int imp_store_checkpoint(imp_store_t *store, const char *dir, char *err,
                         size_t errlen) {
  char *rerr = NULL;
  rocksdb_checkpoint_t *cp = rocksdb_checkpoint_object_create(store->db, &rerr);
  if (rerr != NULL) return store_error(rerr, err, errlen);
  /* log_size_for_flush 0: always flush, so the copy needs no WAL replay. */
  rocksdb_checkpoint_create(cp, dir, 0, &rerr);
  rocksdb_checkpoint_object_destroy(cp);
  if (rerr != NULL) return store_error(rerr, err, errlen);
  return 0;
}

size_t imp_store_version_key(const char *name, unsigned version, char *out) {
  size_t n = strlen(name);
  memcpy(out, name, n);
  out[n] = '\0';
  out[n + 1] = (char)(version >> 24);
  out[n + 2] = (char)(version >> 16);
  out[n + 3] = (char)(version >> 8);
  out[n + 4] = (char)version;
  return n + 5;
}

typedef struct del_prefix_s {
  imp_batch_t *batch;
  imp_store_t *store;
  imp_cf_t cf;
  int n;
} del_prefix_t;

static int del_one(void *arg, const char *k, size_t kl, const char *v,
                   size_t vl) {
  del_prefix_t *d = arg;
  (void)v;
  (void)vl;
  imp_batch_delete(d->batch, d->store, d->cf, k, kl);
  d->n++;
  return 0;
}

int imp_batch_delete_prefix(imp_batch_t *batch, imp_store_t *store, imp_cf_t cf,
                            const void *prefix, size_t plen) {
  del_prefix_t d = {batch, store, cf, 0};
  int rc = imp_store_scan(store, cf, prefix, plen, del_one, &d);
  return rc < 0 ? rc : d.n;
}
