/*
 * Running calls and packing their replies (invoke.c).
 */
#ifndef IMP_WORKER_INVOKE_H
#define IMP_WORKER_INVOKE_H

#include "worker/context.h"

/*
 * Prepares `invocation` for a call into `fn`. `request` (an invoke or
 * invoke_batch envelope) is taken, or NULL for impulse_init(). Returns 0
 * or -ENOMEM; release with imp_wk_invocation_free() in both cases.
 */
int imp_wk_invocation_init(invocation_t *invocation, imp_worker_t *worker,
                           const function_t *fn, Impulse__Envelope *request,
                           uint64_t received_ns);
/* Releases what an invocation holds (not the invocation itself). */
void imp_wk_invocation_free(invocation_t *invocation);
/* Releases a malloc'd invocation and what it holds; NULL is ignored. */
void imp_wk_invocation_destroy(invocation_t *invocation);
/* Packs the reply to a finished invocation (handler status `status`) into
 * `out`. Returns 0 or -ENOMEM when not even an error frame fits in
 * memory. */
int imp_wk_invocation_reply(invocation_t *invocation, int status,
                            imp_buf_t *out);
/* Runs every item of an invoke_batch, in order, on this thread, and packs
 * the one invoke_batch_ok frame answering them into `out`. */
void imp_wk_batch_run(imp_worker_t *worker, const Impulse__Envelope *env,
                      uint64_t received_ns, imp_buf_t *out);
/* An invoke or an invoke_batch read at `received_ns`; takes `env`. I/O
 * thread only. */
void imp_wk_invoke(imp_worker_t *worker, Impulse__Envelope *env,
                   uint64_t received_ns);
/* Appends an error frame to `out`. Returns 0 or -ENOMEM. */
int imp_wk_append_error(imp_buf_t *out, size_t max_frame, uint64_t id, int code,
                        const char *message);
/* Queues an error reply to request `id`. I/O thread only. */
void imp_wk_reply_error(imp_worker_t *worker, uint64_t id, int code,
                        const char *message);

#endif
