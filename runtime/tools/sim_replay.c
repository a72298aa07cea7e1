/*
 * impulse sim: trace-driven replay of the scaling policies in virtual time.
 *
 * Each function of the trace is replayed alone (functions share nothing but
 * the platform-wide totals), second by second over the day:
 *
 * - a minute's invocations are spread inside the minute, deterministically:
 *   seeded uniform random times (sorted; the seed mixes --seed with the
 *   function's hash and the minute, so every policy sees the same calls) or
 *   evenly spaced with --spread even;
 * - a call takes a free slot of a ready instance (the busiest with a free
 *   slot, then the most recently used, so that spare instances go idle);
 *   if there is none it is a cold start: it waits for an instance that is
 *   starting, or starts a new one, which is ready cold-start-ms later;
 * - at the end of every second the policy acts: fixed:N removes instances
 *   idle for N; hybrid applies the histogram windows of predictor.c; kpa
 *   and impulse record the second's signals and call imp_as_decide() (the
 *   code the server runs), then start instances or remove idle ones
 *   (idle starting ones first, then the least recently used).
 *
 * Wasted instance-seconds are the time instances are alive with no call,
 * including the start of an instance no call waits for. Peak instances is
 * the largest platform-wide sum of per-function maxima within a second.
 */
#include "tools/sim_replay.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/common.h"

#define DAY_S (IMP_SIM_MINUTES * 60)
#define DAY_MS ((int64_t)DAY_S * 1000)

/* ---- small helpers ------------------------------------------------------- */

double imp_sim_mono_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t splitmix(uint64_t *s) {
  uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

static uint64_t fnv1a(const char *s) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (; *s; s++) h = (h ^ (uint8_t)*s) * 0x100000001b3ull;
  return h;
}

/* ---- policies and options ------------------------------------------------ */

void imp_sim_opts_default(imp_sim_opts_t *opts) {
  memset(opts, 0, sizeof *opts);
  opts->concurrency = 1;
  opts->cold_start_ms = 1000;
  opts->default_duration_ms = 100.0;
  opts->spread = IMP_SIM_SPREAD_UNIFORM;
  opts->seed = 1;
  imp_as_cfg_default(&opts->as);
  opts->as.max_instances = IMP_AS_MAX_INSTANCES;
  imp_pred_cfg_default(&opts->pred);
  imp_as_pool_cfg_default(&opts->pool);
  opts->plot_fn = -1;
}

int imp_sim_policy_parse(const char *s, imp_sim_policy_t *p) {
  memset(p, 0, sizeof *p);
  if (strlen(s) >= sizeof p->name) return -EINVAL;
  snprintf(p->name, sizeof p->name, "%s", s);
  if (strcmp(s, "kpa") == 0) {
    p->kind = IMP_SIM_KPA;
    return 0;
  }
  if (strcmp(s, "hybrid") == 0) {
    p->kind = IMP_SIM_HYBRID;
    return 0;
  }
  if (strcmp(s, "impulse") == 0) {
    p->kind = IMP_SIM_IMPULSE;
    return 0;
  }
  if (strncmp(s, "fixed:", 6) == 0) {
    const char *n = s + 6;
    uint64_t v = 0;
    size_t i = 0;
    for (; isdigit((unsigned char)n[i]) && i < 9; i++)
      v = v * 10 + (uint64_t)(n[i] - '0');
    if (i == 0 || n[i] == '\0' || n[i + 1] != '\0') return -EINVAL;
    int64_t unit;
    switch (n[i]) {
      case 's': unit = 1000; break;
      case 'm': unit = 60000; break;
      case 'h': unit = 3600000; break;
      default: return -EINVAL;
    }
    if (v == 0 || (int64_t)v * unit > DAY_MS) return -EINVAL;
    p->kind = IMP_SIM_FIXED;
    p->keepalive_ms = (int64_t)v * unit;
    return 0;
  }
  return -EINVAL;
}

/* ---- replay -------------------------------------------------------------- */

typedef struct inst_s {
  int64_t born;
  int64_t ready_at;
  int64_t last_used;  /* end of its last call (ready time before one) */
  int64_t idle_since; /* valid while inflight == 0 */
  uint32_t inflight;
  int alive;
} inst_t;

typedef struct ev_s {
  int64_t t;     /* when the call ends */
  uint32_t inst; /* on which instance */
} ev_t;

