/*
 * A function's instances (instances.c): starting them (from the warm pool
 * when it can), keeping min, starting more for a queue, retiring idle
 * ones, and what each loads when its function has several live versions.
 */
#ifndef IMP_INSTANCES_H
#define IMP_INSTANCES_H

#include <stdint.h>

#include "server/control/context.h"

/* Counts inst in fn->starting (on) or not (off); idempotent. */
void imp_ctl_mark_starting(imp_function_t *fn, imp_instance_t *inst, int on);
/* Makes inst one of fn's instances (in its dispatcher, starting). */
void imp_ctl_attach(imp_function_t *fn, imp_instance_t *inst);
void imp_ctl_detach(imp_function_t *fn, imp_instance_t *inst);
/* Starts one more instance of fn (a warm worker when there is one). 0 or
 * -EAGAIN when no process could start. */
int imp_ctl_start_instance(imp_control_t *ctl, imp_function_t *fn);
/* Retires idle ready instances of fn above `keep` (never below min). */
void imp_ctl_retire_idle(imp_control_t *ctl, imp_function_t *fn, unsigned keep);
/* Starts instances until fn has its min. */
void imp_ctl_ensure_min(imp_control_t *ctl, imp_function_t *fn);
/* Starts instances while fn's queue holds more calls than the instances
 * being started will take (up to max). */
void imp_ctl_scale_for_queue(imp_control_t *ctl, imp_function_t *fn);
/* What loading fn's `version` (its artifact at `path`) means for an
 * instance: settings, and the pipelining allowance of the moment. */
void imp_ctl_load_spec(imp_control_t *ctl, imp_function_t *fn, uint32_t version,
                       const char *path, imp_load_t *out);
/* Loads fn (the version its traffic wants next) into inst. */
int imp_ctl_load(imp_control_t *ctl, imp_function_t *fn, imp_instance_t *inst);
/* Takes an instance out of service: it reloads (imp_ctl_load picks the
 * version) at once when idle, else once its in-flight calls are done. */
void imp_ctl_drain_reload(imp_control_t *ctl, imp_function_t *fn,
                          imp_instance_t *inst);
/* Whether instances of fn's `version` may serve (current, or in the
 * split, or in the upgrade). */
int imp_ctl_version_live(const imp_function_t *fn, uint32_t version);
/* The version a (re)loading instance of fn should load (the one furthest
 * below its traffic share, not counting `inst`) and its artifact path
 * (borrowed from fn). */
const char *imp_ctl_load_target(imp_function_t *fn, const imp_instance_t *inst,
                                uint32_t *version);

#endif
