/*
 * Functions coming and going (functions.h): a function is its entry in the
 * call path's table plus what the controller hangs on it.
 */
#include "server/control/functions.h"

#include "server/control/scaler.h"
#include "server/control/upgrade.h"

imp_function_t *imp_ctl_fn_create(imp_control_t *ctl,
                                  Impulse__FunctionRecord *rec,
                                  Impulse__VersionRecord *vrec) {
  imp_function_t *fn = imp_registry_add(&ctl->invoke.registry, rec, vrec);
  if (fn != NULL) imp_scaler_fn_init(ctl, fn);
  return fn;
}

void imp_ctl_fn_free(imp_control_t *ctl, imp_function_t *fn) {
  imp_scaler_fn_free(fn);
  imp_upg_free(fn);
  imp_registry_remove(&ctl->invoke.registry, fn);
}
