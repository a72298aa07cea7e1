/* What a function's instances wrote (logs.c): the Logs RPC and the query
 * behind it, which the HTTP front end shares. */
#ifndef IMP_CONTROL_LOGS_H
#define IMP_CONTROL_LOGS_H

#include <stddef.h>

#include "base/rpc.h"
#include "server/control/context.h"

/* The answer of a logs query: `resp` with its entries, borrowed from the
 * function's log (valid until the loop runs again). Free with
 * imp_logs_answer_free(). */
typedef struct imp_logs_answer_s {
  Impulse__LogsResponse resp;
  Impulse__LogEntry *entries; /* owned arrays behind resp.entries */
  Impulse__LogEntry **ptrs;
} imp_logs_answer_t;

/* Runs `req` on the logs of ctl: entries with seq > after, no older than
 * since_ms, of one instance when given, the last `tail` of those when
 * given, oldest first, as many as fit in `budget` bytes of messages (then
 * resp.more). Returns 0 with *a filled, or an ErrorCode (NOT_FOUND for an
 * unknown function, BAD_REQUEST, INTERNAL) with `err` saying why. */
int imp_control_logs_query(imp_control_t *ctl, const Impulse__LogsRequest *req,
                           size_t budget, imp_logs_answer_t *a, char *err,
                           size_t errlen);
void imp_logs_answer_free(imp_logs_answer_t *a);

/* The Logs RPC; takes ownership of env. */
void imp_control_logs(imp_control_t *ctl, imp_rpc_t *rpc,
                      Impulse__Envelope *env);

#endif
