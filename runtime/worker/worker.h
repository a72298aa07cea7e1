/*
 * Worker process (`impulse worker`): the function runtime. Spawned by the
 * server only. See worker.c for the protocol it speaks.
 */
#ifndef IMP_WORKER_H
#define IMP_WORKER_H

#include "core/codec.h" /* IMP_WORKER_EXIT_* */

/* Entry point of `impulse worker ...` (argv[0] is "worker"). */
int imp_worker_main(int argc, char **argv);

#endif
