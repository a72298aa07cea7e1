/*
 * Integration test harness: runs a real `impulse serve` (the built binary)
 * in a temporary state directory on a free loopback port, connects clients
 * to it, runs the `impulse` CLI as a subprocess, and always cleans up.
 *
 * The server runs in its own process group (its workers inherit it), gets
 * SIGKILL when the test process dies (PR_SET_PDEATHSIG), and the test
 * process is a child subreaper, so orphaned workers come back to it and can
 * be reaped. Should the test process die before it could clean up (a ctest
 * timeout), a small guardian process per server kills the server's process
 * group (workers stuck in a handler included) and removes the temporary
 * directory. Call the it_server_* functions from the main thread only: the
 * death signal is tied to the thread that forked the server.
 *
 * Every wait here is bounded; nothing blocks forever on a broken server.
 * kcat and `impulse kafka` are in harness_kafka.h, callers under load in
 * harness_load.h; the process, file and control-call helpers the harness
 * shares with the benchmarks are in tests/support/support.h, which this
 * header includes.
 */
#ifndef IT_HARNESS_H
#define IT_HARNESS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "core/codec.h" /* runtime/: the frame codec, for raw-protocol tests */
#include "impulse/client.h"
#include "support.h" /* tests/support: shared with the benchmarks */

#ifndef IMPULSE_BIN
#error "IMPULSE_BIN must be defined by the build (path of the impulse binary)"
#endif
#ifndef IMPULSE_FUNCTIONS_DIR
#error "IMPULSE_FUNCTIONS_DIR must be defined by the build"
#endif

#define IT_MAX_ARGS 24
#define IT_READY_TIMEOUT_MS 15000u /* server start, up to the ready file */
#define IT_STOP_TIMEOUT_MS 10000u  /* SIGTERM until SIGKILL */
#define IT_CLI_TIMEOUT_MS 30000u   /* one CLI run */

/* A server under test. Zero-initialise, then it_server_start(). */
typedef struct it_server_s {
  char root[128];            /* mkdtemp directory holding everything below */
  const char *root_template; /* of root, ending in XXXXXX; NULL:
                                /tmp/impulse-it-XXXXXX; borrowed */
  char state_dir[192];       /* --state-dir */
  char ready_file[192];      /* --ready-file */
  char log_file[192]; /* server stdout + stderr, appended across starts */
  char addr[64];      /* "127.0.0.1:PORT" */
  char http_addr[64]; /* HTTP front end "127.0.0.1:PORT", "" when off */
  int http_port;      /* from the ready file; 0 when off */
  char token[128];    /* contents of STATE/admin.token */
  int port;
  pid_t pid; /* server pid = its process group; 0 if stopped */
  int nargs;
  char *args[IT_MAX_ARGS]; /* extra `serve` flags, owned */
  char bin[256];           /* the `impulse` binary to run; "" = the one built */
  int subreaper;           /* PR_SET_CHILD_SUBREAPER done */
  pid_t guard_pid;         /* guardian process, 0 when none */
  int guard_fd;            /* its pipe: EOF (we died) makes it act */
  int stragglers;          /* workers outlived a clean stop */
  int test_passed;         /* set at a test's end; else the log is printed */
  pid_t old_pgid;          /* group of a server killed alone (its workers) */
  pid_t old_guard_pid;     /* and its guardian */
  int old_guard_fd;
} it_server_t;

/* Creates the temp directory and starts the server with the extra `serve`
 * flags in `extra` (NULL-terminated list, borrowed, may be NULL). Unless
 * `extra` has --http, the HTTP front end listens on a free loopback port
 * (--http 127.0.0.1:0). Waits for the ready file (at most
 * IT_READY_TIMEOUT_MS), takes the HTTP port from it and reads the admin
 * token.
 * Returns 0, or -1 after printing why; call it_server_destroy() either way. */
int it_server_start(it_server_t *server, const char *const *extra);

/* it_server_start() on an existing state directory `state_dir` (borrowed;
 * e.g. a backup) instead of one in the temporary directory; the server's
 * ready file and log are still in its own temporary directory, and
 * `state_dir` is left in place at it_server_destroy(). */
int it_server_start_on(it_server_t *server, const char *state_dir,
                       const char *const *extra);

/* Starts the server again on the same state directory, flags and (when
 * still free) port, after it_server_stop() or it_server_kill9(). */
int it_server_restart(it_server_t *server);

/* SIGTERM, waits up to IT_STOP_TIMEOUT_MS, then SIGKILLs the process group;
 * reaps the server and its workers. Returns the server's exit status
 * (0..255), 128+signal when it died of a signal, or -1 when it had to be
 * killed or was not running. Sets stragglers when worker processes were
 * still alive 2 s after the server itself exited (they are killed then). */
int it_server_stop(it_server_t *server);

