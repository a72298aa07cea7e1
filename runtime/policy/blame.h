/*
 * Who is blamed when an instance dies with calls on it (docs/architecture.md,
 * "Who is blamed for a crash"). Pure logic.
 *
 * A crash is the fault of the call that was running. When the dying worker
 * named it (concurrency 1: the worker's crash handler writes the replies it
 * had, then an Error{CRASHED} under that call's id), the calls sent after it
 * never started: they get UNAVAILABLE ("did not run", safe to retry), so a
 * trigger counts no attempt against records that merely shared the
 * instance with a poison one. Otherwise every call on the instance may have
 * run, and all get the instance's end.
 */
#ifndef IMP_BLAME_H
#define IMP_BLAME_H

#include <stdint.h>

/* The ErrorCode for a call the dead instance did not answer: `code` is how
 * the instance ended (CRASHED, OUT_OF_MEMORY, UNAVAILABLE when stopped...);
 * `named` says whether the worker named the call it crashed in, sent as
 * number `crashed_gen`; the call was sent as number `call_gen` (send
 * numbers wrap around: compared as a difference). Returns `code` or
 * UNAVAILABLE. */
int imp_blame(int code, int named, uint32_t crashed_gen, uint32_t call_gen);

#endif
