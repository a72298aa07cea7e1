/*
 * Unit tests for runtime/core/wire.c: the worker's request decode and the
 * answers it encodes, checked against protobuf-c's own pack and unpack.
 *
 * Decodes read from heap buffers of exactly the size under test, so a read
 * past the end, a use after free or a leak is caught in the sanitizer run.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/wire.h"
#include "frames.h"
#include "tests/support/test_main.h"

#define MAX_FRAME IMP_DEFAULT_MAX_FRAME

static const uint64_t kIds[] = {0, 1, 127, 128, 300, 1ull << 32, UINT64_MAX};

/* imp_wire_decode() of an exact-size copy of data[0..len). */
static ssize_t wire_decode_exact(const void *data, size_t len, size_t max,
                                 Impulse__Envelope **env) {
  imp_wire_decoder_t decoder;
  imp_wire_decoder_init(&decoder);
  char *copy = ut_dup_exact(data, len);
  ssize_t n = imp_wire_decode(&decoder, copy, len, max, env);
  free(copy); /* the request must not point into the input */
  assert_null(decoder.cur);
  return n;
}

static const ut_decoder_t kDecoder = {wire_decode_exact, imp_wire_request_free};

/* The byte after a decoded string or bytes field is a NUL. */
static void assert_nul_after(const void *p, size_t len) {
  assert_non_null(p);
  assert_int_equal(((const char *)p)[len], '\0');
}

/* ---- requests ------------------------------------------------------------ */

static const uint8_t kPayload[] = {'h', 'i', 0x00, 0xff, 0x80, 'x'};

static const ut_header_t kHeaders[] = {
    {"content-type", "text/plain", 10},
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
    .version = 3,
};

static void test_decode_invoke(void **state) {
  (void)state;
  for (size_t k = 0; k < IMP_ARRAY_SIZE(kIds); k++) {
    imp_buf_t buf = {0};
    ut_invoke_append(&buf, kIds[k], &kInvoke);
    Impulse__Envelope *e = NULL;
    assert_int_equal(wire_decode_exact(buf.data, buf.len, MAX_FRAME, &e),
                     (ssize_t)buf.len);
    assert_non_null(e);
    assert_true(e->id == kIds[k]);
    assert_int_equal(e->body_case, IMPULSE__ENVELOPE__BODY_INVOKE);
    const Impulse__InvokeRequest *r = e->invoke;
    assert_string_equal(r->function, "echo");
    assert_int_equal(r->payload.len, sizeof kPayload);
    assert_memory_equal(r->payload.data, kPayload, sizeof kPayload);
    assert_nul_after(r->payload.data, r->payload.len);
    assert_int_equal(r->n_headers, 2);
    assert_string_equal(r->headers[0]->name, "content-type");
    assert_int_equal(r->headers[0]->value.len, 10);
    assert_memory_equal(r->headers[0]->value.data, "text/plain", 10);
    assert_nul_after(r->headers[0]->value.data, 10);
    assert_string_equal(r->headers[1]->name, "x-empty");
    assert_int_equal(r->headers[1]->value.len, 0);
    assert_int_equal(r->deadline_ms, 250);
    assert_int_equal(r->version, 3);
    imp_wire_request_free(e);
    imp_buf_free(&buf);
  }
  imp_wire_request_free(NULL);
}

/* An invoke_batch of many items with headers: hundreds of pieces, more
 * than one block, more than 16 fields in one message. */
