/*
 * Scoped tokens (docs/security.md), against a real server run with
 * --invoke-auth token:
 * - the matrix: for each caller (the admin token, a scoped token of each
 *   kind, no token, a revoked token, a garbage token) and each operation
 *   (deploy, delete, scale, invoke f1/f2, publish t1/t2, ls, describe,
 *   record ls, GET /api/state, POST /function/f1, token create), the exact
 *   answer: allowed, UNAUTHENTICATED (HTTP 401) or PERMISSION_DENIED (HTTP
 *   403). The revoked token's connection said Hello before the revocation.
 * - `token ls` never prints a secret, and no file of the state directory
 *   holds one;
 * - a token survives kill -9 of the server once `token create` answered;
 * - under --invoke-auth open (the loopback default), anonymous callers may
 *   invoke but record ls and /api/state still need read; with HTTP on a
 *   non-loopback address the default is token, and the log says why;
 * - the embedded Kafka cluster listens on loopback only.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "harness.h"
#include "tests/support/test_main.h"

#define CALL_TIMEOUT_MS 20000u

typedef struct fixture_s {
  it_group_t group; /* first: it_group_setup() allocates the fixture */
} fixture_t;

/* ---- helpers ------------------------------------------------------------- */

/* `token create` as `client`: the token in out (IMP_TOKEN_LEN + 1 bytes)
 * and its id in id (may be NULL). Returns the client status. */
static int create_token(impulse_client_t *client, const char *name,
                        const char *const *scopes, char *out, char *id) {
  Impulse__TokenCreateRequest req = IMPULSE__TOKEN_CREATE_REQUEST__INIT;
  size_t n = 0;
  while (scopes[n]) n++;
  req.n_scopes = n;
  req.scopes = (char **)scopes;
  req.name = (char *)name;
  Impulse__Envelope *resp = NULL;
  int rc = sup_call(client, IMPULSE__ENVELOPE__BODY_TOKEN_CREATE, &req,
                    IMPULSE__ENVELOPE__BODY_TOKEN_CREATE_OK, &resp);
  if (rc == 0) {
    snprintf(out, 100, "%s", resp->token_create_ok->token);
    if (id) snprintf(id, 17, "%s", resp->token_create_ok->info->id);
  }
  impulse__envelope__free_unpacked(resp, NULL);
  return rc;
}

static int revoke_token(impulse_client_t *client, const char *which) {
  Impulse__TokenRevokeRequest req = IMPULSE__TOKEN_REVOKE_REQUEST__INIT;
  req.token = (char *)which;
  Impulse__Envelope *resp = NULL;
  int rc = sup_call(client, IMPULSE__ENVELOPE__BODY_TOKEN_REVOKE, &req,
                    IMPULSE__ENVELOPE__BODY_TOKEN_REVOKE_OK, &resp);
  impulse__envelope__free_unpacked(resp, NULL);
  return rc;
}

static int publish(impulse_client_t *client, const char *topic) {
  Impulse__PublishRequest req = IMPULSE__PUBLISH_REQUEST__INIT;
  req.topic = (char *)topic;
  req.has_value = 1;
  req.value.data = (uint8_t *)"v";
  req.value.len = 1;
  Impulse__Envelope *resp = NULL;
  int rc = sup_call(client, IMPULSE__ENVELOPE__BODY_PUBLISH, &req,
                    IMPULSE__ENVELOPE__BODY_PUBLISH_OK, &resp);
  impulse__envelope__free_unpacked(resp, NULL);
  return rc;
}

static int record_ls(impulse_client_t *client, const char *fn) {
  Impulse__RecordListRequest req = IMPULSE__RECORD_LIST_REQUEST__INIT;
  req.name = (char *)fn;
  Impulse__Envelope *resp = NULL;
  int rc = sup_call(client, IMPULSE__ENVELOPE__BODY_RECORD_LIST, &req,
                    IMPULSE__ENVELOPE__BODY_RECORD_LIST_OK, &resp);
  impulse__envelope__free_unpacked(resp, NULL);
  return rc;
}

static int list(impulse_client_t *client) {
  Impulse__ListRequest req = IMPULSE__LIST_REQUEST__INIT;
  Impulse__Envelope *resp = NULL;
  int rc = sup_call(client, IMPULSE__ENVELOPE__BODY_LIST, &req,
                    IMPULSE__ENVELOPE__BODY_LIST_OK, &resp);
  impulse__envelope__free_unpacked(resp, NULL);
  return rc;
}

