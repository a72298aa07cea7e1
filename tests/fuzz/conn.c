/*
 * The server's framed connection (runtime/base/conn.c), the read path of
 * the gateway's client connections and of the instances' worker
 * connections, driven for real: an imp_conn_t on one end of a socket pair
 * in a libuv loop, the input written to the other end in chunks, one loop
 * pass per chunk so that each chunk is one read. The connection starts
 * with a small pre-Hello frame limit that a Hello raises, as the gateway
 * does, and (when the input says so) has an on_raw callback that takes
 * some frames undecoded, as an instance connection forwards answers.
 *
 * Byte 0: bytes per chunk - 1; byte 1: the pre-Hello limit; byte 2: raw
 * mode. The rest is the stream. A model built on imp_frame_next() and
 * imp_frame_decode() over the whole stream says which frames must reach
 * the callbacks, in order, and where the stream goes wrong; checks:
 * - every frame reaches on_frame (decoded, the same envelope, its packed
 *   body alongside) or on_raw (the body) exactly once, in order, nothing
 *   more, nothing after an error, whatever the chunking;
 * - a bad frame (over the limit in force, or not decoding) gets one Error
 *   frame with id 0 and TOO_LARGE or BAD_REQUEST to the peer, on_error
 *   once with the decode error, then the connection closes;
 * - a stream that ends cleanly or inside a frame leaves the connection
 *   open, with no error; every buffer is released on close.
 */
#include <sys/socket.h>
#include <unistd.h>

#include "base/conn.h"
#include "fuzz.h"
#include "pbcheck.h"

static const size_t prehello[] = {64, 256, IMP_PREHELLO_MAX_FRAME};
#define AFTER_HELLO IMP_DEFAULT_MAX_FRAME

static uv_loop_t loop;
static imp_conn_loop_t cl;

/* What the model expects, and what the callbacks saw. */
typedef struct run_s {
  imp_conn_t conn;
  const uint8_t *stream;
  size_t at;     /* stream offset of the next frame expected */
  int raw_mode;  /* on_raw takes bodies whose length is a multiple of 3 */
  size_t frames; /* frames delivered */
  int error;     /* on_error's code, 1 when never called */
  int errors;    /* on_error calls */
  int closed;    /* on_closed ran */
  size_t limit;  /* the model's frame limit in force */
} run_t;

static bool takes_raw(const run_t *run, size_t len) {
  return run->raw_mode && len % 3 == 0;
}

static void on_frame(imp_conn_t *conn, Impulse__Envelope *env, const char *body,
                     size_t len) {
  run_t *run = conn->data;
  FUZZ_CHECK(run->errors == 0);
  /* The model: this frame starts at run->at and decodes the same. */
  const char *expect = (const char *)run->stream + run->at;
  FUZZ_CHECK(imp_frame_len(expect) == len);
  FUZZ_CHECK(memcmp(expect + IMP_FRAME_HEADER, body, len) == 0);
  FUZZ_CHECK(!takes_raw(run, len));
  Impulse__Envelope *ref = NULL;
  FUZZ_CHECK(imp_frame_decode(expect, IMP_FRAME_HEADER + len, run->limit, NULL,
                              &ref) == (ssize_t)(IMP_FRAME_HEADER + len));
  FUZZ_CHECK(pb_same(&env->base, &ref->base));
  impulse__envelope__free_unpacked(ref, NULL);
  run->at += IMP_FRAME_HEADER + len;
  run->frames++;
  /* The gateway's rule: a Hello lifts the pre-Hello limit. */
  if (env->body_case == IMPULSE__ENVELOPE__BODY_HELLO) {
    conn->max_frame = AFTER_HELLO;
    run->limit = AFTER_HELLO;
  }
  impulse__envelope__free_unpacked(env, NULL);
}

static int on_raw(imp_conn_t *conn, const char *body, size_t len) {
  run_t *run = conn->data;
  FUZZ_CHECK(run->errors == 0);
  const char *expect = (const char *)run->stream + run->at;
  FUZZ_CHECK(imp_frame_len(expect) == len && len <= run->limit);
  FUZZ_CHECK(memcmp(expect + IMP_FRAME_HEADER, body, len) == 0);
  if (!takes_raw(run, len)) return 0;
  run->at += IMP_FRAME_HEADER + len;
  run->frames++;
  return 1;
}

