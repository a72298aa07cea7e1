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
#include "tools/sim.h"

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/common.h"

#define DAY_S (IMP_SIM_MINUTES * 60)
#define DAY_MS ((int64_t)DAY_S * 1000)
#define EXIT_FAIL 1
#define EXIT_USAGE 2
#define MAX_DURATION_MS 864e5 /* one day */
#define MAX_COLD_START_MS 600000u
#define MAX_CONCURRENCY 10000u

/* ---- small helpers ----------------------------------------------------------
 */

static int fail(char *err, size_t errlen, int rc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int fail(char *err, size_t errlen, int rc, const char *fmt, ...) {
  if (err != NULL && errlen > 0) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
  }
  return rc;
}

static double mono_s(void) {
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

/*
 * Reads one line into `buf` without its end-of-line. Returns 1, 0 at the
 * end of the file, -E2BIG for a line that does not fit, -EINVAL for a NUL
 * byte, -EIO on a read error.
 */
static int read_line(FILE *f, char *buf, size_t cap, size_t *len) {
  if (fgets(buf, (int)cap, f) == NULL) return ferror(f) ? -EIO : 0;
  size_t n = strlen(buf);
  if (n == 0 || buf[n - 1] != '\n') {
    if (n == cap - 1 && !feof(f)) return -E2BIG;
    if (!feof(f)) return -EINVAL; /* fgets stopped early: a NUL byte */
  } else {
    buf[--n] = '\0';
  }
  if (n > 0 && buf[n - 1] == '\r') buf[--n] = '\0';
  *len = n;
  return 1;
}

static const char *line_error(int rc) {
  switch (rc) {
    case -E2BIG: return "line too long";
    case -EINVAL: return "NUL byte in line";
    default: return "read error";
  }
}

/* ---- trace ------------------------------------------------------------------
 */

void imp_sim_trace_free(imp_sim_trace_t *tr) {
  free(tr->fn);
  tr->fn = NULL;
  tr->count = tr->cap = 0;
}

/* Parses one data row into `fn`. Returns 0 or -EINVAL with `err` set. */
static int parse_row(char *line, const char *path, size_t lineno,
                     imp_sim_fn_t *fn, char *err, size_t errlen) {
  size_t field = 0;
  char *p = line;
  memset(fn, 0, sizeof *fn);
  for (;;) {
    char *end = strchr(p, ',');
    if (end != NULL) *end = '\0';
    size_t flen = strlen(p);
    if (field < 3) {
      if (flen == 0 || flen > IMP_SIM_MAX_NAME)
        return fail(err, errlen, -EINVAL,
                    "%s:%zu: field %zu: a name of 1 to %d bytes is expected",
                    path, lineno, field + 1, IMP_SIM_MAX_NAME);
      if (field == 0) memcpy(fn->hash, p, flen + 1);
    } else if (field < 3 + IMP_SIM_MINUTES) {
      uint64_t v = 0;
      if (flen == 0 || flen > 10)
        return fail(err, errlen, -EINVAL,
                    "%s:%zu: field %zu: '%.20s' is not a count", path, lineno,
                    field + 1, p);
      for (size_t i = 0; i < flen; i++) {
        if (!isdigit((unsigned char)p[i]))
          return fail(err, errlen, -EINVAL,
                      "%s:%zu: field %zu: '%.20s' is not a count", path, lineno,
                      field + 1, p);
        v = v * 10 + (uint64_t)(p[i] - '0');
      }
      if (v > IMP_SIM_MAX_PER_MINUTE)
        return fail(err, errlen, -ERANGE,
                    "%s:%zu: field %zu: %llu invocations in a minute is above "
                    "the limit of %u",
                    path, lineno, field + 1, (unsigned long long)v,
                    IMP_SIM_MAX_PER_MINUTE);
      fn->counts[field - 3] = (uint32_t)v;
      fn->total += v;
    }
    field++;
    if (end == NULL) break;
    p = end + 1;
  }
  if (field != 3 + IMP_SIM_MINUTES)
    return fail(err, errlen, -EINVAL,
                "%s:%zu: expected %d fields (HashFunction,HashOwner,HashApp "
                "and %d minutes), found %zu",
                path, lineno, 3 + IMP_SIM_MINUTES, IMP_SIM_MINUTES, field);
  return 0;
}

int imp_sim_trace_load(imp_sim_trace_t *tr, const char *path, size_t limit,
                       char *err, size_t errlen) {
  memset(tr, 0, sizeof *tr);
  int rc = 0;
  char *line = NULL;
  FILE *f = fopen(path, "r");
  if (f == NULL)
    return fail(err, errlen, -errno, "%s: %s", path, strerror(errno));
  line = malloc(IMP_SIM_MAX_LINE + 2);
  if (line == NULL) {
    rc = fail(err, errlen, -ENOMEM, "out of memory");
    goto out;
  }
  size_t lineno = 0, len;
  for (;;) {
    int r = read_line(f, line, IMP_SIM_MAX_LINE + 2, &len);
    if (r == 0) break;
    lineno++;
    if (r < 0) {
      rc = fail(err, errlen, r == -EIO ? -EIO : -EINVAL, "%s:%zu: %s%s", path,
                lineno, line_error(r), r == -E2BIG ? " (limit 1 MiB)" : "");
      goto out;
    }
    if (len == 0) continue;
    if (lineno == 1 && strncmp(line, "HashFunction", 12) == 0) continue;
    if (limit > 0 && tr->count >= limit) break;
    if (tr->count >= IMP_SIM_MAX_FUNCTIONS) {
      rc = fail(err, errlen, -E2BIG,
                "%s:%zu: more than %u functions (use --functions N)", path,
                lineno, IMP_SIM_MAX_FUNCTIONS);
      goto out;
    }
    if (tr->count == tr->cap) {
      size_t cap = tr->cap ? tr->cap * 2 : 64;
      imp_sim_fn_t *fn = realloc(tr->fn, cap * sizeof *fn);
      if (fn == NULL) {
        rc = fail(err, errlen, -ENOMEM, "out of memory");
        goto out;
      }
      tr->fn = fn;
      tr->cap = cap;
    }
    rc = parse_row(line, path, lineno, &tr->fn[tr->count], err, errlen);
    if (rc != 0) goto out;
    tr->count++;
  }
  if (tr->count == 0)
    rc = fail(err, errlen, -EINVAL, "%s: no functions in the trace", path);
out:
  free(line);
  fclose(f);
  if (rc != 0) imp_sim_trace_free(tr);
  return rc;
}

void imp_sim_durations_default(imp_sim_trace_t *tr, double default_ms) {
  for (size_t i = 0; i < tr->count; i++)
    if (!tr->fn[i].has_duration) tr->fn[i].duration_ms = default_ms;
}

static int cmp_fn_hash(const void *a, const void *b) {
  const imp_sim_fn_t *const *x = a, *const *y = b;
  return strcmp((*x)->hash, (*y)->hash);
}

static int find_fn(const void *key, const void *elem) {
  const imp_sim_fn_t *const *y = elem;
  return strcmp(key, (*y)->hash);
}

/* Splits a CSV line in place (no quoting in these files). */
static size_t split(char *line, char **fields, size_t max) {
  size_t n = 0;
  char *p = line;
  for (;;) {
    char *end = strchr(p, ',');
    if (n < max) fields[n] = p;
    n++;
    if (end == NULL) break;
    *end = '\0';
    p = end + 1;
  }
  return n;
}

#define DUR_MAX_FIELDS 64

int imp_sim_durations_load(imp_sim_trace_t *tr, const char *path,
                           double default_ms, size_t *matched, char *err,
                           size_t errlen) {
  int rc = 0;
  char *line = NULL;
  imp_sim_fn_t **index = NULL;
  size_t found = 0;
  FILE *f = fopen(path, "r");
  if (f == NULL)
    return fail(err, errlen, -errno, "%s: %s", path, strerror(errno));
  line = malloc(IMP_SIM_MAX_LINE + 2);
  index = malloc((tr->count ? tr->count : 1) * sizeof *index);
  if (line == NULL || index == NULL) {
    rc = fail(err, errlen, -ENOMEM, "out of memory");
    goto out;
  }
  for (size_t i = 0; i < tr->count; i++) index[i] = &tr->fn[i];
  qsort(index, tr->count, sizeof *index, cmp_fn_hash);

  char *fields[DUR_MAX_FIELDS];
  size_t lineno = 0, len, col_hash = SIZE_MAX, col_avg = SIZE_MAX, ncols = 0;
  for (;;) {
    int r = read_line(f, line, IMP_SIM_MAX_LINE + 2, &len);
    if (r == 0) break;
    lineno++;
    if (r < 0) {
      rc =
          fail(err, errlen, -EINVAL, "%s:%zu: %s", path, lineno, line_error(r));
      goto out;
    }
    if (len == 0) continue;
    size_t n = split(line, fields, DUR_MAX_FIELDS);
    if (col_hash == SIZE_MAX) {
      /* The header names the columns. */
      if (n > DUR_MAX_FIELDS) n = DUR_MAX_FIELDS;
      for (size_t i = 0; i < n; i++) {
        if (strcmp(fields[i], "HashFunction") == 0) col_hash = i;
        if (strcmp(fields[i], "Average") == 0) col_avg = i;
      }
      if (col_hash == SIZE_MAX || col_avg == SIZE_MAX) {
        rc = fail(err, errlen, -EINVAL,
                  "%s:%zu: the header must name HashFunction and Average "
                  "columns",
                  path, lineno);
        goto out;
      }
      ncols = n;
      continue;
    }
    if (n != ncols) {
      rc = fail(err, errlen, -EINVAL, "%s:%zu: expected %zu fields, found %zu",
                path, lineno, ncols, n);
      goto out;
    }
    char *end;
    errno = 0;
    double avg = strtod(fields[col_avg], &end);
    if (end == fields[col_avg] || *end != '\0' || errno != 0 ||
        !isfinite(avg) || avg < 0.0 || avg > MAX_DURATION_MS) {
      rc = fail(err, errlen, -EINVAL,
                "%s:%zu: Average '%.20s' is not a duration in ms (0 to %.0f)",
                path, lineno, fields[col_avg], MAX_DURATION_MS);
      goto out;
    }
    imp_sim_fn_t **hit = tr->count ? bsearch(fields[col_hash], index, tr->count,
                                             sizeof *index, find_fn)
                                   : NULL;
    if (hit == NULL) continue;
    /* Several functions may share a hash (different apps): the first row
     * for each wins; neighbours in the sorted index share it too. */
    imp_sim_fn_t **lo = hit, **hi = hit;
    while (lo > index && strcmp((*(lo - 1))->hash, (*hit)->hash) == 0) lo--;
    while (hi + 1 < index + tr->count &&
           strcmp((*(hi + 1))->hash, (*hit)->hash) == 0)
      hi++;
    for (imp_sim_fn_t **p = lo; p <= hi; p++) {
      if ((*p)->has_duration) continue;
      (*p)->duration_ms = avg < 1.0 ? 1.0 : avg;
      (*p)->has_duration = 1;
      found++;
    }
  }
  if (col_hash == SIZE_MAX)
    rc = fail(err, errlen, -EINVAL, "%s: empty durations file", path);
out:
  free(line);
  free(index);
  fclose(f);
  if (rc == 0) imp_sim_durations_default(tr, default_ms);
  if (matched != NULL) *matched = found;
  return rc;
}

/* ---- policies and options
 * ----------------------------------------------------- */

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

/* ---- replay
 * ------------------------------------------------------------------ */

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
  double t0 = mono_s();
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
              tr->count, mono_s() - t0);
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
  res->run_s = mono_s() - t0;
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

