/*
 * The worker's side of the wire (runtime/core/wire.c). The input is one
 * Envelope body, after a byte choosing the frame limit; the target frames
 * it and checks:
 * - imp_wire_decode() (the worker's in-place request decoder) against
 *   protobuf-c's own decoder (imp_frame_decode): both refuse, or both
 *   consume the whole frame and decode the same fields; every bytes piece
 *   is followed by a NUL; the request is released in one call (the leak
 *   detector sees the rest); a frame cut short or over the limit is
 *   refused the same way by both;
 * - the worker's answer encoders, round-tripped through protobuf-c with
 *   what the request carried: invoke_ok with its payload and headers, a
 *   batch answer with one result per item (the limit refusing exactly the
 *   result that would exceed it), an error, load_ok, attach_ok, and the
 *   crash frame.
 */
#include "core/wire.h"
#include "fuzz.h"
#include "pbcheck.h"

static const size_t limits[] = {8, 64, 1024, IMP_DEFAULT_MAX_FRAME};

static bool headers_equal(Impulse__Header *const *a, size_t na,
                          Impulse__Header *const *b, size_t nb) {
  if (na != nb) return false;
  for (size_t i = 0; i < na; i++)
    if (!pb_same(&a[i]->base, &b[i]->base)) return false;
  return true;
}

static bool bytes_equal(ProtobufCBinaryData a, const void *b, size_t blen) {
  return a.len == blen && (blen == 0 || memcmp(a.data, b, blen) == 0);
}

/* Decodes the one frame of out[0..len) with protobuf-c. */
static Impulse__Envelope *decode_answer(const imp_buf_t *out, uint64_t id,
                                        Impulse__Envelope__BodyCase body) {
  Impulse__Envelope *env = NULL;
  ssize_t n = imp_frame_decode(out->data, out->len, IMP_DEFAULT_MAX_FRAME * 2,
                               NULL, &env);
  FUZZ_CHECK(n == (ssize_t)out->len && env != NULL);
  FUZZ_CHECK(env->id == id && env->body_case == body);
  return env;
}

static void check_invoke_ok(const Impulse__InvokeRequest *req, uint64_t id,
                            uint32_t version) {
  imp_wire_answer_t answer = {req->payload.len ? req->payload.data : NULL,
                              req->payload.len, req->headers, req->n_headers};
  imp_buf_t out = {0};
  int rc = imp_wire_append_invoke_ok(&out, IMP_DEFAULT_MAX_FRAME, id, &answer,
                                     version);
  FUZZ_CHECK(rc == 0);
  Impulse__Envelope *env =
      decode_answer(&out, id, IMPULSE__ENVELOPE__BODY_INVOKE_OK);
  const Impulse__InvokeResponse *ok = env->invoke_ok;
  FUZZ_CHECK(ok->has_payload &&
             bytes_equal(ok->payload, req->payload.data, req->payload.len));
  FUZZ_CHECK(
      headers_equal(ok->headers, ok->n_headers, req->headers, req->n_headers));
  FUZZ_CHECK(ok->has_status && ok->status == 0);
  FUZZ_CHECK(ok->has_version && ok->version == version);
  impulse__envelope__free_unpacked(env, NULL);

  /* A limit below the frame leaves `out` as it was. */
  size_t before = out.len;
  if (before > IMP_FRAME_HEADER + 1) {
    rc = imp_wire_append_invoke_ok(&out, before - IMP_FRAME_HEADER - 1, id,
                                   &answer, version);
    FUZZ_CHECK(rc == IMP_EFRAMETOOBIG && out.len == before);
  }
  imp_buf_free(&out);
}

/* One result per item: even items answer with the item's payload and
 * headers, odd ones with an error whose message is the function name. */
