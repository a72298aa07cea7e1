/*
 * Function logs (fnlog.h): a ring of entries per function, a rate bucket,
 * and their counters for /metrics.
 */
#include "base/fnlog.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/common.h"

/* What an entry costs the ring beyond its bytes: the struct and the
 * allocator's header, so that many tiny lines are bounded too. */
#define ENTRY_COST(len) (sizeof(imp_fnlog_entry_t) + 16u + (len))

const char *imp_fnlog_stream_name(int stream) {
  switch (stream) {
    case IMP_FNLOG_STDOUT: return "stdout";
    case IMP_FNLOG_STDERR: return "stderr";
    case IMP_FNLOG_LOG: return "log";
    default: return "unknown";
  }
}

void imp_fnlogs_init(imp_fnlogs_t *logs, size_t ring_bytes, size_t rate_bytes) {
  memset(logs, 0, sizeof *logs);
  logs->ring_bytes = ring_bytes;
  logs->rate_bytes = rate_bytes;
}

static void log_free(imp_fnlog_t *log) {
  imp_fnlog_entry_t *e = log->head;
  while (e != NULL) {
    imp_fnlog_entry_t *next = e->next;
    free(e);
    e = next;
  }
  free(log);
}

void imp_fnlogs_free(imp_fnlogs_t *logs) {
  imp_fnlog_t *log = logs->logs;
  while (log != NULL) {
    imp_fnlog_t *next = log->next_log;
    log_free(log);
    log = next;
  }
  logs->logs = NULL;
  logs->count = 0;
}

imp_fnlog_t *imp_fnlogs_get(imp_fnlogs_t *logs, const char *name, int create) {
  for (imp_fnlog_t *log = logs->logs; log != NULL; log = log->next_log)
    if (strcmp(log->name, name) == 0) return log;
  if (!create || strlen(name) >= sizeof logs->logs->name) return NULL;
  imp_fnlog_t *log = calloc(1, sizeof *log);
  if (log == NULL) return NULL;
  snprintf(log->name, sizeof log->name, "%s", name);
  log->next_seq = 1;
  log->tokens = -1; /* full on first use */
  log->next_log = logs->logs;
  logs->logs = log;
  logs->count++;
  return log;
}

/* Takes `cost` bytes from the bucket, refilled for the time since the
 * last refill: 1 when admitted, 0 when over the rate. */
static int rate_admit(const imp_fnlogs_t *logs, imp_fnlog_t *log,
                      uint64_t now_ms, size_t cost) {
  if (logs->rate_bytes == 0) return 1;
  double burst = (double)logs->rate_bytes * IMP_FNLOG_BURST_S;
  if (log->tokens < 0) {
    log->tokens = burst;
  } else if (now_ms > log->refill_ms) {
    log->tokens +=
        (double)(now_ms - log->refill_ms) * (double)logs->rate_bytes / 1000.0;
    if (log->tokens > burst) log->tokens = burst;
  }
  log->refill_ms = now_ms;
  if (log->tokens < (double)cost) return 0;
  log->tokens -= (double)cost;
  return 1;
}