/* The error message of the last invoke() that failed with an answer. */
static char invoke_error[512];

static int invoke(impulse_client_t *client, const char *fn) {
  impulse_response_t *r = NULL;
  int rc = impulse_invoke(client, fn, "hi", 2, NULL, &r);
  if (rc == 0 && r->status != 0) {
    rc = r->status;
    snprintf(invoke_error, sizeof invoke_error, "%s", r->error ? r->error : "");
  } else if (rc != 0) {
    snprintf(invoke_error, sizeof invoke_error, "%s",
             impulse_client_error(client));
  }
  impulse_response_free(r);
  return rc;
}

/* The HTTP status curl got for `method` `path` with `token` as a bearer
 * token (NULL: no Authorization header). */
static int http_status(const it_server_t *s, const char *method,
                       const char *path, const char *token) {
  char url[256], auth[200];
  snprintf(url, sizeof url, "http://%s%s", s->http_addr, path);
  snprintf(auth, sizeof auth, "Authorization: Bearer %s", token ? token : "");
  const char *argv[20];
  int n = 0;
  argv[n++] = "curl";
  argv[n++] = "-sS";
  argv[n++] = "--max-time";
  argv[n++] = "20";
  argv[n++] = "-o";
  argv[n++] = "/dev/null";
  argv[n++] = "-w";
  argv[n++] = "%{http_code}";
  argv[n++] = "-X";
  argv[n++] = method;
  if (strcmp(method, "POST") == 0) {
    argv[n++] = "--data-binary";
    argv[n++] = "x";
  }
  if (token) {
    argv[n++] = "-H";
    argv[n++] = auth;
  }
  argv[n++] = url;
  argv[n] = NULL;
  char *out = NULL;
  it_run(argv, NULL, &out, 30000);
  int code = out ? atoi(out) : 0;
  free(out);
  return code;
}

static int http_of(int status) {
  switch (status) {
    case IMPULSE_S_OK: return 200;
    case IMPULSE_S_UNAUTHENTICATED: return 401;
    case IMPULSE_S_PERMISSION_DENIED: return 403;
    default: return 0;
  }
}

/* ---- the matrix ---------------------------------------------------------- */

enum {
  OP_DEPLOY,
  OP_DELETE,
  OP_SCALE,
  OP_INVOKE_F1,
  OP_INVOKE_F2,
  OP_PUBLISH_T1,
  OP_PUBLISH_T2,
  OP_LS,
  OP_DESCRIBE,
  OP_RECORD_LS,
  OP_HTTP_STATE,
  OP_HTTP_INVOKE,
  OP_TOKEN_CREATE,
  OP_COUNT
};

static const char *const op_names[OP_COUNT] = {
    "deploy",      "delete",       "scale",          "invoke f1",
    "invoke f2",   "publish t1",   "publish t2",     "ls",
    "describe f1", "record ls f1", "GET /api/state", "POST /function/f1",
    "token create"};

#define Y IMPULSE_S_OK
#define U IMPULSE_S_UNAUTHENTICATED
#define D IMPULSE_S_PERMISSION_DENIED

typedef struct caller_s {
  const char *label;
  const char *scopes[3]; /* a scoped token with these; none: see kind */
  int kind;              /* 0 scoped, 1 admin file, 2 none, 3 revoked, 4 junk */
  int expect[OP_COUNT];
} caller_t;

/* clang-format off */
static const caller_t callers[] = {
  /*                                   dep del sca if1 if2 pt1 pt2 ls  des rec sta hin tok */
  {"admin token", {NULL}, 1,           {Y, Y, Y, Y, Y, Y, Y, Y, Y, Y, Y, Y, Y}},
  {"admin", {"admin"}, 0,              {Y, Y, Y, Y, Y, Y, Y, Y, Y, Y, Y, Y, Y}},
  {"deploy", {"deploy"}, 0,            {Y, Y, Y, D, D, D, D, D, D, D, D, D, D}},
  {"invoke", {"invoke"}, 0,            {D, D, D, Y, Y, D, D, D, D, D, D, Y, D}},
  {"invoke:f1", {"invoke:f1"}, 0,      {D, D, D, Y, D, D, D, D, D, D, D, Y, D}},
  {"publish", {"publish"}, 0,          {D, D, D, D, D, Y, Y, D, D, D, D, D, D}},
  {"publish:t1", {"publish:t1"}, 0,    {D, D, D, D, D, Y, D, D, D, D, D, D, D}},
  {"read", {"read"}, 0,                {D, D, D, D, D, D, D, Y, Y, Y, Y, D, D}},
  {"no token", {NULL}, 2,              {U, U, U, U, U, U, U, U, U, U, U, U, U}},
  {"revoked", {"admin"}, 3,            {U, U, U, U, U, U, U, U, U, U, U, U, U}},
  {"garbage", {NULL}, 4,               {U, U, U, U, U, U, U, U, U, U, U, U, U}},
};
/* clang-format on */

