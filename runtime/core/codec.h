/*
 * Frame codec: 4-byte big-endian length followed by one packed
 * Impulse__Envelope. Used by the gateway, the worker and the client library.
 */
#ifndef IMP_CODEC_H
#define IMP_CODEC_H

#include <stdbool.h>
#include <sys/types.h>

#include "core/common.h"
#include "core/limits.h"
#include "impulse.pb-c.h"

#define IMP_FRAME_HEADER 4

/* Exit codes a worker process uses so the server can tell why it ended
 * (the rest of the server-worker protocol is frames). */
#define IMP_WORKER_EXIT_OK 0
#define IMP_WORKER_EXIT_USAGE 2
#define IMP_WORKER_EXIT_OOM 3     /* memory limit exceeded */
#define IMP_WORKER_EXIT_ORPHAN 4  /* no server connection within the grace */
#define IMP_WORKER_EXIT_SANDBOX 5 /* could not enter its sandbox */

/* ThreadSanitizer builds only: the fd on which the server hands a worker
 * its own stderr, where the worker's race reports go. The worker's stderr
 * is the function's log once a function is loaded, which no test reads for
 * reports; the server's log is (tests/integration/harness.h). */
#define IMP_WORKER_TSAN_FD 6

/* Appends one frame holding `env` to `out`. Returns 0, -ENOMEM, or
 * IMP_EFRAMETOOBIG when the packed envelope exceeds `max_frame`. */
int imp_frame_append(imp_buf_t *out, const Impulse__Envelope *env,
                     size_t max_frame);

/*
 * The framing step every transport's read loop takes (the gateway's and
 * the instances' connections, the worker, the client library), on the
 * bytes buffered so far, data[0..len), which start at a frame boundary.
 * Returns the size of the first frame, prefix included (> 0), when all of
 * it has arrived; 0 when more bytes are needed; IMP_EFRAMETOOBIG as soon
 * as the 4-byte prefix says more than `max_frame`, before any byte of the
 * body is waited for. Pure; imp_frame_decode() starts with it.
 */
ssize_t imp_frame_next(const char *data, size_t len, size_t max_frame);

/*
 * Bytes of room a reader offers to its next read, with data[0..len)
 * buffered: at least `chunk`, or the rest of the frame being received when
 * that is more and the frame is within `max_frame` (so one read can take a
 * big frame whole; a prefix over the limit gets no more than `chunk`, and
 * is refused by the decode).
 */
size_t imp_frame_read_room(const char *data, size_t len, size_t max_frame,
                           size_t chunk);

/*
 * Decodes the first frame in data[0..len).
 * Returns the number of bytes consumed (> 0) with *env set (free it with
 * impulse__envelope__free_unpacked(*env, alloc)), 0 when more bytes are
 * needed, IMP_EFRAMETOOBIG when the length prefix exceeds `max_frame`, or
 * IMP_EPROTO when the body does not decode or has no body set. The check on
 * the length prefix happens before any byte of the body is buffered, so a
 * hostile peer cannot make the reader allocate more than max_frame.
 */
ssize_t imp_frame_decode(const char *data, size_t len, size_t max_frame,
                         ProtobufCAllocator *alloc, Impulse__Envelope **env);

/* False when a message in the tree under `m` (borrowed) holds an unknown
 * field numbered 0, which protobuf-c accepts in a non-canonical tag but
 * refuses once repacked. Every decoder here refuses such a message (as
 * IMP_EPROTO, or as it refuses any undecodable bytes); code that unpacks
 * outside ones (the store's records) calls it. */
bool imp_pb_tags_ok(const ProtobufCMessage *m);

/* Reads the length prefix of a frame; valid when len >= 4. */
static inline uint32_t imp_frame_len(const char *p) {
  const unsigned char *u = (const unsigned char *)p;
  return ((uint32_t)u[0] << 24) | ((uint32_t)u[1] << 16) |
         ((uint32_t)u[2] << 8) | (uint32_t)u[3];
}

static inline void imp_frame_put_len(char *p, uint32_t n) {
  unsigned char *u = (unsigned char *)p;
  u[0] = (unsigned char)(n >> 24);
  u[1] = (unsigned char)(n >> 16);
  u[2] = (unsigned char)(n >> 8);
  u[3] = (unsigned char)n;
}

