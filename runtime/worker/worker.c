/*
 * Worker process (`impulse worker`): the function runtime.
 *
 * The server binds and listens on a UNIX socket, spawns
 * `impulse worker --listen-fd N` and connects to it. The worker serves one
 * connection at a time (a newer connection replaces the older one) with the
 * frame codec of protocol.h, and answers every request with the request's
 * envelope id:
 *
 *   load   -> dlopen() the function object, check impulse_abi_version, call
 *             impulse_init(); answer load_ok or error INVALID_ARTIFACT. With
 *             validate_only the object is finalised and unloaded again and
 *             the worker stays generic; otherwise the worker is specialised
 *             and a later load replaces the object in place.
 *   invoke -> run impulse_handle(); answer invoke_ok, or error FUNCTION_ERROR
 *             when the handler returns a non-zero status.
 *
 * Threads. The main thread does all socket I/O with poll() on the listening
 * socket, the connection and an eventfd. With concurrency 1 the handler runs
 * inline on that thread. With concurrency N > 1, N handler threads take jobs
 * from a queue, pack their replies into a shared buffer under the worker
 * lock and wake the I/O thread through the eventfd, which then writes every
 * ready reply in as few write() calls as it can. Both hand-offs are batched
 * so that a busy pool costs few wake-ups per call (see imp_worker_t).
 *
 * Exits (worker.h) tell the server why the worker ended: IMP_WORKER_EXIT_OOM
 * when a fatal signal arrives near the memory limit or after an allocation
 * failure, IMP_WORKER_EXIT_ORPHAN when the connection is gone and no other
 * arrives within --grace-ms; any other fatal signal is re-raised with its
 * default action so the server sees the real signal.
 */
#include "worker/worker.h"

#include <dlfcn.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <malloc.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <impulse/function.h>

#include "core/arena.h"
#include "core/codec.h"
#include "core/common.h"
#include "core/wire.h"

#define READ_CHUNK (256u << 10) /* smallest read buffer offered to read() */
#define OUT_FLUSH (256u << 10)  /* write mid-batch once this much is ready */
#define OUT_HIGH (8u << 20)     /* stop taking requests above this backlog */
#define BUF_KEEP (4u << 20)     /* idle I/O buffers above this are freed */
#define MAX_CONCURRENCY 1024u
#define DEFAULT_MEMORY_MB 256u
#define HANDLER_STACK (4u << 20) /* stack of each pool handler thread */
#define ALT_STACK (64u << 10)    /* signal stack per thread */
#define OOM_MARGIN (16u << 20)   /* "near the limit" for the crash handler */
#define RESPONSE_SLACK 1024u     /* frame room kept for the envelope */
#define MAX_RESPONSE_HEADERS 256u
#define HEADER_OVERHEAD 16u     /* encoding overhead charged per header */
#define FIRST_CONNECT_MS 10000u /* wait for the server's first connect */
#define MAX_ID_LEN 64u
#define MAX_SECRET 64u /* hex characters of IMPULSE_WORKER_SECRET */
#define SECRET_ENV "IMPULSE_WORKER_SECRET"

/*
 * State shared with signal handlers. A handler gets no context pointer, so
 * this is the one place where the worker keeps globals; everything else
 * hangs off imp_worker_t. Only lock-free atomics live here, which makes them
 * safe to touch from a handler.
 */
static struct {
  atomic_size_t mem_limit; /* RLIMIT_DATA in force, 0 = none */
  atomic_int alloc_failed; /* the runtime saw an allocation fail */
  atomic_int running;      /* init/handle/fini calls in progress */
  atomic_int term;         /* SIGTERM or SIGINT received */
  atomic_int wake_fd;      /* eventfd of the I/O thread, or -1 */
  /* While a handler runs on the I/O thread: the replies packed before it,
   * written by the crash handler (crash_flush_arm()). */
  atomic_int flush_fd;
  _Atomic(const char *) flush_data;
  atomic_size_t flush_len;
  /* Then this frame: Error{CRASHED} under the running call's id, which
   * tells the server which call it was. Written by the thread that may
   * crash, read by its own signal handler. */
  uint8_t crash_mark[IMP_WIRE_CRASH_MARK_MAX];
  size_t crash_mark_len;
} sig_state = {0, 0, 0, 0, -1, -1, NULL, 0, {0}, 0};

/* A function object loaded with dlopen(). */
typedef struct function_s {
  void *dl; /* NULL when nothing is loaded */
  int (*handle)(impulse_ctx_t *ctx);
  int (*init)(impulse_ctx_t *ctx); /* optional */
  void (*fini)(void);              /* optional */
  char *name;                      /* owned */
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
  Impulse__Envelope *request;    /* owned, freed with the worker allocator */
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
  size_t max_frame;
  unsigned grace_ms;
  char label[16 + MAX_ID_LEN]; /* "worker ID", prefix of log lines */
  uint64_t id;                 /* --id, 0 when none */
  char secret[MAX_SECRET + 1]; /* from the environment; "" = none */
  unsigned accepted;           /* connections accepted so far */
  bool attached;               /* this connection may send requests */

  /* Connection state, I/O thread only. */
  int conn_fd;              /* -1 when not connected */
  imp_buf_t in;             /* unparsed input */
  imp_buf_t out;            /* replies not yet written */
  size_t out_off;           /* bytes of `out` already written */
  bool stalled;             /* a frame waits for the pool or output */
  invocation_t *batch_head; /* jobs decoded by conn_process() but not */
  invocation_t *batch_tail; /* yet handed to the pool, see jobs_submit() */
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

/* ---- memory accounting, usable from a signal handler --------------------- */

/*
 * Returns VmData of this process in bytes, or 0 when unknown. Only open(),
 * read() and close() are used and the parsing is by hand, so the crash
 * handler may call it.
 */
static size_t vmdata_bytes(void) {
  static const char key[] = "VmData:";
  char buf[4096];
  size_t len = 0;
  int fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  while (len < sizeof buf - 1) {
    ssize_t n = read(fd, buf + len, sizeof buf - 1 - len);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    len += (size_t)n;
  }
  close(fd);
  for (size_t i = 0; i + sizeof key - 1 < len; i++) {
    if (i > 0 && buf[i - 1] != '\n') continue;
    size_t k = 0;
    while (k < sizeof key - 1 && buf[i + k] == key[k]) k++;
    if (k < sizeof key - 1) continue;
    size_t j = i + k, kib = 0;
    while (j < len && (buf[j] == ' ' || buf[j] == '\t')) j++;
    while (j < len && buf[j] >= '0' && buf[j] <= '9')
      kib = kib * 10 + (size_t)(buf[j++] - '0');
    return kib * 1024;
  }
  return 0;
}

/* Records that the runtime failed to allocate: a later crash is then
 * reported as out of memory. */
static void note_alloc_failure(void) {
  atomic_store(&sig_state.alloc_failed, 1);
}

/* The runtime cannot go on without memory (a reply could not be queued):
 * exit the way the crash handler would. */
static void fatal_oom(const char *what) {
  IMP_LOG(IMP_LOG_ERROR, "worker: out of memory %s, exiting", what);
  _exit(IMP_WORKER_EXIT_OOM);
}

/* ---- signals ------------------------------------------------------------- */

static void write_stderr(const char *s) {
  size_t n = 0;
  while (s[n] != '\0') n++;
  ssize_t w = write(STDERR_FILENO, s, n);
  (void)w;
}

/* SIGSEGV, SIGBUS, SIGABRT, SIGFPE, SIGILL. Async-signal-safe only. */
/* Writes `len` bytes from a signal handler; false unless all went. */
static bool write_all(int fd, const char *p, size_t len) {
  while (len > 0) {
    ssize_t n = write(fd, p, len);
    if (n <= 0) return false; /* a full socket: give up */
    p += n;
    len -= (size_t)n;
  }
  return true;
}

/* Writes the replies armed by crash_flush_arm(), then the frame naming
 * the running call; from a signal handler. When the replies cannot all be
 * written the call is not named, and the server blames every call it has
 * no answer to. */
static void crash_flush(void) {
  int fd = atomic_load(&sig_state.flush_fd);
  if (fd < 0) return;
  const char *p = atomic_load(&sig_state.flush_data);
  size_t len = atomic_load(&sig_state.flush_len);
  if ((len == 0 || write_all(fd, p, len)) && sig_state.crash_mark_len > 0)
    write_all(fd, (const char *)sig_state.crash_mark, sig_state.crash_mark_len);
}

static void on_fatal_signal(int sig, siginfo_t *info, void *uctx) {
  (void)info;
  (void)uctx;
  crash_flush();
  size_t limit = atomic_load(&sig_state.mem_limit);
  if (atomic_load(&sig_state.alloc_failed) ||
      (limit > 0 && vmdata_bytes() + OOM_MARGIN >= limit)) {
    write_stderr(
        "worker: fatal signal at the memory limit, "
        "exiting as out of memory\n");
    _exit(IMP_WORKER_EXIT_OOM);
  }
  /* Die of the same signal: it is pending (blocked while we run) and is
   * delivered with the default action as soon as the handler returns. */
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = SIG_DFL;
  sigemptyset(&sa.sa_mask);
  sigaction(sig, &sa, NULL);
  raise(sig);
}

/* SIGTERM, SIGINT: leave promptly. When a handler is running it may never
 * return, so exit right here; when idle, let the I/O thread call fini. */
static void on_term_signal(int sig) {
  (void)sig;
  int saved = errno;
  atomic_store(&sig_state.term, 1);
  if (atomic_load(&sig_state.running) > 0) _exit(IMP_WORKER_EXIT_OK);
  int fd = atomic_load(&sig_state.wake_fd);
  if (fd >= 0) {
    uint64_t one = 1;
    ssize_t w = write(fd, &one, sizeof one);
    (void)w;
  }
  errno = saved;
}

/* Gives the calling thread an alternate signal stack so a stack overflow
 * in a handler still reaches on_fatal_signal(). Returns the stack to free
 * with altstack_free(), or NULL (then crashes on overflow are plain). */
static void *altstack_install(void) {
  stack_t ss;
  memset(&ss, 0, sizeof ss);
  ss.ss_sp = malloc(ALT_STACK);
  if (ss.ss_sp == NULL) return NULL;
  ss.ss_size = ALT_STACK;
  if (sigaltstack(&ss, NULL) != 0) {
    free(ss.ss_sp);
    return NULL;
  }
  return ss.ss_sp;
}

static void altstack_free(void *stack) {
  if (stack == NULL) return;
  stack_t ss;
  memset(&ss, 0, sizeof ss);
  ss.ss_flags = SS_DISABLE;
  sigaltstack(&ss, NULL);
  free(stack);
}

static void signals_install(void) {
  static const int fatal[] = {SIGSEGV, SIGBUS, SIGABRT, SIGFPE, SIGILL};
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sigemptyset(&sa.sa_mask);
  sa.sa_sigaction = on_fatal_signal;
  sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
  for (size_t i = 0; i < IMP_ARRAY_SIZE(fatal); i++)
    sigaction(fatal[i], &sa, NULL);

  memset(&sa, 0, sizeof sa);
  sigemptyset(&sa.sa_mask);
  sa.sa_handler = on_term_signal;
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);

  memset(&sa, 0, sizeof sa);
  sigemptyset(&sa.sa_mask);
  sa.sa_handler = SIG_IGN;
  sigaction(SIGPIPE, &sa, NULL);
}

