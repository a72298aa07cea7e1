/*
 * Gateway: the RPC server on TCP. Authenticates connections (Hello with the
 * admin token or a scoped token), checks each request against the scopes
 * (policy/scopes.c), decodes frames and hands each request to the
 * controller.
 * A frame that is too large or does not decode gets an error reply and the
 * connection is closed; other connections are not affected.
 *
 * Connections are capped per peer and in all (policy/peers.h): one over a
 * cap is accepted, told OVERLOADED and closed at once, so that the listen
 * backlog keeps moving for everyone else. A connection that has not
 * completed its Hello within --hello-timeout, or that has no call in
 * flight and sends no complete frame for --rpc-idle-timeout, is told
 * TIMEOUT and closed. A sweep timer finds those.
 */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>

#include "server/gateway/gateway.h"

#include "base/rpc.h"
#include "core/codec.h"
#include "core/common.h"
#include "core/limits.h"
#include "eventing/publish.h"
#include "eventing/trigger.h"
#include "policy/peers.h"
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
  int hello_done;     /* a Hello succeeded, or a request it may make */
  int counted;        /* admitted: holds a slot of its peer in gw->peers */
  int refs;           /* 1 for the open connection + 1 per call */
  unsigned in_flight;
  imp_peer_t peer;
  uint64_t accepted_ms, last_frame_ms; /* loop time */
  uint64_t doomed_ms; /* told why it is closed; closed hard after a while */
  struct imp_client_s *next, *prev;
};

/* Reasons a connection is refused or closed, counted for /metrics. */
enum { REFUSED_PEER, REFUSED_GLOBAL, REFUSED_MEMORY, NREFUSED };
enum { CLOSED_IDLE, CLOSED_PREHELLO, NCLOSED };

struct imp_gateway_s {
  imp_server_t *server;
  uv_tcp_t listener;
  uv_timer_t sweep;
  int sweeping;
  imp_client_t clients; /* sentinel */
  imp_peers_t peers;    /* admitted connections per peer */
  unsigned nclients;    /* open (admitted) connections */
  uint64_t refused[NREFUSED];
  uint64_t closed[NCLOSED];
  /* Refusals are logged at most once a second, with their count. */
  uint64_t logged_ms;
  uint64_t unlogged[NREFUSED];
  char last_refused[64]; /* peer of the last refusal */
};

/* A doomed connection whose peer does not take the error frame is closed
 * without flushing after this. */
#define DOOMED_CLOSE_MS 2000

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
  client->hello_done = 1;
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
  client->last_frame_ms = uv_now(server->loop);
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
  /* A request it may make is as good as a Hello for --hello-timeout: an
   * anonymous client need not say Hello before it invokes. */
  if (env->body_case != IMPULSE__ENVELOPE__BODY_HELLO) client->hello_done = 1;
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
  imp_client_t *client = conn->data;
  if (client->counted) {
    imp_peers_release(&client->gw->peers, &client->peer);
    client->gw->nclients--;
    client->counted = 0;
  }
  client_unref(client);
}

static void on_failed_accept_closed(uv_handle_t *h) {
  client_free(IMP_CONTAINER_OF(h, imp_client_t, conn.h.tcp));
}

/* Logs the refusals not logged yet, at most once a second. */
static void log_refusals(imp_gateway_t *gw, uint64_t now) {
  uint64_t n = 0;
  for (int i = 0; i < NREFUSED; i++) n += gw->unlogged[i];
  if (n == 0 || now - gw->logged_ms < 1000) return;
  const imp_config_t *cfg = &gw->server->cfg;
  IMP_LOG(IMP_LOG_WARN,
          "refused %llu RPC connection%s since the last report: %llu over "
          "the per-peer cap of %u (last from %s), %llu over the cap of %u in "
          "all, %llu out of memory",
          (unsigned long long)n, n == 1 ? "" : "s",
          (unsigned long long)gw->unlogged[REFUSED_PEER],
          cfg->max_conns_per_peer, gw->last_refused[0] ? gw->last_refused : "-",
          (unsigned long long)gw->unlogged[REFUSED_GLOBAL], cfg->max_conns,
          (unsigned long long)gw->unlogged[REFUSED_MEMORY]);
  memset(gw->unlogged, 0, sizeof gw->unlogged);
  gw->logged_ms = now;
}

/* Refuses an accepted connection: one Error frame if the socket takes it
 * now (never waited for), then closed. */