static void test_decode_batch(void **state) {
  (void)state;
  enum { ITEMS = 64, BIG = 70000 };
  Impulse__BatchItem items[ITEMS];
  Impulse__BatchItem *ip[ITEMS];
  Impulse__Header h[ITEMS][3];
  Impulse__Header *hp[ITEMS][3];
  char values[ITEMS][3][16];
  uint8_t *big = malloc(BIG);
  assert_non_null(big);
  memset(big, 'b', BIG);
  for (int i = 0; i < ITEMS; i++) {
    impulse__batch_item__init(&items[i]);
    ip[i] = &items[i];
    items[i].has_payload = 1;
    items[i].payload.data = i == 7 ? big : (uint8_t *)values[i][0];
    items[i].payload.len = i == 7 ? BIG : 5;
    for (int j = 0; j < 3; j++) {
      impulse__header__init(&h[i][j]);
      hp[i][j] = &h[i][j];
      snprintf(values[i][j], sizeof values[i][j], "v%02d.%d", i, j);
      h[i][j].name = j == 0 ? "ce_id" : j == 1 ? "kafka.offset" : "kafka.key";
      h[i][j].has_value = 1;
      h[i][j].value.data = (uint8_t *)values[i][j];
      h[i][j].value.len = strlen(values[i][j]);
    }
    items[i].n_headers = 3;
    items[i].headers = hp[i];
  }
  Impulse__InvokeBatchRequest b = IMPULSE__INVOKE_BATCH_REQUEST__INIT;
  b.function = "recorder";
  b.n_items = ITEMS;
  b.items = ip;
  b.has_deadline_ms = 1;
  b.deadline_ms = 5000;
  Impulse__Envelope env = IMPULSE__ENVELOPE__INIT;
  env.id = 1ull << 33;
  env.body_case = IMPULSE__ENVELOPE__BODY_INVOKE_BATCH;
  env.invoke_batch = &b;
  imp_buf_t buf = {0};
  assert_int_equal(imp_frame_append(&buf, &env, MAX_FRAME), 0);

  Impulse__Envelope *e = NULL;
  assert_int_equal(wire_decode_exact(buf.data, buf.len, MAX_FRAME, &e),
                   (ssize_t)buf.len);
  assert_true(e->id == 1ull << 33);
  assert_int_equal(e->body_case, IMPULSE__ENVELOPE__BODY_INVOKE_BATCH);
  assert_string_equal(e->invoke_batch->function, "recorder");
  assert_int_equal(e->invoke_batch->deadline_ms, 5000);
  assert_int_equal(e->invoke_batch->n_items, ITEMS);
  for (int i = 0; i < ITEMS; i++) {
    const Impulse__BatchItem *it = e->invoke_batch->items[i];
    assert_int_equal(it->payload.len, items[i].payload.len);
    assert_memory_equal(it->payload.data, items[i].payload.data,
                        it->payload.len);
    assert_nul_after(it->payload.data, it->payload.len);
    assert_int_equal(it->n_headers, 3);
    for (int j = 0; j < 3; j++) {
      assert_string_equal(it->headers[j]->name, h[i][j].name);
      assert_int_equal(it->headers[j]->value.len, h[i][j].value.len);
      assert_memory_equal(it->headers[j]->value.data, values[i][j],
                          h[i][j].value.len);
      assert_nul_after(it->headers[j]->value.data, h[i][j].value.len);
    }
  }
  imp_wire_request_free(e);
  imp_buf_free(&buf);
  free(big);
}

/* Frames decoded one after the other with one decoder are independent:
 * each is released on its own, in any order. */
static void test_decode_stream(void **state) {
  (void)state;
  imp_buf_t buf = {0};
  for (uint64_t id = 1; id <= 4; id++) ut_invoke_append(&buf, id, &kInvoke);
  imp_wire_decoder_t decoder;
  imp_wire_decoder_init(&decoder);
  Impulse__Envelope *e[4];
  size_t off = 0;
  for (int i = 0; i < 4; i++) {
    ssize_t n = imp_wire_decode(&decoder, buf.data + off, buf.len - off,
                                MAX_FRAME, &e[i]);
    assert_true(n > 0);
    off += (size_t)n;
    assert_int_equal(e[i]->id, i + 1);
  }
  assert_int_equal(off, buf.len);
  Impulse__Envelope *none = NULL;
  assert_int_equal(
      imp_wire_decode(&decoder, buf.data + off, 0, MAX_FRAME, &none), 0);
  assert_null(none);
  imp_wire_request_free(e[2]);
  imp_wire_request_free(e[0]);
  assert_string_equal(e[1]->invoke->function, "echo");
  assert_string_equal(e[3]->invoke->function, "echo");
  imp_wire_request_free(e[3]);
  imp_wire_request_free(e[1]);
  imp_buf_free(&buf);
}

static void test_decode_truncated_needs_more(void **state) {
  (void)state;
  imp_buf_t buf = {0};
  ut_invoke_append(&buf, 99, &kInvoke);
  ut_expect_needs_more(&kDecoder, &buf);
  imp_buf_free(&buf);
}

/* At the limit it decodes; one byte less of allowance and it is refused
 * from its length prefix alone. */