/* ---- allocation ---------------------------------------------------------- */

/* imp_arena_alloc(), and a failure noted as the runtime's own. */
static void *arena_alloc(imp_arena_t *arena, size_t len) {
  void *p = imp_arena_alloc(arena, len);
  if (p == NULL && len <= IMP_ARENA_MAX) note_alloc_failure();
  return p;
}

/* ---- the function's view: impulse_ops_t ---------------------------------- */

static invocation_t *ctx_invocation(impulse_ctx_t *ctx) {
  return ctx->runtime;
}

/* Largest payload plus header bytes a response may carry. */
static size_t response_budget(const invocation_t *invocation) {
  return invocation->worker->max_frame - RESPONSE_SLACK;
}

static const void *op_payload(impulse_ctx_t *ctx, size_t *len) {
  invocation_t *invocation = ctx_invocation(ctx);
  if (len != NULL) *len = invocation->payload_len;
  return invocation->payload;
}

static Impulse__Header **request_headers(invocation_t *invocation, size_t *n) {
  *n = invocation->n_req_headers;
  return invocation->req_headers;
}

static size_t op_header_count(impulse_ctx_t *ctx) {
  size_t n;
  request_headers(ctx_invocation(ctx), &n);
  return n;
}

static const void *header_value(const Impulse__Header *header, size_t *len) {
  if (len != NULL) *len = header->value.len;
  /* Decoded pieces are NUL-terminated (imp_wire_decode()), so values are
   * too. */
  return header->value.data != NULL ? (const void *)header->value.data : "";
}

static int op_header_at(impulse_ctx_t *ctx, size_t i, const char **name,
                        const void **value, size_t *len) {
  size_t n;
  Impulse__Header **headers = request_headers(ctx_invocation(ctx), &n);
  if (i >= n) return -1;
  if (name != NULL) *name = headers[i]->name;
  const void *v = header_value(headers[i], len);
  if (value != NULL) *value = v;
  return 0;
}

static const void *op_header(impulse_ctx_t *ctx, const char *name,
                             size_t *len) {
  size_t n;
  Impulse__Header **headers = request_headers(ctx_invocation(ctx), &n);
  if (name == NULL) return NULL;
  for (size_t i = 0; i < n; i++)
    if (strcmp(headers[i]->name, name) == 0)
      return header_value(headers[i], len);
  return NULL;
}

/* Replaces the response with a new malloc'd buffer of `len` bytes (plus a
 * NUL). Returns the buffer, or NULL when too large or out of memory. */
/* Remembers why a response was refused, for a handler that then fails
 * without a message of its own. */
static void note_refused(invocation_t *invocation, size_t len, size_t budget) {
  snprintf(invocation->refused, sizeof invocation->refused,
           "response of %zu bytes refused: at most %zu bytes fit in a frame",
           len, budget);
}

static char *response_replace(invocation_t *invocation, size_t len) {
  size_t budget = response_budget(invocation);
  if (len > budget || invocation->header_bytes > budget - len) {
    note_refused(invocation, len, budget);
    return NULL;
  }
  char *buf = malloc(len + 1);
  if (buf == NULL) {
    note_alloc_failure();
    return NULL;
  }
  buf[len] = '\0';
  free(invocation->response);
  invocation->response = buf;
  invocation->response_len = len;
  return buf;
}

static int op_respond(impulse_ctx_t *ctx, const void *data, size_t len) {
  invocation_t *invocation = ctx_invocation(ctx);
  if (data == NULL && len > 0) return IMPULSE_ERROR;
  /* Copy before replacing: `data` may point into the current response. */
  size_t budget = response_budget(invocation);
  if (len > budget || invocation->header_bytes > budget - len) {
    note_refused(invocation, len, budget);
    return IMPULSE_ERROR;
  }
  char *copy = malloc(len + 1);
  if (copy == NULL) {
    note_alloc_failure();
    return IMPULSE_ERROR;
  }
  if (len > 0) memcpy(copy, data, len);
  copy[len] = '\0';
  free(invocation->response);
  invocation->response = copy;
  invocation->response_len = len;
  return IMPULSE_OK;
}

static void *op_response_buffer(impulse_ctx_t *ctx, size_t len) {
  return response_replace(ctx_invocation(ctx), len);
}

static int op_set_header(impulse_ctx_t *ctx, const char *name,
                         const void *value, size_t len) {
  invocation_t *invocation = ctx_invocation(ctx);
  if (name == NULL || name[0] == '\0' || (value == NULL && len > 0))
    return IMPULSE_ERROR;
  size_t name_len = strlen(name);
  size_t budget = response_budget(invocation);
  size_t used = invocation->response_len + invocation->header_bytes;
  if (invocation->n_headers >= MAX_RESPONSE_HEADERS || name_len > budget ||
      len > budget || name_len + len + HEADER_OVERHEAD > budget - used)
    return IMPULSE_ERROR;
  if (invocation->n_headers == invocation->cap_headers) {
    size_t cap = invocation->cap_headers ? invocation->cap_headers * 2 : 8;
    Impulse__Header **headers =
        arena_alloc(&invocation->arena, cap * sizeof *headers);
    if (headers == NULL) return IMPULSE_ERROR;
    if (invocation->n_headers > 0)
      memcpy(headers, invocation->headers,
             invocation->n_headers * sizeof *headers);
    invocation->headers = headers;
    invocation->cap_headers = cap;
  }
  Impulse__Header *header = arena_alloc(&invocation->arena, sizeof *header);
  char *name_copy = arena_alloc(&invocation->arena, name_len + 1);
  uint8_t *value_copy = len > 0 ? arena_alloc(&invocation->arena, len) : NULL;
  if (header == NULL || name_copy == NULL || (len > 0 && value_copy == NULL))
    return IMPULSE_ERROR;
  impulse__header__init(header);
  memcpy(name_copy, name, name_len + 1);
  if (len > 0) memcpy(value_copy, value, len);
  header->name = name_copy;
  header->has_value = 1;
  header->value.len = len;
  header->value.data = value_copy;
  invocation->headers[invocation->n_headers++] = header;
  invocation->header_bytes += name_len + len + HEADER_OVERHEAD;
  return IMPULSE_OK;
}

static int op_set_error(impulse_ctx_t *ctx, int status, const char *message) {
  invocation_t *invocation = ctx_invocation(ctx);
  invocation->has_error = true;
  invocation->error_status = status;
  snprintf(invocation->error, sizeof invocation->error, "%s",
           message != NULL ? message : "");
  return status;
}

static void *op_alloc(impulse_ctx_t *ctx, size_t len) {
  return arena_alloc(&ctx_invocation(ctx)->arena, len);
}

