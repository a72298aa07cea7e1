/*
 * Helpers shared by the fuzz targets of the binary codecs: comparing two
 * protobuf-c messages by their packed bytes, walking a decoded message's
 * strings and bytes, and reading fuzz input as a sequence of small values.
 * Header-only (static functions): each target includes what it uses.
 */
#ifndef IMP_FUZZ_PBCHECK_H
#define IMP_FUZZ_PBCHECK_H

#include <stdbool.h>
#include <string.h>

#include "core/common.h"
#include "fuzz.h"
#include "impulse.pb-c.h"

/* Whether two messages of one type pack to the same bytes: protobuf-c
 * writes fields in number order, so that is "the same fields". */
static inline bool pb_same(const ProtobufCMessage *a,
                           const ProtobufCMessage *b) {
  if (a->descriptor != b->descriptor) return false;
  size_t la = protobuf_c_message_get_packed_size(a);
  size_t lb = protobuf_c_message_get_packed_size(b);
  if (la != lb) return false;
  uint8_t *pa = malloc(la ? la : 1), *pb = malloc(lb ? lb : 1);
  FUZZ_CHECK(pa != NULL && pb != NULL);
  protobuf_c_message_pack(a, pa);
  protobuf_c_message_pack(b, pb);
  bool same = memcmp(pa, pb, la) == 0;
  free(pa);
  free(pb);
  return same;
}

/* Checks that every bytes field of `m` (and of the messages inside it) has
 * a NUL byte right after its data, as core/wire.h promises. Strings are
 * C strings by construction. */
static inline void pb_check_nul(const ProtobufCMessage *m) {
  const ProtobufCMessageDescriptor *d = m->descriptor;
  for (unsigned i = 0; i < d->n_fields; i++) {
    const ProtobufCFieldDescriptor *f = &d->fields[i];
    const char *base = (const char *)m;
    if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
      uint32_t which;
      memcpy(&which, base + f->quantifier_offset, sizeof which);
      if (which != f->id) continue;
    }
    size_t n = 1;
    const char *vals = base + f->offset;
    if (f->label == PROTOBUF_C_LABEL_REPEATED) {
      memcpy(&n, base + f->quantifier_offset, sizeof n);
      memcpy(&vals, base + f->offset, sizeof vals);
      if (n == 0) continue;
    }
    for (size_t k = 0; k < n; k++) {
      if (f->type == PROTOBUF_C_TYPE_BYTES) {
        ProtobufCBinaryData b;
        memcpy(&b, vals + k * sizeof b, sizeof b);
        if (b.len > 0) FUZZ_CHECK(b.data[b.len] == '\0');
      } else if (f->type == PROTOBUF_C_TYPE_MESSAGE) {
        const ProtobufCMessage *sub;
        memcpy(&sub, vals + k * sizeof sub, sizeof sub);
        if (sub != NULL) pb_check_nul(sub);
      }
    }
  }
}

/* The fuzz input read as small values, front to back; past its end every
 * read gives zeros. */
typedef struct fuzz_in_s {
  const uint8_t *p, *end;
} fuzz_in_t;

static inline uint8_t in_u8(fuzz_in_t *in) {
  return in->p < in->end ? *in->p++ : 0;
}

static inline uint64_t in_u64(fuzz_in_t *in, unsigned bytes) {
  uint64_t v = 0;
  for (unsigned i = 0; i < bytes; i++) v = v << 8 | in_u8(in);
  return v;
}

/* Takes up to `max` bytes (a length byte first); *len gets how many. */
static inline const uint8_t *in_bytes(fuzz_in_t *in, size_t max, size_t *len) {
  size_t want = in_u8(in);
  if (want > max) want = max;
  size_t left = (size_t)(in->end - in->p);
  if (want > left) want = left;
  const uint8_t *p = in->p;
  in->p += want;
  *len = want;
  return p;
}

/* A NUL-terminated copy of up to `max` input bytes, stopping at a NUL, into
 * buf (room for max + 1). */
static inline char *in_str(fuzz_in_t *in, char *buf, size_t max) {
  size_t len;
  const uint8_t *p = in_bytes(in, max, &len);
  size_t i = 0;
  for (; i < len && p[i] != 0; i++) buf[i] = (char)p[i];
  buf[i] = '\0';
  return buf;
}

#endif
