/*
 * The worker's read path (runtime/worker/conn.c: conn_read() and
 * conn_process()) on a byte stream arriving in chunks. The loop around
 * the product's pieces is the worker's, step for step, without its socket
 * and thread pool: each read gets the room imp_frame_read_room() gives
 * (the worker's rule for a big frame), every complete frame is decoded in
 * place with imp_wire_decode(), a stall (the worker's queue full, a load
 * waiting for calls to end) leaves the frame in the buffer to be decoded
 * again after the next read, and the consumed bytes leave the buffer,
 * which moves and grows while earlier requests are still held.
 *
 * Byte 0: bytes per read - 1; byte 1: the frame limit; byte 2: stall
 * pattern (bit i: stall before the i-th decode). Checks:
 * - the requests are the frames of the stream, in order, each decoding to
 *   what protobuf-c decodes from the original bytes, every bytes piece
 *   followed by a NUL, even after the input buffer moved (a request owns
 *   its pieces; it does not point into the buffer);
 * - a decode after a stall gives the same request again;
 * - the connection ends at the first frame over the limit (from its
 *   prefix) or not decoding, with that error, and not before;
 * - each request is released in one call, any time after later decodes.
 */
#include "core/wire.h"
#include "fuzz.h"
#include "pbcheck.h"

#define READ_ROOM 512 /* the worker offers 256 KiB; smaller moves more */
#define MAX_HELD 256

static const size_t limits[] = {32, 300, 4096, IMP_DEFAULT_MAX_FRAME};

typedef struct run_s {
  imp_wire_decoder_t decoder;
  imp_buf_t in;
  size_t max_frame;
  unsigned stalls;
  size_t decodes, consumed;
  Impulse__Envelope *held[MAX_HELD];
  size_t starts[MAX_HELD]; /* stream offset of each request's frame */
  size_t nheld;
  ssize_t failed;
} run_t;

/* conn_process(): decodes every complete frame until a stall, then drops
 * the bytes consumed. */
static void process(run_t *run) {
  size_t off = 0;
  while (run->nheld < MAX_HELD) {
    if (off == run->in.len) break; /* as the worker: data may be NULL */
    bool stall = (run->stalls >> (run->decodes++ % 8)) & 1;
    Impulse__Envelope *env = NULL;
    ssize_t r = imp_wire_decode(&run->decoder, run->in.data + off,
                                run->in.len - off, run->max_frame, &env);
    if (r == 0) break;
    if (r < 0) {
      run->failed = r; /* the worker closes the connection */
      return;
    }
    if (stall) {
      /* Left for the next call: the same frame decodes again then. */
      Impulse__Envelope *again = NULL;
      FUZZ_CHECK(imp_wire_decode(&run->decoder, run->in.data + off,
                                 run->in.len - off, run->max_frame,
                                 &again) == r);
      FUZZ_CHECK(pb_same(&env->base, &again->base));
      imp_wire_request_free(again);
      imp_wire_request_free(env);
      break;
    }
    run->starts[run->nheld] = run->consumed + off;
    run->held[run->nheld++] = env;
    off += (size_t)r;
  }
  imp_buf_consume(&run->in, off);
  run->consumed += off;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 3) return 0;
  size_t chunk = (size_t)data[0] + 1;
  size_t max_frame = limits[data[1] % (sizeof limits / sizeof limits[0])];
  unsigned stalls = data[2];
  data += 3;
  size -= 3;

  run_t run = {.max_frame = max_frame, .stalls = stalls};
  imp_wire_decoder_init(&run.decoder);
  size_t arrived = 0;
  while (arrived < size && run.failed == 0 && run.nheld < MAX_HELD) {
    /* conn_read(): room for the frame in progress, then one read. */
    imp_buf_t *in = &run.in;
    size_t room = imp_frame_read_room(in->data, in->len, max_frame, READ_ROOM);
    FUZZ_CHECK(room >= READ_ROOM);
    if (in->len >= IMP_FRAME_HEADER && imp_frame_len(in->data) <= max_frame)
      FUZZ_CHECK(in->len + room >= IMP_FRAME_HEADER + imp_frame_len(in->data));
    FUZZ_CHECK(imp_buf_reserve(in, room) == 0);
    size_t n = size - arrived < chunk ? size - arrived : chunk;
    if (n > in->cap - in->len) n = in->cap - in->len;
    memcpy(in->data + in->len, data + arrived, n);
    in->len += n;
    arrived += n;
    process(&run);
  }
  /* The pool drained: the stalled frames are taken without new bytes. */
  run.stalls = 0;
  if (run.failed == 0) process(&run);

  /* The model over the whole stream. */
  size_t pos = 0;
  for (size_t i = 0; i < run.nheld; i++) {
    Impulse__Envelope *ref = NULL;
    FUZZ_CHECK(run.starts[i] == pos);
    ssize_t r = imp_frame_decode((const char *)data + pos, size - pos,
                                 max_frame, NULL, &ref);
    FUZZ_CHECK(r > 0);
    FUZZ_CHECK(pb_same(&run.held[i]->base, &ref->base));
    pb_check_nul(&run.held[i]->base);
    impulse__envelope__free_unpacked(ref, NULL);
    pos += (size_t)r;
  }
  if (run.nheld < MAX_HELD) {
    /* Where the decodes stopped: the same error, or a frame cut short. */
    Impulse__Envelope *ref = NULL;
    ssize_t r = imp_frame_decode((const char *)data + pos, size - pos,
                                 max_frame, NULL, &ref);
    FUZZ_CHECK(r <= 0 && r == run.failed);
  }
  /* Released in another order than decoded, one call each. */
  for (size_t i = 1; i < run.nheld; i += 2) imp_wire_request_free(run.held[i]);
  for (size_t i = 0; i < run.nheld; i += 2) imp_wire_request_free(run.held[i]);
  imp_buf_free(&run.in);
  return 0;
}