static void test_decode_oversized_refused(void **state) {
  (void)state;
  imp_buf_t buf = {0};
  ut_invoke_append(&buf, 5, &kInvoke);
  imp_wire_request_free(ut_decode_at_limit(&kDecoder, &buf));
  char hdr[IMP_FRAME_HEADER];
  imp_frame_put_len(hdr, 0xffffffffu);
  Impulse__Envelope *e = NULL;
  assert_int_equal(wire_decode_exact(hdr, sizeof hdr, MAX_FRAME, &e),
                   IMP_EFRAMETOOBIG);
  assert_null(e);
  imp_buf_free(&buf);
}

/* A frame that fails to decode holds nothing afterwards (the leak checker
 * sees an arena left behind, the address checker a piece freed early). */
static void test_decode_garbage(void **state) {
  (void)state;
  imp_buf_t valid = {0};
  ut_invoke_append(&valid, 77, &kInvoke);
  ut_hostile_frames(&kDecoder, 0x2545f4914f6cdd1dULL, &valid);
  imp_buf_free(&valid);
}

/*
 * Regression: protobuf-c keeps the fields of a message beyond its 16th in
 * scratch pieces allocated after the message itself, and when the decode
 * fails it frees the message first and those pieces after it. Releasing
 * the whole request with its top message, as the worker did, made those
 * last frees read freed memory.
 */
static void test_decode_failed_many_fields(void **state) {
  (void)state;
  char frame[IMP_FRAME_HEADER + 128];
  size_t n = IMP_FRAME_HEADER;
  for (int i = 0; i < 20; i++) { /* 20 id fields: the last one counts */
    frame[n++] = 0x08;
    frame[n++] = (char)i;
  }
  /* Fails while scanning: a length-delimited field cut short. */
  size_t scan_end = n;
  frame[n++] = 0x2a; /* field 5, invoke */
  frame[n++] = 0x40; /* 64 bytes, none follow */
  imp_frame_put_len(frame, (uint32_t)(n - IMP_FRAME_HEADER));
  assert_int_equal(ut_decode_hostile(&kDecoder, frame, n), 0);

  /* Fails while parsing: an invoke without its required function. */
  n = scan_end;
  frame[n++] = 0x2a;
  frame[n++] = 0x02;
  frame[n++] = 0x20; /* field 4, deadline_ms */
  frame[n++] = 0x01;
  imp_frame_put_len(frame, (uint32_t)(n - IMP_FRAME_HEADER));
  assert_int_equal(ut_decode_hostile(&kDecoder, frame, n), 0);

  /* Decodes, but with no body: refused too. */
  n = scan_end;
  imp_frame_put_len(frame, (uint32_t)(n - IMP_FRAME_HEADER));
  assert_int_equal(ut_decode_hostile(&kDecoder, frame, n), 0);
}

/* ---- answers ------------------------------------------------------------- */

/* Checks that `got` holds exactly the frame protobuf-c packs of `env`. */
static void assert_frame_of(const imp_buf_t *got,
                            const Impulse__Envelope *env) {
  imp_buf_t want = {0};
  assert_int_equal(imp_frame_append(&want, env, MAX_FRAME), 0);
  assert_int_equal(got->len, want.len);
  assert_memory_equal(got->data, want.data, want.len);
  imp_buf_free(&want);
}

static Impulse__Envelope *decode_one(const imp_buf_t *buf) {
  Impulse__Envelope *e = NULL;
  assert_int_equal(imp_frame_decode(buf->data, buf->len, MAX_FRAME, NULL, &e),
                   (ssize_t)buf->len);
  return e;
}

static void test_error_frame(void **state) {
  (void)state;
  for (size_t k = 0; k < IMP_ARRAY_SIZE(kIds); k++) {
    imp_buf_t out = {0};
    assert_int_equal(imp_wire_append_error(&out, MAX_FRAME, kIds[k],
                                           IMPULSE__ERROR_CODE__FUNCTION_ERROR,
                                           "function returned status 2"),
                     0);
    Impulse__Envelope *e = decode_one(&out);
    assert_true(e->id == kIds[k]);
    assert_int_equal(e->body_case, IMPULSE__ENVELOPE__BODY_ERROR);
    assert_int_equal(e->error->code, IMPULSE__ERROR_CODE__FUNCTION_ERROR);
    assert_string_equal(e->error->message, "function returned status 2");
    impulse__envelope__free_unpacked(e, NULL);
    imp_buf_free(&out);
  }
  imp_buf_t out = {0};
  assert_int_equal(imp_wire_append_error(&out, MAX_FRAME, 4,
                                         IMPULSE__ERROR_CODE__INTERNAL, NULL),
                   0);
  Impulse__Envelope *e = decode_one(&out);
  assert_null(e->error->message);
  impulse__envelope__free_unpacked(e, NULL);
  /* Too large for the limit: refused, what was there is kept. */
  size_t len = out.len;
  assert_int_equal(imp_wire_append_error(&out, 8, 4, 1, "a long message"),
                   IMP_EFRAMETOOBIG);
  assert_int_equal(out.len, len);
  imp_buf_free(&out);
}

