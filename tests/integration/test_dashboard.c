/*
 * Integration: the dashboard at GET / on the HTTP port, rendered by a real
 * browser (headless Chromium), and `impulse top --once`.
 *
 *   GET /                              -> 200 text/html; charset=utf-8, the
 *                                         page; the function's name is not
 *                                         in it (only the script puts it
 *                                         there, from /api/state)
 *   chromium --dump-dom                -> the functions table has a row for
 *                                         the deployed function, the status
 *                                         says live
 *   chromium --screenshot              -> a PNG (kept as IT_DASHBOARD_PNG)
 *   impulse top --once                 -> exit 0, a row for the function
 *   --invoke-auth token: GET /         -> 200; the page asks for the token;
 *                                         with /#token=TOKEN it renders
 *
 * Chromium must be installed (scripts/install-deps.sh installs it); without
 * it the test fails and says so. Each Chromium run gets its own profile
 * directory, runs in its own process group and is killed with it after
 * CHROMIUM_TIMEOUT_MS.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"
#include "tests/support/test_main.h"

#ifndef IT_DASHBOARD_PNG
#error \
    "IT_DASHBOARD_PNG must be defined by the build (where the screenshot goes)"
#endif

#define CHROMIUM "/usr/bin/chromium"
#define CHROMIUM_TIMEOUT_MS 60000u
#define FUNCTION "dashboard-echo"
#define CALLS 5
#define MIN_PNG_BYTES 8192

/* ---- helpers ------------------------------------------------------------- */

/*
 * Runs Chromium headless on `url` with the extra flags in `flags`
 * (NULL-terminated), stdout into *out (malloc'd, NUL-terminated), stderr
 * into ROOT/chromium.log. A fresh profile directory is used and removed.
 * Returns the exit status, or -1 when it was killed on timeout.
 */
static int chromium(const it_server_t *s, const char *url,
                    const char *const *flags, char **out) {
  char profile[256], profile_flag[300], log[256];
  snprintf(profile, sizeof profile, "%s/chromium-profile-XXXXXX", s->root);
  assert_non_null(mkdtemp(profile));
  snprintf(profile_flag, sizeof profile_flag, "--user-data-dir=%s", profile);
  snprintf(log, sizeof log, "%s/chromium.log", s->root);
  const char *argv[32];
  int n = 0;
  argv[n++] = CHROMIUM;
  argv[n++] = "--headless=new";
  argv[n++] = "--no-sandbox"; /* required as root */
  argv[n++] = "--disable-gpu";
  argv[n++] = "--disable-background-networking";
  argv[n++] = "--no-first-run";
  argv[n++] = "--enable-logging=stderr"; /* with the page's console */
  argv[n++] = profile_flag;
  argv[n++] = "--virtual-time-budget=5000";
  for (size_t i = 0; flags[i] && n < 30; i++) argv[n++] = flags[i];
  argv[n++] = url;
  argv[n] = NULL;

  sup_spawn_t how = SUP_SPAWN_INIT;
  how.path = CHROMIUM;
  how.argv = argv;
  how.in = open("/dev/null", O_RDONLY | O_CLOEXEC);
  how.err = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  how.own_group = 1;
  how.death_signal = SIGKILL;
  int st = sup_run_as(&how, out, CHROMIUM_TIMEOUT_MS, NULL);
  if (how.in >= 0) close(how.in);
  if (how.err >= 0) close(how.err);
  assert_non_null(*out);
  if (st == -ETIMEDOUT)
    fprintf(stderr, "chromium: killed after %u ms\n", CHROMIUM_TIMEOUT_MS);
  sup_rm_tree(profile);
  return st < 0 ? -1 : st;
}

/* Prints Chromium's stderr without its D-Bus complaints (there is no bus
 * here); the page's console messages are the "CONSOLE" lines. */