/* Stops the server and checks it went well: SIGTERM must end it with exit
 * status 0, no worker may outlive it, and its log (all runs so far) must
 * hold no sanitizer report (AddressSanitizer, LeakSanitizer, UBSan
 * "runtime error:"; lines naming the deliberately faulty example functions
 * in functions/ are ignored). Returns 0, or -1 after printing why. */
int it_server_stop_checked(it_server_t *server);

/* Ends a test's server: it_server_stop_checked() when still running (else
 * only the log scan), prints the log when the test did not set test_passed
 * or a check failed, then destroys everything. Returns 0 or -1. A cmocka
 * per-test teardown returning -1 fails the test; cmocka 1.1 ignores a
 * failing group teardown, so group fixtures end with a test calling
 * it_server_stop_checked() instead. */
int it_server_finish(it_server_t *server);

/* cmocka fixtures: a server with the extra flags in `extra`, stored in
 * *state; the teardown is it_server_finish(). */
int it_fixture_setup(void **state, const char *const *extra);
int it_fixture_teardown(void **state);

/* cmocka setups: it_fixture_setup() with no extra flags, and with
 * --invoke-auth token (invocations need a token too). */
int it_fixture_plain(void **state);
int it_fixture_invoke_auth(void **state);

/* An entry of a cmocka test table (expanded where cmocka.h is included):
 * `test` with its own server, from the cmocka setup `setup` (e.g.
 * it_fixture_plain) to it_fixture_teardown(). */
#define IT_SERVER_TEST(test, setup) \
  cmocka_unit_test_setup_teardown(test, setup, it_fixture_teardown)

/* A server shared by the tests of a cmocka group, with an admin client.
 * The group setup starts it (it_group_setup); each test calls
 * it_group_test_start() first and it_group_test_end() last, so that one
 * that never reached its end counts as failed; a last test stops the
 * server (it_group_stop) because cmocka 1.1 ignores a failing group
 * teardown (it_group_teardown). */
typedef struct it_group_s {
  it_server_t server;
  impulse_client_t *admin; /* connected with the admin token */
  int in_test;             /* a test started and has not reached its end */
  int failed_any;          /* some test did not reach its end */
} it_group_t;

/* A cmocka group setup: allocates a zeroed fixture of `size` bytes that
 * starts with an it_group_t, starts its server with the extra `serve`
 * flags in `extra` (see it_server_start), connects its admin client with
 * a per-call timeout of `timeout_ms`, deploys the example function echo as
 * "echo", then runs `more` (may be NULL) on the fixture for what else the
 * group needs. *state gets the fixture. Returns 0, or -1 after printing
 * the server log, with everything undone and *state NULL. */
int it_group_setup(void **state, size_t size, const char *const *extra,
                   uint32_t timeout_ms, int (*more)(void *fixture));

/* The matching cmocka group teardown: closes the admin client, ends the
 * server (it_server_finish; its log is printed unless every test reached
 * its end) and frees the fixture. Returns 0 or -1. */
int it_group_teardown(void **state);

/* A test of the group (its cmocka state `state`) begins: returns the
 * fixture, *state. */
void *it_group_test_start(void **state);
/* The test reached its end. */
void it_group_test_end(it_group_t *group);

/* Closes the admin client and stops the server, checked
 * (it_server_stop_checked). Returns 0 or -1. */
int it_group_stop(it_group_t *group);

/* The last test of a group's table (a cmocka test, *state the group):
 * the server stops cleanly after all the others, leaving no worker behind
 * and no sanitizer report in its log (it_group_stop), else the test
 * fails. A test and not the group teardown, whose failure cmocka 1.1 does
 * not count. */
void it_group_test_clean_stop(void **state);

/* SIGKILLs the server and all its workers at once (the process group) and
 * reaps them: a simulated machine crash. */
void it_server_kill9(it_server_t *server);

/* SIGKILLs the server process alone: its workers (same process group)
 * live on, to be re-attached by it_server_restart(); they are killed at
 * it_server_destroy() at the latest. */
void it_server_kill9_server_only(it_server_t *server);

/* Stops the server if running (kill -9 fallback), removes the temporary
 * directory and frees what `server` owns. Safe on a half-started server and
 * to call twice. */
void it_server_destroy(it_server_t *server);

/* Prints the last `bytes` bytes of the server log to stderr. */
void it_server_dump_log(const it_server_t *server, size_t bytes);

/* 1 while some process of the server's process group (the server or one
 * of its workers) is alive, 0 when everything is gone. */
int it_server_group_alive(const it_server_t *server);

/* Connects with the admin token (admin != 0) or anonymously (token ""),
 * with the given per-call timeout. Returns the client or NULL after printing
 * why. Free with impulse_client_close(). */
impulse_client_t *it_connect(const it_server_t *server, int admin,
                             uint32_t timeout_ms);
