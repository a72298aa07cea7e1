/*
 * Unit tests for runtime/core/codec.c: the length-prefixed Envelope codec.
 *
 * Every decode reads from a heap buffer of exactly the size under test, so
 * a read past the end is caught by AddressSanitizer in the sanitizer run.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/codec.h"
#include "frames.h"
#include "tests/support/test_main.h"

/* Decodes from an exact-size copy so over-reads are visible to ASan. */
static ssize_t decode_exact(const void *data, size_t len, size_t max_frame,
                            Impulse__Envelope **env) {
  char *copy = ut_dup_exact(data, len);
  ssize_t rc = imp_frame_decode(copy, len, max_frame, NULL, env);
  free(copy);
  return rc;
}

static void free_envelope(Impulse__Envelope *env) {
  impulse__envelope__free_unpacked(env, NULL);
}

static const ut_decoder_t kDecoder = {decode_exact, free_envelope};

static const uint8_t kPayload[] = {0x00, 0x01, 0xff, 'h',  'i',
                                   0x00, 0x80, 0x7f, 0x0a, 0x00};
static const char kCtype[] = "application/octet-stream";
static const uint8_t kBinHeader[] = {0x00, 0xfe, 0x00};

static const ut_header_t kHeaders[] = {
    {"content-type", kCtype, sizeof kCtype - 1},
    {"x-bin", kBinHeader, sizeof kBinHeader},
    {"x-empty", NULL, 0},
};

/* The invoke of the tests (under various ids). */
static const ut_invoke_spec_t kInvoke = {
    .function = "echo",
    .payload = kPayload,
    .payload_len = sizeof kPayload,
    .headers = kHeaders,
    .n_headers = IMP_ARRAY_SIZE(kHeaders),
    .deadline_ms = 250,
    .idempotency_key = "key-1",
    .version = 7,
};

static void check_invoke(const Impulse__Envelope *e, uint64_t id) {
  assert_non_null(e);
  assert_true(e->id == id);
  assert_int_equal(e->body_case, IMPULSE__ENVELOPE__BODY_INVOKE);
  const Impulse__InvokeRequest *r = e->invoke;
  assert_non_null(r);
  assert_string_equal(r->function, "echo");
  assert_true(r->has_payload);
  assert_int_equal(r->payload.len, sizeof kPayload);
  assert_memory_equal(r->payload.data, kPayload, sizeof kPayload);
  assert_int_equal(r->n_headers, 3);
  assert_string_equal(r->headers[0]->name, "content-type");
  assert_true(r->headers[0]->has_value);
  assert_int_equal(r->headers[0]->value.len, sizeof kCtype - 1);
  assert_memory_equal(r->headers[0]->value.data, kCtype, sizeof kCtype - 1);
  assert_string_equal(r->headers[1]->name, "x-bin");
  assert_true(r->headers[1]->has_value);
  assert_int_equal(r->headers[1]->value.len, sizeof kBinHeader);
  assert_memory_equal(r->headers[1]->value.data, kBinHeader, sizeof kBinHeader);
  assert_string_equal(r->headers[2]->name, "x-empty");
  assert_true(r->headers[2]->has_value);
  assert_int_equal(r->headers[2]->value.len, 0);
  assert_true(r->has_deadline_ms);
  assert_int_equal(r->deadline_ms, 250);
  assert_string_equal(r->idempotency_key, "key-1");
  assert_true(r->has_version);
  assert_int_equal(r->version, 7);
}

static void test_invoke_round_trip(void **state) {
  (void)state;
  ut_invoke_t f;
  ut_invoke_init(&f, 0x0123456789abcdefULL, &kInvoke);
  size_t packed = impulse__envelope__get_packed_size(&f.env);

  imp_buf_t buf = {0};
  assert_int_equal(imp_frame_append(&buf, &f.env, IMP_DEFAULT_MAX_FRAME), 0);
  assert_int_equal(buf.len, IMP_FRAME_HEADER + packed);
  assert_int_equal(imp_frame_len(buf.data), packed);
  /* Big-endian prefix, byte by byte. */
  assert_int_equal((unsigned char)buf.data[0], (packed >> 24) & 0xff);
  assert_int_equal((unsigned char)buf.data[1], (packed >> 16) & 0xff);
  assert_int_equal((unsigned char)buf.data[2], (packed >> 8) & 0xff);
  assert_int_equal((unsigned char)buf.data[3], packed & 0xff);

  Impulse__Envelope *e = NULL;
  ssize_t n = decode_exact(buf.data, buf.len, IMP_DEFAULT_MAX_FRAME, &e);
  assert_int_equal(n, (ssize_t)buf.len);
  check_invoke(e, 0x0123456789abcdefULL);
  impulse__envelope__free_unpacked(e, NULL);
  imp_buf_free(&buf);
}

