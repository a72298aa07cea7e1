/*
 * What a trigger shows: `trigger describe` and `ls` (its spec, state,
 * counters, the partitions this server holds) and the impulse_trigger_*
 * /metrics families.
 */
#ifndef IMP_TRIGGER_INFO_H
#define IMP_TRIGGER_INFO_H

#include <stddef.h>

#include "base/metrics.h"
#include "eventing/trigger_env.h"
#include "eventing/trigger_types.h"
#include "impulse.pb-c.h"

/* Fills `info` for a trigger; parts/pp are caller-owned arrays of at least
 * trigger->nparts entries, state one of slen bytes. What `info` points to
 * is borrowed from the trigger and those arrays. */
void trigger_fill_info(trigger_t *trigger, Impulse__TriggerInfo *info,
                       Impulse__PartitionInfo *parts,
                       Impulse__PartitionInfo **pp, char *state, size_t slen);
/* Calls cb with the trigger's info (trigger_fill_info()); `info` and what
 * it points to are borrowed for the call. */
void trigger_with_info(trigger_t *trigger, imp_trigger_info_cb cb, void *arg);
/* Calls cb with the info of every trigger listed (not removed). */
void triggers_with_info(triggers_t *triggers, imp_trigger_info_cb cb,
                        void *arg);
/* The impulse_trigger_* families (an imp_metrics_register() collector;
 * arg is the broker). */
void triggers_collect(imp_metrics_writer_t *w, void *arg);

#endif
