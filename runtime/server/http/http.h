/*
 * HTTP front end of `impulse serve` (private): HTTP/1.1 on its own port,
 * served from the server's libuv loop, parsed with http-parser.
 *
 *   POST /function/NAME   invoke NAME with the body as payload
 *   POST /topics/TOPIC    publish a record (CloudEvents binary or
 *                         structured mode) to a Kafka topic
 *   GET  /healthz         200 while the process serves
 *   GET  /readyz          200 once restored and ready, else 503
 *   GET  /metrics         Prometheus text format (metrics.h)
 *   GET  /api/state       JSON snapshot for a dashboard
 *   GET  /                the dashboard page (runtime/dashboard/index.html)
 *
 * Keep-alive and pipelining work (answers go out in request order). A
 * malformed request gets 400 and its connection is closed; every other
 * connection is served on. docs/http.md describes the endpoints.
 */
#ifndef IMP_HTTP_H
#define IMP_HTTP_H

struct imp_server_s;
typedef struct imp_http_s imp_http_t;

/* Listens on cfg.http_host:cfg.http_port (port 0: any free port; the bound
 * port is written back into cfg.http_port), sets server->http and adds the
 * front end's own families to server->metrics. Returns 0 or a negative uv
 * error (logged); server->http stays NULL then. */
int imp_http_start(struct imp_server_s *server);

/* Stops accepting connections. Open connections are still served; while
 * the server stops, invocations and publishes get 503. */
void imp_http_stop_listening(struct imp_server_s *server);

/* Closes every connection, after writing the answers already queued for
 * it; answers still awaited are dropped. */
void imp_http_stop(struct imp_server_s *server);

/* After the loop has run to its end: closes what is left of the module's
 * handles (run the loop once more afterwards). */
void imp_http_close(struct imp_server_s *server);

/* Frees the module once its handles are closed. Invocations or publishes
 * still pending may complete later (e.g. while Kafka closes): they only
 * free their own request then. */
void imp_http_free(struct imp_server_s *server);

#endif
