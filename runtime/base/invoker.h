/*
 * The narrow way into the platform for what sits beside it (the trigger
 * broker, the HTTP front end): invoke a function by name and hear the
 * answer through a callback. The server's call path implements it; another
 * implementation (a call forwarded to another node) plugs in the same way,
 * without its users knowing.
 *
 * Contract of every call below that takes a callback (libuv's): when it
 * returns 0 the callback runs exactly once, later, on the loop thread
 * (never from inside the call); when it returns an error the callback never
 * runs.
 */
#ifndef IMP_INVOKER_H
#define IMP_INVOKER_H

#include <stddef.h>
#include <stdint.h>

#include "impulse.pb-c.h"

typedef struct imp_invoker_s imp_invoker_t;

/* A call's answer, as the call path gives it to the one completion
 * callback of the call. Everything is borrowed for the callback. */
typedef struct imp_answer_s {
  /* 0 when the function answered OK; else an ErrorCode: the handler's
   * failure as the worker reported it (FUNCTION_ERROR...), or what the
   * server decided (NOT_FOUND, OVERLOADED, TIMEOUT, CRASHED...). */
  int code;
  const char *message; /* why, when code != 0 (NULL when not decoded) */
  /* The worker's reply, the Envelope body after its id (an invoke_ok, an
   * Error, or an invoke_batch_ok), when the worker answered; else NULL. */
  const char *rest;
  size_t restlen;
  /* Decoded for callers that asked (every imp_invoker_t call does):
   * the invoke_ok of a single call, the answer of an invoke_batch. */
  const Impulse__InvokeResponse *resp;
  const Impulse__InvokeBatchResponse *batch;
} imp_answer_t;

/* The completion of a call: `arg` and `tag` are what the caller gave. */
typedef void (*imp_answer_cb)(void *arg, uint64_t tag,
                              const imp_answer_t *answer);
/* `function` freed slots after want_room() was asked for it. */
typedef void (*imp_room_cb)(void *arg, const char *function);

typedef struct imp_invoker_ops_s {
  /* Invokes req->function with `req` (borrowed). 0, or -ENOENT (no such
   * function), -ESHUTDOWN (the platform is stopping), -E2BIG (above the
   * frame limit). */
  int (*invoke)(imp_invoker_t *inv, const Impulse__InvokeRequest *req,
                imp_answer_cb done, void *arg);
  /* One call carrying `items` records: `rest` is the request Envelope's
   * body after its id, an InvokeBatchRequest in field 43
   * (imp_batch_request_encode), borrowed. Errors as invoke, and -EINVAL
   * for items 0. */
  int (*invoke_batch)(imp_invoker_t *inv, const char *function, uint32_t items,
                      const char *rest, size_t restlen, imp_answer_cb done,
                      void *arg);
  /* How many more calls may be started for `function` without more than
   * `room` of them waiting for a slot (<= 0: none now; ask want_room() to
   * hear when). *batch gets how many records one call may carry now (1
   * unless the function's handler is fast). An unknown function has all
   * the room (its calls answer NOT_FOUND). */
  long (*queue_room)(imp_invoker_t *inv, const char *function, long room,
                     unsigned *batch);
  /* Asks for one on_room() call when `function` frees slots. */
  void (*want_room)(imp_invoker_t *inv, const char *function);
  /* 1 when a function of that name is deployed, else 0. */
  int (*exists)(imp_invoker_t *inv, const char *function);
} imp_invoker_ops_t;

struct imp_invoker_s {
  const imp_invoker_ops_t *ops;
  /* Set by the invoker's user, called by the implementation (see
   * want_room). */
  imp_room_cb on_room;
  void *on_room_arg;
};

#endif
