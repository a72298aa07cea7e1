/*
 * What the decoder tests of runtime/core/codec.c (test_codec.c) and
 * runtime/core/wire.c (test_wire.c) share: exact-size copies of the bytes
 * under test, an Invoke envelope built from a description, and the checks
 * every frame decoder must pass: a frame cut short needs more, the frame
 * limit holds to the byte, hostile frames are refused or decoded without
 * harm. Each test keeps its own values and its own checks of what was
 * decoded.
 */
#ifndef IMP_TEST_FRAMES_H
#define IMP_TEST_FRAMES_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "core/codec.h"

/* Copies `len` bytes into a heap block of exactly that size, so that a
 * read past its end shows in the sanitizer run (caller frees). */
char *ut_dup_exact(const void *data, size_t len);

/* A header of an Invoke: name and value (value NULL with len 0: present
 * and empty). */
typedef struct ut_header_s {
  const char *name;
  const void *value;
  size_t len;
} ut_header_t;

/* Fills *h with the header that `spec` (borrowed) describes. */
void ut_header_init(Impulse__Header *h, const ut_header_t *spec);

#define UT_INVOKE_MAX_HEADERS 4

/* What an Invoke envelope carries; 0 / NULL fields are left out. */
typedef struct ut_invoke_spec_s {
  const char *function;
  const void *payload; /* always present, also when empty */
  size_t payload_len;
  const ut_header_t *headers; /* at most UT_INVOKE_MAX_HEADERS */
  size_t n_headers;
  uint32_t deadline_ms;
  const char *idempotency_key;
  uint32_t version;
} ut_invoke_spec_t;

/* An Invoke envelope whose storage lives in the struct; the strings and
 * bytes are borrowed from the spec. */
typedef struct ut_invoke_s {
  Impulse__Envelope env;
  Impulse__InvokeRequest inv;
  Impulse__Header h[UT_INVOKE_MAX_HEADERS];
  Impulse__Header *hp[UT_INVOKE_MAX_HEADERS];
} ut_invoke_t;

/* Fills `f` with the envelope of id `id` that `spec` (borrowed) describes. */
void ut_invoke_init(ut_invoke_t *f, uint64_t id, const ut_invoke_spec_t *spec);

/* Appends the frame of that envelope to `buf`. */
void ut_invoke_append(imp_buf_t *buf, uint64_t id,
                      const ut_invoke_spec_t *spec);

/* A decoder under test: `decode` returns what imp_frame_decode() returns
 * (bytes used, 0 when it needs more, or a negative error), reading from
 * an exact-size copy of data[0..len); `free` releases what it decoded. */
typedef struct ut_decoder_s {
  ssize_t (*decode)(const void *data, size_t len, size_t max_frame,
                    Impulse__Envelope **env);
  void (*free)(Impulse__Envelope *env);
} ut_decoder_t;

/* Every proper prefix of `frame` (one whole frame) needs more: 0, and no
 * envelope. */
void ut_expect_needs_more(const ut_decoder_t *d, const imp_buf_t *frame);

/* `frame` (one whole frame) decodes at a limit of exactly its body, and
 * at one byte less is refused with IMP_EFRAMETOOBIG, also when only its
 * length prefix has arrived. Returns what it decoded, for the caller to
 * check and free. */
Impulse__Envelope *ut_decode_at_limit(const ut_decoder_t *d,
                                      const imp_buf_t *frame);

/* A frame from a hostile peer: either refused with IMP_EPROTO and no
 * envelope, or decoded whole to an envelope with a body (then freed).
 * Returns 1 when it decoded, else 0. */
int ut_decode_hostile(const ut_decoder_t *d, const char *frame, size_t len);

/* ut_decode_hostile() of 40000 frames, the same ones for the same `seed`:
 *   20000 of random bytes behind a length prefix that fits (one in ten up
 *   to 512 bytes long, the others up to 48; every other one starting with
 *   a plausible id field, so that decoding goes deeper),
 *   20000 copies of `valid` (one whole frame, borrowed) with 1 to 4 bytes
 *   of its body changed, every third one also cut short behind a fixed
 *   length prefix (this reaches the nested message decoders).
 * Returns how many decoded. */
size_t ut_hostile_frames(const ut_decoder_t *d, uint64_t seed,
                         const imp_buf_t *valid);

#endif
