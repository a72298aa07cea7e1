/*
 * Pipelining to instances and record batches: when a function's handler is
 * fast, calls are sent to its instances beyond their concurrency (queued
 * inside the worker) and a trigger may put several records in one call.
 * Pure logic, no clock: the caller feeds each call's service time.
 *
 * A call to a fast handler costs less than the round trip between the
 * server and the worker, so sending only when a handler is free leaves
 * instances idle half the time. While a function's calls complete quickly
 * (the least service time of each window of IMP_FAST_WINDOW calls below
 * IMP_FAST_ON_US), each instance may hold IMP_PIPELINE_EXTRA(concurrency)
 * calls queued in the worker beyond its concurrency; above IMP_FAST_OFF_US
 * the server goes back to sending only to free handlers, so a slow
 * function's callers wait in the server's queue, under their deadline, and
 * never behind a slow call inside a worker. The least of a window, not a
 * mean: a busy loop or the worker's own queue makes every mean look slow,
 * and turning pipelining off then lowers throughput and lengthens the queue
 * further (a collapse seen under a trigger's load).
 */
#ifndef IMP_PIPELINE_H
#define IMP_PIPELINE_H

#include <stdint.h>

#define IMP_PIPELINE_EXTRA(conc) ((conc) > 16 ? (conc) : 16u)
#define IMP_FAST_ON_US 500
#define IMP_FAST_OFF_US 2000
#define IMP_FAST_WINDOW 32

/* Record batches: at most IMP_BATCH_MAX records in one call, about
 * IMP_BATCH_US of handler time together. */
#define IMP_BATCH_MAX 64u
#define IMP_BATCH_US 1000u

typedef struct imp_pipe_s {
  int fast;            /* pipelining on */
  uint64_t least_us;   /* least service time of the last full window */
  uint64_t win_min_us; /* least in the current window */
  unsigned win_n;      /* calls in the current window */
} imp_pipe_t;

/* Feeds one call's service time in microseconds (its latency divided by
 * the calls that were queued ahead of it in the worker). Returns 1 when
 * `fast` changed with this call (a window closed across a threshold), else
 * 0. */
int imp_pipe_observe(imp_pipe_t *p, uint64_t us);

/* Calls an instance of `concurrency` may hold queued beyond it now: 0
 * unless fast. */
uint32_t imp_pipe_extra(const imp_pipe_t *p, uint32_t concurrency);

/* Records one call may carry now: 1 unless fast, then enough for about
 * IMP_BATCH_US of handler time, at most IMP_BATCH_MAX. */
unsigned imp_pipe_batch(const imp_pipe_t *p);

#endif