static void op_log(impulse_ctx_t *ctx, int level, const char *message) {
  /* IMPULSE_LOG_* and IMP_LOG_* share their numbering. */
  if (level < IMP_LOG_ERROR) level = IMP_LOG_ERROR;
  if (level > IMP_LOG_DEBUG) level = IMP_LOG_DEBUG;
  IMP_LOG(level, "%s: %s", ctx->function != NULL ? ctx->function : "-",
          message != NULL ? message : "");
}

static int64_t op_remaining_ms(impulse_ctx_t *ctx) {
  invocation_t *invocation = ctx_invocation(ctx);
  if (invocation->deadline_ns == 0) return INT64_MAX;
  int64_t left = (int64_t)(invocation->deadline_ns - imp_now_ns());
  return left / 1000000;
}

static const impulse_ops_t ops = {
    .payload = op_payload,
    .header_count = op_header_count,
    .header_at = op_header_at,
    .header = op_header,
    .respond = op_respond,
    .response_buffer = op_response_buffer,
    .set_header = op_set_header,
    .set_error = op_set_error,
    .alloc = op_alloc,
    .log = op_log,
    .remaining_ms = op_remaining_ms,
};

/* ---- invocations --------------------------------------------------------- */

static void invocation_blank(invocation_t *invocation, imp_worker_t *worker,
                             const function_t *fn) {
  memset(invocation, 0, offsetof(invocation_t, error));
  invocation->error[0] = invocation->refused[0] = '\0';
  invocation->ctx.abi_version = IMPULSE_ABI_VERSION;
  invocation->ctx.ops = &ops;
  invocation->ctx.function = fn->name;
  invocation->ctx.version = fn->version;
  invocation->ctx.runtime = invocation;
  invocation->worker = worker;
  invocation->payload = "";
  imp_arena_init(&invocation->arena, 0);
}

/* Points the invocation at a request payload (decoded blocks end in a NUL,
 * see imp_wire_decode(); otherwise a NUL-terminated copy is made). 0 or
 * -ENOMEM. */
static int invocation_payload(invocation_t *invocation,
                              const ProtobufCBinaryData *payload) {
  if (payload->len == 0 || payload->data == NULL) return 0;
  if (payload->data[payload->len] == '\0') {
    /* The usual case: the decode left a NUL after the bytes. */
    invocation->payload = (const char *)payload->data;
  } else {
    invocation->payload_copy = malloc(payload->len + 1);
    if (invocation->payload_copy == NULL) {
      note_alloc_failure();
      return -ENOMEM;
    }
    memcpy(invocation->payload_copy, payload->data, payload->len);
    invocation->payload_copy[payload->len] = '\0';
    invocation->payload = invocation->payload_copy;
  }
  invocation->payload_len = payload->len;
  return 0;
}

/*
 * Prepares `invocation` for a call into `fn`. `request` (an invoke envelope)
 * is taken, or NULL for impulse_init(). Returns 0 or -ENOMEM; release with
 * invocation_free() in both cases.
 */
static int invocation_init(invocation_t *invocation, imp_worker_t *worker,
                           const function_t *fn, Impulse__Envelope *request,
                           uint64_t received_ns) {
  invocation_blank(invocation, worker, fn);
  invocation->request = request;
  if (request == NULL) return 0;
  invocation->id = request->id;
  invocation->received_ns = received_ns;
  if (request->body_case == IMPULSE__ENVELOPE__BODY_INVOKE_BATCH) {
    invocation->batch = true; /* the items are set up one by one later */
    return 0;
  }
  const Impulse__InvokeRequest *invoke = request->invoke;
  invocation->req_headers = invoke->headers;
  invocation->n_req_headers = invoke->n_headers;
  if (invoke->has_deadline_ms && invoke->deadline_ms > 0)
    invocation->deadline_ns =
        received_ns + (uint64_t)invoke->deadline_ms * 1000000u;
  return invocation_payload(invocation, &invoke->payload);
}

static void invocation_free(invocation_t *invocation) {
  imp_wire_request_free(invocation->request);
  invocation->request = NULL;
  free(invocation->payload_copy);
  invocation->payload_copy = NULL;
  free(invocation->response);
  invocation->response = NULL;
  imp_arena_release(&invocation->arena);
}

/*
 * Marks a call into the function as running so SIGTERM exits at once
 * instead of waiting for it. Returns false when SIGTERM already arrived: then
 * the call must not start. The order (count, then look at the flag) pairs
 * with on_term_signal() (flag, then look at the count).
 */
static bool call_begin(void) {
  atomic_fetch_add(&sig_state.running, 1);
  if (atomic_load(&sig_state.term)) {
    atomic_fetch_sub(&sig_state.running, 1);
    return false;
  }
  return true;
}

static void call_end(void) {
  atomic_fetch_sub(&sig_state.running, 1);
}

/* Appends an error frame to `out`. Returns 0 or -ENOMEM. */
static int append_error(imp_buf_t *out, size_t max_frame, uint64_t id, int code,
                        const char *message) {
  int rc = imp_wire_append_error(out, max_frame, id, code, message);
  if (rc == -ENOMEM) note_alloc_failure();
  return rc == IMP_EFRAMETOOBIG ? 0 : rc; /* cannot happen: tiny frame */
}

/* What the handler answered, as the codec takes it (borrowed). */
static void invocation_answer(const invocation_t *invocation,
                              imp_wire_answer_t *answer) {
  answer->payload = invocation->response;
  answer->len = invocation->response_len;
  answer->headers = invocation->headers;
  answer->n_headers = invocation->n_headers;
}

/* What a caller is told of a handler that returned `status` != 0. */
static void failure_message(const invocation_t *invocation, int status,
                            char *buf, size_t len) {
  snprintf(buf, len, "function returned status %d: %s", status,
           invocation->has_error && invocation->error[0] != '\0'
               ? invocation->error
           : invocation->refused[0] != '\0' ? invocation->refused
                                            : "no message");
}

/*
 * Packs the reply to a finished invocation (handler status `status`) into
 * `out`. Returns 0 or -ENOMEM when not even an error frame fits in memory.
 */
static int invocation_reply(invocation_t *invocation, int status,
                            imp_buf_t *out) {
  size_t max_frame = invocation->worker->max_frame;
  char message[1200];
  if (status != 0) {
    failure_message(invocation, status, message, sizeof message);
    return append_error(out, max_frame, invocation->id,
                        IMPULSE__ERROR_CODE__FUNCTION_ERROR, message);
  }
  imp_wire_answer_t answer;
  invocation_answer(invocation, &answer);
  int rc = imp_wire_append_invoke_ok(out, max_frame, invocation->id, &answer,
                                     invocation->ctx.version);
  if (rc == 0) return 0;
  if (rc == IMP_EFRAMETOOBIG) {
    snprintf(message, sizeof message,
             "response of %zu bytes exceeds the maximum frame size",
             invocation->response_len + invocation->header_bytes);
    return append_error(out, max_frame, invocation->id,
                        IMPULSE__ERROR_CODE__TOO_LARGE, message);
  }
  /* The response itself did not fit in memory: try a small error. */
  note_alloc_failure();
  return append_error(out, max_frame, invocation->id,
                      IMPULSE__ERROR_CODE__OUT_OF_MEMORY,
                      "out of memory while sending the response");
}

/* ---- record batches ------------------------------------------------------ */

#define BATCH_NOT_RUN "the batch's answer is full: run it alone"
#define BATCH_SHORT 64u /* bytes a BATCH_NOT_RUN result takes, at most */

/*
 * Runs every item of an invoke_batch, in order, on this thread, and packs
 * one invoke_batch_ok frame answering all of them into `out`. An item
 * whose handler fails gets its own FUNCTION_ERROR result; the others are
 * not affected. When the results outgrow a frame, that item and the ones
 * after it are answered UNAVAILABLE ("run it alone"; the ones after it
 * are not run), and the trigger broker runs them as single invocations.
 */