static int run_op(fixture_t *f, int op, impulse_client_t *c, int connect_rc,
                  const char *token, size_t row) {
  it_server_t *s = &f->group.server;
  char name[32], tok[128];
  snprintf(name, sizeof name, "d%zu", row);
  /* The HTTP routes are checked on their own. */
  if (op == OP_HTTP_STATE) return http_status(s, "GET", "/api/state", token);
  if (op == OP_HTTP_INVOKE)
    return http_status(s, "POST", "/function/f1", token);
  if (c == NULL) return connect_rc;
  switch (op) {
    case OP_DEPLOY: return it_deploy_fn(c, name, "echo", NULL, NULL);
    case OP_DELETE: return impulse_delete(c, name);
    case OP_SCALE: return impulse_scale(c, "f1", 0, 3);
    case OP_INVOKE_F1: return invoke(c, "f1");
    case OP_INVOKE_F2: return invoke(c, "f2");
    case OP_PUBLISH_T1: return publish(c, "t1");
    case OP_PUBLISH_T2: return publish(c, "t2");
    case OP_LS: return list(c);
    case OP_DESCRIBE: {
      Impulse__Envelope *resp = NULL;
      int rc = sup_describe(c, "f1", &resp);
      impulse__envelope__free_unpacked(resp, NULL);
      return rc;
    }
    case OP_RECORD_LS: return record_ls(c, "f1");
    case OP_TOKEN_CREATE: {
      static const char *const sc[] = {"read", NULL};
      char tname[32];
      snprintf(tname, sizeof tname, "made-by-%zu", row);
      return create_token(c, tname, sc, tok, NULL);
    }
    default: return -999;
  }
}

static void test_matrix(void **state) {
  fixture_t *f = it_group_test_start(state);
  it_server_t *s = &f->group.server;
  impulse_client_t *admin = f->group.admin;
  it_require("curl");
  size_t failures = 0;
  for (size_t row = 0; row < sizeof callers / sizeof callers[0]; row++) {
    const caller_t *cl = &callers[row];
    char token[128] = "", id[17] = "";
    if (cl->kind == 1) snprintf(token, sizeof token, "%s", s->token);
    if (cl->kind == 0 || cl->kind == 3)
      assert_int_equal(create_token(admin, NULL, cl->scopes, token, id),
                       IMPULSE_S_OK);
    if (cl->kind == 4)
      snprintf(token, sizeof token,
               "imp_0123456789abcdef_"
               "00000000000000000000000000000000000000000000000000000000000000"
               "00");
    impulse_client_t *c = NULL;
    int crc = impulse_client_connect(s->addr, token, &c);
    if (crc != 0) {
      impulse_client_close(c);
      c = NULL;
    }
    if (cl->kind == 3) {
      /* Connected with it, then revoked: the next call is refused. */
      assert_int_equal(crc, IMPULSE_S_OK);
      assert_int_equal(revoke_token(admin, id), IMPULSE_S_OK);
      impulse_client_t *c2 = NULL;
      assert_int_equal(impulse_client_connect(s->addr, token, &c2),
                       IMPULSE_S_UNAUTHENTICATED);
      impulse_client_close(c2);
    }
    if (c) impulse_client_set_timeout(c, CALL_TIMEOUT_MS);
    for (int op = 0; op < OP_COUNT; op++) {
      int http = op == OP_HTTP_STATE || op == OP_HTTP_INVOKE;
      int want = http ? http_of(cl->expect[op]) : cl->expect[op];
      int got = run_op(f, op, c, crc, cl->kind == 2 ? NULL : token, row);
      if (got != want) {
        failures++;
        fprintf(stderr, "%s x %s: got %d (%s), want %d\n", cl->label,
                op_names[op], got, http ? "http" : impulse_status_name(got),
                want);
        if (c && !http && got != 0)
          fprintf(stderr, "  message: %s\n", impulse_client_error(c));
      } else if (!http && c && (got == D || got == U)) {
        /* The message names the scope needed. */
        const char *msg = op == OP_INVOKE_F1 || op == OP_INVOKE_F2
                              ? invoke_error
                              : impulse_client_error(c);
        if (got == D && strstr(msg, "needs scope") == NULL) {
          failures++;
          fprintf(stderr, "%s x %s: message '%s' names no scope\n", cl->label,
                  op_names[op], msg);
        }
      }
    }
    impulse_client_close(c);
  }
  assert_int_equal(failures, 0);
  it_group_test_end(&f->group);
}

