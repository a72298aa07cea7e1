/*
 * Frames as every transport reads them (runtime/core/codec.c): the input
 * is a byte stream of length-prefixed envelopes, cut where the first byte
 * says, with a frame limit the second byte chooses. Checks:
 * - imp_frame_decode() consumes a whole frame or nothing, never more than
 *   it was given, and refuses a prefix over the limit before the body;
 * - a decoded envelope packs again, and that frame decodes to an envelope
 *   that packs to the same bytes (decode(encode(x)) == x);
 * - the id split used for forwarding agrees with the decoder, and the
 *   forwarded frame decodes to the same envelope.
 */
#include <string.h>

#include "core/codec.h"
#include "fuzz.h"

static const size_t limits[] = {16, 64, 4096, IMP_DEFAULT_MAX_FRAME};

static void check_round_trip(const Impulse__Envelope *env, size_t max_frame) {
  imp_buf_t a = {0}, b = {0};
  int rc = imp_frame_append(&a, env, max_frame);
  FUZZ_CHECK(rc == 0 || rc == IMP_EFRAMETOOBIG);
  if (rc != 0) goto out;
  Impulse__Envelope *again = NULL;
  ssize_t n = imp_frame_decode(a.data, a.len, max_frame, NULL, &again);
  FUZZ_CHECK(n == (ssize_t)a.len && again != NULL);
  FUZZ_CHECK(again->id == env->id && again->body_case == env->body_case);
  FUZZ_CHECK(imp_frame_append(&b, again, max_frame) == 0);
  FUZZ_CHECK(a.len == b.len && memcmp(a.data, b.data, a.len) == 0);

  /* Forwarding under another id copies the body after the id. */
  uint64_t id;
  size_t off;
  const char *body = a.data + IMP_FRAME_HEADER;
  size_t blen = a.len - IMP_FRAME_HEADER;
  if (env->id != 0) {
    FUZZ_CHECK(imp_envelope_split_id(body, blen, &id, &off) == 0);
    FUZZ_CHECK(id == env->id && off <= blen);
    imp_buf_t f = {0};
    if (imp_frame_append_with_id(&f, id + 1, body + off, blen - off,
                                 max_frame + 16) == 0) {
      Impulse__Envelope *fw = NULL;
      FUZZ_CHECK(imp_frame_decode(f.data, f.len, max_frame + 16, NULL, &fw) ==
                 (ssize_t)f.len);
      FUZZ_CHECK(fw->id == id + 1 && fw->body_case == env->body_case);
      impulse__envelope__free_unpacked(fw, NULL);
    }
    imp_buf_free(&f);
    (void)imp_answer_code(body + off, blen - off);
  }
  impulse__envelope__free_unpacked(again, NULL);
out:
  imp_buf_free(&a);
  imp_buf_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 2) return 0;
  size_t chunk = (size_t)data[0] + 1; /* bytes per read, 1..256 */
  size_t max_frame = limits[data[1] % (sizeof limits / sizeof limits[0])];
  data += 2;
  size = size - 2;

  /* Feed the stream in reads of `chunk` bytes, as a transport would, into
   * a buffer of exactly what has arrived. */
  size_t arrived = 0, used = 0;
  while (used < size) {
    arrived = arrived + chunk < size ? arrived + chunk : size;
    for (;;) {
      size_t avail = arrived - used;
      char *copy = malloc(avail ? avail : 1);
      if (copy == NULL) return 0;
      memcpy(copy, data + used, avail);
      Impulse__Envelope *env = NULL;
      ssize_t n = imp_frame_decode(copy, avail, max_frame, NULL, &env);
      if (n > 0) {
        FUZZ_CHECK((size_t)n <= avail && (size_t)n >= IMP_FRAME_HEADER);
        FUZZ_CHECK(env != NULL &&
                   env->body_case != IMPULSE__ENVELOPE__BODY__NOT_SET);
        check_round_trip(env, max_frame);
        impulse__envelope__free_unpacked(env, NULL);
        used += (size_t)n;
      } else if (n == IMP_EFRAMETOOBIG) {
        FUZZ_CHECK(avail >= IMP_FRAME_HEADER &&
                   imp_frame_len(copy) > max_frame);
      }
      free(copy);
      if (n == 0 && arrived == size) return 0; /* a frame cut short */
      if (n <= 0) {
        /* A transport drops the connection on an error. */
        if (n < 0) return 0;
        break;
      }
    }
  }
  return 0;
}
