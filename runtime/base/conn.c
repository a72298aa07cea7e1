#include "base/conn.h"

#include <stdlib.h>
#include <string.h>

#define READ_CHUNK (64 * 1024)

static void conn_flush(imp_conn_t *conn);

static void on_handle_closed(uv_handle_t *h) {
  imp_conn_t *conn = IMP_CONTAINER_OF(h, imp_conn_t, h.stream);
  imp_buf_free(&conn->in);
  imp_buf_free(&conn->out);
  imp_buf_free(&conn->writing);
  if (conn->on_closed) conn->on_closed(conn);
}

static void conn_fail(imp_conn_t *conn, int err) {
  if (conn->closing) return;
  conn->closing = 1;
  uv_read_stop(&conn->h.stream);
  if (conn->on_error) conn->on_error(conn, err);
  uv_close((uv_handle_t *)&conn->h.stream, on_handle_closed);
}

void imp_conn_close(imp_conn_t *conn, int flush_first) {
  if (conn->closing) return;
  if (flush_first && (conn->out.len || conn->write_busy)) {
    conn->close_after_flush = 1;
    uv_read_stop(&conn->h.stream);
    conn_flush(conn);
    return;
  }
  conn_fail(conn, 0);
}

static void mark_dirty(imp_conn_t *conn) {
  if (conn->dirty) return;
  conn->dirty = 1;
  conn->dirty_next = conn->cl->dirty_head;
  conn->cl->dirty_head = conn;
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  imp_conn_t *conn = IMP_CONTAINER_OF(h, imp_conn_t, h.stream);
  (void)suggested;
  imp_buf_read_space(&conn->in, READ_CHUNK, &buf->base, &buf->len);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  imp_conn_t *conn = IMP_CONTAINER_OF(s, imp_conn_t, h.stream);
  (void)buf;
  if (nread == 0) return;
  if (nread < 0) {
    conn_fail(conn, (int)nread);
    return;
  }
  conn->in.len += (size_t)nread;
  size_t off = 0;
  while (!conn->closing && !conn->close_after_flush) {
    Impulse__Envelope *env = NULL;
    size_t avail = conn->in.len - off;
    const char *frame = conn->in.data + off;
    if (conn->on_raw) {
      ssize_t whole = imp_frame_next(frame, avail, conn->max_frame);
      if (whole > 0 && conn->on_raw(conn, frame + IMP_FRAME_HEADER,
                                    (size_t)whole - IMP_FRAME_HEADER)) {
        off += (size_t)whole;
        continue;
      }
    }
    ssize_t n = imp_frame_decode(frame, avail, conn->max_frame, NULL, &env);
    if (n == 0) break;
    if (n < 0) {
      /* Tell the peer why, then hang up; nothing after a bad frame can be
       * trusted to be aligned on a frame boundary. */
      conn->in.len = 0;
      imp_conn_send_error(conn, 0,
                          n == IMP_EFRAMETOOBIG
                              ? IMPULSE__ERROR_CODE__TOO_LARGE
                              : IMPULSE__ERROR_CODE__BAD_REQUEST,
                          imp_strerror((int)n));
      if (conn->on_error) {
        imp_conn_error_cb cb = conn->on_error;
        conn->on_error = NULL;
        cb(conn, (int)n);
      }
      imp_conn_close(conn, 1);
      return;
    }
    off += (size_t)n;
    conn->on_frame(conn, env, frame + IMP_FRAME_HEADER,
                   (size_t)n - IMP_FRAME_HEADER);
  }
  if (conn->closing) return;
  imp_buf_consume(&conn->in, off);
}

int imp_conn_start(imp_conn_t *conn, imp_conn_loop_t *cl, size_t max_frame) {
  memset(&conn->in, 0, sizeof conn->in);
  memset(&conn->out, 0, sizeof conn->out);
  memset(&conn->writing, 0, sizeof conn->writing);
  conn->write_busy = conn->closing = conn->close_after_flush = 0;
  conn->reading_paused = 0;
  conn->dirty = 0;
  conn->dirty_next = NULL;
  conn->cl = cl;
  conn->max_frame = max_frame;
  return uv_read_start(&conn->h.stream, on_alloc, on_read);
}

