/*
 * State store: RocksDB with one column family per kind of record and
 * protobuf values. Every control change is one synced WriteBatch.
 */
#ifndef IMP_STORE_H
#define IMP_STORE_H

#include <protobuf-c/protobuf-c.h>
#include <stddef.h>
#include <stdint.h>

#define IMP_STORE_SCHEMA_VERSION 1

typedef enum imp_cf_e {
  IMP_CF_FUNCTIONS = 0, /* name -> FunctionRecord */
  IMP_CF_VERSIONS,      /* name \0 be32(version) -> VersionRecord */
  IMP_CF_ARTIFACTS,     /* sha256 hex -> artifact bytes */
  IMP_CF_INSTANCES,     /* be64(id) -> InstanceRecord */
  IMP_CF_META,          /* "schema_version", ... */
  IMP_CF_TRIGGERS,      /* name -> TriggerSpec */
  IMP_CF_ATTEMPTS,      /* trigger \0 topic \0 be32(partition) be64(offset) ->
                           AttemptRecord */
  IMP_CF_IDEMPOTENCY,   /* function \0 key -> IdempotencyRecord */
  IMP_CF_AUTOSCALER,    /* function -> predictor state (imp_pred_save) */
  IMP_CF_RECORDINGS,    /* function \0 be32(slot) -> RecordedCall */
  IMP_CF_SECRETS,       /* name -> SecretRecord */
  IMP_CF_TOKENS,        /* token id (16 hex) -> TokenRecord */
  IMP_CF_COUNT
} imp_cf_t;

typedef struct imp_store_s imp_store_t;
typedef struct imp_batch_s imp_batch_t;

/* Opens (creating if needed) the store under `dir`. On failure returns a
 * negative code and writes a message into err. *out is freed with
 * imp_store_close(). Refuses a store whose schema version is newer. */
int imp_store_open(const char *dir, imp_store_t **out, char *err,
                   size_t errlen);
void imp_store_close(imp_store_t *store);

/* Batches. Keys and values are copied into the batch. */
imp_batch_t *imp_batch_new(void);
void imp_batch_free(imp_batch_t *batch);
void imp_batch_put(imp_batch_t *batch, imp_store_t *store, imp_cf_t cf,
                   const void *key, size_t klen, const void *val, size_t vlen);
/* Packs `msg` and puts it. Returns 0 or -ENOMEM. */
int imp_batch_put_msg(imp_batch_t *batch, imp_store_t *store, imp_cf_t cf,
                      const void *key, size_t klen,
                      const ProtobufCMessage *msg);
void imp_batch_delete(imp_batch_t *batch, imp_store_t *store, imp_cf_t cf,
                      const void *key, size_t klen);

/* Writes the batch atomically; with sync != 0 it is fsync'd before this
 * returns. Returns 0 or IMP_ESTORE (message in err). The batch is not
 * freed. */
int imp_store_write(imp_store_t *store, imp_batch_t *batch, int sync, char *err,
                    size_t errlen);

/* How many imp_store_write() calls with sync != 0 succeeded since the
 * store was opened (each one batch, fsync'd before it returned): the
 * durability tests count them per control change. Any thread. */
uint64_t imp_store_synced_writes(imp_store_t *store);

/* Times every imp_store_write() into `h` (borrowed, must outlive the store
 * or be unset with NULL first); NULL stops the timing. Loop thread only. */
struct imp_histogram_s;
void imp_store_set_write_histogram(imp_store_t *store,
                                   struct imp_histogram_s *h);

/* Reads one value: 0 with *val (free with free()), -ENOENT, or IMP_ESTORE. */
int imp_store_get(imp_store_t *store, imp_cf_t cf, const void *key, size_t klen,
                  char **val, size_t *vlen);

/* Calls cb for each key starting with prefix (all keys when plen is 0), in
 * key order. A non-zero return from cb stops the scan and is returned. */
typedef int (*imp_store_scan_cb)(void *arg, const char *key, size_t klen,
                                 const char *val, size_t vlen);
int imp_store_scan(imp_store_t *store, imp_cf_t cf, const void *prefix,
                   size_t plen, imp_store_scan_cb cb, void *arg);

/* imp_store_scan() over every key from `start` (inclusive) on, without a
 * prefix bound. */
int imp_store_scan_from(imp_store_t *store, imp_cf_t cf, const void *start,
                        size_t slen, imp_store_scan_cb cb, void *arg);

/* Adds a delete of every key of `cf` that starts with `prefix` to `batch`
 * (written when the caller writes the batch). Returns how many, or a
 * negative error of the scan. */
int imp_batch_delete_prefix(imp_batch_t *batch, imp_store_t *store, imp_cf_t cf,
                            const void *prefix, size_t plen);

/* Writes a consistent copy of the whole store (every column family) to
 * `dir`, which must not exist, as a RocksDB checkpoint: the memtables are
 * flushed first, table files are hard-linked when `dir` is on the same
 * file system and copied otherwise. The copy opens with imp_store_open().
 * Safe from any thread while the store is open (the caller keeps it open
 * until this returns); concurrent writes land in the copy or not, never in
 * part. Returns 0, or IMP_ESTORE with RocksDB's message in err. */
int imp_store_checkpoint(imp_store_t *store, const char *dir, char *err,
                         size_t errlen);

/* Key of a VersionRecord: name, a NUL, big-endian version. Returns length;
 * `out` needs strlen(name) + 5 bytes. */
size_t imp_store_version_key(const char *name, unsigned version, char *out);

#endif
