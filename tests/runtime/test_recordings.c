/*
 * Unit tests of runtime/recordings.c: reading a recorded answer (a worker's
 * reply Envelope after its id).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "server/invoke/recordings.h"
#include "tests/support/test_main.h"

/* Packs `env` with id 0 and returns the body after the id (2 bytes). */
static char *answer_of(Impulse__Envelope *env, size_t *len) {
  env->id = 0;
  size_t n = impulse__envelope__get_packed_size(env);
  uint8_t *buf = malloc(n);
  assert_non_null(buf);
  impulse__envelope__pack(env, buf);
  assert_int_equal(buf[0], 0x08);
  assert_int_equal(buf[1], 0x00);
  char *out = malloc(n - 2);
  assert_non_null(out);
  memcpy(out, buf + 2, n - 2);
  free(buf);
  *len = n - 2;
  return out;
}

static char *invoke_ok(int has_status, int status, const char *payload,
                       size_t *len) {
  Impulse__Envelope env = IMPULSE__ENVELOPE__INIT;
  Impulse__InvokeResponse ok = IMPULSE__INVOKE_RESPONSE__INIT;
  ok.has_status = has_status;
  ok.status = status;
  if (payload != NULL) {
    ok.has_payload = 1;
    ok.payload.data = (uint8_t *)payload;
    ok.payload.len = strlen(payload);
  }
  env.body_case = IMPULSE__ENVELOPE__BODY_INVOKE_OK;
  env.invoke_ok = &ok;
  return answer_of(&env, len);
}

static void test_answer_ok(void **state) {
  (void)state;
  size_t len;
  char *a = invoke_ok(1, 0, "hi", &len);
  assert_int_equal(imp_rec_answer_ok(a, len), 1);
  ProtobufCBinaryData p;
  assert_int_equal(imp_rec_answer_payload(a, len, &p), 0);
  assert_int_equal(p.len, 2);
  assert_memory_equal(p.data, "hi", 2);
  free(p.data);
  free(a);

  a = invoke_ok(0, 0, NULL, &len); /* no status: 0 */
  assert_int_equal(imp_rec_answer_ok(a, len), 1);
  assert_int_equal(imp_rec_answer_payload(a, len, &p), 0);
  assert_int_equal(p.len, 0);
  assert_null(p.data);
  free(a);

  a = invoke_ok(1, 3, "x", &len);
  assert_int_equal(imp_rec_answer_ok(a, len), 0);
  free(a);

  Impulse__Envelope env = IMPULSE__ENVELOPE__INIT;
  Impulse__Error err = IMPULSE__ERROR__INIT;
  err.code = IMPULSE__ERROR_CODE__FUNCTION_ERROR;
  err.message = (char *)"function returned status 1: no";
  env.body_case = IMPULSE__ENVELOPE__BODY_ERROR;
  env.error = &err;
  a = answer_of(&env, &len);
  assert_int_equal(imp_rec_answer_ok(a, len), 0);
  assert_int_equal(imp_rec_answer_payload(a, len, &p), -EINVAL);
  free(a);

  /* Garbage and nothing. */
  static const char junk[] = {0x32, 0x7f, 0x01};
  assert_int_equal(imp_rec_answer_ok(junk, sizeof junk), 0);
  assert_int_equal(imp_rec_answer_ok(junk, 0), 0);
}

TEST_MAIN("unit_recordings", NULL, NULL, cmocka_unit_test(test_answer_ok))
