/*
 * Secrets (secrets.c): named values in the state store's secrets column
 * family, set, listed and removed by the admin, and resolved into the
 * environment of the functions that name them when an instance loads.
 * No answer and no log line carries a value.
 */
#ifndef IMP_SECRETS_H
#define IMP_SECRETS_H

#include <stddef.h>

#include "base/rpc.h"
#include "server/control/context.h"

/* SecretSet, SecretList and SecretDelete RPCs (admin only, checked by the
 * front door); each takes ownership of env. A set is synced to the store
 * before it is answered; a delete is refused (BAD_REQUEST naming them)
 * while functions name the secret. */
void imp_control_secret_set(imp_control_t *ctl, imp_rpc_t *rpc,
                            Impulse__Envelope *env);
void imp_control_secret_list(imp_control_t *ctl, imp_rpc_t *rpc,
                             Impulse__Envelope *env);
void imp_control_secret_delete(imp_control_t *ctl, imp_rpc_t *rpc,
                               Impulse__Envelope *env);

/* Checks the secrets of a deploy's merged config `cfg`: the references
 * are valid with its environment (BAD_REQUEST) and every secret exists
 * (NOT_FOUND naming it). Returns 0, or the ErrorCode with the reason in
 * err. */
int imp_ctl_secrets_check(imp_control_t *ctl,
                          const Impulse__FunctionConfig *cfg, char *err,
                          size_t errlen);

/* The environment an instance of a function with config `cfg` (may be
 * NULL) gets: its "KEY=VALUE" entries, then one "VAR=value" per secret it
 * names, read from the store now (so a changed value reaches the next
 * instance). *out is one allocation (the array and its strings), freed
 * with free(); *n gets the entries. A secret missing from the store is
 * left out and logged by name. Returns 0 or -ENOMEM. */
int imp_ctl_secrets_env(imp_control_t *ctl, const Impulse__FunctionConfig *cfg,
                        char ***out, size_t *n);

/* `cfg`'s environment as names only ("KEY" each) in one allocation freed
 * with free(), for answers: *n gets the count; NULL when there are none or
 * out of memory (then *n is 0). */
char **imp_ctl_env_names(const Impulse__FunctionConfig *cfg, size_t *n);

/* Cuts every "KEY=VALUE" entry of `cfg` (owned by the caller, as
 * unpacked) to "KEY" in place, for answers that carry a stored config. */
void imp_ctl_env_strip(Impulse__FunctionConfig *cfg);

#endif
