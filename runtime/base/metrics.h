/*
 * Metrics in the Prometheus text exposition format (version 0.0.4).
 *
 * Three layers:
 *   - imp_histogram_t: fixed-bucket histograms, cheap enough for every call;
 *   - imp_metrics_writer_t: writes families (HELP, TYPE, samples) with
 *     correct escaping, and histograms with cumulative buckets; pure, so it
 *     is unit-tested on its own;
 *   - imp_metrics_t: a registry of collectors, each a function that writes
 *     its families when /metrics is scraped. A subsystem with something to
 *     report (the autoscaler's desired and forecast instances, the state of
 *     an upgrade) registers one collector and owns nothing else here.
 *
 * Everything runs on the loop thread: counters are plain integers.
 */
#ifndef IMP_METRICS_H
#define IMP_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "core/common.h"

/* ---- histograms ---------------------------------------------------------- */

#define IMP_HIST_MAX_BOUNDS 24

/* Upper bounds (seconds) of call durations: 100 us to 60 s. */
extern const double imp_metrics_duration_bounds[];
extern const unsigned imp_metrics_duration_nbounds;
/* Upper bounds (seconds) of state store writes: 10 us to 1 s. */
extern const double imp_metrics_store_bounds[];
extern const unsigned imp_metrics_store_nbounds;

typedef struct imp_histogram_s {
  const double *bounds; /* ascending upper bounds, borrowed (static) */
  unsigned nbounds;     /* at most IMP_HIST_MAX_BOUNDS */
  uint64_t counts[IMP_HIST_MAX_BOUNDS + 1]; /* per bucket; last is +Inf */
  uint64_t count;
  double sum;
} imp_histogram_t;

/* Zeroes the histogram and sets its bounds (borrowed; nbounds is clamped to
 * IMP_HIST_MAX_BOUNDS). */
void imp_histogram_init(imp_histogram_t *h, const double *bounds,
                        unsigned nbounds);
/* Counts one value (seconds). */
void imp_histogram_observe(imp_histogram_t *h, double v);

/* ---- per function -------------------------------------------------------- */

/* Outcome slots: 0 is "ok", 1..IMP_OUTCOMES-2 are ErrorCodes, the last one
 * counts codes outside that range. */
#define IMP_OUTCOMES 32

/* Metrics of one function, embedded in imp_function_t (zero-initialised
 * is valid: the histogram gets its bounds on first use). */
typedef struct imp_fn_metrics_s {
  uint64_t outcomes[IMP_OUTCOMES];
  imp_histogram_t duration; /* arrival to answer, every outcome */
} imp_fn_metrics_t;

/* Label value of an outcome slot into buf: "ok", the ErrorCode's name in
 * lower case ("not_found"), or "unknown". Returns buf. */
const char *imp_metrics_outcome_name(unsigned slot, char *buf, size_t len);

/* Counts one call's outcome (0 = ok, else its ErrorCode) and its time from
 * `started_ns` (imp_now_ns() at its arrival; 0 = unknown) to now. Called
 * once per call (once per item of an invoke_batch) when its caller gets the
 * answer. */
void imp_fn_metrics_observe(imp_fn_metrics_t *m, int code, uint64_t started_ns);

/* ---- text writer --------------------------------------------------------- */

typedef enum imp_metric_type_e {
  IMP_METRIC_COUNTER = 0,
  IMP_METRIC_GAUGE,
  IMP_METRIC_HISTOGRAM
} imp_metric_type_t;

/* A label: name (a Prometheus label name, not escaped) and value (any
 * bytes up to the NUL, escaped on output). Both borrowed. */
typedef struct imp_label_s {
  const char *name;
  const char *value;
} imp_label_t;

/* Writes into a buffer it does not own. An allocation failure is sticky:
 * later calls do nothing and `failed` stays set. */
typedef struct imp_metrics_writer_s {
  imp_buf_t *out; /* borrowed */
  int failed;
} imp_metrics_writer_t;

void imp_metrics_writer_init(imp_metrics_writer_t *w, imp_buf_t *out);

/* Starts a family: its `# HELP` (help escaped) and `# TYPE` lines. Every
 * sample of the family must follow before the next family starts. */
void imp_metrics_family(imp_metrics_writer_t *w, const char *name,
                        imp_metric_type_t type, const char *help);

/* One sample `name{labels} value`. Integral values are written exactly;
 * others with enough digits to round-trip. */
void imp_metrics_sample(imp_metrics_writer_t *w, const char *name,
                        const imp_label_t *labels, size_t nlabels, double v);
/* Same for a counter value above 2^53, which a double would round. */
void imp_metrics_sample_u64(imp_metrics_writer_t *w, const char *name,
                            const imp_label_t *labels, size_t nlabels,
                            uint64_t v);

/* The samples of one histogram: NAME_bucket{labels,le="..."} (cumulative,
 * ending with le="+Inf" equal to the count), NAME_sum and NAME_count. */
void imp_metrics_histogram(imp_metrics_writer_t *w, const char *name,
                           const imp_label_t *labels, size_t nlabels,
                           const imp_histogram_t *h);

/* Appends the escaped label value (\\, \" and \n) to w. */
void imp_metrics_escape_label(imp_metrics_writer_t *w, const char *value);

/* ---- registry ------------------------------------------------------------ */

typedef struct imp_metrics_s imp_metrics_t;

/* Writes the families of one subsystem; `arg` is what it registered. */
typedef void (*imp_metrics_collect_cb)(imp_metrics_writer_t *w, void *arg);

/* An empty registry, or NULL when out of memory. Free with
 * imp_metrics_free(). */
imp_metrics_t *imp_metrics_new(void);
void imp_metrics_free(imp_metrics_t *m);

/* Adds a collector; collectors run in registration order. `arg` is
 * borrowed and must outlive the registry (or be removed first). Returns 0
 * or -ENOMEM. */
int imp_metrics_register(imp_metrics_t *m, imp_metrics_collect_cb cb,
                         void *arg);
/* Removes the collector registered with this cb and arg, if any. */
void imp_metrics_unregister(imp_metrics_t *m, imp_metrics_collect_cb cb,
                            void *arg);

/* Runs every collector into `out` (appended). Returns 0 or -ENOMEM. */
int imp_metrics_render(imp_metrics_t *m, imp_buf_t *out);

/* Histogram of state store writes; the store observes into it (see
 * imp_store_set_write_histogram). Borrowed, lives as long as m. */
imp_histogram_t *imp_metrics_store_writes(imp_metrics_t *m);

#endif
