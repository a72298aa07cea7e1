/*
 * The I/O thread: the server's connection and the loop around it. One
 * connection at a time (a newer one replaces the older), read and written
 * with poll() on the listening socket, the connection and the eventfd the
 * pool and SIGTERM wake it through. Every complete frame of a read is
 * decoded (core/wire.h) and dispatched: attach here, load to load.c,
 * invokes to invoke.c; the jobs of one read reach the pool together, and
 * pending output is written once per turn.
 */
#include <limits.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "worker/conn.h"
#include "worker/crash.h"
#include "worker/invoke.h"
#include "worker/load.h"
#include "worker/pool.h"

#define READ_CHUNK (256u << 10) /* smallest read buffer offered to read() */
#define OUT_FLUSH (256u << 10)  /* write mid-batch once this much is ready */
#define OUT_HIGH (8u << 20)     /* stop taking requests above this backlog */
#define BUF_KEEP (4u << 20)     /* idle I/O buffers above this are freed */

static void conn_close(imp_worker_t *worker, int level, const char *why);
static void conn_flush(imp_worker_t *worker);

/* ---- requests ------------------------------------------------------------ */

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
    imp_wk_reply_error(worker, id, IMPULSE__ERROR_CODE__UNAUTHENTICATED,
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
    imp_wk_fatal_oom("queueing a reply");
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
      imp_wk_invoke(worker, env, received_ns);
      return;
    case IMPULSE__ENVELOPE__BODY_LOAD:
      imp_wk_load(worker, env->id, env->load, received_ns);
      break;
    default:
      IMP_LOG(IMP_LOG_WARN, "%s: unexpected message (body %d)", worker->label,
              (int)env->body_case);
      imp_wk_reply_error(worker, env->id, IMPULSE__ERROR_CODE__BAD_REQUEST,
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
    imp_wk_invocation_destroy(queue);
    queue = next;
  }
  queue = worker->batch_head;
  worker->batch_head = worker->batch_tail = NULL;
  worker->batch_len = 0;
  while (queue != NULL) {
    invocation_t *next = queue->next;
    imp_wk_invocation_destroy(queue);
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
  /* Room for the whole frame being received in one read. The decoder
   * has already refused a length prefix above max_frame. */
  size_t want =
      imp_frame_read_room(in->data, in->len, worker->max_frame, READ_CHUNK);
  if (imp_buf_reserve(in, want) != 0) imp_wk_fatal_oom("reading a request");
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
  unsigned queued = worker->nthreads > 0 ? imp_wk_outstanding(worker) : 0;
  while (worker->conn_fd >= 0 && !imp_wk_terminated()) {
    if (out_pending(worker) >= OUT_FLUSH) {
      conn_flush(worker);
      if (worker->conn_fd < 0) return;
      if (out_pending(worker) >= OUT_HIGH) {
        worker->stalled = true;
        break;
      }
    }
    unsigned outstanding = queued + worker->batch_len;
    if (outstanding >= imp_wk_queue_limit(worker)) {
      worker->stalled = true;
      break;
    }
    /* No bytes, no frame; the buffer may also be freed (data NULL) after
     * a big frame, when a stall brings this thread back. */
    if (off == worker->in.len) break;
    Impulse__Envelope *env = NULL;
    ssize_t n = imp_wire_decode(&worker->decoder, worker->in.data + off,
                                worker->in.len - off, worker->max_frame, &env);
    if (n == 0) break;
    if (n < 0) {
      if (n == -ENOMEM) imp_wk_note_alloc_failure();
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
  imp_wk_jobs_submit(worker);
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
      imp_wk_fatal_oom("collecting replies");
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

int imp_wk_run(imp_worker_t *worker) {
  for (;;) {
    if (imp_wk_terminated()) {
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
