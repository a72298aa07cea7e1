/*
 * Predictor: per function, what the arrivals will look like next.
 *
 * Two models share one state:
 *
 * - a forecaster of arrivals per minute: additive Holt-Winters with a daily
 *   season at minute granularity (1440 slots) and a damped trend, so that a
 *   ramp is followed within minutes and a daily peak is anticipated from the
 *   second day on;
 * - the hybrid histogram idle-time policy of Shahrad et al. ("Serverless in
 *   the Wild", USENIX ATC 2020) for functions too sparse to forecast: a
 *   histogram of idle times (whole minutes between active minutes) gives a
 *   pre-warm window (5th percentile, minus a margin) and a keep-alive window
 *   (99th percentile, plus a margin); when the histogram is not
 *   representative (too few samples, flat, or mostly beyond its 4-hour
 *   range) a fixed keep-alive is used instead. With a cold-start price
 *   (cfg.cold_cost_s > 0) the window is instead the span that would have
 *   cost least over the idle times seen.
 *
 * The histogram is kept per concurrency level: level 1 counts idle times
 * between minutes with arrivals, level k (2..IMP_PRED_LEVELS) between
 * minutes in which at least k calls were in flight at once (the top level:
 * at least that many). So the policy says not only whether the function
 * should be warm but how many calls' worth of instances: a function whose
 * bursts need ten instances every half hour gets ten pre-warmed.
 *
 * Pure code: no clock, no I/O, no allocation. Time is passed in as
 * milliseconds on one clock of the caller's choosing; the daily season is
 * aligned on minute (t_ms / 60000) modulo 1440, so the server passes wall
 * clock (epoch) milliseconds and a season slot is a UTC minute of the day.
 * The state serialises to a versioned byte buffer for the store.
 */
#ifndef IMP_PREDICTOR_H
#define IMP_PREDICTOR_H

#include <stddef.h>
#include <stdint.h>

#define IMP_PRED_SEASON 1440   /* season length: minutes in a day */
#define IMP_PRED_HIST_BINS 240 /* idle-time bins of one minute: 4 hours */
#define IMP_PRED_HIST_MAX                                                     \
  100000u                          /* samples kept before the bins are halved \
                                    */
#define IMP_PRED_LEVELS 8          /* histograms: 1..7 calls, 8 or more */
#define IMP_PRED_MAX_TOP 10000000u /* calls in flight recorded at the top */
#define IMP_PRED_STATE_VERSION 1   /* version of imp_pred_save()'s format */

/* Bytes of one level in a serialised state. */
#define IMP_PRED_LEVEL_SIZE (8 + 8 + 4 + 4 + 4 + 4 * IMP_PRED_HIST_BINS)

/* Size in bytes of a serialised state (every version-1 state has it). */
#define IMP_PRED_STATE_SIZE                                              \
  (4 + 2 + 2 + 2 + 2 + 8 + 4 + 4 + 8 + 8 + 8 + 8 + 8 * IMP_PRED_SEASON + \
   IMP_PRED_LEVELS * IMP_PRED_LEVEL_SIZE + 4)

/* Tunables of one predictor; imp_pred_cfg_default() fills the defaults. */
typedef struct imp_pred_cfg_s {
  double alpha;        /* level smoothing per minute in the first day (no season
                          yet, Holt's linear method), (0, 1]; default 0.7 */
  double alpha_season; /* level smoothing per minute once the season is
                          known (the level then only follows departures
                          from the daily shape), (0, 1]; default 0.1 */
  double beta;         /* trend smoothing per minute, [0, 1]; default 0.2 */
  double gamma;        /* season smoothing per day, [0, 1]; default 0.3 */
  double phi;          /* trend damping per minute ahead, [0, 1]; default 0.8 */
  double activity_alpha; /* smoothing of the share of active minutes,
                            (0, 1]; default 0.1 (about ten minutes) */
  double head;           /* pre-warm percentile of idle times; default 0.05 */
  double tail;           /* keep-alive percentile of idle times; default 0.99 */
  double margin;         /* window margin: pre-warm x (1-m), keep-alive x (1+m);
                            default 0.05 */
  uint32_t min_samples;  /* idle times needed to trust a histogram;
                            default 4 */
  double cv_min;  /* coefficient of variation of the bin counts below which
                     the histogram is flat, not representative; default 2 */
  double oob_max; /* share of idle times beyond 4 h above which keeping
                     warm is pointless; default 0.8 */
  uint32_t min_prewarm_min;      /* pre-warm windows shorter than this many
                                    minutes start at 0 instead; default 1 */
  uint32_t fallback_keepalive_s; /* keep-alive when the histogram is not
                                    representative; default 900 */
  double cold_cost_s; /* 0: Shahrad's window, warm from the head to the
                         tail percentile; > 0: the price of a cold start
                         in idle instance-seconds, and the window is the
                         span that would have cost least over the idle
                         times seen; default 3000 */
} imp_pred_cfg_t;

/* How a warm window was chosen. */
enum {
  IMP_PRED_WIN_NONE = 0, /* no activity yet: nothing to keep warm */
  IMP_PRED_WIN_HIST,     /* from the histogram */
  IMP_PRED_WIN_FALLBACK, /* histogram not representative: fixed keep-alive */
  IMP_PRED_WIN_OOB       /* idle times mostly beyond the range: none */
};

/*
 * Warm window relative to the start of the last active minute of a level:
 * warm from prewarm_ms to keepalive_ms (empty when they are equal), except
 * between
 * the two spans of a priced window (idle times in two clusters, such as
 * calls in runs of minutes every half hour: warm after a call, cold, then
 * pre-warmed for the next run), and in the minute of the activity itself
 * (idle times are whole minutes, so the histogram says nothing about calls
 * later in that minute).
 */
