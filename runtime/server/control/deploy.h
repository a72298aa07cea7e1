/* Deploys (deploy.c): checks, validation in a throw-away worker, commit. */
#ifndef IMP_DEPLOY_H
#define IMP_DEPLOY_H

#include "base/rpc.h"
#include "server/control/context.h"

/* Deploy RPC (takes ownership of env): answered once the artifact was
 * validated and the new version stored, or refused. */
void imp_control_deploy(imp_control_t *ctl, imp_rpc_t *rpc,
                        Impulse__Envelope *env);
/* The validation worker `inst` answered (code 0: valid) or ended: the
 * deploy waiting for it is committed or refused. */
void imp_ctl_validated(imp_control_t *ctl, imp_instance_t *inst, int code,
                       const char *message);

#endif
