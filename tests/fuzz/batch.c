/*
 * The trigger's invoke_batch encoder (runtime/core/batch.c). The input
 * describes a request: a function name, then items, each a payload and
 * headers with or without a value. The target measures and encodes them
 * into a block of exactly the measured size and checks:
 * - the bytes written are the size measured, and each item's length;
 * - they are the very bytes protobuf-c packs for the same request, and
 *   protobuf-c decodes them to the same function, items and headers
 *   (decode(encode(x)) == x);
 * - -ENOBUFS, with nothing written: a buffer one byte short, an item more
 *   than was measured, an item longer than what is left.
 */
#include <errno.h>

#include "core/batch.h"
#include "core/codec.h"
#include "fuzz.h"
#include "pbcheck.h"

#define MAX_ITEMS 64
#define MAX_HEADERS 8
#define MAX_HEADERS_ALL 256

typedef struct item_s {
  const uint8_t *payload;
  size_t plen;
  Impulse__Header *hs;
  size_t n;
  size_t *hlen;
  size_t ilen;
} item_t;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fuzz_in_t in = {data, data + size};
  char function[256];
  in_str(&in, function, 255);

  item_t items[MAX_ITEMS];
  Impulse__Header hs[MAX_HEADERS_ALL];
  char names[MAX_HEADERS_ALL][33];
  size_t hlen[MAX_HEADERS_ALL];
  size_t m = 0, nh = 0;
  while (in.p < in.end && m < MAX_ITEMS) {
    item_t *it = &items[m++];
    /* A long payload now and then, to cross the varint boundaries. */
    uint8_t shape = in_u8(&in);
    it->payload = in_bytes(&in, 255, &it->plen);
    if (shape & 0x80) {
      size_t big = (size_t)(shape & 0x7f) * 131; /* up to 16637 bytes */
      size_t left = (size_t)(in.end - it->payload);
      it->plen = big < left ? big : left;
      in.p = it->payload + it->plen;
    }
    size_t n = shape % (MAX_HEADERS + 1);
    if (n > MAX_HEADERS_ALL - nh) n = MAX_HEADERS_ALL - nh;
    it->hs = &hs[nh];
    it->hlen = &hlen[nh];
    it->n = n;
    for (size_t i = 0; i < n; i++, nh++) {
      Impulse__Header *h = &hs[nh];
      impulse__header__init(h);
      h->name = in_str(&in, names[nh], 32);
      uint8_t v = in_u8(&in);
      if (v & 1) {
        size_t vl;
        const uint8_t *vp = in_bytes(&in, 255, &vl);
        h->has_value = 1;
        h->value.data = (uint8_t *)vp;
        h->value.len = vl;
      }
    }
  }

  /* Measure, then encode into a block of exactly the measured size. */
  imp_batch_request_t br;
  imp_batch_request_init(&br, function);
  for (size_t i = 0; i < m; i++)
    items[i].ilen = imp_batch_request_measure(&br, items[i].plen, items[i].hs,
                                              items[i].n, items[i].hlen);
  size_t total = imp_batch_request_size(&br);
  uint8_t *out = malloc(total);
  FUZZ_CHECK(out != NULL);
  FUZZ_CHECK(imp_batch_request_encode(&br, out, total - 1) == -ENOBUFS);
  FUZZ_CHECK(imp_batch_request_encode(&br, out, total) == 0);
  for (size_t i = 0; i < m; i++) {
    item_t *it = &items[i];
    size_t before = imp_batch_request_written(&br);
    if (i + 1 == m) {
      /* Longer than what is left: refused, nothing written. */
      FUZZ_CHECK(imp_batch_request_encode_item(&br, it->ilen + 1, it->payload,
                                               it->plen, it->hs, it->n,
                                               it->hlen) == -ENOBUFS);
      FUZZ_CHECK(imp_batch_request_written(&br) == before);
    }
    FUZZ_CHECK(imp_batch_request_encode_item(&br, it->ilen, it->payload,
                                             it->plen, it->hs, it->n,
                                             it->hlen) == 0);
    /* The item's field: tag, length, then ilen bytes. */
    uint8_t tmp[16];
    FUZZ_CHECK(imp_batch_request_written(&br) - before ==
               1 + imp_varint_put(tmp, it->ilen) + it->ilen);
  }
  FUZZ_CHECK(imp_batch_request_written(&br) == total);
  FUZZ_CHECK(imp_batch_request_encode_item(&br, 0, NULL, 0, NULL, 0, NULL) ==
             -ENOBUFS);
  FUZZ_CHECK(imp_batch_request_written(&br) == total);

  /* What protobuf-c packs for the same request. */
  Impulse__BatchItem pitems[MAX_ITEMS], *pitem_ptrs[MAX_ITEMS];
  Impulse__Header *hptrs[MAX_HEADERS_ALL];
  for (size_t i = 0; i < nh; i++) hptrs[i] = &hs[i];
  for (size_t i = 0; i < m; i++) {
    impulse__batch_item__init(&pitems[i]);
    pitems[i].has_payload = 1;
    pitems[i].payload.data = (uint8_t *)items[i].payload;
    pitems[i].payload.len = items[i].plen;
    pitems[i].n_headers = items[i].n;
    pitems[i].headers = items[i].n ? &hptrs[items[i].hs - hs] : NULL;
    pitem_ptrs[i] = &pitems[i];
  }
  Impulse__InvokeBatchRequest req = IMPULSE__INVOKE_BATCH_REQUEST__INIT;
  req.function = function;
  req.n_items = m;
  req.items = pitem_ptrs;
  Impulse__Envelope env = IMPULSE__ENVELOPE__INIT;
  env.id = 1; /* one byte of value: the body starts at offset 2 */
  env.body_case = IMPULSE__ENVELOPE__BODY_INVOKE_BATCH;
  env.invoke_batch = &req;
  size_t plen = impulse__envelope__get_packed_size(&env);
  uint8_t *packed = malloc(plen);
  FUZZ_CHECK(packed != NULL);
  impulse__envelope__pack(&env, packed);
  FUZZ_CHECK(plen == 2 + total && packed[0] == 0x08 && packed[1] == 0x01);
  FUZZ_CHECK(memcmp(packed + 2, out, total) == 0);

  /* And the way back: an id in front makes an Envelope. */
  imp_buf_t frame = {0};
  FUZZ_CHECK(imp_frame_append_with_id(&frame, 7, (const char *)out, total,
                                      SIZE_MAX) == 0);
  Impulse__Envelope *back = NULL;
  FUZZ_CHECK(imp_frame_decode(frame.data, frame.len, SIZE_MAX, NULL, &back) ==
             (ssize_t)frame.len);
  FUZZ_CHECK(back->id == 7 &&
             back->body_case == IMPULSE__ENVELOPE__BODY_INVOKE_BATCH);
  const Impulse__InvokeBatchRequest *got = back->invoke_batch;
  FUZZ_CHECK(strcmp(got->function, function) == 0);
  FUZZ_CHECK(got->n_items == m);
  for (size_t i = 0; i < m; i++) {
    const Impulse__BatchItem *g = got->items[i];
    FUZZ_CHECK(g->has_payload && g->payload.len == items[i].plen);
    FUZZ_CHECK(items[i].plen == 0 ||
               memcmp(g->payload.data, items[i].payload, items[i].plen) == 0);
    FUZZ_CHECK(g->n_headers == items[i].n);
    for (size_t k = 0; k < g->n_headers; k++) {
      const Impulse__Header *a = g->headers[k], *b = &items[i].hs[k];
      FUZZ_CHECK(strcmp(a->name, b->name) == 0);
      FUZZ_CHECK(a->has_value == b->has_value);
      FUZZ_CHECK(a->value.len == b->value.len);
      FUZZ_CHECK(b->value.len == 0 ||
                 memcmp(a->value.data, b->value.data, b->value.len) == 0);
    }
  }
  impulse__envelope__free_unpacked(back, NULL);
  imp_buf_free(&frame);
  free(packed);
  free(out);
  return 0;
}
