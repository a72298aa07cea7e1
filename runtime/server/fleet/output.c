/*
 * A worker's output read into its function's log (see output.h).
 */
#include "server/fleet/output.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/common.h"

#define READ_CHUNK (32u << 10)
#define NPIPES 3

/* One pipe: stdout, stderr (lines) or the impulse_log channel (frames). */
typedef struct out_pipe_s {
  uv_pipe_t pipe;
  imp_output_t *out;
  int stream;   /* imp_fnlog_stream_t */
  int child_fd; /* write end until given to the worker; -1 after */
  int open;     /* handle initialised and not yet closed */
  int skipping; /* the rest of a line already cut */
  size_t len;   /* bytes of a partial line or frame in `line` */
  char line[IMP_OUTPUT_HDR + IMP_FNLOG_LINE_MAX];
} out_pipe_t;

struct imp_output_s {
  imp_fnlogs_t *logs;
  uint64_t instance;
  char function[65]; /* "" while generic */
  uint32_t version;
  int released;         /* the instance is gone */
  unsigned open;        /* pipes not yet closed */
  char buf[READ_CHUNK]; /* one read at a time, on the loop thread */
  out_pipe_t pipes[NPIPES];
};

static void maybe_free(imp_output_t *out) {
  if (out->released && out->open == 0) free(out);
}

static void on_pipe_closed(uv_handle_t *h) {
  out_pipe_t *p = IMP_CONTAINER_OF(h, out_pipe_t, pipe);
  imp_output_t *out = p->out;
  out->open--;
  maybe_free(out);
}

static void pipe_close(out_pipe_t *p) {
  if (!p->open) return;
  p->open = 0;
  uv_close((uv_handle_t *)&p->pipe, on_pipe_closed);
}

/* One line (or impulse_log message) of the worker. */
static void emit(out_pipe_t *p, int stream, int level, const char *data,
                 size_t len, int cut) {
  imp_output_t *out = p->out;
  if (out->function[0] == '\0') {
    /* Nothing loaded, so no function code ran: the worker's own words,
     * into the server's log, escaped to one line. */
    imp_buf_t b = {0};
    if (imp_escape_bytes(&b, data, len) == 0)
      IMP_LOG(IMP_LOG_WARN, "instance %llu (generic) %s: %s%s",
              (unsigned long long)out->instance, imp_fnlog_stream_name(stream),
              b.data, cut ? " [cut]" : "");
    imp_buf_free(&b);
    return;
  }
  imp_fnlog_t *log = imp_fnlogs_get(out->logs, out->function, 1);
  if (log == NULL) return;
  imp_fnlog_append(out->logs, log, imp_now_ms(), imp_wall_ms(), out->instance,
                   out->version, stream, level, data, len, cut);
}

/* stdout and stderr: lines, each at most IMP_FNLOG_LINE_MAX bytes. */
static void take_lines(out_pipe_t *p, const char *data, size_t n) {
  while (n > 0) {
    const char *nl = memchr(data, '\n', n);
    size_t k = nl ? (size_t)(nl - data) : n;
    if (p->skipping) {
      if (nl) p->skipping = 0;
    } else if (p->len == 0 && nl && k <= IMP_FNLOG_LINE_MAX) {
      emit(p, p->stream, 0, data, k, 0); /* whole in this read: no copy */
    } else {
      size_t room = IMP_FNLOG_LINE_MAX - p->len;
      size_t take = k < room ? k : room;
      memcpy(p->line + p->len, data, take);
      p->len += take;
      if (k > take || (p->len == IMP_FNLOG_LINE_MAX && !nl)) {
        emit(p, p->stream, 0, p->line, p->len, 1);
        p->len = 0;
        p->skipping = nl == NULL;
      } else if (nl) {
        emit(p, p->stream, 0, p->line, p->len, 0);
        p->len = 0;
      }
    }
    if (nl == NULL) break;
    data = nl + 1;
    n -= k + 1;
  }
}

/* The impulse_log channel: frames (output.h). A malformed one means the
 * function wrote to the descriptor itself: the channel is closed. */