static void check_batch_ok(const Impulse__InvokeBatchRequest *req, uint64_t id,
                           uint32_t version, size_t limit) {
  imp_wire_batch_t batch;
  FUZZ_CHECK(imp_wire_batch_init(&batch, req->n_items) == 0);
  const char *message = req->function ? req->function : "";
  size_t used = 0, accepted = 0;
  size_t *which = malloc((req->n_items + 1) * sizeof *which);
  FUZZ_CHECK(which != NULL);
  for (size_t i = 0; i < req->n_items; i++) {
    const Impulse__BatchItem *it = req->items[i];
    int code = i % 2 ? (int)(i % 17) : 0;
    imp_wire_answer_t answer = {it->payload.len ? it->payload.data : NULL,
                                it->payload.len, it->headers, it->n_headers};
    /* What protobuf-c makes of the same result, for the limit. */
    Impulse__BatchResult r = IMPULSE__BATCH_RESULT__INIT;
    if (code) {
      r.has_code = 1;
      r.code = code;
      r.message = (char *)message;
    } else {
      r.has_payload = 1;
      r.payload.len = it->payload.len;
      r.payload.data = it->payload.len ? it->payload.data : (uint8_t *)"";
      r.n_headers = it->n_headers;
      r.headers = it->headers;
    }
    size_t rl = impulse__batch_result__get_packed_size(&r);
    uint8_t tmp[16];
    size_t field = 1 + imp_varint_put(tmp, rl) + rl;
    int rc =
        imp_wire_batch_add(&batch, limit, code, message, code ? NULL : &answer);
    if (used + field > limit) {
      FUZZ_CHECK(rc == -ENOSPC);
    } else {
      FUZZ_CHECK(rc == 0);
      used += field;
      which[accepted++] = i;
    }
  }
  imp_buf_t out = {0};
  FUZZ_CHECK(imp_wire_batch_finish(&batch, id, version, &out,
                                   IMP_DEFAULT_MAX_FRAME * 2) == 0);
  Impulse__Envelope *env =
      decode_answer(&out, id, IMPULSE__ENVELOPE__BODY_INVOKE_BATCH_OK);
  const Impulse__InvokeBatchResponse *ok = env->invoke_batch_ok;
  FUZZ_CHECK(ok->has_version && ok->version == version);
  FUZZ_CHECK(ok->n_results == accepted);
  for (size_t k = 0; k < accepted; k++) {
    size_t i = which[k];
    const Impulse__BatchItem *it = req->items[i];
    const Impulse__BatchResult *r = ok->results[k];
    if (i % 2 && i % 17) {
      FUZZ_CHECK(r->has_code && r->code == (int32_t)(i % 17));
      FUZZ_CHECK(r->message != NULL && strcmp(r->message, message) == 0);
      FUZZ_CHECK(!r->has_payload && r->n_headers == 0);
    } else {
      FUZZ_CHECK(!r->has_code && r->message == NULL);
      FUZZ_CHECK(r->has_payload &&
                 bytes_equal(r->payload, it->payload.data, it->payload.len));
      FUZZ_CHECK(
          headers_equal(r->headers, r->n_headers, it->headers, it->n_headers));
    }
  }
  impulse__envelope__free_unpacked(env, NULL);
  imp_buf_free(&out);
  free(which);
}

