/*
 * `impulse sim`: the replay of a trace in virtual time through the
 * autoscaler and predictor the server uses, under one policy (see
 * sim_replay.c for the model).
 */
#ifndef IMP_SIM_REPLAY_H
#define IMP_SIM_REPLAY_H

#include <stddef.h>
#include <stdint.h>

#include "policy/autoscaler.h"
#include "policy/predictor.h"
#include "tools/sim_trace.h"

/* Policies. */
enum {
  IMP_SIM_FIXED = 0, /* keep each instance N after its last call */
  IMP_SIM_KPA,       /* autoscaler, reactive only */
  IMP_SIM_HYBRID,    /* hybrid histogram windows alone */
  IMP_SIM_IMPULSE    /* autoscaler, predictive: KPA + forecast + histogram */
};

typedef struct imp_sim_policy_s {
  int kind;             /* IMP_SIM_* */
  int64_t keepalive_ms; /* IMP_SIM_FIXED only */
  char name[32];        /* as given: "fixed:10m", "kpa", ... */
} imp_sim_policy_t;

/* How arrivals are placed inside their minute. */
enum {
  IMP_SIM_SPREAD_UNIFORM = 0, /* seeded uniform random, sorted */
  IMP_SIM_SPREAD_EVEN         /* evenly spaced: (i + 0.5) / n of a minute */
};

/* Replay settings; imp_sim_opts_default() fills the defaults. */
typedef struct imp_sim_opts_s {
  uint32_t concurrency;       /* calls per instance at once; default 1 */
  uint32_t cold_start_ms;     /* instance start time; default 1000 */
  double default_duration_ms; /* functions without a duration; default 100 */
  int spread;                 /* IMP_SIM_SPREAD_*; default uniform */
  uint64_t seed;              /* of the uniform spread; default 1 */
  imp_as_cfg_t as;            /* autoscaler settings (kpa, impulse) */
  imp_pred_cfg_t pred;        /* predictor settings (hybrid, impulse) */
  imp_as_pool_cfg_t pool;     /* warm pool sizing */
  int progress;               /* report progress on stderr */
  long plot_fn;               /* function whose instances are recorded, -1 */
} imp_sim_opts_t;

/* Outcome of one policy over the whole trace. */
typedef struct imp_sim_result_s {
  imp_sim_policy_t policy;
  uint64_t invocations;
  uint64_t cold_starts;
  double cold_start_frac;
  double p75_fn_cold_frac;  /* 75th percentile of per-function fractions */
  double wasted_s;          /* instance-seconds alive without a call */
  double alive_s;           /* instance-seconds alive */
  uint32_t peak_instances;  /* platform-wide, per second */
  uint64_t starts;          /* instances started */
  double pool_mean;         /* mean warm-pool target */
  double pool_covered_frac; /* starts served from the warm pool */
  double run_s;             /* wall time of the replay */
  uint32_t *plot_instances; /* owned, IMP_SIM_MINUTES entries (max alive
                               per minute of opts.plot_fn) or NULL */
  uint64_t *fn_cold;        /* owned, per function: cold starts */
  uint64_t *fn_cold_zero;   /* owned, per function: ... with no instance */
  double *fn_wasted_s;      /* owned, per function: idle instance-seconds */
  uint32_t *fn_peak;        /* owned, per function: most instances */
} imp_sim_result_t;

/* Fills `opts` with the defaults listed in imp_sim_opts_t. */
void imp_sim_opts_default(imp_sim_opts_t *opts);

/* Parses "fixed:10m" (also fixed:Ns, fixed:Nh), "kpa", "hybrid", "impulse".
 * Returns 0 or -EINVAL. */
int imp_sim_policy_parse(const char *s, imp_sim_policy_t *p);

/* Replays the trace under one policy. Returns 0 or -ENOMEM; `res` gets the
 * figures (free with imp_sim_result_free()). */
int imp_sim_run(const imp_sim_trace_t *tr, const imp_sim_policy_t *pol,
                const imp_sim_opts_t *opts, imp_sim_result_t *res);

/* Releases what a result owns. */
void imp_sim_result_free(imp_sim_result_t *res);

/* Seconds on the monotonic clock (a result's run_s). */
double imp_sim_mono_s(void);

#endif