/* Sets the body of `env` to `body` (borrowed), a message of the type the
 * case `body_case` carries: env->body_case and the union member it selects.
 * Returns 0, or -EINVAL (env unchanged) when body is NULL or of another
 * message type, which is a programming error the caller reports. */
int imp_envelope_set_body(Impulse__Envelope *env,
                          Impulse__Envelope__BodyCase body_case, void *body);

/* Appends one frame: an envelope of `id` whose body is `body` (borrowed, of
 * the type `body_case` carries). Returns 0, -ENOMEM, IMP_EFRAMETOOBIG, or
 * -EINVAL for a body of another type. */
int imp_frame_append_body(imp_buf_t *out, size_t max_frame, uint64_t id,
                          Impulse__Envelope__BodyCase body_case, void *body);

/* Builds an error envelope answering request `id` (strings are borrowed). */
void imp_envelope_error(Impulse__Envelope *env, Impulse__Error *err,
                        uint64_t id, int code, const char *message);

/* Name of an ErrorCode ("NOT_FOUND"), or "UNKNOWN". */
const char *imp_error_code_name(int code);

/*
 * Id rewriting without a decode. protobuf-c writes fields in field-number
 * order, so a packed Envelope starts with its id (field 1, varint). These let
 * the gateway forward a frame under another id by copying the rest of the
 * body instead of unpacking and repacking it.
 */

/* Splits an Envelope body (without the length prefix) into its leading id
 * and the remaining bytes. Returns 0 with *id and *rest_off set, or
 * IMP_EPROTO when the body does not start with a well-formed id field. */
int imp_envelope_split_id(const char *body, size_t len, uint64_t *id,
                          size_t *rest_off);

/* Appends a frame made of an id field followed by `rest` (the bytes after
 * the id of another Envelope). Returns 0, -ENOMEM or IMP_EFRAMETOOBIG. */
int imp_frame_append_with_id(imp_buf_t *out, uint64_t id, const char *rest,
                             size_t restlen, size_t max_frame);

/* Protobuf varints: reads one at *p (not past end) and advances *p,
 * returning 0 or -1; writes one at p (room for 10 bytes), returning its
 * length. */
int imp_varint_read(const uint8_t **p, const uint8_t *end, uint64_t *v);
size_t imp_varint_put(uint8_t *p, uint64_t v);

/* Envelope field numbers the hand-written codecs use, and the key of a
 * length-delimited field (wire type 2). */
#define IMP_FIELD_ERROR 2
#define IMP_FIELD_INVOKE_OK 6
#define IMP_FIELD_INVOKE_BATCH 43
#define IMP_FIELD_INVOKE_BATCH_OK 44
#define IMP_KEY_BYTES(field) (((uint64_t)(field) << 3) | 2u)

/* Tag byte of the body field that follows the id (0 if none): tells a
 * forwarded reply's kind without decoding it. */
#define IMP_TAG_ERROR 0x12     /* field 2, length-delimited */
#define IMP_TAG_INVOKE_OK 0x32 /* field 6, length-delimited */

/* The ErrorCode of a worker's answer (the Envelope body after its id,
 * borrowed) without decoding it: 0 for an `invoke_ok`, the Error's code for
 * an `error`, INTERNAL for anything else or a truncated answer. */
int imp_answer_code(const char *rest, size_t restlen);

/* Decodes an Envelope body after its id (a forwarded request or a worker's
 * answer) as an Envelope with id 0. NULL when it does not decode. Free
 * with impulse__envelope__free_unpacked(env, alloc). */
Impulse__Envelope *imp_body_decode(const char *rest, size_t len,
                                   ProtobufCAllocator *alloc);

/* Decodes a worker's answer to an invoke_batch (an Envelope body after its
 * id, borrowed) where it lies, its pieces allocated with `alloc` (an
 * arena: they are freed with it). Returns 0 with *resp; or the code of an
 * Error answer (INTERNAL when it has none) with *message; or INTERNAL with
 * *message saying what is wrong (undecodable, not a batch answer).
 * *message points into the answer's decoded pieces or a static string. */
int imp_batch_answer_decode(const char *rest, size_t len,
                            ProtobufCAllocator *alloc,
                            Impulse__InvokeBatchResponse **resp,
                            const char **message);

#endif