static void on_error(imp_conn_t *conn, int err) {
  run_t *run = conn->data;
  run->errors++;
  run->error = err;
}

static void on_closed(imp_conn_t *conn) {
  run_t *run = conn->data;
  run->closed = 1;
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  FUZZ_CHECK(uv_loop_init(&loop) == 0);
  FUZZ_CHECK(imp_conn_loop_init(&cl, &loop) == 0);
  return 0;
}

/* Reads what the connection sent to the peer until it hangs up. */
static void read_peer(int fd, imp_buf_t *got) {
  for (;;) {
    FUZZ_CHECK(imp_buf_reserve(got, 4096) == 0);
    ssize_t n = read(fd, got->data + got->len, got->cap - got->len);
    if (n <= 0) break;
    got->len += (size_t)n;
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 3) return 0;
  size_t chunk = (size_t)data[0] + 1;
  size_t limit = prehello[data[1] % (sizeof prehello / sizeof prehello[0])];
  int raw_mode = data[2] & 1;
  data += 3;
  size -= 3;

  int sv[2];
  FUZZ_CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
  run_t run;
  memset(&run, 0, sizeof run);
  run.stream = data;
  run.raw_mode = raw_mode;
  run.error = 1;
  run.limit = limit;
  FUZZ_CHECK(uv_pipe_init(&loop, &run.conn.h.pipe, 0) == 0);
  FUZZ_CHECK(uv_pipe_open(&run.conn.h.pipe, sv[0]) == 0);
  run.conn.data = &run;
  run.conn.on_frame = on_frame;
  run.conn.on_raw = raw_mode ? on_raw : NULL;
  run.conn.on_error = on_error;
  run.conn.on_closed = on_closed;
  FUZZ_CHECK(imp_conn_start(&run.conn, &cl, limit) == 0);

  /* One chunk, one read: the loop runs until the chunk is taken. */
  for (size_t off = 0; off < size && run.errors == 0;) {
    size_t n = size - off < chunk ? size - off : chunk;
    FUZZ_CHECK(write(sv[1], data + off, n) == (ssize_t)n);
    off += n;
    uv_run(&loop, UV_RUN_NOWAIT);
  }

  /* The model's verdict on the whole stream, from where the frames
   * stopped: a bad frame there, or nothing but a frame cut short. */
  ssize_t next =
      imp_frame_next((const char *)data + run.at, size - run.at, run.limit);
  int want_error = 0;
  if (next == IMP_EFRAMETOOBIG) {
    want_error = IMP_EFRAMETOOBIG;
  } else if (next > 0) {
    /* A whole frame the connection did not deliver: it must be one that
     * does not decode. */
    Impulse__Envelope *env = NULL;
    FUZZ_CHECK(imp_frame_decode((const char *)data + run.at, size - run.at,
                                run.limit, NULL, &env) == IMP_EPROTO);
    want_error = IMP_EPROTO;
  }

  if (want_error) {
    FUZZ_CHECK(run.errors == 1 && run.error == want_error);
    /* The Error frame goes out, then the connection closes. */
    while (!run.closed) uv_run(&loop, UV_RUN_ONCE);
    imp_buf_t got = {0};
    read_peer(sv[1], &got);
    Impulse__Envelope *env = NULL;
    FUZZ_CHECK(imp_frame_decode(got.data, got.len, AFTER_HELLO, NULL, &env) ==
               (ssize_t)got.len);
    FUZZ_CHECK(env->id == 0 && env->body_case == IMPULSE__ENVELOPE__BODY_ERROR);
    FUZZ_CHECK(env->error->code == (want_error == IMP_EFRAMETOOBIG
                                        ? IMPULSE__ERROR_CODE__TOO_LARGE
                                        : IMPULSE__ERROR_CODE__BAD_REQUEST));
    impulse__envelope__free_unpacked(env, NULL);
    imp_buf_free(&got);
  } else {
    FUZZ_CHECK(run.errors == 0 && !run.closed);
    FUZZ_CHECK(run.conn.in.len == size - run.at);
    imp_conn_close(&run.conn, 0);
    FUZZ_CHECK(run.errors == 1 && run.error == 0);
    while (!run.closed) uv_run(&loop, UV_RUN_ONCE);
  }
  close(sv[1]);
  return 0;
}