/* it_connect() in a test, which fails when no client comes back. */
impulse_client_t *it_connect_ok(const it_server_t *server, int admin,
                                uint32_t timeout_ms);

/* Output of a CLI run. */
typedef struct it_cli_s {
  int status; /* exit code, 128+signal, or -1 when killed on timeout */
  char *out;  /* stdout, NUL-terminated (not counted in out_len) */
  size_t out_len;
  char *err; /* stderr, NUL-terminated */
  size_t err_len;
} it_cli_t;

/*
 * Runs `impulse ARGV...` (argv is NULL-terminated, argv[0] is the first
 * argument after the binary, e.g. "invoke"). The child gets this process's
 * environment without IMPULSE_ADDR and IMPULSE_TOKEN, plus the "NAME=VALUE"
 * entries of `env` (NULL-terminated, may be NULL); stdin is /dev/null.
 * Killed after IT_CLI_TIMEOUT_MS. Returns 0 with *res filled (free with
 * it_cli_free()), or -1 when the command could not be run.
 */
int it_cli(it_cli_t *res, const char *const *env, const char *const *argv);
/* it_cli() with stdout on a terminal (a pseudo-terminal in raw mode: the
 * bytes written arrive unchanged in res->out). */
int it_cli_tty(it_cli_t *res, const char *const *env, const char *const *argv);
void it_cli_free(it_cli_t *res);

/* it_cli() with the arguments as a list: IT_CLI(&res, env, "ls", "--addr",
 * server->addr). */
#define IT_CLI(res, env, ...) \
  it_cli((res), (env), (const char *const[]){__VA_ARGS__, NULL})

/* it_cli() of `impulse ARGV... --addr ADDR --token TOKEN`: a command run
 * by the server's admin, with no extra environment. */
int it_cli_admin(it_cli_t *res, const it_server_t *server,
                 const char *const *argv);
#define IT_CLI_ADMIN(res, server, ...) \
  it_cli_admin((res), (server), (const char *const[]){__VA_ARGS__, NULL})

/* `impulse describe NAME` run by the admin: the value of its line starting
 * with `key` (e.g. "min instances:"; see it_line_value) in buf. Returns
 * buf, or NULL after saying why (the run failed, exited non-zero, or has
 * no such line). */
char *it_describe_field(const it_server_t *server, const char *name,
                        const char *key, char *buf, size_t len);

/* Whether `impulse describe NAME`, run once by the admin, shows each field
 * of `fields` (NULL-terminated pairs of a key, e.g. "min instances:", and
 * the value its line must have; see it_line_value): 1 when all do, 0 after
 * saying which did not and what it printed. */
int it_describe_shows(const it_server_t *server, const char *name,
                      const char *const *fields);
#define IT_DESCRIBE_SHOWS(server, name, ...) \
  it_describe_shows((server), (name), (const char *const[]){__VA_ARGS__, NULL})

/* `impulse ls` run by the admin: 1 when it lists function `name` (a line
 * starting with that word), 0 when it does not, or -1 after saying why the
 * run failed or exited non-zero. */
int it_lists(const it_server_t *server, const char *name);

/* Runs argv (argv[0] looked up on PATH) with stdin from the file `in`
 * (NULL: /dev/null), stdout into *out when out is not NULL (malloc'd,
 * NUL-terminated, free() it; NULL when the run could not start) and
 * stderr on ours. Killed after `ms`, which is then said on stderr. Returns
 * the exit code, or -1 when it was killed or could not be run. */
int it_run(const char *const *argv, const char *in, char **out, unsigned ms);

/* Whether the program `prog` is installed (/usr/bin or /usr/local/bin). */
int it_have(const char *prog);

/* In a cmocka test: fails the test, naming `prog` and `make deps`, unless
 * it is installed (it_have). The tools scripts/install-deps.sh installs
 * (curl, kcat, chromium, ...) are part of the test environment: a test
 * that needs one never passes without it. */
void it_require(const char *prog);

/* In a cmocka test: skips it because this machine cannot run it (`why`,
 * printed; never for a missing tool, see it_require). The program then
 * exits with IT_SKIP_STATUS unless a test failed (TEST_MAIN,
 * tests/support/test_main.h), which ctest reports as skipped (the
 * integration tests' SKIP_RETURN_CODE) and .ci/run refuses. */
#define IT_SKIP_STATUS 77
void it_skip(const char *why);

/* Last whitespace-separated word of `s` (trailing space ignored) copied to
 * buf; returns buf. */
char *it_last_word(const char *s, char *buf, size_t len);

/* Finds a line of `text` starting with `prefix` and returns the rest after
 * leading spaces (up to the end of line) in buf, or NULL. */
char *it_line_value(const char *text, const char *prefix, char *buf,
                    size_t len);

