/*
 * Unit tests of runtime/core/batch.c, the invoke_batch encoder, against
 * protobuf-c itself: an id field followed by the encoder's bytes must
 * unpack (impulse__envelope__unpack) into an InvokeBatchRequest with the
 * same function, items and headers, and be the very bytes protobuf-c packs
 * for that request. Lengths are chosen around the varint boundaries
 * (127/128, 16383/16384, 2097151/2097152), where a length that is off by
 * one byte shows. Encodings go to heap blocks of exactly the measured size,
 * so a write past the end is caught by AddressSanitizer in the sanitizer
 * run.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/batch.h"
#include "core/codec.h"
#include "policy/pipeline.h" /* IMP_BATCH_MAX */
#include "tests/support/test_main.h"

/* An item as the caller holds it, and its lengths between the passes. */
typedef struct item_s {
  const void *payload;
  size_t plen;
  Impulse__Header *hs;
  size_t n;
  size_t *hlen;
  size_t ilen;
} item_t;

static void hset(Impulse__Header *h, const char *name, const void *value,
                 size_t len) {
  impulse__header__init(h);
  h->name = (char *)name;
  h->has_value = value != NULL;
  h->value.data = (uint8_t *)value;
  h->value.len = value ? len : 0;
}

/* Encodes the items into a heap block of exactly the measured size. */
static uint8_t *encode(const char *function, item_t *items, size_t m,
                       size_t *len) {
  imp_batch_request_t br;
  imp_batch_request_init(&br, function);
  for (size_t i = 0; i < m; i++) {
    items[i].hlen = calloc(items[i].n + 1, sizeof(size_t));
    assert_non_null(items[i].hlen);
    items[i].ilen = imp_batch_request_measure(&br, items[i].plen, items[i].hs,
                                              items[i].n, items[i].hlen);
  }
  size_t size = imp_batch_request_size(&br);
  uint8_t *out = malloc(size);
  assert_non_null(out);
  assert_int_equal(imp_batch_request_encode(&br, out, size), 0);
  for (size_t i = 0; i < m; i++) {
    assert_int_equal(imp_batch_request_encode_item(
                         &br, items[i].ilen, items[i].payload, items[i].plen,
                         items[i].hs, items[i].n, items[i].hlen),
                     0);
    free(items[i].hlen);
    items[i].hlen = NULL;
  }
  /* Everything measured was written, nothing more. */
  assert_int_equal(imp_batch_request_written(&br), size);
  *len = size;
  return out;
}

/* The Envelope {id, invoke_batch} that protobuf-c packs for the items. */
static uint8_t *pack_reference(uint64_t id, const char *function,
                               const item_t *items, size_t m, size_t *len) {
  Impulse__BatchItem *bi = calloc(m + 1, sizeof *bi);
  Impulse__BatchItem **bp = calloc(m + 1, sizeof *bp);
  assert_non_null(bi);
  assert_non_null(bp);
  Impulse__Header ***hp = calloc(m + 1, sizeof *hp);
  assert_non_null(hp);
  for (size_t i = 0; i < m; i++) {
    impulse__batch_item__init(&bi[i]);
    bi[i].has_payload = 1;
    bi[i].payload.data = (uint8_t *)items[i].payload;
    bi[i].payload.len = items[i].plen;
    hp[i] = calloc(items[i].n + 1, sizeof(Impulse__Header *));
    assert_non_null(hp[i]);
    for (size_t j = 0; j < items[i].n; j++) hp[i][j] = &items[i].hs[j];
    bi[i].n_headers = items[i].n;
    bi[i].headers = hp[i];
    bp[i] = &bi[i];
  }
  Impulse__InvokeBatchRequest req = IMPULSE__INVOKE_BATCH_REQUEST__INIT;
  req.function = (char *)function;
  req.n_items = m;
  req.items = bp;
  Impulse__Envelope env = IMPULSE__ENVELOPE__INIT;
  env.id = id;
  env.body_case = IMPULSE__ENVELOPE__BODY_INVOKE_BATCH;
  env.invoke_batch = &req;
  *len = impulse__envelope__get_packed_size(&env);
  uint8_t *out = malloc(*len);
  assert_non_null(out);
  assert_int_equal(impulse__envelope__pack(&env, out), *len);
  for (size_t i = 0; i < m; i++) free(hp[i]);
  free(hp);
  free(bi);
  free(bp);
  return out;
}

/* An Envelope body made of an id field and `rest`, in an exact block. */
static uint8_t *with_id(uint64_t id, const uint8_t *rest, size_t restlen,
                        size_t *len) {
  uint8_t *out = malloc(11 + restlen);
  assert_non_null(out);
  size_t n = 0;
  out[n++] = 0x08; /* field 1 (id), varint */
  n += imp_varint_put(out + n, id);
  memcpy(out + n, rest, restlen);
  *len = n + restlen;
  return out;
}

/* Encodes the items, checks protobuf-c decodes them unchanged and packs
 * the same bytes. */