typedef struct run_s {
  const imp_sim_opts_t *opts;
  const imp_sim_policy_t *pol;
  /* the function being replayed */
  const imp_sim_fn_t *fn;
  int64_t dur_ms;
  inst_t *inst;
  uint32_t ninst, capinst;
  uint32_t *freel;
  uint32_t nfree;
  uint32_t alive;
  ev_t *heap;
  size_t nheap, capheap;
  int64_t *arr; /* arrival times of the current minute */
  double *gaps; /* scratch of the uniform spread */
  size_t caparr;
  /* the current second */
  uint32_t inflight;
  int64_t area; /* call-milliseconds so far in the second */
  int64_t area_t;
  uint32_t sec_arrivals, sec_completions;
  uint32_t sec_peak; /* most calls in flight during the second */
  int64_t sec_last;
  uint32_t alive_max;
  /* per function */
  uint64_t cold, cold_zero, inv;
  imp_as_t as;
  imp_pred_t *pred;
  /* platform */
  uint32_t *plat_alive;  /* per second: sum of per-function maxima */
  uint32_t *plat_starts; /* per second: instances started */
  int64_t wasted_ms, alive_ms;
  uint64_t starts;
  uint32_t *plot;   /* per minute, for opts->plot_fn */
  uint32_t fn_peak; /* most instances of the function at once */
} run_t;

static void heap_push(run_t *r, ev_t e) {
  size_t i = r->nheap++;
  while (i > 0) {
    size_t up = (i - 1) / 2;
    if (r->heap[up].t <= e.t) break;
    r->heap[i] = r->heap[up];
    i = up;
  }
  r->heap[i] = e;
}

static ev_t heap_pop(run_t *r) {
  ev_t top = r->heap[0], last = r->heap[--r->nheap];
  size_t i = 0, n = r->nheap;
  for (;;) {
    size_t c = 2 * i + 1;
    if (c >= n) break;
    if (c + 1 < n && r->heap[c + 1].t < r->heap[c].t) c++;
    if (last.t <= r->heap[c].t) break;
    r->heap[i] = r->heap[c];
    i = c;
  }
  if (n > 0) r->heap[i] = last;
  return top;
}

static int heap_reserve(run_t *r) {
  if (r->nheap < r->capheap) return 0;
  size_t cap = r->capheap ? r->capheap * 2 : 256;
  ev_t *h = realloc(r->heap, cap * sizeof *h);
  if (h == NULL) return -ENOMEM;
  r->heap = h;
  r->capheap = cap;
  return 0;
}

static void note_alive(run_t *r) {
  if (r->alive > r->alive_max) r->alive_max = r->alive;
  if (r->alive > r->fn_peak) r->fn_peak = r->alive;
}

/* Starts an instance at `t`, ready at `t` + cold start. Returns its index
 * or -ENOMEM. */
static int64_t inst_start(run_t *r, int64_t t) {
  uint32_t i;
  if (r->nfree > 0) {
    i = r->freel[--r->nfree];
  } else {
    if (r->ninst == r->capinst) {
      uint32_t cap = r->capinst ? r->capinst * 2 : 16;
      inst_t *in = realloc(r->inst, cap * sizeof *in);
      if (in == NULL) return -ENOMEM;
      r->inst = in;
      uint32_t *fl = realloc(r->freel, cap * sizeof *fl);
      if (fl == NULL) return -ENOMEM;
      r->freel = fl;
      r->capinst = cap;
    }
    i = r->ninst++;
  }
  inst_t *in = &r->inst[i];
  in->born = t;
  in->ready_at = t + r->opts->cold_start_ms;
  in->last_used = in->ready_at;
  in->idle_since = t;
  in->inflight = 0;
  in->alive = 1;
  r->alive++;
  r->starts++;
  note_alive(r);
  if (t >= 0 && t < DAY_MS) r->plat_starts[t / 1000]++;
  return i;
}

static void inst_stop(run_t *r, uint32_t i, int64_t t) {
  inst_t *in = &r->inst[i];
  r->wasted_ms += t - in->idle_since;
  r->alive_ms += t - in->born;
  in->alive = 0;
  r->alive--;
  r->freel[r->nfree++] = i;
}

static void area_to(run_t *r, int64_t t) {
  r->area += (int64_t)r->inflight * (t - r->area_t);
  r->area_t = t;
}

