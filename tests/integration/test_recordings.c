/*
 * Integration: recorded requests.
 *
 *   50 calls of echo with distinct payloads
 *                                -> 32 recordings, the first 32 calls,
 *                                   oldest first, each answered "ok"
 *   `impulse record ls echo`     -> a table of 32 rows
 *   restart                      -> the same 32 recordings
 *   100 more calls               -> one of them is sampled and takes the
 *                                   oldest's place (the ring goes on after
 *                                   a restart)
 *   flaky with "poison", then "fine"
 *                                -> FUNCTION_ERROR and ok recorded
 *   delete echo                  -> record ls: NOT_FOUND; deployed again:
 *                                   no recordings
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "tests/support/test_main.h"

#define CALL_TIMEOUT_MS 30000u

/* RecordList over the RPC: the client status; *out on success (free with
 * impulse__envelope__free_unpacked). */
static int record_list(impulse_client_t *c, const char *name,
                       Impulse__Envelope **out) {
  Impulse__RecordListRequest rl = IMPULSE__RECORD_LIST_REQUEST__INIT;
  rl.name = (char *)name;
  return sup_call(c, IMPULSE__ENVELOPE__BODY_RECORD_LIST, &rl,
                  IMPULSE__ENVELOPE__BODY_RECORD_LIST_OK, out);
}

/* The payload preview of recording i as a string. */
static const char *preview(const Impulse__RecordListResponse *l, size_t i,
                           char *buf, size_t len) {
  const ProtobufCBinaryData *p = &l->calls[i]->payload_preview;
  size_t n = p->len < len - 1 ? p->len : len - 1;
  memcpy(buf, p->data, n);
  buf[n] = '\0';
  return buf;
}

/* Checks that the recordings of echo are call-<first>..call-<first+31>
 * (wrapped at 50 calls), oldest first, all "ok", version 1. */
static void expect_echo_calls(impulse_client_t *c, unsigned first) {
  Impulse__Envelope *resp = NULL;
  assert_int_equal(record_list(c, "echo", &resp), 0);
  const Impulse__RecordListResponse *l = resp->record_list_ok;
  assert_int_equal(l->n_calls, 32);
  char got[80], want[32];
  for (size_t i = 0; i < l->n_calls; i++) {
    const Impulse__RecordedCallInfo *ci = l->calls[i];
    snprintf(want, sizeof want, "call-%02u", first + (unsigned)i);
    assert_string_equal(preview(l, i, got, sizeof got), want);
    assert_string_equal(ci->answer_status, "ok");
    assert_int_equal(ci->version, 1);
    assert_int_equal(ci->request_bytes, strlen(want));
    if (i > 0) assert_true(ci->recorded_ms >= l->calls[i - 1]->recorded_ms);
  }
  impulse__envelope__free_unpacked(resp, NULL);
}

/* `impulse record ls NAME` exits `status` and says `want` (on stdout when
 * it exits 0, else on stderr). */
static void expect_record_ls(const it_server_t *s, const char *name, int status,
                             const char *want) {
  it_cli_t r;
  /* record ls shows payloads: it needs scope read (here the admin token). */
  assert_int_equal(IT_CLI(&r, NULL, "record", "ls", name, "--addr", s->addr,
                          "--token", s->token),
                   0);
  assert_int_equal(r.status, status);
  assert_non_null(strstr(status == 0 ? r.out : r.err, want));
  it_cli_free(&r);
}

/* Calls echo n times with the payloads "<prefix>-00", "<prefix>-01"... */
static void call_echo(impulse_client_t *c, const char *prefix, unsigned n) {
  for (unsigned i = 0; i < n; i++) {
    char payload[32];
    impulse_response_t *r = NULL;
    snprintf(payload, sizeof payload, "%s-%02u", prefix, i);
    assert_int_equal(it_invoke(c, "echo", payload, &r), IMPULSE_S_OK);
    impulse_response_free(r);
  }
}