static void roundtrip(const char *function, item_t *items, size_t m) {
  size_t restlen, blen, reflen;
  uint8_t *rest = encode(function, items, m, &restlen);
  uint64_t id = 0x123456789ull;
  uint8_t *body = with_id(id, rest, restlen, &blen);
  Impulse__Envelope *env = impulse__envelope__unpack(NULL, blen, body);
  assert_non_null(env);
  assert_int_equal(env->id, id);
  assert_int_equal(env->body_case, IMPULSE__ENVELOPE__BODY_INVOKE_BATCH);
  const Impulse__InvokeBatchRequest *req = env->invoke_batch;
  assert_string_equal(req->function, function);
  assert_false(req->has_deadline_ms);
  assert_int_equal(req->n_items, m);
  for (size_t i = 0; i < m; i++) {
    const Impulse__BatchItem *it = req->items[i];
    assert_true(it->has_payload);
    assert_int_equal(it->payload.len, items[i].plen);
    if (items[i].plen)
      assert_memory_equal(it->payload.data, items[i].payload, items[i].plen);
    assert_int_equal(it->n_headers, items[i].n);
    for (size_t j = 0; j < items[i].n; j++) {
      const Impulse__Header *h = it->headers[j], *e = &items[i].hs[j];
      assert_string_equal(h->name, e->name);
      assert_int_equal(h->has_value, e->has_value);
      if (e->has_value) {
        assert_int_equal(h->value.len, e->value.len);
        if (e->value.len)
          assert_memory_equal(h->value.data, e->value.data, e->value.len);
      }
    }
  }
  impulse__envelope__free_unpacked(env, NULL);
  /* The same bytes as protobuf-c's own packing. */
  uint8_t *ref = pack_reference(id, function, items, m, &reflen);
  assert_int_equal(reflen, blen);
  assert_memory_equal(ref, body, blen);
  free(ref);
  free(body);
  free(rest);
}

/* The field numbers named in batch.h are those of the .proto. */
static void test_field_numbers(void **state) {
  (void)state;
  const struct {
    const ProtobufCMessageDescriptor *d;
    const char *field;
    unsigned id;
  } f[] = {
      {&impulse__envelope__descriptor, "invoke_batch", IMP_BATCH_F_ENVELOPE},
      {&impulse__invoke_batch_request__descriptor, "function",
       IMP_BATCH_F_FUNCTION},
      {&impulse__invoke_batch_request__descriptor, "items", IMP_BATCH_F_ITEMS},
      {&impulse__batch_item__descriptor, "payload", IMP_BATCH_F_PAYLOAD},
      {&impulse__batch_item__descriptor, "headers", IMP_BATCH_F_HEADERS},
      {&impulse__header__descriptor, "name", IMP_BATCH_F_NAME},
      {&impulse__header__descriptor, "value", IMP_BATCH_F_VALUE},
  };
  for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) {
    const ProtobufCFieldDescriptor *fd =
        protobuf_c_message_descriptor_get_field_by_name(f[i].d, f[i].field);
    assert_non_null(fd);
    assert_int_equal(fd->id, f[i].id);
    assert_true(fd->type == PROTOBUF_C_TYPE_STRING ||
                fd->type == PROTOBUF_C_TYPE_BYTES ||
                fd->type == PROTOBUF_C_TYPE_MESSAGE); /* length-delimited */
  }
}

/* Items as a trigger sends them: kafka.* and ce_* headers, a header with a
 * null value (no value field), one with an empty value, binary bytes. */
static void test_records(void **state) {
  (void)state;
  static const char bin[] = {'a', 0, '\xff', '\x80', 'z'};
  Impulse__Header h1[5], h2[2], h3[1];
  hset(&h1[0], "kafka.topic", "orders", 6);
  hset(&h1[1], "kafka.partition", "3", 1);
  hset(&h1[2], "ce_id", "orders-3-17", 11);
  hset(&h1[3], "null-value", NULL, 0);
  hset(&h1[4], "empty", "", 0);
  hset(&h2[0], "bin", bin, sizeof bin);
  hset(&h2[1], "kafka.key", "k\0ey", 4);
  hset(&h3[0], "x", "y", 1);
  item_t items[] = {
      {"{\"amount\":12}", 13, h1, 5, NULL, 0},
      {"", 0, h2, 2, NULL, 0},             /* empty payload */
      {bin, sizeof bin, NULL, 0, NULL, 0}, /* no headers */
      {"last", 4, h3, 1, NULL, 0},
  };
  roundtrip("score", items, 4);
  roundtrip("f", items + 2, 1); /* one item */
}

/* Payloads and header values whose lengths (and so the item's and the
 * body's) sit on both sides of each varint boundary. */
