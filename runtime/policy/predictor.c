#include "policy/predictor.h"

#include <errno.h>
#include <math.h>
#include <string.h>

#define MINUTE_MS 60000
#define MAX_LEVEL 1e12 /* |level|, |trend|, |season| accepted on load */
#define MAX_MINUTE (INT64_C(1) << 40) /* about two million years */
#define MAX_MS (MAX_MINUTE * MINUTE_MS)
#define MAX_GAP                                                \
  (2 * IMP_PRED_SEASON) /* zero minutes closed after a silence \
                         */
#define SEASON_SMOOTH 2 /* the first day's counts are averaged over +-2 min */

static const uint8_t magic[4] = {'I', 'M', 'P', 'P'};

void imp_pred_cfg_default(imp_pred_cfg_t *cfg) {
  memset(cfg, 0, sizeof *cfg);
  cfg->alpha = 0.7;
  cfg->alpha_season = 0.1;
  cfg->beta = 0.2;
  cfg->gamma = 0.3;
  cfg->phi = 0.8;
  cfg->head = 0.05;
  cfg->tail = 0.99;
  cfg->margin = 0.05;
  cfg->min_samples = 4;
  cfg->cv_min = 2.0;
  cfg->oob_max = 0.8;
  cfg->min_prewarm_min = 1;
  cfg->fallback_keepalive_s = 900;
  cfg->activity_alpha = 0.1;
  cfg->cold_cost_s = 3000.0;
}

static int in01(double x) {
  return x >= 0.0 && x <= 1.0; /* false for NaN */
}

int imp_pred_cfg_check(const imp_pred_cfg_t *cfg) {
  if (!in01(cfg->alpha) || cfg->alpha == 0.0) return -EINVAL;
  if (!in01(cfg->alpha_season) || cfg->alpha_season == 0.0) return -EINVAL;
  if (!in01(cfg->beta) || !in01(cfg->gamma) || !in01(cfg->phi)) return -EINVAL;
  if (!in01(cfg->head) || !in01(cfg->tail) || cfg->head > cfg->tail)
    return -EINVAL;
  if (!(cfg->margin >= 0.0 && cfg->margin < 1.0)) return -EINVAL;
  if (!(cfg->cv_min >= 0.0 && cfg->cv_min < 1e6)) return -EINVAL;
  if (!in01(cfg->oob_max)) return -EINVAL;
  if (cfg->min_prewarm_min > IMP_PRED_HIST_BINS) return -EINVAL;
  if (cfg->fallback_keepalive_s > 7 * 86400) return -EINVAL;
  if (!in01(cfg->activity_alpha) || cfg->activity_alpha == 0.0) return -EINVAL;
  if (!(cfg->cold_cost_s >= 0.0 && cfg->cold_cost_s <= 86400.0)) return -EINVAL;
  return 0;
}

/* Floor division and modulo for possibly negative times. */
static int64_t minute_of(int64_t ms) {
  int64_t q = ms / MINUTE_MS;
  if (ms % MINUTE_MS < 0) q--;
  return q;
}

static size_t slot_of(int64_t minute) {
  int64_t r = minute % IMP_PRED_SEASON;
  if (r < 0) r += IMP_PRED_SEASON;
  return (size_t)r;
}

static uint32_t percentile_bin(const imp_pred_hist_t *h, double q) {
  /* Smallest bin whose cumulative count reaches q of the samples. */
  double need = q * (double)h->n;
  uint64_t sum = 0;
  for (uint32_t b = 0; b < IMP_PRED_HIST_BINS; b++) {
    sum += h->bins[b];
    if (sum > 0 && (double)sum >= need) return b;
  }
  return IMP_PRED_HIST_BINS - 1;
}

/* Start and end, in minutes after the start of the last active minute, of
 * the warm span that covers idle-time bin b: bin b means the next active
 * minute is the (b + 1)-th after it, so warm from (b + 1)(1 - margin) to
 * (b + 2)(1 + margin). */
static double span_from(const imp_pred_cfg_t *cfg, uint32_t b) {
  double f = (double)(b + 1) * (1.0 - cfg->margin);
  return f < (double)cfg->min_prewarm_min ? 0.0 : f;
}

static double span_to(const imp_pred_cfg_t *cfg, uint32_t b) {
  return (double)(b + 2) * (1.0 + cfg->margin);
}

#define MAX_DISTINCT 64 /* bins the span search considers; beyond: Shahrad */

