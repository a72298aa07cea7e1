/*
 * Metrics: histograms, the Prometheus text writer, the collector registry
 * and the server's own collectors. See metrics.h.
 */
#include "base/metrics.h"

#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "core/codec.h"

const double imp_metrics_duration_bounds[] = {
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
    0.1,    0.25,    0.5,    1,     2.5,    5,     10,   30,    60};
const unsigned imp_metrics_duration_nbounds =
    IMP_ARRAY_SIZE(imp_metrics_duration_bounds);

const double imp_metrics_store_bounds[] = {
    0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025,
    0.005,   0.01,     0.025,   0.05,   0.1,     0.25,   0.5,   1};
const unsigned imp_metrics_store_nbounds =
    IMP_ARRAY_SIZE(imp_metrics_store_bounds);

/* ---- histograms ---------------------------------------------------------- */

void imp_histogram_init(imp_histogram_t *h, const double *bounds,
                        unsigned nbounds) {
  memset(h, 0, sizeof *h);
  h->bounds = bounds;
  h->nbounds = nbounds > IMP_HIST_MAX_BOUNDS ? IMP_HIST_MAX_BOUNDS : nbounds;
}

void imp_histogram_observe(imp_histogram_t *h, double v) {
  unsigned i = 0;
  /* A linear scan: under 25 bounds and most values land early. */
  while (i < h->nbounds && v > h->bounds[i]) i++;
  h->counts[i]++;
  h->count++;
  h->sum += v;
}

/* ---- per function -------------------------------------------------------- */

const char *imp_metrics_outcome_name(unsigned slot, char *buf, size_t len) {
  const char *name = slot == 0 ? "ok"
                     : slot >= IMP_OUTCOMES - 1
                         ? "unknown"
                         : imp_error_code_name((int)slot);
  size_t i = 0;
  for (; name[i] && i + 1 < len; i++)
    buf[i] = (char)(name[i] >= 'A' && name[i] <= 'Z' ? name[i] + 32 : name[i]);
  if (len) buf[i] = '\0';
  return buf;
}

static unsigned outcome_slot(int code) {
  if (code >= 0 && code < IMP_OUTCOMES - 1) return (unsigned)code;
  return IMP_OUTCOMES - 1;
}

void imp_fn_metrics_observe(imp_fn_metrics_t *m, int code,
                            uint64_t started_ns) {
  m->outcomes[outcome_slot(code)]++;
  if (m->duration.bounds == NULL)
    imp_histogram_init(&m->duration, imp_metrics_duration_bounds,
                       imp_metrics_duration_nbounds);
  uint64_t now = imp_now_ns();
  if (started_ns && now >= started_ns)
    imp_histogram_observe(&m->duration, (double)(now - started_ns) / 1e9);
}

/* ---- text writer --------------------------------------------------------- */

void imp_metrics_writer_init(imp_metrics_writer_t *w, imp_buf_t *out) {
  w->out = out;
  w->failed = 0;
}

static void put(imp_metrics_writer_t *w, const char *s, size_t n) {
  if (w->failed) return;
  if (imp_buf_append(w->out, s, n) != 0) w->failed = 1;
}

static void puts_(imp_metrics_writer_t *w, const char *s) {
  put(w, s, strlen(s));
}

