/* Rolling upgrades of a function's instances (see upgrade.c). */
#ifndef IMP_UPGRADE_H
#define IMP_UPGRADE_H

#include <stdint.h>

#include <uv.h>

#include "base/rpc.h"
#include "impulse.pb-c.h"
#include "server/control/context.h"
#include "server/fleet/instance.h"
#include "server/invoke/function.h"
#include "server/invoke/recordings.h"

/* Starts an upgrade of fn from `from` to `to` (fn->upg; the caller fills
 * from_path and to_path): loads the recorded calls to validate with. */
imp_upgrade_t *imp_upg_new(imp_control_t *ctl, imp_function_t *fn,
                           uint32_t from, uint32_t to, unsigned step,
                           int exact);
/* Drops fn's upgrade (its timer closes; memory freed then). */
void imp_upg_free(imp_function_t *fn);
/* Calls go to the serving instances of both versions by their numbers. */
void imp_upg_weights(imp_function_t *fn);
/* The next step, from the loop. */
void imp_upg_kick(imp_function_t *fn);
/* Verdicts of validations and the next step; from the controller tick. */
void imp_upg_tick(imp_control_t *ctl, imp_function_t *fn);
/* An instance of fn loaded a version: 1 when the upgrade takes it
 * (validation, or a reload back), 0 when it may serve. */
int imp_upg_on_ready(imp_control_t *ctl, imp_function_t *fn,
                     imp_instance_t *inst);
/* Resumes an upgrade stored in fn's record (at restore). */
void imp_upg_restore(imp_control_t *ctl, imp_function_t *fn);
/* describe's view: the stored record plus the progress of a running one. */
void imp_upg_info(imp_function_t *fn, Impulse__UpgradeInfo *ui);

/* Upgrade RPC: `impulse upgrade status|abort NAME` (takes ownership of
 * env). */
void imp_control_upgrade(imp_control_t *ctl, imp_rpc_t *rpc,
                         Impulse__Envelope *env);

#endif
