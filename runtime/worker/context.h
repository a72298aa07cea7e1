/*
 * The state the parts of the worker share: the worker (imp_worker_t), the
 * loaded function and the calls into it (invocation_t). Each part declares
 * its functions in its own header:
 *
 *   worker.c  options, start and shutdown (imp_worker_main, worker.h)
 *   conn.c    the I/O thread: the server's connection, attach, dispatch
 *   invoke.c  running calls: inline, queued for the pool, or a batch;
 *             their replies
 *   ctx.c     what a function sees of a call (impulse_ops_t)
 *   pool.c    the handler threads of a function with concurrency > 1
 *   load.c    loading a function: dlopen, ABI check, init, memory limit
 *   crash.c   fatal signals, the memory accounting they need, and the
 *             crash flush that names the running call
 *
 * Private to the worker: the rest of the program knows only worker.h.
 */
#ifndef IMP_WORKER_CONTEXT_H
#define IMP_WORKER_CONTEXT_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <impulse/function.h>

#include "core/arena.h"
#include "core/codec.h"
#include "core/common.h"
#include "core/wire.h"
#include "worker/sandbox.h"

#define MAX_CONCURRENCY 1024u
#define HANDLER_STACK (4u << 20) /* stack of each pool handler thread */
#define ALT_STACK (64u << 10)    /* signal stack per thread */
#define RESPONSE_SLACK 1024u     /* frame room kept for the envelope */
#define MAX_ID_LEN 64u
#define MAX_SECRET 64u /* characters of the re-attach secret */

/* A function object loaded with dlopen(). */
typedef struct function_s {
  void *dl; /* NULL when nothing is loaded */
  int (*handle)(impulse_ctx_t *ctx);
  int (*init)(impulse_ctx_t *ctx); /* optional */
  void (*fini)(void);              /* optional */
  char *name;                      /* owned */
  int memfd; /* the checked copy the object was loaded from; -1 if none */
  uint32_t version;
  unsigned concurrency;
} function_t;

typedef struct imp_worker_s imp_worker_t;

/*
 * One call into the function: impulse_handle() for an invoke, or
 * impulse_init() while loading (then `request` is NULL). The context handed
 * to the function is embedded; ctx.runtime points back here.
 */
typedef struct invocation_s {
  impulse_ctx_t ctx;
  imp_worker_t *worker;
  struct invocation_s *next;     /* job queue link */
  Impulse__Envelope *request;    /* owned, see imp_wire_request_free() */
  Impulse__Header **req_headers; /* the request's headers, borrowed */
  size_t n_req_headers;
  bool batch;           /* request is an invoke_batch (a pool job) */
  uint64_t received_ns; /* batch jobs: when the request was read */
  uint64_t id;          /* envelope id to answer */
  uint64_t generation;  /* connection that sent the request */
  uint64_t deadline_ns; /* monotonic, 0 = no deadline */
  const char *payload;  /* borrowed from request, or payload_copy */
  size_t payload_len;
  char *payload_copy; /* owned, only when a copy was needed */
  imp_arena_t arena;  /* impulse_alloc() and response headers */
  char *response;     /* owned (malloc), NUL-terminated */
  size_t response_len;
  Impulse__Header **headers; /* response headers, in the arena */
  size_t n_headers;
  size_t cap_headers;
  size_t header_bytes; /* charged against the frame limit */
  bool has_error;
  int error_status;
  char error[1024];
  char refused[160]; /* why the runtime refused a response, if it did */
} invocation_t;

struct imp_worker_s {
  /* Options, fixed after start. */
  int listen_fd;
  int secret_fd; /* --secret-fd until read; -1 after */
  int log_fd;    /* --log-fd: impulse_log() frames; -1: to stderr */
  size_t max_frame;
  unsigned grace_ms;
  imp_wk_sandbox_t sandbox;    /* --sandbox and its limits */
  char label[16 + MAX_ID_LEN]; /* "worker ID", prefix of log lines */
  uint64_t id;                 /* --id, 0 when none */
  char secret[MAX_SECRET + 1]; /* from --secret-fd; "" = none */
  unsigned accepted;           /* connections accepted so far */
  bool attached;               /* this connection may send requests */

  /* Connection state, I/O thread only. */
  int conn_fd;              /* -1 when not connected */
  imp_buf_t in;             /* unparsed input */
  imp_buf_t out;            /* replies not yet written */
  size_t out_off;           /* bytes of `out` already written */
  bool stalled;             /* a frame waits for the pool or output */
  invocation_t *batch_head; /* jobs decoded by conn_process() but not */
  invocation_t *batch_tail; /* yet handed to the pool (imp_wk_jobs_submit()) */
  unsigned batch_len;
  uint64_t orphan_deadline_ms; /* exit if still unconnected at this time */
  int wake_fd;                 /* eventfd the pool threads signal */
  imp_wire_decoder_t decoder;  /* requests, see imp_wire_decode() */

  /* Loaded function, changed by the I/O thread while the pool is stopped. */
  function_t fn;
  bool limit_applied;

  /*
   * Handler pool. Fields below are protected by `lock` unless noted.
   *
   * Hand-offs are what a call costs at high load, so both directions are
   * batched. Jobs: the I/O thread queues every job decoded from one read
   * at once and signals jobs_cond only when a thread is idle and no wake-up
   * is already under way (`waking`); a thread takes jobs one at a time
   * until the queue is empty, and whenever it leaves jobs behind while
   * others are idle it wakes one more (a cascade), so a handler that blocks
   * never keeps queued jobs from idle threads. Replies: a thread writes the
   * eventfd only when `io_awake` is false, i.e. the I/O thread is about to
   * sleep or sleeping; while awake it collects `done` before it sleeps.
   */
  pthread_mutex_t lock;
  pthread_cond_t jobs_cond;
  invocation_t *queue_head;
  invocation_t *queue_tail;
  unsigned outstanding; /* queued plus running jobs */
  unsigned idle;        /* threads waiting on jobs_cond */
  bool waking;          /* jobs_cond was signalled, no thread woke yet */
  uint64_t generation;  /* written by the I/O thread under lock */
  imp_buf_t done;       /* packed replies for the I/O thread */
  bool job_finished;    /* a job ended since the I/O thread last looked */
  bool io_awake;        /* I/O thread will look at `done` before sleeping */
  bool stopping;
  pthread_t *threads; /* I/O thread only */
  unsigned nthreads;  /* I/O thread only */
};

#endif