/*
 * The warm spans that would have cost least over the idle times seen, a
 * cold start costing cold_cost_s and a warm idle instance one second per
 * second: an idle time whose bin a span covers costs the warm time before
 * the call; one no span covers costs a cold start plus the warm time spent.
 * Candidates: never warm, one span, two disjoint spans (bins bin[s..e]).
 * The cost splits over spans: C x total + sum of (idle(X) - C x cov(X)), so
 * each span's score is computed once and the best pair by a prefix minimum.
 * Returns 0 when there are too many distinct bins to search (then the
 * caller uses the percentiles).
 */
static int cheapest_spans(const imp_pred_cfg_t *cfg, const imp_pred_hist_t *h,
                          double span[2][2], int *nspans) {
  uint32_t bin[MAX_DISTINCT];
  double n[MAX_DISTINCT];
  size_t d = 0;
  for (uint32_t b = 0; b < IMP_PRED_HIST_BINS; b++) {
    if (h->bins[b] == 0) continue;
    if (d == MAX_DISTINCT) return 0;
    bin[d] = b;
    n[d++] = h->bins[b];
  }
  double cost_min = cfg->cold_cost_s / 60.0; /* in idle minutes */
  double oob = h->oob;
  /* score[s][e]: idle(X) - C cov(X) of the span covering bins s..e */
  static const double none = 1e300;
  double score[MAX_DISTINCT][MAX_DISTINCT];
  for (size_t s = 0; s < d; s++) {
    double f = span_from(cfg, bin[s]), covered = 0.0;
    for (size_t e = 0; e < d; e++) score[s][e] = none;
    for (size_t e = s; e < d; e++) {
      double t = span_to(cfg, bin[e]);
      covered += n[e];
      /* Warm time before each call (in the middle of its minute, bin + 1.5
       * minutes on), capped at the span; idle times beyond the range wait
       * out the whole span. */
      double idle = oob * (t - f);
      for (size_t j = 0; j < d; j++) {
        double g = (double)bin[j] + 1.5;
        double w = g < t ? g - f : t - f;
        if (w > 0.0) idle += n[j] * w;
      }
      score[s][e] = idle - cost_min * covered;
    }
  }
  double best = 0.0; /* never warm */
  *nspans = 0;
  /* first[e]: the best single span ending at bin index e */
  double first[MAX_DISTINCT];
  size_t first_s[MAX_DISTINCT];
  for (size_t e = 0; e < d; e++) {
    first[e] = none;
    first_s[e] = 0;
    for (size_t s = 0; s <= e; s++)
      if (score[s][e] < first[e]) {
        first[e] = score[s][e];
        first_s[e] = s;
      }
  }
  for (size_t s = 0; s < d; s++) {
    double f = span_from(cfg, bin[s]);
    /* The best first span that ends before this one starts. */
    double a = none;
    size_t a_e = 0;
    for (size_t e0 = 0; e0 < s; e0++)
      if (first[e0] < a && span_to(cfg, bin[e0]) < f) {
        a = first[e0];
        a_e = e0;
      }
    for (size_t e = s; e < d; e++) {
      double one = score[s][e];
      if (one < best) {
        best = one;
        *nspans = 1;
        span[0][0] = f;
        span[0][1] = span_to(cfg, bin[e]);
      }
      if (a < none && a + one < best) {
        best = a + one;
        *nspans = 2;
        span[0][0] = span_from(cfg, bin[first_s[a_e]]);
        span[0][1] = span_to(cfg, bin[a_e]);
        span[1][0] = f;
        span[1][1] = span_to(cfg, bin[e]);
      }
    }
  }
  return 1;
}