static void test_recordings(void **state) {
  it_server_t *s = *state;
  impulse_client_t *c = it_connect_ok(s, 1, CALL_TIMEOUT_MS);
  uint32_t version = 0;
  assert_int_equal(it_deploy_fn(c, "echo", "echo", NULL, &version), 0);
  assert_int_equal(version, 1);

  /* Nothing recorded before the first call. */
  Impulse__Envelope *resp = NULL;
  assert_int_equal(record_list(c, "echo", &resp), 0);
  assert_int_equal(resp->record_list_ok->n_calls, 0);
  impulse__envelope__free_unpacked(resp, NULL);

  call_echo(c, "call", 50);
  /* Every call is sampled until 32 are kept; then one in 100. */
  expect_echo_calls(c, 0);

  it_cli_t r;
  assert_int_equal(IT_CLI(&r, NULL, "record", "ls", "echo", "--addr", s->addr,
                          "--token", s->token),
                   0);
  assert_int_equal(r.status, 0);
  assert_non_null(strstr(r.out, "VERSION"));
  assert_non_null(strstr(r.out, "PAYLOAD"));
  unsigned rows = 0;
  for (const char *p = r.out; (p = strstr(p, "call-")) != NULL; p++) rows++;
  assert_int_equal(rows, 32);
  assert_true(it_has_line_word(r.out, "1"));
  assert_non_null(strstr(r.out, " ok "));
  it_cli_free(&r);
  impulse_client_close(c);

  /* Stored: a restart finds them. */
  assert_int_equal(it_server_stop(s), 0);
  assert_int_equal(it_server_restart(s), 0);
  c = it_connect_ok(s, 1, CALL_TIMEOUT_MS);
  expect_echo_calls(c, 0);

  /* The ring goes on where it was: the 100th call is sampled and replaces
   * the oldest recording. */
  call_echo(c, "more", 100);
  assert_int_equal(record_list(c, "echo", &resp), 0);
  {
    const Impulse__RecordListResponse *l = resp->record_list_ok;
    char got[80];
    assert_int_equal(l->n_calls, 32);
    assert_string_equal(preview(l, 0, got, sizeof got), "call-01");
    assert_string_equal(preview(l, 30, got, sizeof got), "call-31");
    assert_string_equal(preview(l, 31, got, sizeof got), "more-99");
  }
  impulse__envelope__free_unpacked(resp, NULL);

  /* A handler that fails: its error answer is recorded. */
  assert_int_equal(it_deploy_fn(c, "flaky", "flaky", NULL, &version), 0);
  impulse_response_t *x = NULL;
  assert_int_equal(it_invoke(c, "flaky", "poison", &x),
                   IMPULSE_S_FUNCTION_ERROR);
  impulse_response_free(x);
  x = NULL;
  assert_int_equal(it_invoke(c, "flaky", "fine", &x), IMPULSE_S_OK);
  impulse_response_free(x);
  assert_int_equal(record_list(c, "flaky", &resp), 0);
  {
    const Impulse__RecordListResponse *l = resp->record_list_ok;
    char got[80];
    assert_int_equal(l->n_calls, 2);
    assert_string_equal(preview(l, 0, got, sizeof got), "poison");
    assert_string_equal(l->calls[0]->answer_status, "FUNCTION_ERROR");
    assert_string_equal(preview(l, 1, got, sizeof got), "fine");
    assert_string_equal(l->calls[1]->answer_status, "ok");
  }
  impulse__envelope__free_unpacked(resp, NULL);
  expect_record_ls(s, "flaky", 0, "FUNCTION_ERROR");

  /* Unknown function. */
  assert_int_equal(record_list(c, "ghost", &resp), IMPULSE_S_NOT_FOUND);

  /* Deleting the function drops its recordings, also for a function
   * deployed again under the same name. */
  assert_int_equal(impulse_delete(c, "echo"), IMPULSE_S_OK);
  assert_int_equal(record_list(c, "echo", &resp), IMPULSE_S_NOT_FOUND);
  expect_record_ls(s, "echo", 1, "NOT_FOUND");
  assert_int_equal(it_deploy_fn(c, "echo", "echo", NULL, &version), 0);
  assert_int_equal(record_list(c, "echo", &resp), 0);
  assert_int_equal(resp->record_list_ok->n_calls, 0);
  impulse__envelope__free_unpacked(resp, NULL);
  expect_record_ls(s, "echo", 0, "no recorded calls");

  impulse_client_close(c);
  assert_int_equal(it_server_stop_checked(s), 0);
  s->test_passed = 1;
}

TEST_MAIN("integration_recordings", NULL, NULL,
          IT_SERVER_TEST(test_recordings, it_fixture_plain))
