/*
 * Worker process (`impulse worker`): the function runtime. Spawned by the
 * server only. See runtime/worker.c for the protocol it speaks.
 */
#ifndef IMP_WORKER_H
#define IMP_WORKER_H

/* Exit codes a worker uses so the server can tell why it ended. */
#define IMP_WORKER_EXIT_OK 0
#define IMP_WORKER_EXIT_USAGE 2
#define IMP_WORKER_EXIT_OOM 3    /* memory limit exceeded */
#define IMP_WORKER_EXIT_ORPHAN 4 /* no server connection within the grace */

/* Entry point of `impulse worker ...` (argv[0] is "worker"). */
int imp_worker_main(int argc, char **argv);

#endif