static void dump_chromium_log(const it_server_t *s) {
  char log[256], *text = NULL;
  size_t len = 0;
  snprintf(log, sizeof log, "%s/chromium.log", s->root);
  if (it_read_file(log, &text, &len) != 0) return;
  fprintf(stderr, "---- chromium stderr (D-Bus lines left out) ----\n");
  size_t shown = 0;
  for (char *line = text; line && *line && shown < 60;) {
    char *eol = strchr(line, '\n');
    if (eol) *eol = '\0';
    if (strstr(line, "dbus") == NULL && strstr(line, "D-Bus") == NULL) {
      fprintf(stderr, "%s\n", line);
      shown++;
    }
    line = eol ? eol + 1 : NULL;
  }
  fprintf(stderr, "----\n");
  free(text);
}

/* Fails the test, saying how, unless Chromium is installed. */
static void need_chromium(void) {
  if (access(CHROMIUM, X_OK) == 0) return;
  fail_msg(
      "%s is not installed: the dashboard test needs headless Chromium "
      "(apt-get install chromium; `make test` installs it through "
      "scripts/install-deps.sh)",
      CHROMIUM);
}

/* GET `path` on the HTTP port with a raw socket; the whole answer
 * (malloc'd, NUL-terminated). */
static char *http_get(const it_server_t *s, const char *path) {
  int fd = it_http_connect(s);
  assert_true(fd >= 0);
  char req[512];
  int n = snprintf(req, sizeof req,
                   "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n",
                   path, s->http_addr);
  assert_int_equal(it_raw_send(fd, req, (size_t)n), 0);
  int closed;
  char *buf = it_raw_read_all(fd, 10000, &closed);
  close(fd);
  assert_non_null(buf);
  return buf;
}

/* The dumped DOM has a row for FUNCTION in the functions table (between
 * that table and the next one); prints the DOM's start when not. */
static void expect_function_row(const it_server_t *s, int status,
                                const char *dom) {
  const char *table = strstr(dom, "id=\"functions\"");
  const char *next = table ? strstr(table, "id=\"instances\"") : NULL;
  const char *row =
      table ? strstr(table, "data-function=\"" FUNCTION "\"") : NULL;
  const char *cell = table ? strstr(table, "<td>" FUNCTION "</td>") : NULL;
  if (status == 0 && row != NULL && cell != NULL &&
      (next == NULL || (row < next && cell < next)))
    return;
  fprintf(stderr,
          "chromium exit %d; the functions table has no row for %s: the "
          "page's script did not render /api/state. DOM (first 3000 "
          "bytes):\n%.3000s\n",
          status, FUNCTION, dom);
  dump_chromium_log(s);
  fail();
}

static void deploy_and_call(const it_server_t *s) {
  impulse_client_t *c = it_connect_ok(s, 1, 20000);
  uint32_t version = 0;
  assert_int_equal(it_deploy_fn(c, FUNCTION, "echo", NULL, &version), 0);
  for (int i = 0; i < CALLS; i++) {
    impulse_response_t *r = NULL;
    assert_int_equal(it_invoke(c, FUNCTION, "hello", &r), 0);
    impulse_response_free(r);
  }
  impulse_client_close(c);
}

/* ---- fixtures ------------------------------------------------------------ */

/* ---- tests --------------------------------------------------------------- */

