/*
 * Metrics: histograms, the Prometheus text writer, the collector registry
 * and the server's own collectors. See metrics.h.
 */
#include "server/metrics.h"

#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "server/server.h"

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

/* ---- histograms ------------------------------------------------------------
 */

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

/* ---- per function -----------------------------------------------------------
 */

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

static void call_observe(imp_call_t *call, int code) {
  imp_function_t *fn = call->function;
  if (fn == NULL) return;
  imp_fn_metrics_t *m = &fn->metrics;
  m->outcomes[outcome_slot(code)]++;
  if (m->duration.bounds == NULL)
    imp_histogram_init(&m->duration, imp_metrics_duration_bounds,
                       imp_metrics_duration_nbounds);
  uint64_t now = imp_now_ns();
  if (call->started_ns && now >= call->started_ns)
    imp_histogram_observe(&m->duration, (double)(now - call->started_ns) / 1e9);
}

void imp_metrics_call_outcome(struct imp_call_s *call, int code) {
  call_observe(call, code);
}

void imp_metrics_call_failed(struct imp_call_s *call, int code) {
  call_observe(call, code);
}

void imp_metrics_call_answered(struct imp_call_s *call, const char *rest,
                               size_t restlen) {
  call_observe(call, imp_metrics_answer_code(rest, restlen));
}

int imp_metrics_answer_code(const char *rest, size_t restlen) {
  const unsigned char *p = (const unsigned char *)rest;
  const unsigned char *end = p + restlen;
  if (restlen == 0) return IMPULSE__ERROR_CODE__INTERNAL;
  if (p[0] == IMP_TAG_INVOKE_OK) return 0;
  if (p[0] != IMP_TAG_ERROR) return IMPULSE__ERROR_CODE__INTERNAL;
  p++;
  uint64_t len;
  if (imp_varint_read(&p, end, &len) != 0 || len > (uint64_t)(end - p))
    return IMPULSE__ERROR_CODE__INTERNAL;
  end = p + len;
  /* Error { required int32 code = 1; optional string message = 2; } */
  while (p < end) {
    uint64_t key, v;
    if (imp_varint_read(&p, end, &key) != 0) break;
    if (key == 0x08) {
      if (imp_varint_read(&p, end, &v) != 0) break;
      int32_t code = (int32_t)(uint32_t)v;
      return code;
    }
    if ((key & 7) == 0) {
      if (imp_varint_read(&p, end, &v) != 0) break;
    } else if ((key & 7) == 2) {
      if (imp_varint_read(&p, end, &v) != 0 || v > (uint64_t)(end - p)) break;
      p += v;
    } else {
      break;
    }
  }
  return IMPULSE__ERROR_CODE__INTERNAL;
}

/* ---- text writer ------------------------------------------------------------
 */

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

