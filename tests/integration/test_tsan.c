/*
 * Integration, ThreadSanitizer builds only: a race in a worker fails the
 * test that caused it.
 *
 *   integration/racy.c with concurrency 4, four calls at once
 *                                -> the race between its handler threads
 *                                   is reported in the server's log (the
 *                                   worker's stderr is the function's
 *                                   log; its reports come through the fd
 *                                   of core/codec.h), naming racy.c, and
 *                                   the harness's check of a stopped
 *                                   server fails on it
 *
 * Without this, a race on the worker's handler threads would end in the
 * function's log and every test would pass over it.
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

#ifndef IT_ARTIFACTS_DIR
#error "IT_ARTIFACTS_DIR must be defined by the build"
#endif

#define CALL_TIMEOUT_MS 60000u
#define CALLS 4

static void test_worker_race_fails_the_test(void **state) {
  (void)state;
  it_server_t server;
  memset(&server, 0, sizeof server);
  if (it_server_start(&server, NULL) != 0) {
    it_server_destroy(&server);
    fail_msg("the server did not start");
  }
  impulse_client_t *c = it_connect_ok(&server, 1, CALL_TIMEOUT_MS);
  char path[512];
  snprintf(path, sizeof path, "%s/racy.so", IT_ARTIFACTS_DIR);
  impulse_deploy_opts_t opts = {0};
  opts.concurrency = CALLS;
  opts.max_instances = 1;
  opts.has_max = 1;
  assert_int_equal(it_deploy_file(c, "racy", path, &opts, NULL), 0);
  /* One call first, so that the instance is up and the next four meet on
   * its handler threads. */
  impulse_response_t *r = NULL;
  assert_int_equal(it_invoke(c, "racy", "x", &r), IMPULSE_S_OK);
  impulse_response_free(r);
  for (int i = 0; i < CALLS; i++)
    assert_int_equal(impulse_invoke_send(c, "racy", "x", 1, NULL, NULL),
                     IMPULSE_S_OK);
  /* The worker halts at its first report (halt_on_error): the calls end
   * in an error or an answer, either is fine here. */
  for (int i = 0; i < CALLS; i++) {
    r = NULL;
    assert_int_equal(impulse_invoke_recv(c, &r), IMPULSE_S_OK);
    fprintf(stderr, "call %d: %s\n", i, impulse_status_name(r->status));
    impulse_response_free(r);
  }
  impulse_client_close(c);

  /* The check every integration test ends with must fail. */
  int checked = it_server_stop_checked(&server);
  char *log = NULL;
  size_t len = 0;
  assert_int_equal(it_read_file(server.log_file, &log, &len), 0);
  const char *report = strstr(log, "WARNING: ThreadSanitizer: data race");
  if (report == NULL) it_server_dump_log(&server, 12000);
  assert_non_null(report);
  assert_non_null(strstr(report, "racy"));
  assert_int_equal(checked, -1);
  free(log);
  it_server_destroy(&server);
}

TEST_MAIN("integration_tsan", NULL, NULL,
          cmocka_unit_test(test_worker_race_fails_the_test))
