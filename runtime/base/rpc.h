/*
 * A request being answered. The front door that received a request (the
 * RPC gateway) makes an imp_rpc_t for it and hands it, with the request, to
 * the handler below it; the handler answers through it exactly once, now
 * or later (after a validation, a checkpoint, a Kafka acknowledgement), and
 * never learns who asked or how the answer travels. This is how answers go
 * back up without a lower layer calling its caller by name.
 */
#ifndef IMP_RPC_H
#define IMP_RPC_H

#include <stdint.h>

#include "impulse.pb-c.h"

typedef struct imp_rpc_s imp_rpc_t;

typedef struct imp_rpc_ops_s {
  /* Delivers `answer` (borrowed; its id is the request's) to the caller,
   * or drops it when the caller has gone, then frees rpc. */
  void (*finish)(imp_rpc_t *rpc, const Impulse__Envelope *answer);
} imp_rpc_ops_t;

struct imp_rpc_s {
  const imp_rpc_ops_t *ops;
  uint64_t id; /* the request's id, copied into the answer */
};

/* Answers with `answer` (its id is set to rpc->id) and releases rpc: call
 * exactly once per request, from the loop thread; rpc is gone afterwards. */
void imp_rpc_reply(imp_rpc_t *rpc, Impulse__Envelope *answer);

/* Answers with an envelope whose body is `body` (borrowed), a message of
 * the type case `body_case` carries, and releases rpc like imp_rpc_reply().
 * A body of another type is a bug: logged, and answered INTERNAL. */
void imp_rpc_answer(imp_rpc_t *rpc, Impulse__Envelope__BodyCase body_case,
                    void *body);

/* Answers with an Error of `code` (an ErrorCode) and a printf message, and
 * releases rpc, like imp_rpc_reply(). */
void imp_rpc_error(imp_rpc_t *rpc, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
