/*
 * Secret names and a function's secret references (runtime/core/limits.c):
 * what is valid, what is refused and with which reason.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cmocka.h>

#include <string.h>

#include "core/limits.h"
#include "tests/support/test_main.h"

static void test_secret_names(void **state) {
  (void)state;
  assert_true(imp_secret_name_valid("DB_PASS"));
  assert_true(imp_secret_name_valid("_x9"));
  char longest[IMP_ENV_KEY_MAX + 2];
  memset(longest, 'A', IMP_ENV_KEY_MAX);
  longest[IMP_ENV_KEY_MAX] = '\0';
  assert_true(imp_secret_name_valid(longest));
  longest[IMP_ENV_KEY_MAX] = 'A';
  longest[IMP_ENV_KEY_MAX + 1] = '\0';
  assert_false(imp_secret_name_valid(longest)); /* one too long */
  assert_false(imp_secret_name_valid(NULL));
  assert_false(imp_secret_name_valid(""));
  assert_false(imp_secret_name_valid("1X"));  /* digit first */
  assert_false(imp_secret_name_valid("A-B")); /* not a key character */
  assert_false(imp_secret_name_valid("A=B")); /* a reference, not a name */
  assert_false(imp_secret_name_valid("A B"));
}

static void test_ref_split(void **state) {
  (void)state;
  size_t nl;
  assert_string_equal(imp_secret_ref_split("DB", &nl), "DB");
  assert_int_equal(nl, 2);
  assert_string_equal(imp_secret_ref_split("DB=PASSWORD", &nl), "PASSWORD");
  assert_int_equal(nl, 2);
}

static void expect_refused(char *const *refs, size_t n, char *const *env,
                           size_t nenv, const char *reason) {
  char err[256] = "";
  assert_int_not_equal(
      imp_secret_refs_valid(refs, n, env, nenv, err, sizeof err), 0);
  if (strstr(err, reason) == NULL)
    fail_msg("refused with '%s', expected it to say '%s'", err, reason);
}

static void test_refs(void **state) {
  (void)state;
  char err[256];
  char *ok[] = {"A", "B=VB", "C=_c"};
  char *env[] = {"X=1", "VA=2"};
  assert_int_equal(imp_secret_refs_valid(ok, 3, env, 2, err, sizeof err), 0);
  assert_int_equal(imp_secret_refs_valid(NULL, 0, NULL, 0, err, sizeof err), 0);

  char *bad1[] = {"1A"};
  expect_refused(bad1, 1, NULL, 0, "'1A' is not NAME or NAME=VARIABLE");
  char *bad2[] = {"A="};
  expect_refused(bad2, 1, NULL, 0, "'A=' is not");
  char *bad3[] = {"A=B=C"};
  expect_refused(bad3, 1, NULL, 0, "'A=B=C' is not");
  char *bad4[] = {"=A"};
  expect_refused(bad4, 1, NULL, 0, "'=A' is not");
  char *bad5[] = {"A-B"};
  expect_refused(bad5, 1, NULL, 0, "'A-B' is not");
  /* One variable from two secrets, or from a secret and the environment. */
  char *twice[] = {"A=V", "B=V"};
  expect_refused(twice, 2, NULL, 0, "variable V is given by two secrets");
  char *same[] = {"A", "A"};
  expect_refused(same, 2, NULL, 0, "variable A is given by two secrets");
  char *clash[] = {"S=X"};
  expect_refused(clash, 1, env, 2, "variable X is both in the environment");
  /* A prefix of a key is no clash. */
  char *prefix[] = {"V"};
  assert_int_equal(imp_secret_refs_valid(prefix, 1, env, 2, err, sizeof err),
                   0);
  /* Too many. */
  char *many[IMP_SECRET_MAX_REFS + 1];
  char names[IMP_SECRET_MAX_REFS + 1][8];
  for (unsigned i = 0; i <= IMP_SECRET_MAX_REFS; i++) {
    snprintf(names[i], sizeof names[i], "S%u", i);
    many[i] = names[i];
  }
  assert_int_equal(imp_secret_refs_valid(many, IMP_SECRET_MAX_REFS, NULL, 0,
                                         err, sizeof err),
                   0);
  expect_refused(many, IMP_SECRET_MAX_REFS + 1, NULL, 0, "65 secrets");
}

TEST_MAIN("unit_limits", NULL, NULL, cmocka_unit_test(test_secret_names),
          cmocka_unit_test(test_ref_split), cmocka_unit_test(test_refs))
