/*
 * Unit tests for runtime/store.c: the RocksDB state store. Each test gets a
 * fresh directory from mkdtemp() that is removed afterwards.
 */
#define _XOPEN_SOURCE 700 /* nftw */
#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "base/store.h"
#include "core/common.h"
#include "impulse.pb-c.h"
#include "tests/support/test_main.h"

typedef struct fixture_s {
  char root[256]; /* mkdtemp directory */
  char dir[300];  /* store directory inside it, created by the store */
} fixture_t;

static int rm_entry(const char *path, const struct stat *st, int flag,
                    struct FTW *ftw) {
  (void)st;
  (void)flag;
  (void)ftw;
  return remove(path);
}

static int rm_rf(const char *path) {
  return nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static int setup(void **state) {
  fixture_t *f = calloc(1, sizeof *f);
  if (f == NULL) return -1;
  const char *tmp = getenv("TMPDIR");
  snprintf(f->root, sizeof f->root, "%s/imp-test-store-XXXXXX",
           tmp && *tmp ? tmp : "/tmp");
  if (mkdtemp(f->root) == NULL) {
    free(f);
    return -1;
  }
  snprintf(f->dir, sizeof f->dir, "%s/state", f->root);
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fixture_t *f = *state;
  int rc = rm_rf(f->root);
  free(f);
  return rc == 0 ? 0 : -1;
}

static imp_store_t *open_ok(const fixture_t *f) {
  imp_store_t *store = NULL;
  char err[256] = "";
  int rc = imp_store_open(f->dir, &store, err, sizeof err);
  if (rc != 0) fail_msg("imp_store_open: %d %s", rc, err);
  assert_non_null(store);
  return store;
}

static void write_ok(imp_store_t *store, imp_batch_t *b, int sync) {
  char err[256] = "";
  int rc = imp_store_write(store, b, sync, err, sizeof err);
  if (rc != 0) fail_msg("imp_store_write: %d %s", rc, err);
}

/* The value under key[0..klen) in `cf` is exactly want[0..wlen). */
static void expect_stored(imp_store_t *store, imp_cf_t cf, const void *key,
                          size_t klen, const void *want, size_t wlen) {
  char *val = NULL;
  size_t vlen = 0;
  assert_int_equal(imp_store_get(store, cf, key, klen, &val, &vlen), 0);
  assert_int_equal(vlen, wlen);
  assert_memory_equal(val, want, wlen);
  free(val);
}

/* There is no key[0..klen) in `cf`: -ENOENT, and no value handed out. */
static void expect_missing(imp_store_t *store, imp_cf_t cf, const void *key,
                           size_t klen) {
  char *val = NULL;
  size_t vlen = 0;
  assert_int_equal(imp_store_get(store, cf, key, klen, &val, &vlen), -ENOENT);
  assert_null(val);
}

/* A batch of the one put of `val` under `key` in `cf`, written. */
static void put_one(imp_store_t *store, imp_cf_t cf, const void *key,
                    size_t klen, const void *val, size_t vlen, int sync) {
  imp_batch_t *b = imp_batch_new();
  imp_batch_put(b, store, cf, key, klen, val, vlen);
  write_ok(store, b, sync);
  imp_batch_free(b);
}

static const uint8_t kArtifact[] = {0x7f, 'E',  'L',  'F',  0x00,
                                    0x00, 0xff, 0x01, 0x00, 0x42};
static const char kSha[] =
    "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

static void test_put_reopen_get(void **state) {
  fixture_t *f = *state;
  imp_store_t *store = open_ok(f);

  Impulse__FunctionConfig cfg;
  impulse__function_config__init(&cfg);
  cfg.has_concurrency = 1;
  cfg.concurrency = 8;
  cfg.has_timeout_ms = 1;
  cfg.timeout_ms = 3000;
  Impulse__FunctionRecord fr;
  impulse__function_record__init(&fr);
  fr.name = "echo";
  fr.version = 3;
  fr.config = &cfg;
  fr.has_created_ms = 1;
  fr.created_ms = 1700000000000ULL;
  fr.has_next_version = 1;
  fr.next_version = 4;

  Impulse__VersionRecord vr;
  impulse__version_record__init(&vr);
  vr.function = "echo";
  vr.version = 3;
  vr.sha256 = (char *)kSha;
  vr.has_size = 1;
  vr.size = sizeof kArtifact;

  char vkey[16];
  size_t vklen = imp_store_version_key("echo", 3, vkey);
  assert_int_equal(vklen, 9);

  imp_batch_t *b = imp_batch_new();
  assert_int_equal(
      imp_batch_put_msg(b, store, IMP_CF_FUNCTIONS, "echo", 4, &fr.base), 0);
  assert_int_equal(
      imp_batch_put_msg(b, store, IMP_CF_VERSIONS, vkey, vklen, &vr.base), 0);
  imp_batch_put(b, store, IMP_CF_ARTIFACTS, kSha, 64, kArtifact,
                sizeof kArtifact);
  write_ok(store, b, 1);
  imp_batch_free(b);
  imp_store_close(store);

  store = open_ok(f);
  char *val = NULL;
  size_t vlen = 0;

  /* FunctionRecord: same bytes as packed, same fields when unpacked. */
  size_t plen = impulse__function_record__get_packed_size(&fr);
  uint8_t *packed = malloc(plen);
  assert_non_null(packed);
  impulse__function_record__pack(&fr, packed);
  assert_int_equal(
      imp_store_get(store, IMP_CF_FUNCTIONS, "echo", 4, &val, &vlen), 0);
  assert_int_equal(vlen, plen);
  assert_memory_equal(val, packed, plen);
  free(packed);
  Impulse__FunctionRecord *got =
      impulse__function_record__unpack(NULL, vlen, (const uint8_t *)val);
  free(val);
  assert_non_null(got);
  assert_string_equal(got->name, "echo");
  assert_int_equal(got->version, 3);
  assert_non_null(got->config);
  assert_true(got->config->has_concurrency);
  assert_int_equal(got->config->concurrency, 8);
  assert_true(got->config->has_timeout_ms);
  assert_int_equal(got->config->timeout_ms, 3000);
  assert_false(got->config->has_memory_mb);
  assert_true(got->has_created_ms);
  assert_true(got->created_ms == 1700000000000ULL);
  assert_false(got->has_updated_ms);
  assert_true(got->has_next_version);
  assert_int_equal(got->next_version, 4);
  impulse__function_record__free_unpacked(got, NULL);

  /* VersionRecord under its composite key. */
  val = NULL;
  assert_int_equal(
      imp_store_get(store, IMP_CF_VERSIONS, vkey, vklen, &val, &vlen), 0);
  Impulse__VersionRecord *gv =
      impulse__version_record__unpack(NULL, vlen, (const uint8_t *)val);
  free(val);
  assert_non_null(gv);
  assert_string_equal(gv->function, "echo");
  assert_int_equal(gv->version, 3);
  assert_string_equal(gv->sha256, kSha);
  assert_true(gv->has_size);
  assert_int_equal(gv->size, sizeof kArtifact);
  impulse__version_record__free_unpacked(gv, NULL);

  /* Raw artifact bytes, NULs included. */
  expect_stored(store, IMP_CF_ARTIFACTS, kSha, 64, kArtifact, sizeof kArtifact);

  /* Missing keys; column families are separate key spaces. */
  expect_missing(store, IMP_CF_FUNCTIONS, "nope", 4);
  expect_missing(store, IMP_CF_FUNCTIONS, "ech", 3);
  expect_missing(store, IMP_CF_INSTANCES, "echo", 4);
  expect_missing(store, IMP_CF_ARTIFACTS, "echo", 4);
  imp_store_close(store);
}

static void test_unsynced_write_readable(void **state) {
  fixture_t *f = *state;
  imp_store_t *store = open_ok(f);
  put_one(store, IMP_CF_INSTANCES, "\0\0\0\0\0\0\0\x07", 8, "x", 1, 0);
  expect_stored(store, IMP_CF_INSTANCES, "\0\0\0\0\0\0\0\x07", 8, "x", 1);
  imp_store_close(store);
}

static void test_version_key_layout(void **state) {
  (void)state;
  char k[16];
  size_t n = imp_store_version_key("ab", 0x01020304u, k);
  assert_int_equal(n, 7);
  assert_memory_equal(k, "ab\0\x01\x02\x03\x04", 7);
  n = imp_store_version_key("", 0xfffffffeu, k);
  assert_int_equal(n, 5);
  assert_memory_equal(k, "\0\xff\xff\xff\xfe", 5);
}

typedef struct scan_acc_s {
  size_t n;
  char names[8][8];
  unsigned versions[8];
  int stop_after; /* 0 = never */
} scan_acc_t;

static int scan_cb(void *arg, const char *key, size_t klen, const char *val,
                   size_t vlen) {
  scan_acc_t *acc = arg;
  assert_true(acc->n < 8);
  size_t nl = strnlen(key, klen);
  assert_int_equal(klen, nl + 5);
  assert_true(nl < sizeof acc->names[0]);
  memcpy(acc->names[acc->n], key, nl);
  acc->names[acc->n][nl] = '\0';
  const unsigned char *v = (const unsigned char *)key + nl + 1;
  unsigned version = ((unsigned)v[0] << 24) | ((unsigned)v[1] << 16) |
                     ((unsigned)v[2] << 8) | v[3];
  acc->versions[acc->n] = version;
  /* The value written for each key is "name:version". */
  char expect[32];
  int el =
      snprintf(expect, sizeof expect, "%s:%u", acc->names[acc->n], version);
  assert_int_equal(vlen, (size_t)el);
  assert_memory_equal(val, expect, (size_t)el);
  acc->n++;
  if (acc->stop_after && (int)acc->n == acc->stop_after) return 42;
  return 0;
}

static void put_version(imp_batch_t *b, imp_store_t *store, const char *name,
                        unsigned version) {
  char key[32], val[32];
  size_t klen = imp_store_version_key(name, version, key);
  int vl = snprintf(val, sizeof val, "%s:%u", name, version);
  imp_batch_put(b, store, IMP_CF_VERSIONS, key, klen, val, (size_t)vl);
}

/* A function name and version, as the versions family keys them. */
typedef struct name_version_s {
  const char *name;
  unsigned version;
} name_version_t;

/* put_version() of each of the n entries, in that order. */
static void put_versions(imp_batch_t *b, imp_store_t *store,
                         const name_version_t *nv, size_t n) {
  for (size_t i = 0; i < n; i++)
    put_version(b, store, nv[i].name, nv[i].version);
}

/* imp_store_scan() of `cf` into `acc`, emptied first. */
static int scan(imp_store_t *store, imp_cf_t cf, const char *prefix,
                size_t plen, scan_acc_t *acc) {
  memset(acc, 0, sizeof *acc);
  return imp_store_scan(store, cf, prefix, plen, scan_cb, acc);
}

static void test_scan_prefix(void **state) {
  fixture_t *f = *state;
  imp_store_t *store = open_ok(f);
  imp_batch_t *b = imp_batch_new();
  /* Out of order on purpose; "ab" sorts between a's keys if the NUL
   * separator were missing. */
  put_versions(b, store,
               (const name_version_t[]){
                   {"a", 10}, {"ab", 3}, {"a", 1}, {"ab", 1}, {"a", 2}},
               5);
  /* Same names in another family must not show up. */
  imp_batch_put(b, store, IMP_CF_FUNCTIONS, "a", 1, "fa", 2);
  imp_batch_put(b, store, IMP_CF_FUNCTIONS, "ab", 2, "fab", 3);
  write_ok(store, b, 1);
  imp_batch_free(b);

  scan_acc_t acc;
  assert_int_equal(scan(store, IMP_CF_VERSIONS, "a\0", 2, &acc), 0);
  assert_int_equal(acc.n, 3);
  for (size_t i = 0; i < 3; i++) assert_string_equal(acc.names[i], "a");
  assert_int_equal(acc.versions[0], 1);
  assert_int_equal(acc.versions[1], 2);
  assert_int_equal(acc.versions[2], 10);

  assert_int_equal(scan(store, IMP_CF_VERSIONS, "ab\0", 3, &acc), 0);
  assert_int_equal(acc.n, 2);
  assert_string_equal(acc.names[0], "ab");
  assert_int_equal(acc.versions[0], 1);
  assert_string_equal(acc.names[1], "ab");
  assert_int_equal(acc.versions[1], 3);

  /* Whole family, key order: a/1 a/2 a/10 ab/1 ab/3. */
  assert_int_equal(scan(store, IMP_CF_VERSIONS, NULL, 0, &acc), 0);
  assert_int_equal(acc.n, 5);
  static const char *names[] = {"a", "a", "a", "ab", "ab"};
  static const unsigned versions[] = {1, 2, 10, 1, 3};
  for (size_t i = 0; i < 5; i++) {
    assert_string_equal(acc.names[i], names[i]);
    assert_int_equal(acc.versions[i], versions[i]);
  }

  /* A prefix with no keys calls nothing. */
  assert_int_equal(scan(store, IMP_CF_VERSIONS, "b\0", 2, &acc), 0);
  assert_int_equal(acc.n, 0);
  assert_int_equal(scan(store, IMP_CF_INSTANCES, NULL, 0, &acc), 0);
  assert_int_equal(acc.n, 0);

  /* A non-zero callback return stops the scan and is returned. */
  memset(&acc, 0, sizeof acc);
  acc.stop_after = 2;
  assert_int_equal(
      imp_store_scan(store, IMP_CF_VERSIONS, "a\0", 2, scan_cb, &acc), 42);
  assert_int_equal(acc.n, 2);
  imp_store_close(store);
}

/* Deleting by prefix takes the keys of that name only, in that family
 * only, once the batch is written. */
static void test_delete_prefix(void **state) {
  fixture_t *f = *state;
  imp_store_t *store = open_ok(f);
  imp_batch_t *b = imp_batch_new();
  put_versions(b, store,
               (const name_version_t[]){{"a", 1}, {"a", 2}, {"ab", 1}}, 3);
  imp_batch_put(b, store, IMP_CF_FUNCTIONS, "a", 1, "fa", 2);
  write_ok(store, b, 1);
  imp_batch_free(b);

  b = imp_batch_new();
  assert_int_equal(imp_batch_delete_prefix(b, store, IMP_CF_VERSIONS, "a\0", 2),
                   2);
  scan_acc_t acc;
  assert_int_equal(scan(store, IMP_CF_VERSIONS, NULL, 0, &acc), 0);
  assert_int_equal(acc.n, 3); /* nothing deleted before the write */
  write_ok(store, b, 1);
  imp_batch_free(b);
  assert_int_equal(scan(store, IMP_CF_VERSIONS, NULL, 0, &acc), 0);
  assert_int_equal(acc.n, 1);
  assert_string_equal(acc.names[0], "ab");
  char *v;
  size_t vl;
  assert_int_equal(imp_store_get(store, IMP_CF_FUNCTIONS, "a", 1, &v, &vl), 0);
  free(v);
  b = imp_batch_new();
  assert_int_equal(
      imp_batch_delete_prefix(b, store, IMP_CF_VERSIONS, "zz\0", 3), 0);
  imp_batch_free(b);
  imp_store_close(store);
}

static void test_delete_then_reopen(void **state) {
  fixture_t *f = *state;
  imp_store_t *store = open_ok(f);
  imp_batch_t *b = imp_batch_new();
  imp_batch_put(b, store, IMP_CF_FUNCTIONS, "gone", 4, "1", 1);
  imp_batch_put(b, store, IMP_CF_FUNCTIONS, "kept", 4, "2", 1);
  imp_batch_put(b, store, IMP_CF_ARTIFACTS, kSha, 64, kArtifact,
                sizeof kArtifact);
  write_ok(store, b, 1);
  imp_batch_free(b);

  /* Delete and put in one batch: both take effect together. */
  b = imp_batch_new();
  imp_batch_delete(b, store, IMP_CF_FUNCTIONS, "gone", 4);
  imp_batch_delete(b, store, IMP_CF_ARTIFACTS, kSha, 64);
  imp_batch_delete(b, store, IMP_CF_FUNCTIONS, "never-there", 11);
  imp_batch_put(b, store, IMP_CF_FUNCTIONS, "new", 3, "3", 1);
  write_ok(store, b, 1);
  imp_batch_free(b);
  imp_store_close(store);

  store = open_ok(f);
  expect_missing(store, IMP_CF_FUNCTIONS, "gone", 4);
  expect_missing(store, IMP_CF_ARTIFACTS, kSha, 64);
  expect_stored(store, IMP_CF_FUNCTIONS, "kept", 4, "2", 1);
  expect_stored(store, IMP_CF_FUNCTIONS, "new", 3, "3", 1);
  imp_store_close(store);
}

static void set_schema(const fixture_t *f, const char *value) {
  imp_store_t *store = open_ok(f);
  put_one(store, IMP_CF_META, "schema_version", 14, value, strlen(value), 1);
  imp_store_close(store);
}

static void test_schema_version(void **state) {
  fixture_t *f = *state;
  imp_store_t *store = open_ok(f);
  expect_stored(store, IMP_CF_META, "schema_version", 14, "1", 1);
  imp_store_close(store);

  /* Reopening a current store keeps the value and succeeds. */
  store = open_ok(f);
  imp_store_close(store);

  set_schema(f, "99");
  imp_store_t *bad = NULL;
  char err[256] = "";
  int rc = imp_store_open(f->dir, &bad, err, sizeof err);
  assert_int_equal(rc, IMP_ESTORE);
  assert_null(bad);
  assert_non_null(strstr(err, "schema version"));
  assert_non_null(strstr(err, "99"));

  /* Refusing does not rewrite the stored version: still refused. */
  bad = NULL;
  err[0] = '\0';
  rc = imp_store_open(f->dir, &bad, err, sizeof err);
  assert_int_equal(rc, IMP_ESTORE);
  assert_null(bad);
  assert_non_null(strstr(err, "99"));
}

static void test_schema_version_garbage(void **state) {
  fixture_t *f = *state;
  set_schema(f, "zero");
  imp_store_t *bad = NULL;
  char err[256] = "";
  assert_int_equal(imp_store_open(f->dir, &bad, err, sizeof err), IMP_ESTORE);
  assert_null(bad);
  assert_non_null(strstr(err, "schema version"));
}

static void test_open_failure_reports(void **state) {
  fixture_t *f = *state;
  /* A regular file where the directory should be. */
  FILE *fp = fopen(f->dir, "w");
  assert_non_null(fp);
  fclose(fp);
  imp_store_t *store = NULL;
  char err[256] = "";
  assert_int_equal(imp_store_open(f->dir, &store, err, sizeof err), IMP_ESTORE);
  assert_null(store);
  assert_true(err[0] != '\0');
}

/* A checkpoint holds what was written before it (synced or not), opens as
 * a store of its own, misses later writes, and refuses an existing
 * directory. */
static void test_checkpoint(void **state) {
  fixture_t *f = *state;
  char cp[400], err[256] = "";
  imp_store_t *store = open_ok(f);
  /* unsynced: only in the WAL and the memtable */
  put_one(store, IMP_CF_FUNCTIONS, "before", 6, "1", 1, 0);

  snprintf(cp, sizeof cp, "%s/copy", f->root);
  assert_int_equal(imp_store_checkpoint(store, cp, err, sizeof err), 0);
  put_one(store, IMP_CF_FUNCTIONS, "after", 5, "2", 1, 1);
  assert_int_equal(imp_store_checkpoint(store, cp, err, sizeof err),
                   IMP_ESTORE);
  assert_true(err[0] != '\0');
  imp_store_close(store);

  imp_store_t *copy = NULL;
  int rc = imp_store_open(cp, &copy, err, sizeof err);
  if (rc != 0) fail_msg("open the checkpoint: %d %s", rc, err);
  expect_stored(copy, IMP_CF_FUNCTIONS, "before", 6, "1", 1);
  expect_missing(copy, IMP_CF_FUNCTIONS, "after", 5);
  imp_store_close(copy);
}

/* The store's own info lines stay out of the test output. */
static int group_setup(void **state) {
  (void)state;
  imp_log_level = IMP_LOG_WARN;
  return 0;
}

TEST_MAIN("unit_store", group_setup, NULL,
          cmocka_unit_test_setup_teardown(test_put_reopen_get, setup, teardown),
          cmocka_unit_test_setup_teardown(test_unsynced_write_readable, setup,
                                          teardown),
          cmocka_unit_test(test_version_key_layout),
          cmocka_unit_test_setup_teardown(test_scan_prefix, setup, teardown),
          cmocka_unit_test_setup_teardown(test_delete_then_reopen, setup,
                                          teardown),
          cmocka_unit_test_setup_teardown(test_delete_prefix, setup, teardown),
          cmocka_unit_test_setup_teardown(test_schema_version, setup, teardown),
          cmocka_unit_test_setup_teardown(test_schema_version_garbage, setup,
                                          teardown),
          cmocka_unit_test_setup_teardown(test_open_failure_reports, setup,
                                          teardown),
          cmocka_unit_test_setup_teardown(test_checkpoint, setup, teardown))
