/*
 * Autoscaler: how many instances a function should have, decided once a
 * second from the signals of the past seconds.
 *
 * - reactive (Knative KPA semantics): desired instances from the average
 *   demand (in-flight plus queued calls) over a stable window (60 s) and a
 *   panic window (6 s), divided by target concurrency x utilisation; panic
 *   mode when the panic window asks for at least twice the ready instances,
 *   left after a whole stable window below that, never scaling down while in
 *   it; scale-up and scale-down rate limits; scale to zero only after a
 *   grace period without calls;
 * - predictive (policy IMP_AS_PREDICTIVE): for a dense function, the
 *   predictor's forecast of arrivals one cold-start lead ahead turned into
 *   instances by Little's law and by Erlang B with a price on cold starts;
 *   for every function, the hybrid histogram's pre-warm/keep-alive window
 *   (as many instances as the concurrency levels it keeps warm); a sparse
 *   function with a trusted histogram gives its instances back after the
 *   panic window instead of the idle grace;
 * - lag: trigger-fed functions get ceil(consumer lag / threshold), capped at
 *   the partition count when ordering is per partition;
 * - combined: clamp(max(reactive, predictive, warm, lag), min, max).
 *
 * A second function sizes the platform-wide warm pool of generic workers.
 *
 * Pure code: no clock, no I/O; times are milliseconds passed in by the
 * caller, on the same clock as the predictor's (see predictor.h). The server
 * and `impulse sim` run exactly this code.
 */
#ifndef IMP_AUTOSCALER_H
#define IMP_AUTOSCALER_H

#include <stddef.h>
#include <stdint.h>

#include "policy/predictor.h"

#define IMP_AS_MAX_WINDOW_S 3600 /* longest stable window / history kept */
#define IMP_AS_MAX_INSTANCES 100000u
#define IMP_AS_REASON_MAX 96 /* bytes of a formatted reason, with NUL */

/* Policy of a function. */
enum {
  IMP_AS_REACTIVE = 0, /* KPA only */
  IMP_AS_PREDICTIVE    /* KPA + forecast + hybrid histogram ("impulse") */
};

/* Per-function settings; imp_as_cfg_default() fills the defaults. */
typedef struct imp_as_cfg_s {
  int policy;                 /* IMP_AS_REACTIVE | IMP_AS_PREDICTIVE;
                                 default IMP_AS_PREDICTIVE */
  double target_concurrency;  /* calls per instance at 100 %; default 1 */
  double target_utilization;  /* share of it to aim for; default 0.7 */
  uint32_t stable_window_s;   /* default 60, 1..IMP_AS_MAX_WINDOW_S */
  uint32_t panic_window_s;    /* default 6, 1..stable_window_s */
  double panic_threshold;     /* panic desired / ready to enter; default 2 */
  double max_scale_up_rate;   /* at most ceil(rate x ready); default 1000 */
  double max_scale_down_rate; /* at least floor(ready / rate); default 2 */
  uint32_t scale_to_zero_after_s; /* idle grace before 0; default 30 */
  uint32_t min_instances;         /* default 0 */
  uint32_t max_instances;         /* default 1000 */
  double lag_threshold;           /* records of lag per instance; default 100 */
  uint32_t lag_partitions;        /* cap of the lag term (per-partition
                                     ordering), 0 = no cap; default 0 */
  uint32_t cold_start_ms;         /* lead of the forecast; default 1000 */
  double default_duration_ms; /* until a duration is measured; default 100 */
  double dense_per_min;       /* below this forecast (arrivals/minute) ... */
  double dense_activity;      /* ... or this share of active minutes, the
                                 function is sparse: only the histogram
                                 keeps it warm; defaults 2 and 0.3 */
  double cold_cost_s;         /* price of one cold start in idle
                                 instance-seconds: the predictive term adds
                                 an instance while the cold starts it saves
                                 are worth more than its idle time (Erlang
                                 B); default 1200 */

} imp_as_cfg_t;

/* One second of signals of a function. */
typedef struct imp_as_sample_s {
  int64_t t_ms;          /* end of the second the sample covers */
  double inflight;       /* mean calls in flight over the second */
  uint32_t inflight_max; /* most calls in flight at once in the second */
  uint32_t arrivals;     /* calls that arrived in the second */
  uint32_t queue_len;    /* calls waiting for a slot at the end of it */
  double queue_wait_ms;  /* mean wait of calls dispatched in the second */
  uint32_t completions;  /* calls that finished in the second */
  double duration_ms;    /* their mean handler duration */
  int64_t lag;           /* consumer lag in records, -1 = no trigger */
} imp_as_sample_t;