static int arrive(run_t *r, int64_t t) {
  uint32_t conc = r->opts->concurrency;
  area_to(r, t);
  r->inflight++;
  if (r->inflight > r->sec_peak) r->sec_peak = r->inflight;
  r->sec_arrivals++;
  r->sec_last = t;
  r->inv++;
  int64_t best = -1, starting = -1;
  for (uint32_t i = 0; i < r->ninst; i++) {
    inst_t *in = &r->inst[i];
    if (!in->alive || in->inflight >= conc) continue;
    if (in->ready_at <= t) {
      inst_t *b = best >= 0 ? &r->inst[best] : NULL;
      if (b == NULL || in->inflight > b->inflight ||
          (in->inflight == b->inflight && in->last_used > b->last_used))
        best = i;
    } else if (starting < 0 || in->ready_at < r->inst[starting].ready_at) {
      starting = i;
    }
  }
  if (best < 0) {
    r->cold++;
    if (r->alive == 0) r->cold_zero++;
    best = starting >= 0 ? starting : inst_start(r, t);
    if (best < 0) return (int)best;
  }
  inst_t *in = &r->inst[best];
  if (in->inflight == 0) r->wasted_ms += t - in->idle_since;
  in->inflight++;
  int rc = heap_reserve(r);
  if (rc != 0) return rc;
  int64_t start = in->ready_at > t ? in->ready_at : t;
  heap_push(r, (ev_t){start + r->dur_ms, (uint32_t)best});
  return 0;
}

static void complete(run_t *r, ev_t e) {
  area_to(r, e.t);
  r->inflight--;
  r->sec_completions++;
  inst_t *in = &r->inst[e.inst];
  in->inflight--;
  in->last_used = e.t;
  if (in->inflight == 0) in->idle_since = e.t;
}

/* Removes idle instances until `alive` is `want` or none is idle: idle
 * starting ones (the latest first), then the least recently used. */
static void shrink_to(run_t *r, uint32_t want, int64_t now) {
  while (r->alive > want) {
    int64_t victim = -1;
    for (uint32_t i = 0; i < r->ninst; i++) {
      inst_t *in = &r->inst[i];
      if (!in->alive || in->inflight > 0) continue;
      if (victim < 0) {
        victim = i;
        continue;
      }
      inst_t *v = &r->inst[victim];
      int s_in = in->ready_at > now, s_v = v->ready_at > now;
      if (s_in != s_v ? s_in
                      : (s_in ? in->ready_at > v->ready_at
                              : in->last_used < v->last_used))
        victim = i;
    }
    if (victim < 0) return;
    inst_stop(r, (uint32_t)victim, now);
  }
}

static int grow_to(run_t *r, uint32_t want, int64_t now) {
  while (r->alive < want)
    if (inst_start(r, now) < 0) return -ENOMEM;
  return 0;
}

static void feed_pred(run_t *r, int64_t now) {
  if (r->sec_arrivals > 0)
    imp_pred_observe(r->pred, r->sec_last, r->sec_arrivals);
  if (r->sec_peak > 1) imp_pred_observe_inflight(r->pred, now - 1, r->sec_peak);
  imp_pred_advance(r->pred, now);
}

/* The second's signals, as the server samples them, into the autoscaler. */
static void record(run_t *r, int64_t now) {
  imp_as_sample_t s;
  memset(&s, 0, sizeof s);
  s.t_ms = now;
  s.inflight = (double)r->area / 1000.0;
  s.inflight_max = r->sec_peak;
  s.arrivals = r->sec_arrivals;
  s.completions = r->sec_completions;
  s.duration_ms = r->sec_completions ? (double)r->dur_ms : 0.0;
  s.lag = -1;
  imp_as_record(&r->as, &s);
}

