/*
 * Gateway: the RPC server on TCP. Authenticates connections (Hello with the
 * admin token or a scoped token), checks each request against the scopes
 * (policy/scopes.c), decodes frames and hands each request to the
 * controller.
 * A frame that is too large or does not decode gets an error reply and the
 * connection is closed; other connections are not affected.
 */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "server/gateway/gateway.h"

#include "base/rpc.h"
#include "core/codec.h"
#include "core/common.h"
#include "core/limits.h"
#include "eventing/publish.h"
#include "eventing/trigger.h"
#include "policy/scopes.h"
#include "server/control/backup.h"
#include "server/control/deploy.h"
#include "server/control/info.h"
#include "server/control/logs.h"
#include "server/control/manage.h"
#include "server/control/secrets.h"
#include "server/control/tokens.h"
#include "server/control/traffic.h"
#include "server/control/upgrade.h"
#include "server/invoke/invoke.h"

typedef struct imp_client_s imp_client_t;

/* A client connection on the RPC port. */
struct imp_client_s {
  imp_conn_t conn;
  imp_gateway_t *gw;
  int admin;
  imp_token_t *token; /* the scoped token of its Hello, a reference */
  int refs;           /* 1 for the open connection + 1 per call */
  unsigned in_flight;
  struct imp_client_s *next, *prev;
};

struct imp_gateway_s {
  imp_server_t *server;
  uv_tcp_t listener;
  imp_client_t clients; /* sentinel */
};

#define MAX_IN_FLIGHT_PER_CLIENT 65536

static void client_free(imp_client_t *client) {
  if (client->token) imp_token_unref(client->token);
  client->prev->next = client->next;
  client->next->prev = client->prev;
  free(client);
}

static void client_unref(imp_client_t *client) {
  if (client->refs <= 0) abort(); /* refcount underflow is a bug */
  if (--client->refs == 0) client_free(client);
}

static void client_reply(imp_client_t *client, const Impulse__Envelope *env) {
  if (client->conn.closing) return;
  int rc = imp_conn_send(&client->conn, env);
  if (rc == IMP_EFRAMETOOBIG)
    imp_conn_send_error(&client->conn, env->id, IMPULSE__ERROR_CODE__TOO_LARGE,
                        "response is larger than the maximum frame size");
}