/* What decided the count (imp_as_decision_t.why). */
enum {
  IMP_AS_WHY_STABLE = 0, /* stable-window demand */
  IMP_AS_WHY_PANIC,      /* panic window, holding the panic maximum */
  IMP_AS_WHY_ZERO,       /* scaled to zero after the idle grace */
  IMP_AS_WHY_HOLD_IDLE,  /* one instance kept inside the idle grace */
  IMP_AS_WHY_PREDICTIVE, /* forecast, Little's law */
  IMP_AS_WHY_WARM,       /* hybrid histogram window */
  IMP_AS_WHY_LAG,        /* consumer lag */
  IMP_AS_WHY_MIN,        /* raised to min instances */
  IMP_AS_WHY_MAX         /* capped at max instances */
};

/* The outcome of one decision, kept for `impulse describe`. */
typedef struct imp_as_decision_s {
  int64_t t_ms;            /* when it was taken */
  uint32_t desired;        /* the answer: instances wanted now */
  uint32_t reactive;       /* KPA term (after rate limits and grace) */
  uint32_t predictive;     /* forecast term, 0 when reactive or sparse */
  uint32_t warm;           /* histogram term (imp_as_warm()) */
  uint32_t lag;            /* lag term */
  uint32_t ready;          /* ready instances it was taken with */
  int panic;               /* 1 while in panic mode */
  int why;                 /* IMP_AS_WHY_* */
  double stable_demand;    /* mean demand over the stable window */
  double panic_demand;     /* mean demand over the panic window */
  double forecast_per_min; /* arrivals/minute forecast at t + lead */
  double duration_ms;      /* mean handler duration used by Little's law */
  int64_t idle_ms;         /* time since the last activity, -1 = never */
  int64_t lag_records;     /* lag used, -1 = none */
  int warm_kind;           /* IMP_PRED_WIN_* of the histogram term */
  uint32_t wanted;         /* max of the terms, before min/max */
  /* settings it was taken with, for the reason text */
  double target; /* calls per instance: concurrency x utilisation */
  double panic_threshold;
  uint32_t stable_window_s;
  uint32_t panic_window_s;
  uint32_t grace_s;
  uint32_t lead_ms;
  double lag_threshold;
  uint32_t lag_partitions;
  int64_t prewarm_ms; /* histogram window of the warm term */
  int64_t keepalive_ms;
} imp_as_decision_t;

/*
 * One function's autoscaler: the history ring plus the KPA state. Embed it;
 * imp_as_init() allocates the ring, imp_as_free() releases it. Fields are
 * private except for reading in tests.
 */
typedef struct imp_as_s {
  imp_as_cfg_t cfg;
  imp_as_sample_t *ring;  /* owned: `cap` samples, one per second */
  uint32_t cap;           /* = stable window */
  uint32_t len;           /* samples in the ring (<= cap) */
  uint32_t head;          /* slot of the next sample */
  int64_t second;         /* second index (t_ms / 1000) of the newest
                             sample; INT64_MIN before any */
  int64_t stable_sum;     /* demand in micro-calls over the stable window */
  int64_t panic_sum;      /* ... over the panic window */
  int64_t last_active_ms; /* end of the last second with calls or lag;
                             INT64_MIN never */
  double duration_ms;     /* smoothed handler duration, 0 = unknown */
  int panicking;
  int64_t panic_over_ms;  /* last time the panic condition held */
  uint32_t panic_max;     /* highest desired while panicking */
  imp_as_decision_t last; /* previous decision */
} imp_as_t;

/* Fills `cfg` with the defaults listed in imp_as_cfg_t. */
void imp_as_cfg_default(imp_as_cfg_t *cfg);

/* Checks a configuration; returns 0 or -EINVAL. */
int imp_as_cfg_check(const imp_as_cfg_t *cfg);

/* Starts an autoscaler with a copy of `cfg` (NULL: defaults) and an empty
 * history. Returns 0, -EINVAL (bad cfg) or -ENOMEM; on error nothing is
 * allocated and imp_as_free() is still safe. */
int imp_as_init(imp_as_t *as, const imp_as_cfg_t *cfg);

/* Releases the ring. The struct may be initialised again. */
void imp_as_free(imp_as_t *as);

/* Changes the settings, keeping as much history as the new stable window
 * holds. Returns 0, -EINVAL or -ENOMEM (then nothing changed). */
int imp_as_reconfigure(imp_as_t *as, const imp_as_cfg_t *cfg);