static void refuse(imp_gateway_t *gw, imp_client_t *client, int reason) {
  const imp_config_t *cfg = &gw->server->cfg;
  char msg[160], peer[64];
  imp_peer_str(&client->peer, peer, sizeof peer);
  if (reason == REFUSED_PEER)
    snprintf(msg, sizeof msg,
             "too many connections from %s (at most %u): closed", peer,
             cfg->max_conns_per_peer);
  else if (reason == REFUSED_GLOBAL)
    snprintf(msg, sizeof msg,
             "the server holds its most connections (%u): closed",
             cfg->max_conns);
  else
    snprintf(msg, sizeof msg, "out of memory: closed");
  Impulse__Envelope env;
  Impulse__Error err;
  imp_buf_t out = {0};
  imp_envelope_error(&env, &err, 0, IMPULSE__ERROR_CODE__OVERLOADED, msg);
  if (imp_frame_append(&out, &env, IMP_PREHELLO_MAX_FRAME) == 0) {
    uv_buf_t b = uv_buf_init(out.data, (unsigned)out.len);
    (void)uv_try_write(&client->conn.h.stream, &b, 1);
  }
  imp_buf_free(&out);
  /* What the peer sent so far is read away, so that the close is a FIN
   * and not a reset that could destroy the Error frame. */
  uv_os_fd_t fd;
  if (uv_fileno((uv_handle_t *)&client->conn.h.tcp, &fd) == 0) {
    char sink[4096];
    for (int i = 0; i < 16 && recv(fd, sink, sizeof sink, MSG_DONTWAIT) > 0;
         i++)
      ;
    shutdown(fd, SHUT_WR);
  }
  gw->refused[reason]++;
  gw->unlogged[reason]++;
  memcpy(gw->last_refused, peer, sizeof peer);
  log_refusals(gw, uv_now(gw->server->loop));
  client->conn.closing = 1;
  uv_close((uv_handle_t *)&client->conn.h.tcp, on_failed_accept_closed);
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
  client->accepted_ms = client->last_frame_ms = uv_now(server->loop);
  if (uv_accept(listener, &client->conn.h.stream) != 0) {
    client->conn.closing = 1;
    uv_close((uv_handle_t *)&client->conn.h.tcp, on_failed_accept_closed);
    return;
  }
  /* Admitted or refused by its peer's count and the total. A peer the
   * table cannot name (not TCP/IP) counts as one peer, all zeros. */
  struct sockaddr_storage ss;
  int sslen = sizeof ss;
  memset(&ss, 0, sizeof ss);
  if (uv_tcp_getpeername(&client->conn.h.tcp, (struct sockaddr *)&ss, &sslen) !=
          0 ||
      imp_peer_from_sockaddr((struct sockaddr *)&ss, &client->peer) != 0)
    memset(&client->peer, 0, sizeof client->peer);
  int admit = imp_peers_admit(&gw->peers, &client->peer);
  if (admit != IMP_ADMIT_OK) {
    refuse(gw, client,
           admit == IMP_ADMIT_PEER_CAP     ? REFUSED_PEER
           : admit == IMP_ADMIT_GLOBAL_CAP ? REFUSED_GLOBAL
                                           : REFUSED_MEMORY);
    return;
  }
  client->counted = 1;
  gw->nclients++;
  if (imp_conn_start(&client->conn, &server->cl, IMP_PREHELLO_MAX_FRAME) != 0) {
    imp_peers_release(&gw->peers, &client->peer);
    gw->nclients--;
    client->counted = 0;
    client->conn.closing = 1;
    uv_close((uv_handle_t *)&client->conn.h.tcp, on_failed_accept_closed);
    return;
  }
  uv_tcp_nodelay(&client->conn.h.tcp, 1);
}

/* Tells the peer why with an Error frame, then closes after it is written
 * (or after DOOMED_CLOSE_MS when the peer does not read it). */
static void doom(imp_client_t *client, uint64_t now, int which, const char *fmt,
                 unsigned ms) {
  char msg[160];
  snprintf(msg, sizeof msg, fmt, ms);
  client->gw->closed[which]++;
  client->doomed_ms = now;
  imp_conn_send_error(&client->conn, 0, IMPULSE__ERROR_CODE__TIMEOUT, msg);
  imp_conn_close(&client->conn, 1);
}

/* Closes the connections that did not say Hello in time, or have been
 * idle too long. */
static void on_sweep(uv_timer_t *t) {
  imp_gateway_t *gw = t->data;
  const imp_config_t *cfg = &gw->server->cfg;
  uint64_t now = uv_now(gw->server->loop);
  log_refusals(gw, now);
  for (imp_client_t *c = gw->clients.next; c != &gw->clients; c = c->next) {
    if (c->conn.closing || !c->counted) continue;
    if (c->doomed_ms) {
      if (now - c->doomed_ms > DOOMED_CLOSE_MS) imp_conn_close(&c->conn, 0);
      continue;
    }
    if (!c->hello_done && now - c->accepted_ms > cfg->hello_timeout_ms)
      doom(c, now, CLOSED_PREHELLO,
           "no Hello within %u ms of connecting: closed",
           cfg->hello_timeout_ms);
    else if (c->in_flight == 0 && now - c->last_frame_ms > cfg->rpc_idle_ms)
      doom(c, now, CLOSED_IDLE, "idle for %u ms: closed", cfg->rpc_idle_ms);
  }
}