/* Recomputes a level's cached warm window from its bins. */
static void window_update(const imp_pred_cfg_t *cfg, imp_pred_hist_t *h) {
  imp_pred_window_t *w = &h->win;
  memset(w, 0, sizeof *w);
  if (h->last_ms == INT64_MIN) {
    w->kind = IMP_PRED_WIN_NONE;
    return;
  }
  uint64_t total = (uint64_t)h->n + h->oob;
  if (h->n > 0) {
    double mean = (double)h->n / IMP_PRED_HIST_BINS;
    double ss = 0.0;
    for (uint32_t b = 0; b < IMP_PRED_HIST_BINS; b++) {
      double d = (double)h->bins[b] - mean;
      ss += d * d;
    }
    w->cv = sqrt(ss / (IMP_PRED_HIST_BINS - 1)) / mean;
  }
  if (total >= cfg->min_samples && total > 0 &&
      (double)h->oob > cfg->oob_max * (double)total) {
    /* Idle for hours between calls: an instance kept warm would idle. */
    w->kind = IMP_PRED_WIN_OOB;
    return;
  }
  if (h->n < cfg->min_samples || h->n == 0 || w->cv < cfg->cv_min) {
    w->kind = IMP_PRED_WIN_FALLBACK;
    w->keepalive_ms = (int64_t)cfg->fallback_keepalive_s * 1000;
    return;
  }
  w->kind = IMP_PRED_WIN_HIST;
  w->head_bin = percentile_bin(h, cfg->head);
  w->tail_bin = percentile_bin(h, cfg->tail);
  double span[2][2];
  int nspans = 0;
  if (cfg->cold_cost_s <= 0.0 || !cheapest_spans(cfg, h, span, &nspans)) {
    /* Shahrad's window: pre-warm at the head, keep-alive to the tail. */
    nspans = 1;
    span[0][0] = span_from(cfg, w->head_bin);
    span[0][1] = span_to(cfg, w->tail_bin);
  }
  if (nspans == 0) return; /* never warm: all zero */
  w->prewarm_ms = llround(span[0][0] * MINUTE_MS);
  w->keepalive_ms = llround(span[nspans - 1][1] * MINUTE_MS);
  if (nspans == 2) {
    w->gap_from_ms = llround(span[0][1] * MINUTE_MS);
    w->gap_to_ms = llround(span[1][0] * MINUTE_MS);
  }
}

static void hist_reset(const imp_pred_cfg_t *cfg, imp_pred_hist_t *h) {
  memset(h, 0, sizeof *h);
  h->last_minute = INT64_MIN;
  h->last_ms = INT64_MIN;
  window_update(cfg, h);
}

int imp_pred_init(imp_pred_t *p, const imp_pred_cfg_t *cfg) {
  int rc = 0;
  memset(p, 0, sizeof *p);
  if (cfg != NULL && (rc = imp_pred_cfg_check(cfg)) == 0)
    p->cfg = *cfg;
  else
    imp_pred_cfg_default(&p->cfg);
  p->minute = INT64_MIN;
  for (size_t k = 0; k < IMP_PRED_LEVELS; k++) hist_reset(&p->cfg, &p->hist[k]);
  return rc;
}

/* One minute with `y` arrivals at season slot `k`: Holt-Winters update. */
static void close_minute(imp_pred_t *p, size_t k, double y) {
  const imp_pred_cfg_t *cfg = &p->cfg;
  double l0 = p->level, b0 = p->trend;
  p->activity += cfg->activity_alpha * ((y > 0.0 ? 1.0 : 0.0) - p->activity);
  if (p->closed < IMP_PRED_SEASON) {
    /* First day: no season yet. Holt's linear method on the raw counts,
     * and the raw count kept in its slot to seed the season. */
    if (p->closed == 0) {
      p->level = y;
      p->trend = 0.0;
    } else {
      p->level = cfg->alpha * y + (1.0 - cfg->alpha) * (l0 + cfg->phi * b0);
      p->trend =
          cfg->beta * (p->level - l0) + (1.0 - cfg->beta) * cfg->phi * b0;
    }
    p->season[k] = y;
    if (++p->closed == IMP_PRED_SEASON) {
      /* A whole day seen: the day's mean becomes the level, each slot's
       * deviation from it (averaged over a few minutes, one day of counts
       * is noisy) the season, so tomorrow's forecast is today's shape. */
      double mean = 0.0, raw[IMP_PRED_SEASON];
      for (size_t i = 0; i < IMP_PRED_SEASON; i++) mean += p->season[i];
      mean /= IMP_PRED_SEASON;
      memcpy(raw, p->season, sizeof raw);
      for (size_t i = 0; i < IMP_PRED_SEASON; i++) {
        double sum = 0.0;
        for (int j = -SEASON_SMOOTH; j <= SEASON_SMOOTH; j++)
          sum += raw[(i + IMP_PRED_SEASON + (size_t)(j + IMP_PRED_SEASON)) %
                     IMP_PRED_SEASON];
        p->season[i] = sum / (2 * SEASON_SMOOTH + 1) - mean;
      }
      p->level = mean;
      p->trend = 0.0;
    }
    return;
  }
  double s = p->season[k];
  double a = cfg->alpha_season;
  p->level = a * (y - s) + (1.0 - a) * (l0 + cfg->phi * b0);
  p->trend = cfg->beta * (p->level - l0) + (1.0 - cfg->beta) * cfg->phi * b0;
  p->season[k] = cfg->gamma * (y - p->level) + (1.0 - cfg->gamma) * s;
  p->closed++;
}