/* The policy's action at the end of the second ending at `now`. */
static int tick(run_t *r, int64_t now) {
  const imp_sim_opts_t *o = r->opts;
  area_to(r, now);
  switch (r->pol->kind) {
    case IMP_SIM_FIXED:
      for (uint32_t i = 0; i < r->ninst; i++) {
        inst_t *in = &r->inst[i];
        if (in->alive && in->inflight == 0 && in->ready_at <= now &&
            now - in->last_used >= r->pol->keepalive_ms)
          inst_stop(r, i, now);
      }
      break;
    case IMP_SIM_HYBRID: {
      /* Shahrad's policy as a keep-alive system runs it: every instance
       * stays warm for the keep-alive window after its last call, none
       * while the function is in its pre-warm gap, and one is pre-warmed
       * when the window opens. */
      feed_pred(r, now);
      imp_pred_window_t w;
      imp_pred_window(r->pred, &w);
      int want = imp_pred_want_warm(r->pred, now + o->cold_start_ms);
      for (uint32_t i = 0; i < r->ninst; i++) {
        inst_t *in = &r->inst[i];
        if (in->alive && in->inflight == 0 &&
            (!want || now - in->last_used >= w.keepalive_ms))
          inst_stop(r, i, now);
      }
      if (want && r->alive == 0 && grow_to(r, 1, now) != 0) return -ENOMEM;
      break;
    }
    case IMP_SIM_KPA:
    case IMP_SIM_IMPULSE: {
      record(r, now);
      if (r->pol->kind == IMP_SIM_IMPULSE) feed_pred(r, now);
      uint32_t ready = 0;
      for (uint32_t i = 0; i < r->ninst; i++)
        ready += r->inst[i].alive && r->inst[i].ready_at <= now;
      uint32_t want =
          imp_as_decide(&r->as, now, ready,
                        r->pol->kind == IMP_SIM_IMPULSE ? r->pred : NULL, NULL);
      if (want > r->alive) {
        if (grow_to(r, want, now) != 0) return -ENOMEM;
      } else {
        shrink_to(r, want, now);
      }
      break;
    }
  }
  int64_t sec = now / 1000 - 1;
  r->plat_alive[sec] += r->alive_max;
  if (r->plot != NULL && r->alive_max > r->plot[sec / 60])
    r->plot[sec / 60] = r->alive_max;
  r->alive_max = r->alive;
  r->area = 0;
  r->sec_arrivals = r->sec_completions = 0;
  r->sec_peak = r->inflight;
  return 0;
}

/* Places `c` arrivals inside the minute starting at `base`. */
static void spread(run_t *r, uint32_t c, int64_t base, uint64_t seed) {
  if (r->opts->spread == IMP_SIM_SPREAD_EVEN) {
    for (uint32_t i = 0; i < c; i++)
      r->arr[i] =
          base + (int64_t)((2 * (uint64_t)i + 1) * 60000 / (2 * (uint64_t)c));
    return;
  }
  /* Sorted uniform times: the partial sums of c + 1 exponential gaps,
   * divided by their total. */
  double sum = 0.0;
  for (uint32_t i = 0; i <= c; i++) {
    double u = ((double)(splitmix(&seed) >> 11) + 1.0) * 0x1.0p-53;
    sum += -log(u);
    r->gaps[i] = sum;
  }
  for (uint32_t i = 0; i < c; i++) {
    int64_t off = (int64_t)(60000.0 * r->gaps[i] / sum);
    r->arr[i] = base + (off < 60000 ? off : 59999);
  }
}