/* ---- output ----------------------------------------------------------------
 */

static double ratio(double a, double b) {
  return b > 0.0 ? a / b : (a > 0.0 ? INFINITY : 1.0);
}

static void print_tsv(FILE *out, const imp_sim_result_t *res, size_t n,
                      const imp_sim_result_t *base) {
  fprintf(out,
          "policy\tinvocations\tcold_starts\tcold_start_frac\t"
          "p75_function_cold_start_frac\twasted_instance_seconds\t"
          "peak_instances\tinstance_starts\talive_instance_seconds\t"
          "cold_starts_vs_fixed10m\twasted_vs_fixed10m\tpool_mean\t"
          "pool_covered_frac\trun_seconds\n");
  for (size_t i = 0; i < n; i++) {
    const imp_sim_result_t *r = &res[i];
    fprintf(out, "%s\t%llu\t%llu\t%.6f\t%.6f\t%.1f\t%u\t%llu\t%.1f\t",
            r->policy.name, (unsigned long long)r->invocations,
            (unsigned long long)r->cold_starts, r->cold_start_frac,
            r->p75_fn_cold_frac, r->wasted_s, r->peak_instances,
            (unsigned long long)r->starts, r->alive_s);
    if (base != NULL)
      fprintf(out, "%.4f\t%.4f\t",
              ratio((double)r->cold_starts, (double)base->cold_starts),
              ratio(r->wasted_s, base->wasted_s));
    else
      fprintf(out, "\t\t");
    fprintf(out, "%.2f\t%.4f\t%.2f\n", r->pool_mean, r->pool_covered_frac,
            r->run_s);
  }
}

