/*
 * Unit tests for the codec's readers of a worker's answer (runtime/core/
 * codec.c): the error code peeked without a decode, the body decoded as an
 * Envelope, and a batch's answer decoded where it lies. Each is checked
 * against what protobuf-c itself packs, and against truncated and foreign
 * bytes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/arena.h"
#include "core/codec.h"
#include "tests/support/test_main.h"

/* Packs env and keeps the body after its id in buf; returns its length. */
static size_t rest_of(const Impulse__Envelope *env, uint8_t *buf) {
  size_t n = impulse__envelope__pack(env, buf);
  uint64_t id;
  size_t off;
  assert_int_equal(imp_envelope_split_id((const char *)buf, n, &id, &off), 0);
  memmove(buf, buf + off, n - off);
  return n - off;
}

static void test_answer_code(void **state) {
  (void)state;
  uint8_t buf[256];
  Impulse__Envelope env;
  Impulse__Error err;
  imp_envelope_error(&env, &err, 77, IMPULSE__ERROR_CODE__TIMEOUT, "late");
  size_t n = rest_of(&env, buf);
  assert_int_equal(imp_answer_code((char *)buf, n),
                   IMPULSE__ERROR_CODE__TIMEOUT);

  Impulse__Envelope ok = IMPULSE__ENVELOPE__INIT;
  Impulse__InvokeResponse resp = IMPULSE__INVOKE_RESPONSE__INIT;
  ok.id = 5;
  ok.body_case = IMPULSE__ENVELOPE__BODY_INVOKE_OK;
  ok.invoke_ok = &resp;
  n = rest_of(&ok, buf);
  assert_int_equal(imp_answer_code((char *)buf, n), 0);

  /* Truncated or foreign answers count as INTERNAL, never crash. */
  imp_envelope_error(&env, &err, 1, IMPULSE__ERROR_CODE__CRASHED, "x");
  n = rest_of(&env, buf);
  for (size_t cut = 0; cut < n; cut++) {
    int code = imp_answer_code((char *)buf, cut);
    assert_true(code == IMPULSE__ERROR_CODE__INTERNAL ||
                code == IMPULSE__ERROR_CODE__CRASHED);
  }
  assert_int_equal(imp_answer_code("\x12\x05\x08", 3),
                   IMPULSE__ERROR_CODE__INTERNAL);
  assert_int_equal(imp_answer_code("\x3a\x00", 2),
                   IMPULSE__ERROR_CODE__INTERNAL);
}

/* The body after the id decodes to what was packed, under id 0. */
static void test_body_decode(void **state) {
  (void)state;
  uint8_t buf[256];
  Impulse__Envelope ok = IMPULSE__ENVELOPE__INIT;
  Impulse__InvokeResponse resp = IMPULSE__INVOKE_RESPONSE__INIT;
  ok.id = 12345;
  ok.body_case = IMPULSE__ENVELOPE__BODY_INVOKE_OK;
  ok.invoke_ok = &resp;
  resp.has_payload = 1;
  resp.payload.data = (uint8_t *)"pong";
  resp.payload.len = 4;
  size_t n = rest_of(&ok, buf);
  Impulse__Envelope *env = imp_body_decode((char *)buf, n, NULL);
  assert_non_null(env);
  assert_int_equal(env->id, 0);
  assert_int_equal(env->body_case, IMPULSE__ENVELOPE__BODY_INVOKE_OK);
  assert_int_equal(env->invoke_ok->payload.len, 4);
  assert_memory_equal(env->invoke_ok->payload.data, "pong", 4);
  impulse__envelope__free_unpacked(env, NULL);
  /* Garbage does not decode. */
  assert_null(imp_body_decode("\xff\xff\xff", 3, NULL));
  /* A body larger than the decoder's stack buffer. */
  size_t big = 10000;
  uint8_t *payload = malloc(big), *out = malloc(big + 64);
  assert_non_null(payload);
  assert_non_null(out);
  memset(payload, 'x', big);
  resp.payload.data = payload;
  resp.payload.len = big;
  n = rest_of(&ok, out);
  env = imp_body_decode((char *)out, n, NULL);
  assert_non_null(env);
  assert_int_equal(env->invoke_ok->payload.len, big);
  impulse__envelope__free_unpacked(env, NULL);
  free(payload);
  free(out);
}

/* A batch's answer: the results, or the Error the worker sent instead.
 * Decoded into an arena, as its callers do: the pieces go with it. */
static void test_batch_answer_decode(void **state) {
  (void)state;
  imp_arena_t arena;
  imp_arena_init(&arena, 0);
  ProtobufCAllocator alloc;
  imp_arena_allocator(&arena, &alloc);
  uint8_t buf[512];
  Impulse__BatchResult r[3], *rp[3];
  for (int i = 0; i < 3; i++) {
    impulse__batch_result__init(&r[i]);
    r[i].has_code = 1;
    r[i].code = i == 1 ? IMPULSE__ERROR_CODE__FUNCTION_ERROR : 0;
    rp[i] = &r[i];
  }
  Impulse__InvokeBatchResponse br = IMPULSE__INVOKE_BATCH_RESPONSE__INIT;
  br.n_results = 3;
  br.results = rp;
  Impulse__Envelope env = IMPULSE__ENVELOPE__INIT;
  env.id = 9;
  env.body_case = IMPULSE__ENVELOPE__BODY_INVOKE_BATCH_OK;
  env.invoke_batch_ok = &br;
  size_t n = rest_of(&env, buf);
  Impulse__InvokeBatchResponse *resp = NULL;
  const char *msg = NULL;
  assert_int_equal(imp_batch_answer_decode((char *)buf, n, &alloc, &resp, &msg),
                   0);
  assert_non_null(resp);
  assert_null(msg);
  assert_int_equal(resp->n_results, 3);
  assert_int_equal(resp->results[1]->code, IMPULSE__ERROR_CODE__FUNCTION_ERROR);

  /* The worker answered the whole batch with an Error. */
  Impulse__Envelope e;
  Impulse__Error err;
  imp_envelope_error(&e, &err, 9, IMPULSE__ERROR_CODE__TOO_LARGE, "big");
  n = rest_of(&e, buf);
  assert_int_equal(imp_batch_answer_decode((char *)buf, n, &alloc, &resp, &msg),
                   IMPULSE__ERROR_CODE__TOO_LARGE);
  assert_null(resp);
  assert_string_equal(msg, "big");

  /* A single call's answer is not a batch answer. */
  Impulse__Envelope ok = IMPULSE__ENVELOPE__INIT;
  Impulse__InvokeResponse one = IMPULSE__INVOKE_RESPONSE__INIT;
  ok.body_case = IMPULSE__ENVELOPE__BODY_INVOKE_OK;
  ok.invoke_ok = &one;
  n = rest_of(&ok, buf);
  assert_int_equal(imp_batch_answer_decode((char *)buf, n, &alloc, &resp, &msg),
                   IMPULSE__ERROR_CODE__INTERNAL);
  assert_string_equal(msg, "unexpected answer from the instance");

  /* Truncated: refused, never read past the end. */
  n = rest_of(&env, buf);
  for (size_t cut = 0; cut < n; cut++) {
    int code = imp_batch_answer_decode((char *)buf, cut, &alloc, &resp, &msg);
    assert_int_equal(code, IMPULSE__ERROR_CODE__INTERNAL);
    assert_null(resp);
  }
  imp_arena_release(&arena);
}

TEST_MAIN("unit_answers", NULL, NULL, cmocka_unit_test(test_answer_code),
          cmocka_unit_test(test_body_decode),
          cmocka_unit_test(test_batch_answer_decode))