/* ---- the secret ---------------------------------------------------------- */

/* 1 when some file under `dir` contains `needle`. */
static int tree_contains(const char *dir, const char *needle) {
  const char *argv[] = {"grep", "-r", "-l", "-a", "-F", needle, dir, NULL};
  char *out = NULL;
  int st = it_run(argv, NULL, &out, 30000);
  free(out);
  return st == 0;
}

static void test_secret_never_shown(void **state) {
  fixture_t *f = it_group_test_start(state);
  it_server_t *s = &f->group.server;
  it_cli_t res;
  const char *const create[] = {"token",  "create", "--scope", "invoke:f1",
                                "--name", "ci-bot", NULL};
  assert_int_equal(it_cli_admin(&res, s, create), 0);
  assert_int_equal(res.status, 0);
  char token[128];
  assert_int_equal(sscanf(res.out, "%127s", token), 1);
  assert_int_equal(strncmp(token, "imp_", 4), 0);
  assert_int_equal(strlen(token), 4 + 16 + 1 + 64);
  const char *secret = token + 4 + 16 + 1;
  char id[17];
  memcpy(id, token + 4, 16);
  id[16] = '\0';
  it_cli_free(&res);

  const char *const ls[] = {"token", "ls", NULL};
  assert_int_equal(it_cli_admin(&res, s, ls), 0);
  assert_int_equal(res.status, 0);
  assert_non_null(strstr(res.out, id));
  assert_non_null(strstr(res.out, "ci-bot"));
  assert_non_null(strstr(res.out, "invoke:f1"));
  assert_null(strstr(res.out, secret));
  assert_null(strstr(res.err, secret));
  it_cli_free(&res);
  /* Nor is it in the state directory (the store keeps its hash). */
  assert_false(tree_contains(s->state_dir, secret));

  /* Bad input: each gets a clear refusal. */
  const char *const bad_scope[] = {"token", "create", "--scope", "root", NULL};
  assert_int_equal(it_cli_admin(&res, s, bad_scope), 0);
  assert_int_equal(res.status, 1);
  assert_non_null(strstr(res.err, "unknown scope 'root'"));
  it_cli_free(&res);
  const char *const dup[] = {"token",  "create", "--scope", "read",
                             "--name", "ci-bot", NULL};
  assert_int_equal(it_cli_admin(&res, s, dup), 0);
  assert_int_equal(res.status, 1);
  assert_non_null(strstr(res.err, "EXISTS"));
  it_cli_free(&res);
  const char *const no_scope[] = {"token", "create", NULL};
  assert_int_equal(it_cli_admin(&res, s, no_scope), 0);
  assert_int_equal(res.status, 2);
  assert_non_null(strstr(res.err, "--scope is required"));
  it_cli_free(&res);
  const char *const unknown[] = {"token", "revoke", "nobody", NULL};
  assert_int_equal(it_cli_admin(&res, s, unknown), 0);
  assert_int_equal(res.status, 1);
  assert_non_null(strstr(res.err, "NOT_FOUND"));
  it_cli_free(&res);

  /* The CLI with a token without the scope: PERMISSION_DENIED, exit 1. */
  assert_int_equal(IT_CLI(&res, NULL, "record", "ls", "f1", "--addr", s->addr,
                          "--token", token),
                   0);
  assert_int_equal(res.status, 1);
  assert_non_null(strstr(res.err, "PERMISSION_DENIED"));
  assert_non_null(strstr(res.err, "needs scope 'read'"));
  it_cli_free(&res);

  const char *const revoke[] = {"token", "revoke", "ci-bot", NULL};
  assert_int_equal(it_cli_admin(&res, s, revoke), 0);
  assert_int_equal(res.status, 0);
  assert_non_null(strstr(res.out, id));
  it_cli_free(&res);
  it_group_test_end(&f->group);
}