static void batch_run(imp_worker_t *worker, const Impulse__Envelope *env,
                      uint64_t received_ns, imp_buf_t *out) {
  const Impulse__InvokeBatchRequest *b = env->invoke_batch;
  const function_t *fn = &worker->fn;
  uint64_t deadline_ns = b->has_deadline_ms && b->deadline_ms > 0
                             ? received_ns + (uint64_t)b->deadline_ms * 1000000u
                             : 0;
  /* Room for a short "not run" result per item is kept back, so that a
   * batch whose results outgrow the frame can always be answered. */
  size_t limit = worker->max_frame - RESPONSE_SLACK;
  size_t reserve = BATCH_SHORT * b->n_items;
  size_t soft = limit > reserve ? limit - reserve : 0;
  imp_wire_batch_t answer;
  if (imp_wire_batch_init(&answer, b->n_items) != 0)
    fatal_oom("answering a batch");
  char message[1200];
  bool full = false;
  for (size_t i = 0; i < b->n_items; i++) {
    if (full) {
      if (imp_wire_batch_add(&answer, limit, IMPULSE__ERROR_CODE__UNAVAILABLE,
                             BATCH_NOT_RUN, NULL) != 0)
        fatal_oom("answering a batch");
      continue;
    }
    const Impulse__BatchItem *item = b->items[i];
    invocation_t invocation;
    invocation_blank(&invocation, worker, fn);
    invocation.id = env->id;
    invocation.deadline_ns = deadline_ns;
    invocation.req_headers = item->headers;
    invocation.n_req_headers = item->n_headers;
    int code = 0;
    const char *msg = NULL;
    if (invocation_payload(&invocation, &item->payload) != 0) {
      code = IMPULSE__ERROR_CODE__OUT_OF_MEMORY;
      msg = "out of memory receiving the request";
    } else {
      int status = fn->handle(&invocation.ctx);
      if (status != 0) {
        failure_message(&invocation, status, message, sizeof message);
        code = IMPULSE__ERROR_CODE__FUNCTION_ERROR;
        msg = message;
      }
    }
    imp_wire_answer_t result;
    invocation_answer(&invocation, &result);
    int rc = imp_wire_batch_add(&answer, soft, code, msg, &result);
    if (rc == -ENOSPC) {
      /* The items after this one are not run: the broker runs them alone
       * (this one, which ran, too). */
      full = true;
      rc = imp_wire_batch_add(&answer, limit, IMPULSE__ERROR_CODE__UNAVAILABLE,
                              BATCH_NOT_RUN, NULL);
    }
    invocation_free(&invocation);
    if (rc != 0) fatal_oom("answering a batch");
  }
  int rc = imp_wire_batch_finish(&answer, env->id, fn->version, out,
                                 worker->max_frame);
  if (rc == IMP_EFRAMETOOBIG)
    rc = append_error(out, worker->max_frame, env->id,
                      IMPULSE__ERROR_CODE__TOO_LARGE,
                      "the batch's answer exceeds the maximum frame size");
  if (rc != 0) fatal_oom("answering a batch");
}

/* ---- handler pool -------------------------------------------------------- */

/*
 * Decides whether to signal jobs_cond: jobs are queued, a thread is idle
 * and no earlier signal is still on its way. One woken thread is enough;
 * if it leaves jobs behind it wakes the next (pool_main()). Call with the
 * lock held and signal after unlocking, so the woken thread does not block
 * on the lock at once. That is safe because every thread returning from
 * the wait clears `waking` and looks at the queue under the lock: a signal
 * that finds nobody waiting was made redundant by such a thread.
 */
static bool jobs_wake_needed(imp_worker_t *worker) {
  if (worker->queue_head == NULL || worker->idle == 0 || worker->waking)
    return false;
  worker->waking = true;
  return true;
}

static void wake_io(imp_worker_t *worker) {
  uint64_t one = 1;
  ssize_t w = write(worker->wake_fd, &one, sizeof one);
  (void)w; /* EAGAIN: the counter is already non-zero, a wake-up is due */
}

static void invocation_destroy(invocation_t *invocation) {
  if (invocation == NULL) return;
  invocation_free(invocation);
  free(invocation);
}

/*
 * A handler thread. Takes one job at a time and goes on taking jobs until
 * the queue is empty, so at high load one wake-up serves many jobs.
 * Finished jobs are freed outside the lock, after taking the next one,
 * which saves a lock round trip per job.
 */
static void *pool_main(void *arg) {
  imp_worker_t *worker = arg;
  void *altstack = altstack_install();
  invocation_t *finished = NULL;
  pthread_mutex_lock(&worker->lock);
  for (;;) {
    if (worker->queue_head == NULL && finished != NULL) {
      pthread_mutex_unlock(&worker->lock);
      invocation_destroy(finished);
      finished = NULL;
      pthread_mutex_lock(&worker->lock);
      continue;
    }
    while (worker->queue_head == NULL && !worker->stopping) {
      worker->idle++;
      pthread_cond_wait(&worker->jobs_cond, &worker->lock);
      worker->idle--;
      worker->waking = false;
    }
    if (worker->stopping) break;
    invocation_t *invocation = worker->queue_head;
    worker->queue_head = invocation->next;
    if (worker->queue_head == NULL) worker->queue_tail = NULL;
    /* Jobs left behind must not wait for this one's handler, which may
     * take long or never return. */
    bool wake_job = jobs_wake_needed(worker);
    pthread_mutex_unlock(&worker->lock);
    if (wake_job) pthread_cond_signal(&worker->jobs_cond);
    invocation_destroy(finished);
    finished = NULL;

    bool ran = call_begin();
    int status = 0;
    imp_buf_t batch_out = {0};
    if (ran) {
      if (invocation->batch)
        batch_run(worker, invocation->request, invocation->received_ns,
                  &batch_out);
      else
        status = worker->fn.handle(&invocation->ctx);
      call_end();
    }

    pthread_mutex_lock(&worker->lock);
    /* A reply to a connection that has since been replaced is dropped: the
     * new peer does not know its id. */
    if (ran && invocation->generation == worker->generation &&
        (invocation->batch
             ? imp_buf_append(&worker->done, batch_out.data, batch_out.len)
             : invocation_reply(invocation, status, &worker->done)) != 0)
      fatal_oom("queueing a reply");
    imp_buf_free(&batch_out);
    worker->outstanding--;
    worker->job_finished = true;
    finished = invocation;
    if (!worker->io_awake) {
      /* The eventfd is written outside the lock, which the woken I/O
       * thread wants first thing. */
      worker->io_awake = true;
      pthread_mutex_unlock(&worker->lock);
      wake_io(worker);
      pthread_mutex_lock(&worker->lock);
    }
  }
  pthread_mutex_unlock(&worker->lock);
  invocation_destroy(finished);
  altstack_free(altstack);
  return NULL;
}

/* Stops and joins the handler threads; queued jobs (none in normal use)
 * are dropped. I/O thread only. */
static void pool_stop(imp_worker_t *worker) {
  if (worker->nthreads == 0) return;
  pthread_mutex_lock(&worker->lock);
  worker->stopping = true;
  pthread_cond_broadcast(&worker->jobs_cond);
  pthread_mutex_unlock(&worker->lock);
  for (unsigned i = 0; i < worker->nthreads; i++)
    pthread_join(worker->threads[i], NULL);
  free(worker->threads);
  worker->threads = NULL;
  worker->nthreads = 0;

  pthread_mutex_lock(&worker->lock);
  invocation_t *queue = worker->queue_head;
  worker->queue_head = worker->queue_tail = NULL;
  worker->stopping = false;
  worker->idle = 0;
  worker->waking = false;
  worker->io_awake = false;
  while (queue != NULL) {
    invocation_t *next = queue->next;
    worker->outstanding--;
    invocation_destroy(queue);
    queue = next;
  }
  pthread_mutex_unlock(&worker->lock);
}

/* Starts `n` handler threads. Returns 0 or a negative errno (then none are
 * left running). I/O thread only. */
static int pool_start(imp_worker_t *worker, unsigned n) {
  pthread_attr_t attr;
  int rc = pthread_attr_init(&attr);
  if (rc != 0) return -rc;
  worker->threads = calloc(n, sizeof *worker->threads);
  if (worker->threads == NULL) {
    rc = ENOMEM;
    goto out;
  }
  rc = pthread_attr_setstacksize(&attr, HANDLER_STACK);
  if (rc != 0) goto out;
  for (unsigned i = 0; i < n; i++) {
    rc = pthread_create(&worker->threads[i], &attr, pool_main, worker);
    if (rc != 0) break;
    worker->nthreads++;
  }
out:
  pthread_attr_destroy(&attr);
  if (rc != 0) {
    if (worker->nthreads > 0) {
      pool_stop(worker);
    } else {
      free(worker->threads);
      worker->threads = NULL;
    }
    return -rc;
  }
  return 0;
}

static unsigned outstanding_get(imp_worker_t *worker) {
  pthread_mutex_lock(&worker->lock);
  unsigned n = worker->outstanding;
  pthread_mutex_unlock(&worker->lock);
  return n;
}

/* Queues the jobs that handle_invoke() gathered from one read, with one
 * lock round trip and at most one signal. I/O thread only. */
static void jobs_submit(imp_worker_t *worker) {
  if (worker->batch_head == NULL) return;
  pthread_mutex_lock(&worker->lock);
  if (worker->queue_tail != NULL)
    worker->queue_tail->next = worker->batch_head;
  else
    worker->queue_head = worker->batch_head;
  worker->queue_tail = worker->batch_tail;
  worker->outstanding += worker->batch_len;
  bool wake = jobs_wake_needed(worker);
  pthread_mutex_unlock(&worker->lock);
  worker->batch_head = worker->batch_tail = NULL;
  worker->batch_len = 0;
  if (wake) pthread_cond_signal(&worker->jobs_cond);
}

/* Most jobs that may wait in the queue before the I/O thread stops reading:
 * the server never sends more than `concurrency` at once, but a misbehaving
 * peer must not make the worker buffer without bound. */
static unsigned queue_limit(const imp_worker_t *worker) {
  return worker->fn.concurrency * 2 + 16;
}

/* ---- loading ------------------------------------------------------------- */

