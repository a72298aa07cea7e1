/*
 * The controller's shared state (control.h says what the controller is):
 * its context, a function's rolling upgrade, and the lookups every part of
 * it uses. Types only; the parts' functions are in their own headers.
 */
#ifndef IMP_CONTEXT_H
#define IMP_CONTEXT_H

#include <stdint.h>
#include <uv.h>

#include "base/config.h"
#include "base/conn.h"
#include "base/fnlog.h"
#include "base/metrics.h"
#include "base/store.h"
#include "impulse.pb-c.h"
#include "policy/autoscaler.h"
#include "server/fleet/instance.h"
#include "server/invoke/call.h"
#include "server/invoke/function.h"
#include "server/invoke/recordings.h"

/* Trigger lag for the autoscaler: `visit` once per trigger with what
 * `impulse trigger describe` shows of it (borrowed for the call). */
typedef void (*imp_lag_visit_cb)(void *varg, const Impulse__TriggerInfo *info);
typedef void (*imp_lag_source_cb)(void *arg, imp_lag_visit_cb visit,
                                  void *varg);

typedef struct imp_control_s {
  uv_loop_t *loop;
  const imp_config_t *cfg;
  imp_conn_loop_t *cl;
  imp_store_t *store;
  imp_metrics_t *metrics;       /* may be NULL */
  imp_fleet_t fleet;            /* the worker processes */
  imp_fnlogs_t logs;            /* what functions wrote (freed by serve.c) */
  imp_invoke_t invoke;          /* the call path and the functions */
  char artifact_dir[600];       /* STATE/artifacts */
  char token[65];               /* the admin token (backups carry it) */
  uint64_t started_ms;          /* monotonic */
  uint64_t ticks;               /* controller ticks (1 s) so far */
  imp_as_pool_t pool;           /* demand for generic workers */
  uint32_t pool_target;         /* generic workers to keep */
  imp_lag_source_cb lag_source; /* NULL without a trigger broker */
  void *lag_source_arg;
  char **load_env; /* the last imp_ctl_load_spec()'s environment, owned */
  int stopping;
} imp_control_t;

/* A running rolling upgrade of a function (fn->upg). */
enum { IMP_UPG_RUNNING = 1, IMP_UPG_ROLLBACK };
enum {
  IMP_UPGI_SERVING = 0, /* serves (or is not part of an upgrade) */
  IMP_UPGI_DETACHED,    /* no new calls; reloads once drained */
  IMP_UPGI_UPGRADING,   /* Load sent */
  IMP_UPGI_VALIDATING   /* replaying recorded calls */
};
typedef struct imp_upgrade_s {
  int state;         /* IMP_UPG_* */
  uint32_t from, to; /* versions */
  char from_path[600], to_path[600];
  unsigned max_step_pct;
  int exact;           /* --validate exact */
  char reason[300];    /* why it rolls back */
  uint64_t started_ms; /* monotonic */
  unsigned validated, replayed;
  imp_control_t *ctl;
  imp_function_t *fn;
  uv_timer_t timer;            /* runs the next step from the loop */
  struct imp_recorded_s *recs; /* recorded calls of earlier versions */
  size_t nrecs;
} imp_upgrade_t;

/* fn's rolling upgrade, NULL when none runs. */
#define FN_UPG(fn) ((imp_upgrade_t *)(fn)->upg)

/* A live (not deleted) function by name, or NULL. */
static inline imp_function_t *imp_ctl_fn_find(imp_control_t *ctl,
                                              const char *name) {
  return imp_registry_find(&ctl->invoke.registry, name);
}

/* A function's settings with the server's defaults. */
#define fn_cfg(fn, which, def) imp_fn_setting((fn), (which), (def))
#define FN_MIN(c, f) fn_cfg((f), IMP_FN_MIN_INSTANCES, 0)
#define FN_MAX(c, f) \
  fn_cfg((f), IMP_FN_MAX_INSTANCES, (c)->cfg->default_max_instances)

#endif
