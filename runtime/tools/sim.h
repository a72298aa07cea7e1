/*
 * `impulse sim`: replays a per-minute invocation trace (Azure Functions 2019
 * format) in virtual time through the autoscaler and predictor the server
 * uses, under several keep-alive/scaling policies, and reports cold starts
 * and idle instance time for each.
 *
 * The trace loader and the replay are exposed so that tests can run them on
 * small generated traces without going through the command line.
 */
#ifndef IMP_SIM_H
#define IMP_SIM_H

#include <stddef.h>
#include <stdint.h>

#include "policy/autoscaler.h"
#include "policy/predictor.h"

#define IMP_SIM_MINUTES 1440            /* one day per trace row */
#define IMP_SIM_MAX_LINE (1u << 20)     /* bytes of one trace line */
#define IMP_SIM_MAX_NAME 128            /* bytes of a hash column */
#define IMP_SIM_MAX_PER_MINUTE 1000000u /* invocations of one function/min */
#define IMP_SIM_MAX_FUNCTIONS 20000u
#define IMP_SIM_MAX_POLICIES 16

/* One function of the trace. */
typedef struct imp_sim_fn_s {
  char hash[IMP_SIM_MAX_NAME + 1];  /* HashFunction */
  uint32_t counts[IMP_SIM_MINUTES]; /* invocations per minute */
  uint64_t total;                   /* sum of counts */
  double duration_ms;               /* mean handler duration */
  int has_duration;                 /* 0: the default duration is used */
} imp_sim_fn_t;

/* A loaded trace: owned array of functions, freed by imp_sim_trace_free(). */
typedef struct imp_sim_trace_s {
  imp_sim_fn_t *fn;
  size_t count;
  size_t cap;
} imp_sim_trace_t;

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

/*
 * Loads an invocation trace: an optional header line starting with
 * "HashFunction", then rows of HashFunction,HashOwner,HashApp and 1440
 * per-minute counts. At most `limit` functions are kept (0 = all). Returns
 * 0, or a negative errno with a message naming the line in `err`.
 */
int imp_sim_trace_load(imp_sim_trace_t *tr, const char *path, size_t limit,
                       char *err, size_t errlen);

/*
 * Sets each function's duration from an Azure durations file (columns named
 * by its header; HashFunction and Average in ms are used), the others get
 * `default_ms`. Returns 0 or a negative errno with a message in `err`;
 * `*matched` (may be NULL) gets the number of functions found.
 */
int imp_sim_durations_load(imp_sim_trace_t *tr, const char *path,
                           double default_ms, size_t *matched, char *err,
                           size_t errlen);

/* Sets every function without a duration to `default_ms`. */
void imp_sim_durations_default(imp_sim_trace_t *tr, double default_ms);

/* Releases the functions. */
void imp_sim_trace_free(imp_sim_trace_t *tr);

/* Parses "fixed:10m" (also fixed:Ns, fixed:Nh), "kpa", "hybrid", "impulse".
 * Returns 0 or -EINVAL. */
int imp_sim_policy_parse(const char *s, imp_sim_policy_t *p);

/* Replays the trace under one policy. Returns 0 or -ENOMEM; `res` gets the
 * figures (free with imp_sim_result_free()). */
int imp_sim_run(const imp_sim_trace_t *tr, const imp_sim_policy_t *pol,
                const imp_sim_opts_t *opts, imp_sim_result_t *res);

/* Releases what a result owns. */
void imp_sim_result_free(imp_sim_result_t *res);

/* Entry point of `impulse sim ...` (argv[0] is "sim"). */
int imp_sim_main(int argc, char **argv);

#endif
