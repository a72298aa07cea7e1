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

/* The answer of an invocation: code 0 with resp (borrowed, valid during the
 * call), or an ErrorCode and a message. */
typedef void (*imp_invoke_done_cb)(void *arg, int code, const char *message,
                                   const Impulse__InvokeResponse *resp);
/* The answer of an invoke_batch: code 0 with resp (one result per item,
 * borrowed), or an ErrorCode for the whole batch. */
typedef void (*imp_batch_done_cb)(void *arg, int code, const char *message,
                                  const Impulse__InvokeBatchResponse *resp);
/* `function` freed slots after want_room() was asked for it. */
typedef void (*imp_room_cb)(void *arg, const char *function);

typedef struct imp_invoker_ops_s {
  /* Invokes req->function with `req` (borrowed). 0, or -ENOENT (no such
   * function), -ESHUTDOWN (the platform is stopping), -E2BIG (above the
   * frame limit). */
  int (*invoke)(imp_invoker_t *inv, const Impulse__InvokeRequest *req,
                imp_invoke_done_cb done, void *arg);
  /* One call carrying `items` records: `rest` is the request Envelope's
   * body after its id, an InvokeBatchRequest in field 43
   * (imp_batch_request_encode), borrowed. Errors as invoke, and -EINVAL
   * for items 0. */
  int (*invoke_batch)(imp_invoker_t *inv, const char *function, uint32_t items,
                      const char *rest, size_t restlen, imp_batch_done_cb done,
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
