/*
 * Impulse client library: one TCP connection to the gateway carrying framed
 * Envelopes, blocking calls and pipelined invocations. The public contract
 * is include/impulse/client.h; runtime/client_internal.h adds raw envelope
 * calls for the CLI.
 *
 * The socket is non-blocking underneath and every wait goes through poll():
 * that is how the receive timeout is honoured, and it lets a flush keep
 * reading answers while the kernel send buffer is full (otherwise a client
 * writing a long pipeline and a server writing its answers could both block
 * forever on full socket buffers).
 *
 * Everything read is decoded at once: each read fills a large buffer and
 * every complete frame in it becomes an Envelope queued in `ready`, in
 * arrival order. A blocking call takes its own answer out of that queue by
 * id; impulse_invoke_recv() pops the oldest one.
 *
 * Invariant: a call returns either with its answer or with the connection
 * closed, so `ready` only ever holds answers to pipelined invocations. Every
 * answer must match a request still unanswered, which bounds `ready` (a
 * server sending more is cut off).
 *
 * The server's frame limit is learnt while connecting: a ServerInfo request
 * is pipelined right behind the Hello, which costs no extra round trip.
 */
#include "client/client_internal.h"

#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#ifndef IMPULSE_VERSION
#define IMPULSE_VERSION "unknown"
#endif

/* Free room guaranteed for each read, so one read takes many frames. */
#define IMP_CLIENT_READ_CHUNK (128u << 10)
/* impulse_invoke_send() flushes once this much output is queued. */
#define IMP_CLIENT_FLUSH_AT (64u << 10)
/* Bound on connect + hello: set_timeout() cannot have been called yet. */
#define IMP_CLIENT_CONNECT_TIMEOUT_MS 10000u
/* How long an idempotent call is retried when the client has no timeout. */
#define IMP_CLIENT_RETRY_MS 30000u
/* An idle I/O buffer larger than this (after a big frame) is freed. */
#define IMP_CLIENT_KEEP_BUF (1u << 20)
#define IMP_CLIENT_MIN_MAX_FRAME (64u << 10)
#define IMP_CLIENT_FUNCTION_STATUS_PREFIX "function returned status "

struct impulse_client_s {
  int fd;                    /* -1 when never connected or broken */
  uint64_t last_id;          /* id of the last request queued; from 1 */
  uint32_t timeout_ms;       /* per call, 0 = wait forever */
  size_t max_frame;          /* largest frame sent or accepted */
  size_t unanswered;         /* requests queued, answer not yet received */
  size_t pipelined;          /* invoke_send()s not yet invoke_recv()ed */
  imp_buf_t out;             /* frames queued, not yet written */
  imp_buf_t in;              /* bytes read, starting at a frame boundary */
  Impulse__Envelope **ready; /* decoded answers, entries [head, len) */
  size_t ready_head, ready_len, ready_cap;
  int admin;                  /* HelloResponse.admin */
  char *server;               /* HelloResponse.server, owned, may be NULL */
  char *token;                /* as given to connect, owned, may be NULL */
  char addr[NI_MAXHOST + 16]; /* "host:port" as given */
  char broken[512];           /* why the connection is gone */
  char error[1024];           /* message for impulse_client_error() */
};

/* A point in time a call must finish by; at == 0 means never. */
typedef struct deadline_s {
  uint64_t at;
  uint32_t ms;
} deadline_t;

static deadline_t deadline_after(uint32_t ms) {
  deadline_t dl = {ms ? imp_now_ms() + ms : 0, ms};
  return dl;
}

/* Milliseconds left as a poll() timeout: -1 for none, 0 when passed. */
static int poll_timeout(const deadline_t *dl) {
  if (dl->at == 0) return -1;
  uint64_t now = imp_now_ms();
  if (now >= dl->at) return 0;
  uint64_t left = dl->at - now;
  return left > INT_MAX ? INT_MAX : (int)left;
}

