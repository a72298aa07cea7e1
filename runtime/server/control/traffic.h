/* Traffic splits between a function's versions (traffic.c). */
#ifndef IMP_TRAFFIC_H
#define IMP_TRAFFIC_H

#include <stddef.h>

#include "base/rpc.h"
#include "server/control/context.h"

/* Makes `rec`'s traffic split live for fn: artifacts on disk, the
 * dispatcher's split. 0, or a negative error with `err` set (then nothing
 * changed). */
int imp_ctl_traffic_apply(imp_control_t *ctl, imp_function_t *fn,
                          const Impulse__FunctionRecord *rec, char *err,
                          size_t errlen);
/* Traffic RPC: shows or sets a split (takes ownership of env). */
void imp_control_traffic(imp_control_t *ctl, imp_rpc_t *rpc,
                         Impulse__Envelope *env);

#endif
