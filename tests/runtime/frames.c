/*
 * Frames for the decoder tests; see frames.h.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "frames.h"

char *ut_dup_exact(const void *data, size_t len) {
  char *p = malloc(len ? len : 1);
  assert_non_null(p);
  if (len) memcpy(p, data, len);
  return p;
}

void ut_header_init(Impulse__Header *h, const ut_header_t *spec) {
  impulse__header__init(h);
  h->name = (char *)spec->name;
  h->has_value = 1;
  h->value.data = (uint8_t *)spec->value;
  h->value.len = spec->len;
}

void ut_invoke_init(ut_invoke_t *f, uint64_t id, const ut_invoke_spec_t *spec) {
  assert_true(spec->n_headers <= UT_INVOKE_MAX_HEADERS);
  impulse__envelope__init(&f->env);
  impulse__invoke_request__init(&f->inv);
  for (size_t i = 0; i < spec->n_headers; i++) {
    ut_header_init(&f->h[i], &spec->headers[i]);
    f->hp[i] = &f->h[i];
  }
  f->inv.function = (char *)spec->function;
  f->inv.has_payload = 1;
  f->inv.payload.data = (uint8_t *)spec->payload;
  f->inv.payload.len = spec->payload_len;
  f->inv.n_headers = spec->n_headers;
  f->inv.headers = f->hp;
  f->inv.has_deadline_ms = spec->deadline_ms != 0;
  f->inv.deadline_ms = spec->deadline_ms;
  f->inv.idempotency_key = (char *)spec->idempotency_key;
  f->inv.has_version = spec->version != 0;
  f->inv.version = spec->version;
  f->env.id = id;
  f->env.body_case = IMPULSE__ENVELOPE__BODY_INVOKE;
  f->env.invoke = &f->inv;
}

void ut_invoke_append(imp_buf_t *buf, uint64_t id,
                      const ut_invoke_spec_t *spec) {
  ut_invoke_t f;
  ut_invoke_init(&f, id, spec);
  assert_int_equal(imp_frame_append(buf, &f.env, IMP_DEFAULT_MAX_FRAME), 0);
}

void ut_expect_needs_more(const ut_decoder_t *d, const imp_buf_t *frame) {
  for (size_t len = 0; len < frame->len; len++) {
    Impulse__Envelope *e = NULL;
    assert_int_equal(d->decode(frame->data, len, IMP_DEFAULT_MAX_FRAME, &e), 0);
    assert_null(e);
  }
}

Impulse__Envelope *ut_decode_at_limit(const ut_decoder_t *d,
                                      const imp_buf_t *frame) {
  size_t body = frame->len - IMP_FRAME_HEADER;
  Impulse__Envelope *e = NULL, *refused = NULL;
  assert_int_equal(d->decode(frame->data, frame->len, body, &e),
                   (ssize_t)frame->len);
  assert_non_null(e);
  assert_int_equal(d->decode(frame->data, frame->len, body - 1, &refused),
                   IMP_EFRAMETOOBIG);
  assert_int_equal(d->decode(frame->data, IMP_FRAME_HEADER, body - 1, &refused),
                   IMP_EFRAMETOOBIG);
  assert_null(refused);
  return e;
}

int ut_decode_hostile(const ut_decoder_t *d, const char *frame, size_t len) {
  Impulse__Envelope *e = NULL;
  ssize_t n = d->decode(frame, len, IMP_DEFAULT_MAX_FRAME, &e);
  if (n == IMP_EPROTO) {
    assert_null(e);
    return 0;
  }
  assert_int_equal(n, (ssize_t)len);
  assert_non_null(e);
  assert_true(e->body_case != IMPULSE__ENVELOPE__BODY__NOT_SET);
  d->free(e);
  return 1;
}

/* xorshift64: deterministic, so that a failure reproduces. */
static uint64_t rng_next(uint64_t *state) {
  uint64_t x = *state;
  x ^= x << 13;
  x ^= x >> 7;
  x ^= x << 17;
  *state = x;
  return x;
}

size_t ut_hostile_frames(const ut_decoder_t *d, uint64_t seed,
                         const imp_buf_t *valid) {
  uint64_t rng = seed;
  size_t decoded = 0;
  char frame[IMP_FRAME_HEADER + 512];
  for (int iter = 0; iter < 20000; iter++) {
    size_t blen = (iter % 10 == 0) ? rng_next(&rng) % 512 : rng_next(&rng) % 48;
    imp_frame_put_len(frame, (uint32_t)blen);
    for (size_t i = 0; i < blen; i++)
      frame[IMP_FRAME_HEADER + i] = (char)rng_next(&rng);
    if (blen >= 2 && (iter & 1)) {
      frame[IMP_FRAME_HEADER] = 0x08; /* field 1, varint */
      frame[IMP_FRAME_HEADER + 1] = (char)(rng_next(&rng) & 0x7f);
    }
    decoded += (size_t)ut_decode_hostile(d, frame, IMP_FRAME_HEADER + blen);
  }

  size_t body = valid->len - IMP_FRAME_HEADER;
  char *mut = malloc(valid->len);
  assert_non_null(mut);
  for (int iter = 0; iter < 20000; iter++) {
    memcpy(mut, valid->data, valid->len);
    int flips = 1 + (int)(rng_next(&rng) % 4);
    for (int k = 0; k < flips; k++)
      mut[IMP_FRAME_HEADER + rng_next(&rng) % body] = (char)rng_next(&rng);
    size_t blen = iter % 3 == 0 ? rng_next(&rng) % (body + 1) : body;
    imp_frame_put_len(mut, (uint32_t)blen);
    decoded += (size_t)ut_decode_hostile(d, mut, IMP_FRAME_HEADER + blen);
  }
  free(mut);
  return decoded;
}
