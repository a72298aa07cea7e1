/*
 * The worker's I/O thread (conn.c).
 */
#ifndef IMP_WORKER_CONN_H
#define IMP_WORKER_CONN_H

#include "worker/context.h"

/* The I/O loop: serves connections until SIGTERM or until none comes
 * within the grace period. Returns the exit code. */
int imp_wk_run(imp_worker_t *worker);

#endif