/* Calls fini (if any), unloads the object and clears `fn`. */
static void function_close(function_t *fn) {
  if (fn->dl == NULL) return;
  if (fn->fini != NULL) {
    /* Shutdown paths call this after SIGTERM, so do not use call_begin(). */
    atomic_fetch_add(&sig_state.running, 1);
    fn->fini();
    atomic_fetch_sub(&sig_state.running, 1);
  }
  dlclose(fn->dl);
  free(fn->name);
  memset(fn, 0, sizeof *fn);
}

/*
 * Loads the object `path` into `fn` and checks its symbols. Returns 0, or
 * IMP_EARTIFACT with a message in err, or -ENOMEM.
 */
static int function_open(const char *name, uint32_t version, const char *path,
                         function_t *fn, char *err, size_t errlen) {
  char local[PATH_MAX];
  memset(fn, 0, sizeof *fn);
  /* dlopen() searches the library path for a name without a slash. */
  if (strchr(path, '/') == NULL) {
    if ((size_t)snprintf(local, sizeof local, "./%s", path) >= sizeof local) {
      snprintf(err, errlen, "artifact path is too long");
      return IMP_EARTIFACT;
    }
    path = local;
  }
  dlerror();
  void *dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  if (dl == NULL) {
    const char *why = dlerror();
    snprintf(err, errlen, "%s", why != NULL ? why : "dlopen failed");
    return IMP_EARTIFACT;
  }
  const uint32_t *abi = dlsym(dl, "impulse_abi_version");
  if (abi == NULL) {
    snprintf(err, errlen, "missing symbol impulse_abi_version");
    goto fail;
  }
  if (*abi != IMPULSE_ABI_VERSION) {
    snprintf(err, errlen,
             "ABI version %u does not match runtime ABI version %u",
             (unsigned)*abi, (unsigned)IMPULSE_ABI_VERSION);
    goto fail;
  }
  fn->handle = (int (*)(impulse_ctx_t *))dlsym(dl, "impulse_handle");
  if (fn->handle == NULL) {
    snprintf(err, errlen, "missing symbol impulse_handle");
    goto fail;
  }
  fn->init = (int (*)(impulse_ctx_t *))dlsym(dl, "impulse_init");
  fn->fini = (void (*)(void))dlsym(dl, "impulse_fini");
  fn->name = strdup(name);
  if (fn->name == NULL) {
    note_alloc_failure();
    dlclose(dl);
    memset(fn, 0, sizeof *fn);
    return -ENOMEM;
  }
  fn->version = version;
  fn->dl = dl;
  return 0;
fail:
  dlclose(dl);
  memset(fn, 0, sizeof *fn);
  return IMP_EARTIFACT;
}

/* Runs impulse_init() if the object has one. Returns 0, or IMP_EARTIFACT
 * with a message in err. */
static int function_init(imp_worker_t *worker, function_t *fn, char *err,
                         size_t errlen) {
  if (fn->init == NULL) return 0;
  invocation_t invocation;
  invocation_init(&invocation, worker, fn, NULL, 0);
  int status = IMPULSE_ERROR;
  if (call_begin()) {
    status = fn->init(&invocation.ctx);
    call_end();
  }
  if (status != 0) {
    if (invocation.has_error && invocation.error[0] != '\0')
      snprintf(err, errlen, "impulse_init failed: %.960s", invocation.error);
    else
      snprintf(err, errlen, "impulse_init failed with status %d", status);
  }
  invocation_free(&invocation);
  return status != 0 ? IMP_EARTIFACT : 0;
}

/*
 * Limits the data segment so the function gets `memory_mb` MiB beyond what
 * the runtime already uses plus the stacks of the `threads` handler threads
 * about to start. Applied once: the hard limit cannot be raised again.
 */
static void memory_limit_apply(imp_worker_t *worker, uint32_t memory_mb,
                               unsigned threads) {
#if defined(IMPULSE_ASAN) || defined(__SANITIZE_ADDRESS__) || \
    defined(__SANITIZE_THREAD__)
  /* Sanitizers reserve terabytes of shadow memory, all of it counted in
   * VmData: any RLIMIT_DATA would make every later allocation fail. */
  (void)worker;
  (void)memory_mb;
  (void)threads;
#else
  if (memory_mb == 0) return;
  size_t base = vmdata_bytes();
  if (base == 0) {
    IMP_LOG(IMP_LOG_WARN, "%s: cannot read VmData, no memory limit applied",
            worker->label);
    return;
  }
  size_t page = (size_t)sysconf(_SC_PAGESIZE);
  size_t stacks = (size_t)threads * (HANDLER_STACK + page + ALT_STACK);
  size_t limit = base + stacks + ((size_t)memory_mb << 20);
  struct rlimit rl;
  if (getrlimit(RLIMIT_DATA, &rl) == 0 && rl.rlim_max != RLIM_INFINITY &&
      rl.rlim_max < limit)
    limit = rl.rlim_max;
  rl.rlim_cur = rl.rlim_max = limit;
  if (setrlimit(RLIMIT_DATA, &rl) != 0) {
    IMP_LOG(IMP_LOG_WARN, "%s: setrlimit(RLIMIT_DATA): %s", worker->label,
            strerror(errno));
    return;
  }
  atomic_store(&sig_state.mem_limit, limit);
  IMP_LOG(IMP_LOG_DEBUG, "%s: memory limit %u MiB (RLIMIT_DATA %zu bytes)",
          worker->label, (unsigned)memory_mb, limit);
#endif
}

/* Queues an error reply to request `id`. I/O thread only. */
static void reply_error(imp_worker_t *worker, uint64_t id, int code,
                        const char *message) {
  if (append_error(&worker->out, worker->max_frame, id, code, message) != 0)
    fatal_oom("queueing a reply");
}

static void reply_load_ok(imp_worker_t *worker, uint64_t id,
                          uint64_t started_ns) {
  if (imp_wire_append_load_ok(&worker->out, worker->max_frame, id,
                              IMPULSE_ABI_VERSION,
                              (imp_now_ns() - started_ns) / 1000u) != 0)
    fatal_oom("queueing a reply");
}

/* Handles a load request. Called only when no invocation is outstanding. */
static void handle_load(imp_worker_t *worker, uint64_t id,
                        const Impulse__LoadRequest *load, uint64_t started_ns) {
  char err[1024];
  function_t fn;
  if (load->function == NULL || load->function[0] == '\0' ||
      load->path == NULL || load->path[0] == '\0') {
    reply_error(worker, id, IMPULSE__ERROR_CODE__BAD_REQUEST,
                "load request without a function name or path");
    return;
  }
  unsigned concurrency =
      load->has_concurrency && load->concurrency > 0 ? load->concurrency : 1;
  if (concurrency > MAX_CONCURRENCY) concurrency = MAX_CONCURRENCY;
  uint32_t memory_mb =
      load->has_memory_mb ? load->memory_mb : DEFAULT_MEMORY_MB;

  if (load->has_validate_only && load->validate_only) {
    /* The object could be the one being served: a second init/fini on it
     * would tear down the live instance's state. */
    if (worker->fn.dl != NULL) {
      snprintf(err, sizeof err,
               "cannot validate in a worker that serves %s version %u",
               worker->fn.name, (unsigned)worker->fn.version);
      reply_error(worker, id, IMPULSE__ERROR_CODE__BAD_REQUEST, err);
      return;
    }
    int rc = function_open(load->function, load->version, load->path, &fn, err,
                           sizeof err);
    if (rc == 0) {
      rc = function_init(worker, &fn, err, sizeof err);
      if (rc != 0) fn.fini = NULL; /* fini pairs with a successful init */
      function_close(&fn);
    }
    if (rc == -ENOMEM) fatal_oom("loading a function");
    if (rc != 0) {
      reply_error(worker, id, IMPULSE__ERROR_CODE__INVALID_ARTIFACT, err);
      return;
    }
    IMP_LOG(IMP_LOG_DEBUG, "%s: validated %s version %u (%s)", worker->label,
            load->function, (unsigned)load->version, load->path);
    reply_load_ok(worker, id, started_ns);
    return;
  }

  /* Reload in place: the old object goes first, with its handler threads. */
  if (worker->fn.dl != NULL) {
    IMP_LOG(IMP_LOG_DEBUG, "%s: unloading %s version %u", worker->label,
            worker->fn.name, (unsigned)worker->fn.version);
    pool_stop(worker);
    function_close(&worker->fn);
  }
  if (!worker->limit_applied) {
    /* Before dlopen so the object's data and impulse_init() count too. */
    memory_limit_apply(worker, memory_mb, concurrency > 1 ? concurrency : 0);
    worker->limit_applied = true;
  }
  int rc = function_open(load->function, load->version, load->path, &fn, err,
                         sizeof err);
  if (rc == -ENOMEM) fatal_oom("loading a function");
  if (rc != 0) {
    reply_error(worker, id, IMPULSE__ERROR_CODE__INVALID_ARTIFACT, err);
    return;
  }
  rc = function_init(worker, &fn, err, sizeof err);
  if (rc != 0) {
    fn.fini = NULL;
    function_close(&fn);
    reply_error(worker, id, IMPULSE__ERROR_CODE__INVALID_ARTIFACT, err);
    return;
  }
  fn.concurrency = concurrency;
  worker->fn = fn;
  if (concurrency > 1) {
    rc = pool_start(worker, concurrency);
    if (rc != 0) {
      function_close(&worker->fn);
      snprintf(err, sizeof err, "cannot start %u handler threads: %s",
               concurrency, strerror(-rc));
      reply_error(worker, id, IMPULSE__ERROR_CODE__INTERNAL, err);
      return;
    }
  }
  IMP_LOG(IMP_LOG_DEBUG, "%s: loaded %s version %u (%s), concurrency %u",
          worker->label, fn.name, (unsigned)fn.version, load->path,
          concurrency);
  reply_load_ok(worker, id, started_ns);
}