void imp_pred_advance(imp_pred_t *p, int64_t now_ms) {
  int64_t m = minute_of(now_ms);
  if (p->minute == INT64_MIN) {
    p->minute = m;
    p->count = 0;
    return;
  }
  if (m <= p->minute) return;
  close_minute(p, slot_of(p->minute), (double)p->count);
  p->count = 0;
  p->minute++;
  /* Silent minutes are data (zero arrivals), but after days of silence
   * two seasons of zeros say all there is to say. */
  if (m - p->minute > MAX_GAP) p->minute = m - MAX_GAP;
  while (p->minute < m) {
    close_minute(p, slot_of(p->minute), 0.0);
    p->minute++;
  }
}

static void hist_add(imp_pred_hist_t *h, int64_t idle_minutes) {
  if (h->n + h->oob >= IMP_PRED_HIST_MAX) {
    /* Age: halve everything so that the histogram follows a change. */
    h->n = 0;
    for (uint32_t b = 0; b < IMP_PRED_HIST_BINS; b++) {
      h->bins[b] /= 2;
      h->n += h->bins[b];
    }
    h->oob /= 2;
  }
  if (idle_minutes < IMP_PRED_HIST_BINS) {
    h->bins[idle_minutes]++;
    h->n++;
  } else {
    h->oob++;
  }
}

/* Activity of a level at `at_ms` in the open minute. */
static void activate(imp_pred_t *p, imp_pred_hist_t *h, int64_t at_ms) {
  int changed = h->last_ms == INT64_MIN;
  if (h->last_minute != INT64_MIN && p->minute > h->last_minute) {
    hist_add(h, p->minute - h->last_minute - 1);
    changed = 1;
  }
  h->last_minute = p->minute;
  if (h->last_ms == INT64_MIN || at_ms > h->last_ms) h->last_ms = at_ms;
  if (changed) window_update(&p->cfg, h);
}

void imp_pred_observe(imp_pred_t *p, int64_t at_ms, uint32_t n) {
  imp_pred_advance(p, at_ms);
  if (n == 0) return;
  p->count = p->count > UINT32_MAX - n ? UINT32_MAX : p->count + n;
  activate(p, &p->hist[0], at_ms);
}

void imp_pred_observe_inflight(imp_pred_t *p, int64_t at_ms,
                               uint32_t inflight) {
  imp_pred_advance(p, at_ms);
  if (inflight > IMP_PRED_MAX_TOP) inflight = IMP_PRED_MAX_TOP;
  for (uint32_t k = 2; k <= inflight && k <= IMP_PRED_LEVELS; k++) {
    imp_pred_hist_t *h = &p->hist[k - 1];
    int fresh = h->last_minute != p->minute;
    activate(p, h, at_ms);
    if (k == IMP_PRED_LEVELS && (fresh || inflight > h->top)) h->top = inflight;
  }
}

double imp_pred_forecast(const imp_pred_t *p, int64_t at_ms) {
  if (p->closed == 0) return 0.0;
  int64_t last = p->minute - 1; /* last closed minute */
  int64_t target = minute_of(at_ms);
  int64_t h = target - last;
  if (h < 1) h = 1;
  if (h > MAX_GAP) h = MAX_GAP;
  /* Damped trend: b * (phi + phi^2 + ... + phi^h). */
  double phi = p->cfg.phi, damp = 0.0;
  if (phi >= 1.0) {
    damp = (double)h;
  } else if (h <= 16) {
    /* The common case (a minute or two ahead) without pow(). */
    double f = 1.0;
    for (int64_t i = 0; i < h; i++) {
      f *= phi;
      damp += f;
    }
  } else {
    damp = phi * (1.0 - pow(phi, (double)h)) / (1.0 - phi);
  }
  double f = p->level + damp * p->trend;
  if (p->closed >= IMP_PRED_SEASON) f += p->season[slot_of(target)];
  return f > 0.0 ? f : 0.0;
}

double imp_pred_activity(const imp_pred_t *p) {
  return p->activity;
}

void imp_pred_window(const imp_pred_t *p, imp_pred_window_t *w) {
  *w = p->hist[0].win;
}

