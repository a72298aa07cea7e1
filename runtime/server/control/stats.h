/* The controller's /metrics families (stats.c). */
#ifndef IMP_STATS_H
#define IMP_STATS_H

#include "base/metrics.h"
#include "server/control/context.h"

/* Registers the functions, instances, warm pool, store write, uptime and
 * build info families into m (ctl borrowed). 0 or -ENOMEM. */
int imp_control_register_metrics(imp_control_t *ctl, imp_metrics_t *m);

#endif