static int take_frames(out_pipe_t *p, const char *data, size_t n) {
  while (n > 0) {
    size_t want = IMP_OUTPUT_HDR;
    if (p->len >= IMP_OUTPUT_HDR)
      want +=
          ((size_t)(unsigned char)p->line[2] << 8) | (unsigned char)p->line[3];
    size_t take = want - p->len < n ? want - p->len : n;
    memcpy(p->line + p->len, data, take);
    p->len += take;
    data += take;
    n -= take;
    if (p->len == IMP_OUTPUT_HDR) {
      size_t mlen =
          ((size_t)(unsigned char)p->line[2] << 8) | (unsigned char)p->line[3];
      if ((p->line[0] != 'L' && p->line[0] != 'C') ||
          (unsigned char)p->line[1] > 3 || mlen > IMP_OUTPUT_MSG_MAX)
        return -1;
      want = IMP_OUTPUT_HDR + mlen;
    }
    if (p->len >= IMP_OUTPUT_HDR && p->len == want) {
      emit(p, IMP_FNLOG_LOG, (unsigned char)p->line[1],
           p->line + IMP_OUTPUT_HDR, p->len - IMP_OUTPUT_HDR,
           p->line[0] == 'C');
      p->len = 0;
    }
  }
  return 0;
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  out_pipe_t *p = IMP_CONTAINER_OF(h, out_pipe_t, pipe);
  (void)suggested;
  buf->base = p->out->buf;
  buf->len = sizeof p->out->buf;
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  out_pipe_t *p = IMP_CONTAINER_OF(s, out_pipe_t, pipe);
  if (nread > 0) {
    if (p->stream == IMP_FNLOG_LOG) {
      if (take_frames(p, buf->base, (size_t)nread) != 0) {
        static const char why[] =
            "impulse_log channel closed: a malformed frame was written to it";
        emit(p, IMP_FNLOG_STDERR, 0, why, sizeof why - 1, 0);
        pipe_close(p);
      }
    } else {
      take_lines(p, buf->base, (size_t)nread);
    }
    return;
  }
  if (nread == 0) return;
  /* The worker's end is closed (it exited) or the pipe broke: a partial
   * line is still a line; a partial frame is lost. */
  if (p->stream != IMP_FNLOG_LOG && p->len > 0 && !p->skipping)
    emit(p, p->stream, 0, p->line, p->len, 0);
  p->len = 0;
  pipe_close(p);
}

int imp_output_new(uv_loop_t *loop, imp_fnlogs_t *logs, uint64_t instance,
                   uv_stdio_container_t *stdio, imp_output_t **outp) {
  static const int targets[NPIPES] = {1, 2, IMP_OUTPUT_LOG_FD};
  static const int streams[NPIPES] = {IMP_FNLOG_STDOUT, IMP_FNLOG_STDERR,
                                      IMP_FNLOG_LOG};
  imp_output_t *out = calloc(1, sizeof *out);
  if (out == NULL) return -ENOMEM;
  out->logs = logs;
  out->instance = instance;
  int rc = 0;
  for (int i = 0; i < NPIPES; i++) {
    out_pipe_t *p = &out->pipes[i];
    p->out = out;
    p->stream = streams[i];
    p->child_fd = -1;
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) {
      rc = -errno;
      break;
    }
    p->child_fd = fds[1];
    uv_pipe_init(loop, &p->pipe, 0);
    p->open = 1;
    out->open++;
    rc = uv_pipe_open(&p->pipe, fds[0]);
    if (rc != 0) {
      close(fds[0]);
      break;
    }
    stdio[targets[i]].flags = UV_INHERIT_FD;
    stdio[targets[i]].data.fd = p->child_fd;
  }
  if (rc != 0) {
    out->released = 1;
    imp_output_start(out, 0);
    return rc;
  }
  *outp = out;
  return 0;
}

void imp_output_start(imp_output_t *out, int spawned) {
  for (int i = 0; i < NPIPES; i++) {
    out_pipe_t *p = &out->pipes[i];
    if (p->child_fd >= 0) close(p->child_fd);
    p->child_fd = -1;
    if (!p->open) continue;
    if (!spawned ||
        uv_read_start((uv_stream_t *)&p->pipe, on_alloc, on_read) != 0)
      pipe_close(p);
    else /* a pipe a function's own child keeps open must not hold the
          * server's loop (and its exit) */
      uv_unref((uv_handle_t *)&p->pipe);
  }
  if (!spawned) out->released = 1;
  maybe_free(out);
}

void imp_output_set_function(imp_output_t *out, const char *name,
                             uint32_t version) {
  snprintf(out->function, sizeof out->function, "%s", name ? name : "");
  out->version = version;
}

void imp_output_release(imp_output_t *out) {
  out->released = 1;
  maybe_free(out);
}