void imp_pred_level_window(const imp_pred_t *p, uint32_t k,
                           imp_pred_window_t *w) {
  if (k < 1) k = 1;
  if (k > IMP_PRED_LEVELS) k = IMP_PRED_LEVELS;
  *w = p->hist[k - 1].win;
}

static int level_warm(const imp_pred_hist_t *h, int64_t at_ms) {
  const imp_pred_window_t *w = &h->win;
  if (w->kind == IMP_PRED_WIN_NONE || w->kind == IMP_PRED_WIN_OOB ||
      h->last_ms == INT64_MIN)
    return 0;
  /* Idle times are whole minutes between active minutes, so the window
   * counts from the start of the last active minute; the histogram says
   * nothing about more calls in that minute itself, which stays warm. */
  int64_t since = at_ms - h->last_minute * MINUTE_MS;
  if (since >= 0 && since < MINUTE_MS) return 1;
  return since >= w->prewarm_ms && since < w->keepalive_ms &&
         !(since >= w->gap_from_ms && since < w->gap_to_ms);
}

int imp_pred_want_warm(const imp_pred_t *p, int64_t at_ms) {
  return level_warm(&p->hist[0], at_ms);
}

uint32_t imp_pred_warm_calls(const imp_pred_t *p, int64_t at_ms) {
  if (!level_warm(&p->hist[0], at_ms)) return 0;
  for (uint32_t k = IMP_PRED_LEVELS; k >= 2; k--) {
    const imp_pred_hist_t *h = &p->hist[k - 1];
    if (!level_warm(h, at_ms)) continue;
    return k == IMP_PRED_LEVELS && h->top > k ? h->top : k;
  }
  return 1;
}

const char *imp_pred_window_name(int kind) {
  switch (kind) {
    case IMP_PRED_WIN_HIST: return "histogram";
    case IMP_PRED_WIN_FALLBACK: return "fallback";
    case IMP_PRED_WIN_OOB: return "oob";
    default: return "none";
  }
}

/* ---- serialisation ------------------------------------------------------ */

static uint32_t crc32_of(const uint8_t *p, size_t len) {
  uint32_t c = 0xFFFFFFFFu;
  for (size_t i = 0; i < len; i++) {
    c ^= p[i];
    for (int k = 0; k < 8; k++) c = (c >> 1) ^ (0xEDB88320u & (0u - (c & 1u)));
  }
  return c ^ 0xFFFFFFFFu;
}

typedef struct wr_s {
  uint8_t *p;
} wr_t;

static void put_u(wr_t *w, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; i++) *w->p++ = (uint8_t)(v >> (8 * i));
}

static void put_f64(wr_t *w, double d) {
  uint64_t v;
  memcpy(&v, &d, sizeof v);
  put_u(w, v, 8);
}

typedef struct rd_s {
  const uint8_t *p;
} rd_t;

static uint64_t get_u(rd_t *r, int bytes) {
  uint64_t v = 0;
  for (int i = 0; i < bytes; i++) v |= (uint64_t)*r->p++ << (8 * i);
  return v;
}

static int64_t get_i64(rd_t *r) {
  uint64_t v = get_u(r, 8);
  int64_t s;
  memcpy(&s, &v, sizeof s);
  return s;
}

static double get_f64(rd_t *r) {
  uint64_t v = get_u(r, 8);
  double d;
  memcpy(&d, &v, sizeof d);
  return d;
}

static int sane(double d) {
  return isfinite(d) && fabs(d) <= MAX_LEVEL;
}

int imp_pred_save(const imp_pred_t *p, uint8_t *buf, size_t len) {
  if (len < IMP_PRED_STATE_SIZE) return -ENOBUFS;
  wr_t w = {buf};
  memcpy(w.p, magic, 4);
  w.p += 4;
  put_u(&w, IMP_PRED_STATE_VERSION, 2);
  put_u(&w, IMP_PRED_SEASON, 2);
  put_u(&w, IMP_PRED_HIST_BINS, 2);
  put_u(&w, 0, 2);
  put_u(&w, (uint64_t)p->minute, 8);
  put_u(&w, p->count, 4);
  put_u(&w, 0, 4);
  put_u(&w, p->closed, 8);
  put_f64(&w, p->level);
  put_f64(&w, p->trend);
  put_f64(&w, p->activity);
  for (size_t i = 0; i < IMP_PRED_SEASON; i++) put_f64(&w, p->season[i]);
  for (size_t k = 0; k < IMP_PRED_LEVELS; k++) {
    const imp_pred_hist_t *h = &p->hist[k];
    put_u(&w, (uint64_t)h->last_minute, 8);
    put_u(&w, (uint64_t)h->last_ms, 8);
    put_u(&w, h->top, 4);
    put_u(&w, h->n, 4);
    put_u(&w, h->oob, 4);
    for (size_t i = 0; i < IMP_PRED_HIST_BINS; i++) put_u(&w, h->bins[i], 4);
  }
  put_u(&w, crc32_of(buf, (size_t)(w.p - buf)), 4);
  return (int)(w.p - buf);
}