void imp_metrics_escape_label(imp_metrics_writer_t *w, const char *value) {
  const char *run = value;
  for (const char *p = value;; p++) {
    const char *esc = NULL;
    if (*p == '\\')
      esc = "\\\\";
    else if (*p == '"')
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

/* HELP text: only backslash and newline are escaped. */
static void escape_help(imp_metrics_writer_t *w, const char *help) {
  const char *run = help;
  for (const char *p = help;; p++) {
    const char *esc = NULL;
    if (*p == '\\')
      esc = "\\\\";
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

/* ---- registry ---------------------------------------------------------------
 */

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

/* ---- the server's families
 * --------------------------------------------------- */

static void collect_functions(imp_metrics_writer_t *w, void *arg) {
  imp_server_t *server = arg;
  imp_function_t *const end = &server->functions;
  imp_function_t *fn;
#define EACH_FN                                               \
  for (fn = server->functions.next; fn != end; fn = fn->next) \
    if (!fn->deleted)

  imp_metrics_family(w, "impulse_invocations_total", IMP_METRIC_COUNTER,
                     "Calls answered, by function and outcome (ok, or the "
                     "error code in lower case).");
  EACH_FN {
    for (unsigned s = 0; s < IMP_OUTCOMES; s++) {
      if (s != 0 && fn->metrics.outcomes[s] == 0) continue;
      char outcome[40];
      imp_label_t l[2] = {
          {"function", fn->name},
          {"outcome", imp_metrics_outcome_name(s, outcome, sizeof outcome)}};
      imp_metrics_sample_u64(w, "impulse_invocations_total", l, 2,
                             fn->metrics.outcomes[s]);
    }
  }

  imp_metrics_family(w, "impulse_invocation_duration_seconds",
                     IMP_METRIC_HISTOGRAM,
                     "Time from a call's arrival to its answer, queueing "
                     "included, every outcome.");
  EACH_FN {
    imp_label_t l[1] = {{"function", fn->name}};
    imp_histogram_t empty;
    const imp_histogram_t *h = &fn->metrics.duration;
    if (h->bounds == NULL) {
      imp_histogram_init(&empty, imp_metrics_duration_bounds,
                         imp_metrics_duration_nbounds);
      h = &empty;
    }
    imp_metrics_histogram(w, "impulse_invocation_duration_seconds", l, 1, h);
  }

  imp_metrics_family(w, "impulse_in_flight", IMP_METRIC_GAUGE,
                     "Calls sent to instances and not answered yet.");
  EACH_FN {
    imp_label_t l[1] = {{"function", fn->name}};
    size_t queued = fn->dispatch.queued;
    double running =
        fn->in_flight > queued ? (double)(fn->in_flight - queued) : 0.0;
    imp_metrics_sample(w, "impulse_in_flight", l, 1, running);
  }

  imp_metrics_family(w, "impulse_queue_length", IMP_METRIC_GAUGE,
                     "Calls waiting for an instance with a free slot.");
  EACH_FN {
    imp_label_t l[1] = {{"function", fn->name}};
    imp_metrics_sample(w, "impulse_queue_length", l, 1,
                       (double)fn->dispatch.queued);
  }

  imp_metrics_family(w, "impulse_cold_starts_total", IMP_METRIC_COUNTER,
                     "Instances started because calls were waiting.");
  EACH_FN {
    imp_label_t l[1] = {{"function", fn->name}};
    imp_metrics_sample_u64(w, "impulse_cold_starts_total", l, 1,
                           fn->cold_starts);
  }

  imp_metrics_family(w, "impulse_instances", IMP_METRIC_GAUGE,
                     "Instances attached to a function, by state.");
  EACH_FN {
    unsigned by_state[IMP_INST_DEAD + 1] = {0};
    for (size_t i = 0; i < fn->dispatch.count; i++) {
      imp_instance_t *inst =
          IMP_CONTAINER_OF(fn->dispatch.inst[i], imp_instance_t, d);
      if ((unsigned)inst->state <= IMP_INST_DEAD) by_state[inst->state]++;
    }
    for (unsigned s = 0; s <= IMP_INST_DEAD; s++) {
      if (by_state[s] == 0) continue;
      imp_label_t l[2] = {{"function", fn->name},
                          {"state", imp_instance_state_name(s)}};
      imp_metrics_sample(w, "impulse_instances", l, 2, by_state[s]);
    }
  }

  imp_metrics_family(w, "impulse_warm_starts_total", IMP_METRIC_COUNTER,
                     "Instances started from the warm pool (a Load into a "
                     "generic worker, no process start).");
  EACH_FN {
    imp_label_t l[1] = {{"function", fn->name}};
    imp_metrics_sample_u64(w, "impulse_warm_starts_total", l, 1,
                           fn->warm_starts);
  }

  imp_metrics_family(w, "impulse_idempotent_hits_total", IMP_METRIC_COUNTER,
                     "Calls answered from the idempotency store without "
                     "running the function.");
  EACH_FN {
    imp_label_t l[1] = {{"function", fn->name}};
    imp_metrics_sample_u64(w, "impulse_idempotent_hits_total", l, 1,
                           fn->idempotent_hits);
  }

  /* The autoscaler's last decision; a function whose autoscaler has not
   * started has no sample. */
  imp_metrics_family(w, "impulse_instances_desired", IMP_METRIC_GAUGE,
                     "Instances the autoscaler wants for the function now.");
  EACH_FN {
    if (!fn->sc.on) continue;
    imp_label_t l[1] = {{"function", fn->name}};
    imp_metrics_sample(w, "impulse_instances_desired", l, 1, fn->sc.desired);
  }

  imp_metrics_family(w, "impulse_forecast_arrivals_per_minute",
                     IMP_METRIC_GAUGE,
                     "Arrivals per minute the autoscaler forecasts one lead "
                     "time ahead.");
  EACH_FN {
    if (!fn->sc.on) continue;
    imp_label_t l[1] = {{"function", fn->name}};
    imp_metrics_sample(w, "impulse_forecast_arrivals_per_minute", l, 1,
                       fn->sc.decision.forecast_per_min);
  }

  imp_metrics_family(w, "impulse_autoscaler_panic", IMP_METRIC_GAUGE,
                     "1 while the function's autoscaler is in panic mode, "
                     "else 0.");
  EACH_FN {
    if (!fn->sc.on) continue;
    imp_label_t l[1] = {{"function", fn->name}};
    imp_metrics_sample(w, "impulse_autoscaler_panic", l, 1,
                       fn->sc.decision.panic ? 1 : 0);
  }

  imp_metrics_family(w, "impulse_upgrade_state", IMP_METRIC_GAUGE,
                     "Rolling upgrade of the function: 0 none running, 1 "
                     "running, 2 rolling back.");
  EACH_FN {
    imp_label_t l[1] = {{"function", fn->name}};
    imp_metrics_sample(w, "impulse_upgrade_state", l, 1,
                       fn->upg == NULL                     ? 0
                       : fn->upg->state == IMP_UPG_RUNNING ? 1
                                                           : 2);
  }
  imp_metrics_family(w, "impulse_upgrade_versions", IMP_METRIC_GAUGE,
                     "Serving instances per version during a rolling "
                     "upgrade.");
  EACH_FN {
    if (fn->upg == NULL) continue;
    uint32_t vs[2] = {fn->upg->from, fn->upg->to};
    for (int k = 0; k < 2; k++) {
      unsigned n = 0;
      for (size_t i = 0; i < fn->dispatch.count; i++)
        if (fn->dispatch.inst[i]->ready &&
            fn->dispatch.inst[i]->version == vs[k])
          n++;
      char vb[16];
      snprintf(vb, sizeof vb, "%u", vs[k]);
      imp_label_t l[2] = {{"function", fn->name}, {"version", vb}};
      imp_metrics_sample(w, "impulse_upgrade_versions", l, 2, n);
    }
  }
#undef EACH_FN

  unsigned warm = 0;
  for (imp_instance_t *i = server->instances.next; i != &server->instances;
       i = i->next)
    if (i->state == IMP_INST_GENERIC && i->function == NULL &&
        !i->validate_only)
      warm++;
  imp_metrics_family(w, "impulse_warm_pool_instances", IMP_METRIC_GAUGE,
                     "Generic workers started and waiting for a function.");
  imp_metrics_sample(w, "impulse_warm_pool_instances", NULL, 0, warm);

  /* Sized once a second from the rate of instance starts, never below
   * --warm-pool (before the first second: --warm-pool). */
  imp_metrics_family(w, "impulse_warm_pool_target", IMP_METRIC_GAUGE,
                     "Generic workers the server keeps started.");
  imp_metrics_sample(w, "impulse_warm_pool_target", NULL, 0,
                     server->pool_target > server->cfg.warm_pool
                         ? server->pool_target
                         : server->cfg.warm_pool);
}

/* Trigger families, one pass over the triggers per family so that each
 * family's samples stay together. */
typedef struct trig_pass_s {
  imp_metrics_writer_t *w;
  int which;
} trig_pass_t;

enum {
  TP_LAG,
  TP_IN_FLIGHT,
  TP_RECEIVED,
  TP_HANDLED,
  TP_RETRIES,
  TP_DLQ,
  TP_COMMITTED,
  TP_BATCHES,
  TP_BATCHED,
  TP_COUNT
};

static const struct {
  const char *name;
  imp_metric_type_t type;
  const char *help;
} trig_families[TP_COUNT] = {
    {"impulse_trigger_lag", IMP_METRIC_GAUGE,
     "Records behind the committed offset, over the partitions this server "
     "holds."},
    {"impulse_trigger_in_flight", IMP_METRIC_GAUGE,
     "Invocations of the trigger running or awaiting their reply."},
    {"impulse_trigger_received_total", IMP_METRIC_COUNTER,
     "Records consumed by the trigger."},
    {"impulse_trigger_handled_total", IMP_METRIC_COUNTER,
     "Records whose invocation succeeded."},
    {"impulse_trigger_retries_total", IMP_METRIC_COUNTER,
     "Retry attempts made for failed invocations."},
    {"impulse_trigger_dead_lettered_total", IMP_METRIC_COUNTER,
     "Records written to the dead-letter topic."},
    {"impulse_trigger_committed_offset", IMP_METRIC_GAUGE,
     "Offset committed for each partition this server holds."},
    {"impulse_trigger_batches_total", IMP_METRIC_COUNTER,
     "Record batches sent to the function (one call each)."},
    {"impulse_trigger_batched_records_total", IMP_METRIC_COUNTER,
     "Records those batches carried."},
};

static void trig_sample(void *arg, const Impulse__TriggerInfo *info) {
  trig_pass_t *tp = arg;
  const char *name = trig_families[tp->which].name;
  imp_label_t l[2] = {{"trigger", info->spec->name}, {"partition", NULL}};
  int64_t lag = 0;
  switch (tp->which) {
    case TP_LAG:
      for (size_t i = 0; i < info->n_partitions; i++)
        lag += info->partitions[i]->lag;
      imp_metrics_sample(tp->w, name, l, 1, (double)lag);
      break;
    case TP_IN_FLIGHT:
      imp_metrics_sample(tp->w, name, l, 1, info->in_flight);
      break;
    case TP_RECEIVED:
      imp_metrics_sample_u64(tp->w, name, l, 1, info->received);
      break;
    case TP_HANDLED:
      imp_metrics_sample_u64(tp->w, name, l, 1, info->handled);
      break;
    case TP_RETRIES:
      imp_metrics_sample_u64(tp->w, name, l, 1, info->retried);
      break;
    case TP_DLQ:
      imp_metrics_sample_u64(tp->w, name, l, 1, info->dead_lettered);
      break;
    case TP_BATCHES:
      imp_metrics_sample_u64(tp->w, name, l, 1, info->batches);
      break;
    case TP_BATCHED:
      imp_metrics_sample_u64(tp->w, name, l, 1, info->batched);
      break;
    case TP_COMMITTED:
      for (size_t i = 0; i < info->n_partitions; i++) {
        const Impulse__PartitionInfo *p = info->partitions[i];
        if (p->committed < 0) continue; /* nothing committed yet */
        char part[16];
        snprintf(part, sizeof part, "%d", (int)p->partition);
        l[1].value = part;
        imp_metrics_sample(tp->w, name, l, 2, (double)p->committed);
      }
      break;
  }
}

static void collect_triggers(imp_metrics_writer_t *w, void *arg) {
  imp_server_t *server = arg;
  for (int f = 0; f < TP_COUNT; f++) {
    imp_metrics_family(w, trig_families[f].name, trig_families[f].type,
                       trig_families[f].help);
    trig_pass_t tp = {w, f};
    if (server->triggers)
      imp_triggers_foreach(server->triggers, trig_sample, &tp);
  }
}

static void collect_process(imp_metrics_writer_t *w, void *arg) {
  imp_server_t *server = arg;
  imp_metrics_family(w, "impulse_store_write_seconds", IMP_METRIC_HISTOGRAM,
                     "Time of state store (RocksDB) write batches, synced "
                     "or not.");
  if (server->metrics)
    imp_metrics_histogram(w, "impulse_store_write_seconds", NULL, 0,
                          &server->metrics->store_writes);
  imp_metrics_family(w, "impulse_uptime_seconds", IMP_METRIC_GAUGE,
                     "Seconds since the server started.");
  imp_metrics_sample(w, "impulse_uptime_seconds", NULL, 0,
                     (double)(imp_now_ms() - server->started_ms) / 1000.0);
  imp_metrics_family(w, "impulse_build_info", IMP_METRIC_GAUGE,
                     "Always 1; the version of the running server is a "
                     "label.");
  imp_label_t l[1] = {{"version", IMPULSE_VERSION}};
  imp_metrics_sample(w, "impulse_build_info", l, 1, 1);
}

int imp_metrics_register_server(imp_metrics_t *m, struct imp_server_s *server) {
  int rc = imp_metrics_register(m, collect_functions, server);
  if (rc == 0) rc = imp_metrics_register(m, collect_triggers, server);
  if (rc == 0) rc = imp_metrics_register(m, collect_process, server);
  return rc;
}
