/*
 * The HTTP front end's engine (engine.c): connections on the loop, parsing
 * with http-parser, keep-alive and pipelining (answers in request order),
 * limits, answers, the listener and its metrics. A complete request goes
 * to the route given at http_listen() (http.c), whose handlers (invoke.c,
 * publish.c, state.c) answer it with http_respond*(), now or later.
 */
#ifndef IMP_HTTP_ENGINE_H
#define IMP_HTTP_ENGINE_H

#include <http_parser.h>
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include <uv.h>

#include "core/common.h"
#include "impulse.pb-c.h"
#include "policy/peers.h"
#include "server/http/parse.h"
#include "server/server.h"

typedef struct imp_http_s imp_http_t;

#define HTTP_MAX_PIPELINE 64 /* unanswered requests per connection */

#define HTTP_PAUSE_ABOVE (8u << 20) /* unwritten answer bytes */

#define HTTP_IDLE_MS 60000 /* idle keep-alive connections close */

#define HTTP_REQUEST_MS 60000 /* a request must arrive within this */

#define HTTP_LINGER_MS 2000

#define HTTP_LINGER_BYTES (16u << 20)

#define HTTP_READ_CHUNK (64 * 1024)

#define HTTP_KEEP_INBUF (256 * 1024) /* a larger idle input buffer is freed */

#define HTTP_MAX_STATUS 600

typedef struct http_conn_s http_conn_t;

typedef struct http_req_s http_req_t;

struct http_req_s {
  http_conn_t *conn; /* referenced while waiting */
  http_req_t *next;  /* pipeline order */
  http_msg_t msg;    /* freed once the request is dispatched */
  int keep_alive;
  int head; /* HEAD: the answer has no body */
  int http10;
  int waiting; /* an invocation or a publish is pending */
  int orphan;  /* unlinked from its connection: the answer is dropped */
  int done;    /* resp holds the whole answer */
  imp_buf_t resp;
  char *topic; /* publish: named in the answer */
};

struct http_conn_s {
  uv_tcp_t tcp;
  imp_http_t *http;
  imp_server_t *server;  /* the server it serves */
  http_parse_t parse;    /* the request being read */
  int refs;              /* open handle + waiting requests */
  int closing;           /* uv_close called */
  int close_after_flush; /* the last answer is queued */
  int lingering;         /* write side shut down, input thrown away */
  int eof;               /* the peer will send nothing more */
  int reading;
  int stop_parsing; /* a request ended the connection */
  int in_process;
  size_t discarded;
  imp_buf_t in;
  size_t in_off; /* parsed bytes at the start of `in` */
  imp_buf_t out, writing;
  uv_write_t wreq;
  int write_busy;
  uv_shutdown_t sreq;
  http_req_t *head, *tail;
  unsigned npipeline;
  int dirty;
  http_conn_t *dirty_next;
  uint64_t active_ms, cur_ms, linger_ms;
  /* Deadlines against slow peers: the head of a request (from its first
   * byte; the first one's from the accept) within --http-header-timeout,
   * and no wait longer than --http-body-timeout for more of a body. */
  int in_head, in_body;
  uint64_t head_ms, body_ms;
  imp_peer_t peer;
  int counted; /* admitted: holds a slot of its peer */
  http_conn_t *next, *prev;
};

/* Buffers, names and JSON. */
void http_bput(imp_buf_t *b, const void *p, size_t n);
void http_bputs(imp_buf_t *b, const char *s);
void http_bprintf(imp_buf_t *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
json_t *http_jcstr(const char *s);
json_t *http_ju64(uint64_t v);
http_msg_t http_msg_take(http_req_t *req);
void http_req_free(http_req_t *req);
void http_respond(http_req_t *req, int status, const char *ctype,
                  const char *extra, const void *body, size_t len);
void http_respond_json(http_req_t *req, int status, json_t *j,
                       const char *extra);
void http_respond_error(http_req_t *req, int status, const char *name,
                        const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void http_respond_code(http_req_t *req, int code, int invoke,
                       const char *message);
void http_respond_405(http_req_t *req, const char *allow);
void http_conn_unref(http_conn_t *conn);
void http_flush_ready(http_conn_t *conn);
int http_check_auth(http_conn_t *conn, http_req_t *req, int op,
                    const char *target);
void http_conn_process(http_conn_t *conn);
/* The HTTP status of an ErrorCode; `invoke` maps INTERNAL to 502 (in an
 * invocation it means the instance's answer could not be used). */
int http_status_for(int code, int invoke);

/* The answer an invocation or a publish of req waited for came: 1 when
 * req is to be answered now, 0 when its connection has gone (req is freed
 * and the wait's reference dropped: the caller returns). */
int http_req_resume(http_req_t *req);
/* After answering such a request: writes what is ready, goes on with the
 * requests pipelined behind it and drops the wait's reference. */
void http_req_answered(http_conn_t *conn);

/* The front end's life (http.h's functions are these with the route). */
int http_listen(imp_server_t *server,
                void (*route)(http_conn_t *conn, http_req_t *req));
void http_engine_stop_listening(imp_server_t *server);
void http_engine_stop(imp_server_t *server);
void http_engine_close(imp_server_t *server);
void http_engine_free(imp_server_t *server);

#endif
