/*
 * Artifacts and stored records of the controller (records.c): artifact
 * files kept content-addressed under STATE/artifacts, version records, the
 * current version of a function, configurations merged from requests.
 */
#ifndef IMP_RECORDS_H
#define IMP_RECORDS_H

#include <stddef.h>
#include <stdint.h>

#include "impulse.pb-c.h"
#include "server/control/context.h"

/* STATE/artifacts/<sha>.so into out (empty when it does not fit). */
void imp_ctl_artifact_path(imp_control_t *ctl, const char *sha, char *out,
                           size_t outlen);
/* The sha256 an artifact path of imp_ctl_artifact_path() names, into
 * out; returns out, or NULL when `path` is not such a path. */
const char *imp_ctl_path_sha(const char *path, char out[65]);
/* 1 when the file at `path` holds bytes whose sha256 is `sha`. */
int imp_ctl_artifact_intact(const char *path, const char *sha);
/* Writes bytes to path atomically (temp file, fsync, rename). 0 or a
 * negative errno. */
int imp_ctl_write_file(const char *path, const void *data, size_t len);
/* The artifact of sha256 `sha` on disk (rewritten from the store when
 * missing or when its bytes do not hash to `sha`); its path in `path`. 0 or a
 * negative error. */
int imp_ctl_ensure_artifact(imp_control_t *ctl, const char *sha, char *path,
                            size_t pathlen);
/* 1 when the store holds the artifact of `sha`. */
int imp_ctl_artifact_in_store(imp_control_t *ctl, const char *sha);
/* The record of fn's `version` (*out, NULL to skip; free it) and its
 * artifact on disk (`path`). 0, -ENOENT (no such version) or an error. */
int imp_ctl_version_lookup(imp_control_t *ctl, const char *name,
                           uint32_t version, Impulse__VersionRecord **out,
                           char *path, size_t pathlen);
/* Makes `version` fn's current one in memory (record, artifact path,
 * dispatcher); the caller stores the FunctionRecord. */
void imp_ctl_set_current(imp_control_t *ctl, imp_function_t *fn,
                         uint32_t version);
/* Fills `out` from the request's settings, falling back to `prev`. */
void imp_ctl_merge_config(Impulse__FunctionConfig *out,
                          const Impulse__FunctionConfig *req,
                          const Impulse__FunctionConfig *prev);
/* A copy of a record owned like one read from the store. */
Impulse__FunctionRecord *imp_ctl_clone_record(
    const Impulse__FunctionRecord *rec);

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

#endif
