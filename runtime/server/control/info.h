/* What the controller tells about functions (info.c): list, describe,
 * recorded calls. */
#ifndef IMP_INFO_H
#define IMP_INFO_H

#include "base/rpc.h"
#include "server/control/context.h"

/* List, Describe and RecordList RPCs; each takes ownership of env. */
void imp_control_list(imp_control_t *ctl, imp_rpc_t *rpc,
                      Impulse__Envelope *env);
void imp_control_describe(imp_control_t *ctl, imp_rpc_t *rpc,
                          Impulse__Envelope *env);
void imp_control_record_list(imp_control_t *ctl, imp_rpc_t *rpc,
                             Impulse__Envelope *env);
/* Fills fi and cfg (the caller's) with what `impulse describe` shows of fn:
 * settings with the defaults applied, counters; strings borrowed from fn. */
void imp_control_function_info(imp_control_t *ctl, imp_function_t *fn,
                               Impulse__FunctionInfo *fi,
                               Impulse__FunctionConfig *cfg);

#endif