typedef struct imp_pred_window_s {
  int kind;             /* IMP_PRED_WIN_* */
  int64_t prewarm_ms;   /* warm from that minute + prewarm_ms ... */
  int64_t keepalive_ms; /* ... until that minute + keepalive_ms */
  int64_t gap_from_ms;  /* ... but cold from here ... */
  int64_t gap_to_ms;    /* ... to here (equal: no gap) */
  uint32_t head_bin;    /* percentiles (bins = idle minutes), HIST only */
  uint32_t tail_bin;
  double cv; /* coefficient of variation of the bin counts */
} imp_pred_window_t;

/* The idle-time histogram of one concurrency level (private). */
typedef struct imp_pred_hist_s {
  int64_t last_minute; /* last active minute; INT64_MIN none */
  int64_t last_ms;     /* time of the last activity; INT64_MIN none */
  uint32_t top;        /* top level only: most calls in flight in its
                          last active minute */
  uint32_t n;          /* idle times in the bins */
  uint32_t oob;        /* idle times beyond the last bin */
  uint32_t bins[IMP_PRED_HIST_BINS]; /* bin b: b whole idle minutes between
                                        two active minutes */
  imp_pred_window_t win;             /* cache derived from the bins */
} imp_pred_hist_t;

/*
 * One function's predictor. Embed it or allocate it (about 20 KB); it owns
 * no memory. Fields are private except for reading in tests.
 */
typedef struct imp_pred_s {
  imp_pred_cfg_t cfg;
  /* arrivals per minute */
  int64_t minute; /* open minute (t / 60000); INT64_MIN before any */
  uint32_t count; /* arrivals so far in the open minute */
  uint32_t pad_;
  uint64_t closed; /* minutes closed (observed) so far */
  /* Holt-Winters */
  double level;                   /* deseasonalised arrivals per minute */
  double trend;                   /* per minute */
  double activity;                /* smoothed share of minutes with arrivals */
  double season[IMP_PRED_SEASON]; /* additive; raw counts in the first day */
  /* idle times: hist[0] between arrivals, hist[k] between minutes with at
   * least k + 1 calls in flight */
  imp_pred_hist_t hist[IMP_PRED_LEVELS];
} imp_pred_t;

/* Fills `cfg` with the defaults listed in imp_pred_cfg_t. */
void imp_pred_cfg_default(imp_pred_cfg_t *cfg);

/* Checks a configuration; returns 0 or -EINVAL. */
int imp_pred_cfg_check(const imp_pred_cfg_t *cfg);

/* Starts an empty predictor with a copy of `cfg` (NULL: defaults). Returns 0
 * or -EINVAL for a bad configuration (then `p` is left empty with defaults). */
int imp_pred_init(imp_pred_t *p, const imp_pred_cfg_t *cfg);

/*
 * Records `n` arrivals (n may be 0) at `at_ms`. Minutes before the one of
 * `at_ms` are closed first (missing minutes count as zero arrivals); an
 * `at_ms` earlier than the open minute is counted in the open minute.
 */
void imp_pred_observe(imp_pred_t *p, int64_t at_ms, uint32_t n);

/* Records that `inflight` calls were in flight at once at `at_ms`:
 * activity of levels 2..inflight. The server passes each second's maximum
 * with a time inside that second (its end minus 1 ms, so that the last
 * second of a minute counts in that minute). */
void imp_pred_observe_inflight(imp_pred_t *p, int64_t at_ms, uint32_t inflight);

/* Closes every minute that ended at or before `now_ms`. */
void imp_pred_advance(imp_pred_t *p, int64_t now_ms);

/*
 * Forecast arrivals per minute in the minute containing `at_ms`, from the
 * minutes closed so far (never negative; 0 before any data). The daily
 * season is used once a whole day has been observed.
 */
double imp_pred_forecast(const imp_pred_t *p, int64_t at_ms);

/* Smoothed share of recent minutes that had arrivals, 0 to 1: a function
 * below about one half is too sparse for the forecast to mean much. */
double imp_pred_activity(const imp_pred_t *p);

/* The warm window of level 1 (calls arriving), copied into `w`. */
void imp_pred_window(const imp_pred_t *p, imp_pred_window_t *w);

/* The warm window of concurrency level `k` (1..IMP_PRED_LEVELS). */
void imp_pred_level_window(const imp_pred_t *p, uint32_t k,
                           imp_pred_window_t *w);

/* 1 when the hybrid histogram policy wants the function warm at `at_ms`
 * (level 1 inside its window), else 0. */
int imp_pred_want_warm(const imp_pred_t *p, int64_t at_ms);

/*
 * Calls in flight to keep warm capacity for at `at_ms`: 0 when level 1 is
 * not warm, else the highest level whose window is warm (for the top
 * level, the most calls it saw in flight at once), at least 1.
 */
uint32_t imp_pred_warm_calls(const imp_pred_t *p, int64_t at_ms);

/* Short name of a window kind: "histogram", "fallback", "oob", "none". */
const char *imp_pred_window_name(int kind);

/*
 * Serialises the state (not the configuration) into `buf`, which must hold
 * IMP_PRED_STATE_SIZE bytes. Returns the number of bytes written, or
 * -ENOBUFS when `len` is too small. Little-endian, versioned, checksummed.
 */
int imp_pred_save(const imp_pred_t *p, uint8_t *buf, size_t len);

/*
 * Restores a state written by imp_pred_save() into `p`, keeping `p`'s
 * configuration. The buffer is untrusted: a wrong size, magic, version,
 * dimension or checksum, or values out of range, return -EINVAL (or
 * -ENOTSUP for a newer version) and leave `p` unchanged. Borrowed buffer.
 */
int imp_pred_load(imp_pred_t *p, const uint8_t *buf, size_t len);

#endif