static void test_frame_len_helpers(void **state) {
  (void)state;
  char p[4];
  imp_frame_put_len(p, 0x01020304u);
  assert_int_equal((unsigned char)p[0], 1);
  assert_int_equal((unsigned char)p[1], 2);
  assert_int_equal((unsigned char)p[2], 3);
  assert_int_equal((unsigned char)p[3], 4);
  assert_int_equal(imp_frame_len(p), 0x01020304u);
  imp_frame_put_len(p, 0xfffffffeu);
  assert_int_equal(imp_frame_len(p), 0xfffffffeu);
}

/* Decodes the frame at data[*off] of data[0..avail), which must be `want`
 * bytes long, and moves *off past it. */
static Impulse__Envelope *decode_next(const char *data, size_t avail,
                                      size_t *off, size_t want) {
  Impulse__Envelope *e = NULL;
  ssize_t n = imp_frame_decode(data + *off, avail - *off, IMP_DEFAULT_MAX_FRAME,
                               NULL, &e);
  assert_int_equal(n, (ssize_t)want);
  assert_non_null(e);
  *off += (size_t)n;
  return e;
}

static void test_pipelined_frames(void **state) {
  (void)state;
  ut_invoke_t f1;
  ut_invoke_init(&f1, 1, &kInvoke);

  Impulse__Envelope e2;
  Impulse__Error err2;
  imp_envelope_error(&e2, &err2, 2, IMPULSE__ERROR_CODE__OVERLOADED,
                     "queue full");

  Impulse__Envelope e3;
  Impulse__HelloRequest hello;
  impulse__envelope__init(&e3);
  impulse__hello_request__init(&hello);
  hello.token = "secret";
  hello.client = "test";
  e3.id = 3;
  e3.body_case = IMPULSE__ENVELOPE__BODY_HELLO;
  e3.hello = &hello;

  size_t sz[4];
  sz[0] = IMP_FRAME_HEADER + impulse__envelope__get_packed_size(&f1.env);
  sz[1] = IMP_FRAME_HEADER + impulse__envelope__get_packed_size(&e2);
  sz[2] = IMP_FRAME_HEADER + impulse__envelope__get_packed_size(&e3);
  sz[3] = sz[0];

  imp_buf_t buf = {0};
  assert_int_equal(imp_frame_append(&buf, &f1.env, IMP_DEFAULT_MAX_FRAME), 0);
  assert_int_equal(imp_frame_append(&buf, &e2, IMP_DEFAULT_MAX_FRAME), 0);
  assert_int_equal(imp_frame_append(&buf, &e3, IMP_DEFAULT_MAX_FRAME), 0);
  /* A fourth frame of which the last byte has not arrived yet. */
  assert_int_equal(imp_frame_append(&buf, &f1.env, IMP_DEFAULT_MAX_FRAME), 0);
  assert_int_equal(buf.len, sz[0] + sz[1] + sz[2] + sz[3]);
  size_t avail = buf.len - 1;

  char *data = ut_dup_exact(buf.data, avail);
  size_t off = 0;

  Impulse__Envelope *e = decode_next(data, avail, &off, sz[0]);
  check_invoke(e, 1);
  impulse__envelope__free_unpacked(e, NULL);

  e = decode_next(data, avail, &off, sz[1]);
  assert_int_equal(e->id, 2);
  assert_int_equal(e->body_case, IMPULSE__ENVELOPE__BODY_ERROR);
  assert_int_equal(e->error->code, IMPULSE__ERROR_CODE__OVERLOADED);
  assert_string_equal(e->error->message, "queue full");
  impulse__envelope__free_unpacked(e, NULL);

  e = decode_next(data, avail, &off, sz[2]);
  assert_int_equal(e->id, 3);
  assert_int_equal(e->body_case, IMPULSE__ENVELOPE__BODY_HELLO);
  assert_string_equal(e->hello->token, "secret");
  assert_string_equal(e->hello->client, "test");
  impulse__envelope__free_unpacked(e, NULL);

  /* The incomplete fourth frame: need more, envelope untouched. */
  e = NULL;
  ssize_t n = imp_frame_decode(data + off, avail - off, IMP_DEFAULT_MAX_FRAME,
                               NULL, &e);
  assert_int_equal(n, 0);
  assert_null(e);
  assert_int_equal(avail - off, sz[3] - 1);
  free(data);

  /* The same stream read the way a connection does: decode, consume. */
  size_t frames = 0;
  for (;;) {
    e = NULL;
    n = imp_frame_decode(buf.data, buf.len, IMP_DEFAULT_MAX_FRAME, NULL, &e);
    if (n == 0) break;
    assert_true(n > 0);
    assert_int_equal(n, (ssize_t)sz[frames]);
    assert_int_equal(e->id, frames == 3 ? 1 : frames + 1);
    impulse__envelope__free_unpacked(e, NULL);
    imp_buf_consume(&buf, (size_t)n);
    frames++;
  }
  assert_int_equal(frames, 4);
  assert_int_equal(buf.len, 0);
  imp_buf_free(&buf);
}