static void putf(imp_metrics_writer_t *w, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void putf(imp_metrics_writer_t *w, const char *fmt, ...) {
  char buf[128];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  put(w, buf, (size_t)n < sizeof buf ? (size_t)n : sizeof buf - 1);
}

/* A float as Prometheus reads it: integers exactly, others in the fewest
 * digits that round-trip. */
static void put_double(imp_metrics_writer_t *w, double v) {
  if (isnan(v)) {
    puts_(w, "NaN");
  } else if (isinf(v)) {
    puts_(w, v > 0 ? "+Inf" : "-Inf");
  } else if (v == floor(v) && fabs(v) < 9007199254740992.0) {
    putf(w, "%.0f", v);
  } else {
    char buf[40];
    snprintf(buf, sizeof buf, "%.15g", v);
    if (strtod(buf, NULL) != v) snprintf(buf, sizeof buf, "%.17g", v);
    puts_(w, buf);
  }
}

/* Writes `s` with backslash and newline escaped, and double quotes too
 * when `quotes` (label values; HELP text leaves them). */
static void escape(imp_metrics_writer_t *w, const char *s, int quotes) {
  const char *run = s;
  for (const char *p = s;; p++) {
    const char *esc = NULL;
    if (*p == '\\')
      esc = "\\\\";
    else if (*p == '"' && quotes)
      esc = "\\\"";
    else if (*p == '\n')
      esc = "\\n";
    else if (*p != '\0')
      continue;
    put(w, run, (size_t)(p - run));
    if (esc == NULL) return;
    puts_(w, esc);
    run = p + 1;
  }
}

void imp_metrics_escape_label(imp_metrics_writer_t *w, const char *value) {
  escape(w, value, 1);
}

/* HELP text: only backslash and newline are escaped. */
static void escape_help(imp_metrics_writer_t *w, const char *help) {
  escape(w, help, 0);
}

void imp_metrics_family(imp_metrics_writer_t *w, const char *name,
                        imp_metric_type_t type, const char *help) {
  static const char *const types[] = {"counter", "gauge", "histogram"};
  puts_(w, "# HELP ");
  puts_(w, name);
  puts_(w, " ");
  escape_help(w, help);
  puts_(w, "\n# TYPE ");
  puts_(w, name);
  puts_(w, " ");
  puts_(w, types[type]);
  puts_(w, "\n");
}

/* name{a="x",b="y"[,le="..."]} followed by a space. */
static void put_series(imp_metrics_writer_t *w, const char *name,
                       const char *suffix, const imp_label_t *labels,
                       size_t nlabels, const char *le) {
  puts_(w, name);
  if (suffix) puts_(w, suffix);
  if (nlabels || le) {
    puts_(w, "{");
    for (size_t i = 0; i < nlabels; i++) {
      if (i) puts_(w, ",");
      puts_(w, labels[i].name);
      puts_(w, "=\"");
      imp_metrics_escape_label(w, labels[i].value ? labels[i].value : "");
      puts_(w, "\"");
    }
    if (le) {
      if (nlabels) puts_(w, ",");
      puts_(w, "le=\"");
      puts_(w, le);
      puts_(w, "\"");
    }
    puts_(w, "}");
  }
  puts_(w, " ");
}

void imp_metrics_sample(imp_metrics_writer_t *w, const char *name,
                        const imp_label_t *labels, size_t nlabels, double v) {
  put_series(w, name, NULL, labels, nlabels, NULL);
  put_double(w, v);
  puts_(w, "\n");
}

void imp_metrics_sample_u64(imp_metrics_writer_t *w, const char *name,
                            const imp_label_t *labels, size_t nlabels,
                            uint64_t v) {
  put_series(w, name, NULL, labels, nlabels, NULL);
  putf(w, "%llu\n", (unsigned long long)v);
}

void imp_metrics_histogram(imp_metrics_writer_t *w, const char *name,
                           const imp_label_t *labels, size_t nlabels,
                           const imp_histogram_t *h) {
  uint64_t cum = 0;
  char le[40];
  for (unsigned i = 0; i < h->nbounds; i++) {
    cum += h->counts[i];
    double b = h->bounds[i];
    snprintf(le, sizeof le, "%.15g", b);
    if (strtod(le, NULL) != b) snprintf(le, sizeof le, "%.17g", b);
    put_series(w, name, "_bucket", labels, nlabels, le);
    putf(w, "%llu\n", (unsigned long long)cum);
  }
  /* +Inf is the count by definition, whatever the buckets say. */
  put_series(w, name, "_bucket", labels, nlabels, "+Inf");
  putf(w, "%llu\n", (unsigned long long)h->count);
  put_series(w, name, "_sum", labels, nlabels, NULL);
  put_double(w, h->sum);
  puts_(w, "\n");
  put_series(w, name, "_count", labels, nlabels, NULL);
  putf(w, "%llu\n", (unsigned long long)h->count);
}

/* ---- registry ------------------------------------------------------------ */

typedef struct collector_s {
  imp_metrics_collect_cb cb;
  void *arg;
} collector_t;

struct imp_metrics_s {
  collector_t *c;
  size_t n, cap;
  imp_histogram_t store_writes;
};

imp_metrics_t *imp_metrics_new(void) {
  imp_metrics_t *m = calloc(1, sizeof *m);
  if (m == NULL) return NULL;
  imp_histogram_init(&m->store_writes, imp_metrics_store_bounds,
                     imp_metrics_store_nbounds);
  return m;
}

void imp_metrics_free(imp_metrics_t *m) {
  if (m == NULL) return;
  free(m->c);
  free(m);
}

int imp_metrics_register(imp_metrics_t *m, imp_metrics_collect_cb cb,
                         void *arg) {
  if (m->n == m->cap) {
    size_t cap = m->cap ? m->cap * 2 : 8;
    collector_t *c = realloc(m->c, cap * sizeof *c);
    if (c == NULL) return -ENOMEM;
    m->c = c;
    m->cap = cap;
  }
  m->c[m->n].cb = cb;
  m->c[m->n].arg = arg;
  m->n++;
  return 0;
}

void imp_metrics_unregister(imp_metrics_t *m, imp_metrics_collect_cb cb,
                            void *arg) {
  for (size_t i = 0; i < m->n; i++) {
    if (m->c[i].cb != cb || m->c[i].arg != arg) continue;
    memmove(&m->c[i], &m->c[i + 1], (m->n - i - 1) * sizeof m->c[0]);
    m->n--;
    return;
  }
}

int imp_metrics_render(imp_metrics_t *m, imp_buf_t *out) {
  imp_metrics_writer_t w;
  imp_metrics_writer_init(&w, out);
  for (size_t i = 0; i < m->n && !w.failed; i++) m->c[i].cb(&w, m->c[i].arg);
  return w.failed ? -ENOMEM : 0;
}

imp_histogram_t *imp_metrics_store_writes(imp_metrics_t *m) {
  return &m->store_writes;
}