static void test_invoke_ok_frame(void **state) {
  (void)state;
  Impulse__Header h, *hp = &h;
  ut_header_init(&h, &(ut_header_t){"x-out", "1", 1});
  imp_wire_answer_t answer = {kPayload, sizeof kPayload, &hp, 1};
  imp_buf_t out = {0};
  assert_int_equal(
      imp_wire_append_invoke_ok(&out, MAX_FRAME, 1ull << 40, &answer, 9), 0);

  Impulse__InvokeResponse ok = IMPULSE__INVOKE_RESPONSE__INIT;
  ok.has_payload = ok.has_status = ok.has_version = 1;
  ok.payload.data = (uint8_t *)kPayload;
  ok.payload.len = sizeof kPayload;
  ok.n_headers = 1;
  ok.headers = &hp;
  ok.version = 9;
  Impulse__Envelope env = IMPULSE__ENVELOPE__INIT;
  env.id = 1ull << 40;
  env.body_case = IMPULSE__ENVELOPE__BODY_INVOKE_OK;
  env.invoke_ok = &ok;
  assert_frame_of(&out, &env);

  Impulse__Envelope *e = decode_one(&out);
  assert_int_equal(e->invoke_ok->payload.len, sizeof kPayload);
  assert_memory_equal(e->invoke_ok->payload.data, kPayload, sizeof kPayload);
  assert_int_equal(e->invoke_ok->n_headers, 1);
  assert_string_equal(e->invoke_ok->headers[0]->name, "x-out");
  assert_int_equal(e->invoke_ok->status, 0);
  assert_int_equal(e->invoke_ok->version, 9);
  impulse__envelope__free_unpacked(e, NULL);
  imp_buf_free(&out);

  /* No response: an empty payload, present on the wire. */
  imp_wire_answer_t empty = {NULL, 0, NULL, 0};
  assert_int_equal(imp_wire_append_invoke_ok(&out, MAX_FRAME, 2, &empty, 1), 0);
  e = decode_one(&out);
  assert_true(e->invoke_ok->has_payload);
  assert_int_equal(e->invoke_ok->payload.len, 0);
  impulse__envelope__free_unpacked(e, NULL);

  /* Above the limit: refused, the buffer is left as it was. */
  size_t len = out.len;
  assert_int_equal(
      imp_wire_append_invoke_ok(&out, sizeof kPayload, 3, &answer, 1),
      IMP_EFRAMETOOBIG);
  assert_int_equal(out.len, len);
  imp_buf_free(&out);
}

static void test_load_and_attach_frames(void **state) {
  (void)state;
  imp_buf_t out = {0};
  assert_int_equal(imp_wire_append_load_ok(&out, MAX_FRAME, 7, 2, 12345), 0);
  Impulse__LoadResponse load = IMPULSE__LOAD_RESPONSE__INIT;
  load.has_abi_version = load.has_load_us = 1;
  load.abi_version = 2;
  load.load_us = 12345;
  Impulse__Envelope env = IMPULSE__ENVELOPE__INIT;
  env.id = 7;
  env.body_case = IMPULSE__ENVELOPE__BODY_LOAD_OK;
  env.load_ok = &load;
  assert_frame_of(&out, &env);
  imp_buf_free(&out);

  assert_int_equal(
      imp_wire_append_attach_ok(&out, MAX_FRAME, 8, "echo", 4, 16, 4242), 0);
  Impulse__Envelope *e = decode_one(&out);
  assert_int_equal(e->body_case, IMPULSE__ENVELOPE__BODY_ATTACH_OK);
  assert_string_equal(e->attach_ok->function, "echo");
  assert_int_equal(e->attach_ok->version, 4);
  assert_int_equal(e->attach_ok->concurrency, 16);
  assert_int_equal(e->attach_ok->pid, 4242);
  impulse__envelope__free_unpacked(e, NULL);
  imp_buf_free(&out);

  /* A generic worker: only its pid. */
  assert_int_equal(
      imp_wire_append_attach_ok(&out, MAX_FRAME, 9, NULL, 4, 16, 77), 0);
  e = decode_one(&out);
  assert_null(e->attach_ok->function);
  assert_false(e->attach_ok->has_version);
  assert_false(e->attach_ok->has_concurrency);
  assert_int_equal(e->attach_ok->pid, 77);
  impulse__envelope__free_unpacked(e, NULL);
  imp_buf_free(&out);
}

