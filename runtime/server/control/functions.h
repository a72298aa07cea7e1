/* Functions coming and going in the controller (functions.c). */
#ifndef IMP_FUNCTIONS_H
#define IMP_FUNCTIONS_H

#include "server/control/context.h"

/* Adds a function of rec and vrec (both taken) with its autoscaler. NULL
 * when out of memory. */
imp_function_t *imp_ctl_fn_create(imp_control_t *ctl,
                                  Impulse__FunctionRecord *rec,
                                  Impulse__VersionRecord *vrec);
/* Frees fn with its autoscaler and upgrade. */
void imp_ctl_fn_free(imp_control_t *ctl, imp_function_t *fn);

#endif
