/*
 * The autoscaler in the server (scaler.c): the signals of each second in,
 * instances out. The policies themselves are pure code in
 * policy/autoscaler.c and policy/predictor.c.
 */
#ifndef IMP_SCALER_H
#define IMP_SCALER_H

#include "impulse.pb-c.h"
#include "server/control/context.h"

/* Starts a function's autoscaler (restoring its saved forecast); applies
 * changed settings; frees it; deletes its saved forecast. */
void imp_scaler_fn_init(imp_control_t *ctl, imp_function_t *fn);
void imp_scaler_fn_config(imp_control_t *ctl, imp_function_t *fn);
void imp_scaler_fn_free(imp_function_t *fn);
void imp_scaler_fn_forget(imp_control_t *ctl, imp_function_t *fn);
/* Once a second: closes the second's signals, decides, scales. */
void imp_scaler_tick(imp_control_t *ctl);
/* Saves every function's forecast (at a clean stop). */
void imp_scaler_save_all(imp_control_t *ctl);
/* The last decision into a FunctionInfo (strings borrowed from fn). */
void imp_scaler_fill_info(imp_function_t *fn, Impulse__FunctionInfo *fi);
const char *imp_scaler_policy_name(int policy);
/* Whether `s` names a policy (NULL: the default). */
int imp_scaler_policy_valid(const char *s);
/* The autoscaling settings of a deploy or scale: NULL when valid, else
 * why not (a static string). */
const char *imp_scaler_check(const Impulse__FunctionConfig *c);

#endif
