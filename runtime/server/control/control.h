/*
 * The controller (the AppMaster): owns the functions, their versions,
 * traffic and scale settings; validates and commits deployments; gives
 * functions their instances (the fleet) and the call path its functions;
 * restores everything from the store at start. Every control change is
 * committed as one synced WriteBatch before the caller hears OK.
 *
 * Its parts, each with its own header: records.c (artifacts and stored
 * records), instances.c (a function's instances), functions.c, scaler.c
 * (the autoscaler), upgrade.c (rolling upgrades), traffic.c, deploy.c,
 * manage.c (delete, scale), info.c (list, describe, recordings),
 * backup.c, stats.c (/metrics), and this file, which ties them to the
 * fleet's and the call path's events. Below it: invoke/, fleet/, base/.
 * Above it: the front doors, which hand it RPCs with an imp_rpc_t to
 * answer through, and serve.c, which runs it.
 */
#ifndef IMP_CONTROL_H
#define IMP_CONTROL_H

#include "server/control/context.h"

/* Sets the controller up: the fleet and the call path, with itself as
 * their owner. loop, cfg, cl, store, metrics, artifact_dir, token and
 * started_ms must be set first. */
void imp_control_init(imp_control_t *ctl);
/* Restores functions, their versions and splits, running upgrades, and
 * adopts the workers of a previous run; starts min instances. 0 or a
 * store error. */
int imp_control_restore(imp_control_t *ctl);
/* 1 once every function has its min instances serving. */
int imp_control_restored(imp_control_t *ctl);
/* Once a second: min instances, upgrades, the autoscaler, the warm pool,
 * the sweep of expired idempotent answers. */
void imp_control_tick(imp_control_t *ctl);
/* Stopping: queued calls fail with SHUTTING_DOWN while those in flight
 * finish; the warm pool is not refilled. */
void imp_control_drain(imp_control_t *ctl);
/* Stopped: forecasts saved, timers stopped, workers told to end. */
void imp_control_stop(imp_control_t *ctl);
/* Frees the functions (after the loop has ended). */
void imp_control_free(imp_control_t *ctl);

#endif
