/*
 * Crash handling of the worker (crash.c): signals and the state they
 * share with the rest of the worker.
 */
#ifndef IMP_WORKER_CRASH_H
#define IMP_WORKER_CRASH_H

#include "worker/context.h"

/* Installs the handlers of fatal signals, SIGTERM/SIGINT and SIGPIPE. */
void imp_wk_signals_install(void);
/* Tells the SIGTERM handler which eventfd wakes the I/O thread (-1: none). */
void imp_wk_wake_fd_set(int fd);

/* Gives the calling thread an alternate signal stack so a stack overflow
 * in a handler still reaches the fatal-signal handler. Returns the stack
 * to free with imp_wk_altstack_free(), or NULL (then crashes on overflow
 * are plain). */
void *imp_wk_altstack_install(void);
void imp_wk_altstack_free(void *stack);

/*
 * Marks a call into the function as running so SIGTERM exits at once
 * instead of waiting for it. Returns false when SIGTERM already arrived:
 * then the call must not start. End it with imp_wk_call_end().
 */
bool imp_wk_call_begin(void);
/* The same without the check, for fini on the way out after SIGTERM. */
void imp_wk_call_enter(void);
void imp_wk_call_end(void);
/* Whether SIGTERM or SIGINT arrived. */
bool imp_wk_terminated(void);
/* From now on no call may start, as after SIGTERM. Returns whether a call
 * is still running (its thread cannot be joined). */
bool imp_wk_calls_stop(void);

/*
 * Naming the call that crashed. Before a handler runs on the I/O thread,
 * arms the crash flush: the replies packed in worker->out and not yet
 * written, then a frame naming call `id` (imp_wire_crash_mark()), are
 * written by the fatal-signal handler. Disarm when the handler returns.
 */
void imp_wk_crash_arm(imp_worker_t *worker, uint64_t id);
void imp_wk_crash_disarm(void);

/* Returns VmData of this process in bytes, or 0 when unknown; usable from
 * a signal handler. */
size_t imp_wk_vmdata_bytes(void);
/* Records the RLIMIT_DATA in force: a fatal signal near it is an OOM. */
void imp_wk_mem_limit_set(size_t limit);
/* Records that the runtime failed to allocate: a later crash is then
 * reported as out of memory. */
void imp_wk_note_alloc_failure(void);
/* The runtime cannot go on without memory (a reply could not be queued):
 * exits the way the crash handler would. */
_Noreturn void imp_wk_fatal_oom(const char *what);

#endif
