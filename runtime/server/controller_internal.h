/* Entry points of controller.c for the other parts of the controller
 * (upgrade.c). Not for the rest of the server. */
#ifndef IMP_CONTROLLER_INTERNAL_H
#define IMP_CONTROLLER_INTERNAL_H

#include "server/server.h"

/* The artifact of sha256 `sha` on disk (rewritten from the store when
 * missing); its path in `path`. 0 or a negative error. */
int imp_ctl_ensure_artifact(imp_server_t *server, const char *sha, char *path,
                            size_t pathlen);
/* Takes an instance out of service: it reloads (imp_controller_load picks
 * the version) at once when idle, else once its in-flight calls are done. */
void imp_ctl_drain_reload(imp_server_t *server, imp_function_t *fn,
                          imp_instance_t *inst);
/* The record of fn's `version` (*out, NULL to skip; free it) and its
 * artifact on disk (`path`). 0, -ENOENT (no such version) or an error. */
int imp_ctl_version_lookup(imp_server_t *server, const char *name,
                           uint32_t version, Impulse__VersionRecord **out,
                           char *path, size_t pathlen);
/* Makes `version` fn's current one in memory (record, artifact path,
 * dispatcher); the caller stores the FunctionRecord. */
void imp_ctl_set_current(imp_server_t *server, imp_function_t *fn,
                         uint32_t version);
/* A live (not deleted) function by name, or NULL. */
imp_function_t *imp_ctl_fn_find(imp_server_t *server, const char *name);
/* A copy of a record owned like one read from the store. */
Impulse__FunctionRecord *imp_ctl_clone_record(
    const Impulse__FunctionRecord *rec);

#endif