static int replay_fn(run_t *r, const imp_sim_fn_t *fn, int plot) {
  const imp_sim_opts_t *o = r->opts;
  int rc = 0;
  r->fn = fn;
  r->dur_ms = (int64_t)llround(fn->duration_ms);
  if (r->dur_ms < 1) r->dur_ms = 1;
  r->ninst = r->nfree = r->alive = 0;
  r->nheap = 0;
  r->inflight = 0;
  r->area = r->area_t = 0;
  r->sec_arrivals = r->sec_completions = 0;
  r->alive_max = 0;
  r->cold = r->cold_zero = r->inv = 0;
  r->plot = NULL;
  if (plot) {
    r->plot = calloc(IMP_SIM_MINUTES, sizeof *r->plot);
    if (r->plot == NULL) return -ENOMEM;
  }
  r->sec_peak = 0;
  if (r->pol->kind == IMP_SIM_KPA || r->pol->kind == IMP_SIM_IMPULSE) {
    imp_as_cfg_t cfg = o->as;
    cfg.policy =
        r->pol->kind == IMP_SIM_KPA ? IMP_AS_REACTIVE : IMP_AS_PREDICTIVE;
    cfg.target_concurrency = o->concurrency;
    cfg.cold_start_ms = o->cold_start_ms;
    cfg.default_duration_ms = (double)r->dur_ms;
    if ((rc = imp_as_init(&r->as, &cfg)) != 0) return rc;
  }
  if (r->pol->kind == IMP_SIM_HYBRID || r->pol->kind == IMP_SIM_IMPULSE) {
    /* hybrid is Shahrad's policy with its published settings (percentile
     * windows, 10 % margin, CV threshold 2), whatever --set says. */
    imp_pred_cfg_t pc = o->pred;
    if (r->pol->kind == IMP_SIM_HYBRID) {
      imp_pred_cfg_default(&pc);
      pc.cold_cost_s = 0.0;
      pc.head = 0.05;
      pc.tail = 0.99;
      pc.margin = 0.1;
      pc.cv_min = 2.0;
      pc.min_samples = 4;
      pc.fallback_keepalive_s = 600;
    }
    imp_pred_init(r->pred, &pc);
  }

  uint64_t fseed = o->seed ^ fnv1a(fn->hash);
  for (int64_t m = 0; m < IMP_SIM_MINUTES && rc == 0; m++) {
    uint32_t c = fn->counts[m];
    if (c + 1 > r->caparr) {
      size_t cap = c + 1;
      int64_t *a = realloc(r->arr, cap * sizeof *a);
      if (a != NULL) r->arr = a;
      double *g = realloc(r->gaps, cap * sizeof *g);
      if (g != NULL) r->gaps = g;
      if (a == NULL || g == NULL) {
        rc = -ENOMEM;
        break;
      }
      r->caparr = cap;
    }
    uint64_t mseed = fseed ^ ((uint64_t)m * 0xD1B54A32D192ED03ull);
    spread(r, c, m * 60000, mseed);
    uint32_t ai = 0;
    for (int64_t s = 0; s < 60 && rc == 0; s++) {
      int64_t end = (m * 60 + s + 1) * 1000;
      for (;;) {
        int64_t ta = ai < c ? r->arr[ai] : INT64_MAX;
        int64_t te = r->nheap ? r->heap[0].t : INT64_MAX;
        if (te <= ta && te < end) {
          complete(r, heap_pop(r));
        } else if (ta < end) {
          if ((rc = arrive(r, ta)) != 0) break;
          ai++;
        } else {
          break;
        }
      }
      if (rc == 0) rc = tick(r, end);
    }
  }
  /* The day ends: account what is still alive, drop calls still running. */
  for (uint32_t i = 0; i < r->ninst; i++) {
    inst_t *in = &r->inst[i];
    if (!in->alive) continue;
    r->alive_ms += DAY_MS - in->born;
    if (in->inflight == 0) r->wasted_ms += DAY_MS - in->idle_since;
  }
  if (r->pol->kind == IMP_SIM_KPA || r->pol->kind == IMP_SIM_IMPULSE)
    imp_as_free(&r->as);
  return rc;
}

/* The warm pool over the day: sized by imp_as_pool_target() from the
 * platform-wide instance starts, refilled refill_s after each use. */