/* ---- durability ---------------------------------------------------------- */

static void test_survives_kill9(void **state) {
  fixture_t *f = it_group_test_start(state);
  it_server_t *s = &f->group.server;
  static const char *const sc[] = {"invoke:f1", NULL};
  char token[128], id[17];
  uint64_t synced = it_synced_writes(s);
  assert_int_equal(create_token(f->group.admin, "durable", sc, token, id),
                   IMPULSE_S_OK);
  it_expect_synced(s, synced, 1, "token create");
  /* A revoked one must stay revoked: its revocation is synced too. */
  char gone[128], gone_id[17];
  assert_int_equal(create_token(f->group.admin, "gone", sc, gone, gone_id),
                   IMPULSE_S_OK);
  synced = it_synced_writes(s);
  assert_int_equal(revoke_token(f->group.admin, gone_id), IMPULSE_S_OK);
  it_expect_synced(s, synced, 1, "token revoke");
  impulse_client_close(f->group.admin);
  f->group.admin = NULL;
  it_server_kill9(s);
  assert_int_equal(it_server_restart(s), 0);
  f->group.admin = it_connect_ok(s, 1, CALL_TIMEOUT_MS);
  impulse_client_t *c = NULL;
  assert_int_equal(impulse_client_connect(s->addr, token, &c), IMPULSE_S_OK);
  impulse_client_set_timeout(c, CALL_TIMEOUT_MS);
  assert_int_equal(invoke(c, "f1"), IMPULSE_S_OK);
  assert_int_equal(invoke(c, "f2"), IMPULSE_S_PERMISSION_DENIED);
  impulse_client_close(c);
  assert_int_equal(impulse_client_connect(s->addr, gone, &c),
                   IMPULSE_S_UNAUTHENTICATED);
  impulse_client_close(c);
  it_group_test_end(&f->group);
}

/* ---- Kafka on loopback --------------------------------------------------- */

static void test_kafka_loopback(void **state) {
  fixture_t *f = it_group_test_start(state);
  Impulse__Envelope *resp = NULL;
  assert_int_equal(sup_server_info(f->group.admin, &resp), IMPULSE_S_OK);
  char boot[512];
  snprintf(boot, sizeof boot, "%s",
           resp->server_info_ok->kafka_bootstrap
               ? resp->server_info_ok->kafka_bootstrap
               : "");
  impulse__envelope__free_unpacked(resp, NULL);
  assert_true(boot[0] != '\0');
  /* A non-loopback IPv4 address of this machine, if it has one. */
  struct ifaddrs *ifs = NULL, *i;
  struct in_addr other = {0};
  int have_other = 0;
  if (getifaddrs(&ifs) == 0)
    for (i = ifs; i && !have_other; i = i->ifa_next)
      if (i->ifa_addr && i->ifa_addr->sa_family == AF_INET) {
        struct in_addr a = ((struct sockaddr_in *)i->ifa_addr)->sin_addr;
        if ((ntohl(a.s_addr) >> 24) != 127) other = a, have_other = 1;
      }
  freeifaddrs(ifs);
  char *save = NULL;
  for (char *b = strtok_r(boot, ",", &save); b;
       b = strtok_r(NULL, ",", &save)) {
    char *colon = strrchr(b, ':');
    assert_non_null(colon);
    *colon = '\0';
    assert_string_equal(b, "127.0.0.1");
    int port = atoi(colon + 1);
    if (!have_other) continue;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)port),
                             .sin_addr = other};
    int rc = connect(fd, (struct sockaddr *)&sa, sizeof sa);
    int err = errno;
    close(fd);
    assert_int_equal(rc, -1);
    assert_int_equal(err, ECONNREFUSED);
  }
  if (!have_other)
    fprintf(stderr, "no non-loopback address: bootstrap string checked\n");
  it_group_test_end(&f->group);
}