static void check_simple_answers(uint64_t id, int code, const char *message) {
  imp_buf_t out = {0};
  FUZZ_CHECK(imp_wire_append_error(&out, IMP_DEFAULT_MAX_FRAME, id, code,
                                   message) == 0);
  Impulse__Envelope *env =
      decode_answer(&out, id, IMPULSE__ENVELOPE__BODY_ERROR);
  FUZZ_CHECK(env->error->code == code);
  FUZZ_CHECK(message == NULL ? env->error->message == NULL
                             : strcmp(env->error->message, message) == 0);
  impulse__envelope__free_unpacked(env, NULL);
  out.len = 0;

  FUZZ_CHECK(imp_wire_append_load_ok(&out, IMP_DEFAULT_MAX_FRAME, id,
                                     (uint32_t)code, id >> 3) == 0);
  env = decode_answer(&out, id, IMPULSE__ENVELOPE__BODY_LOAD_OK);
  FUZZ_CHECK(env->load_ok->has_abi_version &&
             env->load_ok->abi_version == (uint32_t)code);
  FUZZ_CHECK(env->load_ok->has_load_us && env->load_ok->load_us == id >> 3);
  impulse__envelope__free_unpacked(env, NULL);
  out.len = 0;

  FUZZ_CHECK(imp_wire_append_attach_ok(&out, IMP_DEFAULT_MAX_FRAME, id, message,
                                       (uint32_t)id, (uint32_t)code,
                                       (int32_t)(id >> 32)) == 0);
  env = decode_answer(&out, id, IMPULSE__ENVELOPE__BODY_ATTACH_OK);
  const Impulse__AttachResponse *at = env->attach_ok;
  FUZZ_CHECK(at->has_pid && at->pid == (int32_t)(id >> 32));
  if (message == NULL) {
    FUZZ_CHECK(at->function == NULL && !at->has_version &&
               !at->has_concurrency);
  } else {
    FUZZ_CHECK(strcmp(at->function, message) == 0);
    FUZZ_CHECK(at->has_version && at->version == (uint32_t)id);
    FUZZ_CHECK(at->has_concurrency && at->concurrency == (uint32_t)code);
  }
  impulse__envelope__free_unpacked(env, NULL);
  out.len = 0;

  uint8_t mark[IMP_WIRE_CRASH_MARK_MAX];
  size_t ml = imp_wire_crash_mark(mark, id);
  FUZZ_CHECK(ml <= sizeof mark);
  FUZZ_CHECK(imp_buf_append(&out, mark, ml) == 0);
  env = decode_answer(&out, id, IMPULSE__ENVELOPE__BODY_ERROR);
  FUZZ_CHECK(env->error->code == IMPULSE__ERROR_CODE__CRASHED);
  FUZZ_CHECK(env->error->message == NULL);
  impulse__envelope__free_unpacked(env, NULL);
  imp_buf_free(&out);
}

/* Both decoders on data[0..len): the same verdict and the same fields. */
static void differential(imp_wire_decoder_t *decoder, const char *data,
                         size_t len, size_t max_frame) {
  Impulse__Envelope *mine = NULL, *theirs = NULL;
  ssize_t a = imp_wire_decode(decoder, data, len, max_frame, &mine);
  ssize_t b = imp_frame_decode(data, len, max_frame, NULL, &theirs);
  FUZZ_CHECK(a == b);
  FUZZ_CHECK(decoder->cur == NULL);
  if (a <= 0) return;
  FUZZ_CHECK(pb_same(&mine->base, &theirs->base));
  pb_check_nul(&mine->base);
  imp_wire_request_free(mine);
  impulse__envelope__free_unpacked(theirs, NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) return 0;
  size_t max_frame = limits[data[0] % (sizeof limits / sizeof limits[0])];
  data++;
  size--;
  if (size > UINT32_MAX) return 0;

  /* The frame in a block of exactly its size, so that a read past it
   * shows. */
  size_t flen = IMP_FRAME_HEADER + size;
  char *frame = malloc(flen);
  FUZZ_CHECK(frame != NULL);
  imp_frame_put_len(frame, (uint32_t)size);
  if (size) memcpy(frame + IMP_FRAME_HEADER, data, size);

  imp_wire_decoder_t decoder;
  imp_wire_decoder_init(&decoder);
  differential(&decoder, frame, flen, max_frame);
  differential(&decoder, frame, flen - 1, max_frame); /* cut short */
  differential(&decoder, frame, 3, max_frame);        /* prefix cut */

  Impulse__Envelope *env = NULL;
  ssize_t n = imp_wire_decode(&decoder, frame, flen, max_frame, &env);
  FUZZ_CHECK(n == (size > max_frame ? IMP_EFRAMETOOBIG : n));
  if (n > 0) {
    FUZZ_CHECK((size_t)n == flen);
    uint64_t id = env->id;
    uint32_t version = (uint32_t)(id * 2654435761u);
    switch (env->body_case) {
      case IMPULSE__ENVELOPE__BODY_INVOKE:
        check_invoke_ok(env->invoke, id, version);
        check_simple_answers(id, (int)(id % 23), env->invoke->function);
        break;
      case IMPULSE__ENVELOPE__BODY_INVOKE_BATCH:
        check_batch_ok(env->invoke_batch, id, version,
                       (size_t)(id % 4096) + (id & 1 ? 1u << 20 : 0));
        break;
      default: check_simple_answers(id, (int)(int32_t)(id >> 8), NULL); break;
    }
    imp_wire_request_free(env);
  }
  free(frame);
  return 0;
}
