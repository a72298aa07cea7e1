/*
 * The scopes and the one table of what they allow (runtime/policy/scopes.c):
 * parsing, and the decision for each kind of caller.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "impulse.pb-c.h"
#include "policy/scopes.h"

static imp_grant_t grant_of(const char *const *scopes) {
  imp_grant_t g = {0};
  char err[400];
  for (; *scopes; scopes++)
    assert_int_equal(
        imp_scope_parse(*scopes, &g.scopes[g.n++], err, sizeof err), 0);
  return g;
}

static void test_parse(void **state) {
  (void)state;
  imp_scope_t s;
  char err[400], buf[300];
  assert_int_equal(imp_scope_parse("invoke:f1", &s, err, sizeof err), 0);
  assert_int_equal(s.kind, IMP_SCOPE_INVOKE);
  assert_string_equal(imp_scope_format(&s, buf, sizeof buf), "invoke:f1");
  assert_int_equal(imp_scope_parse("publish:a.b-c", &s, err, sizeof err), 0);
  assert_string_equal(s.target, "a.b-c");
  assert_int_equal(imp_scope_parse("read", &s, err, sizeof err), 0);
  assert_string_equal(imp_scope_format(&s, buf, sizeof buf), "read");
  /* Bad input: each refused with a reason naming it. */
  assert_int_equal(imp_scope_parse("root", &s, err, sizeof err), -EINVAL);
  assert_non_null(strstr(err, "unknown scope 'root'"));
  assert_int_equal(imp_scope_parse("read:f1", &s, err, sizeof err), -EINVAL);
  assert_non_null(strstr(err, "only invoke and publish"));
  assert_int_equal(imp_scope_parse("invoke:", &s, err, sizeof err), -EINVAL);
  assert_non_null(strstr(err, "not a valid function name"));
  assert_int_equal(imp_scope_parse("invoke:a/b", &s, err, sizeof err), -EINVAL);
  assert_int_equal(imp_scope_parse("publish:..", &s, err, sizeof err), -EINVAL);
  assert_int_equal(imp_scope_parse("", &s, err, sizeof err), -EINVAL);
  assert_int_equal(imp_scope_parse("invokes", &s, err, sizeof err), -EINVAL);
}

static void test_decide(void **state) {
  (void)state;
  char msg[600];
  const int inv = IMPULSE__ENVELOPE__BODY_INVOKE;
  imp_grant_t f1 = grant_of((const char *const[]){"invoke:f1", NULL});
  assert_int_equal(imp_access_decide(inv, "f1", 0, &f1, 0, msg, sizeof msg), 0);
  assert_int_equal(imp_access_decide(inv, "f2", 0, &f1, 0, msg, sizeof msg),
                   IMPULSE__ERROR_CODE__PERMISSION_DENIED);
  assert_non_null(strstr(msg, "'invoke' or 'invoke:f2'"));
  /* Open mode: a token never gives less than none. */
  assert_int_equal(imp_access_decide(inv, "f2", 0, &f1, 1, msg, sizeof msg), 0);
  assert_int_equal(imp_access_decide(inv, "f2", 0, NULL, 0, msg, sizeof msg),
                   IMPULSE__ERROR_CODE__UNAUTHENTICATED);
  /* Payload reads are never open. */
  assert_int_equal(imp_access_decide(IMPULSE__ENVELOPE__BODY_RECORD_LIST, "f1",
                                     0, NULL, 1, msg, sizeof msg),
                   IMPULSE__ERROR_CODE__UNAUTHENTICATED);
  assert_int_equal(
      imp_access_decide(IMP_OP_HTTP_STATE, NULL, 0, NULL, 1, msg, sizeof msg),
      IMPULSE__ERROR_CODE__UNAUTHENTICATED);
  imp_grant_t rd = grant_of((const char *const[]){"read", NULL});
  assert_int_equal(
      imp_access_decide(IMP_OP_HTTP_STATE, NULL, 0, &rd, 0, msg, sizeof msg),
      0);
  /* The admin token and the admin scope: everything. */
  imp_grant_t ad = grant_of((const char *const[]){"admin", NULL});
  size_t n;
  const imp_access_t *t = imp_access_table(&n);
  for (size_t i = 0; i < n; i++) {
    assert_int_equal(
        imp_access_decide(t[i].op, "x", 1, NULL, 0, msg, sizeof msg), 0);
    assert_int_equal(
        imp_access_decide(t[i].op, "x", 0, &ad, 0, msg, sizeof msg), 0);
    /* Only admin may touch tokens and backups. */
    if (t[i].need == IMP_SCOPE_ADMIN)
      assert_int_equal(
          imp_access_decide(t[i].op, NULL, 0, &rd, 1, msg, sizeof msg),
          IMPULSE__ERROR_CODE__PERMISSION_DENIED);
  }
  /* Hello and ServerInfo have no row: anyone. */
  assert_int_equal(imp_access_decide(IMPULSE__ENVELOPE__BODY_SERVER_INFO, NULL,
                                     0, NULL, 0, msg, sizeof msg),
                   0);
}

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_parse),
                                     cmocka_unit_test(test_decide)};
  return cmocka_run_group_tests_name("unit_scopes", tests, NULL, NULL);
}