int imp_pred_load(imp_pred_t *p, const uint8_t *buf, size_t len) {
  if (buf == NULL || len < 8) return -EINVAL;
  if (memcmp(buf, magic, 4) != 0) return -EINVAL;
  rd_t r = {buf + 4};
  uint64_t version = get_u(&r, 2);
  if (version == 0) return -EINVAL;
  if (version > IMP_PRED_STATE_VERSION) return -ENOTSUP;
  if (len != IMP_PRED_STATE_SIZE) return -EINVAL;
  if (get_u(&r, 2) != IMP_PRED_SEASON || get_u(&r, 2) != IMP_PRED_HIST_BINS ||
      get_u(&r, 2) != 0)
    return -EINVAL;
  uint32_t crc =
      (uint32_t)(buf[len - 4] | (uint32_t)buf[len - 3] << 8 |
                 (uint32_t)buf[len - 2] << 16 | (uint32_t)buf[len - 1] << 24);
  if (crc != crc32_of(buf, len - 4)) return -EINVAL;

  /* Decode into a copy; `p` changes only when everything checks out. */
  imp_pred_t q;
  memset(&q, 0, sizeof q);
  q.cfg = p->cfg;
  q.minute = get_i64(&r);
  q.count = (uint32_t)get_u(&r, 4);
  if (get_u(&r, 4) != 0) return -EINVAL;
  q.closed = get_u(&r, 8);
  q.level = get_f64(&r);
  q.trend = get_f64(&r);
  q.activity = get_f64(&r);
  if (!sane(q.level) || !sane(q.trend)) return -EINVAL;
  if (!(q.activity >= 0.0 && q.activity <= 1.0)) return -EINVAL;
  for (size_t i = 0; i < IMP_PRED_SEASON; i++) {
    q.season[i] = get_f64(&r);
    if (!sane(q.season[i])) return -EINVAL;
  }
  /* Times: absent (INT64_MIN) or in range and consistent. */
  if (q.minute != INT64_MIN &&
      (q.minute < -MAX_MINUTE || q.minute > MAX_MINUTE))
    return -EINVAL;
  if (q.minute == INT64_MIN && (q.count != 0 || q.closed != 0)) return -EINVAL;
  for (size_t k = 0; k < IMP_PRED_LEVELS; k++) {
    imp_pred_hist_t *h = &q.hist[k];
    h->last_minute = get_i64(&r);
    h->last_ms = get_i64(&r);
    h->top = (uint32_t)get_u(&r, 4);
    h->n = (uint32_t)get_u(&r, 4);
    h->oob = (uint32_t)get_u(&r, 4);
    uint64_t sum = 0;
    for (size_t i = 0; i < IMP_PRED_HIST_BINS; i++) {
      h->bins[i] = (uint32_t)get_u(&r, 4);
      sum += h->bins[i];
    }
    if ((h->last_minute == INT64_MIN) != (h->last_ms == INT64_MIN))
      return -EINVAL;
    if (h->last_minute != INT64_MIN &&
        (q.minute == INT64_MIN || h->last_minute > q.minute ||
         h->last_minute < -MAX_MINUTE || h->last_ms < -MAX_MS ||
         h->last_ms > MAX_MS))
      return -EINVAL;
    if (sum != h->n || (uint64_t)h->n + h->oob > IMP_PRED_HIST_MAX)
      return -EINVAL;
    if (h->last_minute == INT64_MIN && (h->n != 0 || h->oob != 0))
      return -EINVAL;
    if (h->top > IMP_PRED_MAX_TOP || (k + 1 < IMP_PRED_LEVELS && h->top != 0))
      return -EINVAL;
    window_update(&q.cfg, h);
  }

  *p = q;
  return 0;
}