static void on_write(uv_write_t *req, int status) {
  imp_conn_t *conn = IMP_CONTAINER_OF(req, imp_conn_t, wreq);
  conn->write_busy = 0;
  conn->writing.len = 0;
  if (status < 0) {
    conn_fail(conn, status);
    return;
  }
  if (conn->closing) return;
  conn_flush(conn);
}

int imp_stream_write(uv_stream_t *stream, imp_buf_t *out, imp_buf_t *writing,
                     uv_write_t *req, uv_write_cb cb) {
  if (out->len == 0) return 0;
  uv_buf_t b = uv_buf_init(out->data, (unsigned)out->len);
  int n = uv_try_write(stream, &b, 1);
  if (n == UV_EAGAIN || n == UV_ENOSYS) n = 0;
  if (n < 0) return n;
  imp_buf_consume(out, (size_t)n);
  if (out->len == 0) return 0;
  /* Hand the rest to a write request: swap buffers so new output can keep
   * accumulating in `out` meanwhile. */
  imp_buf_t t = *writing;
  *writing = *out;
  *out = t;
  out->len = 0;
  b = uv_buf_init(writing->data, (unsigned)writing->len);
  int rc = uv_write(req, stream, &b, 1, cb);
  return rc < 0 ? rc : 1;
}

static void conn_flush(imp_conn_t *conn) {
  if (conn->closing || conn->write_busy) return;
  int rc = imp_stream_write(&conn->h.stream, &conn->out, &conn->writing,
                            &conn->wreq, on_write);
  if (rc < 0) {
    conn_fail(conn, rc);
    return;
  }
  conn->write_busy = rc;
  size_t pending = conn->out.len + conn->writing.len;
  if (conn->close_after_flush && pending == 0) {
    conn_fail(conn, 0);
    return;
  }
  /* Back-pressure: a peer that does not read its answers stops being read. */
  if (!conn->close_after_flush) {
    if (!conn->reading_paused && pending > conn->cl->pause_above) {
      uv_read_stop(&conn->h.stream);
      conn->reading_paused = 1;
    } else if (conn->reading_paused && pending <= conn->cl->pause_above / 2) {
      conn->reading_paused = 0;
      uv_read_start(&conn->h.stream, on_alloc, on_read);
    }
  }
}

static void on_check(uv_check_t *check) {
  imp_conn_loop_t *cl = IMP_CONTAINER_OF(check, imp_conn_loop_t, check);
  if (cl->before_flush) cl->before_flush(cl->before_flush_arg);
  while (cl->dirty_head) {
    imp_conn_t *conn = cl->dirty_head;
    cl->dirty_head = conn->dirty_next;
    conn->dirty = 0;
    conn->dirty_next = NULL;
    conn_flush(conn);
  }
}

int imp_conn_loop_init(imp_conn_loop_t *cl, uv_loop_t *loop) {
  cl->dirty_head = NULL;
  cl->pause_above = 8u << 20;
  cl->before_flush = NULL;
  cl->before_flush_arg = NULL;
  int rc = uv_check_init(loop, &cl->check);
  if (rc != 0) return rc;
  rc = uv_check_start(&cl->check, on_check);
  uv_unref((uv_handle_t *)&cl->check);
  return rc;
}

void imp_conn_loop_close(imp_conn_loop_t *cl) {
  uv_check_stop(&cl->check);
  uv_close((uv_handle_t *)&cl->check, NULL);
}

int imp_conn_send(imp_conn_t *conn, const Impulse__Envelope *env) {
  if (conn->closing) return -EPIPE;
  int rc = imp_frame_append(&conn->out, env, conn->max_frame);
  if (rc != 0) return rc;
  mark_dirty(conn);
  return 0;
}

int imp_conn_send_with_id(imp_conn_t *conn, uint64_t id, const char *rest,
                          size_t restlen) {
  if (conn->closing) return -EPIPE;
  int rc =
      imp_frame_append_with_id(&conn->out, id, rest, restlen, conn->max_frame);
  if (rc != 0) return rc;
  mark_dirty(conn);
  return 0;
}

int imp_conn_send_error(imp_conn_t *conn, uint64_t id, int code,
                        const char *message) {
  Impulse__Envelope env;
  Impulse__Error err;
  imp_envelope_error(&env, &err, id, code, message);
  return imp_conn_send(conn, &env);
}
