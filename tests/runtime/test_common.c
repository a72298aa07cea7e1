/*
 * Unit tests for the small shared helpers every program uses: setting an
 * envelope's body by its case (runtime/core/codec.c), whole numbers of
 * flags and the atomic file write (runtime/core/common.c).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/codec.h"
#include "core/common.h"
#include "tests/support/test_main.h"

/* ---- an envelope's body by its case -------------------------------------- */

static void test_set_body_selects_the_member(void **state) {
  (void)state;
  Impulse__Envelope env = IMPULSE__ENVELOPE__INIT;
  Impulse__DeleteResponse del = IMPULSE__DELETE_RESPONSE__INIT;
  assert_int_equal(
      imp_envelope_set_body(&env, IMPULSE__ENVELOPE__BODY_DELETE_OK, &del), 0);
  assert_int_equal(env.body_case, IMPULSE__ENVELOPE__BODY_DELETE_OK);
  assert_ptr_equal(env.delete_ok, &del);

  /* It packs and unpacks as the same case. */
  size_t n = impulse__envelope__get_packed_size(&env);
  uint8_t *buf = malloc(n ? n : 1);
  assert_non_null(buf);
  impulse__envelope__pack(&env, buf);
  Impulse__Envelope *back = impulse__envelope__unpack(NULL, n, buf);
  assert_non_null(back);
  assert_int_equal(back->body_case, IMPULSE__ENVELOPE__BODY_DELETE_OK);
  assert_non_null(back->delete_ok);
  impulse__envelope__free_unpacked(back, NULL);
  free(buf);
}

static void test_set_body_refuses_another_type(void **state) {
  (void)state;
  Impulse__Envelope env = IMPULSE__ENVELOPE__INIT;
  Impulse__ScaleResponse scale = IMPULSE__SCALE_RESPONSE__INIT;
  /* A ScaleResponse is not the body of DELETE_OK: refused, env untouched. */
  assert_int_equal(
      imp_envelope_set_body(&env, IMPULSE__ENVELOPE__BODY_DELETE_OK, &scale),
      -EINVAL);
  assert_int_equal(env.body_case, IMPULSE__ENVELOPE__BODY__NOT_SET);
  assert_null(env.delete_ok);
  /* No body, no case, and a field number that is not a body case. */
  assert_int_equal(
      imp_envelope_set_body(&env, IMPULSE__ENVELOPE__BODY_DELETE_OK, NULL),
      -EINVAL);
  assert_int_equal(
      imp_envelope_set_body(&env, IMPULSE__ENVELOPE__BODY__NOT_SET, &scale),
      -EINVAL);
  assert_int_equal(imp_envelope_set_body(&env, 1 /* the id */, &scale),
                   -EINVAL);
  assert_int_equal(env.body_case, IMPULSE__ENVELOPE__BODY__NOT_SET);
}

static void test_frame_append_body_round_trip(void **state) {
  (void)state;
  imp_buf_t out = {0};
  Impulse__ScaleResponse scale = IMPULSE__SCALE_RESPONSE__INIT;
  assert_int_equal(
      imp_frame_append_body(&out, IMP_DEFAULT_MAX_FRAME, 77,
                            IMPULSE__ENVELOPE__BODY_SCALE_OK, &scale),
      0);
  Impulse__Envelope *env = NULL;
  assert_true(imp_frame_decode(out.data, out.len, IMP_DEFAULT_MAX_FRAME, NULL,
                               &env) == (ssize_t)out.len);
  assert_int_equal(env->id, 77);
  assert_int_equal(env->body_case, IMPULSE__ENVELOPE__BODY_SCALE_OK);
  impulse__envelope__free_unpacked(env, NULL);

  /* A body of the wrong type appends nothing. */
  size_t len = out.len;
  assert_int_equal(
      imp_frame_append_body(&out, IMP_DEFAULT_MAX_FRAME, 78,
                            IMPULSE__ENVELOPE__BODY_LIST_OK, &scale),
      -EINVAL);
  assert_int_equal(out.len, len);
  imp_buf_free(&out);
}

/* ---- whole numbers --------------------------------------------------------
 */

