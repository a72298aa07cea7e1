/*
 * A worker's output: its stdout and stderr and the impulse_log channel,
 * each a pipe the server's loop reads, into the function log of what the
 * worker has loaded (base/fnlog.h), never into the server's own log.
 *
 * The impulse_log channel (IMP_OUTPUT_LOG_FD in the worker) carries frames
 * of IMP_OUTPUT_HDR bytes ('L', or 'C' for a message the worker cut; the
 * level; the length, big-endian u16) and the message, each written with one
 * write() of at most PIPE_BUF bytes, so that frames of several threads
 * never interleave. Bytes a function writes to stdout or stderr can only
 * ever be stdout or stderr lines: no framing on those pipes is trusted.
 *
 * The server reads as fast as the loop lets it and drops what is over the
 * function's rate (counted); a worker's write blocks only while a pipe
 * (64 KiB) is full, i.e. while the loop is busy elsewhere.
 *
 * Output of a worker with nothing loaded (a warm-pool worker: no function
 * code has run in it) goes to the server's log, escaped, one line each.
 *
 * The readers outlive their instance: they read until the worker's end of
 * every pipe is closed, then free themselves.
 */
#ifndef IMP_OUTPUT_H
#define IMP_OUTPUT_H

#include <stdint.h>
#include <uv.h>

#include "base/fnlog.h"

#define IMP_OUTPUT_LOG_FD 5 /* the impulse_log channel in the worker */
#define IMP_OUTPUT_LOG_FD_STR "5"
#define IMP_OUTPUT_HDR 4 /* bytes of a frame's header */
/* Largest message of one frame: header and message in one atomic write. */
#define IMP_OUTPUT_MSG_MAX (4096u - IMP_OUTPUT_HDR)

typedef struct imp_output_s imp_output_t;

/* Makes the three pipes of instance `instance` and points stdio[1],
 * stdio[2] and stdio[IMP_OUTPUT_LOG_FD] (the caller's array, at least
 * IMP_OUTPUT_LOG_FD + 1 entries) at their write ends. `logs` is borrowed
 * and must outlive the output. Returns 0 with *out set, or a negative
 * errno (nothing to undo). */
int imp_output_new(uv_loop_t *loop, imp_fnlogs_t *logs, uint64_t instance,
                   uv_stdio_container_t *stdio, imp_output_t **out);

/* After the worker was spawned: closes the write ends here and starts
 * reading. `spawned` 0 (the spawn failed): closes everything instead. */
void imp_output_start(imp_output_t *out, int spawned);

/* What the worker has loaded from now on: its lines go to that function's
 * log (name borrowed for the call). */
void imp_output_set_function(imp_output_t *out, const char *name,
                             uint32_t version);

/* The instance is gone: the output frees itself once its pipes end. */
void imp_output_release(imp_output_t *out);

#endif