/* Results of every size class (one-, two- and three-byte lengths) under
 * ids of every length: the frame is byte for byte protobuf-c's. */
static void test_batch_answer_matches_protobuf(void **state) {
  (void)state;
  enum { N = 6 };
  static const size_t sizes[N] = {0, 5, 127, 128, 20000, 3};
  uint8_t *data = malloc(20000);
  assert_non_null(data);
  for (size_t i = 0; i < 20000; i++) data[i] = (uint8_t)(i * 7);
  Impulse__Header h, *hp = &h;
  ut_header_init(&h, &(ut_header_t){"x-n", "42", 2});

  for (size_t k = 0; k < IMP_ARRAY_SIZE(kIds); k++) {
    imp_wire_batch_t batch;
    assert_int_equal(imp_wire_batch_init(&batch, N), 0);
    Impulse__BatchResult r[N];
    Impulse__BatchResult *rp[N];
    for (int i = 0; i < N; i++) {
      impulse__batch_result__init(&r[i]);
      rp[i] = &r[i];
      if (i == 2) {
        r[i].has_code = 1;
        r[i].code = IMPULSE__ERROR_CODE__FUNCTION_ERROR;
        r[i].message = "function returned status 1: no";
        assert_int_equal(imp_wire_batch_add(&batch, MAX_FRAME, r[i].code,
                                            r[i].message, NULL),
                         0);
        continue;
      }
      imp_wire_answer_t a = {i == 0 ? NULL : data, sizes[i],
                             i == 1 ? &hp : NULL, i == 1 ? 1u : 0u};
      r[i].has_payload = 1;
      r[i].payload.data = i == 0 ? (uint8_t *)"" : data;
      r[i].payload.len = sizes[i];
      r[i].headers = a.headers;
      r[i].n_headers = a.n_headers;
      assert_int_equal(imp_wire_batch_add(&batch, MAX_FRAME, 0, NULL, &a), 0);
    }
    imp_buf_t out = {0};
    assert_int_equal(imp_buf_append(&out, "xyz", 3), 0); /* kept in front */
    assert_int_equal(
        imp_wire_batch_finish(&batch, kIds[k], 300, &out, MAX_FRAME), 0);
    assert_null(batch.buf.data);

    Impulse__InvokeBatchResponse resp = IMPULSE__INVOKE_BATCH_RESPONSE__INIT;
    resp.n_results = N;
    resp.results = rp;
    resp.has_version = 1;
    resp.version = 300;
    Impulse__Envelope env = IMPULSE__ENVELOPE__INIT;
    env.id = kIds[k];
    env.body_case = IMPULSE__ENVELOPE__BODY_INVOKE_BATCH_OK;
    env.invoke_batch_ok = &resp;
    imp_buf_t tail = {0};
    assert_int_equal(imp_buf_append(&tail, out.data + 3, out.len - 3), 0);
    assert_memory_equal(out.data, "xyz", 3);
    assert_frame_of(&tail, &env);

    Impulse__Envelope *e = decode_one(&tail);
    assert_true(e->id == kIds[k]);
    const Impulse__InvokeBatchResponse *d = e->invoke_batch_ok;
    assert_int_equal(d->n_results, N);
    assert_int_equal(d->version, 300);
    assert_int_equal(d->results[2]->code, IMPULSE__ERROR_CODE__FUNCTION_ERROR);
    assert_int_equal(d->results[4]->payload.len, 20000);
    assert_memory_equal(d->results[4]->payload.data, data, 20000);
    assert_string_equal(d->results[1]->headers[0]->name, "x-n");
    impulse__envelope__free_unpacked(e, NULL);
    imp_buf_free(&tail);
    imp_buf_free(&out);
  }
  free(data);
}

/* The limit counts every byte of the results; a result that would pass it
 * is refused whole, and a larger limit later still takes one. */