static void print_table(FILE *out, const imp_sim_result_t *res, size_t n,
                        const imp_sim_result_t *base) {
  fprintf(out, "%-12s %11s %11s %9s %9s %14s %6s", "policy", "invocations",
          "cold_starts", "cold_frac", "p75_fn", "wasted_inst_s", "peak");
  if (base != NULL)
    fprintf(out, "  %10s %10s %10s %10s", "cold/f10m", "p75/f10m", "waste/f10m",
            "peak/f10m");
  fputc('\n', out);
  for (size_t i = 0; i < n; i++) {
    const imp_sim_result_t *r = &res[i];
    fprintf(out, "%-12s %11llu %11llu %9.4f %9.4f %14.0f %6u", r->policy.name,
            (unsigned long long)r->invocations,
            (unsigned long long)r->cold_starts, r->cold_start_frac,
            r->p75_fn_cold_frac, r->wasted_s, r->peak_instances);
    if (base != NULL)
      fprintf(out, "  %10.3f %10.3f %10.3f %10.3f",
              ratio((double)r->cold_starts, (double)base->cold_starts),
              ratio(r->p75_fn_cold_frac, base->p75_fn_cold_frac),
              ratio(r->wasted_s, base->wasted_s),
              ratio(r->peak_instances, base->peak_instances));
    fputc('\n', out);
  }
}

static void svg_text(FILE *f, const char *s) {
  for (; *s; s++) {
    switch (*s) {
      case '<': fputs("&lt;", f); break;
      case '>': fputs("&gt;", f); break;
      case '&': fputs("&amp;", f); break;
      case '"': fputs("&quot;", f); break;
      default:
        if ((unsigned char)*s >= 0x20 && (unsigned char)*s < 0x7f) fputc(*s, f);
    }
  }
}