static void test_truncated_frame_needs_more(void **state) {
  (void)state;
  imp_buf_t buf = {0};
  ut_invoke_append(&buf, 99, &kInvoke);
  ut_expect_needs_more(&kDecoder, &buf);
  Impulse__Envelope *e = NULL;
  assert_int_equal(decode_exact(buf.data, buf.len, IMP_DEFAULT_MAX_FRAME, &e),
                   (ssize_t)buf.len);
  check_invoke(e, 99);
  impulse__envelope__free_unpacked(e, NULL);
  imp_buf_free(&buf);
}

static void test_oversized_prefix(void **state) {
  (void)state;
  const size_t max = 1024;
  char hdr[IMP_FRAME_HEADER];
  Impulse__Envelope *e = NULL;

  /* Only the 4 header bytes have arrived: already rejected. */
  imp_frame_put_len(hdr, (uint32_t)(max + 1));
  assert_int_equal(decode_exact(hdr, sizeof hdr, max, &e), IMP_EFRAMETOOBIG);
  assert_null(e);

  /* Same with some body bytes behind it. */
  char more[IMP_FRAME_HEADER + 16] = {0};
  imp_frame_put_len(more, (uint32_t)(max + 1));
  assert_int_equal(decode_exact(more, sizeof more, max, &e), IMP_EFRAMETOOBIG);
  assert_null(e);

  /* The largest prefix against the default limit. */
  imp_frame_put_len(hdr, 0xffffffffu);
  assert_int_equal(decode_exact(hdr, sizeof hdr, IMP_DEFAULT_MAX_FRAME, &e),
                   IMP_EFRAMETOOBIG);
  imp_frame_put_len(hdr, IMP_DEFAULT_MAX_FRAME + 1);
  assert_int_equal(decode_exact(hdr, sizeof hdr, IMP_DEFAULT_MAX_FRAME, &e),
                   IMP_EFRAMETOOBIG);
  assert_null(e);

  /* Fewer than 4 bytes cannot be judged yet. */
  assert_int_equal(decode_exact(hdr, 3, IMP_DEFAULT_MAX_FRAME, &e), 0);
  assert_null(e);
}

static void test_prefix_at_max_accepted(void **state) {
  (void)state;
  const size_t max = 1024;
  Impulse__Envelope *e = NULL;

  char *frame = calloc(1, IMP_FRAME_HEADER + max);
  assert_non_null(frame);
  imp_frame_put_len(frame, (uint32_t)max);
  assert_int_equal(decode_exact(frame, IMP_FRAME_HEADER, max, &e), 0);
  assert_int_equal(decode_exact(frame, IMP_FRAME_HEADER + max - 1, max, &e), 0);
  assert_null(e);
  free(frame);

  /* A real frame whose body is exactly max_frame bytes is appended and
   * decodes; one byte less of allowance and the same frame is refused. */
  ut_invoke_t f;
  ut_invoke_init(&f, 5, &kInvoke);
  size_t n = impulse__envelope__get_packed_size(&f.env);
  imp_buf_t buf = {0};
  assert_int_equal(imp_frame_append(&buf, &f.env, n), 0);
  assert_int_equal(buf.len, IMP_FRAME_HEADER + n);
  e = ut_decode_at_limit(&kDecoder, &buf);
  check_invoke(e, 5);
  impulse__envelope__free_unpacked(e, NULL);
  imp_buf_free(&buf);
}