static void test_batch_answer_limit(void **state) {
  (void)state;
  uint8_t data[100];
  memset(data, 'd', sizeof data);
  imp_wire_answer_t a = {data, sizeof data, NULL, 0};
  /* One result: tag, length, then {3: payload} = 1 + 1 + 102 bytes. */
  const size_t one = 104;
  imp_wire_batch_t batch;
  assert_int_equal(imp_wire_batch_init(&batch, 2), 0);
  assert_int_equal(imp_wire_batch_add(&batch, one - 1, 0, NULL, &a), -ENOSPC);
  assert_int_equal(imp_wire_batch_add(&batch, 0, 0, NULL, &a), -ENOSPC);
  assert_int_equal(imp_wire_batch_add(&batch, one, 0, NULL, &a), 0);
  assert_int_equal(imp_wire_batch_add(&batch, 2 * one - 1, 0, NULL, &a),
                   -ENOSPC);
  assert_int_equal(
      imp_wire_batch_add(&batch, 2 * one - 1, IMPULSE__ERROR_CODE__UNAVAILABLE,
                         "later", NULL),
      0);
  imp_buf_t out = {0};
  assert_int_equal(imp_wire_batch_finish(&batch, 1, 1, &out, MAX_FRAME), 0);
  Impulse__Envelope *e = decode_one(&out);
  assert_int_equal(e->invoke_batch_ok->n_results, 2);
  assert_int_equal(e->invoke_batch_ok->results[0]->payload.len, sizeof data);
  assert_int_equal(e->invoke_batch_ok->results[1]->code,
                   IMPULSE__ERROR_CODE__UNAVAILABLE);
  assert_string_equal(e->invoke_batch_ok->results[1]->message, "later");
  impulse__envelope__free_unpacked(e, NULL);

  /* A frame above max_frame: refused, `out` unchanged, batch released. */
  size_t len = out.len;
  assert_int_equal(imp_wire_batch_init(&batch, 1), 0);
  assert_int_equal(imp_wire_batch_add(&batch, MAX_FRAME, 0, NULL, &a), 0);
  assert_int_equal(imp_wire_batch_finish(&batch, 2, 1, &out, one),
                   IMP_EFRAMETOOBIG);
  assert_int_equal(out.len, len);
  assert_null(batch.buf.data);
  imp_buf_free(&out);

  /* Abandoned before its end. */
  assert_int_equal(imp_wire_batch_init(&batch, 3), 0);
  assert_int_equal(imp_wire_batch_add(&batch, MAX_FRAME, 0, NULL, &a), 0);
  imp_wire_batch_free(&batch);
}

/* The crash mark is the frame protobuf-c packs of Error{CRASHED} under the
 * call's id, for ids of every length. */
static void test_crash_mark(void **state) {
  (void)state;
  for (size_t k = 0; k < IMP_ARRAY_SIZE(kIds); k++) {
    uint8_t mark[IMP_WIRE_CRASH_MARK_MAX];
    memset(mark, 0xee, sizeof mark);
    size_t n = imp_wire_crash_mark(mark, kIds[k]);
    assert_true(n <= IMP_WIRE_CRASH_MARK_MAX);
    imp_buf_t got = {0};
    assert_int_equal(imp_buf_append(&got, mark, n), 0);
    Impulse__Envelope env;
    Impulse__Error err;
    imp_envelope_error(&env, &err, kIds[k], IMPULSE__ERROR_CODE__CRASHED, NULL);
    assert_frame_of(&got, &env);
    Impulse__Envelope *e = decode_one(&got);
    assert_true(e->id == kIds[k]);
    assert_int_equal(e->error->code, IMPULSE__ERROR_CODE__CRASHED);
    impulse__envelope__free_unpacked(e, NULL);
    imp_buf_free(&got);
  }
}

TEST_MAIN("unit_wire", NULL, NULL, cmocka_unit_test(test_decode_invoke),
          cmocka_unit_test(test_decode_batch),
          cmocka_unit_test(test_decode_stream),
          cmocka_unit_test(test_decode_truncated_needs_more),
          cmocka_unit_test(test_decode_oversized_refused),
          cmocka_unit_test(test_decode_garbage),
          cmocka_unit_test(test_decode_failed_many_fields),
          cmocka_unit_test(test_error_frame),
          cmocka_unit_test(test_invoke_ok_frame),
          cmocka_unit_test(test_load_and_attach_frames),
          cmocka_unit_test(test_batch_answer_matches_protobuf),
          cmocka_unit_test(test_batch_answer_limit),
          cmocka_unit_test(test_crash_mark))
