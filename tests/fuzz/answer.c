/*
 * The server's readers of a worker's answer, the Envelope body after its
 * id (runtime/core/codec.c): imp_answer_code(), imp_body_decode() and
 * imp_batch_answer_decode(). The input, after its first byte, is such a
 * body. Checks:
 * - imp_body_decode() decodes exactly what protobuf-c decodes from the
 *   same bytes behind an id of 0, less what imp_pb_tags_ok() refuses;
 * - imp_batch_answer_decode() (into an arena, as the call path does)
 *   agrees with protobuf-c: a batch answer gives the same results, an
 *   Error its code (INTERNAL for 0) and message, anything else INTERNAL;
 * - imp_answer_code() agrees with protobuf-c on every answer written the
 *   way protobuf-c writes it (its own pack of what it decoded), as the
 *   worker writes them; on other bytes both readers only have to be safe
 *   (the first field decides there, by their contract);
 * - the round trip with the worker's encoder: the input read as a list of
 *   results is packed by imp_wire_batch_add/finish, and
 *   imp_batch_answer_decode() of the frame's body gives them back.
 * The first byte is the arena's first block size and the batch limit.
 */
#include "core/arena.h"
#include "core/codec.h"
#include "core/wire.h"
#include "fuzz.h"
#include "pbcheck.h"

/* protobuf-c's verdict on an answer body: the Envelope it decodes to with
 * an id of 0 written in front (the id is a required field). *canonical
 * says whether protobuf-c packs that Envelope back to the same bytes, as
 * the worker's answers are written: then only the body's field follows
 * the id, and the hand-written readers must agree with it exactly. */
static Impulse__Envelope *reference(const uint8_t *rest, size_t len,
                                    bool *canonical) {
  uint8_t *buf = malloc(len + 2);
  FUZZ_CHECK(buf != NULL);
  buf[0] = 0x08;
  buf[1] = 0x00;
  if (len) memcpy(buf + 2, rest, len);
  Impulse__Envelope *ref = impulse__envelope__unpack(NULL, len + 2, buf);
  *canonical = false;
  if (ref != NULL && !imp_pb_tags_ok(&ref->base)) {
    /* A field numbered 0, which our decoders refuse (imp_pb_tags_ok). */
    impulse__envelope__free_unpacked(ref, NULL);
    ref = NULL;
  }
  if (ref != NULL && impulse__envelope__get_packed_size(ref) == len + 2) {
    uint8_t *packed = malloc(len + 2);
    FUZZ_CHECK(packed != NULL);
    impulse__envelope__pack(ref, packed);
    *canonical = memcmp(packed, buf, len + 2) == 0;
    free(packed);
  }
  free(buf);
  return ref;
}

static void check_answer_code(const uint8_t *rest, size_t len,
                              const Impulse__Envelope *ref, bool canonical) {
  int code = imp_answer_code((const char *)rest, len);
  if (!canonical) return;
  if (ref->body_case == IMPULSE__ENVELOPE__BODY_INVOKE_OK)
    FUZZ_CHECK(code == 0);
  else if (ref->body_case == IMPULSE__ENVELOPE__BODY_ERROR)
    FUZZ_CHECK(code == ref->error->code);
  else
    FUZZ_CHECK(code == IMPULSE__ERROR_CODE__INTERNAL);
}

static void check_body_decode(const uint8_t *rest, size_t len,
                              const Impulse__Envelope *ref) {
  Impulse__Envelope *got = imp_body_decode((const char *)rest, len, NULL);
  FUZZ_CHECK((got == NULL) == (ref == NULL));
  if (got == NULL) return;
  FUZZ_CHECK(got->id == ref->id);
  FUZZ_CHECK(pb_same(&got->base, &ref->base));
  impulse__envelope__free_unpacked(got, NULL);
}

static void check_batch_decode(const uint8_t *rest, size_t len,
                               const Impulse__Envelope *ref, bool canonical,
                               size_t block) {
  imp_arena_t arena;
  imp_arena_init(&arena, block);
  ProtobufCAllocator alloc;
  imp_arena_allocator(&arena, &alloc);
  Impulse__InvokeBatchResponse *resp = NULL;
  const char *message = NULL;
  int code =
      imp_batch_answer_decode((const char *)rest, len, &alloc, &resp, &message);
  FUZZ_CHECK(code == 0 ? resp != NULL && message == NULL
                       : resp == NULL && message != NULL);
  if (canonical) {
    switch (ref->body_case) {
      case IMPULSE__ENVELOPE__BODY_INVOKE_BATCH_OK:
        FUZZ_CHECK(code == 0);
        FUZZ_CHECK(pb_same(&resp->base, &ref->invoke_batch_ok->base));
        break;
      case IMPULSE__ENVELOPE__BODY_ERROR:
        FUZZ_CHECK(code == (ref->error->code ? ref->error->code
                                             : IMPULSE__ERROR_CODE__INTERNAL));
        FUZZ_CHECK(strcmp(message, ref->error->message ? ref->error->message
                                                       : "error") == 0);
        break;
      default: FUZZ_CHECK(code == IMPULSE__ERROR_CODE__INTERNAL); break;
    }
  }
  imp_arena_release(&arena);
}