#define SVG_W 1200
#define SVG_X0 70
#define SVG_X1 1170

static void svg_line(FILE *f, const double *v, double vmax, int y0, int y1,
                     const char *color, double width) {
  fprintf(
      f,
      "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"%.1f\" points=\"",
      color, width);
  for (int m = 0; m < IMP_SIM_MINUTES; m++) {
    double x = SVG_X0 + (double)(SVG_X1 - SVG_X0) * m / (IMP_SIM_MINUTES - 1);
    double y = y1 - (vmax > 0 ? v[m] / vmax : 0.0) * (y1 - y0);
    fprintf(f, "%.1f,%.1f ", x, y);
  }
  fputs("\"/>\n", f);
}

static void svg_axes(FILE *f, int y0, int y1, double vmax, const char *label) {
  fprintf(f,
          "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"none\" "
          "stroke=\"#999\"/>\n",
          SVG_X0, y0, SVG_X1 - SVG_X0, y1 - y0);
  for (int h = 0; h <= 24; h += 3) {
    double x = SVG_X0 + (double)(SVG_X1 - SVG_X0) * h / 24.0;
    fprintf(
        f,
        "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" stroke=\"#ddd\"/>"
        "<text x=\"%.1f\" y=\"%d\" font-size=\"11\" text-anchor=\"middle\">"
        "%02d:00</text>\n",
        x, y0, x, y1, x, y1 + 14, h);
  }
  fprintf(
      f,
      "<text x=\"%d\" y=\"%d\" font-size=\"11\" text-anchor=\"end\">%.0f</text>"
      "<text x=\"%d\" y=\"%d\" font-size=\"11\" text-anchor=\"end\">0</text>"
      "<text x=\"14\" y=\"%d\" font-size=\"12\" transform=\"rotate(-90 14 "
      "%d)\" "
      "text-anchor=\"middle\">%s</text>\n",
      SVG_X0 - 4, y0 + 10, vmax, SVG_X0 - 4, y1, (y0 + y1) / 2, (y0 + y1) / 2,
      label);
}

static const char *palette[] = {"#d62728", "#2ca02c", "#9467bd", "#1f77b4",
                                "#ff7f0e", "#8c564b", "#e377c2", "#17becf"};

/* Writes forecast vs actual arrivals and each policy's instances over the
 * day for function `fi`. Returns 0 or a negative errno. */
static int write_svg(const char *path, const imp_sim_trace_t *tr, size_t fi,
                     const imp_sim_opts_t *opts, const imp_sim_result_t *res,
                     size_t n) {
  const imp_sim_fn_t *fn = &tr->fn[fi];
  double actual[IMP_SIM_MINUTES], fc[IMP_SIM_MINUTES], inst[IMP_SIM_MINUTES];
  imp_pred_t *p = malloc(sizeof *p);
  if (p == NULL) return -ENOMEM;
  /* The forecast each minute had when it began (one lead ahead), from the
   * same predictor the impulse policy uses, fed minute by minute. */
  imp_pred_init(p, &opts->pred);
  double amax = 1.0, imax = 1.0;
  for (int m = 0; m < IMP_SIM_MINUTES; m++) {
    int64_t start = (int64_t)m * 60000;
    imp_pred_advance(p, start);
    fc[m] = imp_pred_forecast(p, start + opts->cold_start_ms);
    imp_pred_observe(p, start + 30000, fn->counts[m]);
    actual[m] = fn->counts[m];
    if (actual[m] > amax) amax = actual[m];
    if (fc[m] > amax) amax = fc[m];
  }
  free(p);
  for (size_t k = 0; k < n; k++)
    if (res[k].plot_instances != NULL)
      for (int m = 0; m < IMP_SIM_MINUTES; m++)
        if (res[k].plot_instances[m] > imax) imax = res[k].plot_instances[m];

  FILE *f = fopen(path, "w");
  if (f == NULL) return -errno;
  fprintf(
      f,
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"700\" "
      "font-family=\"sans-serif\">\n<rect width=\"100%%\" height=\"100%%\" "
      "fill=\"white\"/>\n<text x=\"%d\" y=\"22\" font-size=\"14\">function ",
      SVG_W, SVG_X0);
  svg_text(f, fn->hash);
  fprintf(f, " (#%zu): %llu calls, %.0f ms</text>\n", fi,
          (unsigned long long)fn->total, fn->duration_ms);
  svg_axes(f, 40, 320, amax, "arrivals / minute");
  svg_line(f, actual, amax, 40, 320, "#bbb", 2.5);
  svg_line(f, fc, amax, 40, 320, "#1f77b4", 1.2);
  fprintf(f,
          "<text x=\"%d\" y=\"56\" font-size=\"12\" fill=\"#999\">actual</text>"
          "<text x=\"%d\" y=\"72\" font-size=\"12\" fill=\"#1f77b4\">forecast "
          "(Holt-Winters, one cold start ahead)</text>\n",
          SVG_X0 + 8, SVG_X0 + 8);
  svg_axes(f, 370, 650, imax, "instances (max per minute)");
  for (size_t k = 0, shown = 0; k < n; k++) {
    if (res[k].plot_instances == NULL) continue;
    const char *color = palette[shown % IMP_ARRAY_SIZE(palette)];
    for (int m = 0; m < IMP_SIM_MINUTES; m++)
      inst[m] = res[k].plot_instances[m];
    svg_line(f, inst, imax, 370, 650, color, 1.0);
    fprintf(f, "<text x=\"%d\" y=\"%zu\" font-size=\"12\" fill=\"%s\">",
            SVG_X0 + 8, 386 + 16 * shown, color);
    svg_text(f, res[k].policy.name);
    fputs("</text>\n", f);
    shown++;
  }
  fputs("</svg>\n", f);
  if (fclose(f) != 0) return -EIO;
  return 0;
}

