/*
 * The call path: a call from its arrival to its answer. It finds the
 * function, takes an instance with a free slot (policy/dispatcher.h) or
 * queues the call with a deadline, forwards the request to the worker,
 * times it out, and answers the call's one completion callback, given by
 * whoever made the call (the RPC gateway, the HTTP front end, the trigger
 * broker through imp_invoker_t, an upgrade's validation).
 *
 * It knows functions (function.h) and instances (fleet/instance.h) but
 * neither who calls nor how functions get instances: when a function
 * needs more, it says so through the owner's ops (the controller).
 */
#ifndef IMP_CALL_H
#define IMP_CALL_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "base/config.h"
#include "base/invoker.h"
#include "base/store.h"
#include "core/list.h"
#include "policy/dispatcher.h"
#include "server/fleet/instance.h"
#include "server/invoke/function.h"
#include "server/invoke/idempotency.h"
#include "server/invoke/recordings.h"

typedef struct imp_invoke_s imp_invoke_t;
typedef struct imp_call_s imp_call_t;

/* What the call path asks of its owner (the controller). */
typedef struct imp_invoke_ops_s {
  /* fn's queue holds calls that the instances being started will not
   * take: start more (up to max). */
  void (*queued)(void *owner, imp_function_t *fn);
  /* A call of fn ran past its timeout; its instance is being replaced:
   * keep fn's instances up. */
  void (*timed_out)(void *owner, imp_function_t *fn);
} imp_invoke_ops_t;

/* The call path's context. */
struct imp_invoke_s {
  uv_loop_t *loop;
  const imp_config_t *cfg;
  imp_store_t *store;      /* idempotent answers, recordings */
  imp_registry_t registry; /* the functions */
  imp_invoker_t invoker;   /* the narrow interface (invoke.c) */
  imp_idem_cursor_t idem;  /* the sweep of expired answers */
  int stopping;            /* new calls get SHUTTING_DOWN */
  const imp_invoke_ops_t *ops;
  void *owner;
};

/* One invocation from arrival to answer. */
struct imp_call_s {
  imp_invoke_t *iv;
  imp_answer_cb done; /* the one completion, called once */
  void *done_arg;
  uint64_t done_tag;
  int decode;     /* the caller wants the answer decoded */
  int replay;     /* an upgrade's replay of a recorded call */
  uint32_t batch; /* items of an invoke_batch; 0 = one invoke */
  imp_function_t *function;
  imp_sent_t sent; /* while sent to an instance (fleet) */
  char *fwd;       /* request body after its id, while queued */
  size_t fwdlen;
  imp_dwait_t wait; /* queue link while waiting for a slot */
  uv_timer_t timer; /* queue deadline, then execution timeout */
  uint64_t started_ms;
  uint64_t started_ns;  /* arrival, for the duration histogram */
  uint64_t sent_ns;     /* when sent to the instance */
  uint64_t deadline_ms; /* overall, monotonic; 0 = none */
  char *idem_key;       /* idempotency key, owned; NULL = none */
  uint32_t lat_div;     /* 1 + calls ahead of it on the instance */
  imp_rec_req_t rec;    /* sampled request (recordings.h) */
  uint32_t version;     /* of the instance it was sent to */
  imp_list_t link;      /* its function's calls */
};

/* Sets the call path up; `cfg` and `store` are borrowed. */
void imp_invoke_init(imp_invoke_t *iv, uv_loop_t *loop, const imp_config_t *cfg,
                     imp_store_t *store, const imp_invoke_ops_t *ops,
                     void *owner);

/* A new call answered through done(arg, tag, ...) exactly once (possibly
 * before imp_call_start returns, for a failure found at once). Aborts when
 * out of memory. */
imp_call_t *imp_call_new(imp_invoke_t *iv, imp_answer_cb done, void *arg,
                         uint64_t tag);
/* Routes a new call of fn: to an instance with a free slot, else to the
 * queue. `rest` is the request Envelope's body after its id (borrowed).
 * `deadline_ms` 0 = none. */
void imp_call_start(imp_call_t *call, imp_function_t *fn, uint32_t deadline_ms,
                    const char *rest, size_t restlen);
/* Sends a call of fn to `inst` directly and arms its timeout (an upgrade
 * replaying a recorded call on a validating instance). */
void imp_call_send(imp_call_t *call, imp_function_t *fn, imp_instance_t *inst,
                   const char *rest, size_t restlen);
/* Answers a call that never reached an instance with `code` and frees it. */
void imp_call_fail(imp_call_t *call, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Answers through `done` with a worker's answer `rest` (borrowed): as it
 * is, or decoded when `decode` (imp_answer_t). */
void imp_invoke_deliver(imp_answer_cb done, void *arg, uint64_t tag, int decode,
                        const char *rest, size_t restlen);

/* Sends fn's queued calls to free slots. */
void imp_invoke_pump(imp_invoke_t *iv, imp_function_t *fn);
/* Fails every queued call of fn with `code` and `msg`. */
void imp_invoke_fail_queue(imp_function_t *fn, int code, const char *msg);
/* An instance of fn became ready or freed slots: queued calls go, and a
 * caller waiting for room (want_room) is told. */
void imp_invoke_room(imp_invoke_t *iv, imp_function_t *fn);
/* Calls sent to instances and not yet answered, over all functions. */
unsigned imp_invoke_in_flight(imp_invoke_t *iv);
/* Stopping: queued calls fail with SHUTTING_DOWN (drain), or also every
 * call's timer stops (stop). */
void imp_invoke_drain(imp_invoke_t *iv);
void imp_invoke_stop(imp_invoke_t *iv);

#endif