/* ---- the default of --invoke-auth ---------------------------------------- */

static int log_has(const it_server_t *s, const char *text) {
  char *data = NULL;
  size_t len;
  if (it_read_file(s->log_file, &data, &len) != 0) return 0;
  int has = strstr(data, text) != NULL;
  free(data);
  return has;
}

static void test_open_default(void **state) {
  (void)state;
  it_server_t s = {0};
  assert_int_equal(it_server_start(&s, NULL), 0);
  assert_true(log_has(&s,
                      "invoke auth: open (default: RPC and HTTP listen "
                      "on loopback addresses only)"));
  impulse_client_t *admin = it_connect_ok(&s, 1, CALL_TIMEOUT_MS);
  assert_int_equal(it_deploy_fn(admin, "f1", "echo", NULL, NULL), 0);
  static const char *const sc[] = {"read", NULL};
  char token[128];
  assert_int_equal(create_token(admin, NULL, sc, token, NULL), 0);
  impulse_client_t *anon = it_connect_ok(&s, 0, CALL_TIMEOUT_MS);
  assert_int_equal(invoke(anon, "f1"), IMPULSE_S_OK);
  assert_int_equal(list(anon), IMPULSE_S_OK);
  /* Payloads are never open. */
  assert_int_equal(record_ls(anon, "f1"), IMPULSE_S_UNAUTHENTICATED);
  impulse_client_t *reader = NULL;
  assert_int_equal(impulse_client_connect(s.addr, token, &reader), 0);
  assert_int_equal(record_ls(reader, "f1"), IMPULSE_S_OK);
  /* A token never gives less than no token. */
  assert_int_equal(invoke(reader, "f1"), IMPULSE_S_OK);
  it_require("curl");
  assert_int_equal(http_status(&s, "GET", "/api/state", NULL), 401);
  assert_int_equal(http_status(&s, "GET", "/api/state", token), 200);
  assert_int_equal(http_status(&s, "POST", "/function/f1", NULL), 200);
  impulse_client_close(reader);
  impulse_client_close(anon);
  impulse_client_close(admin);
  s.test_passed = 1;
  assert_int_equal(it_server_finish(&s), 0);
  it_server_destroy(&s);
}

static void test_exposed_default(void **state) {
  (void)state;
  it_server_t s = {0};
  static const char *const extra[] = {"--http", "0.0.0.0:0", NULL};
  assert_int_equal(it_server_start(&s, extra), 0);
  assert_true(log_has(&s,
                      "invoke auth: token (default: HTTP listens on "
                      "0.0.0.0, not a loopback address)"));
  impulse_client_t *anon = it_connect_ok(&s, 0, CALL_TIMEOUT_MS);
  assert_int_equal(invoke(anon, "f1"), IMPULSE_S_UNAUTHENTICATED);
  assert_int_equal(list(anon), IMPULSE_S_UNAUTHENTICATED);
  impulse_client_close(anon);
  s.test_passed = 1;
  assert_int_equal(it_server_finish(&s), 0);
  it_server_destroy(&s);
}

/* ---- the group ----------------------------------------------------------- */

static int more_setup(void *fixture) {
  fixture_t *f = fixture;
  impulse_client_t *a = f->group.admin;
  if (it_deploy_fn(a, "f1", "echo", NULL, NULL) != 0 ||
      it_deploy_fn(a, "f2", "echo", NULL, NULL) != 0)
    return -1;
  if (sup_ensure_topic(a, "t1", 1, NULL) != 0 ||
      sup_ensure_topic(a, "t2", 1, NULL) != 0)
    return -1;
  /* A recorded call, so record ls has something to show. */
  return invoke(a, "f1");
}

static int group_setup(void **state) {
  static const char *const extra[] = {"--invoke-auth", "token", NULL};
  return it_group_setup(state, sizeof(fixture_t), extra, CALL_TIMEOUT_MS,
                        more_setup);
}

TEST_MAIN("integration_tokens", group_setup, it_group_teardown,
          cmocka_unit_test(test_matrix),
          cmocka_unit_test(test_secret_never_shown),
          cmocka_unit_test(test_survives_kill9),
          cmocka_unit_test(test_kafka_loopback),
          cmocka_unit_test(test_open_default),
          cmocka_unit_test(test_exposed_default),
          cmocka_unit_test(it_group_test_clean_stop))