/* One line per policy and function: where the cold starts and the idle
 * time come from. */
static int write_per_function(const char *path, const imp_sim_trace_t *tr,
                              const imp_sim_result_t *res, size_t n) {
  FILE *f = fopen(path, "w");
  if (f == NULL) return -errno;
  fprintf(f,
          "policy\tindex\tfunction\tinvocations\tactive_minutes\t"
          "duration_ms\tcold_starts\tcold_starts_from_zero\t"
          "wasted_instance_seconds\tpeak_instances\n");
  for (size_t k = 0; k < n; k++) {
    for (size_t i = 0; i < tr->count; i++) {
      const imp_sim_fn_t *fn = &tr->fn[i];
      unsigned active = 0;
      for (int m = 0; m < IMP_SIM_MINUTES; m++) active += fn->counts[m] > 0;
      fprintf(f, "%s\t%zu\t%s\t%llu\t%u\t%.0f\t%llu\t%llu\t%.1f\t%u\n",
              res[k].policy.name, i, fn->hash, (unsigned long long)fn->total,
              active, fn->duration_ms, (unsigned long long)res[k].fn_cold[i],
              (unsigned long long)res[k].fn_cold_zero[i], res[k].fn_wasted_s[i],
              res[k].fn_peak[i]);
    }
  }
  if (fclose(f) != 0) return -EIO;
  return 0;
}

/* ---- command line ----------------------------------------------------------
 */

static int parse_u64(const char *s, uint64_t max, uint64_t *out) {
  if (*s == '\0' || strlen(s) > 20) return -EINVAL;
  uint64_t v = 0;
  for (const char *p = s; *p; p++) {
    if (!isdigit((unsigned char)*p)) return -EINVAL;
    if (v > (UINT64_MAX - 9) / 10) return -ERANGE;
    v = v * 10 + (uint64_t)(*p - '0');
  }
  if (v > max) return -ERANGE;
  *out = v;
  return 0;
}

/* Settings that --set KEY=VALUE may change. */
enum { KNOB_AS, KNOB_PRED, KNOB_POOL };
enum { KNOB_DBL, KNOB_U32 };
typedef struct knob_s {
  const char *name;
  int where;
  int type;
  size_t off;
} knob_t;

#define AS_K(n, t, f) \
  { n, KNOB_AS, t, offsetof(imp_as_cfg_t, f) }
#define PRED_K(n, t, f) \
  { n, KNOB_PRED, t, offsetof(imp_pred_cfg_t, f) }
#define POOL_K(n, t, f) \
  { n, KNOB_POOL, t, offsetof(imp_as_pool_cfg_t, f) }
static const knob_t knobs[] = {
    AS_K("target-utilization", KNOB_DBL, target_utilization),
    AS_K("stable-window-s", KNOB_U32, stable_window_s),
    AS_K("panic-window-s", KNOB_U32, panic_window_s),
    AS_K("panic-threshold", KNOB_DBL, panic_threshold),
    AS_K("max-scale-up-rate", KNOB_DBL, max_scale_up_rate),
    AS_K("max-scale-down-rate", KNOB_DBL, max_scale_down_rate),
    AS_K("scale-to-zero-after-s", KNOB_U32, scale_to_zero_after_s),
    AS_K("dense-per-min", KNOB_DBL, dense_per_min),
    AS_K("dense-activity", KNOB_DBL, dense_activity),
    AS_K("cold-cost-s", KNOB_DBL, cold_cost_s),
    PRED_K("alpha", KNOB_DBL, alpha),
    PRED_K("alpha-season", KNOB_DBL, alpha_season),
    PRED_K("beta", KNOB_DBL, beta),
    PRED_K("gamma", KNOB_DBL, gamma),
    PRED_K("phi", KNOB_DBL, phi),
    PRED_K("head", KNOB_DBL, head),
    PRED_K("tail", KNOB_DBL, tail),
    PRED_K("margin", KNOB_DBL, margin),
    PRED_K("min-samples", KNOB_U32, min_samples),
    PRED_K("cv-min", KNOB_DBL, cv_min),
    PRED_K("oob-max", KNOB_DBL, oob_max),
    PRED_K("min-prewarm-min", KNOB_U32, min_prewarm_min),
    PRED_K("fallback-keepalive-s", KNOB_U32, fallback_keepalive_s),
    PRED_K("activity-alpha", KNOB_DBL, activity_alpha),
    PRED_K("hist-cold-cost-s", KNOB_DBL, cold_cost_s),
    POOL_K("pool-refill-s", KNOB_DBL, refill_s),
    POOL_K("pool-headroom", KNOB_DBL, headroom),
    POOL_K("pool-floor", KNOB_U32, floor),
    POOL_K("pool-cap", KNOB_U32, cap),
};