static void test_parse_ull(void **state) {
  (void)state;
  unsigned long long v = 12345;
  assert_int_equal(imp_parse_ull("0", 0, 10, &v), 0);
  assert_int_equal(v, 0);
  assert_int_equal(imp_parse_ull("10", 0, 10, &v), 0);
  assert_int_equal(v, 10);
  assert_int_equal(imp_parse_ull("18446744073709551615", 0, UINT64_MAX, &v), 0);
  assert_true(v == UINT64_MAX);
  /* Each of these is refused and leaves *out as it was. */
  static const char *const bad[] = {
      "",  "-1",  "+1", " 1", "1 ", "1x", "0x10", "11", "18446744073709551616",
      "x", "1.5", "1e3"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    v = 7;
    assert_int_equal(imp_parse_ull(bad[i], 0, 10, &v), -EINVAL);
    assert_int_equal(v, 7);
  }
  assert_int_equal(imp_parse_ull("4", 5, 10, &v), -EINVAL);
}

static void test_uint_flag_says_what_it_takes(void **state) {
  (void)state;
  unsigned long v = 0;
  assert_int_equal(imp_uint_flag("serve", "--partitions", "8", 1, 16, &v), 0);
  assert_int_equal(v, 8);

  /* The refusal names the command, the flag, the range and the value. */
  char *text = NULL;
  size_t len = 0;
  FILE *mem = open_memstream(&text, &len);
  assert_non_null(mem);
  FILE *saved = stderr;
  stderr = mem;
  int rc = imp_uint_flag("serve", "--partitions", "17", 1, 16, &v);
  stderr = saved;
  fclose(mem);
  assert_int_equal(rc, -1);
  assert_int_equal(v, 8);
  assert_string_equal(text,
                      "impulse serve: --partitions must be a whole "
                      "number from 1 to 16, not '17'\n");
  free(text);
}

/* ---- atomic write ---------------------------------------------------------
 */

static void test_write_file_atomic(void **state) {
  (void)state;
  char dir[] = "/tmp/impulse-common-XXXXXX";
  assert_non_null(mkdtemp(dir));
  char path[128];
  snprintf(path, sizeof path, "%s/ready", dir);

  assert_int_equal(imp_write_file_atomic(path, "first\n", 6), 0);
  assert_int_equal(imp_write_file_atomic(path, "second line\n", 12), 0);
  char *data = NULL;
  size_t len = 0;
  assert_int_equal(imp_read_file(path, 1024, &data, &len), 0);
  assert_int_equal(len, 12);
  assert_memory_equal(data, "second line\n", 12);
  free(data);

  /* No temporary file is left beside it. */
  char tmp[160];
  snprintf(tmp, sizeof tmp, "%s.tmp.%d", path, (int)getpid());
  struct stat st;
  assert_int_not_equal(stat(tmp, &st), 0);

  /* A directory that does not exist: an error, nothing written. */
  char missing[160];
  snprintf(missing, sizeof missing, "%s/no/such/ready", dir);
  assert_true(imp_write_file_atomic(missing, "x", 1) < 0);

  assert_int_equal(unlink(path), 0);
  assert_int_equal(rmdir(dir), 0);
}

/* HOST:PORT: the port is digits only, the host not empty (found by
 * tests/fuzz/cli_args.c: " 80", "+80" and "[]" used to be taken). */
static void test_parse_hostport(void **state) {
  (void)state;
  char host[16];
  int port = -1;
  assert_int_equal(
      imp_parse_hostport("127.0.0.1:7070", host, sizeof host, &port), 0);
  assert_string_equal(host, "127.0.0.1");
  assert_int_equal(port, 7070);
  assert_int_equal(imp_parse_hostport("[::1]:0", host, sizeof host, &port), 0);
  assert_string_equal(host, "::1");
  assert_int_equal(port, 0);
  assert_int_equal(imp_parse_hostport("h:65535", host, sizeof host, &port), 0);
  static const char *const bad[] = {
      "h: 80",    "h:+80",    "h:-0", "h:80 ",
      "[]:80",    ":80",      "h:",   "h:65536",
      "h:00080x", "h:123456", "h",    "0123456789abcdef:1"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    assert_int_equal(imp_parse_hostport(bad[i], host, sizeof host, &port),
                     -EINVAL);
}

TEST_MAIN("unit_common", NULL, NULL, cmocka_unit_test(test_parse_hostport),
          cmocka_unit_test(test_set_body_selects_the_member),
          cmocka_unit_test(test_set_body_refuses_another_type),
          cmocka_unit_test(test_frame_append_body_round_trip),
          cmocka_unit_test(test_parse_ull),
          cmocka_unit_test(test_uint_flag_says_what_it_takes),
          cmocka_unit_test(test_write_file_atomic))