int imp_fnlog_append(imp_fnlogs_t *logs, imp_fnlog_t *log, uint64_t now_ms,
                     uint64_t wall_ms, uint64_t instance, uint32_t version,
                     int stream, int level, const char *data, size_t len,
                     int cut) {
  if (len > IMP_FNLOG_LINE_MAX) {
    len = IMP_FNLOG_LINE_MAX;
    cut = 1;
  }
  /* An empty line still costs a byte, so that a flood of them is bounded
   * by the rate too. */
  if (!rate_admit(logs, log, now_ms, len ? len : 1)) {
    log->rate_lines++;
    log->rate_bytes += len;
    return -EAGAIN;
  }
  size_t cost = ENTRY_COST(len);
  if (cost > logs->ring_bytes) { /* a ring smaller than one line */
    log->ring_lines++;
    log->ring_bytes += len;
    return 0;
  }
  while (log->head != NULL && log->bytes + cost > logs->ring_bytes) {
    imp_fnlog_entry_t *old = log->head;
    log->head = old->next;
    if (log->head == NULL) log->tail = NULL;
    log->bytes -= ENTRY_COST(old->len);
    log->ring_lines++;
    log->ring_bytes += old->len;
    free(old);
  }
  imp_fnlog_entry_t *e = malloc(sizeof *e + len);
  if (e == NULL) return -ENOMEM;
  e->next = NULL;
  e->seq = log->next_seq++;
  e->time_ms = wall_ms;
  e->instance = instance;
  e->version = version;
  e->len = (uint32_t)len;
  e->stream = (uint8_t)stream;
  e->level = (uint8_t)(level < 0 ? 0 : level > 3 ? 3 : level);
  e->cut = cut ? 1 : 0;
  if (len) memcpy(e->data, data, len);
  if (log->tail != NULL)
    log->tail->next = e;
  else
    log->head = e;
  log->tail = e;
  log->bytes += cost;
  log->lines++;
  log->line_bytes += len;
  if (cut) log->cut_lines++;
  return 0;
}

uint64_t imp_fnlog_dropped(const imp_fnlog_t *log) {
  return log->rate_lines + log->ring_lines;
}

void imp_fnlogs_collect(imp_metrics_writer_t *w, void *arg) {
  imp_fnlogs_t *logs = arg;
  imp_fnlog_t *log;
  imp_metrics_family(w, "impulse_function_log_lines_total", IMP_METRIC_COUNTER,
                     "Lines of a function's stdout, stderr and impulse_log "
                     "kept in its log.");
  for (log = logs->logs; log != NULL; log = log->next_log) {
    imp_label_t l[] = {{"function", log->name}};
    imp_metrics_sample_u64(w, "impulse_function_log_lines_total", l, 1,
                           log->lines);
  }
  imp_metrics_family(w, "impulse_function_log_bytes_total", IMP_METRIC_COUNTER,
                     "Bytes of the lines kept in a function's log.");
  for (log = logs->logs; log != NULL; log = log->next_log) {
    imp_label_t l[] = {{"function", log->name}};
    imp_metrics_sample_u64(w, "impulse_function_log_bytes_total", l, 1,
                           log->line_bytes);
  }
  imp_metrics_family(w, "impulse_function_log_dropped_total",
                     IMP_METRIC_COUNTER,
                     "Lines of a function's log lost: over its rate "
                     "(reason=rate) or pushed out of its ring by newer "
                     "ones (reason=ring).");
  for (log = logs->logs; log != NULL; log = log->next_log) {
    imp_label_t rate[] = {{"function", log->name}, {"reason", "rate"}};
    imp_label_t ring[] = {{"function", log->name}, {"reason", "ring"}};
    imp_metrics_sample_u64(w, "impulse_function_log_dropped_total", rate, 2,
                           log->rate_lines);
    imp_metrics_sample_u64(w, "impulse_function_log_dropped_total", ring, 2,
                           log->ring_lines);
  }
  imp_metrics_family(w, "impulse_function_log_dropped_bytes_total",
                     IMP_METRIC_COUNTER,
                     "Bytes of the lines counted in "
                     "impulse_function_log_dropped_total.");
  for (log = logs->logs; log != NULL; log = log->next_log) {
    imp_label_t rate[] = {{"function", log->name}, {"reason", "rate"}};
    imp_label_t ring[] = {{"function", log->name}, {"reason", "ring"}};
    imp_metrics_sample_u64(w, "impulse_function_log_dropped_bytes_total", rate,
                           2, log->rate_bytes);
    imp_metrics_sample_u64(w, "impulse_function_log_dropped_bytes_total", ring,
                           2, log->ring_bytes);
  }
  imp_metrics_family(w, "impulse_function_log_cut_total", IMP_METRIC_COUNTER,
                     "Lines longer than 4096 bytes, kept cut.");
  for (log = logs->logs; log != NULL; log = log->next_log) {
    imp_label_t l[] = {{"function", log->name}};
    imp_metrics_sample_u64(w, "impulse_function_log_cut_total", l, 1,
                           log->cut_lines);
  }
}
