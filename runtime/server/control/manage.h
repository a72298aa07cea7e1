/* Deleting a function and changing its scale bounds (manage.c). */
#ifndef IMP_MANAGE_H
#define IMP_MANAGE_H

#include "base/rpc.h"
#include "server/control/context.h"

/* Delete and Scale RPCs; each takes ownership of env. */
void imp_control_delete(imp_control_t *ctl, imp_rpc_t *rpc,
                        Impulse__Envelope *env);
void imp_control_scale(imp_control_t *ctl, imp_rpc_t *rpc,
                       Impulse__Envelope *env);

#endif
