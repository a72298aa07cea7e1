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
#include "server/http/state.h"

static int path_is(const char *p, size_t n, const char *want) {
  return n == strlen(want) && memcmp(p, want, n) == 0;
}

static int path_under(const char *p, size_t n, const char *prefix) {
  size_t pl = strlen(prefix);
  return n >= pl && memcmp(p, prefix, pl) == 0;
}

static void route(http_conn_t *conn, http_req_t *req) {
  imp_server_t *server = conn->server;
  http_msg_t *m = &req->msg;
  struct http_parser_url u;
  http_parser_url_init(&u);
  if (m->url_len == 0 ||
      http_parser_parse_url(m->hbuf.data, m->url_len, 0, &u) != 0 ||
      !(u.field_set & (1 << UF_PATH))) {
    http_respond_error(req, 400, "BAD_REQUEST", "invalid request target");
    return;
  }
  const char *path = m->hbuf.data + u.field_data[UF_PATH].off;
  size_t plen = u.field_data[UF_PATH].len;
  int get = m->method == HTTP_GET || m->method == HTTP_HEAD;
  int post = m->method == HTTP_POST;
  if (path_under(path, plen, "/function/")) {
    if (post)
      http_handle_invoke(conn, req, path + 10, plen - 10);
    else
      http_respond_405(req, "POST");
  } else if (path_under(path, plen, "/topics/")) {
    if (post)
      http_handle_publish(conn, req, path + 8, plen - 8);
    else
      http_respond_405(req, "POST");
  } else if (path_is(path, plen, "/healthz")) {
    if (get)
      http_respond(req, 200, "text/plain; charset=utf-8", NULL, "ok\n", 3);
    else
      http_respond_405(req, "GET");
  } else if (path_is(path, plen, "/readyz")) {
    if (!get)
      http_respond_405(req, "GET");
    else if (server->ready && !server->stopping)
      http_respond(req, 200, "text/plain; charset=utf-8", NULL, "ready\n", 6);
    else
      http_respond_error(
          req, 503, server->stopping ? "SHUTTING_DOWN" : "UNAVAILABLE",
          server->stopping ? "server is stopping"
                           : "server is starting (restoring state)");
  } else if (path_is(path, plen, "/metrics")) {
    if (get)
      http_handle_metrics(conn, req);
    else
      http_respond_405(req, "GET");
  } else if (path_is(path, plen, "/")) {
    if (get)
      http_handle_dashboard(req);
    else
      http_respond_405(req, "GET");
  } else if (path_under(path, plen, "/api/functions/") && plen > 20 &&
             memcmp(path + plen - 5, "/logs", 5) == 0) {
    if (get)
      http_handle_logs(
          conn, req, path + 15, plen - 20,
          (u.field_set & (1 << UF_QUERY))
              ? m->hbuf.data + u.field_data[UF_QUERY].off
              : NULL,
          (u.field_set & (1 << UF_QUERY)) ? u.field_data[UF_QUERY].len : 0);
    else
      http_respond_405(req, "GET");
  } else if (path_is(path, plen, "/api/state")) {
    if (get)
      http_handle_state(conn, req);
    else
      http_respond_405(req, "GET");
  } else {
    http_respond_error(req, 404, "NOT_FOUND", "no such endpoint: %.*s",
                       (int)(plen > 200 ? 200 : plen), path);
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
