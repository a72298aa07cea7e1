/*
 * The worker's side of the wire format (docs/architecture.md, "Workers"):
 * the decode of the requests it is sent and the encoding of every answer
 * it writes. Frames are those of core/codec.h; these add what the worker
 * needs beyond one protobuf-c pack or unpack per frame:
 *
 * - requests decoded into one arena per request, every piece followed by
 *   a NUL byte, so payloads and header values reach a function as C
 *   strings without a copy, and a request is released in one call, on any
 *   thread;
 * - an invoke_batch answer packed one item's result at a time, straight
 *   into its frame, with a limit checked before each item;
 * - the frame naming the call a crashing worker was running, built before
 *   the call so that a signal handler only has to write it.
 */
#ifndef IMP_WIRE_H
#define IMP_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "core/arena.h"
#include "core/codec.h"

/* ---- requests ------------------------------------------------------------ */

/*
 * Decoder of the requests of one connection. Decoding happens on one
 * thread at a time; a decoded request may be released on any thread.
 */
typedef struct imp_wire_decoder_s {
  ProtobufCAllocator pb; /* allocator_data points back here */
  imp_arena_t *cur;      /* arena of the decode under way, or NULL */
  size_t block;          /* its first block, from the frame's length */
  bool failed;           /* an allocation of that decode failed */
} imp_wire_decoder_t;

/* Prepares a decoder; it holds no resources between decodes. */
void imp_wire_decoder_init(imp_wire_decoder_t *decoder);

/*
 * Decodes the first frame of data[0..len) like imp_frame_decode() and
 * returns what it returns (bytes consumed, 0 for more, IMP_EFRAMETOOBIG,
 * IMP_EPROTO), or -ENOMEM when memory ran out during the decode. Every
 * string and bytes field of *env is followed by a NUL byte. On success
 * release *env with imp_wire_request_free(), not with free_unpacked.
 */
ssize_t imp_wire_decode(imp_wire_decoder_t *decoder, const char *data,
                        size_t len, size_t max_frame, Impulse__Envelope **env);

/* Releases a request returned by imp_wire_decode(), all of it at once.
 * NULL is ignored. */
void imp_wire_request_free(Impulse__Envelope *env);

/* ---- answers ------------------------------------------------------------- */

/* What a handler answered: payload and response headers (borrowed). */
typedef struct imp_wire_answer_s {
  const void *payload; /* NULL when len is 0 */
  size_t len;
  Impulse__Header **headers;
  size_t n_headers;
} imp_wire_answer_t;

/* Each appends one frame answering request `id` to `out`, and returns 0,
 * -ENOMEM, or IMP_EFRAMETOOBIG when it would exceed `max_frame` (then
 * `out` is unchanged). Strings are borrowed. */

/* Error{code, message}; message NULL leaves it out. */
int imp_wire_append_error(imp_buf_t *out, size_t max_frame, uint64_t id,
                          int code, const char *message);

/* InvokeResponse{payload, headers, status 0, version}. */
int imp_wire_append_invoke_ok(imp_buf_t *out, size_t max_frame, uint64_t id,
                              const imp_wire_answer_t *answer,
                              uint32_t version);

/* LoadResponse{abi_version, load_us}. */
int imp_wire_append_load_ok(imp_buf_t *out, size_t max_frame, uint64_t id,
                            uint32_t abi_version, uint64_t load_us);

/* AttachResponse{function, version, concurrency, pid}; function NULL for a
 * worker with nothing loaded (then only the pid is sent). */
int imp_wire_append_attach_ok(imp_buf_t *out, size_t max_frame, uint64_t id,
                              const char *function, uint32_t version,
                              uint32_t concurrency, int32_t pid);

/*
 * An invoke_batch_ok answer under construction: InvokeBatchResponse
 * results packed in place, one per item, behind room kept for the
 * envelope's tags, so that the finished frame is written without another
 * pass or copy of the results.
 */
typedef struct imp_wire_batch_s {
  imp_buf_t buf; /* owned: the kept room, then the results */
} imp_wire_batch_t;

/* Starts an answer, with room reserved for about `items` short results.
 * 0 or -ENOMEM (then nothing is held). */
int imp_wire_batch_init(imp_wire_batch_t *batch, size_t items);

/*
 * Appends one item's result: code 0 carries `answer`, any other code
 * carries `message` instead (answer may then be NULL). Refused with
 * -ENOSPC, and nothing appended, when the results would then take more
 * than `limit` bytes; -ENOMEM when out of memory.
 */
int imp_wire_batch_add(imp_wire_batch_t *batch, size_t limit, int code,
                       const char *message, const imp_wire_answer_t *answer);

/*
 * Closes the answer with the `version` that ran it and appends it to
 * `out` as the frame of Envelope{id, invoke_batch_ok}. Returns 0, -ENOMEM
 * or IMP_EFRAMETOOBIG (then `out` is unchanged). The batch is released in
 * every case.
 */
int imp_wire_batch_finish(imp_wire_batch_t *batch, uint64_t id,
                          uint32_t version, imp_buf_t *out, size_t max_frame);

/* Releases an answer that is not finished. */
void imp_wire_batch_free(imp_wire_batch_t *batch);

/* ---- crash --------------------------------------------------------------- */

/* Room for the frame of imp_wire_crash_mark(). */
#define IMP_WIRE_CRASH_MARK_MAX 24u

/* Writes into `buf` the frame Envelope{id, Error{CRASHED}}, which a worker
 * sends only when it dies running call `id`, and returns its length. Pure
 * stores, no allocation. */
size_t imp_wire_crash_mark(uint8_t buf[IMP_WIRE_CRASH_MARK_MAX], uint64_t id);

#endif