/* The gateway's families: connections open, refused and closed. */
static void collect_gateway(imp_metrics_writer_t *w, void *arg) {
  imp_gateway_t *gw = arg;
  imp_metrics_family(w, "impulse_rpc_connections", IMP_METRIC_GAUGE,
                     "Open (admitted) connections on the RPC port.");
  imp_metrics_sample(w, "impulse_rpc_connections", NULL, 0, gw->nclients);
  imp_metrics_family(w, "impulse_rpc_peers", IMP_METRIC_GAUGE,
                     "Peers (source addresses; IPv6 by /64) with a "
                     "connection on the RPC port.");
  imp_metrics_sample(w, "impulse_rpc_peers", NULL, 0, (double)gw->peers.used);
  static const char *const refused[NREFUSED] = {"peer_cap", "global_cap",
                                                "memory"};
  imp_metrics_family(w, "impulse_rpc_connections_refused_total",
                     IMP_METRIC_COUNTER,
                     "RPC connections accepted and closed at once, by "
                     "reason.");
  for (int i = 0; i < NREFUSED; i++) {
    imp_label_t l[1] = {{"reason", refused[i]}};
    imp_metrics_sample_u64(w, "impulse_rpc_connections_refused_total", l, 1,
                           gw->refused[i]);
  }
  static const char *const closed[NCLOSED] = {"idle", "prehello"};
  imp_metrics_family(w, "impulse_rpc_connections_closed_total",
                     IMP_METRIC_COUNTER,
                     "RPC connections closed by the server for a timeout, "
                     "by reason.");
  for (int i = 0; i < NCLOSED; i++) {
    imp_label_t l[1] = {{"reason", closed[i]}};
    imp_metrics_sample_u64(w, "impulse_rpc_connections_closed_total", l, 1,
                           gw->closed[i]);
  }
}

/* How often the sweep looks: a quarter of the shorter timeout, between
 * 50 ms and 1 s. */
static uint64_t sweep_interval(const imp_config_t *cfg) {
  uint64_t t = cfg->hello_timeout_ms < cfg->rpc_idle_ms ? cfg->hello_timeout_ms
                                                        : cfg->rpc_idle_ms;
  t /= 4;
  return t < 50 ? 50 : t > 1000 ? 1000 : t;
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
  uint64_t seed = 0;
  if (getrandom(&seed, sizeof seed, GRND_NONBLOCK) != (ssize_t)sizeof seed)
    seed = imp_now_ns();
  imp_peers_init(&gw->peers, server->cfg.max_conns,
                 server->cfg.max_conns_per_peer, seed);
  uv_tcp_init(server->loop, &gw->listener);
  gw->listener.data = gw;
  rc = uv_tcp_bind(&gw->listener, (struct sockaddr *)&ss, 0);
  if (rc == 0)
    rc = uv_listen((uv_stream_t *)&gw->listener, 4096, on_connection);
  if (rc != 0) {
    IMP_LOG(IMP_LOG_ERROR, "cannot listen on %s:%d: %s",
            server->cfg.listen_host, server->cfg.listen_port, uv_strerror(rc));
    uv_close((uv_handle_t *)&gw->listener, NULL);
    *out = gw; /* freed with imp_gateway_free() once the loop has run */
    return rc;
  }
  uv_timer_init(server->loop, &gw->sweep);
  gw->sweep.data = gw;
  uint64_t every = sweep_interval(&server->cfg);
  uv_timer_start(&gw->sweep, on_sweep, every, every);
  uv_unref((uv_handle_t *)&gw->sweep);
  gw->sweeping = 1;
  if (server->metrics)
    imp_metrics_register(server->metrics, collect_gateway, gw);
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
  if (gw->sweeping) {
    gw->sweeping = 0;
    uv_close((uv_handle_t *)&gw->sweep, NULL);
  }
  for (imp_client_t *c = gw->clients.next; c != &gw->clients; c = c->next)
    imp_conn_close(&c->conn, 1);
}

void imp_gateway_free(imp_gateway_t *gw) {
  if (gw == NULL) return;
  if (gw->server->metrics)
    imp_metrics_unregister(gw->server->metrics, collect_gateway, gw);
  imp_peers_free(&gw->peers);
  free(gw);
}