static void test_garbage_bodies(void **state) {
  (void)state;
  imp_buf_t valid = {0};
  ut_invoke_append(&valid, 77, &kInvoke);
  size_t decoded = ut_hostile_frames(&kDecoder, 0x9e3779b97f4a7c15ULL, &valid);
  imp_buf_free(&valid);
  print_message("hostile frames that decoded: %zu of 40000\n", decoded);
}

static void test_empty_envelope_is_eproto(void **state) {
  (void)state;
  Impulse__Envelope env;
  impulse__envelope__init(&env);
  env.id = 5;

  imp_buf_t buf = {0};
  assert_int_equal(imp_frame_append(&buf, &env, IMP_DEFAULT_MAX_FRAME), 0);
  Impulse__Envelope *e = NULL;
  assert_int_equal(decode_exact(buf.data, buf.len, IMP_DEFAULT_MAX_FRAME, &e),
                   IMP_EPROTO);
  assert_null(e);
  imp_buf_free(&buf);

  /* A zero-length body lacks even the required id. */
  char hdr[IMP_FRAME_HEADER];
  imp_frame_put_len(hdr, 0);
  assert_int_equal(decode_exact(hdr, sizeof hdr, IMP_DEFAULT_MAX_FRAME, &e),
                   IMP_EPROTO);
  assert_null(e);
}

/* protobuf-c accepts an unknown field numbered 0 when its tag is a longer
 * varint (0x82 0x00) and packs it back as 0x02, which it refuses: a request
 * holding one would not survive being forwarded in a new envelope or
 * stored. Found by the frame fuzz target (corpus/frame/crash-field-zero). */
static void test_field_zero_is_eproto(void **state) {
  (void)state;
  /* Envelope{id 9, invoke{function "f", headers [{name "h", value ""} +
   * unknown field 0]}}. */
  static const char hostile[] = {0x08, 0x09, 0x2a,       0x0c, 0x0a, 0x01,
                                 'f',  0x1a, 0x07,       0x0a, 0x01, 'h',
                                 0x12, 0x00, (char)0x82, 0x00, 0x00};
  char frame[IMP_FRAME_HEADER + sizeof hostile];
  imp_frame_put_len(frame, sizeof hostile);
  memcpy(frame + IMP_FRAME_HEADER, hostile, sizeof hostile);
  Impulse__Envelope *e = NULL;
  assert_int_equal(decode_exact(frame, sizeof frame, IMP_DEFAULT_MAX_FRAME, &e),
                   IMP_EPROTO);
  assert_null(e);
  assert_null(imp_body_decode(hostile + 2, sizeof hostile - 2, NULL));

  /* An unknown field of a real number (a newer peer's) is still taken, and
   * survives a repack. */
  static const char newer[] = {0x08, 0x09, 0x2a, 0x07, 0x0a,       0x01, 'f',
                               0x1a, 0x02, 0x0a, 0x00, (char)0xf8, 0x07, 0x01};
  imp_frame_put_len(frame, sizeof newer);
  memcpy(frame + IMP_FRAME_HEADER, newer, sizeof newer);
  assert_int_equal(decode_exact(frame, IMP_FRAME_HEADER + sizeof newer,
                                IMP_DEFAULT_MAX_FRAME, &e),
                   (ssize_t)(IMP_FRAME_HEADER + sizeof newer));
  assert_non_null(e);
  assert_true(imp_pb_tags_ok(&e->base));
  imp_buf_t again = {0};
  assert_int_equal(imp_frame_append(&again, e, IMP_DEFAULT_MAX_FRAME), 0);
  Impulse__Envelope *e2 = NULL;
  assert_int_equal(
      decode_exact(again.data, again.len, IMP_DEFAULT_MAX_FRAME, &e2),
      (ssize_t)again.len);
  impulse__envelope__free_unpacked(e2, NULL);
  impulse__envelope__free_unpacked(e, NULL);
  imp_buf_free(&again);
}