static void set_error(impulse_client_t *client, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void set_error(impulse_client_t *client, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(client->error, sizeof client->error, fmt, ap);
  va_end(ap);
}

/* Closes the connection for good: pending output is dropped, answers
 * already decoded stay queued for impulse_invoke_recv(). Records why and
 * returns `status`. */
static int fail_conn(impulse_client_t *client, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail_conn(impulse_client_t *client, int status, const char *fmt,
                     ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(client->broken, sizeof client->broken, fmt, ap);
  va_end(ap);
  snprintf(client->error, sizeof client->error, "%s", client->broken);
  if (client->fd >= 0) close(client->fd);
  client->fd = -1;
  imp_buf_free(&client->out);
  imp_buf_free(&client->in);
  return status;
}

static int check_conn(impulse_client_t *client) {
  if (client->fd >= 0) return 0;
  set_error(client, "not connected to %s: %s", client->addr, client->broken);
  return IMPULSE_S_CONNECTION;
}

/* Maps Error.code to a status; codes this library does not know (a newer
 * server) become INTERNAL. */
static int error_status(int32_t code) {
  if (code >= 1 && code <= 16) return -(int)code;
  return IMPULSE_S_INTERNAL;
}

/* Writes the text of an Error answer to buf. */
static void error_text(const Impulse__Error *err, char *buf, size_t len) {
  const char *msg = err->message ? err->message : "";
  if (err->code >= 1 && err->code <= 16)
    snprintf(buf, len, "%s", *msg ? msg : impulse_status_name(-err->code));
  else
    snprintf(buf, len, "unknown error code %d: %s", (int)err->code, msg);
}

const char *impulse_status_name(int status) {
  switch (status) {
    case IMPULSE_S_OK: return "OK";
    case IMPULSE_S_BAD_REQUEST: return "BAD_REQUEST";
    case IMPULSE_S_UNAUTHENTICATED: return "UNAUTHENTICATED";
    case IMPULSE_S_NOT_FOUND: return "NOT_FOUND";
    case IMPULSE_S_TOO_LARGE: return "TOO_LARGE";
    case IMPULSE_S_OVERLOADED: return "OVERLOADED";
    case IMPULSE_S_TIMEOUT: return "TIMEOUT";
    case IMPULSE_S_CRASHED: return "CRASHED";
    case IMPULSE_S_FUNCTION_ERROR: return "FUNCTION_ERROR";
    case IMPULSE_S_INVALID_ARTIFACT: return "INVALID_ARTIFACT";
    case IMPULSE_S_OUT_OF_MEMORY: return "OUT_OF_MEMORY";
    case IMPULSE_S_UNAVAILABLE: return "UNAVAILABLE";
    case IMPULSE_S_INTERNAL: return "INTERNAL";
    case IMPULSE_S_SHUTTING_DOWN: return "SHUTTING_DOWN";
    case IMPULSE_S_EXISTS: return "EXISTS";
    case IMPULSE_S_IN_PROGRESS: return "IN_PROGRESS";
    case IMPULSE_S_PERMISSION_DENIED: return "PERMISSION_DENIED";
    case IMPULSE_S_CONNECTION: return "CONNECTION";
    case IMPULSE_S_PROTOCOL: return "PROTOCOL";
    case IMPULSE_S_NOMEM: return "NOMEM";
    case IMPULSE_S_INVALID: return "INVALID";
    default: return "UNKNOWN";
  }
}

/* ---- answer queue ------------------------------------------------------ */

static size_t ready_count(const impulse_client_t *client) {
  return client->ready_len - client->ready_head;
}

static int ready_push(impulse_client_t *client, Impulse__Envelope *env) {
  if (client->ready_len == client->ready_cap) {
    if (client->ready_head > 0 && client->ready_head >= client->ready_cap / 2) {
      /* Mostly consumed: slide down instead of growing. */
      memmove(client->ready, client->ready + client->ready_head,
              ready_count(client) * sizeof *client->ready);
      client->ready_len -= client->ready_head;
      client->ready_head = 0;
    } else {
      size_t cap = client->ready_cap ? client->ready_cap * 2 : 16;
      Impulse__Envelope **p = realloc(client->ready, cap * sizeof *p);
      if (p == NULL) return -ENOMEM;
      client->ready = p;
      client->ready_cap = cap;
    }
  }
  client->ready[client->ready_len++] = env;
  return 0;
}

static void ready_reset_if_empty(impulse_client_t *client) {
  if (client->ready_head == client->ready_len)
    client->ready_head = client->ready_len = 0;
}

static Impulse__Envelope *ready_pop(impulse_client_t *client) {
  if (ready_count(client) == 0) return NULL;
  Impulse__Envelope *env = client->ready[client->ready_head++];
  ready_reset_if_empty(client);
  return env;
}

/* Takes the answer with `id` out of the queue, or returns NULL. */
static Impulse__Envelope *ready_take(impulse_client_t *client, uint64_t id) {
  for (size_t i = client->ready_head; i < client->ready_len; i++) {
    Impulse__Envelope *env = client->ready[i];
    if (env->id != id) continue;
    memmove(client->ready + i, client->ready + i + 1,
            (client->ready_len - i - 1) * sizeof *client->ready);
    client->ready_len--;
    ready_reset_if_empty(client);
    return env;
  }
  return NULL;
}

/* ---- socket I/O -------------------------------------------------------- */

/* Queues one decoded answer (taken). */
static int accept_answer(impulse_client_t *client, Impulse__Envelope *env) {
  int rc;
  if (env->id == 0 && env->body_case == IMPULSE__ENVELOPE__BODY_ERROR) {
    /* Not an answer to a request: the server gives up on the connection. */
    char text[512];
    error_text(env->error, text, sizeof text);
    rc = fail_conn(client, error_status(env->error->code),
                   "%s closed the connection: %s", client->addr, text);
    goto fail;
  }
  if (env->id == 0 || env->id > client->last_id) {
    rc = fail_conn(client, IMPULSE_S_PROTOCOL,
                   "%s answered request id %llu, which was never sent",
                   client->addr, (unsigned long long)env->id);
    goto fail;
  }
  if (client->unanswered == 0) {
    rc = fail_conn(client, IMPULSE_S_PROTOCOL,
                   "%s sent more answers than there were requests",
                   client->addr);
    goto fail;
  }
  if (ready_push(client, env) != 0) {
    rc = fail_conn(client, IMPULSE_S_NOMEM, "out of memory reading from %s",
                   client->addr);
    goto fail;
  }
  client->unanswered--;
  return 0;
fail:
  impulse__envelope__free_unpacked(env, NULL);
  return rc;
}

/* Decodes every complete frame in the read buffer. */
static int decode_all(impulse_client_t *client) {
  size_t off = 0;
  while (off < client->in.len) {
    Impulse__Envelope *env = NULL;
    ssize_t n = imp_frame_decode(client->in.data + off, client->in.len - off,
                                 client->max_frame, NULL, &env);
    if (n == 0) break;
    if (n == IMP_EFRAMETOOBIG)
      return fail_conn(client, IMPULSE_S_PROTOCOL,
                       "%s sent a frame of %lu bytes, above the %zu-byte limit "
                       "(is it an impulse server?)",
                       client->addr,
                       (unsigned long)imp_frame_len(client->in.data + off),
                       client->max_frame);
    if (n < 0)
      return fail_conn(client, IMPULSE_S_PROTOCOL,
                       "%s sent a frame that does not decode "
                       "(is it an impulse server?)",
                       client->addr);
    off += (size_t)n;
    int rc = accept_answer(client, env);
    if (rc < 0) return rc;
  }
  imp_buf_consume(&client->in, off);
  if (client->in.len == 0 && client->in.cap > IMP_CLIENT_KEEP_BUF)
    imp_buf_free(&client->in);
  return 0;
}

/* Waits for `events` on the socket; returns the revents or a status (the
 * connection is closed on timeout). */
static int wait_io(impulse_client_t *client, short events,
                   const deadline_t *dl) {
  struct pollfd pfd = {.fd = client->fd, .events = events};
  for (;;) {
    int ms = poll_timeout(dl);
    if (ms == 0)
      return fail_conn(client, IMPULSE_S_CONNECTION,
                       "no answer from %s within %u ms", client->addr,
                       (unsigned)dl->ms);
    int n = poll(&pfd, 1, ms);
    if (n > 0) return pfd.revents;
    if (n < 0 && errno != EINTR)
      return fail_conn(client, IMPULSE_S_CONNECTION,
                       "waiting on the connection to %s failed: %s",
                       client->addr, strerror(errno));
  }
}

/* Makes room for the next read (at least `at_least` bytes). 0 or a
 * status. */
static int read_room(impulse_client_t *client, size_t at_least) {
  /* A big frame in progress: make room for all of it at once. */
  size_t want = imp_frame_read_room(client->in.data, client->in.len,
                                    client->max_frame, IMP_CLIENT_READ_CHUNK);
  if (imp_buf_reserve(&client->in, want > at_least ? want : at_least) != 0)
    return fail_conn(client, IMPULSE_S_NOMEM, "out of memory reading from %s",
                     client->addr);
  return 0;
}

int imp_client_received(impulse_client_t *client, const void *data,
                        size_t len) {
  int rc = check_conn(client);
  if (rc != 0) return rc;
  if (len == 0) return 0;
  rc = read_room(client, len);
  if (rc != 0) return rc;
  memcpy(client->in.data + client->in.len, data, len);
  client->in.len += len;
  return decode_all(client);
}

/* Reads what is available (waiting for something when `wait`) and decodes
 * it. Returns 0 or a status. */
static int read_more(impulse_client_t *client, const deadline_t *dl, int wait) {
  int rc = read_room(client, 0);
  if (rc != 0) return rc;
  for (;;) {
    ssize_t n = recv(client->fd, client->in.data + client->in.len,
                     client->in.cap - client->in.len, 0);
    if (n > 0) {
      client->in.len += (size_t)n;
      return decode_all(client);
    }
    if (n == 0)
      return fail_conn(client, IMPULSE_S_CONNECTION,
                       "connection to %s closed by the server", client->addr);
    if (errno == EINTR) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK)
      return fail_conn(client, IMPULSE_S_CONNECTION,
                       "connection to %s lost: %s", client->addr,
                       strerror(errno));
    if (!wait) return 0;
    int rc = wait_io(client, POLLIN, dl);
    if (rc < 0) return rc;
  }
}

/* Writes all queued output, reading answers meanwhile. */
static int flush(impulse_client_t *client, const deadline_t *dl) {
  if (client->out.len == 0) return 0;
  int rc = check_conn(client);
  if (rc != 0) return rc;
  size_t off = 0;
  while (off < client->out.len) {
    ssize_t n = send(client->fd, client->out.data + off, client->out.len - off,
                     MSG_NOSIGNAL);
    if (n > 0) {
      off += (size_t)n;
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
      return fail_conn(client, IMPULSE_S_CONNECTION,
                       "connection to %s lost: %s", client->addr,
                       strerror(errno));
    rc = wait_io(client, POLLOUT | POLLIN, dl);
    if (rc < 0) return rc;
    if (rc & (POLLIN | POLLHUP | POLLERR)) {
      rc = read_more(client, dl, 0);
      if (rc < 0) return rc;
    }
  }
  client->out.len = 0;
  if (client->out.cap > IMP_CLIENT_KEEP_BUF) imp_buf_free(&client->out);
  return 0;
}

/* Waits for the answer with `id`; *env is taken by the caller. */
static int wait_for(impulse_client_t *client, uint64_t id, const deadline_t *dl,
                    Impulse__Envelope **env) {
  for (;;) {
    Impulse__Envelope *e = ready_take(client, id);
    if (e != NULL) {
      *env = e;
      return 0;
    }
    int rc = check_conn(client);
    if (rc != 0) return rc;
    rc = read_more(client, dl, 1);
    if (rc < 0) {
      /* The answer may have come in just before the connection broke. */
      *env = ready_take(client, id);
      return *env != NULL ? 0 : rc;
    }
  }
}

/* ---- requests ---------------------------------------------------------- */

/* Assigns the next id to `req` and appends its frame to the output. */
static int queue_request(impulse_client_t *client, Impulse__Envelope *req) {
  int rc = check_conn(client);
  if (rc != 0) return rc;
  req->id = client->last_id + 1;
  rc = imp_frame_append(&client->out, req, client->max_frame);
  if (rc == IMP_EFRAMETOOBIG) {
    set_error(client,
              "request of %zu bytes is larger than the %zu-byte frame limit "
              "of %s",
              impulse__envelope__get_packed_size(req), client->max_frame,
              client->addr);
    return IMPULSE_S_TOO_LARGE;
  }
  if (rc != 0) {
    set_error(client, "out of memory");
    return IMPULSE_S_NOMEM;
  }
  client->last_id++;
  client->unanswered++;
  return 0;
}

/* Sends `req` and waits for its answer, whatever its body. */
static int call_raw(impulse_client_t *client, Impulse__Envelope *req,
                    const deadline_t *dl, Impulse__Envelope **resp) {
  int rc = queue_request(client, req);
  if (rc != 0) return rc;
  rc = flush(client, dl);
  if (rc != 0) return rc;
  return wait_for(client, req->id, dl, resp);
}

int imp_client_call(impulse_client_t *client, Impulse__Envelope *req,
                    Impulse__Envelope **resp) {
  if (client == NULL) return IMPULSE_S_INVALID;
  if (req == NULL || resp == NULL ||
      req->body_case == IMPULSE__ENVELOPE__BODY__NOT_SET) {
    set_error(client, "imp_client_call: no request");
    return IMPULSE_S_INVALID;
  }
  deadline_t dl = deadline_after(client->timeout_ms);
  Impulse__Envelope *env = NULL;
  int rc = call_raw(client, req, &dl, &env);
  if (rc != 0) return rc;
  if (env->body_case == IMPULSE__ENVELOPE__BODY_ERROR) {
    error_text(env->error, client->error, sizeof client->error);
    rc = error_status(env->error->code);
    impulse__envelope__free_unpacked(env, NULL);
    return rc;
  }
  *resp = env;
  return 0;
}

int imp_client_call_expect(impulse_client_t *client, Impulse__Envelope *req,
                           Impulse__Envelope__BodyCase expect,
                           Impulse__Envelope **resp) {
  Impulse__Envelope *env = NULL;
  int rc = imp_client_call(client, req, &env);
  if (rc != 0) return rc;
  if (env->body_case != expect) {
    set_error(client, "%s answered with an unexpected message (%d, not %d)",
              client->addr, (int)env->body_case, (int)expect);
    impulse__envelope__free_unpacked(env, NULL);
    return IMPULSE_S_PROTOCOL;
  }
  *resp = env;
  return 0;
}

/* Bookkeeping after a pipelined request was queued: counts it, reports its
 * id, and flushes once enough output has piled up. */
static int pipelined_queued(impulse_client_t *client, uint64_t sent,
                            uint64_t *id) {
  client->pipelined++;
  if (id != NULL) *id = sent;
  if (client->out.len <= IMP_CLIENT_FLUSH_AT) return 0;
  deadline_t dl = deadline_after(client->timeout_ms);
  return flush(client, &dl);
}

/* Waits for the next answer to a pipelined request, in arrival order. Puts
 * queued requests on their way first, even when an answer is at hand. */
static int pipelined_next(impulse_client_t *client, Impulse__Envelope **out) {
  deadline_t dl = deadline_after(client->timeout_ms);
  int rc = flush(client, &dl);
  Impulse__Envelope *env;
  while ((env = ready_pop(client)) == NULL) {
    if (rc != 0) return rc;
    rc = check_conn(client);
    if (rc == 0) rc = read_more(client, &dl, 1);
  }
  if (client->pipelined > 0) client->pipelined--;
  *out = env;
  return 0;
}

int imp_client_send(impulse_client_t *client, Impulse__Envelope *req,
                    uint64_t *id) {
  if (client == NULL) return IMPULSE_S_INVALID;
  if (req == NULL || req->body_case == IMPULSE__ENVELOPE__BODY__NOT_SET) {
    set_error(client, "imp_client_send: no request");
    return IMPULSE_S_INVALID;
  }
  int rc = queue_request(client, req);
  if (rc != 0) return rc;
  return pipelined_queued(client, req->id, id);
}

int imp_client_recv(impulse_client_t *client, Impulse__Envelope **resp) {
  if (client == NULL) return IMPULSE_S_INVALID;
  if (resp == NULL) {
    set_error(client, "imp_client_recv: resp is NULL");
    return IMPULSE_S_INVALID;
  }
  if (client->pipelined == 0) {
    set_error(client, "no request in flight");
    return IMPULSE_S_INVALID;
  }
  return pipelined_next(client, resp);
}

/* ---- connection -------------------------------------------------------- */

/* Connects a non-blocking socket to host:port, trying every address. */
static int open_socket(impulse_client_t *client, const char *host, int port,
                       const deadline_t *dl) {
  struct addrinfo hints, *res = NULL;
  char service[16];
  memset(&hints, 0, sizeof hints);
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  snprintf(service, sizeof service, "%d", port);
  int gai = getaddrinfo(host, service, &hints, &res);
  if (gai != 0)
    return fail_conn(client, IMPULSE_S_CONNECTION, "cannot resolve %s: %s",
                     client->addr,
                     gai == EAI_SYSTEM ? strerror(errno) : gai_strerror(gai));
  int fd = -1, err = ECONNREFUSED;
  for (struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next) {
    fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
                ai->ai_protocol);
    if (fd < 0) {
      err = errno;
      continue;
    }
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) break;
    err = errno;
    if (err == EINPROGRESS) {
      struct pollfd pfd = {.fd = fd, .events = POLLOUT};
      int n;
      do {
        int ms = poll_timeout(dl);
        n = ms == 0 ? 0 : poll(&pfd, 1, ms);
      } while (n < 0 && errno == EINTR);
      socklen_t len = sizeof err;
      if (n == 0)
        err = ETIMEDOUT;
      else if (n < 0)
        err = errno;
      else if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
        err = errno;
      if (err == 0) break;
    }
    close(fd);
    fd = -1;
  }
  freeaddrinfo(res);
  if (fd < 0)
    return fail_conn(client, IMPULSE_S_CONNECTION, "cannot connect to %s: %s",
                     client->addr, strerror(err));
  int one = 1;
  /* Small request/response frames: do not wait for Nagle. Best effort. */
  (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  client->fd = fd;
  return 0;
}

/* Says hello and, pipelined right behind it, asks for the server's frame
 * limit. */
static int handshake(impulse_client_t *client, const char *token,
                     const deadline_t *dl) {
  Impulse__Envelope req = IMPULSE__ENVELOPE__INIT;
  Impulse__Envelope info_req = IMPULSE__ENVELOPE__INIT;
  Impulse__HelloRequest hello = IMPULSE__HELLO_REQUEST__INIT;
  Impulse__ServerInfoRequest info = IMPULSE__SERVER_INFO_REQUEST__INIT;
  Impulse__Envelope *resp = NULL;
  hello.token = token != NULL && *token ? (char *)token : NULL;
  hello.client = (char *)"impulse-client/" IMPULSE_VERSION;
  req.body_case = IMPULSE__ENVELOPE__BODY_HELLO;
  req.hello = &hello;
  info_req.body_case = IMPULSE__ENVELOPE__BODY_SERVER_INFO;
  info_req.server_info = &info;
  int rc = queue_request(client, &req);
  if (rc == 0) rc = queue_request(client, &info_req);
  if (rc == 0) rc = flush(client, dl);
  if (rc == 0) rc = wait_for(client, req.id, dl, &resp);
  if (rc != 0) return rc;
  if (resp->body_case == IMPULSE__ENVELOPE__BODY_ERROR) {
    char text[512];
    error_text(resp->error, text, sizeof text);
    rc = fail_conn(client, error_status(resp->error->code), "%s", text);
    goto out;
  }
  if (resp->body_case != IMPULSE__ENVELOPE__BODY_HELLO_OK) {
    rc = fail_conn(client, IMPULSE_S_PROTOCOL,
                   "%s did not answer the hello (is it an impulse server?)",
                   client->addr);
    goto out;
  }
  client->admin = resp->hello_ok->has_admin && resp->hello_ok->admin;
  free(client->server);
  client->server = NULL;
  if (resp->hello_ok->server != NULL)
    client->server = strdup(resp->hello_ok->server);
  impulse__envelope__free_unpacked(resp, NULL);
  resp = NULL;

  rc = wait_for(client, info_req.id, dl, &resp);
  if (rc != 0) return rc;
  /* Any other answer (say, a server that keeps ServerInfo for the admin)
   * leaves the default limit. */
  if (resp->body_case == IMPULSE__ENVELOPE__BODY_SERVER_INFO_OK &&
      resp->server_info_ok->has_max_frame &&
      resp->server_info_ok->max_frame > 0)
    imp_client_set_max_frame(client, resp->server_info_ok->max_frame);
out:
  impulse__envelope__free_unpacked(resp, NULL);
  return rc;
}

static impulse_client_t *client_new(void) {
  impulse_client_t *client = calloc(1, sizeof *client);
  if (client == NULL) return NULL;
  client->fd = -1;
  client->max_frame = IMP_DEFAULT_MAX_FRAME;
  snprintf(client->broken, sizeof client->broken, "never connected");
  return client;
}

int imp_client_open_fd(int fd, const char *name, impulse_client_t **out) {
  *out = client_new();
  if (*out == NULL) {
    close(fd);
    return IMPULSE_S_NOMEM;
  }
  (*out)->fd = fd;
  snprintf((*out)->addr, sizeof(*out)->addr, "%s", name);
  return 0;
}

int impulse_client_connect(const char *addr, const char *token,
                           impulse_client_t **out) {
  if (out == NULL) return IMPULSE_S_INVALID;
  *out = NULL;
  impulse_client_t *client = client_new();
  if (client == NULL) return IMPULSE_S_NOMEM;
  *out = client;

  if (addr == NULL || *addr == '\0') addr = getenv("IMPULSE_ADDR");
  if (addr == NULL || *addr == '\0') addr = IMP_CLIENT_DEFAULT_ADDR;
  if (token == NULL) token = getenv("IMPULSE_TOKEN");
  if (token != NULL && *token != '\0') {
    client->token = strdup(token);
    if (client->token == NULL) return IMPULSE_S_NOMEM;
  }

  char host[NI_MAXHOST];
  int port = 0;
  if (strlen(addr) >= sizeof client->addr ||
      imp_parse_hostport(addr, host, sizeof host, &port) != 0 || port == 0 ||
      host[0] == '\0') {
    snprintf(client->addr, sizeof client->addr, "%.*s", 64, addr);
    fail_conn(client, IMPULSE_S_INVALID,
              "invalid server address '%s': expected HOST:PORT", client->addr);
    return IMPULSE_S_INVALID;
  }
  snprintf(client->addr, sizeof client->addr, "%s", addr);

  /* set_timeout() cannot have been called yet: bound the handshake here so
   * a silent peer does not hang the caller. */
  deadline_t dl = deadline_after(IMP_CLIENT_CONNECT_TIMEOUT_MS);
  int rc = open_socket(client, host, port, &dl);
  if (rc == 0) rc = handshake(client, token, &dl);
  /* Whatever failed, leave no half-open connection behind. */
  if (rc != 0 && client->fd >= 0) fail_conn(client, rc, "%s", client->error);
  return rc;
}

void impulse_client_close(impulse_client_t *client) {
  if (client == NULL) return;
  if (client->fd >= 0) close(client->fd);
  for (size_t i = client->ready_head; i < client->ready_len; i++)
    impulse__envelope__free_unpacked(client->ready[i], NULL);
  free(client->ready);
  imp_buf_free(&client->out);
  imp_buf_free(&client->in);
  free(client->server);
  free(client->token);
  free(client);
}

const char *impulse_client_error(const impulse_client_t *client) {
  if (client == NULL) return "out of memory";
  return client->error[0] ? client->error : "no error";
}

void impulse_client_set_timeout(impulse_client_t *client, uint32_t ms) {
  if (client != NULL) client->timeout_ms = ms;
}

const char *imp_client_addr(const impulse_client_t *client) {
  return client->addr;
}

const char *imp_client_server(const impulse_client_t *client) {
  return client->server ? client->server : "";
}

int imp_client_is_admin(const impulse_client_t *client) {
  return client->admin;
}

void imp_client_set_max_frame(impulse_client_t *client, size_t max_frame) {
  if (max_frame < IMP_CLIENT_MIN_MAX_FRAME)
    max_frame = IMP_CLIENT_MIN_MAX_FRAME;
  if (max_frame > IMP_CLIENT_MAX_FRAME_CEILING)
    max_frame = IMP_CLIENT_MAX_FRAME_CEILING;
  client->max_frame = max_frame;
}

size_t imp_client_max_frame(const impulse_client_t *client) {
  return client->max_frame;
}

/* ---- invocations ------------------------------------------------------- */

/* Builds and queues an InvokeRequest; *id gets its id. */
static int queue_invoke(impulse_client_t *client, const char *function,
                        const void *payload, size_t len,
                        const impulse_invoke_opts_t *opts, uint64_t *id) {
  Impulse__Envelope req = IMPULSE__ENVELOPE__INIT;
  Impulse__InvokeRequest invoke = IMPULSE__INVOKE_REQUEST__INIT;
  Impulse__Header *headers = NULL, **hp = NULL;
  size_t count = opts ? opts->header_count : 0;
  int rc;

  if (function == NULL || *function == '\0') {
    set_error(client, "no function name");
    return IMPULSE_S_INVALID;
  }
  if (payload == NULL && len > 0) {
    set_error(client, "payload is NULL but its length is %zu", len);
    return IMPULSE_S_INVALID;
  }
  if (count > 0 && opts->headers == NULL) {
    set_error(client, "header_count is %zu but headers is NULL", count);
    return IMPULSE_S_INVALID;
  }
  for (size_t i = 0; i < count; i++) {
    const impulse_header_t *h = &opts->headers[i];
    if (h->name == NULL || *h->name == '\0' ||
        (h->value == NULL && h->len > 0)) {
      set_error(client, "header %zu has no name or a NULL value", i);
      return IMPULSE_S_INVALID;
    }
  }

  if (count > 0) {
    headers = calloc(count, sizeof *headers);
    hp = calloc(count, sizeof *hp);
    if (headers == NULL || hp == NULL) {
      set_error(client, "out of memory");
      rc = IMPULSE_S_NOMEM;
      goto out;
    }
    for (size_t i = 0; i < count; i++) {
      impulse__header__init(&headers[i]);
      headers[i].name = (char *)opts->headers[i].name;
      headers[i].has_value = 1;
      headers[i].value.data = (uint8_t *)opts->headers[i].value;
      headers[i].value.len = opts->headers[i].len;
      hp[i] = &headers[i];
    }
  }
  invoke.function = (char *)function;
  invoke.has_payload = 1;
  invoke.payload.data = (uint8_t *)payload;
  invoke.payload.len = len;
  invoke.n_headers = count;
  invoke.headers = hp;
  if (opts != NULL && opts->deadline_ms > 0) {
    invoke.has_deadline_ms = 1;
    invoke.deadline_ms = opts->deadline_ms;
  }
  if (opts != NULL && opts->idempotency_key != NULL &&
      *opts->idempotency_key != '\0')
    invoke.idempotency_key = (char *)opts->idempotency_key;
  req.body_case = IMPULSE__ENVELOPE__BODY_INVOKE;
  req.invoke = &invoke;
  rc = queue_request(client, &req);
  if (rc == 0) *id = req.id;
out:
  free(headers);
  free(hp);
  return rc;
}

/* size += n, failing on overflow. */
static int add_size(size_t *size, size_t n) {
  if (*size > SIZE_MAX - n) return -1;
  *size += n;
  return 0;
}

/* Turns an invoke answer (taken, freed here) into one malloc'd response. */
static int make_response(impulse_client_t *client, Impulse__Envelope *env,
                         impulse_response_t **out) {
  ProtobufCBinaryData payload = {0, NULL};
  Impulse__Header **hs = NULL;
  size_t nh = 0;
  char text[1024] = "";
  int status = IMPULSE_S_OK, function_status = 0, rc;
  uint32_t version = 0;

  if (env->body_case == IMPULSE__ENVELOPE__BODY_INVOKE_OK) {
    Impulse__InvokeResponse *r = env->invoke_ok;
    if (r->has_payload) payload = r->payload;
    hs = r->headers;
    nh = r->n_headers;
    if (r->has_status) function_status = r->status;
    if (r->has_version) version = r->version;
  } else if (env->body_case == IMPULSE__ENVELOPE__BODY_ERROR) {
    status = error_status(env->error->code);
    error_text(env->error, text, sizeof text);
    const char *msg = env->error->message;
    size_t plen = strlen(IMP_CLIENT_FUNCTION_STATUS_PREFIX);
    if (msg != NULL &&
        strncmp(msg, IMP_CLIENT_FUNCTION_STATUS_PREFIX, plen) == 0) {
      long v = strtol(msg + plen, NULL, 10);
      function_status = v < INT_MIN ? INT_MIN : v > INT_MAX ? INT_MAX : (int)v;
    }
  } else {
    set_error(client, "%s answered an invocation with an unexpected message",
              client->addr);
    rc = IMPULSE_S_PROTOCOL;
    goto out;
  }

  /* One block: the struct, the header array, then the bytes. */
  size_t total = sizeof(impulse_response_t), tlen = strlen(text);
  int overflow = add_size(&total, payload.len) || add_size(&total, 1) ||
                 add_size(&total, tlen + 1);
  if (nh > (SIZE_MAX - total) / sizeof(impulse_header_t)) overflow = 1;
  if (!overflow) total += nh * sizeof(impulse_header_t);
  for (size_t i = 0; i < nh && !overflow; i++)
    overflow = add_size(&total, strlen(hs[i]->name) + 1) ||
               add_size(&total, hs[i]->value.len) || add_size(&total, 1);
  impulse_response_t *resp = overflow ? NULL : malloc(total);
  if (resp == NULL) {
    set_error(client, "out of memory");
    rc = IMPULSE_S_NOMEM;
    goto out;
  }
  impulse_header_t *headers = (impulse_header_t *)(resp + 1);
  char *p = (char *)(headers + nh);
  memset(resp, 0, sizeof *resp);
  resp->id = env->id;
  resp->status = status;
  resp->function_status = function_status;
  resp->version = version;
  resp->header_count = nh;
  resp->headers = nh ? headers : NULL;
  if (payload.len) memcpy(p, payload.data, payload.len);
  p[payload.len] = '\0';
  resp->payload = p;
  resp->len = payload.len;
  p += payload.len + 1;
  for (size_t i = 0; i < nh; i++) {
    size_t n = strlen(hs[i]->name);
    memcpy(p, hs[i]->name, n + 1);
    headers[i].name = p;
    p += n + 1;
    if (hs[i]->value.len) memcpy(p, hs[i]->value.data, hs[i]->value.len);
    p[hs[i]->value.len] = '\0';
    headers[i].value = p;
    headers[i].len = hs[i]->value.len;
    p += hs[i]->value.len + 1;
  }
  if (status != IMPULSE_S_OK) {
    memcpy(p, text, tlen + 1);
    resp->error = p;
  }
  *out = resp;
  rc = IMPULSE_S_OK;
out:
  impulse__envelope__free_unpacked(env, NULL);
  return rc;
}

/* Connects again to the address and with the token of the first connect,
 * after the connection broke. Answers still owed on the old connection
 * are forgotten. */
static int reconnect(impulse_client_t *client, const deadline_t *dl) {
  if (client->fd >= 0) return 0;
  char host[NI_MAXHOST];
  int port = 0;
  if (imp_parse_hostport(client->addr, host, sizeof host, &port) != 0)
    return IMPULSE_S_INVALID;
  client->unanswered = 0;
  deadline_t cdl = deadline_after(IMP_CLIENT_CONNECT_TIMEOUT_MS);
  if (dl->at != 0 && dl->at < cdl.at) cdl = *dl;
  int rc = open_socket(client, host, port, &cdl);
  if (rc == 0) rc = handshake(client, client->token, &cdl);
  if (rc != 0 && client->fd >= 0) fail_conn(client, rc, "%s", client->error);
  return rc;
}

static int invoke_once(impulse_client_t *client, const char *function,
                       const void *payload, size_t len,
                       const impulse_invoke_opts_t *opts, const deadline_t *dl,
                       impulse_response_t **out) {
  Impulse__Envelope *env = NULL;
  uint64_t id = 0;
  int rc = queue_invoke(client, function, payload, len, opts, &id);
  if (rc != 0) return rc;
  rc = flush(client, dl);
  if (rc != 0) return rc;
  rc = wait_for(client, id, dl, &env);
  if (rc != 0) return rc;
  return make_response(client, env, out);
}

int impulse_invoke(impulse_client_t *client, const char *function,
                   const void *payload, size_t len,
                   const impulse_invoke_opts_t *opts,
                   impulse_response_t **out) {
  if (client == NULL) return IMPULSE_S_INVALID;
  if (out == NULL) {
    set_error(client, "impulse_invoke: out is NULL");
    return IMPULSE_S_INVALID;
  }
  *out = NULL;
  deadline_t dl = deadline_after(client->timeout_ms);
  int rc = invoke_once(client, function, payload, len, opts, &dl, out);
  /* A call with an idempotency key may be sent again: the server answers
   * a retry from its store. Retried, with backoff and within the client's
   * timeout (IMP_CLIENT_RETRY_MS when it has none): a broken connection
   * (reconnecting first: the server may be restarting) and IN_PROGRESS
   * (the first attempt is still running). Not with invocations pipelined
   * on the connection: those would be lost by a reconnect. */
  int idem = opts != NULL && opts->idempotency_key != NULL &&
             opts->idempotency_key[0] != '\0' && client->pipelined == 0;
  deadline_t rdl = dl.at ? dl : deadline_after(IMP_CLIENT_RETRY_MS);
  unsigned backoff = 20;
  while (idem) {
    int in_progress =
        rc == 0 && *out != NULL && (*out)->status == IMPULSE_S_IN_PROGRESS;
    if (rc != IMPULSE_S_CONNECTION && !in_progress) break;
    int left = poll_timeout(&rdl);
    if (left == 0) break;
    if (in_progress) {
      impulse_response_free(*out);
      *out = NULL;
    }
    unsigned ms =
        left > 0 && (unsigned)left < backoff ? (unsigned)left : backoff;
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
    backoff = backoff < 500 ? backoff * 2 : 1000;
    if (client->fd < 0) {
      rc = reconnect(client, &rdl);
      if (rc == IMPULSE_S_CONNECTION) continue;
      if (rc != 0) break;
    }
    rc = invoke_once(client, function, payload, len, opts, &rdl, out);
  }
  return rc;
}

int impulse_invoke_send(impulse_client_t *client, const char *function,
                        const void *payload, size_t len,
                        const impulse_invoke_opts_t *opts, uint64_t *id) {
  if (client == NULL) return IMPULSE_S_INVALID;
  uint64_t sent = 0;
  int rc = queue_invoke(client, function, payload, len, opts, &sent);
  if (rc != 0) return rc;
  return pipelined_queued(client, sent, id);
}

int impulse_invoke_recv(impulse_client_t *client, impulse_response_t **out) {
  if (client == NULL) return IMPULSE_S_INVALID;
  if (out == NULL) {
    set_error(client, "impulse_invoke_recv: out is NULL");
    return IMPULSE_S_INVALID;
  }
  if (client->pipelined == 0) {
    set_error(client, "no invocation in flight");
    return IMPULSE_S_INVALID;
  }
  Impulse__Envelope *env;
  int rc = pipelined_next(client, &env);
  if (rc != 0) return rc;
  return make_response(client, env, out);
}

void impulse_response_free(impulse_response_t *response) {
  free(response);
}

/* ---- control calls ----------------------------------------------------- */

int impulse_deploy(impulse_client_t *client, const char *name,
                   const void *artifact, size_t len,
                   const impulse_deploy_opts_t *opts, uint32_t *version) {
  if (client == NULL) return IMPULSE_S_INVALID;
  if (name == NULL || *name == '\0' || (artifact == NULL && len > 0)) {
    set_error(client, "impulse_deploy: no name or no artifact");
    return IMPULSE_S_INVALID;
  }
  Impulse__Envelope req = IMPULSE__ENVELOPE__INIT, *resp = NULL;
  Impulse__DeployRequest deploy = IMPULSE__DEPLOY_REQUEST__INIT;
  Impulse__FunctionConfig config = IMPULSE__FUNCTION_CONFIG__INIT;
  int any = 0;
  if (opts != NULL) {
    /* A setting given (`cond`) is sent, and the config with it. */
#define SET(field, cond, value) \
  if (cond) {                   \
    config.has_##field = 1;     \
    config.field = (value);     \
    any = 1;                    \
  }
    SET(concurrency, opts->concurrency, opts->concurrency)
    SET(timeout_ms, opts->timeout_ms, opts->timeout_ms)
    SET(memory_mb, opts->memory_mb, opts->memory_mb)
    SET(min_instances, opts->min_instances || opts->has_min,
        opts->min_instances)
    SET(max_instances, opts->max_instances || opts->has_max,
        opts->max_instances)
    SET(target_concurrency, opts->target_concurrency > 0,
        opts->target_concurrency)
    SET(scale_to_zero_after_s, opts->has_scale_to_zero,
        opts->scale_to_zero_after_s)
    SET(env_replace, opts->env_replace || opts->nenv > 0, 1)
    SET(cpu_millis, opts->cpu_millis || opts->has_cpu, opts->cpu_millis)
    SET(secrets_replace, opts->secrets_replace || opts->nsecrets > 0, 1)
#undef SET
    if (opts->policy != NULL) {
      config.policy = (char *)opts->policy;
      any = 1;
    }
    if (opts->network != NULL) {
      config.network = (char *)opts->network;
      any = 1;
    }
    config.n_env = opts->nenv;
    config.env = (char **)opts->env;
    config.n_secrets = opts->nsecrets;
    config.secrets = (char **)opts->secrets;
  }
  deploy.name = (char *)name;
  deploy.artifact.data = (uint8_t *)artifact;
  deploy.artifact.len = len;
  deploy.config = any ? &config : NULL;
  if (opts != NULL && opts->no_promote) {
    deploy.has_no_promote = 1;
    deploy.no_promote = 1;
  }
  if (opts != NULL && opts->max_step_pct) {
    deploy.has_max_step_pct = 1;
    deploy.max_step_pct = opts->max_step_pct;
  }
  if (opts != NULL && opts->validate) deploy.validate = (char *)opts->validate;
  req.body_case = IMPULSE__ENVELOPE__BODY_DEPLOY;
  req.deploy = &deploy;
  int rc = imp_client_call_expect(client, &req,
                                  IMPULSE__ENVELOPE__BODY_DEPLOY_OK, &resp);
  if (rc != 0) return rc;
  if (version != NULL) *version = resp->deploy_ok->version;
  impulse__envelope__free_unpacked(resp, NULL);
  return 0;
}

int impulse_delete(impulse_client_t *client, const char *name) {
  if (client == NULL) return IMPULSE_S_INVALID;
  if (name == NULL || *name == '\0') {
    set_error(client, "impulse_delete: no name");
    return IMPULSE_S_INVALID;
  }
  Impulse__Envelope req = IMPULSE__ENVELOPE__INIT, *resp = NULL;
  Impulse__DeleteRequest del = IMPULSE__DELETE_REQUEST__INIT;
  del.name = (char *)name;
  req.body_case = IMPULSE__ENVELOPE__BODY_DELETE;
  req.delete_ = &del;
  int rc = imp_client_call_expect(client, &req,
                                  IMPULSE__ENVELOPE__BODY_DELETE_OK, &resp);
  if (rc != 0) return rc;
  impulse__envelope__free_unpacked(resp, NULL);
  return 0;
}

int impulse_scale(impulse_client_t *client, const char *name, int min,
                  int max) {
  if (client == NULL) return IMPULSE_S_INVALID;
  if (name == NULL || *name == '\0' || min < -1 || max < -1) {
    set_error(client, "impulse_scale: no name, or min/max below -1");
    return IMPULSE_S_INVALID;
  }
  Impulse__Envelope req = IMPULSE__ENVELOPE__INIT, *resp = NULL;
  Impulse__ScaleRequest scale = IMPULSE__SCALE_REQUEST__INIT;
  scale.name = (char *)name;
  if (min >= 0) {
    scale.has_min_instances = 1;
    scale.min_instances = (uint32_t)min;
  }
  if (max >= 0) {
    scale.has_max_instances = 1;
    scale.max_instances = (uint32_t)max;
  }
  req.body_case = IMPULSE__ENVELOPE__BODY_SCALE;
  req.scale = &scale;
  int rc = imp_client_call_expect(client, &req,
                                  IMPULSE__ENVELOPE__BODY_SCALE_OK, &resp);
  if (rc != 0) return rc;
  impulse__envelope__free_unpacked(resp, NULL);
  return 0;
}

int impulse_secret_set(impulse_client_t *client, const char *name,
                       const void *value, size_t len, int *created) {
  if (client == NULL) return IMPULSE_S_INVALID;
  if (name == NULL || *name == '\0' || (value == NULL && len > 0)) {
    set_error(client, "impulse_secret_set: no name or no value");
    return IMPULSE_S_INVALID;
  }
  Impulse__Envelope req = IMPULSE__ENVELOPE__INIT, *resp = NULL;
  Impulse__SecretSetRequest set = IMPULSE__SECRET_SET_REQUEST__INIT;
  set.name = (char *)name;
  set.value.data = (uint8_t *)value;
  set.value.len = len;
  req.body_case = IMPULSE__ENVELOPE__BODY_SECRET_SET;
  req.secret_set = &set;
  int rc = imp_client_call_expect(client, &req,
                                  IMPULSE__ENVELOPE__BODY_SECRET_SET_OK, &resp);
  if (rc != 0) return rc;
  if (created != NULL) *created = resp->secret_set_ok->created;
  impulse__envelope__free_unpacked(resp, NULL);
  return 0;
}

int impulse_secret_rm(impulse_client_t *client, const char *name) {
  if (client == NULL) return IMPULSE_S_INVALID;
  if (name == NULL || *name == '\0') {
    set_error(client, "impulse_secret_rm: no name");
    return IMPULSE_S_INVALID;
  }
  Impulse__Envelope req = IMPULSE__ENVELOPE__INIT, *resp = NULL;
  Impulse__SecretDeleteRequest del = IMPULSE__SECRET_DELETE_REQUEST__INIT;
  del.name = (char *)name;
  req.body_case = IMPULSE__ENVELOPE__BODY_SECRET_DELETE;
  req.secret_delete = &del;
  int rc = imp_client_call_expect(
      client, &req, IMPULSE__ENVELOPE__BODY_SECRET_DELETE_OK, &resp);
  if (rc != 0) return rc;
  impulse__envelope__free_unpacked(resp, NULL);
  return 0;
}
