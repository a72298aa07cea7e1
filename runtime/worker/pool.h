/*
 * The handler threads of a function with concurrency > 1 (pool.c).
 */
#ifndef IMP_WORKER_POOL_H
#define IMP_WORKER_POOL_H

#include "worker/context.h"

/* Starts `n` handler threads. Returns 0 or a negative errno (then none are
 * left running). I/O thread only. */
int imp_wk_pool_start(imp_worker_t *worker, unsigned n);
/* Stops and joins the handler threads; queued jobs (none in normal use)
 * are dropped. I/O thread only. */
void imp_wk_pool_stop(imp_worker_t *worker);
/* Queues the jobs that imp_wk_invoke() gathered from one read, with one
 * lock round trip and at most one signal. I/O thread only. */
void imp_wk_jobs_submit(imp_worker_t *worker);
/* Jobs queued or running in the pool. */
unsigned imp_wk_outstanding(imp_worker_t *worker);
/* Most jobs that may wait before the I/O thread stops reading. */
unsigned imp_wk_queue_limit(const imp_worker_t *worker);

#endif
