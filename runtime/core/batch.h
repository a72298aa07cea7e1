/*
 * Wire format of an invoke_batch request (several trigger records in one
 * worker call, docs/architecture.md "Record batches"), encoded straight
 * from the caller's records instead of building protobuf-c structs and
 * packing them: packing took a fifth of the trigger's time per record.
 *
 * The bytes are those that follow an Envelope's id: field 43
 * (invoke_batch) holding an InvokeBatchRequest { function, items* }, each
 * item a BatchItem { payload, headers* }. An id field in front of them
 * makes a whole Envelope (imp_frame_append_with_id()).
 *
 * Encoding takes two passes over the items, neither of which allocates:
 *
 *   imp_batch_request_init(&br, function);
 *   per item: ilen[i] = imp_batch_request_measure(&br, plen, hs, n, hlen);
 *   size = imp_batch_request_size(&br);          (allocate `size` bytes)
 *   imp_batch_request_encode(&br, out, size);
 *   per item, in the same order: imp_batch_request_encode_item(&br, ilen[i],
 *       payload, plen, hs, n, hlen);
 *
 * The caller keeps each item's length and its headers' lengths (hlen, one
 * per header) between the passes. Tested against protobuf-c's own decoder
 * in tests/runtime/test_batch.c.
 */
#ifndef IMP_BATCH_H
#define IMP_BATCH_H

#include <stddef.h>
#include <stdint.h>

#include "impulse.pb-c.h"

/* Field numbers of runtime/core/impulse.proto that the encoder writes. */
#define IMP_BATCH_F_ENVELOPE IMPULSE__ENVELOPE__BODY_INVOKE_BATCH /* 43 */
#define IMP_BATCH_F_FUNCTION 1 /* InvokeBatchRequest.function */
#define IMP_BATCH_F_ITEMS 2    /* InvokeBatchRequest.items */
#define IMP_BATCH_F_PAYLOAD 1  /* BatchItem.payload */
#define IMP_BATCH_F_HEADERS 2  /* BatchItem.headers */
#define IMP_BATCH_F_NAME 1     /* Header.name */
#define IMP_BATCH_F_VALUE 2    /* Header.value */

/* A request being measured, then encoded. Fill with
 * imp_batch_request_init(); the fields are the encoder's. */
typedef struct imp_batch_request_s {
  const char *function; /* borrowed until the last item is encoded */
  size_t flen;
  size_t body;            /* bytes of the InvokeBatchRequest measured so far */
  uint32_t items;         /* items measured */
  uint32_t encoded;       /* items encoded */
  uint8_t *out, *w, *end; /* the output, while encoding */
} imp_batch_request_t;

/* Starts a request to `function` (borrowed) with no items. */
void imp_batch_request_init(imp_batch_request_t *br, const char *function);

/* Measures one item: a payload of `plen` bytes and the headers hs[0..n)
 * (borrowed; a header's value is written when has_value is set, as
 * protobuf-c does). Fills hlen[0..n) with each header's encoded length
 * and returns the item's, both to be passed to
 * imp_batch_request_encode_item(). */
size_t imp_batch_request_measure(imp_batch_request_t *br, size_t plen,
                                 const Impulse__Header *hs, size_t n,
                                 size_t *hlen);

/* Bytes of the whole encoding of what was measured: the Envelope's field
 * 43 tag and length and the InvokeBatchRequest. */
size_t imp_batch_request_size(const imp_batch_request_t *br);

/* Begins writing into out[0..outlen) (borrowed until the last item is
 * encoded): the field tag, the length and the function name. Returns 0,
 * or -ENOBUFS (nothing written) when outlen is below
 * imp_batch_request_size(). */
int imp_batch_request_encode(imp_batch_request_t *br, uint8_t *out,
                             size_t outlen);

/* Writes the next item: the same arguments, in the same order, as its
 * imp_batch_request_measure() call, with `ilen` that call's result.
 * Returns 0, or -ENOBUFS (nothing written) when the item does not fit:
 * it was not measured. */
int imp_batch_request_encode_item(imp_batch_request_t *br, size_t ilen,
                                  const void *payload, size_t plen,
                                  const Impulse__Header *hs, size_t n,
                                  const size_t *hlen);

/* Bytes written so far: imp_batch_request_size() once every measured
 * item is encoded. */
static inline size_t imp_batch_request_written(const imp_batch_request_t *br) {
  return (size_t)(br->w - br->out);
}

#endif