/* Applies "KEY=VALUE" to `opts`. Returns 0 or -EINVAL. */
static int apply_knob(imp_sim_opts_t *opts, const char *arg) {
  const char *eq = strchr(arg, '=');
  if (eq == NULL) return -EINVAL;
  size_t klen = (size_t)(eq - arg);
  for (size_t i = 0; i < IMP_ARRAY_SIZE(knobs); i++) {
    const knob_t *k = &knobs[i];
    if (strlen(k->name) != klen || strncmp(k->name, arg, klen) != 0) continue;
    char *base = k->where == KNOB_AS     ? (char *)&opts->as
                 : k->where == KNOB_PRED ? (char *)&opts->pred
                                         : (char *)&opts->pool;
    const char *val = eq + 1;
    if (k->type == KNOB_U32) {
      uint64_t v;
      if (parse_u64(val, UINT32_MAX, &v) != 0) return -EINVAL;
      uint32_t u = (uint32_t)v;
      memcpy(base + k->off, &u, sizeof u);
    } else {
      char *end;
      errno = 0;
      double d = strtod(val, &end);
      if (end == val || *end != '\0' || errno != 0 || !isfinite(d))
        return -EINVAL;
      memcpy(base + k->off, &d, sizeof d);
    }
    return 0;
  }
  return -EINVAL;
}

static const char usage_text[] =
    "usage: impulse sim --trace FILE [options]\n"
    "\n"
    "Replays a per-minute invocation trace (Azure Functions 2019 format:\n"
    "HashFunction,HashOwner,HashApp,1..1440) in virtual time through the\n"
    "autoscaler and predictor of the server, and reports cold starts and\n"
    "idle instance time per policy.\n"
    "\n"
    "  --trace FILE          invocation counts per function and minute\n"
    "  --policy LIST         comma-separated: fixed:10m (also fixed:Ns,\n"
    "                        fixed:Nh), kpa, hybrid, impulse\n"
    "                        (default fixed:10m,kpa,hybrid,impulse)\n"
    "  --durations FILE      Azure durations file (HashFunction, Average ms);\n"
    "                        other functions run --default-duration-ms\n"
    "  --default-duration-ms N  (default 100)\n"
    "  --concurrency N       calls per instance at once (default 1)\n"
    "  --cold-start-ms N     instance start time (default 1000)\n"
    "  --format table|tsv    output (default table; ratios to fixed:10m)\n"
    "  --plot FILE.svg       arrivals, forecast and instances of one function\n"
    "  --plot-function HASH|INDEX  the function to plot (default the busiest)\n"
    "  --per-function FILE   write each function's figures (TSV) there\n"
    "  --functions N         replay only the first N functions\n"
    "  --spread uniform|even place calls in their minute at seeded random\n"
    "                        times (default) or evenly\n"
    "  --seed N              seed of the uniform spread (default 1)\n"
    "  --set KEY=VALUE       change an autoscaler, predictor or pool setting\n"
    "                        (repeatable; see docs/autoscaling.md for keys)\n"
    "  --quiet               no progress on stderr\n"
    "  -h, --help            show this help\n";

static int usage_error(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));
static int usage_error(const char *fmt, ...) {
  va_list ap;
  fputs("impulse sim: ", stderr);
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputs("\n\n", stderr);
  fputs(usage_text, stderr);
  return EXIT_USAGE;
}

enum {
  OPT_TRACE = 256,
  OPT_POLICY,
  OPT_DURATIONS,
  OPT_DEFAULT_DURATION,
  OPT_CONCURRENCY,
  OPT_COLD,
  OPT_FORMAT,
  OPT_PLOT,
  OPT_PLOT_FN,
  OPT_FUNCTIONS,
  OPT_SPREAD,
  OPT_SEED,
  OPT_QUIET,
  OPT_PER_FN,
  OPT_SET
};