/* Whether `text` has a line whose first word is `word`. */
int it_has_line_word(const char *text, const char *word);

/* Path of a built example function: IMPULSE_FUNCTIONS_DIR/NAME.so. */
void it_function_path(const char *name, char *buf, size_t len);

/* Reads a whole file into a malloc'd buffer; returns 0 or -1. */
int it_read_file(const char *path, char **data, size_t *len);

/* it_read_file() of the example function `fn` (it_function_path): its
 * bytes, e.g. to deploy them by hand. */
int it_read_function(const char *fn, char **data, size_t *len);

/* Writes bytes to path; returns 0 or -1. */
int it_write_file(const char *path, const void *data, size_t len);

/* it_deploy_file() of the example function `fn` (it_function_path);
 * version may be NULL. */
int it_deploy_fn(impulse_client_t *client, const char *name, const char *fn,
                 const impulse_deploy_opts_t *opts, uint32_t *version);

/* it_deploy_fn() on a connection of its own as the server's admin, with a
 * per-call timeout of `timeout_ms`. Returns the client status
 * (IMPULSE_S_CONNECTION when it could not connect). */
int it_deploy_fn_on(const it_server_t *server, uint32_t timeout_ms,
                    const char *name, const char *fn,
                    const impulse_deploy_opts_t *opts, uint32_t *version);

/* Deploys the file at `path` as `name`. Returns the client status; on
 * success *version gets the new version. */
int it_deploy_file(impulse_client_t *client, const char *name, const char *path,
                   const impulse_deploy_opts_t *opts, uint32_t *version);

/* Invokes `function` with a NUL-terminated payload. Returns the transport
 * status when no answer came, else the answer's status; *out gets the
 * response (free with impulse_response_free()) whenever an answer came. */
int it_invoke(impulse_client_t *client, const char *function,
              const char *payload, impulse_response_t **out);

/* Whether `function` answers the NUL-terminated `payload` with status OK,
 * exactly the bytes of `want` (NUL-terminated) and, unless `version` is 0,
 * from that version: 1, or 0 after saying what came instead. */
int it_answers(impulse_client_t *client, const char *function,
               const char *payload, const char *want, uint32_t version);

/* ---- raw protocol (for tests that speak the wire format themselves) ------ */

/* A blocking TCP connection to the server's RPC port, or -1. */
int it_raw_connect(const it_server_t *server);

/* A blocking TCP connection to the server's HTTP port, or -1. */
int it_http_connect(const it_server_t *server);

/* Sends all bytes. Returns 0, 1 when the peer had hung up (EPIPE or
 * ECONNRESET), -1 on another error. */
int it_raw_send(int fd, const void *data, size_t len);

/* Sends one framed envelope (see it_raw_send for the result). */
int it_raw_send_env(int fd, const Impulse__Envelope *env);

/* Reads until the peer closes or `ms` pass; *closed says which. Returns
 * the bytes read (malloc'd, NUL-terminated; free() it), or NULL when out
 * of memory. */
char *it_raw_read_all(int fd, unsigned ms, int *closed);

/* Reads one frame within `ms`; returns the envelope (free with
 * impulse__envelope__free_unpacked(env, NULL)) or NULL on timeout, close
 * or an undecodable frame. Bytes after the frame are lost: use it for
 * request/response exchanges or keep reading with it only. */
Impulse__Envelope *it_raw_read_frame(int fd, unsigned ms);

/* Sends `env` (borrowed) and reads the one frame that answers it within
 * `ms` (it_raw_read_frame): the answer, or NULL when it could not be sent
 * or none came. */
Impulse__Envelope *it_raw_call(int fd, const Impulse__Envelope *env,
                               unsigned ms);

/* The value of the /metrics sample `series` (its exact text up to the
 * space, e.g. "impulse_store_synced_writes_total" or
 * "impulse_invocations_total{function=\"f\",status=\"ok\"}"), read with
 * one GET on the HTTP port: 0 with *value, or -1 after saying why (no
 * answer, no such line). */
int it_metric(const it_server_t *server, const char *series, double *value);

/* impulse_store_synced_writes_total of the server (it_metric), which must
 * be readable: the state store's synced write batches so far. */
uint64_t it_synced_writes(const it_server_t *server);

/* In a cmocka test: the server's state store made exactly `want` synced
 * writes since `before` (a reading of it_synced_writes()), else the test
 * fails naming `what`: a control change acknowledged after one fsync'd
 * batch, not after a write only the page cache holds (which kill -9
 * cannot tell apart). */
void it_expect_synced(const it_server_t *server, uint64_t before, uint64_t want,
                      const char *what);

/* Monotonic milliseconds. */
uint64_t it_now_ms(void);

/* Sleeps `ms` milliseconds. */
void it_sleep_ms(unsigned ms);

#endif