static void pool_replay(run_t *r, imp_sim_result_t *res) {
  const imp_as_pool_cfg_t *pc = &r->opts->pool;
  imp_as_pool_t pool;
  imp_as_pool_init(&pool, pc);
  imp_pred_init(r->pred, &r->opts->pred);
  int64_t refill = (int64_t)ceil(pc->refill_s);
  if (refill < 1) refill = 1;
  uint32_t *arriving = calloc((size_t)(DAY_S + refill + 1), sizeof *arriving);
  if (arriving == NULL) return;
  uint64_t stock = pc->floor, pending = 0, covered = 0, total = 0;
  double sum = 0.0;
  for (int64_t sec = 0; sec < DAY_S; sec++) {
    int64_t t = sec * 1000;
    stock += arriving[sec];
    pending -= arriving[sec];
    uint32_t starts = r->plat_starts[sec];
    uint64_t take = starts < stock ? starts : stock;
    stock -= take;
    covered += take;
    total += starts;
    imp_as_pool_record(&pool, t, starts);
    if (starts > 0) imp_pred_observe(r->pred, t, starts);
    imp_pred_advance(r->pred, t + 999);
    uint32_t target = imp_as_pool_target(&pool, t + 999, r->pred);
    sum += target;
    if (stock > target) stock = target; /* stop the extra workers */
    if (stock + pending < target) {
      uint64_t more = target - stock - pending;
      arriving[sec + refill] += (uint32_t)more;
      pending += more;
    }
  }
  free(arriving);
  res->pool_mean = sum / DAY_S;
  res->pool_covered_frac = total ? (double)covered / (double)total : 0.0;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

void imp_sim_result_free(imp_sim_result_t *res) {
  free(res->plot_instances);
  free(res->fn_cold);
  free(res->fn_cold_zero);
  res->fn_cold_zero = NULL;
  free(res->fn_wasted_s);
  free(res->fn_peak);
  res->plot_instances = NULL;
  res->fn_cold = NULL;
  res->fn_wasted_s = NULL;
  res->fn_peak = NULL;
}

int imp_sim_run(const imp_sim_trace_t *tr, const imp_sim_policy_t *pol,
                const imp_sim_opts_t *opts, imp_sim_result_t *res) {
  int rc = 0;
  double t0 = imp_sim_mono_s();
  run_t r;
  memset(&r, 0, sizeof r);
  memset(res, 0, sizeof *res);
  res->policy = *pol;
  r.opts = opts;
  r.pol = pol;
  double *fracs = malloc((tr->count ? tr->count : 1) * sizeof *fracs);
  r.plat_alive = calloc(DAY_S, sizeof *r.plat_alive);
  r.plat_starts = calloc(DAY_S, sizeof *r.plat_starts);
  r.pred = malloc(sizeof *r.pred);
  size_t nfn = tr->count ? tr->count : 1;
  res->fn_cold = calloc(nfn, sizeof *res->fn_cold);
  res->fn_cold_zero = calloc(nfn, sizeof *res->fn_cold_zero);
  res->fn_wasted_s = calloc(nfn, sizeof *res->fn_wasted_s);
  res->fn_peak = calloc(nfn, sizeof *res->fn_peak);
  if (fracs == NULL || r.plat_alive == NULL || r.plat_starts == NULL ||
      r.pred == NULL || res->fn_cold == NULL || res->fn_cold_zero == NULL ||
      res->fn_wasted_s == NULL || res->fn_peak == NULL) {
    rc = -ENOMEM;
    goto out;
  }
  size_t nfrac = 0, step = tr->count / 10 ? tr->count / 10 : 1;
  for (size_t i = 0; i < tr->count; i++) {
    int plot = opts->plot_fn >= 0 && (size_t)opts->plot_fn == i;
    int64_t wasted_before = r.wasted_ms;
    r.fn_peak = 0;
    if ((rc = replay_fn(&r, &tr->fn[i], plot)) != 0) {
      free(r.plot);
      goto out;
    }
    if (plot) res->plot_instances = r.plot;
    res->invocations += r.inv;
    res->cold_starts += r.cold;
    res->fn_cold[i] = r.cold;
    res->fn_cold_zero[i] = r.cold_zero;
    res->fn_wasted_s[i] = (double)(r.wasted_ms - wasted_before) / 1000.0;
    res->fn_peak[i] = r.fn_peak;
    if (r.inv > 0) fracs[nfrac++] = (double)r.cold / (double)r.inv;
    if (opts->progress && ((i + 1) % step == 0 || i + 1 == tr->count))
      fprintf(stderr, "sim: %s: %zu/%zu functions, %.1f s\n", pol->name, i + 1,
              tr->count, imp_sim_mono_s() - t0);
  }
  res->cold_start_frac =
      res->invocations ? (double)res->cold_starts / (double)res->invocations
                       : 0;
  if (nfrac > 0) {
    qsort(fracs, nfrac, sizeof *fracs, cmp_double);
    size_t k = (size_t)ceil(0.75 * (double)nfrac); /* nearest rank */
    res->p75_fn_cold_frac = fracs[k > 0 ? k - 1 : 0];
  }
  res->wasted_s = (double)r.wasted_ms / 1000.0;
  res->alive_s = (double)r.alive_ms / 1000.0;
  res->starts = r.starts;
  for (size_t s = 0; s < DAY_S; s++)
    if (r.plat_alive[s] > res->peak_instances)
      res->peak_instances = r.plat_alive[s];
  pool_replay(&r, res);
  res->run_s = imp_sim_mono_s() - t0;
out:
  free(fracs);
  free(r.plat_alive);
  free(r.plat_starts);
  free(r.pred);
  free(r.inst);
  free(r.freel);
  free(r.heap);
  free(r.arr);
  free(r.gaps);
  if (rc != 0) imp_sim_result_free(res);
  return rc;
}
