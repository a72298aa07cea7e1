/*
 * The HTTP front end's engine (engine.h).
 */
#include "server/http/engine.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/socket.h>

#include "base/conn.h"
#include "base/metrics.h"
#include "policy/scopes.h"
#include "server/control/tokens.h"

/* The front end. */
struct imp_http_s {
  imp_server_t *server;
  /* Serves a complete request (http.c): answers it with http_respond*(),
   * now or later. */
  void (*route)(http_conn_t *conn, http_req_t *req);
  uv_tcp_t listener;
  int listening;
  uv_check_t flush;
  uv_timer_t sweep;
  int handles_closed;
  http_conn_t conns;    /* sentinel */
  unsigned nconns;      /* open, refused ones that are closing included */
  imp_peers_t peers;    /* admitted connections per peer */
  uint64_t refused[3];  /* peer_cap, global_cap, memory */
  uint64_t timeouts[3]; /* header, body, request */
  uint64_t logged_ms, unlogged;
  char last_refused[64];
  http_conn_t *dirty_head;
  char date[40];
  time_t date_at;
  uint64_t responses[HTTP_MAX_STATUS];
};

static void conn_flush(http_conn_t *conn);

static void update_reading(http_conn_t *conn);

/* ---- small helpers ------------------------------------------------------- */

/* Buffers here hold at most a few times --max-frame; running out of memory
 * is handled like everywhere else in the server. */
void http_bput(imp_buf_t *b, const void *p, size_t n) {
  if (n && imp_buf_append(b, p, n) != 0) abort();
}

void http_bputs(imp_buf_t *b, const char *s) {
  http_bput(b, s, strlen(s));
}

