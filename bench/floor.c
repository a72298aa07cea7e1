/*
 * The floor: a raw libuv echo server speaking Impulse framing (4-byte
 * big-endian length + body). It does not decode the body: for every
 * complete frame of a read it sends the same bytes back, and all the frames
 * completed by one read go out in a single uv_write. That is the cheapest
 * server a client of this protocol can talk to over loopback on this
 * machine, so Impulse's figures are reported as a ratio to it.
 *
 * Runs in a child process forked before the parent created any loop; it
 * dies with its parent (PR_SET_PDEATHSIG) or on SIGKILL from the cleanup.
 */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>
#include <uv.h>

#include "bench.h"
#include "core/codec.h"

#define FLOOR_READ_CHUNK (64u * 1024u)

typedef struct econn_s {
  uv_tcp_t tcp;
  char *in;
  size_t len, cap;
} econn_t;

/* One write: the request and the bytes it owns, freed in its callback. */
typedef struct ewrite_s {
  uv_write_t req;
  uv_buf_t buf;
  char data[];
} ewrite_t;

static void on_econn_closed(uv_handle_t *h) {
  econn_t *ec = (econn_t *)h;
  free(ec->in);
  free(ec);
}

static void econn_close(econn_t *ec) {
  if (!uv_is_closing((uv_handle_t *)&ec->tcp))
    uv_close((uv_handle_t *)&ec->tcp, on_econn_closed);
}

static void on_ealloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  econn_t *ec = (econn_t *)h;
  (void)suggested;
  if (ec->cap - ec->len < FLOOR_READ_CHUNK) {
    size_t cap = ec->cap ? ec->cap : FLOOR_READ_CHUNK;
    while (cap - ec->len < FLOOR_READ_CHUNK) cap *= 2;
    char *p = realloc(ec->in, cap);
    if (p == NULL) {
      buf->base = NULL;
      buf->len = 0;
      return;
    }
    ec->in = p;
    ec->cap = cap;
  }
  buf->base = ec->in + ec->len;
  buf->len = ec->cap - ec->len;
}

static void on_ewrite(uv_write_t *req, int status) {
  ewrite_t *w = (ewrite_t *)req;
  if (status < 0) econn_close((econn_t *)req->handle);
  free(w);
}

static void on_eread(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  econn_t *ec = (econn_t *)s;
  (void)buf;
  if (nread == 0) return;
  if (nread < 0) {
    econn_close(ec);
    return;
  }
  ec->len += (size_t)nread;
  size_t end = 0;
  while (ec->len - end >= IMP_FRAME_HEADER) {
    uint32_t n = imp_frame_len(ec->in + end);
    if (n > BENCH_MAX_FRAME) {
      econn_close(ec);
      return;
    }
    if (ec->len - end - IMP_FRAME_HEADER < n) break;
    end += IMP_FRAME_HEADER + n;
  }
  if (end == 0) return;
  ewrite_t *w = malloc(sizeof *w + end);
  if (w == NULL) {
    econn_close(ec);
    return;
  }
  memcpy(w->data, ec->in, end);
  w->buf = uv_buf_init(w->data, (unsigned)end);
  if (uv_write(&w->req, s, &w->buf, 1, on_ewrite) != 0) {
    free(w);
    econn_close(ec);
    return;
  }
  memmove(ec->in, ec->in + end, ec->len - end);
  ec->len -= end;
}

static void on_econnection(uv_stream_t *listener, int status) {
  if (status < 0) return;
  econn_t *ec = calloc(1, sizeof *ec);
  if (ec == NULL) return;
  uv_tcp_init(listener->loop, &ec->tcp);
  if (uv_accept(listener, (uv_stream_t *)&ec->tcp) != 0) {
    econn_close(ec);
    return;
  }
  uv_tcp_nodelay(&ec->tcp, 1);
  if (uv_read_start((uv_stream_t *)&ec->tcp, on_ealloc, on_eread) != 0)
    econn_close(ec);
}

void bench_floor_main(int report_fd) {
  pid_t parent = getppid();
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() != parent) _exit(0); /* the parent died before prctl */
  signal(SIGINT, SIG_DFL);
  signal(SIGTERM, SIG_DFL);
  signal(SIGHUP, SIG_DFL);
  signal(SIGPIPE, SIG_IGN);

  uv_loop_t loop;
  uv_tcp_t listener;
  struct sockaddr_in sa;
  int port = -1;
  if (uv_loop_init(&loop) != 0) goto fail;
  uv_ip4_addr("127.0.0.1", 0, &sa);
  uv_tcp_init(&loop, &listener);
  if (uv_tcp_bind(&listener, (const struct sockaddr *)&sa, 0) != 0 ||
      uv_listen((uv_stream_t *)&listener, 1024, on_econnection) != 0)
    goto fail;
  struct sockaddr_storage ss;
  int sslen = sizeof ss;
  if (uv_tcp_getsockname(&listener, (struct sockaddr *)&ss, &sslen) != 0)
    goto fail;
  port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
  if (write(report_fd, &port, sizeof port) != (ssize_t)sizeof port) _exit(1);
  close(report_fd);
  uv_run(&loop, UV_RUN_DEFAULT);
  _exit(0);
fail:
  port = -1;
  if (write(report_fd, &port, sizeof port) < 0) _exit(1);
  _exit(1);
}
