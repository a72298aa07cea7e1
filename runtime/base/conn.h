/*
 * Framed connection over a libuv stream (TCP for clients, UNIX socket for
 * workers). Reads decode every complete frame of a read; replies are
 * appended to an output buffer and flushed once per loop turn as one write,
 * so a pipelining peer costs one syscall per batch, not per frame.
 */
#ifndef IMP_CONN_H
#define IMP_CONN_H

#include <uv.h>

#include "core/codec.h"

typedef struct imp_conn_s imp_conn_t;

/* Called for each decoded frame; takes ownership of env (free with
 * impulse__envelope__free_unpacked(env, NULL)). `body` is the packed
 * Envelope (borrowed, valid during the call) for forwarding without a
 * repack. May close the connection. */
typedef void (*imp_conn_frame_cb)(imp_conn_t *conn, Impulse__Envelope *env,
                                  const char *body, size_t len);
/* Optional: sees each frame's body before it is decoded; returns 1 when it
 * has handled the frame (no decode), 0 to have it decoded as usual. */
typedef int (*imp_conn_raw_cb)(imp_conn_t *conn, const char *body, size_t len);
/* Called once when the connection has failed or been closed, before the
 * handle is closed. `err` is 0 for a local close, UV_EOF, a uv error, or an
 * IMP_E* decode error. */
typedef void (*imp_conn_error_cb)(imp_conn_t *conn, int err);
/* Called when the handle is fully closed; the owner may free memory now. */
typedef void (*imp_conn_closed_cb)(imp_conn_t *conn);

struct imp_conn_s {
  union {
    uv_stream_t stream;
    uv_tcp_t tcp;
    uv_pipe_t pipe;
  } h;
  imp_buf_t in;
  imp_buf_t out;
  imp_buf_t writing; /* buffer owned by the write in progress */
  uv_write_t wreq;
  int write_busy;
  int closing;
  int close_after_flush; /* close once `out` has been written */
  int reading_paused;
  size_t max_frame;
  struct imp_conn_s *dirty_next;
  int dirty;
  struct imp_conn_loop_s *cl;
  imp_conn_frame_cb on_frame;
  imp_conn_raw_cb on_raw;
  imp_conn_error_cb on_error;
  imp_conn_closed_cb on_closed;
  void *data; /* owner */
};

/* Per-loop state: the flush handle and the list of connections to flush. */
typedef struct imp_conn_loop_s {
  uv_check_t check;
  imp_conn_t *dirty_head;
  size_t pause_above; /* stop reading when `out` exceeds this */
  /* Called first in every flush pass, so that frames built up during the
   * loop turn (the trigger broker's record batches) go out in it. */
  void (*before_flush)(void *arg);
  void *before_flush_arg;
} imp_conn_loop_t;

/* Writes `out` to `stream`: what the socket takes now with a try-write, the
 * rest with one write request (`req`, completing with `cb`), for which the
 * bytes move to `writing` so that new output can gather in `out`
 * meanwhile. Returns 0 when all was written, 1 when a write request is now
 * in flight (the caller waits for cb before the next), or a negative uv
 * error. Shared by the RPC and HTTP connections. */
int imp_stream_write(uv_stream_t *stream, imp_buf_t *out, imp_buf_t *writing,
                     uv_write_t *req, uv_write_cb cb);

/* Sets up the flush handle on `loop`. */
int imp_conn_loop_init(imp_conn_loop_t *cl, uv_loop_t *loop);
void imp_conn_loop_close(imp_conn_loop_t *cl);

/* Initialises the struct around an already-initialised handle (h.tcp or
 * h.pipe) and starts reading. Returns 0 or a uv error. */
int imp_conn_start(imp_conn_t *conn, imp_conn_loop_t *cl, size_t max_frame);

/* Appends one frame; flushed at the end of the loop turn. Returns 0 or a
 * negative error (the frame is dropped when the connection is closing). */
int imp_conn_send(imp_conn_t *conn, const Impulse__Envelope *env);

/* Appends a frame made of `id` and the rest of another Envelope's body (see
 * imp_envelope_split_id). Returns 0 or a negative error. */
int imp_conn_send_with_id(imp_conn_t *conn, uint64_t id, const char *rest,
                          size_t restlen);

/* Sends an error reply for request `id`. */
int imp_conn_send_error(imp_conn_t *conn, uint64_t id, int code,
                        const char *message);

/* Closes now (pending output is dropped), or after pending output has been
 * written when `flush_first` is set. on_error(conn, 0) then on_closed run. */
void imp_conn_close(imp_conn_t *conn, int flush_first);

#endif