/* ---- invoke dispatch ----------------------------------------------------- */

/* Handles an invoke request; takes `env`. I/O thread only. */
/*
 * Naming the call that crashed (imp_controller_instance_gone()). With
 * concurrency 1 the handler runs here, after the replies to the calls
 * before it were packed but maybe not written: if it dies of a signal,
 * the fatal-signal handler writes them, then a frame naming this call, so
 * that the server blames this call alone and knows the calls sent after
 * it never started. With handler threads that is not attempted (replies
 * are under a lock, several calls run at once), nor when the process ends
 * another way (exit(), SIGKILL): then the server blames every call it has
 * no answer to.
 */
static void crash_flush_arm(imp_worker_t *worker, uint64_t id) {
  sig_state.crash_mark_len = imp_wire_crash_mark(sig_state.crash_mark, id);
  atomic_store(&sig_state.flush_data, worker->out.data + worker->out_off);
  atomic_store(&sig_state.flush_len, worker->out.len - worker->out_off);
  atomic_store(&sig_state.flush_fd, worker->conn_fd);
}

static void crash_flush_disarm(void) {
  atomic_store(&sig_state.flush_fd, -1);
}

/* An invoke or an invoke_batch (see batch_run()); takes `env`. */
static void handle_invoke(imp_worker_t *worker, Impulse__Envelope *env,
                          uint64_t received_ns) {
  bool batch = env->body_case == IMPULSE__ENVELOPE__BODY_INVOKE_BATCH;
  const char *name =
      batch ? env->invoke_batch->function : env->invoke->function;
  uint32_t version =
      !batch && env->invoke->has_version ? env->invoke->version : 0;
  const function_t *fn = &worker->fn;
  char err[512];
  if (fn->dl == NULL) {
    reply_error(worker, env->id, IMPULSE__ERROR_CODE__UNAVAILABLE,
                "worker has no function loaded");
    goto drop;
  }
  /* The gateway names the function and version it expects; a mismatch means
   * the request was meant for another instance. */
  if (strcmp(name, fn->name) != 0 || (version != 0 && version != fn->version)) {
    snprintf(err, sizeof err, "worker serves %s version %u, not %s version %u",
             fn->name, (unsigned)fn->version, name, (unsigned)version);
    reply_error(worker, env->id, IMPULSE__ERROR_CODE__UNAVAILABLE, err);
    goto drop;
  }
  if (batch && worker->nthreads == 0) {
    if (call_begin()) {
      crash_flush_arm(worker, env->id);
      batch_run(worker, env, received_ns, &worker->out);
      crash_flush_disarm();
      call_end();
    }
    goto drop;
  }

  if (worker->nthreads == 0) {
    /* Concurrency 1: run inline on the I/O thread. */
    invocation_t invocation;
    if (invocation_init(&invocation, worker, fn, env, received_ns) != 0) {
      uint64_t id = env->id;
      invocation_free(&invocation); /* frees env */
      reply_error(worker, id, IMPULSE__ERROR_CODE__OUT_OF_MEMORY,
                  "out of memory receiving the request");
      return;
    }
    if (call_begin()) {
      crash_flush_arm(worker, invocation.id);
      int status = fn->handle(&invocation.ctx);
      crash_flush_disarm();
      call_end();
      if (invocation_reply(&invocation, status, &worker->out) != 0)
        fatal_oom("queueing a reply");
    }
    invocation_free(&invocation);
    return;
  }

  invocation_t *invocation = malloc(sizeof *invocation);
  if (invocation == NULL) {
    note_alloc_failure();
    reply_error(worker, env->id, IMPULSE__ERROR_CODE__OUT_OF_MEMORY,
                "out of memory receiving the request");
    goto drop;
  }
  if (invocation_init(invocation, worker, fn, env, received_ns) != 0) {
    uint64_t id = env->id;
    invocation_free(invocation);
    free(invocation);
    reply_error(worker, id, IMPULSE__ERROR_CODE__OUT_OF_MEMORY,
                "out of memory receiving the request");
    return;
  }
  /* Only this thread writes `generation`, so it may read it unlocked. The
   * job reaches the pool in jobs_submit(), with the rest of this read. */
  invocation->generation = worker->generation;
  if (worker->batch_tail != NULL)
    worker->batch_tail->next = invocation;
  else
    worker->batch_head = invocation;
  worker->batch_tail = invocation;
  worker->batch_len++;
  return;
drop:
  imp_wire_request_free(env);
}

static void conn_close(imp_worker_t *worker, int level, const char *why);
static void conn_flush(imp_worker_t *worker);

/* Equal in constant time (the lengths are not secret). */
static bool secret_equal(const char *a, const uint8_t *b, size_t blen) {
  size_t alen = strlen(a);
  if (alen != blen || alen == 0) return false;
  unsigned char d = 0;
  for (size_t i = 0; i < alen; i++) d |= (unsigned char)a[i] ^ b[i];
  return d == 0;
}

/*
 * Attach: a server that restarted proves it owns this worker (the id and
 * the secret it was started with) before anything else on a connection
 * that is not the first. The answer says what is loaded.
 */
static void handle_attach(imp_worker_t *worker, uint64_t id,
                          const Impulse__AttachRequest *a) {
  if (a->instance_id != worker->id ||
      !secret_equal(worker->secret, a->secret.data, a->secret.len)) {
    IMP_LOG(IMP_LOG_WARN, "%s: attach refused: wrong instance or secret",
            worker->label);
    reply_error(worker, id, IMPULSE__ERROR_CODE__UNAUTHENTICATED,
                "wrong instance id or secret");
    conn_flush(worker);
    conn_close(worker, IMP_LOG_DEBUG, "attach refused");
    return;
  }
  worker->attached = true;
  const function_t *fn = &worker->fn;
  if (imp_wire_append_attach_ok(&worker->out, worker->max_frame, id,
                                fn->dl != NULL ? fn->name : NULL, fn->version,
                                fn->concurrency, (int32_t)getpid()) != 0)
    fatal_oom("queueing a reply");
  IMP_LOG(IMP_LOG_INFO, "%s: attached to a new server (%s)", worker->label,
          worker->fn.dl ? worker->fn.name : "generic");
}

/* Handles one decoded frame; takes `env`. */
static void dispatch(imp_worker_t *worker, Impulse__Envelope *env,
                     uint64_t received_ns) {
  if (env->body_case == IMPULSE__ENVELOPE__BODY_ATTACH) {
    handle_attach(worker, env->id, env->attach);
    imp_wire_request_free(env);
    return;
  }
  if (!worker->attached) {
    imp_wire_request_free(env);
    conn_close(worker, IMP_LOG_WARN,
               "a request before attach on a later connection");
    return;
  }
  switch (env->body_case) {
    case IMPULSE__ENVELOPE__BODY_INVOKE:
    case IMPULSE__ENVELOPE__BODY_INVOKE_BATCH:
      handle_invoke(worker, env, received_ns);
      return;
    case IMPULSE__ENVELOPE__BODY_LOAD:
      handle_load(worker, env->id, env->load, received_ns);
      break;
    default:
      IMP_LOG(IMP_LOG_WARN, "%s: unexpected message (body %d)", worker->label,
              (int)env->body_case);
      reply_error(worker, env->id, IMPULSE__ERROR_CODE__BAD_REQUEST,
                  "unexpected message for a worker");
      break;
  }
  imp_wire_request_free(env);
}

/* ---- connection I/O ------------------------------------------------------ */

static size_t out_pending(const imp_worker_t *worker) {
  return worker->out.len - worker->out_off;
}

/* Closes the active connection and forgets everything that belonged to it:
 * buffered input and output, queued jobs, replies of running jobs. */
static void conn_close(imp_worker_t *worker, int level, const char *why) {
  if (worker->conn_fd < 0) return;
  IMP_LOG(level, "%s: closing connection: %s", worker->label, why);
  close(worker->conn_fd);
  worker->conn_fd = -1;
  worker->in.len = 0;
  worker->out.len = 0;
  worker->out_off = 0;
  worker->stalled = false;
  if (worker->in.cap > BUF_KEEP) imp_buf_free(&worker->in);
  if (worker->out.cap > BUF_KEEP) imp_buf_free(&worker->out);

  pthread_mutex_lock(&worker->lock);
  worker->generation++;
  worker->done.len = 0;
  invocation_t *queue = worker->queue_head;
  worker->queue_head = worker->queue_tail = NULL;
  for (invocation_t *i = queue; i != NULL; i = i->next) worker->outstanding--;
  pthread_mutex_unlock(&worker->lock);
  while (queue != NULL) {
    invocation_t *next = queue->next;
    invocation_destroy(queue);
    queue = next;
  }
  queue = worker->batch_head;
  worker->batch_head = worker->batch_tail = NULL;
  worker->batch_len = 0;
  while (queue != NULL) {
    invocation_t *next = queue->next;
    invocation_destroy(queue);
    queue = next;
  }
  worker->orphan_deadline_ms = imp_now_ms() + worker->grace_ms;
}