static void test_dashboard(void **state) {
  it_server_t *s = *state;
  need_chromium();
  assert_true(s->http_port > 0);
  deploy_and_call(s);

  /* The page itself: HTML, and without the function (only the script
   * brings the name in). */
  char *page = http_get(s, "/");
  char *body = strstr(page, "\r\n\r\n");
  assert_non_null(body);
  if (strncmp(page, "HTTP/1.1 200 ", 13) != 0)
    fprintf(stderr, "GET /: %.300s\n", page);
  assert_memory_equal(page, "HTTP/1.1 200 ", 13);
  assert_non_null(
      strcasestr(page, "\r\nContent-Type: text/html; charset=utf-8\r\n"));
  assert_memory_equal(body + 4, "<!DOCTYPE html>", 15);
  assert_null(strstr(body, FUNCTION));
  free(page);

  /* Rendered by a browser: the script polled /api/state (which needs
   * scope read even under --invoke-auth open: it shows payloads) and
   * filled the functions table. */
  char url[384];
  snprintf(url, sizeof url, "http://%s/#token=%s", s->http_addr, s->token);
  char *dom = NULL;
  int st = chromium(s, url, (const char *const[]){"--dump-dom", NULL}, &dom);
  expect_function_row(s, st, dom);
  assert_non_null(strstr(dom, "class=\"status live\""));
  free(dom);

  /* A screenshot, kept for people to look at. */
  char shot_flag[600], dir[512];
  snprintf(dir, sizeof dir, "%s", IT_DASHBOARD_PNG);
  char *slash = strrchr(dir, '/');
  if (slash != NULL && slash != dir) {
    *slash = '\0';
    mkdir(dir, 0755); /* the build makes it; a cleaned tree may not have it */
  }
  unlink(IT_DASHBOARD_PNG);
  snprintf(shot_flag, sizeof shot_flag, "--screenshot=%s", IT_DASHBOARD_PNG);
  char *ignored = NULL;
  st = chromium(
      s, url, (const char *const[]){shot_flag, "--window-size=1280,900", NULL},
      &ignored);
  free(ignored);
  char *png = NULL;
  size_t png_len = 0;
  if (st != 0 || it_read_file(IT_DASHBOARD_PNG, &png, &png_len) != 0 ||
      png_len < MIN_PNG_BYTES) {
    fprintf(stderr,
            "chromium exit %d; no screenshot of at least %d bytes at %s\n", st,
            MIN_PNG_BYTES, IT_DASHBOARD_PNG);
    dump_chromium_log(s);
    fail();
  }
  assert_memory_equal(png, "\x89PNG\r\n\x1a\n", 8);
  free(png);
  printf("dashboard screenshot: %s (%zu bytes)\n", IT_DASHBOARD_PNG, png_len);

  /* The same for a shell. */
  it_cli_t r;
  assert_int_equal(
      it_cli(&r, NULL,
             (const char *const[]){"top", "--once", "--addr", s->addr, NULL}),
      0);
  if (r.status != 0 || !it_has_line_word(r.out, FUNCTION) ||
      !it_has_line_word(r.out, "NAME"))
    fprintf(stderr, "impulse top --once: exit %d\n%s\n%s\n", r.status, r.out,
            r.err);
  assert_int_equal(r.status, 0);
  assert_true(it_has_line_word(r.out, "NAME"));
  assert_true(it_has_line_word(r.out, FUNCTION));
  assert_non_null(strstr(r.out, "impulse "));
  it_cli_free(&r);
  s->test_passed = 1;
}

static void test_dashboard_token(void **state) {
  it_server_t *s = *state;
  need_chromium();
  deploy_and_call(s);

  /* The page is served without the token; /api/state is not. */
  char *page = http_get(s, "/");
  assert_memory_equal(page, "HTTP/1.1 200 ", 13);
  free(page);
  char *api = http_get(s, "/api/state");
  assert_memory_equal(api, "HTTP/1.1 401 ", 13);
  free(api);

  /* Without the token the page asks for it... */
  char url[384];
  snprintf(url, sizeof url, "http://%s/", s->http_addr);
  char *dom = NULL;
  int st = chromium(s, url, (const char *const[]){"--dump-dom", NULL}, &dom);
  if (st != 0 || strstr(dom, "id=\"auth\" class=\"shown\"") == NULL ||
      strstr(dom, "data-function=\"" FUNCTION "\"") != NULL) {
    fprintf(stderr,
            "chromium exit %d; expected the token form, got:\n%.3000s\n", st,
            dom);
    dump_chromium_log(s);
    fail();
  }
  free(dom);

  /* ... and with it in the URL's fragment it shows the functions. */
  snprintf(url, sizeof url, "http://%s/#token=%s", s->http_addr, s->token);
  st = chromium(s, url, (const char *const[]){"--dump-dom", NULL}, &dom);
  expect_function_row(s, st, dom);
  free(dom);
  s->test_passed = 1;
}

TEST_MAIN("integration_dashboard", NULL, NULL,
          IT_SERVER_TEST(test_dashboard, it_fixture_plain),
          IT_SERVER_TEST(test_dashboard_token, it_fixture_invoke_auth))