/* The input as results, packed by the worker's encoder, read back. */
static void check_round_trip(fuzz_in_t *in, size_t limit) {
  enum { MAX = 32 };
  char messages[MAX][65];
  const uint8_t *payloads[MAX];
  size_t plens[MAX];
  int codes[MAX];
  Impulse__Header hs[MAX], *hp[MAX];
  char hnames[MAX][17];
  size_t n = in_u8(in) % (MAX + 1), added = 0;
  imp_wire_batch_t batch;
  FUZZ_CHECK(imp_wire_batch_init(&batch, n) == 0);
  for (size_t i = 0; i < n; i++) {
    codes[added] = (int)(int8_t)in_u8(in);
    in_str(in, messages[added], 64);
    payloads[added] = in_bytes(in, 255, &plens[added]);
    impulse__header__init(&hs[added]);
    hs[added].name = in_str(in, hnames[added], 16);
    hs[added].has_value = 1;
    hs[added].value.data = (uint8_t *)messages[added];
    hs[added].value.len = strlen(messages[added]);
    hp[added] = &hs[added];
    imp_wire_answer_t answer = {plens[added] ? payloads[added] : NULL,
                                plens[added], &hp[added], 1};
    int rc = imp_wire_batch_add(&batch, limit, codes[added], messages[added],
                                &answer);
    FUZZ_CHECK(rc == 0 || rc == -ENOSPC);
    if (rc == 0) added++;
  }
  uint64_t id = in_u64(in, 8);
  uint32_t version = (uint32_t)in_u64(in, 4);
  imp_buf_t out = {0};
  FUZZ_CHECK(imp_wire_batch_finish(&batch, id, version, &out, SIZE_MAX) == 0);
  uint64_t got_id;
  size_t off;
  FUZZ_CHECK(imp_envelope_split_id(out.data + IMP_FRAME_HEADER,
                                   out.len - IMP_FRAME_HEADER, &got_id,
                                   &off) == 0);
  FUZZ_CHECK(got_id == id);
  const char *rest = out.data + IMP_FRAME_HEADER + off;
  size_t restlen = out.len - IMP_FRAME_HEADER - off;
  FUZZ_CHECK(imp_answer_code(rest, restlen) == IMPULSE__ERROR_CODE__INTERNAL);

  imp_arena_t arena;
  imp_arena_init(&arena, 256);
  ProtobufCAllocator alloc;
  imp_arena_allocator(&arena, &alloc);
  Impulse__InvokeBatchResponse *resp = NULL;
  const char *message = NULL;
  FUZZ_CHECK(imp_batch_answer_decode(rest, restlen, &alloc, &resp, &message) ==
             0);
  FUZZ_CHECK(resp->has_version && resp->version == version);
  FUZZ_CHECK(resp->n_results == added);
  for (size_t i = 0; i < added; i++) {
    const Impulse__BatchResult *r = resp->results[i];
    if (codes[i] != 0) {
      FUZZ_CHECK(r->has_code && r->code == codes[i]);
      FUZZ_CHECK(strcmp(r->message, messages[i]) == 0);
      FUZZ_CHECK(!r->has_payload && r->n_headers == 0);
    } else {
      FUZZ_CHECK(!r->has_code && r->message == NULL && r->has_payload);
      FUZZ_CHECK(r->payload.len == plens[i] &&
                 (plens[i] == 0 ||
                  memcmp(r->payload.data, payloads[i], plens[i]) == 0));
      FUZZ_CHECK(r->n_headers == 1 &&
                 pb_same(&r->headers[0]->base, &hs[i].base));
    }
  }
  imp_arena_release(&arena);
  imp_buf_free(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) return 0;
  size_t block = 64u << (data[0] & 7);            /* 64 B .. 8 KiB */
  size_t limit = (size_t)(data[0] >> 3) * 97 + 1; /* 1 .. 3008 bytes */
  const uint8_t *rest = data + 1;
  size_t len = size - 1;

  bool canonical;
  Impulse__Envelope *ref = reference(rest, len, &canonical);
  check_body_decode(rest, len, ref);
  check_answer_code(rest, len, ref, canonical);
  check_batch_decode(rest, len, ref, canonical, block);
  if (ref != NULL) impulse__envelope__free_unpacked(ref, NULL);

  fuzz_in_t in = {rest, rest + len};
  check_round_trip(&in, limit);
  return 0;
}