void http_bprintf(imp_buf_t *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

void http_bprintf(imp_buf_t *b, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  if (imp_buf_reserve(b, (size_t)n + 1) != 0) abort();
  va_start(ap, fmt);
  vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
  va_end(ap);
  b->len += (size_t)n;
}

/* A JSON string from bytes that may not be UTF-8 (messages from functions,
 * paths from clients): invalid bytes become '?'. */
static json_t *jstr(const char *s, size_t n) {
  json_t *j = json_stringn(s, n);
  if (j != NULL) return j;
  char *c = malloc(n ? n : 1);
  if (c == NULL) abort();
  for (size_t i = 0; i < n; i++)
    c[i] = (unsigned char)s[i] < 0x80 && s[i] != '\0' ? s[i] : '?';
  j = json_stringn(c, n);
  free(c);
  return j;
}

json_t *http_jcstr(const char *s) {
  return s ? jstr(s, strlen(s)) : json_null();
}

json_t *http_ju64(uint64_t v) {
  return json_integer((json_int_t)v);
}

/* Compares without leaking the position of the first difference. */
static int token_equal(const char *a, size_t la, const char *b) {
  size_t lb = strlen(b);
  unsigned char diff = (unsigned char)(la != lb);
  for (size_t i = 0; i < la && i < lb; i++)
    diff |= (unsigned char)(a[i] ^ b[i]);
  return diff == 0;
}

static const char *reason(int status) {
  switch (status) {
    case 100: return "Continue";
    case 200: return "OK";
    case 202: return "Accepted";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 413: return "Content Too Large";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    default: return "Unknown";
  }
}

int http_status_for(int code, int invoke) {
  switch (code) {
    case IMPULSE__ERROR_CODE__OK: return 200;
    case IMPULSE__ERROR_CODE__BAD_REQUEST: return 400;
    case IMPULSE__ERROR_CODE__UNAUTHENTICATED: return 401;
    case IMPULSE__ERROR_CODE__PERMISSION_DENIED: return 403;
    case IMPULSE__ERROR_CODE__NOT_FOUND: return 404;
    case IMPULSE__ERROR_CODE__TOO_LARGE: return 413;
    case IMPULSE__ERROR_CODE__OVERLOADED: return 429;
    case IMPULSE__ERROR_CODE__TIMEOUT: return 504;
    case IMPULSE__ERROR_CODE__CRASHED:
    case IMPULSE__ERROR_CODE__FUNCTION_ERROR:
    case IMPULSE__ERROR_CODE__OUT_OF_MEMORY: return 502;
    case IMPULSE__ERROR_CODE__INTERNAL: return invoke ? 502 : 500;
    case IMPULSE__ERROR_CODE__UNAVAILABLE:
    case IMPULSE__ERROR_CODE__SHUTTING_DOWN: return 503;
    case IMPULSE__ERROR_CODE__EXISTS: return 409;
    case IMPULSE__ERROR_CODE__IN_PROGRESS: return 409; /* same key running */
    default: return 500;
  }
}

/* Date header value, recomputed once a second. */
static const char *http_date(imp_http_t *http) {
  time_t now = time(NULL);
  if (now != http->date_at) {
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(http->date, sizeof http->date, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    http->date_at = now;
  }
  return http->date;
}

/* ---- requests ------------------------------------------------------------ */

/* Moves the parsed request out of req, so that req holds only what its
 * answer needs while it waits. */
http_msg_t http_msg_take(http_req_t *req) {
  http_msg_t m = req->msg;
  memset(&req->msg, 0, sizeof req->msg);
  return m;
}

void http_req_free(http_req_t *req) {
  http_msg_free(&req->msg);
  imp_buf_free(&req->resp);
  free(req->topic);
  free(req);
}

static http_req_t *req_new(http_conn_t *conn) {
  http_req_t *req = calloc(1, sizeof *req);
  if (req == NULL) abort();
  req->conn = conn;
  req->keep_alive = 1;
  return req;
}

/* Answers req: the status line, standard headers, `extra` (complete header
 * lines, may be NULL) and the body. */
void http_respond(http_req_t *req, int status, const char *ctype,
                  const char *extra, const void *body, size_t len) {
  imp_http_t *http = req->conn->http;
  imp_buf_t *r = &req->resp;
  r->len = 0;
  http_bprintf(r,
               "HTTP/1.1 %d %s\r\nServer: impulse/" IMPULSE_VERSION
               "\r\nDate: %s\r\nContent-Length: %zu\r\n",
               status, reason(status), http_date(http), len);
  if (ctype) http_bprintf(r, "Content-Type: %s\r\n", ctype);
  if (extra) http_bputs(r, extra);
  if (!req->keep_alive)
    http_bputs(r, "Connection: close\r\n");
  else if (req->http10)
    http_bputs(r, "Connection: keep-alive\r\n");
  http_bputs(r, "\r\n");
  if (!req->head) http_bput(r, body, len);
  req->done = 1;
  if (status > 0 && status < HTTP_MAX_STATUS) http->responses[status]++;
}

void http_respond_json(http_req_t *req, int status, json_t *j,
                       const char *extra) {
  char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;
  if (s == NULL) abort();
  size_t n = strlen(s);
  imp_buf_t b = {0};
  http_bput(&b, s, n);
  http_bput(&b, "\n", 1);
  free(s);
  http_respond(req, status, "application/json", extra, b.data, b.len);
  imp_buf_free(&b);
}

/* Answers with {"error":NAME,"message":...}; NAME is an ErrorCode name or,
 * for HTTP-level errors, e.g. METHOD_NOT_ALLOWED. */
void http_respond_error(http_req_t *req, int status, const char *name,
                        const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

void http_respond_error(http_req_t *req, int status, const char *name,
                        const char *fmt, ...) {
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  json_t *j = json_object();
  json_object_set_new(j, "error", json_string(name));
  json_object_set_new(j, "message", jstr(msg, strlen(msg)));
  const char *extra = NULL;
  if (status == 401) extra = "WWW-Authenticate: Bearer realm=\"impulse\"\r\n";
  if (status == 429 || status == 503) extra = "Retry-After: 1\r\n";
  http_respond_json(req, status, j, extra);
  json_decref(j);
}

void http_respond_code(http_req_t *req, int code, int invoke,
                       const char *message) {
  http_respond_error(req, http_status_for(code, invoke),
                     imp_error_code_name(code), "%s", message ? message : "");
}

void http_respond_405(http_req_t *req, const char *allow) {
  char extra[64];
  snprintf(extra, sizeof extra, "Allow: %s\r\n", allow);
  json_t *j = json_object();
  json_object_set_new(j, "error", json_string("METHOD_NOT_ALLOWED"));
  json_object_set_new(
      j, "message",
      json_string(strcmp(allow, "POST") == 0 ? "this endpoint takes POST"
                                             : "this endpoint takes GET"));
  http_respond_json(req, 405, j, extra);
  json_decref(j);
}

/* ---- connections --------------------------------------------------------- */

void http_conn_unref(http_conn_t *conn) {
  if (conn->refs <= 0) abort(); /* refcount underflow is a bug */
  if (--conn->refs > 0) return;
  http_parse_free(&conn->parse);
  imp_buf_free(&conn->in);
  imp_buf_free(&conn->out);
  imp_buf_free(&conn->writing);
  free(conn);
}

static void on_conn_closed(uv_handle_t *h) {
  http_conn_t *conn = IMP_CONTAINER_OF(h, http_conn_t, tcp);
  if (conn->counted) imp_peers_release(&conn->http->peers, &conn->peer);
  conn->counted = 0;
  conn->prev->next = conn->next;
  conn->next->prev = conn->prev;
  conn->http->nconns--;
  http_conn_unref(conn);
}

/* Closes now; pending output is dropped. Requests awaiting an answer are
 * unlinked and free themselves when it comes. */
static void conn_close(http_conn_t *conn) {
  if (conn->closing) return;
  conn->closing = 1;
  imp_http_t *http = conn->http;
  if (conn->dirty) {
    for (http_conn_t **p = &http->dirty_head; *p; p = &(*p)->dirty_next)
      if (*p == conn) {
        *p = conn->dirty_next;
        break;
      }
    conn->dirty = 0;
  }
  http_req_t *next;
  for (http_req_t *r = conn->head; r; r = next) {
    next = r->next;
    r->next = NULL;
    if (r->waiting)
      r->orphan = 1;
    else
      http_req_free(r);
  }
  conn->head = conn->tail = NULL;
  conn->npipeline = 0;
  uv_close((uv_handle_t *)&conn->tcp, on_conn_closed);
}

static void mark_dirty(http_conn_t *conn) {
  if (conn->dirty || conn->closing) return;
  conn->dirty = 1;
  conn->dirty_next = conn->http->dirty_head;
  conn->http->dirty_head = conn;
}

static size_t pending_out(const http_conn_t *conn) {
  return conn->out.len + conn->writing.len;
}

/* Moves the answers at the head of the pipeline that are ready into the
 * output buffer, in request order. */
void http_flush_ready(http_conn_t *conn) {
  if (conn->closing) return;
  while (conn->head && conn->head->done) {
    http_req_t *r = conn->head;
    conn->head = r->next;
    if (conn->head == NULL) conn->tail = NULL;
    conn->npipeline--;
    http_bput(&conn->out, r->resp.data, r->resp.len);
    int keep = r->keep_alive;
    http_req_free(r);
    if (!keep) {
      /* Nothing was parsed after it (stop_parsing). */
      conn->close_after_flush = 1;
      break;
    }
  }
  if (conn->eof && conn->head == NULL) conn->close_after_flush = 1;
  mark_dirty(conn);
}

static void pipeline_add(http_conn_t *conn, http_req_t *req) {
  req->next = NULL;
  if (conn->tail)
    conn->tail->next = req;
  else
    conn->head = req;
  conn->tail = req;
  conn->npipeline++;
}

/* Answers an error that ends the connection (after earlier answers); a
 * 503 says Retry-After. */
static void fail_conn(http_conn_t *conn, int status, const char *name,
                      const char *msg) {
  http_parse_free(&conn->parse);
  conn->in_head = conn->in_body = 0;
  http_req_t *req = req_new(conn);
  req->keep_alive = 0;
  pipeline_add(conn, req);
  http_respond_error(req, status, name, "%s", msg);
  conn->stop_parsing = 1;
  http_flush_ready(conn);
}

static void on_shutdown(uv_shutdown_t *sreq, int status) {
  http_conn_t *conn = sreq->data;
  if (status < 0 && !conn->closing) conn_close(conn);
}

/* Everything is written and the connection is to end: close at once when
 * the peer has finished sending, else shut down our side and throw input
 * away for a while (see the file comment). */
static void conn_finish(http_conn_t *conn) {
  if (conn->eof) {
    conn_close(conn);
    return;
  }
  if (conn->lingering) return;
  conn->lingering = 1;
  conn->linger_ms = imp_now_ms();
  conn->in.len = conn->in_off = 0;
  conn->sreq.data = conn;
  if (uv_shutdown(&conn->sreq, (uv_stream_t *)&conn->tcp, on_shutdown) != 0) {
    conn_close(conn);
    return;
  }
  update_reading(conn);
}

static void on_write(uv_write_t *wreq, int status) {
  http_conn_t *conn = IMP_CONTAINER_OF(wreq, http_conn_t, wreq);
  conn->write_busy = 0;
  conn->writing.len = 0;
  if (conn->closing) return;
  if (status < 0) {
    conn_close(conn);
    return;
  }
  conn_flush(conn);
  if (!conn->closing) http_conn_process(conn);
}

static void conn_flush(http_conn_t *conn) {
  if (conn->closing || conn->write_busy) return;
  int rc = imp_stream_write((uv_stream_t *)&conn->tcp, &conn->out,
                            &conn->writing, &conn->wreq, on_write);
  if (rc < 0) {
    conn_close(conn);
    return;
  }
  conn->write_busy = rc;
  if (!conn->write_busy && conn->out.len == 0 && conn->close_after_flush) {
    conn_finish(conn);
    return;
  }
  update_reading(conn);
}

static void on_check(uv_check_t *check) {
  imp_http_t *http = IMP_CONTAINER_OF(check, imp_http_t, flush);
  while (http->dirty_head) {
    http_conn_t *conn = http->dirty_head;
    http->dirty_head = conn->dirty_next;
    conn->dirty = 0;
    conn->dirty_next = NULL;
    conn_flush(conn);
  }
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  http_conn_t *conn = IMP_CONTAINER_OF(h, http_conn_t, tcp);
  (void)suggested;
  imp_buf_read_space(&conn->in, HTTP_READ_CHUNK, &buf->base, &buf->len);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  http_conn_t *conn = IMP_CONTAINER_OF(s, http_conn_t, tcp);
  (void)buf;
  if (nread == 0 || conn->closing) return;
  if (nread < 0) {
    if (nread != UV_EOF || conn->lingering) {
      conn_close(conn);
      return;
    }
    /* The peer has finished sending: answer what it asked for, then
     * close. A request cut short is dropped. */
    conn->eof = 1;
    http_parse_free(&conn->parse);
    conn->stop_parsing = 1;
    update_reading(conn);
    if (conn->head == NULL && pending_out(conn) == 0 && !conn->write_busy) {
      conn_close(conn);
      return;
    }
    http_flush_ready(conn);
    return;
  }
  if (conn->lingering) {
    conn->discarded += (size_t)nread;
    if (conn->discarded > HTTP_LINGER_BYTES) conn_close(conn);
    return;
  }
  conn->in.len += (size_t)nread;
  conn->active_ms = imp_now_ms();
  http_conn_process(conn);
}

static void update_reading(http_conn_t *conn) {
  if (conn->closing) return;
  int want;
  if (conn->lingering)
    want = 1;
  else
    want = !conn->eof && !conn->stop_parsing && !conn->close_after_flush &&
           conn->npipeline < HTTP_MAX_PIPELINE &&
           pending_out(conn) <= HTTP_PAUSE_ABOVE;
  if (want && !conn->reading) {
    if (uv_read_start((uv_stream_t *)&conn->tcp, on_alloc, on_read) == 0)
      conn->reading = 1;
  } else if (!want && conn->reading) {
    uv_read_stop((uv_stream_t *)&conn->tcp);
    conn->reading = 0;
  }
}

/* ---- handlers ------------------------------------------------------------ */

/* 0 when the request may do `op` (a row of policy/scopes.c) on `target`,
 * else it is answered 401 (no token, or one that is not valid) or 403 (a
 * valid scoped token without the scope). A token that is sent is always
 * checked, needed or not. */
int http_check_auth(http_conn_t *conn, http_req_t *req, int op,
                    const char *target) {
  imp_server_t *server = conn->http->server;
  const http_msg_t *m = &req->msg;
  const http_hdr_t *h = http_find_header(m, "authorization");
  imp_token_t *token = NULL;
  int admin = 0;
  char msg[512];
  if (h != NULL) {
    const char *v = http_hval(m, h);
    size_t n = h->vlen;
    while (n && (*v == ' ' || *v == '\t')) v++, n--;
    while (n && (v[n - 1] == ' ' || v[n - 1] == '\t')) n--;
    if (!http_iprefix(v, n, "bearer ")) {
      http_respond_error(req, 401, "UNAUTHENTICATED",
                         "invalid token (Authorization: Bearer TOKEN)");
      return -1;
    }
    v += 7, n -= 7;
    if (imp_token_is_scoped(v, n)) {
      if (imp_tokens_check(server->tokens, v, n, imp_wall_ms(), &token, msg,
                           sizeof msg) != 0) {
        http_respond_error(req, 401, "UNAUTHENTICATED", "%s", msg);
        return -1;
      }
    } else if (!token_equal(v, n, server->control.token)) {
      http_respond_error(req, 401, "UNAUTHENTICATED", "invalid token");
      return -1;
    } else {
      admin = 1;
    }
  }
  int code =
      imp_access_decide(op, target, admin, token ? &token->grant : NULL,
                        !server->cfg.invoke_needs_token, msg, sizeof msg);
  if (token) imp_token_unref(token);
  if (code == 0) return 0;
  if (code == IMPULSE__ERROR_CODE__PERMISSION_DENIED)
    http_respond_error(req, 403, "PERMISSION_DENIED", "%s", msg);
  else
    http_respond_error(req, 401, "UNAUTHENTICATED",
                       "%s (Authorization: Bearer TOKEN)", msg);
  return -1;
}

/* A complete request: queue it for its answer and serve it. */
static void dispatch(http_conn_t *conn, http_req_t *req) {
  pipeline_add(conn, req);
  if (!req->keep_alive) conn->stop_parsing = 1;
  conn->http->route(conn, req);
  http_flush_ready(conn);
}

/* Keeps the deadlines of the request being read (see http_conn_t) after
 * the parser took bytes; a complete request was taken when `complete`. */
static void track_times(http_conn_t *conn, size_t took, int complete) {
  http_parse_t *ps = &conn->parse;
  uint64_t now = imp_now_ms();
  if (ps->began) {
    ps->began = 0;
    conn->cur_ms = now;
    /* The first request's head has been timed since the accept. */
    if (!conn->in_head) conn->head_ms = now;
    conn->in_head = 1;
  }
  if (complete) {
    conn->in_head = conn->in_body = 0;
  } else if (ps->in_msg && !ps->in_head) {
    if (conn->in_head || took > 0) conn->body_ms = now;
    conn->in_head = 0;
    conn->in_body = 1;
  }
}

/* Parses and dispatches what has been read, one request at a time. */
void http_conn_process(http_conn_t *conn) {
  if (conn->in_process || conn->closing || conn->lingering) return;
  conn->in_process = 1;
  http_parse_t *ps = &conn->parse;
  while (!conn->closing && !conn->stop_parsing && conn->in_off < conn->in.len) {
    if (conn->npipeline >= HTTP_MAX_PIPELINE ||
        pending_out(conn) > HTTP_PAUSE_ABOVE)
      break;
    int event;
    size_t n = http_parse_execute(ps, conn->in.data + conn->in_off,
                                  conn->in.len - conn->in_off, &event);
    conn->in_off += n;
    track_times(conn, n, event == HTTP_PARSE_REQUEST);
    /* A client that waits for 100 Continue gets it at once, unless earlier
     * answers are still due on this connection (it would overtake them). */
    if (ps->expect_continue) {
      ps->expect_continue = 0;
      if (event != HTTP_PARSE_ERROR && conn->head == NULL) {
        http_bputs(&conn->out, "HTTP/1.1 100 Continue\r\n\r\n");
        mark_dirty(conn);
      }
    }
    if (event == HTTP_PARSE_REQUEST) {
      http_req_t *req = req_new(conn);
      req->msg = http_parse_take(ps);
      req->keep_alive = ps->keep_alive;
      req->http10 = ps->http10;
      req->head = ps->head;
      dispatch(conn, req);
      continue;
    }
    if (event == HTTP_PARSE_ERROR) {
      int status = ps->status;
      fail_conn(conn, status,
                status == 413 || status == 431 ? "TOO_LARGE"
                : status == 405                ? "METHOD_NOT_ALLOWED"
                                               : "BAD_REQUEST",
                ps->error);
      break;
    }
  }
  if (!conn->closing) {
    if (conn->stop_parsing) {
      conn->in.len = conn->in_off = 0;
    } else if (conn->in_off > 0) {
      imp_buf_consume(&conn->in, conn->in_off);
      conn->in_off = 0;
    }
    if (conn->in.len == 0 && conn->in.cap > HTTP_KEEP_INBUF)
      imp_buf_free(&conn->in);
    update_reading(conn);
  }
  conn->in_process = 0;
}

/* ---- listener, sweep ----------------------------------------------------- */

/* Logs the refusals not logged yet, at most once a second. */
static void log_refusals(imp_http_t *http, uint64_t now) {
  if (http->unlogged == 0 || now - http->logged_ms < 1000) return;
  IMP_LOG(IMP_LOG_WARN,
          "refused %llu HTTP connection%s with 503 since the last report "
          "(in all %llu over the per-peer cap of %u, last from %s; %llu over "
          "the cap of %u in all)",
          (unsigned long long)http->unlogged, http->unlogged == 1 ? "" : "s",
          (unsigned long long)http->refused[0],
          http->server->cfg.http_max_conns_per_peer,
          http->last_refused[0] ? http->last_refused : "-",
          (unsigned long long)http->refused[1],
          http->server->cfg.http_max_conns);
  http->unlogged = 0;
  http->logged_ms = now;
}

/* Refuses a connection over a cap (`why`: 0 per peer, 1 in all, 2 out of
 * memory): a 503 with Retry-After if the socket takes it now (never waited
 * for), what the peer sent so far read away so that the close is a FIN and
 * not a reset that could destroy the answer, then closed. Nothing of it
 * stays: a flood of refused connections holds no descriptor. */
static void refuse_conn(imp_http_t *http, http_conn_t *conn, int why) {
  const imp_config_t *cfg = &http->server->cfg;
  char msg[160];
  imp_peer_str(&conn->peer, http->last_refused, sizeof http->last_refused);
  if (why == 0)
    snprintf(msg, sizeof msg, "too many HTTP connections from %s (at most %u)",
             http->last_refused, cfg->http_max_conns_per_peer);
  else if (why == 1)
    snprintf(msg, sizeof msg, "too many HTTP connections (at most %u)",
             cfg->http_max_conns);
  else
    snprintf(msg, sizeof msg, "out of memory");
  http->refused[why]++;
  http->unlogged++;
  log_refusals(http, imp_now_ms());
  http_req_t *req = req_new(conn);
  req->keep_alive = 0;
  http_respond_error(req, 503, "UNAVAILABLE", "%s", msg);
  uv_buf_t b = uv_buf_init(req->resp.data, (unsigned)req->resp.len);
  (void)uv_try_write((uv_stream_t *)&conn->tcp, &b, 1);
  http_req_free(req);
  uv_os_fd_t fd;
  if (uv_fileno((uv_handle_t *)&conn->tcp, &fd) == 0) {
    char sink[4096];
    for (int i = 0; i < 16 && recv(fd, sink, sizeof sink, MSG_DONTWAIT) > 0;
         i++)
      ;
    shutdown(fd, SHUT_WR);
  }
  conn_close(conn);
}

static void on_connection(uv_stream_t *listener, int status) {
  imp_http_t *http = listener->data;
  if (status < 0) {
    IMP_LOG(IMP_LOG_WARN, "http accept: %s", uv_strerror(status));
    return;
  }
  http_conn_t *conn = calloc(1, sizeof *conn);
  if (conn == NULL) return;
  conn->http = http;
  conn->server = http->server;
  conn->refs = 1;
  conn->active_ms = conn->head_ms = imp_now_ms();
  conn->in_head = 1;
  http_parse_init(&conn->parse, http->server->cfg.max_frame);
  uv_tcp_init(listener->loop, &conn->tcp);
  conn->next = &http->conns;
  conn->prev = http->conns.prev;
  http->conns.prev->next = conn;
  http->conns.prev = conn;
  http->nconns++;
  if (uv_accept(listener, (uv_stream_t *)&conn->tcp) != 0) {
    conn_close(conn);
    return;
  }
  uv_tcp_nodelay(&conn->tcp, 1);
  struct sockaddr_storage ss;
  int sslen = sizeof ss;
  memset(&ss, 0, sizeof ss);
  if (uv_tcp_getpeername(&conn->tcp, (struct sockaddr *)&ss, &sslen) != 0 ||
      imp_peer_from_sockaddr((struct sockaddr *)&ss, &conn->peer) != 0)
    memset(&conn->peer, 0, sizeof conn->peer);
  int admit = imp_peers_admit(&http->peers, &conn->peer);
  if (admit != IMP_ADMIT_OK) {
    refuse_conn(http, conn,
                admit == IMP_ADMIT_PEER_CAP     ? 0
                : admit == IMP_ADMIT_GLOBAL_CAP ? 1
                                                : 2);
    return;
  }
  conn->counted = 1;
  update_reading(conn);
}

/* How often the sweep looks: a quarter of the shorter deadline, between
 * 50 ms and 1 s. */
static uint64_t sweep_interval(const imp_config_t *cfg) {
  uint64_t t = cfg->http_header_timeout_ms < cfg->http_body_timeout_ms
                   ? cfg->http_header_timeout_ms
                   : cfg->http_body_timeout_ms;
  t /= 4;
  return t < 50 ? 50 : t > 1000 ? 1000 : t;
}

static void on_sweep(uv_timer_t *t) {
  imp_http_t *http = t->data;
  const imp_config_t *cfg = &http->server->cfg;
  uint64_t now = imp_now_ms();
  http_date(http);
  log_refusals(http, now);
  char msg[120];
  http_conn_t *next;
  for (http_conn_t *c = http->conns.next; c != &http->conns; c = next) {
    next = c->next;
    if (c->closing) continue;
    if (c->lingering) {
      if (now - c->linger_ms > HTTP_LINGER_MS) conn_close(c);
      continue;
    }
    if (c->stop_parsing || c->close_after_flush) continue;
    if (c->in_head && now - c->head_ms > cfg->http_header_timeout_ms) {
      http->timeouts[0]++;
      snprintf(msg, sizeof msg,
               "the request line and headers did not arrive within %u ms",
               cfg->http_header_timeout_ms);
      fail_conn(c, 408, "BAD_REQUEST", msg);
    } else if (c->in_body && now - c->body_ms > cfg->http_body_timeout_ms) {
      http->timeouts[1]++;
      snprintf(msg, sizeof msg, "no more of the request body arrived for %u ms",
               cfg->http_body_timeout_ms);
      fail_conn(c, 408, "BAD_REQUEST", msg);
    } else if (c->parse.in_msg && now - c->cur_ms > HTTP_REQUEST_MS) {
      http->timeouts[2]++;
      fail_conn(c, 408, "BAD_REQUEST", "the request did not arrive in time");
    } else if (c->head == NULL && !c->parse.in_msg && pending_out(c) == 0 &&
               !c->write_busy && now - c->active_ms > HTTP_IDLE_MS) {
      conn_close(c);
    }
  }
}

/* The front end's own families: connections and answers by status. */
static void collect_http(imp_metrics_writer_t *w, void *arg) {
  imp_http_t *http = arg;
  imp_metrics_family(w, "impulse_http_connections", IMP_METRIC_GAUGE,
                     "Open connections on the HTTP port.");
  imp_metrics_sample(w, "impulse_http_connections", NULL, 0, http->nconns);
  imp_metrics_family(w, "impulse_http_peers", IMP_METRIC_GAUGE,
                     "Peers (source addresses; IPv6 by /64) with an admitted "
                     "connection on the HTTP port.");
  imp_metrics_sample(w, "impulse_http_peers", NULL, 0,
                     (double)http->peers.used);
  static const char *const refused[3] = {"peer_cap", "global_cap", "memory"};
  imp_metrics_family(w, "impulse_http_connections_refused_total",
                     IMP_METRIC_COUNTER,
                     "HTTP connections answered 503 and closed at once, by "
                     "reason.");
  for (int i = 0; i < 3; i++) {
    imp_label_t l[1] = {{"reason", refused[i]}};
    imp_metrics_sample_u64(w, "impulse_http_connections_refused_total", l, 1,
                           http->refused[i]);
  }
  static const char *const phase[3] = {"header", "body", "request"};
  imp_metrics_family(w, "impulse_http_timeouts_total", IMP_METRIC_COUNTER,
                     "HTTP requests answered 408 because they arrived too "
                     "slowly, by phase.");
  for (int i = 0; i < 3; i++) {
    imp_label_t l[1] = {{"phase", phase[i]}};
    imp_metrics_sample_u64(w, "impulse_http_timeouts_total", l, 1,
                           http->timeouts[i]);
  }
  imp_metrics_family(w, "impulse_http_responses_total", IMP_METRIC_COUNTER,
                     "Answers on the HTTP port, by status code.");
  for (int s = 100; s < HTTP_MAX_STATUS; s++) {
    if (http->responses[s] == 0) continue;
    char code[8];
    snprintf(code, sizeof code, "%d", s);
    imp_label_t l[1] = {{"code", code}};
    imp_metrics_sample_u64(w, "impulse_http_responses_total", l, 1,
                           http->responses[s]);
  }
}

int http_listen(imp_server_t *server,
                void (*route)(http_conn_t *conn, http_req_t *req)) {
  imp_config_t *cfg = &server->cfg;
  struct sockaddr_storage ss;
  int rc =
      uv_ip4_addr(cfg->http_host, cfg->http_port, (struct sockaddr_in *)&ss);
  if (rc != 0)
    rc =
        uv_ip6_addr(cfg->http_host, cfg->http_port, (struct sockaddr_in6 *)&ss);
  if (rc != 0) {
    IMP_LOG(IMP_LOG_ERROR, "invalid HTTP address '%s' (use an IP address)",
            cfg->http_host);
    return rc;
  }
  imp_http_t *http = calloc(1, sizeof *http);
  if (http == NULL) return UV_ENOMEM;
  http->server = server;
  http->route = route;
  uint64_t seed = 0;
  if (getrandom(&seed, sizeof seed, GRND_NONBLOCK) != (ssize_t)sizeof seed)
    seed = imp_now_ns();
  imp_peers_init(&http->peers, cfg->http_max_conns,
                 cfg->http_max_conns_per_peer, seed);
  http->conns.next = http->conns.prev = &http->conns;
  uv_tcp_init(server->loop, &http->listener);
  http->listener.data = http;
  rc = uv_tcp_bind(&http->listener, (struct sockaddr *)&ss, 0);
  if (rc == 0)
    rc = uv_listen((uv_stream_t *)&http->listener, 1024, on_connection);
  if (rc != 0) {
    IMP_LOG(cfg->http_explicit ? IMP_LOG_ERROR : IMP_LOG_WARN,
            "cannot listen for HTTP on %s:%d: %s%s", cfg->http_host,
            cfg->http_port, uv_strerror(rc),
            cfg->http_explicit ? "" : " (HTTP front end off; see --http)");
    /* Nothing else is open yet; the struct is freed once closed. */
    uv_close((uv_handle_t *)&http->listener, NULL);
    http->handles_closed = 1;
    server->http = http; /* freed by http_engine_free */
    http->listening = 0;
    return rc;
  }
  struct sockaddr_storage bound;
  int blen = sizeof bound;
  if (uv_tcp_getsockname(&http->listener, (struct sockaddr *)&bound, &blen) ==
      0)
    cfg->http_port = ntohs(bound.ss_family == AF_INET6
                               ? ((struct sockaddr_in6 *)&bound)->sin6_port
                               : ((struct sockaddr_in *)&bound)->sin_port);
  http->listening = 1;
  uv_check_init(server->loop, &http->flush);
  uv_check_start(&http->flush, on_check);
  uv_unref((uv_handle_t *)&http->flush);
  uv_timer_init(server->loop, &http->sweep);
  http->sweep.data = http;
  uint64_t every = sweep_interval(cfg);
  uv_timer_start(&http->sweep, on_sweep, every, every);
  uv_unref((uv_handle_t *)&http->sweep);
  if (server->metrics)
    imp_metrics_register(server->metrics, collect_http, http);
  server->http = http;
  return 0;
}

void http_engine_stop_listening(imp_server_t *server) {
  imp_http_t *http = server->http;
  if (http == NULL || !http->listening) return;
  http->listening = 0;
  uv_close((uv_handle_t *)&http->listener, NULL);
}

void http_engine_stop(imp_server_t *server) {
  imp_http_t *http = server->http;
  if (http == NULL || http->handles_closed) return;
  http_engine_stop_listening(server);
  http_conn_t *next;
  for (http_conn_t *c = http->conns.next; c != &http->conns; c = next) {
    next = c->next;
    if (c->closing) continue;
    /* Write the answers that are ready, then close; the requests from
     * the first unanswered one on are dropped. */
    http_req_t **pp = &c->head, *last = NULL;
    while (*pp && (*pp)->done) {
      last = *pp;
      pp = &(*pp)->next;
    }
    http_req_t *r = *pp, *rnext;
    *pp = NULL;
    c->tail = last;
    for (; r; r = rnext) {
      rnext = r->next;
      r->next = NULL;
      c->npipeline--;
      if (r->waiting)
        r->orphan = 1;
      else
        http_req_free(r);
    }
    c->stop_parsing = 1;
    c->eof = 1;
    http_flush_ready(c);
    c->close_after_flush = 1;
    conn_flush(c);
  }
}

void http_engine_close(imp_server_t *server) {
  imp_http_t *http = server->http;
  if (http == NULL || http->handles_closed) return;
  http->handles_closed = 1;
  http_engine_stop_listening(server);
  for (http_conn_t *c = http->conns.next; c != &http->conns; c = c->next)
    conn_close(c);
  uv_close((uv_handle_t *)&http->flush, NULL);
  uv_close((uv_handle_t *)&http->sweep, NULL);
}

void http_engine_free(imp_server_t *server) {
  imp_http_t *http = server->http;
  if (http == NULL) return;
  if (server->metrics)
    imp_metrics_unregister(server->metrics, collect_http, http);
  server->http = NULL;
  imp_peers_free(&http->peers);
  free(http);
}

int http_req_resume(http_req_t *req) {
  http_conn_t *conn = req->conn;
  req->waiting = 0;
  if (conn->closing || req->orphan) {
    http_req_free(req);
    http_conn_unref(conn);
    return 0;
  }
  return 1;
}

void http_req_answered(http_conn_t *conn) {
  http_flush_ready(conn);
  http_conn_process(conn);
  http_conn_unref(conn);
}