/* Writes as much pending output as the socket takes. */
static void conn_flush(imp_worker_t *worker) {
  while (worker->conn_fd >= 0 && out_pending(worker) > 0) {
    ssize_t n = send(worker->conn_fd, worker->out.data + worker->out_off,
                     out_pending(worker), MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      conn_close(worker, IMP_LOG_DEBUG, strerror(errno));
      return;
    }
    worker->out_off += (size_t)n;
  }
  if (out_pending(worker) == 0) {
    worker->out.len = worker->out_off = 0;
    if (worker->out.cap > BUF_KEEP) imp_buf_free(&worker->out);
  } else if (worker->out_off > worker->out.len / 2) {
    imp_buf_consume(&worker->out, worker->out_off);
    worker->out_off = 0;
  }
}

/* Reads once from the connection into the input buffer. */
static void conn_read(imp_worker_t *worker) {
  imp_buf_t *in = &worker->in;
  size_t want = READ_CHUNK;
  /* Offer room for the whole frame being received in one read. The decoder
   * has already refused a length prefix above max_frame. */
  if (in->len >= IMP_FRAME_HEADER) {
    size_t frame = IMP_FRAME_HEADER + (size_t)imp_frame_len(in->data);
    if (frame <= IMP_FRAME_HEADER + worker->max_frame && frame > in->len &&
        frame - in->len > want)
      want = frame - in->len;
  }
  if (imp_buf_reserve(in, want) != 0) fatal_oom("reading a request");
  ssize_t n = read(worker->conn_fd, in->data + in->len, in->cap - in->len);
  if (n < 0) {
    if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK) return;
    conn_close(worker, IMP_LOG_DEBUG, strerror(errno));
    return;
  }
  if (n == 0) {
    conn_close(worker, IMP_LOG_DEBUG, "peer closed");
    return;
  }
  in->len += (size_t)n;
}

/*
 * Decodes and handles every complete frame in the input buffer. Stops early
 * (`stalled`) while too much output waits, while the pool queue is full, or
 * when a load must wait for running invocations; the frame is then left in
 * the buffer and decoded again on the next call.
 */
static void conn_process(imp_worker_t *worker) {
  size_t off = 0;
  worker->stalled = false;
  /* Only this thread adds jobs, so the count can only fall meanwhile:
   * deciding on this snapshot stalls early at worst, and a job that ends
   * brings the I/O thread back here (collect_done()). */
  unsigned queued = worker->nthreads > 0 ? outstanding_get(worker) : 0;
  while (worker->conn_fd >= 0 && !atomic_load(&sig_state.term)) {
    if (out_pending(worker) >= OUT_FLUSH) {
      conn_flush(worker);
      if (worker->conn_fd < 0) return;
      if (out_pending(worker) >= OUT_HIGH) {
        worker->stalled = true;
        break;
      }
    }
    unsigned outstanding = queued + worker->batch_len;
    if (outstanding >= queue_limit(worker)) {
      worker->stalled = true;
      break;
    }
    Impulse__Envelope *env = NULL;
    ssize_t n = imp_wire_decode(&worker->decoder, worker->in.data + off,
                                worker->in.len - off, worker->max_frame, &env);
    if (n == 0) break;
    if (n < 0) {
      if (n == -ENOMEM) note_alloc_failure();
      IMP_LOG(IMP_LOG_WARN, "%s: bad frame from the server: %s", worker->label,
              imp_strerror((int)n));
      conn_close(worker, IMP_LOG_DEBUG, imp_strerror((int)n));
      return;
    }
    if (env->body_case == IMPULSE__ENVELOPE__BODY_LOAD && outstanding > 0) {
      imp_wire_request_free(env);
      worker->stalled = true;
      break;
    }
    off += (size_t)n;
    dispatch(worker, env, imp_now_ns());
  }
  jobs_submit(worker);
  if (worker->conn_fd >= 0) imp_buf_consume(&worker->in, off);
  if (worker->in.len == 0 && worker->in.cap > BUF_KEEP)
    imp_buf_free(&worker->in);
}

/*
 * Moves replies packed by the handler threads to the output buffer.
 * Returns whether any job ended since the last call (with or without a
 * reply: a stalled load waits for the count to reach zero). With
 * `sleeping` the I/O thread is about to block in poll(): when nothing
 * ended, io_awake is cleared so that the next job to end writes the
 * eventfd. Otherwise io_awake is set, and jobs ending while this thread
 * works cost no eventfd write: it comes back here before it sleeps.
 */
static bool collect_done(imp_worker_t *worker, bool sleeping) {
  pthread_mutex_lock(&worker->lock);
  bool finished = worker->job_finished;
  worker->job_finished = false;
  worker->io_awake = !sleeping || finished;
  if (worker->done.len > 0) {
    if (out_pending(worker) == 0) {
      /* Swap instead of copying: `out` is empty. */
      imp_buf_t tmp = worker->out;
      worker->out = worker->done;
      worker->done = tmp;
      worker->out_off = 0;
    } else if (imp_buf_append(&worker->out, worker->done.data,
                              worker->done.len) != 0) {
      fatal_oom("collecting replies");
    }
    worker->done.len = 0;
  }
  pthread_mutex_unlock(&worker->lock);
  return finished;
}

/* Resets the eventfd after a wake-up (a handler thread or SIGTERM). */
static void wake_drain(imp_worker_t *worker) {
  uint64_t count;
  ssize_t r = read(worker->wake_fd, &count, sizeof count);
  (void)r;
}

/* Accepts whatever connections are pending; each replaces the previous.
 * The listening descriptor is left blocking (its file status is shared with
 * the server), so poll() guards every accept(). */
static void conn_accept(imp_worker_t *worker) {
  for (;;) {
    struct pollfd pfd = {.fd = worker->listen_fd, .events = POLLIN};
    if (poll(&pfd, 1, 0) <= 0 || !(pfd.revents & POLLIN)) return;
    int fd =
        accept4(worker->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      IMP_LOG(IMP_LOG_ERROR, "%s: accept: %s", worker->label, strerror(errno));
      return;
    }
    if (worker->conn_fd >= 0)
      conn_close(worker, IMP_LOG_DEBUG, "replaced by a newer connection");
    worker->conn_fd = fd;
    /* The first connection is the server that spawned us (it made the
     * socket); any later one must attach first. */
    worker->attached = ++worker->accepted == 1;
    IMP_LOG(IMP_LOG_DEBUG, "%s: connection accepted", worker->label);
  }
}

/* The I/O loop. Returns the exit code. */
static int worker_run(imp_worker_t *worker) {
  for (;;) {
    if (atomic_load(&sig_state.term)) {
      IMP_LOG(IMP_LOG_DEBUG, "%s: terminated by signal", worker->label);
      return IMP_WORKER_EXIT_OK;
    }
    int timeout = -1;
    if (worker->conn_fd < 0) {
      uint64_t now = imp_now_ms();
      if (now >= worker->orphan_deadline_ms) {
        conn_accept(worker);
        if (worker->conn_fd < 0) {
          IMP_LOG(IMP_LOG_DEBUG, "%s: no server connection, exiting",
                  worker->label);
          return IMP_WORKER_EXIT_ORPHAN;
        }
        continue;
      }
      uint64_t left = worker->orphan_deadline_ms - now;
      timeout = left > INT_MAX ? INT_MAX : (int)left;
    }

    /* Jobs that ended while this thread was busy: collect them and go
     * round once more without sleeping. */
    if (worker->nthreads > 0 && collect_done(worker, true)) timeout = 0;

    struct pollfd fds[3];
    nfds_t nfds = 2;
    fds[0] = (struct pollfd){.fd = worker->listen_fd, .events = POLLIN};
    fds[1] = (struct pollfd){.fd = worker->wake_fd, .events = POLLIN};
    if (worker->conn_fd >= 0) {
      short events = 0;
      if (!worker->stalled) events |= POLLIN;
      if (out_pending(worker) > 0) events |= POLLOUT;
      fds[2] = (struct pollfd){.fd = worker->conn_fd, .events = events};
      nfds = 3;
    }
    if (poll(fds, nfds, timeout) < 0) {
      if (errno == EINTR) continue;
      IMP_LOG(IMP_LOG_ERROR, "%s: poll: %s", worker->label, strerror(errno));
      return IMP_WORKER_EXIT_ORPHAN;
    }

    if (fds[1].revents & POLLIN) wake_drain(worker);
    if (worker->nthreads > 0) collect_done(worker, false);
    int conn_fd = worker->conn_fd;
    if (fds[0].revents & POLLIN) conn_accept(worker);
    /* Only look at the connection's events if it was not just replaced. */
    if (nfds == 3 && worker->conn_fd == conn_fd) {
      short revents = fds[2].revents;
      if (revents & POLLOUT) conn_flush(worker);
      if (worker->conn_fd >= 0 && (revents & (POLLIN | POLLHUP | POLLERR)))
        conn_read(worker);
    }
    /* Also when stalled with nothing buffered: that re-arms POLLIN. */
    if (worker->conn_fd >= 0 && (worker->in.len > 0 || worker->stalled))
      conn_process(worker);
    if (worker->conn_fd >= 0 && out_pending(worker) > 0) conn_flush(worker);
  }
}

