/*
 * Function logs: what a function's instances write (stdout, stderr,
 * impulse_log), kept per function in a bounded in-memory ring, apart from
 * the server's own log.
 *
 * Each function's log holds at most `ring_bytes` (entries and their
 * bookkeeping counted); a new entry that does not fit pushes the oldest
 * out (dropped, reason "ring"). Before that, a token bucket per function
 * admits `rate_bytes` per second with a burst of IMP_FNLOG_BURST_S seconds
 * of it; a line beyond it is dropped (reason "rate") and counted. A line is
 * at most IMP_FNLOG_LINE_MAX bytes: the reader cuts longer ones and marks
 * them cut.
 *
 * Pure bookkeeping: no I/O, time passed in. Everything runs on the loop
 * thread.
 */
#ifndef IMP_FNLOG_H
#define IMP_FNLOG_H

#include <stddef.h>
#include <stdint.h>

#include "base/metrics.h"

#define IMP_FNLOG_LINE_MAX 4096u /* bytes of one entry; longer lines cut */
#define IMP_FNLOG_BURST_S 4u     /* the bucket holds this many seconds */
#define IMP_FNLOG_DEFAULT_RING (1u << 20)   /* --log-ring-bytes */
#define IMP_FNLOG_DEFAULT_RATE (256u << 10) /* --log-rate-bytes */

typedef enum imp_fnlog_stream_e {
  IMP_FNLOG_STDOUT = 0,
  IMP_FNLOG_STDERR,
  IMP_FNLOG_LOG /* impulse_log(), with a level */
} imp_fnlog_stream_t;

/* "stdout", "stderr" or "log". */
const char *imp_fnlog_stream_name(int stream);

/* One line as stored. */
typedef struct imp_fnlog_entry_s {
  struct imp_fnlog_entry_s *next; /* newer */
  uint64_t seq;                   /* 1, 2, ... per function */
  uint64_t time_ms;               /* wall clock */
  uint64_t instance;
  uint32_t version;
  uint32_t len;
  uint8_t stream; /* imp_fnlog_stream_t */
  uint8_t level;  /* IMPULSE_LOG_*, stream log only */
  uint8_t cut;    /* longer than IMP_FNLOG_LINE_MAX, cut */
  char data[];    /* len bytes, raw */
} imp_fnlog_entry_t;

/* The log of one function. */
typedef struct imp_fnlog_s {
  char name[65];
  imp_fnlog_entry_t *head, *tail; /* oldest, newest */
  size_t bytes;                   /* counted against the ring */
  uint64_t next_seq;
  double tokens; /* rate bucket, bytes */
  uint64_t refill_ms;
  /* Counters for /metrics. */
  uint64_t lines, line_bytes;      /* accepted */
  uint64_t rate_lines, rate_bytes; /* dropped: over the rate */
  uint64_t ring_lines, ring_bytes; /* dropped: pushed out */
  uint64_t cut_lines;              /* cut at IMP_FNLOG_LINE_MAX */
  struct imp_fnlog_s *next_log;    /* the table's list */
} imp_fnlog_t;

/* The logs of every function. */
typedef struct imp_fnlogs_s {
  size_t ring_bytes; /* per function */
  size_t rate_bytes; /* per function and second; 0 = no limit */
  imp_fnlog_t *logs; /* list, in creation order reversed */
  unsigned count;
} imp_fnlogs_t;

/* An empty table with these limits. */
void imp_fnlogs_init(imp_fnlogs_t *logs, size_t ring_bytes, size_t rate_bytes);
/* Frees every log and entry. */
void imp_fnlogs_free(imp_fnlogs_t *logs);

/* The log of `name`; with `create`, made when missing (NULL only when out
 * of memory). Borrowed: lives as long as the table. */
imp_fnlog_t *imp_fnlogs_get(imp_fnlogs_t *logs, const char *name, int create);

/* Adds a line (`data`, `len` bytes, copied; at most IMP_FNLOG_LINE_MAX)
 * at monotonic time `now_ms` and wall time `wall_ms`. Returns 0 when
 * stored, -EAGAIN when dropped over the rate, -ENOMEM without memory. */
int imp_fnlog_append(imp_fnlogs_t *logs, imp_fnlog_t *log, uint64_t now_ms,
                     uint64_t wall_ms, uint64_t instance, uint32_t version,
                     int stream, int level, const char *data, size_t len,
                     int cut);

/* Lines the function lost so far (rate and ring). */
uint64_t imp_fnlog_dropped(const imp_fnlog_t *log);

/* A /metrics collector (imp_metrics_collect_cb); `arg` is the table. */
void imp_fnlogs_collect(imp_metrics_writer_t *w, void *arg);

#endif