/*
 * Adds the sample of one second (the second ending at s->t_ms). Seconds
 * skipped since the previous sample count as seconds without calls; a
 * sample for a second already recorded is merged into it (arrivals and
 * completions add up, the rest is replaced).
 */
void imp_as_record(imp_as_t *as, const imp_as_sample_t *s);

/*
 * Decides the instance count at `now_ms` for a function with `ready` ready
 * instances, from the recorded history and, for the predictive policy,
 * `pred` (borrowed; NULL = reactive only). Seconds after the newest sample
 * count as seconds without calls. Fills `out` (may be NULL) and keeps a
 * copy in as->last. Returns the desired count.
 *
 * Each second the server records the sample (imp_as_record()), feeds the
 * same second to the predictor (imp_pred_observe() with the arrivals,
 * imp_pred_observe_inflight() with the most calls in flight at once,
 * imp_pred_advance()), then calls this and starts or retires instances
 * (retiring idle ones only).
 */
uint32_t imp_as_decide(imp_as_t *as, int64_t now_ms, uint32_t ready,
                       const imp_pred_t *pred, imp_as_decision_t *out);

/*
 * The hybrid histogram term alone: instances for imp_pred_warm_calls() at
 * `at_ms` (0 when the function is not to be kept warm, else at least 1).
 * `pred` is borrowed; `w` (may be NULL) gets the level-1 window.
 */
uint32_t imp_as_warm(const imp_as_t *as, const imp_pred_t *pred, int64_t at_ms,
                     imp_pred_window_t *w);

/*
 * Servers for a loss system (a call that finds all busy is a cold start)
 * offered `load` = rate x duration calls in flight, with calls of
 * `duration_s` and a cold start priced `cold_cost_s` idle seconds: adds
 * server n + 1 while the cold starts it saves per second, rate x (B(n) -
 * B(n+1)) x cold_cost_s, exceed the idle time it adds, 1 - load x (B(n) -
 * B(n+1)), with B the Erlang B formula. Capped at `max`.
 */
uint32_t imp_as_erlang_servers(double load, double duration_s,
                               double cold_cost_s, uint32_t max);

/* Formats the decision's reason ("panic: 6s demand 12.0 >= 2x 3 ready",
 * "scale-to-zero: idle 31s >= 30s", ...) into `buf`; returns `buf`. */
const char *imp_as_reason(const imp_as_decision_t *d, char *buf, size_t len);

/* ---- warm pool -------------------------------------------------------- */

/* Settings of the platform-wide warm pool of generic workers. */
typedef struct imp_as_pool_cfg_s {
  double refill_s;   /* time to start one generic worker; default 1 */
  double headroom;   /* factor on the expected starts; default 1.5 */
  uint32_t floor;    /* never fewer; default 2 */
  uint32_t cap;      /* never more; default 64 */
  uint32_t window_s; /* recent window of the start rate; default 10 */
  double ewma_s;     /* time constant of the long rate; default 120 */
} imp_as_pool_cfg_t;

#define IMP_AS_POOL_RING 64 /* longest recent window, seconds */

/* Demand for new instances, platform-wide. Embed it; owns no memory. */
typedef struct imp_as_pool_s {
  imp_as_pool_cfg_t cfg;
  uint32_t ring[IMP_AS_POOL_RING]; /* instance starts per second */
  int64_t second;                  /* newest second; INT64_MIN before any */
  uint64_t window_sum;             /* starts over the recent window */
  double ewma;                     /* starts per second, smoothed */
} imp_as_pool_t;

/* Fills `cfg` with the defaults listed in imp_as_pool_cfg_t. */
void imp_as_pool_cfg_default(imp_as_pool_cfg_t *cfg);

/* Starts empty with a copy of `cfg` (NULL: defaults). 0 or -EINVAL. */
int imp_as_pool_init(imp_as_pool_t *pool, const imp_as_pool_cfg_t *cfg);

/* Records `starts` instance starts (scale-ups that no existing instance
 * covered) at `now_ms`. */
void imp_as_pool_record(imp_as_pool_t *pool, int64_t now_ms, uint32_t starts);

/*
 * Generic workers to keep started at `now_ms`:
 * clamp(ceil(max(recent rate, smoothed rate, forecast) x refill_s x
 * headroom), floor, cap), where the forecast is `pred`'s (borrowed, may be
 * NULL) forecast of starts per minute one refill ahead, divided by 60.
 */
uint32_t imp_as_pool_target(const imp_as_pool_t *pool, int64_t now_ms,
                            const imp_pred_t *pred);

#endif