/* ---- startup and shutdown ------------------------------------------------ */

static void usage(void) {
  fprintf(
      stderr,
      "usage: impulse worker --listen-fd N [--id ID] [--max-frame BYTES]\n"
      "                      [--grace-ms MS] [--log-level LEVEL]\n"
      "\n"
      "The function runtime process. Started by the server, not by hand.\n"
      "\n"
      "  --listen-fd N        listening UNIX socket to accept the server on\n"
      "  --id ID              instance id shown in log lines\n"
      "  --max-frame BYTES    largest frame accepted or sent (default %u)\n"
      "  --grace-ms MS        wait this long for a new connection after\n"
      "                       the server's connection ends (default 0)\n"
      "  --log-level LEVEL    error, warn, info or debug (default info)\n",
      (unsigned)IMP_DEFAULT_MAX_FRAME);
}

/* Parses a decimal number in [min, max]. Returns 0 or -EINVAL. */
static int parse_number(const char *s, unsigned long long min,
                        unsigned long long max, unsigned long long *out) {
  char *end;
  if (s[0] < '0' || s[0] > '9') return -EINVAL;
  errno = 0;
  unsigned long long v = strtoull(s, &end, 10);
  if (errno != 0 || *end != '\0' || v < min || v > max) return -EINVAL;
  *out = v;
  return 0;
}

/* Parses the command line into `worker`. Returns -1 to go on running, or
 * the code to exit with (--help, bad usage). */
static int parse_args(imp_worker_t *worker, int argc, char **argv) {
  enum { OPT_LISTEN_FD = 256, OPT_ID, OPT_MAX_FRAME, OPT_GRACE, OPT_LOG };
  static const struct option options[] = {
      {"listen-fd", required_argument, NULL, OPT_LISTEN_FD},
      {"id", required_argument, NULL, OPT_ID},
      {"max-frame", required_argument, NULL, OPT_MAX_FRAME},
      {"grace-ms", required_argument, NULL, OPT_GRACE},
      {"log-level", required_argument, NULL, OPT_LOG},
      {"help", no_argument, NULL, 'h'},
      {NULL, 0, NULL, 0},
  };
  const char *id = NULL;
  unsigned long long v;
  int opt;
  optind = 0; /* full re-initialisation: getopt may have run before */
  while ((opt = getopt_long(argc, argv, "+h", options, NULL)) != -1) {
    switch (opt) {
      case OPT_LISTEN_FD:
        if (parse_number(optarg, 0, INT_MAX, &v) != 0) goto bad;
        worker->listen_fd = (int)v;
        break;
      case OPT_ID:
        if (strlen(optarg) > MAX_ID_LEN) goto bad;
        id = optarg;
        worker->id = strtoull(optarg, NULL, 10);
        break;
      case OPT_MAX_FRAME:
        /* Room for RESPONSE_SLACK plus a useful payload. */
        if (parse_number(optarg, 4096, UINT32_MAX, &v) != 0) goto bad;
        worker->max_frame = (size_t)v;
        break;
      case OPT_GRACE:
        if (parse_number(optarg, 0, UINT32_MAX, &v) != 0) goto bad;
        worker->grace_ms = (unsigned)v;
        break;
      case OPT_LOG: {
        int level = imp_log_parse(optarg);
        if (level < 0) goto bad;
        imp_log_level = level;
        break;
      }
      case 'h':
        usage(); /* to stderr too: the worker never writes to stdout */
        return IMP_WORKER_EXIT_OK;
      default: usage(); return IMP_WORKER_EXIT_USAGE;
    }
  }
  if (optind != argc || worker->listen_fd < 0) goto bad_quiet;
  if (id != NULL)
    snprintf(worker->label, sizeof worker->label, "worker %s", id);
  return -1;
bad:
  fprintf(stderr, "worker: invalid value for --%s: %s\n",
          opt == OPT_LISTEN_FD   ? "listen-fd"
          : opt == OPT_ID        ? "id"
          : opt == OPT_MAX_FRAME ? "max-frame"
          : opt == OPT_GRACE     ? "grace-ms"
                                 : "log-level",
          optarg);
bad_quiet:
  usage();
  return IMP_WORKER_EXIT_USAGE;
}

/* Checks that the inherited descriptor is a listening socket and keeps it
 * from leaking into anything the function executes. */
static int listen_fd_check(imp_worker_t *worker) {
  int accepting = 0;
  socklen_t len = sizeof accepting;
  if (getsockopt(worker->listen_fd, SOL_SOCKET, SO_ACCEPTCONN, &accepting,
                 &len) != 0 ||
      !accepting) {
    IMP_LOG(IMP_LOG_ERROR, "%s: fd %d is not a listening socket", worker->label,
            worker->listen_fd);
    return -EINVAL;
  }
  int flags = fcntl(worker->listen_fd, F_GETFD);
  if (flags >= 0) fcntl(worker->listen_fd, F_SETFD, flags | FD_CLOEXEC);
  return 0;
}

/* Releases everything; returns `code`. Exits directly if a handler is still
 * running, since its thread cannot be joined. */
static int worker_shutdown(imp_worker_t *worker, int code) {
  /* No call may start from now on (see call_begin()). */
  atomic_store(&sig_state.term, 1);
  if (atomic_load(&sig_state.running) > 0) _exit(code);
  pool_stop(worker);
  function_close(&worker->fn);
  if (worker->conn_fd >= 0) close(worker->conn_fd);
  atomic_store(&sig_state.wake_fd, -1);
  close(worker->wake_fd);
  imp_buf_free(&worker->in);
  imp_buf_free(&worker->out);
  imp_buf_free(&worker->done);
  pthread_cond_destroy(&worker->jobs_cond);
  pthread_mutex_destroy(&worker->lock);
  IMP_LOG(IMP_LOG_DEBUG, "%s: exit %d", worker->label, code);
  return code;
}

int imp_worker_main(int argc, char **argv) {
  /* First, before anything allocates: every glibc arena is a separate heap
   * whose reservations would eat into the function's memory budget. */
  mallopt(M_ARENA_MAX, 2);

  imp_worker_t worker_storage;
  imp_worker_t *worker = &worker_storage;
  memset(worker, 0, sizeof *worker);
  worker->listen_fd = -1;
  worker->conn_fd = -1;
  worker->wake_fd = -1;
  worker->max_frame = IMP_DEFAULT_MAX_FRAME;
  imp_wire_decoder_init(&worker->decoder);
  snprintf(worker->label, sizeof worker->label, "worker");

  int rc = parse_args(worker, argc, argv);
  if (rc >= 0) return rc;
  if (listen_fd_check(worker) != 0) return IMP_WORKER_EXIT_USAGE;

  /* The secret a restarted server attaches with; functions must not see
   * it. */
  const char *secret = getenv(SECRET_ENV);
  if (secret != NULL && strlen(secret) <= MAX_SECRET)
    snprintf(worker->secret, sizeof worker->secret, "%s", secret);
  unsetenv(SECRET_ENV);

  /* Without a grace period (or a secret to re-attach with) the worker
   * ends with its server: a handler stuck on the I/O thread would never
   * see the connection close. With one, it outlives a server crash and
   * waits --grace-ms for the restarted server to attach. */
  if (worker->grace_ms == 0 || worker->secret[0] == '\0') {
    pid_t parent = getppid();
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent || parent == 1) return IMP_WORKER_EXIT_ORPHAN;
  }

  worker->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (worker->wake_fd < 0) {
    IMP_LOG(IMP_LOG_ERROR, "%s: eventfd: %s", worker->label, strerror(errno));
    return IMP_WORKER_EXIT_ORPHAN;
  }
  pthread_mutex_init(&worker->lock, NULL);
  pthread_cond_init(&worker->jobs_cond, NULL);
  atomic_store(&sig_state.wake_fd, worker->wake_fd);
  void *altstack = altstack_install();
  signals_install();

  /* The server connects right after spawning; if it never does, do not
   * linger forever. */
  worker->orphan_deadline_ms =
      imp_now_ms() + (worker->grace_ms > FIRST_CONNECT_MS ? worker->grace_ms
                                                          : FIRST_CONNECT_MS);
  IMP_LOG(IMP_LOG_DEBUG, "%s: started, listening on fd %d", worker->label,
          worker->listen_fd);
  rc = worker_run(worker);
  rc = worker_shutdown(worker, rc);
  altstack_free(altstack);
  return rc;
}
