/*
 * A deployed function as the server holds it in memory, and the table of
 * them. The call path (call.c) routes calls by it; the controller
 * (control/) creates, changes and deletes functions and owns the fields
 * marked as its own.
 */
#ifndef IMP_FUNCTION_H
#define IMP_FUNCTION_H

#include <stddef.h>
#include <stdint.h>

#include "base/metrics.h"
#include "core/list.h"
#include "impulse.pb-c.h"
#include "policy/autoscaler.h"
#include "policy/dispatcher.h"
#include "policy/pipeline.h"
#include "policy/predictor.h"
#include "server/invoke/recordings.h"

typedef struct imp_function_s imp_function_t;

/* A function's autoscaler (control/scaler.c) and the signals its calls
 * leave in the current second (counted by the call path, read and reset
 * by the scaler once a second). */
typedef struct imp_fn_scaler_s {
  int on;
  imp_as_t as;
  imp_pred_t pred;
  uint32_t arrivals, completions, inflight_max, waited;
  double dur_sum_ms, wait_sum_ms;
  uint64_t busy_ns;   /* integral of calls in flight over the second */
  uint64_t last_ns;   /* last change of in_flight */
  uint64_t sample_ns; /* start of the second being counted */
  int64_t lag;        /* consumer lag of its triggers, -1 none */
  uint32_t lag_partitions;
  int lag_uncapped;
  int64_t saved_ms; /* predictor state last saved */
  uint32_t desired;
  imp_as_decision_t decision;
  char reason[IMP_AS_REASON_MAX]; /* of the decision */
} imp_fn_scaler_t;

struct imp_function_s {
  char name[65];
  Impulse__FunctionRecord *rec; /* owned, as stored */
  Impulse__VersionRecord *vrec; /* owned, current version */
  char artifact_path[600];
  imp_dispatch_t dispatch;
  unsigned instances; /* attached (loading, ready, draining) */
  unsigned starting;  /* being started or loading */
  uint64_t invocations, errors, cold_starts;
  uint64_t idempotent_hits; /* answered from the idempotency store */
  uint64_t warm_starts;     /* instances started from the warm pool */
  int trigger_waiting;      /* a caller waits for room (want_room) */
  unsigned in_flight;       /* calls from arrival to answer */
  int deleted;
  imp_pipe_t pipe;          /* pipelining and batch sizes (pipeline.h) */
  imp_fn_metrics_t metrics; /* outcomes and durations */
  imp_list_t calls;         /* its calls (imp_call_t.link) */
  imp_fn_scaler_t sc;
  imp_fn_rec_t recording; /* recorded requests (recordings.h) */
  /* The controller's: traffic split (rec->traffic) with each version's
   * artifact; ntraffic 0 = everything to rec->version (artifact_path). */
  unsigned ntraffic;
  uint32_t tversion[IMP_DISPATCH_MAX_SPLIT];
  uint32_t tweight[IMP_DISPATCH_MAX_SPLIT];
  char tpath[IMP_DISPATCH_MAX_SPLIT][600];
  void *upg; /* the controller's: a rolling upgrade (control/context.h) */
  Impulse__UpgradeInfo upg_info; /* describe's view of it */
  imp_list_t link;               /* in the registry */
};

/* A function's settings, with `def` where its record has none. */
enum {
  IMP_FN_CONCURRENCY = 0,
  IMP_FN_TIMEOUT_MS,
  IMP_FN_MEMORY_MB,
  IMP_FN_MIN_INSTANCES,
  IMP_FN_MAX_INSTANCES
};
uint32_t imp_fn_setting(const imp_function_t *fn, int which, uint32_t def);

/* fn->in_flight is about to change by delta (+1: a call arrives): counts
 * the autoscaler's signals of the second. */
void imp_fn_inflight(imp_function_t *fn, int delta);

/* The table of functions. Deleted functions stay in it (flagged) until
 * their last call and instance are gone. */
typedef struct imp_registry_s {
  imp_list_t functions;
  unsigned count;   /* in the table, deleted ones included */
  size_t max_queue; /* bound of each function's dispatcher queue */
} imp_registry_t;

void imp_registry_init(imp_registry_t *reg, size_t max_queue);
/* The function of that name that is not deleted, or NULL. */
imp_function_t *imp_registry_find(imp_registry_t *reg, const char *name);
/* Adds a function of `rec` and `vrec` (both taken). NULL when out of
 * memory (then they are freed). */
imp_function_t *imp_registry_add(imp_registry_t *reg,
                                 Impulse__FunctionRecord *rec,
                                 Impulse__VersionRecord *vrec);
/* Takes fn out of the table and frees it; the controller has released
 * what it hung on it (scaler, upgrade). */
void imp_registry_remove(imp_registry_t *reg, imp_function_t *fn);
/* Iteration, in the order functions were added (deleted ones included). */
imp_function_t *imp_registry_first(imp_registry_t *reg);
imp_function_t *imp_registry_next(imp_registry_t *reg, imp_function_t *fn);

#define IMP_REGISTRY_EACH(fn, reg)                   \
  for ((fn) = imp_registry_first(reg); (fn) != NULL; \
       (fn) = imp_registry_next((reg), (fn)))

#endif