static void test_varint_boundaries(void **state) {
  (void)state;
  static const size_t sizes[] = {0,     1,     126,     127,     128,
                                 129,   16381, 16382,   16383,   16384,
                                 16385, 16386, 2097150, 2097151, 2097152};
  size_t max = 2097152 + 16;
  char *big = malloc(max);
  assert_non_null(big);
  for (size_t i = 0; i < max; i++) big[i] = (char)('a' + i % 26);
  for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
    /* The payload alone at the boundary; then with a header, so that the
     * item's length crosses it instead. */
    Impulse__Header h;
    hset(&h, "v", big, sizes[s] > 8 ? sizes[s] - 8 : 0);
    item_t a = {big, sizes[s], NULL, 0, NULL, 0};
    item_t b = {big, 3, &h, 1, NULL, 0};
    roundtrip("boundaries", &a, 1);
    roundtrip("boundaries", &b, 1);
    item_t both[] = {a, b};
    roundtrip("boundaries", both, 2);
  }
  free(big);
}

/* The most records a batch carries, each with the most headers a trigger
 * gives a record (100 of its own + 10). */
static void test_full_batch(void **state) {
  (void)state;
  enum { NH = 110 };
  static Impulse__Header hs[IMP_BATCH_MAX][NH];
  static char names[NH][16], vals[IMP_BATCH_MAX][NH][24];
  item_t items[IMP_BATCH_MAX];
  char payload[IMP_BATCH_MAX][32];
  for (size_t j = 0; j < NH; j++)
    snprintf(names[j], sizeof names[j], "h%zu", j);
  for (size_t i = 0; i < IMP_BATCH_MAX; i++) {
    for (size_t j = 0; j < NH; j++) {
      int n = snprintf(vals[i][j], sizeof vals[i][j], "v%zu.%zu", i, j);
      hset(&hs[i][j], names[j], vals[i][j], (size_t)n);
    }
    int n = snprintf(payload[i], sizeof payload[i], "record %zu", i);
    items[i] = (item_t){payload[i], (size_t)n, hs[i], NH, NULL, 0};
  }
  roundtrip("wide", items, IMP_BATCH_MAX);
}

/* The encoder never writes past what it measured: a block one byte short
 * is refused untouched, an item that was not measured does not fit, and
 * the frame made of an id and the bytes is at most 11 bytes larger (the
 * bound the invoker checks against the frame limit). */
static void test_size_bounds(void **state) {
  (void)state;
  Impulse__Header h;
  hset(&h, "ce_type", "dev.impulse.kafka.record", 24);
  item_t it = {"payload", 7, &h, 1, NULL, 0};
  imp_batch_request_t br;
  imp_batch_request_init(&br, "fn");
  size_t hlen[1];
  size_t ilen = imp_batch_request_measure(&br, it.plen, it.hs, it.n, hlen);
  size_t size = imp_batch_request_size(&br);
  uint8_t *out = malloc(size + 1);
  assert_non_null(out);
  memset(out, 0x5a, size + 1);
  assert_int_equal(imp_batch_request_encode(&br, out, size - 1), -ENOBUFS);
  for (size_t i = 0; i <= size; i++) assert_int_equal(out[i], 0x5a);
  assert_int_equal(imp_batch_request_encode(&br, out, size), 0);
  assert_int_equal(imp_batch_request_encode_item(&br, ilen, it.payload, it.plen,
                                                 it.hs, it.n, hlen),
                   0);
  assert_int_equal(imp_batch_request_written(&br), size);
  assert_int_equal(out[size], 0x5a);
  /* A second item, never measured: refused, nothing written. */
  assert_int_equal(imp_batch_request_encode_item(&br, ilen, it.payload, it.plen,
                                                 it.hs, it.n, hlen),
                   -ENOBUFS);
  assert_int_equal(imp_batch_request_written(&br), size);
  assert_int_equal(out[size], 0x5a);

  /* id + bytes: 11 bytes at the most (a 10-byte varint id). */
  imp_buf_t frame = {0};
  assert_int_equal(imp_frame_append_with_id(&frame, UINT64_MAX,
                                            (const char *)out, size, size + 10),
                   IMP_EFRAMETOOBIG);
  assert_int_equal(imp_frame_append_with_id(&frame, UINT64_MAX,
                                            (const char *)out, size, size + 11),
                   0);
  Impulse__Envelope *env = NULL;
  assert_int_equal(
      imp_frame_decode(frame.data, frame.len, size + 11, NULL, &env),
      (ssize_t)frame.len);
  assert_int_equal(env->id, UINT64_MAX);
  assert_int_equal(env->invoke_batch->n_items, 1);
  assert_string_equal(env->invoke_batch->items[0]->headers[0]->name, "ce_type");
  impulse__envelope__free_unpacked(env, NULL);
  imp_buf_free(&frame);
  free(out);
}

TEST_MAIN("unit_batch", NULL, NULL, cmocka_unit_test(test_field_numbers),
          cmocka_unit_test(test_records),
          cmocka_unit_test(test_varint_boundaries),
          cmocka_unit_test(test_full_batch), cmocka_unit_test(test_size_bounds))
