/*
 * Loading a function into the worker (load.c).
 */
#ifndef IMP_WORKER_LOAD_H
#define IMP_WORKER_LOAD_H

#include "worker/context.h"

/* Handles a load request read at `started_ns`. Called only when no
 * invocation is outstanding. I/O thread only. */
void imp_wk_load(imp_worker_t *worker, uint64_t id,
                 const Impulse__LoadRequest *load, uint64_t started_ns);
/* Calls fini (if any), unloads the object and clears `fn`. */
void imp_wk_function_close(function_t *fn);

#endif
