/*
 * HTTP front end: HTTP/1.1 over uv_tcp on the server's loop, requests
 * parsed by http-parser, JSON read and written with jansson. See http.h for
 * the endpoints and docs/http.md for the contract.
 *
 * A connection reads into one buffer and runs the parser over it one
 * request at a time: on_message_complete pauses the parser, the complete
 * request is dispatched outside any parser callback, then parsing goes on.
 * Requests wait in the connection's pipeline until answered; answers are
 * written in request order, all that are ready in one write per loop turn
 * (flushed from a uv_check handle). A connection stops reading while it
 * holds HTTP_MAX_PIPELINE unanswered requests or HTTP_PAUSE_ABOVE bytes of
 * unwritten answers.
 *
 * Lifetimes: a connection is referenced by its open handle and by every
 * request awaiting an invocation or a Kafka delivery report. When the
 * connection closes first, such a request stays alive, unlinked, and its
 * callback only frees it and drops the reference; nothing is written.
 *
 * An error that ends a connection (a malformed request, a body or headers
 * above the limits) is answered, then the write side is shut down and the
 * input is read and thrown away for up to HTTP_LINGER_MS, so that the
 * client reads the answer instead of a reset.
 */
#include "server/http/http.h"

#include <string.h>

#include "server/http/engine.h"
#include "server/http/invoke.h"
#include "server/http/publish.h"
#include "server/http/request.h"
#include "server/http/state.h"

static void route(http_conn_t *conn, http_req_t *req) {
  imp_server_t *server = conn->server;
  http_route_t r;
  http_route_match(&req->msg, &r);
  if (r.endpoint == HTTP_EP_BAD_TARGET) {
    http_respond_error(req, 400, "BAD_REQUEST", "invalid request target");
    return;
  }
  if (r.endpoint == HTTP_EP_NOT_FOUND) {
    http_respond_error(req, 404, "NOT_FOUND", "no such endpoint: %.*s",
                       (int)(r.plen > 200 ? 200 : r.plen), r.path);
    return;
  }
  if (r.allow) {
    http_respond_405(req, r.allow);
    return;
  }
  switch (r.endpoint) {
    case HTTP_EP_INVOKE: http_handle_invoke(conn, req, r.name, r.nlen); break;
    case HTTP_EP_PUBLISH: http_handle_publish(conn, req, r.name, r.nlen); break;
    case HTTP_EP_HEALTHZ:
      http_respond(req, 200, "text/plain; charset=utf-8", NULL, "ok\n", 3);
      break;
    case HTTP_EP_READYZ:
      if (server->ready && !server->stopping)
        http_respond(req, 200, "text/plain; charset=utf-8", NULL, "ready\n", 6);
      else
        http_respond_error(
            req, 503, server->stopping ? "SHUTTING_DOWN" : "UNAVAILABLE",
            server->stopping ? "server is stopping"
                             : "server is starting (restoring state)");
      break;
    case HTTP_EP_METRICS: http_handle_metrics(conn, req); break;
    case HTTP_EP_DASHBOARD: http_handle_dashboard(req); break;
    case HTTP_EP_LOGS:
      http_handle_logs(conn, req, r.name, r.nlen, r.query, r.qlen);
      break;
    case HTTP_EP_STATE: http_handle_state(conn, req); break;
  }
}

int imp_http_start(imp_server_t *server) {
  return http_listen(server, route);
}

void imp_http_stop_listening(imp_server_t *server) {
  http_engine_stop_listening(server);
}

void imp_http_stop(imp_server_t *server) {
  http_engine_stop(server);
}

void imp_http_close(imp_server_t *server) {
  http_engine_close(server);
}

void imp_http_free(imp_server_t *server) {
  http_engine_free(server);
}