static void test_append_too_big_leaves_buffer(void **state) {
  (void)state;
  static uint8_t big[2000];
  memset(big, 0xab, sizeof big);
  Impulse__Envelope env;
  Impulse__InvokeRequest inv;
  impulse__envelope__init(&env);
  impulse__invoke_request__init(&inv);
  inv.function = "f";
  inv.has_payload = 1;
  inv.payload.data = big;
  inv.payload.len = sizeof big;
  env.id = 1;
  env.body_case = IMPULSE__ENVELOPE__BODY_INVOKE;
  env.invoke = &inv;
  size_t n = impulse__envelope__get_packed_size(&env);
  assert_true(n > sizeof big);

  /* Empty buffer stays empty (no allocation either). */
  imp_buf_t buf = {0};
  assert_int_equal(imp_frame_append(&buf, &env, 1000), IMP_EFRAMETOOBIG);
  assert_null(buf.data);
  assert_int_equal(buf.len, 0);
  assert_int_equal(buf.cap, 0);

  /* A buffer with earlier frames keeps pointer, length, capacity, bytes. */
  assert_int_equal(imp_buf_append(&buf, "abc\0def", 7), 0);
  char *data = buf.data;
  size_t len = buf.len, cap = buf.cap;
  assert_int_equal(imp_frame_append(&buf, &env, 1000), IMP_EFRAMETOOBIG);
  assert_int_equal(imp_frame_append(&buf, &env, n - 1), IMP_EFRAMETOOBIG);
  assert_ptr_equal(buf.data, data);
  assert_int_equal(buf.len, len);
  assert_int_equal(buf.cap, cap);
  assert_memory_equal(buf.data, "abc\0def", 7);

  /* At exactly the limit it goes in, after the earlier bytes. */
  assert_int_equal(imp_frame_append(&buf, &env, n), 0);
  assert_int_equal(buf.len, 7 + IMP_FRAME_HEADER + n);
  assert_memory_equal(buf.data, "abc\0def", 7);
  assert_int_equal(imp_frame_len(buf.data + 7), n);
  imp_buf_free(&buf);
}

static void test_envelope_error(void **state) {
  (void)state;
  Impulse__Envelope env;
  Impulse__Error err;
  const char *msg = "no such function: nope";
  imp_envelope_error(&env, &err, 42, IMPULSE__ERROR_CODE__NOT_FOUND, msg);
  assert_int_equal(env.id, 42);
  assert_int_equal(env.body_case, IMPULSE__ENVELOPE__BODY_ERROR);
  assert_ptr_equal(env.error, &err);
  assert_int_equal(err.code, IMPULSE__ERROR_CODE__NOT_FOUND);
  assert_ptr_equal(err.message, msg); /* borrowed, not copied */

  imp_buf_t buf = {0};
  assert_int_equal(imp_frame_append(&buf, &env, IMP_DEFAULT_MAX_FRAME), 0);
  Impulse__Envelope *e = NULL;
  assert_int_equal(decode_exact(buf.data, buf.len, IMP_DEFAULT_MAX_FRAME, &e),
                   (ssize_t)buf.len);
  assert_int_equal(e->id, 42);
  assert_int_equal(e->body_case, IMPULSE__ENVELOPE__BODY_ERROR);
  assert_int_equal(e->error->code, 3);
  assert_string_equal(e->error->message, "no such function: nope");
  impulse__envelope__free_unpacked(e, NULL);
  imp_buf_free(&buf);

  /* Without a message the field is absent on the wire. */
  imp_envelope_error(&env, &err, 43, IMPULSE__ERROR_CODE__INTERNAL, NULL);
  assert_int_equal(imp_frame_append(&buf, &env, IMP_DEFAULT_MAX_FRAME), 0);
  e = NULL;
  assert_int_equal(decode_exact(buf.data, buf.len, IMP_DEFAULT_MAX_FRAME, &e),
                   (ssize_t)buf.len);
  assert_int_equal(e->id, 43);
  assert_int_equal(e->error->code, IMPULSE__ERROR_CODE__INTERNAL);
  assert_null(e->error->message);
  impulse__envelope__free_unpacked(e, NULL);
  imp_buf_free(&buf);
}

static void test_error_code_name(void **state) {
  (void)state;
  assert_string_equal(imp_error_code_name(IMPULSE__ERROR_CODE__NOT_FOUND),
                      "NOT_FOUND");
  assert_string_equal(imp_error_code_name(IMPULSE__ERROR_CODE__OK), "OK");
  assert_string_equal(imp_error_code_name(IMPULSE__ERROR_CODE__OVERLOADED),
                      "OVERLOADED");
  assert_string_equal(imp_error_code_name(IMPULSE__ERROR_CODE__EXISTS),
                      "EXISTS");
  assert_string_equal(imp_error_code_name(IMPULSE__ERROR_CODE__IN_PROGRESS),
                      "IN_PROGRESS");
  assert_string_equal(
      imp_error_code_name(IMPULSE__ERROR_CODE__PERMISSION_DENIED),
      "PERMISSION_DENIED");
  assert_string_equal(imp_error_code_name(17), "UNKNOWN");
  assert_string_equal(imp_error_code_name(-1), "UNKNOWN");
  assert_string_equal(imp_error_code_name(1000000), "UNKNOWN");
}