int imp_sim_main(int argc, char **argv) {
  static const struct option longopts[] = {
      {"trace", required_argument, NULL, OPT_TRACE},
      {"policy", required_argument, NULL, OPT_POLICY},
      {"durations", required_argument, NULL, OPT_DURATIONS},
      {"default-duration-ms", required_argument, NULL, OPT_DEFAULT_DURATION},
      {"concurrency", required_argument, NULL, OPT_CONCURRENCY},
      {"cold-start-ms", required_argument, NULL, OPT_COLD},
      {"format", required_argument, NULL, OPT_FORMAT},
      {"plot", required_argument, NULL, OPT_PLOT},
      {"plot-function", required_argument, NULL, OPT_PLOT_FN},
      {"functions", required_argument, NULL, OPT_FUNCTIONS},
      {"spread", required_argument, NULL, OPT_SPREAD},
      {"seed", required_argument, NULL, OPT_SEED},
      {"quiet", no_argument, NULL, OPT_QUIET},
      {"per-function", required_argument, NULL, OPT_PER_FN},
      {"set", required_argument, NULL, OPT_SET},
      {"help", no_argument, NULL, 'h'},
      {NULL, 0, NULL, 0}};
  const char *trace = NULL, *durations = NULL, *plot = NULL, *plot_fn = NULL;
  const char *per_fn = NULL;
  const char *policies = "fixed:10m,kpa,hybrid,impulse";
  int tsv = 0;
  uint64_t v, limit = 0;
  imp_sim_opts_t opts;
  imp_sim_opts_default(&opts);
  opts.progress = 1;

  optind = 0;
  opterr = 0;
  int c;
  while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
    switch (c) {
      case OPT_TRACE: trace = optarg; break;
      case OPT_POLICY: policies = optarg; break;
      case OPT_DURATIONS: durations = optarg; break;
      case OPT_DEFAULT_DURATION:
        if (parse_u64(optarg, (uint64_t)MAX_DURATION_MS, &v) != 0 || v == 0)
          return usage_error("--default-duration-ms: 1 to %.0f expected",
                             MAX_DURATION_MS);
        opts.default_duration_ms = (double)v;
        break;
      case OPT_CONCURRENCY:
        if (parse_u64(optarg, MAX_CONCURRENCY, &v) != 0 || v == 0)
          return usage_error("--concurrency: 1 to %u expected",
                             MAX_CONCURRENCY);
        opts.concurrency = (uint32_t)v;
        break;
      case OPT_COLD:
        if (parse_u64(optarg, MAX_COLD_START_MS, &v) != 0)
          return usage_error("--cold-start-ms: 0 to %u expected",
                             MAX_COLD_START_MS);
        opts.cold_start_ms = (uint32_t)v;
        break;
      case OPT_FORMAT:
        if (strcmp(optarg, "tsv") == 0)
          tsv = 1;
        else if (strcmp(optarg, "table") == 0)
          tsv = 0;
        else
          return usage_error("--format: table or tsv expected");
        break;
      case OPT_PLOT: plot = optarg; break;
      case OPT_PLOT_FN: plot_fn = optarg; break;
      case OPT_FUNCTIONS:
        if (parse_u64(optarg, IMP_SIM_MAX_FUNCTIONS, &limit) != 0 || limit == 0)
          return usage_error("--functions: 1 to %u expected",
                             IMP_SIM_MAX_FUNCTIONS);
        break;
      case OPT_SPREAD:
        if (strcmp(optarg, "uniform") == 0)
          opts.spread = IMP_SIM_SPREAD_UNIFORM;
        else if (strcmp(optarg, "even") == 0)
          opts.spread = IMP_SIM_SPREAD_EVEN;
        else
          return usage_error("--spread: uniform or even expected");
        break;
      case OPT_SEED:
        if (parse_u64(optarg, UINT64_MAX, &opts.seed) != 0)
          return usage_error("--seed: a number expected");
        break;
      case OPT_QUIET: opts.progress = 0; break;
      case OPT_PER_FN: per_fn = optarg; break;
      case OPT_SET:
        if (apply_knob(&opts, optarg) != 0)
          return usage_error("--set: unknown key or bad value in '%s'", optarg);
        break;
      case 'h': fputs(usage_text, stdout); return 0;
      default:
        return usage_error("unknown or incomplete option '%s'",
                           argv[optind - 1]);
    }
  }
  if (optind < argc)
    return usage_error("unexpected argument '%s'", argv[optind]);
  if (trace == NULL) return usage_error("--trace FILE is required");
  {
    imp_as_cfg_t check = opts.as;
    check.target_concurrency = opts.concurrency;
    check.cold_start_ms = opts.cold_start_ms;
    imp_as_pool_t pool;
    if (imp_as_cfg_check(&check) != 0 || imp_pred_cfg_check(&opts.pred) != 0 ||
        imp_as_pool_init(&pool, &opts.pool) != 0)
      return usage_error("--set: the settings are out of range");
  }

  /* Policies, plus fixed:10m as the baseline of the ratios. */
  imp_sim_policy_t pols[IMP_SIM_MAX_POLICIES + 1];
  size_t npol = 0;
  char list[512];
  if (strlen(policies) >= sizeof list) return usage_error("--policy: too long");
  snprintf(list, sizeof list, "%s", policies);
  for (char *save = NULL, *tok = strtok_r(list, ",", &save); tok != NULL;
       tok = strtok_r(NULL, ",", &save)) {
    if (npol == IMP_SIM_MAX_POLICIES)
      return usage_error("--policy: at most %d policies", IMP_SIM_MAX_POLICIES);
    if (imp_sim_policy_parse(tok, &pols[npol]) != 0)
      return usage_error("--policy: unknown policy '%s'", tok);
    npol++;
  }
  if (npol == 0) return usage_error("--policy: no policy given");
  size_t base = SIZE_MAX;
  for (size_t i = 0; i < npol; i++)
    if (pols[i].kind == IMP_SIM_FIXED && pols[i].keepalive_ms == 600000)
      base = i;
  int hidden_base = 0;
  if (base == SIZE_MAX && !tsv) {
    imp_sim_policy_parse("fixed:10m", &pols[npol]);
    base = npol++;
    hidden_base = 1;
  }

  char err[512];
  imp_sim_trace_t tr;
  int rc = imp_sim_trace_load(&tr, trace, (size_t)limit, err, sizeof err);
  if (rc != 0) {
    fprintf(stderr, "impulse sim: %s\n", err);
    return EXIT_FAIL;
  }
  int status = 0;
  imp_sim_result_t res[IMP_SIM_MAX_POLICIES + 1];
  size_t nres = 0;
  if (durations != NULL) {
    size_t matched = 0;
    rc = imp_sim_durations_load(&tr, durations, opts.default_duration_ms,
                                &matched, err, sizeof err);
    if (rc != 0) {
      fprintf(stderr, "impulse sim: %s\n", err);
      status = EXIT_FAIL;
      goto out;
    }
    if (opts.progress)
      fprintf(stderr,
              "sim: durations for %zu of %zu functions, %.0f ms for the rest\n",
              matched, tr.count, opts.default_duration_ms);
  } else {
    imp_sim_durations_default(&tr, opts.default_duration_ms);
    if (opts.progress)
      fprintf(stderr, "sim: no --durations: every call runs %.0f ms\n",
              opts.default_duration_ms);
  }

  /* The function to plot: an index, a hash (or a unique prefix of one), or
   * by default the busiest. */
  if (plot != NULL) {
    size_t busiest = 0;
    for (size_t i = 1; i < tr.count; i++)
      if (tr.fn[i].total > tr.fn[busiest].total) busiest = i;
    opts.plot_fn = (long)busiest;
    if (plot_fn != NULL) {
      long found = -1;
      if (parse_u64(plot_fn, tr.count - 1, &v) == 0) {
        found = (long)v;
      } else {
        size_t plen = strlen(plot_fn);
        for (size_t i = 0; i < tr.count; i++) {
          if (strncmp(tr.fn[i].hash, plot_fn, plen) != 0) continue;
          if (found >= 0 && strcmp(tr.fn[found].hash, tr.fn[i].hash) != 0) {
            fprintf(stderr, "impulse sim: --plot-function '%s' is ambiguous\n",
                    plot_fn);
            status = EXIT_USAGE;
            goto out;
          }
          if (found < 0) found = (long)i;
        }
      }
      if (found < 0) {
        fprintf(stderr, "impulse sim: --plot-function '%s': no such function\n",
                plot_fn);
        status = EXIT_USAGE;
        goto out;
      }
      opts.plot_fn = found;
    }
  }

  uint64_t total = 0;
  for (size_t i = 0; i < tr.count; i++) total += tr.fn[i].total;
  if (opts.progress)
    fprintf(stderr, "sim: %zu functions, %llu invocations, %zu policies\n",
            tr.count, (unsigned long long)total, npol);
  double t0 = mono_s();
  for (size_t k = 0; k < npol; k++) {
    rc = imp_sim_run(&tr, &pols[k], &opts, &res[nres]);
    if (rc != 0) {
      fprintf(stderr, "impulse sim: %s: %s\n", pols[k].name, strerror(-rc));
      status = EXIT_FAIL;
      goto out;
    }
    nres++;
  }
  if (opts.progress) fprintf(stderr, "sim: done in %.1f s\n", mono_s() - t0);

  size_t shown = hidden_base ? nres - 1 : nres;
  const imp_sim_result_t *b = base != SIZE_MAX ? &res[base] : NULL;
  if (tsv)
    print_tsv(stdout, res, shown, b);
  else
    print_table(stdout, res, shown, b);
  if (per_fn != NULL &&
      (rc = write_per_function(per_fn, &tr, res, shown)) != 0) {
    fprintf(stderr, "impulse sim: %s: %s\n", per_fn, strerror(-rc));
    status = EXIT_FAIL;
  }
  if (plot != NULL) {
    rc = write_svg(plot, &tr, (size_t)opts.plot_fn, &opts, res, shown);
    if (rc != 0) {
      fprintf(stderr, "impulse sim: %s: %s\n", plot, strerror(-rc));
      status = EXIT_FAIL;
    } else if (opts.progress) {
      fprintf(stderr, "sim: plot of function #%ld written to %s\n",
              opts.plot_fn, plot);
    }
  }
out:
  for (size_t k = 0; k < nres; k++) imp_sim_result_free(&res[k]);
  imp_sim_trace_free(&tr);
  return status;
}