static void client_error(imp_client_t *client, uint64_t id, int code,
                         const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void client_error(imp_client_t *client, uint64_t id, int code,
                         const char *fmt, ...) {
  if (client->conn.closing) return;
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  imp_conn_send_error(&client->conn, id, code, msg);
}

/* The answer of an invocation: the worker's reply as it came, under the
 * client's request id, or the error the server decided. */
static void on_call_answer(void *arg, uint64_t id, const imp_answer_t *a) {
  imp_client_t *client = arg;
  if (!client->conn.closing) {
    if (a->rest != NULL)
      imp_conn_send_with_id(&client->conn, id, a->rest, a->restlen);
    else
      imp_conn_send_error(&client->conn, id, a->code, a->message);
  }
  client->in_flight--;
  client_unref(client);
}

/* A request answered through the rpc interface: it holds a reference on
 * its client (and counts in its in-flight calls) until it is answered. */
typedef struct gw_rpc_s {
  imp_rpc_t rpc;
  imp_client_t *client;
} gw_rpc_t;

static void rpc_finish(imp_rpc_t *rpc, const Impulse__Envelope *answer) {
  gw_rpc_t *g = IMP_CONTAINER_OF(rpc, gw_rpc_t, rpc);
  client_reply(g->client, answer);
  g->client->in_flight--;
  client_unref(g->client);
  free(g);
}

static const imp_rpc_ops_t rpc_ops = {rpc_finish};

static imp_rpc_t *rpc_new(imp_client_t *client, uint64_t id) {
  gw_rpc_t *g = malloc(sizeof *g);
  if (g == NULL) return NULL;
  g->rpc.ops = &rpc_ops;
  g->rpc.id = id;
  g->client = client;
  client->refs++;
  client->in_flight++;
  return &g->rpc;
}

/* Compares without leaking the position of the first difference. */
static int token_equal(const char *a, const char *b) {
  size_t la = strlen(a), lb = strlen(b);
  unsigned char diff = (unsigned char)(la != lb);
  for (size_t i = 0; i < la && i < lb; i++)
    diff |= (unsigned char)(a[i] ^ b[i]);
  return diff == 0;
}

/* Drops what an earlier Hello granted. */
static void client_forget(imp_client_t *client) {
  client->admin = 0;
  if (client->token) imp_token_unref(client->token);
  client->token = NULL;
}

static void on_hello(imp_client_t *client, Impulse__Envelope *env) {
  imp_server_t *server = client->gw->server;
  const char *token = env->hello->token;
  char msg[256];
  char scope_bufs[IMP_SCOPES_MAX][IMP_TOPIC_MAX + 10];
  char *scopes[IMP_SCOPES_MAX];
  if (token && token[0]) {
    /* A failed Hello never leaves earlier rights. */
    client_forget(client);
    size_t len = strlen(token);
    if (imp_token_is_scoped(token, len)) {
      if (imp_tokens_check(server->tokens, token, len, imp_wall_ms(),
                           &client->token, msg, sizeof msg) != 0) {
        client_error(client, env->id, IMPULSE__ERROR_CODE__UNAUTHENTICATED,
                     "%s", msg);
        impulse__envelope__free_unpacked(env, NULL);
        return;
      }
    } else if (!token_equal(token, server->control.token)) {
      client_error(client, env->id, IMPULSE__ERROR_CODE__UNAUTHENTICATED,
                   "invalid token");
      impulse__envelope__free_unpacked(env, NULL);
      return;
    } else {
      client->admin = 1;
    }
  }
  /* Said who it is: the server's frame limit from now on. */
  client->conn.max_frame = server->cfg.max_frame;
  Impulse__Envelope r = IMPULSE__ENVELOPE__INIT;
  Impulse__HelloResponse ok = IMPULSE__HELLO_RESPONSE__INIT;
  ok.server = "impulse/" IMPULSE_VERSION;
  ok.has_admin = 1;
  ok.admin = client->admin;
  if (client->token) {
    const imp_grant_t *g = &client->token->grant;
    for (unsigned i = 0; i < g->n; i++) {
      scopes[i] = scope_bufs[i];
      imp_scope_format(&g->scopes[i], scope_bufs[i], sizeof scope_bufs[i]);
    }
    ok.n_scopes = g->n;
    ok.scopes = scopes;
    ok.token_id = client->token->id;
  }
  r.id = env->id;
  r.body_case = IMPULSE__ENVELOPE__BODY_HELLO_OK;
  r.hello_ok = &ok;
  client_reply(client, &r);
  impulse__envelope__free_unpacked(env, NULL);
}

/* The function or topic a request names, for scopes limited to one. */
static const char *request_target(const Impulse__Envelope *env) {
  switch (env->body_case) {
    case IMPULSE__ENVELOPE__BODY_INVOKE: return env->invoke->function;
    case IMPULSE__ENVELOPE__BODY_PUBLISH: return env->publish->topic;
    case IMPULSE__ENVELOPE__BODY_ENSURE_TOPIC: return env->ensure_topic->topic;
    default: return NULL;
  }
}

/* 0 when the client may make this request, else it is answered with
 * UNAUTHENTICATED or PERMISSION_DENIED. A scoped token is checked again at
 * each call, so a revocation reaches connections already open. */
static int authorize(imp_client_t *client, const Impulse__Envelope *env) {
  imp_server_t *server = client->gw->server;
  char msg[512];
  if (client->token &&
      imp_token_usable(client->token, imp_wall_ms(), msg, sizeof msg) != 0) {
    client_error(client, env->id, IMPULSE__ERROR_CODE__UNAUTHENTICATED, "%s",
                 msg);
    return -1;
  }
  int code =
      imp_access_decide((int)env->body_case, request_target(env), client->admin,
                        client->token ? &client->token->grant : NULL,
                        !server->cfg.invoke_needs_token, msg, sizeof msg);
  if (code == 0) return 0;
  client_error(client, env->id, code, "%s", msg);
  return -1;
}

static void on_server_info(imp_client_t *client, Impulse__Envelope *env) {
  imp_server_t *server = client->gw->server;
  unsigned warm = imp_fleet_warm(&server->control.fleet);
  Impulse__Envelope r = IMPULSE__ENVELOPE__INIT;
  Impulse__ServerInfoResponse ok = IMPULSE__SERVER_INFO_RESPONSE__INIT;
  ok.version = IMPULSE_VERSION;
  ok.has_max_frame = ok.has_ready = ok.has_uptime_ms = ok.has_functions = 1;
  ok.has_instances = ok.has_warm_pool = ok.has_abi_version = 1;
  ok.has_invoke_needs_token = 1;
  ok.max_frame = (uint32_t)server->cfg.max_frame;
  ok.ready = server->ready;
  ok.uptime_ms = imp_now_ms() - server->started_ms;
  ok.functions = server->control.invoke.registry.count;
  ok.instances = server->control.fleet.ninstances;
  ok.warm_pool = warm;
  ok.abi_version = 1;
  ok.invoke_needs_token = server->cfg.invoke_needs_token;
  ok.sandbox = server->control.fleet.iso.describe;
  ok.has_log_ring_bytes = ok.has_log_rate_bytes = 1;
  ok.log_ring_bytes = server->cfg.log_ring_bytes;
  ok.log_rate_bytes = server->cfg.log_rate_bytes;
  if (server->kafka)
    ok.kafka_bootstrap = (char *)imp_kafka_bootstrap(server->kafka);
  r.id = env->id;
  r.body_case = IMPULSE__ENVELOPE__BODY_SERVER_INFO_OK;
  r.server_info_ok = &ok;
  client_reply(client, &r);
  impulse__envelope__free_unpacked(env, NULL);
}

/* An answer (error, *_ok) is never a request. */
static const char *answer_name(int body_case) {
  const ProtobufCFieldDescriptor *f = protobuf_c_message_descriptor_get_field(
      &impulse__envelope__descriptor, (unsigned)body_case);
  if (f == NULL) return NULL;
  size_t n = strlen(f->name);
  if (strcmp(f->name, "error") == 0 ||
      (n > 3 && strcmp(f->name + n - 3, "_ok") == 0))
    return f->name;
  return NULL;
}

static void on_frame(imp_conn_t *conn, Impulse__Envelope *env, const char *body,
                     size_t len) {
  imp_client_t *client = conn->data;
  imp_server_t *server = client->gw->server;
  const char *answer = answer_name((int)env->body_case);
  if (answer != NULL) {
    client_error(client, env->id, IMPULSE__ERROR_CODE__BAD_REQUEST,
                 "'%s' is an answer, not a request this server takes", answer);
    impulse__envelope__free_unpacked(env, NULL);
    return;
  }
  /* Hello is always allowed: it is how a token is shown. */
  if (env->body_case != IMPULSE__ENVELOPE__BODY_HELLO &&
      authorize(client, env) != 0) {
    impulse__envelope__free_unpacked(env, NULL);
    return;
  }
  if (server->stopping &&
      env->body_case != IMPULSE__ENVELOPE__BODY_SERVER_INFO) {
    client_error(client, env->id, IMPULSE__ERROR_CODE__SHUTTING_DOWN,
                 "server is stopping");
    impulse__envelope__free_unpacked(env, NULL);
    return;
  }
  if (client->in_flight >= MAX_IN_FLIGHT_PER_CLIENT) {
    client_error(client, env->id, IMPULSE__ERROR_CODE__OVERLOADED,
                 "too many calls in flight on this connection (%d)",
                 MAX_IN_FLIGHT_PER_CLIENT);
    impulse__envelope__free_unpacked(env, NULL);
    return;
  }
  switch (env->body_case) {
    case IMPULSE__ENVELOPE__BODY_HELLO: on_hello(client, env); return;
    case IMPULSE__ENVELOPE__BODY_INVOKE:
      /* The call holds a reference on its client until answered. */
      client->refs++;
      client->in_flight++;
      imp_invoke_rpc(&server->control.invoke, env, body, len, on_call_answer,
                     client, env->id);
      return;
    case IMPULSE__ENVELOPE__BODY_SERVER_INFO:
      on_server_info(client, env);
      return;
    default: break;
  }
  /* Every other request is answered through an imp_rpc_t, now or later. */
  imp_rpc_t *rpc = rpc_new(client, env->id);
  if (rpc == NULL) {
    client_error(client, env->id, IMPULSE__ERROR_CODE__INTERNAL,
                 "out of memory");
    impulse__envelope__free_unpacked(env, NULL);
    return;
  }
  switch (env->body_case) {
    case IMPULSE__ENVELOPE__BODY_DEPLOY:
      imp_control_deploy(&server->control, rpc, env);
      break;
    case IMPULSE__ENVELOPE__BODY_DELETE:
      imp_control_delete(&server->control, rpc, env);
      break;
    case IMPULSE__ENVELOPE__BODY_SCALE:
      imp_control_scale(&server->control, rpc, env);
      break;
    case IMPULSE__ENVELOPE__BODY_TRAFFIC:
      imp_control_traffic(&server->control, rpc, env);
      break;
    case IMPULSE__ENVELOPE__BODY_UPGRADE:
      imp_control_upgrade(&server->control, rpc, env);
      break;
    case IMPULSE__ENVELOPE__BODY_LIST:
      imp_control_list(&server->control, rpc, env);
      break;
    case IMPULSE__ENVELOPE__BODY_DESCRIBE:
      imp_control_describe(&server->control, rpc, env);
      break;
    case IMPULSE__ENVELOPE__BODY_RECORD_LIST:
      imp_control_record_list(&server->control, rpc, env);
      break;
    case IMPULSE__ENVELOPE__BODY_BACKUP:
      imp_control_backup(&server->control, rpc, env);
      break;
    case IMPULSE__ENVELOPE__BODY_SECRET_SET:
      imp_control_secret_set(&server->control, rpc, env);
      break;
    case IMPULSE__ENVELOPE__BODY_SECRET_LIST:
      imp_control_secret_list(&server->control, rpc, env);
      break;
    case IMPULSE__ENVELOPE__BODY_SECRET_DELETE:
      imp_control_secret_delete(&server->control, rpc, env);
      break;
    case IMPULSE__ENVELOPE__BODY_LOGS:
      imp_control_logs(&server->control, rpc, env);
      break;
    case IMPULSE__ENVELOPE__BODY_PUBLISH:
      imp_publish_rpc(server->kafka, rpc, env);
      break;
    case IMPULSE__ENVELOPE__BODY_ENSURE_TOPIC:
      imp_publish_ensure_topic_rpc(server->kafka, rpc, env);
      break;
    case IMPULSE__ENVELOPE__BODY_TRIGGER_CREATE:
      imp_triggers_create(server->triggers, rpc, env);
      break;
    case IMPULSE__ENVELOPE__BODY_TRIGGER_DELETE:
      imp_triggers_delete(server->triggers, rpc, env);
      break;
    case IMPULSE__ENVELOPE__BODY_TRIGGER_LIST:
      imp_triggers_list(server->triggers, rpc, env);
      break;
    case IMPULSE__ENVELOPE__BODY_TRIGGER_DESCRIBE:
      imp_triggers_describe(server->triggers, rpc, env);
      break;
    case IMPULSE__ENVELOPE__BODY_TOKEN_CREATE:
      imp_tokens_create(server->tokens, rpc, env, imp_wall_ms());
      break;
    case IMPULSE__ENVELOPE__BODY_TOKEN_LIST:
      imp_tokens_list(server->tokens, rpc, env);
      break;
    case IMPULSE__ENVELOPE__BODY_TOKEN_REVOKE:
      imp_tokens_revoke(server->tokens, rpc, env);
      break;
    default:
      imp_rpc_error(rpc, IMPULSE__ERROR_CODE__BAD_REQUEST,
                    "not a request this server takes (body %d)",
                    env->body_case);
      impulse__envelope__free_unpacked(env, NULL);
      break;
  }
}

static void on_client_error(imp_conn_t *conn, int err) {
  if (err != 0 && err != UV_EOF && err != UV_ECONNRESET)
    IMP_LOG(IMP_LOG_INFO, "client connection closed: %s",
            err <= IMP_EBASE ? imp_strerror(err) : uv_strerror(err));
}

static void on_client_closed(imp_conn_t *conn) {
  client_unref((imp_client_t *)conn->data);
}

static void on_failed_accept_closed(uv_handle_t *h) {
  client_free(IMP_CONTAINER_OF(h, imp_client_t, conn.h.tcp));
}

static void on_connection(uv_stream_t *listener, int status) {
  imp_gateway_t *gw = listener->data;
  imp_server_t *server = gw->server;
  if (status < 0) {
    IMP_LOG(IMP_LOG_WARN, "accept: %s", uv_strerror(status));
    return;
  }
  imp_client_t *client = calloc(1, sizeof *client);
  if (client == NULL) return;
  client->gw = gw;
  client->refs = 1;
  client->next = &gw->clients;
  client->prev = gw->clients.prev;
  gw->clients.prev->next = client;
  gw->clients.prev = client;
  uv_tcp_init(server->loop, &client->conn.h.tcp);
  client->conn.data = client;
  client->conn.on_frame = on_frame;
  client->conn.on_error = on_client_error;
  client->conn.on_closed = on_client_closed;
  if (uv_accept(listener, &client->conn.h.stream) != 0 ||
      imp_conn_start(&client->conn, &server->cl, IMP_PREHELLO_MAX_FRAME) != 0) {
    client->conn.closing = 1;
    uv_close((uv_handle_t *)&client->conn.h.tcp, on_failed_accept_closed);
    return;
  }
  uv_tcp_nodelay(&client->conn.h.tcp, 1);
}

int imp_gateway_start(imp_server_t *server, imp_gateway_t **out) {
  struct sockaddr_storage ss;
  *out = NULL;
  int rc = uv_ip4_addr(server->cfg.listen_host, server->cfg.listen_port,
                       (struct sockaddr_in *)&ss);
  if (rc != 0)
    rc = uv_ip6_addr(server->cfg.listen_host, server->cfg.listen_port,
                     (struct sockaddr_in6 *)&ss);
  if (rc != 0) {
    IMP_LOG(IMP_LOG_ERROR, "invalid listen address '%s' (use an IP address)",
            server->cfg.listen_host);
    return rc;
  }
  imp_gateway_t *gw = calloc(1, sizeof *gw);
  if (gw == NULL) return UV_ENOMEM;
  gw->server = server;
  gw->clients.next = gw->clients.prev = &gw->clients;
  uv_tcp_init(server->loop, &gw->listener);
  gw->listener.data = gw;
  rc = uv_tcp_bind(&gw->listener, (struct sockaddr *)&ss, 0);
  if (rc == 0)
    rc = uv_listen((uv_stream_t *)&gw->listener, 1024, on_connection);
  if (rc != 0) {
    IMP_LOG(IMP_LOG_ERROR, "cannot listen on %s:%d: %s",
            server->cfg.listen_host, server->cfg.listen_port, uv_strerror(rc));
    uv_close((uv_handle_t *)&gw->listener, NULL);
    *out = gw; /* freed with imp_gateway_free() once the loop has run */
    return rc;
  }
  *out = gw;
  return 0;
}

void imp_gateway_stop_listening(imp_gateway_t *gw) {
  if (gw != NULL && !uv_is_closing((uv_handle_t *)&gw->listener))
    uv_close((uv_handle_t *)&gw->listener, NULL);
}

void imp_gateway_stop(imp_gateway_t *gw) {
  if (gw == NULL) return;
  imp_gateway_stop_listening(gw);
  for (imp_client_t *c = gw->clients.next; c != &gw->clients; c = c->next)
    imp_conn_close(&c->conn, 1);
}

void imp_gateway_free(imp_gateway_t *gw) {
  free(gw);
}