/* A frame forwarded under another id decodes to the same message with the
 * new id, for small and multi-byte ids. */
static void test_forward_with_new_id(void **state) {
  (void)state;
  static const uint64_t ids[] = {0, 1, 127, 128, 300, 1ull << 40, UINT64_MAX};
  for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++) {
    ut_invoke_t f;
    ut_invoke_init(&f, ids[i], &kInvoke);
    imp_buf_t in = {0};
    assert_int_equal(imp_frame_append(&in, &f.env, IMP_DEFAULT_MAX_FRAME), 0);
    uint64_t id = 42;
    size_t off = 0;
    const char *body = in.data + IMP_FRAME_HEADER;
    size_t blen = in.len - IMP_FRAME_HEADER;
    assert_int_equal(imp_envelope_split_id(body, blen, &id, &off), 0);
    assert_true(id == ids[i]);
    uint64_t nid = ids[(i + 3) % (sizeof ids / sizeof ids[0])];
    imp_buf_t out = {0};
    assert_int_equal(imp_frame_append_with_id(&out, nid, body + off, blen - off,
                                              IMP_DEFAULT_MAX_FRAME),
                     0);
    Impulse__Envelope *env = NULL;
    assert_int_equal(
        imp_frame_decode(out.data, out.len, IMP_DEFAULT_MAX_FRAME, NULL, &env),
        (ssize_t)out.len);
    assert_true(env->id == nid);
    assert_int_equal(env->body_case, IMPULSE__ENVELOPE__BODY_INVOKE);
    assert_string_equal(env->invoke->function, f.inv.function);
    assert_int_equal(env->invoke->payload.len, f.inv.payload.len);
    assert_memory_equal(env->invoke->payload.data, f.inv.payload.data,
                        f.inv.payload.len);
    impulse__envelope__free_unpacked(env, NULL);
    imp_buf_free(&in);
    imp_buf_free(&out);
  }
  /* Too large for the limit: refused, buffer untouched. */
  imp_buf_t out = {0};
  char rest[64] = {0};
  assert_int_equal(imp_frame_append_with_id(&out, 1, rest, sizeof rest, 32),
                   IMP_EFRAMETOOBIG);
  assert_int_equal(out.len, 0);
}

/* Bodies that do not start with a well-formed id field are refused, so the
 * caller falls back to a decode. */
static void test_split_id_rejects(void **state) {
  (void)state;
  uint64_t id;
  size_t off;
  static const char not_id[] = {0x12, 0x00};
  static const char cut[] = {0x08, (char)0x80, (char)0x80};
  static const char overlong[] = {
      0x08,       (char)0xff, (char)0xff, (char)0xff, (char)0xff, (char)0xff,
      (char)0xff, (char)0xff, (char)0xff, (char)0xff, (char)0xff, 0x01};
  assert_int_equal(imp_envelope_split_id(not_id, sizeof not_id, &id, &off),
                   IMP_EPROTO);
  assert_int_equal(imp_envelope_split_id(cut, sizeof cut, &id, &off),
                   IMP_EPROTO);
  assert_int_equal(imp_envelope_split_id(overlong, sizeof overlong, &id, &off),
                   IMP_EPROTO);
  assert_int_equal(imp_envelope_split_id(not_id, 1, &id, &off), IMP_EPROTO);
}

TEST_MAIN("unit_codec", NULL, NULL, cmocka_unit_test(test_invoke_round_trip),
          cmocka_unit_test(test_frame_len_helpers),
          cmocka_unit_test(test_pipelined_frames),
          cmocka_unit_test(test_truncated_frame_needs_more),
          cmocka_unit_test(test_oversized_prefix),
          cmocka_unit_test(test_prefix_at_max_accepted),
          cmocka_unit_test(test_garbage_bodies),
          cmocka_unit_test(test_empty_envelope_is_eproto),
          cmocka_unit_test(test_field_zero_is_eproto),
          cmocka_unit_test(test_append_too_big_leaves_buffer),
          cmocka_unit_test(test_envelope_error),
          cmocka_unit_test(test_error_code_name),
          cmocka_unit_test(test_forward_with_new_id),
          cmocka_unit_test(test_split_id_rejects))
