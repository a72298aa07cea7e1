/*
 * Encoder of invoke_batch requests; see batch.h. Protobuf's rules, written
 * out: a length-delimited field is its tag ((field << 3) | 2, a varint),
 * the length of its bytes (a varint), then the bytes; a message inside
 * another is such a field, so its length must be known before its first
 * byte is written, hence the measuring pass.
 */
#include "core/batch.h"

#include <errno.h>
#include <string.h>

#include "core/codec.h"

#define WIRE_LEN 2 /* length-delimited */

/* Tag of a length-delimited field below 16: one byte. */
#define TAG1(field) ((uint8_t)((field) << 3 | WIRE_LEN))
_Static_assert(IMP_BATCH_F_FUNCTION < 16 && IMP_BATCH_F_ITEMS < 16 &&
                   IMP_BATCH_F_PAYLOAD < 16 && IMP_BATCH_F_HEADERS < 16 &&
                   IMP_BATCH_F_NAME < 16 && IMP_BATCH_F_VALUE < 16,
               "single-byte tags");

static size_t varint_len(uint64_t v) {
  size_t n = 1;
  while (v >= 0x80) {
    v >>= 7;
    n++;
  }
  return n;
}

/* Bytes of a length-delimited field of a one-byte tag holding len bytes. */
static size_t field_len(size_t len) {
  return 1 + varint_len(len) + len;
}

static uint8_t *put_field(uint8_t *w, uint8_t tag, const void *data,
                          size_t len) {
  *w++ = tag;
  w += imp_varint_put(w, len);
  if (len) memcpy(w, data, len);
  return w + len;
}

void imp_batch_request_init(imp_batch_request_t *br, const char *function) {
  memset(br, 0, sizeof *br);
  br->function = function;
  br->flen = strlen(function);
  br->body = field_len(br->flen);
}

size_t imp_batch_request_measure(imp_batch_request_t *br, size_t plen,
                                 const Impulse__Header *hs, size_t n,
                                 size_t *hlen) {
  size_t il = field_len(plen);
  for (size_t i = 0; i < n; i++) {
    hlen[i] = field_len(strlen(hs[i].name)) +
              (hs[i].has_value ? field_len(hs[i].value.len) : 0);
    il += field_len(hlen[i]);
  }
  br->body += field_len(il);
  br->items++;
  return il;
}

size_t imp_batch_request_size(const imp_batch_request_t *br) {
  return varint_len((uint64_t)IMP_BATCH_F_ENVELOPE << 3 | WIRE_LEN) +
         varint_len(br->body) + br->body;
}

int imp_batch_request_encode(imp_batch_request_t *br, uint8_t *out,
                             size_t outlen) {
  if (outlen < imp_batch_request_size(br)) return -ENOBUFS;
  uint8_t *w = out;
  w += imp_varint_put(w, (uint64_t)IMP_BATCH_F_ENVELOPE << 3 | WIRE_LEN);
  w += imp_varint_put(w, br->body);
  w = put_field(w, TAG1(IMP_BATCH_F_FUNCTION), br->function, br->flen);
  br->out = out;
  br->w = w;
  br->end = out + outlen;
  br->encoded = 0;
  return 0;
}

int imp_batch_request_encode_item(imp_batch_request_t *br, size_t ilen,
                                  const void *payload, size_t plen,
                                  const Impulse__Header *hs, size_t n,
                                  const size_t *hlen) {
  if (br->encoded >= br->items || field_len(ilen) > (size_t)(br->end - br->w))
    return -ENOBUFS;
  uint8_t *w = br->w;
  *w++ = TAG1(IMP_BATCH_F_ITEMS);
  w += imp_varint_put(w, ilen);
  w = put_field(w, TAG1(IMP_BATCH_F_PAYLOAD), payload, plen);
  for (size_t i = 0; i < n; i++) {
    *w++ = TAG1(IMP_BATCH_F_HEADERS);
    w += imp_varint_put(w, hlen[i]);
    w = put_field(w, TAG1(IMP_BATCH_F_NAME), hs[i].name, strlen(hs[i].name));
    if (hs[i].has_value)
      w = put_field(w, TAG1(IMP_BATCH_F_VALUE), hs[i].value.data,
                    hs[i].value.len);
  }
  br->w = w;
  br->encoded++;
  return 0;
}
