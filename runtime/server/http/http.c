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

#include <http_parser.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "core/common.h"
#include "eventing/cloudevents.h"
#include "eventing/publish.h"
#include "eventing/trigger.h"
#include "server/control/info.h"
#include "server/http/dashboard.h"
#include "server/invoke/invoke.h"
#include "server/server.h"

#define HTTP_MAX_HEADER_BYTES (64u * 1024) /* request target + headers */
#define HTTP_MAX_HEADERS 128
#define HTTP_MAX_CONNS 4096
#define HTTP_MAX_PIPELINE 64        /* unanswered requests per connection */
#define HTTP_PAUSE_ABOVE (8u << 20) /* unwritten answer bytes */
#define HTTP_IDLE_MS 60000          /* idle keep-alive connections close */
#define HTTP_REQUEST_MS 60000       /* a request must arrive within this */
#define HTTP_LINGER_MS 2000
#define HTTP_LINGER_BYTES (16u << 20)
#define HTTP_READ_CHUNK (64 * 1024)
#define HTTP_KEEP_INBUF (256 * 1024) /* a larger idle input buffer is freed */
#define HTTP_MAX_STATUS 600

#define HDR_PREFIX "x-impulse-header-"

/* A header: offsets into the message's hbuf. */
typedef struct http_hdr_s {
  size_t name, nlen, value, vlen;
} http_hdr_t;

/* What the parser collected of one request; handlers read it. */
typedef struct http_msg_s {
  imp_buf_t hbuf; /* request target, then header names and values */
  size_t url_len;
  http_hdr_t *hdrs;
  size_t nhdrs, caphdrs;
  int last; /* last callback: 0 target, 1 header name, 2 header value */
  imp_buf_t body;
  int method;
} http_msg_t;

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
  http_parser parser;
  int refs;              /* open handle + waiting requests */
  int closing;           /* uv_close called */
  int close_after_flush; /* the last answer is queued */
  int lingering;         /* write side shut down, input thrown away */
  int eof;               /* the peer will send nothing more */
  int reading;
  int stop_parsing; /* a request ended the connection */
  int in_process;
  int reject; /* status a parser callback refused with */
  char reject_msg[160];
  size_t discarded;
  imp_buf_t in;
  size_t in_off; /* parsed bytes at the start of `in` */
  imp_buf_t out, writing;
  uv_write_t wreq;
  int write_busy;
  uv_shutdown_t sreq;
  http_req_t *cur;      /* being parsed */
  http_req_t *complete; /* parsed, to be dispatched */
  http_req_t *head, *tail;
  unsigned npipeline;
  int dirty;
  http_conn_t *dirty_next;
  uint64_t active_ms, cur_ms, linger_ms;
  http_conn_t *next, *prev;
};

struct imp_http_s {
  imp_server_t *server;
  uv_tcp_t listener;
  int listening;
  uv_check_t flush;
  uv_timer_t sweep;
  int handles_closed;
  http_conn_t conns; /* sentinel */
  unsigned nconns;
  http_conn_t *dirty_head;
  http_parser_settings settings;
  char date[40];
  time_t date_at;
  uint64_t responses[HTTP_MAX_STATUS];
};

static void conn_process(http_conn_t *conn);
static void conn_flush(http_conn_t *conn);
static void update_reading(http_conn_t *conn);

/* ---- small helpers ----------------------------------------------------------
 */

/* Buffers here hold at most a few times --max-frame; running out of memory
 * is handled like everywhere else in the server. */
static void bput(imp_buf_t *b, const void *p, size_t n) {
  if (n && imp_buf_append(b, p, n) != 0) abort();
}

static void bputs(imp_buf_t *b, const char *s) {
  bput(b, s, strlen(s));
}

static void bprintf(imp_buf_t *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void bprintf(imp_buf_t *b, const char *fmt, ...) {
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

static int ieq(const char *a, size_t alen, const char *b) {
  size_t bl = strlen(b);
  return alen == bl && strncasecmp(a, b, bl) == 0;
}

static int iprefix(const char *a, size_t alen, const char *p) {
  size_t pl = strlen(p);
  return alen >= pl && strncasecmp(a, p, pl) == 0;
}

/* RFC 9110 token characters, for header names. */
static int is_tchar(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
         (c >= '0' && c <= '9') || (c && strchr("!#$%&'*+-.^_`|~", c));
}

/* A header value we may write: no control characters except tab. */
static int is_field_value(const uint8_t *p, size_t n) {
  for (size_t i = 0; i < n; i++)
    if ((p[i] < 0x20 && p[i] != '\t') || p[i] == 0x7f) return 0;
  return 1;
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

static json_t *jcstr(const char *s) {
  return s ? jstr(s, strlen(s)) : json_null();
}

static json_t *ju64(uint64_t v) {
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
    default: return "Unknown";
  }
}

int imp_http_status_for(int code, int invoke) {
  switch (code) {
    case IMPULSE__ERROR_CODE__OK: return 200;
    case IMPULSE__ERROR_CODE__BAD_REQUEST: return 400;
    case IMPULSE__ERROR_CODE__UNAUTHENTICATED: return 401;
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

/* ---- requests
 * ------------------------------------------------------------------ */

static void msg_free(http_msg_t *m) {
  imp_buf_free(&m->hbuf);
  imp_buf_free(&m->body);
  free(m->hdrs);
  memset(m, 0, sizeof *m);
}

/* Moves the parsed request out of req, so that req holds only what its
 * answer needs while it waits. */
static http_msg_t msg_take(http_req_t *req) {
  http_msg_t m = req->msg;
  memset(&req->msg, 0, sizeof req->msg);
  return m;
}

static void req_free(http_req_t *req) {
  msg_free(&req->msg);
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

static const http_hdr_t *find_header(const http_msg_t *m, const char *name) {
  for (size_t i = 0; i < m->nhdrs; i++)
    if (ieq(m->hbuf.data + m->hdrs[i].name, m->hdrs[i].nlen, name))
      return &m->hdrs[i];
  return NULL;
}

static const char *hname(const http_msg_t *m, const http_hdr_t *h) {
  return m->hbuf.data + h->name;
}

static const char *hval(const http_msg_t *m, const http_hdr_t *h) {
  return m->hbuf.data + h->value;
}

/* Answers req: the status line, standard headers, `extra` (complete header
 * lines, may be NULL) and the body. */
static void respond(http_req_t *req, int status, const char *ctype,
                    const char *extra, const void *body, size_t len) {
  imp_http_t *http = req->conn->http;
  imp_buf_t *r = &req->resp;
  r->len = 0;
  bprintf(r,
          "HTTP/1.1 %d %s\r\nServer: impulse/" IMPULSE_VERSION
          "\r\nDate: %s\r\nContent-Length: %zu\r\n",
          status, reason(status), http_date(http), len);
  if (ctype) bprintf(r, "Content-Type: %s\r\n", ctype);
  if (extra) bputs(r, extra);
  if (!req->keep_alive)
    bputs(r, "Connection: close\r\n");
  else if (req->http10)
    bputs(r, "Connection: keep-alive\r\n");
  bputs(r, "\r\n");
  if (!req->head) bput(r, body, len);
  req->done = 1;
  if (status > 0 && status < HTTP_MAX_STATUS) http->responses[status]++;
}

static void respond_json(http_req_t *req, int status, json_t *j,
                         const char *extra) {
  char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;
  if (s == NULL) abort();
  size_t n = strlen(s);
  imp_buf_t b = {0};
  bput(&b, s, n);
  bput(&b, "\n", 1);
  free(s);
  respond(req, status, "application/json", extra, b.data, b.len);
  imp_buf_free(&b);
}

/* Answers with {"error":NAME,"message":...}; NAME is an ErrorCode name or,
 * for HTTP-level errors, e.g. METHOD_NOT_ALLOWED. */
static void respond_error(http_req_t *req, int status, const char *name,
                          const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void respond_error(http_req_t *req, int status, const char *name,
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
  respond_json(req, status, j, extra);
  json_decref(j);
}

static void respond_code(http_req_t *req, int code, int invoke,
                         const char *message) {
  respond_error(req, imp_http_status_for(code, invoke),
                imp_error_code_name(code), "%s", message ? message : "");
}

static void respond_405(http_req_t *req, const char *allow) {
  char extra[64];
  snprintf(extra, sizeof extra, "Allow: %s\r\n", allow);
  json_t *j = json_object();
  json_object_set_new(j, "error", json_string("METHOD_NOT_ALLOWED"));
  json_object_set_new(
      j, "message",
      json_string(strcmp(allow, "POST") == 0 ? "this endpoint takes POST"
                                             : "this endpoint takes GET"));
  respond_json(req, 405, j, extra);
  json_decref(j);
}

/* ---- connections
 * ------------------------------------------------------------------ */

static void conn_unref(http_conn_t *conn) {
  if (conn->refs <= 0) abort(); /* refcount underflow is a bug */
  if (--conn->refs > 0) return;
  if (conn->cur) req_free(conn->cur);
  if (conn->complete) req_free(conn->complete);
  imp_buf_free(&conn->in);
  imp_buf_free(&conn->out);
  imp_buf_free(&conn->writing);
  free(conn);
}

static void on_conn_closed(uv_handle_t *h) {
  http_conn_t *conn = IMP_CONTAINER_OF(h, http_conn_t, tcp);
  conn->prev->next = conn->next;
  conn->next->prev = conn->prev;
  conn->http->nconns--;
  conn_unref(conn);
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
      req_free(r);
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
static void flush_ready(http_conn_t *conn) {
  if (conn->closing) return;
  while (conn->head && conn->head->done) {
    http_req_t *r = conn->head;
    conn->head = r->next;
    if (conn->head == NULL) conn->tail = NULL;
    conn->npipeline--;
    bput(&conn->out, r->resp.data, r->resp.len);
    int keep = r->keep_alive;
    req_free(r);
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

/* Answers an error that ends the connection (after earlier answers). */
static void fail_conn(http_conn_t *conn, int status, const char *name,
                      const char *msg) {
  if (conn->cur) {
    req_free(conn->cur);
    conn->cur = NULL;
  }
  http_req_t *req = req_new(conn);
  req->keep_alive = 0;
  pipeline_add(conn, req);
  respond_error(req, status, name, "%s", msg);
  conn->stop_parsing = 1;
  flush_ready(conn);
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
  if (!conn->closing) conn_process(conn);
}

static void conn_flush(http_conn_t *conn) {
  if (conn->closing || conn->write_busy) return;
  if (conn->out.len > 0) {
    uv_buf_t b = uv_buf_init(conn->out.data, (unsigned)conn->out.len);
    int n = uv_try_write((uv_stream_t *)&conn->tcp, &b, 1);
    if (n == UV_EAGAIN || n == UV_ENOSYS) n = 0;
    if (n < 0) {
      conn_close(conn);
      return;
    }
    imp_buf_consume(&conn->out, (size_t)n);
    if (conn->out.len > 0) {
      /* The rest goes to a write request; new answers keep accumulating
       * in `out` meanwhile. */
      imp_buf_t t = conn->writing;
      conn->writing = conn->out;
      conn->out = t;
      conn->out.len = 0;
      b = uv_buf_init(conn->writing.data, (unsigned)conn->writing.len);
      if (uv_write(&conn->wreq, (uv_stream_t *)&conn->tcp, &b, 1, on_write) !=
          0) {
        conn_close(conn);
        return;
      }
      conn->write_busy = 1;
    }
  }
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
  if (imp_buf_reserve(&conn->in, HTTP_READ_CHUNK) != 0) {
    buf->base = NULL;
    buf->len = 0;
    return;
  }
  buf->base = conn->in.data + conn->in.len;
  buf->len = conn->in.cap - conn->in.len;
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
    if (conn->cur) {
      req_free(conn->cur);
      conn->cur = NULL;
    }
    conn->stop_parsing = 1;
    update_reading(conn);
    if (conn->head == NULL && pending_out(conn) == 0 && !conn->write_busy) {
      conn_close(conn);
      return;
    }
    flush_ready(conn);
    return;
  }
  if (conn->lingering) {
    conn->discarded += (size_t)nread;
    if (conn->discarded > HTTP_LINGER_BYTES) conn_close(conn);
    return;
  }
  conn->in.len += (size_t)nread;
  conn->active_ms = imp_now_ms();
  conn_process(conn);
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

/* ---- parser callbacks
 * --------------------------------------------------------------- */

static int refuse(http_conn_t *conn, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int refuse(http_conn_t *conn, int status, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(conn->reject_msg, sizeof conn->reject_msg, fmt, ap);
  va_end(ap);
  conn->reject = status;
  return -1;
}

static int header_room(http_conn_t *conn, size_t more) {
  if (conn->cur->msg.hbuf.len + more <= HTTP_MAX_HEADER_BYTES) return 0;
  return refuse(conn, 431, "request target and headers above %u bytes",
                HTTP_MAX_HEADER_BYTES);
}

static int on_message_begin(http_parser *p) {
  http_conn_t *conn = p->data;
  if (conn->cur) req_free(conn->cur);
  conn->cur = req_new(conn);
  conn->cur_ms = imp_now_ms();
  return 0;
}

static int on_url(http_parser *p, const char *at, size_t len) {
  http_conn_t *conn = p->data;
  if (header_room(conn, len) != 0) return -1;
  bput(&conn->cur->msg.hbuf, at, len);
  conn->cur->msg.url_len += len;
  return 0;
}

static int on_header_field(http_parser *p, const char *at, size_t len) {
  http_conn_t *conn = p->data;
  http_msg_t *m = &conn->cur->msg;
  if (header_room(conn, len) != 0) return -1;
  if (m->last != 1) { /* a new header (else the name goes on) */
    if (m->nhdrs == HTTP_MAX_HEADERS)
      return refuse(conn, 431, "more than %d request headers",
                    HTTP_MAX_HEADERS);
    if (m->nhdrs == m->caphdrs) {
      size_t cap = m->caphdrs ? m->caphdrs * 2 : 16;
      http_hdr_t *h = realloc(m->hdrs, cap * sizeof *h);
      if (h == NULL) abort();
      m->hdrs = h;
      m->caphdrs = cap;
    }
    http_hdr_t *h = &m->hdrs[m->nhdrs++];
    h->name = m->hbuf.len;
    h->nlen = h->value = h->vlen = 0;
    m->last = 1;
  }
  bput(&m->hbuf, at, len);
  m->hdrs[m->nhdrs - 1].nlen += len;
  return 0;
}

static int on_header_value(http_parser *p, const char *at, size_t len) {
  http_conn_t *conn = p->data;
  http_msg_t *m = &conn->cur->msg;
  if (header_room(conn, len) != 0) return -1;
  http_hdr_t *h = &m->hdrs[m->nhdrs - 1];
  if (m->last != 2) {
    h->value = m->hbuf.len;
    m->last = 2;
  }
  bput(&m->hbuf, at, len);
  h->vlen += len;
  return 0;
}

static int on_headers_complete(http_parser *p) {
  http_conn_t *conn = p->data;
  http_req_t *req = conn->cur;
  size_t max = conn->http->server->cfg.max_frame;
  req->msg.method = p->method;
  if (p->method == HTTP_CONNECT)
    return refuse(conn, 405, "CONNECT is not supported");
  /* Without a Content-Length, http-parser leaves ULLONG_MAX. */
  if (p->content_length != ULLONG_MAX && p->content_length > max)
    return refuse(conn, 413,
                  "request body of %llu bytes is above the %zu-byte limit",
                  (unsigned long long)p->content_length, max);
  if (p->content_length != ULLONG_MAX && p->content_length > 0 &&
      imp_buf_reserve(&req->msg.body, (size_t)p->content_length) != 0)
    abort();
  /* A client that waits for 100 Continue gets it at once, unless earlier
   * answers are still due on this connection (it would overtake them). */
  const http_hdr_t *e = find_header(&req->msg, "expect");
  if (e && ieq(hval(&req->msg, e), e->vlen, "100-continue") &&
      conn->head == NULL && !conn->closing) {
    bputs(&conn->out, "HTTP/1.1 100 Continue\r\n\r\n");
    mark_dirty(conn);
  }
  return 0;
}

static int on_body(http_parser *p, const char *at, size_t len) {
  http_conn_t *conn = p->data;
  imp_buf_t *b = &conn->cur->msg.body;
  size_t max = conn->http->server->cfg.max_frame;
  if (b->len + len > max)
    return refuse(conn, 413, "request body above the %zu-byte limit", max);
  bput(b, at, len);
  return 0;
}

static int on_message_complete(http_parser *p) {
  http_conn_t *conn = p->data;
  http_req_t *req = conn->cur;
  conn->cur = NULL;
  req->keep_alive = http_should_keep_alive(p);
  req->http10 = p->http_major == 1 && p->http_minor == 0;
  req->head = p->method == HTTP_HEAD;
  conn->complete = req;
  /* One request at a time: it is dispatched outside the parser. */
  http_parser_pause(p, 1);
  return 0;
}

/* ---- handlers
 * ----------------------------------------------------------------------- */

/* 0 when the request may go on, else it is answered 401. A token that is
 * sent is always checked, needed or not. */
static int check_auth(http_conn_t *conn, http_req_t *req, int needed) {
  const http_msg_t *m = &req->msg;
  const http_hdr_t *h = find_header(m, "authorization");
  if (h == NULL) {
    if (!needed) return 0;
    respond_error(req, 401, "UNAUTHENTICATED",
                  "this call needs the admin token (Authorization: Bearer "
                  "TOKEN)");
    return -1;
  }
  const char *v = hval(m, h);
  size_t n = h->vlen;
  while (n && (*v == ' ' || *v == '\t')) v++, n--;
  while (n && (v[n - 1] == ' ' || v[n - 1] == '\t')) n--;
  if (!iprefix(v, n, "bearer ") ||
      !token_equal(v + 7, n - 7, conn->http->server->control.token)) {
    respond_error(req, 401, "UNAUTHENTICATED", "invalid token");
    return -1;
  }
  return 0;
}

static int valid_function_name(const char *s, size_t n) {
  if (n == 0 || n > 64) return 0;
  for (size_t i = 0; i < n; i++) {
    char c = s[i];
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
          (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-'))
      return 0;
  }
  return 1;
}

/* Parses a decimal number up to max; 0 or -1. */
static int parse_u64(const char *s, size_t n, uint64_t max, uint64_t *out) {
  uint64_t v = 0;
  while (n && (*s == ' ' || *s == '\t')) s++, n--;
  while (n && (s[n - 1] == ' ' || s[n - 1] == '\t')) n--;
  if (n == 0 || n > 20) return -1;
  for (size_t i = 0; i < n; i++) {
    if (s[i] < '0' || s[i] > '9') return -1;
    uint64_t d = (uint64_t)(s[i] - '0');
    if (v > (max - d) / 10) return -1;
    v = v * 10 + d;
  }
  *out = v;
  return 0;
}

/* Headers built for a protobuf request: names and values copied. */
typedef struct hdrset_s {
  Impulse__Header *h;
  Impulse__Header **p;
  size_t n, cap;
} hdrset_t;

static void hdrset_add(hdrset_t *s, const char *prefix, const char *name,
                       size_t nlen, int lower, const void *value, size_t vlen) {
  if (s->n == s->cap) {
    size_t cap = s->cap ? s->cap * 2 : 8;
    Impulse__Header *h = realloc(s->h, cap * sizeof *h);
    Impulse__Header **p = realloc(s->p, cap * sizeof *p);
    if (h == NULL || p == NULL) abort();
    s->h = h;
    s->p = p;
    s->cap = cap;
  }
  size_t pl = strlen(prefix);
  char *mem = malloc(pl + nlen + 1 + (vlen ? vlen : 1));
  if (mem == NULL) abort();
  memcpy(mem, prefix, pl);
  for (size_t i = 0; i < nlen; i++) {
    char c = name[i];
    mem[pl + i] = lower && c >= 'A' && c <= 'Z' ? (char)(c + 32) : c;
  }
  mem[pl + nlen] = '\0';
  uint8_t *val = (uint8_t *)mem + pl + nlen + 1;
  if (vlen) memcpy(val, value, vlen);
  Impulse__Header *h = &s->h[s->n];
  impulse__header__init(h);
  h->name = mem;
  h->has_value = 1;
  h->value.data = val;
  h->value.len = vlen;
  s->n++;
}

static void hdrset_free(hdrset_t *s) {
  for (size_t i = 0; i < s->n; i++) free(s->h[i].name);
  free(s->h);
  free(s->p);
  memset(s, 0, sizeof *s);
}

/* Fills the pointer array once the set is complete (realloc moved h). */
static Impulse__Header **hdrset_ptrs(hdrset_t *s) {
  for (size_t i = 0; i < s->n; i++) s->p[i] = &s->h[i];
  return s->p;
}

static void on_invoked(void *arg, uint64_t tag, const imp_answer_t *answer) {
  http_req_t *req = arg;
  int code = answer->code;
  const char *message = answer->message;
  const Impulse__InvokeResponse *resp = answer->resp;
  (void)tag;
  http_conn_t *conn = req->conn;
  req->waiting = 0;
  if (conn->closing || req->orphan) {
    req_free(req);
    conn_unref(conn);
    return;
  }
  if (code != 0) {
    respond_code(req, code, 1, message);
  } else {
    imp_buf_t extra = {0};
    const char *ctype = "application/octet-stream";
    char ctbuf[256];
    bprintf(&extra, "X-Impulse-Version: %u\r\n",
            resp->has_version ? resp->version : 0);
    for (size_t i = 0; i < resp->n_headers; i++) {
      const Impulse__Header *h = resp->headers[i];
      const uint8_t *v = h->has_value ? h->value.data : NULL;
      size_t vl = h->has_value ? h->value.len : 0;
      size_t nl = strlen(h->name);
      int ok = nl > 0 && nl <= 256 && is_field_value(v, vl);
      for (size_t k = 0; ok && k < nl; k++)
        ok = is_tchar((unsigned char)h->name[k]);
      if (!ok) continue; /* cannot be written as an HTTP header */
      bprintf(&extra, "X-Impulse-Header-%s: ", h->name);
      bput(&extra, v, vl);
      bputs(&extra, "\r\n");
      if (ieq(h->name, nl, "content-type") && vl < sizeof ctbuf) {
        memcpy(ctbuf, v, vl);
        ctbuf[vl] = '\0';
        ctype = ctbuf;
      }
    }
    bput(&extra, "", 1); /* NUL-terminated for respond() */
    respond(req, 200, ctype, extra.data,
            resp->has_payload ? resp->payload.data : NULL,
            resp->has_payload ? resp->payload.len : 0);
    imp_buf_free(&extra);
  }
  flush_ready(conn);
  conn_process(conn);
  conn_unref(conn);
}

static void handle_invoke(http_conn_t *conn, http_req_t *req, const char *name,
                          size_t nlen) {
  imp_server_t *server = conn->http->server;
  http_msg_t *m = &req->msg;
  if (!valid_function_name(name, nlen)) {
    respond_error(req, 400, "BAD_REQUEST",
                  "invalid function name (1-64 of [A-Za-z0-9_.-])");
    return;
  }
  if (check_auth(conn, req, server->cfg.invoke_needs_token) != 0) return;
  if (server->stopping) {
    respond_error(req, 503, "SHUTTING_DOWN", "server is stopping");
    return;
  }
  char fname[65];
  memcpy(fname, name, nlen);
  fname[nlen] = '\0';
  Impulse__InvokeRequest ir = IMPULSE__INVOKE_REQUEST__INIT;
  ir.function = fname;
  ir.has_payload = 1;
  ir.payload.data = (uint8_t *)m->body.data;
  ir.payload.len = m->body.len;
  const http_hdr_t *h = find_header(m, "x-impulse-deadline-ms");
  if (h) {
    uint64_t v;
    if (parse_u64(hval(m, h), h->vlen, UINT32_MAX, &v) != 0) {
      respond_error(req, 400, "BAD_REQUEST",
                    "X-Impulse-Deadline-Ms must be a number of milliseconds "
                    "(0 to 4294967295)");
      return;
    }
    ir.has_deadline_ms = 1;
    ir.deadline_ms = (uint32_t)v;
  }
  char *key = NULL;
  h = find_header(m, "x-impulse-idempotency-key");
  if (h && h->vlen > 0) {
    if (memchr(hval(m, h), '\0', h->vlen)) {
      respond_error(req, 400, "BAD_REQUEST",
                    "X-Impulse-Idempotency-Key holds a NUL byte");
      return;
    }
    key = strndup(hval(m, h), h->vlen);
    if (key == NULL) abort();
    ir.idempotency_key = key;
  }
  hdrset_t hs = {0};
  size_t pl = strlen(HDR_PREFIX);
  for (size_t i = 0; i < m->nhdrs; i++) {
    const http_hdr_t *x = &m->hdrs[i];
    if (x->nlen > pl && iprefix(hname(m, x), x->nlen, HDR_PREFIX))
      hdrset_add(&hs, "", hname(m, x) + pl, x->nlen - pl, 1, hval(m, x),
                 x->vlen);
  }
  ir.n_headers = hs.n;
  ir.headers = hdrset_ptrs(&hs);
  /* The request is packed by the call; what it points to is freed after. */
  http_msg_t msg = msg_take(req);
  req->waiting = 1;
  conn->refs++;
  imp_invoker_t *inv = &server->control.invoke.invoker;
  int rc = inv->ops->invoke(inv, &ir, on_invoked, req);
  /* From here on req may have been answered and freed (rc == 0). */
  if (rc != 0) {
    req->waiting = 0;
    conn->refs--;
    if (rc == -ENOENT)
      respond_error(req, 404, "NOT_FOUND", "unknown function '%s'", fname);
    else if (rc == -ESHUTDOWN)
      respond_error(req, 503, "SHUTTING_DOWN", "server is stopping");
    else if (rc == -E2BIG)
      respond_error(req, 413, "TOO_LARGE",
                    "request above the %zu-byte frame limit",
                    server->cfg.max_frame);
    else
      respond_error(req, 500, "INTERNAL", "cannot invoke: %s",
                    imp_strerror(rc));
  }
  hdrset_free(&hs);
  free(key);
  msg_free(&msg);
}

static void on_published(void *arg, int err, const char *errstr,
                         int32_t partition, int64_t offset) {
  http_req_t *req = arg;
  http_conn_t *conn = req->conn;
  req->waiting = 0;
  if (conn->closing || req->orphan) {
    req_free(req);
    conn_unref(conn);
    return;
  }
  if (err != 0) {
    char msg[512];
    int code = imp_publish_error_code(conn->http->server->kafka, err, errstr,
                                      msg, sizeof msg);
    respond_code(req, code, 0, msg);
  } else {
    json_t *j = json_object();
    json_object_set_new(j, "topic", jcstr(req->topic));
    json_object_set_new(j, "partition", json_integer(partition));
    json_object_set_new(j, "offset", json_integer(offset));
    respond_json(req, 202, j, NULL);
    json_decref(j);
  }
  flush_ready(conn);
  conn_process(conn);
  conn_unref(conn);
}

/* Strict base64 (RFC 4648, padding required); 0 or -1. `out` needs
 * len / 4 * 3 bytes. */
static int base64_decode(const char *in, size_t len, uint8_t *out,
                         size_t *outlen) {
  static const char *alphabet =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  if (len % 4 != 0) return -1;
  size_t o = 0;
  for (size_t i = 0; i < len; i += 4) {
    uint32_t v = 0;
    int pad = 0;
    for (int k = 0; k < 4; k++) {
      char c = in[i + k];
      const char *p = c ? strchr(alphabet, c) : NULL;
      if (c == '=' && i + 4 == len && k >= 2) {
        pad++;
        v <<= 6;
        continue;
      }
      if (p == NULL || pad) return -1;
      v = (v << 6) | (uint32_t)(p - alphabet);
    }
    out[o++] = (uint8_t)(v >> 16);
    if (pad < 2) out[o++] = (uint8_t)(v >> 8);
    if (pad < 1) out[o++] = (uint8_t)v;
  }
  *outlen = o;
  return 0;
}

/* Structured mode: the event's attributes become ce_* headers (its
 * datacontenttype the content-type header), its data the value. Returns 0,
 * or -1 after answering 400. *data (malloc'd or NULL) is the caller's. */
static int structured_event(http_req_t *req, json_t *ev, hdrset_t *hs,
                            Impulse__PublishRequest *pr, char **data,
                            const char **pkey) {
  *data = NULL;
  if (!json_is_object(ev)) {
    respond_error(req, 400, "BAD_REQUEST",
                  "a structured-mode event must be a JSON object");
    return -1;
  }
  for (size_t i = 0; i < IMP_CE_NREQUIRED; i++)
    if (!json_is_string(json_object_get(ev, imp_ce_required[i]))) {
      respond_error(req, 400, "BAD_REQUEST",
                    "the event has no '%s' attribute (a string)",
                    imp_ce_required[i]);
      return -1;
    }
  json_t *d = json_object_get(ev, "data");
  json_t *d64 = json_object_get(ev, "data_base64");
  if (d && d64) {
    respond_error(req, 400, "BAD_REQUEST",
                  "the event has both 'data' and 'data_base64'");
    return -1;
  }
  const char *k;
  json_t *v;
  json_object_foreach(ev, k, v) {
    if (strcmp(k, "data") == 0 || strcmp(k, "data_base64") == 0) continue;
    if (!imp_ce_attr_valid(k, strlen(k))) {
      respond_error(req, 400, "BAD_REQUEST",
                    "invalid attribute name '%.64s' (lower-case letters and "
                    "digits)",
                    k);
      return -1;
    }
    char num[64];
    const char *s = NULL;
    size_t sl = 0;
    if (json_is_string(v)) {
      s = json_string_value(v);
      sl = json_string_length(v);
    } else if (json_is_integer(v)) {
      sl = (size_t)snprintf(num, sizeof num, "%lld",
                            (long long)json_integer_value(v));
      s = num;
    } else if (json_is_real(v)) {
      sl = (size_t)snprintf(num, sizeof num, "%.17g", json_real_value(v));
      s = num;
    } else if (json_is_boolean(v)) {
      s = json_is_true(v) ? "true" : "false";
      sl = strlen(s);
    } else if (json_is_null(v)) {
      continue;
    } else {
      respond_error(req, 400, "BAD_REQUEST",
                    "attribute '%s' must be a string, number or boolean", k);
      return -1;
    }
    char hdr[IMP_CE_HEADER_MAX];
    size_t hl = imp_ce_attr_header(k, strlen(k), hdr, sizeof hdr);
    hdrset_add(hs, "", hdr, hl, 0, s, sl);
    if (strcmp(k, "partitionkey") == 0 && json_is_string(v) && *pkey == NULL)
      *pkey = json_string_value(v);
  }
  if (d64) {
    if (!json_is_string(d64)) {
      respond_error(req, 400, "BAD_REQUEST", "'data_base64' must be a string");
      return -1;
    }
    size_t n = json_string_length(d64), out;
    *data = malloc(n / 4 * 3 + 1);
    if (*data == NULL) abort();
    if (base64_decode(json_string_value(d64), n, (uint8_t *)*data, &out) != 0) {
      respond_error(req, 400, "BAD_REQUEST", "'data_base64' is not base64");
      return -1;
    }
    pr->has_value = 1;
    pr->value.data = (uint8_t *)*data;
    pr->value.len = out;
  } else if (json_is_string(d)) {
    pr->has_value = 1;
    pr->value.data = (uint8_t *)json_string_value(d);
    pr->value.len = json_string_length(d);
  } else if (d && !json_is_null(d)) {
    *data = json_dumps(d, JSON_COMPACT | JSON_ENCODE_ANY);
    if (*data == NULL) abort();
    pr->has_value = 1;
    pr->value.data = (uint8_t *)*data;
    pr->value.len = strlen(*data);
  }
  return 0;
}

static void handle_publish(http_conn_t *conn, http_req_t *req,
                           const char *topic, size_t tlen) {
  imp_server_t *server = conn->http->server;
  http_msg_t *m = &req->msg;
  if (check_auth(conn, req, server->cfg.invoke_needs_token) != 0) return;
  if (server->stopping) {
    respond_error(req, 503, "SHUTTING_DOWN", "server is stopping");
    return;
  }
  char tname[256];
  if (tlen >= sizeof tname) {
    respond_error(req, 400, "BAD_REQUEST", "topic name is too long");
    return;
  }
  memcpy(tname, topic, tlen);
  tname[tlen] = '\0';
  Impulse__PublishRequest pr = IMPULSE__PUBLISH_REQUEST__INIT;
  pr.topic = tname;
  hdrset_t hs = {0};
  json_t *ev = NULL;
  char *data = NULL;
  const char *pkey = NULL;
  size_t pkeylen = 0;
  const http_hdr_t *h = find_header(m, "content-type");
  size_t ctl = 0;
  if (h) { /* the media type, before any parameters */
    const char *v = hval(m, h);
    while (ctl < h->vlen && v[ctl] != ';' && v[ctl] != ' ' && v[ctl] != '\t')
      ctl++;
  }
  if (h && ieq(hval(m, h), ctl, IMP_CE_MEDIA_TYPE)) {
    json_error_t jerr;
    ev = json_loadb(m->body.data ? m->body.data : "", m->body.len,
                    JSON_REJECT_DUPLICATES, &jerr);
    if (ev == NULL) {
      respond_error(req, 400, "BAD_REQUEST", "invalid JSON: %s (line %d)",
                    jerr.text, jerr.line);
      goto out;
    }
    if (structured_event(req, ev, &hs, &pr, &data, &pkey) != 0) goto out;
    if (pkey) pkeylen = strlen(pkey);
  } else {
    /* Binary mode: ce-* headers are the attributes, the body the data. */
    static const char empty[1] = "";
    pr.has_value = 1;
    pr.value.data = (uint8_t *)(m->body.len ? m->body.data : empty);
    pr.value.len = m->body.len;
    if (h) hdrset_add(&hs, "", "content-type", 12, 0, hval(m, h), h->vlen);
    size_t pl = strlen(HDR_PREFIX);
    for (size_t i = 0; i < m->nhdrs; i++) {
      const http_hdr_t *x = &m->hdrs[i];
      const char *n = hname(m, x);
      size_t at = imp_ce_http_attr(n, x->nlen);
      if (at > 0) {
        hdrset_add(&hs, IMP_CE_KAFKA_PREFIX, n + at, x->nlen - at, 1,
                   hval(m, x), x->vlen);
        if (ieq(n + at, x->nlen - at, "partitionkey")) {
          pkey = hval(m, x);
          pkeylen = x->vlen;
        }
      } else if (x->nlen > pl && iprefix(n, x->nlen, HDR_PREFIX)) {
        hdrset_add(&hs, "", n + pl, x->nlen - pl, 1, hval(m, x), x->vlen);
      }
    }
  }
  if ((h = find_header(m, "x-impulse-key")) != NULL) {
    pkey = hval(m, h);
    pkeylen = h->vlen;
  }
  if (pkey) {
    pr.has_key = 1;
    pr.key.data = (uint8_t *)pkey;
    pr.key.len = pkeylen;
  }
  if ((h = find_header(m, "x-impulse-partition")) != NULL) {
    uint64_t v;
    if (parse_u64(hval(m, h), h->vlen, INT32_MAX, &v) != 0) {
      respond_error(req, 400, "BAD_REQUEST",
                    "X-Impulse-Partition must be a partition number");
      goto out;
    }
    pr.has_partition = 1;
    pr.partition = (int32_t)v;
  }
  pr.n_headers = hs.n;
  pr.headers = hdrset_ptrs(&hs);
  req->topic = strdup(tname);
  if (req->topic == NULL) abort();
  http_msg_t msg = msg_take(req);
  req->waiting = 1;
  conn->refs++;
  char why[512];
  int code =
      imp_publish_start(server->kafka, &pr, on_published, req, why, sizeof why);
  /* From here on req may have been answered and freed (code == 0). */
  if (code != 0) {
    req->waiting = 0;
    conn->refs--;
    respond_code(req, code, 0, why);
  }
  msg_free(&msg);
out:
  hdrset_free(&hs);
  free(data);
  if (ev) json_decref(ev);
}

static json_t *state_json(imp_server_t *server) {
  json_t *root = json_object();
  json_t *srv = json_object();
  char addr[300];
  unsigned warm = imp_fleet_warm(&server->control.fleet);
  json_object_set_new(srv, "version", json_string(IMPULSE_VERSION));
  json_object_set_new(srv, "uptime_ms",
                      ju64(imp_now_ms() - server->started_ms));
  json_object_set_new(srv, "ready",
                      json_boolean(server->ready && !server->stopping));
  json_object_set_new(srv, "stopping", json_boolean(server->stopping));
  snprintf(addr, sizeof addr, "%s:%d", server->cfg.listen_host,
           server->cfg.listen_port);
  json_object_set_new(srv, "rpc", jcstr(addr));
  snprintf(addr, sizeof addr, "%s:%d", server->cfg.http_host,
           server->cfg.http_port);
  json_object_set_new(srv, "http", jcstr(addr));
  json_object_set_new(srv, "invoke_needs_token",
                      json_boolean(server->cfg.invoke_needs_token));
  json_object_set_new(srv, "max_frame", ju64(server->cfg.max_frame));
  json_t *pool = json_object();
  json_object_set_new(pool, "target", ju64(server->cfg.warm_pool));
  json_object_set_new(pool, "ready", ju64(warm));
  json_object_set_new(srv, "warm_pool", pool);
  json_t *kafka = json_object();
  json_object_set_new(
      kafka, "bootstrap",
      server->kafka ? jcstr(imp_kafka_bootstrap(server->kafka)) : json_null());
  json_object_set_new(
      kafka, "embedded",
      json_boolean(server->kafka && imp_kafka_is_embedded(server->kafka)));
  json_object_set_new(srv, "kafka", kafka);
  json_object_set_new(srv, "functions",
                      ju64(server->control.invoke.registry.count));
  json_object_set_new(srv, "instances", ju64(server->control.fleet.ninstances));
  json_object_set_new(root, "server", srv);

  json_t *fns = json_array();
  imp_function_t *fn;
  IMP_REGISTRY_EACH(fn, &server->control.invoke.registry) {
    if (fn->deleted) continue;
    Impulse__FunctionInfo fi;
    Impulse__FunctionConfig cfg;
    imp_control_function_info(&server->control, fn, &fi, &cfg);
    json_t *f = json_object();
    json_object_set_new(f, "name", jcstr(fi.name));
    json_object_set_new(f, "version", ju64(fi.version));
    json_object_set_new(f, "sha256", jcstr(fi.sha256));
    json_object_set_new(f, "instances", ju64(fi.instances));
    json_object_set_new(f, "ready", ju64(fi.ready));
    json_object_set_new(f, "in_flight", ju64(fi.in_flight));
    json_object_set_new(f, "queued", ju64(fi.queued));
    json_object_set_new(f, "invocations", ju64(fi.invocations));
    json_object_set_new(f, "errors", ju64(fi.errors));
    json_object_set_new(f, "cold_starts", ju64(fi.cold_starts));
    json_object_set_new(f, "warm_starts", ju64(fi.warm_starts));
    json_object_set_new(f, "policy", jcstr(fi.policy ? fi.policy : cfg.policy));
    /* The autoscaler's last decision; null until it has made one. */
    json_object_set_new(f, "desired",
                        fi.has_desired ? ju64(fi.desired) : json_null());
    json_object_set_new(
        f, "forecast_per_min",
        fi.has_forecast_per_min ? json_real(fi.forecast_per_min) : json_null());
    json_object_set_new(
        f, "forecast_instances",
        fi.has_forecast_instances ? ju64(fi.forecast_instances) : json_null());
    json_object_set_new(f, "panic", json_boolean(fi.has_panic && fi.panic));
    json_object_set_new(f, "scale_reason", jcstr(fi.scale_reason));
    json_t *set = json_object();
    json_object_set_new(set, "concurrency", ju64(cfg.concurrency));
    json_object_set_new(set, "timeout_ms", ju64(cfg.timeout_ms));
    json_object_set_new(set, "memory_mb", ju64(cfg.memory_mb));
    json_object_set_new(set, "min_instances", ju64(cfg.min_instances));
    json_object_set_new(set, "max_instances", ju64(cfg.max_instances));
    json_object_set_new(f, "settings", set);
    json_array_append_new(fns, f);
  }
  json_object_set_new(root, "functions", fns);

  json_t *insts = json_array();
  uint64_t now = imp_now_ms();
  for (imp_instance_t *i = server->control.fleet.instances.next;
       i != &server->control.fleet.instances; i = i->next) {
    json_t *o = json_object();
    json_object_set_new(o, "id", ju64(i->id));
    json_object_set_new(o, "function",
                        i->function
                            ? jcstr(((imp_function_t *)i->function)->name)
                            : json_null());
    json_object_set_new(o, "version", ju64(i->function ? i->version : 0));
    json_object_set_new(o, "state",
                        json_string(imp_instance_state_name(i->state)));
    json_object_set_new(o, "pid", json_integer(i->pid));
    json_object_set_new(o, "outstanding", ju64(i->d.outstanding));
    json_object_set_new(o, "served", ju64(i->served));
    json_object_set_new(o, "uptime_ms",
                        ju64(now > i->started_ms ? now - i->started_ms : 0));
    json_array_append_new(insts, o);
  }
  json_object_set_new(root, "instances", insts);
  return root;
}

static void trigger_json(void *arg, const Impulse__TriggerInfo *info) {
  json_t *arr = arg;
  const Impulse__TriggerSpec *s = info->spec;
  json_t *t = json_object();
  json_object_set_new(t, "name", jcstr(s->name));
  json_object_set_new(t, "topic", jcstr(s->topic));
  json_object_set_new(t, "function", jcstr(s->function));
  json_object_set_new(t, "state", jcstr(info->state));
  json_object_set_new(t, "ordering", jcstr(s->ordering));
  json_object_set_new(t, "group", jcstr(s->group));
  json_object_set_new(t, "dlq", jcstr(s->dlq));
  json_object_set_new(t, "reply_topic", jcstr(s->reply_topic));
  int64_t lag = 0;
  json_t *parts = json_array();
  for (size_t i = 0; i < info->n_partitions; i++) {
    const Impulse__PartitionInfo *p = info->partitions[i];
    json_t *o = json_object();
    json_object_set_new(o, "partition", json_integer(p->partition));
    json_object_set_new(o, "committed", json_integer(p->committed));
    json_object_set_new(o, "high_watermark", json_integer(p->high_watermark));
    json_object_set_new(o, "lag", json_integer(p->lag));
    json_object_set_new(o, "in_flight", ju64(p->in_flight));
    json_object_set_new(o, "paused", json_boolean(p->paused));
    json_array_append_new(parts, o);
    lag += p->lag;
  }
  json_object_set_new(t, "lag", json_integer(lag));
  json_object_set_new(t, "in_flight", ju64(info->in_flight));
  json_object_set_new(t, "received", ju64(info->received));
  json_object_set_new(t, "handled", ju64(info->handled));
  json_object_set_new(t, "retried", ju64(info->retried));
  json_object_set_new(t, "dead_lettered", ju64(info->dead_lettered));
  json_object_set_new(t, "batches", ju64(info->batches));
  json_object_set_new(t, "batched", ju64(info->batched));
  json_object_set_new(t, "partitions", parts);
  json_array_append_new(arr, t);
}

static void handle_state(http_conn_t *conn, http_req_t *req) {
  imp_server_t *server = conn->http->server;
  if (check_auth(conn, req, server->cfg.invoke_needs_token) != 0) return;
  json_t *root = state_json(server);
  json_t *trig = json_array();
  if (server->triggers)
    imp_triggers_foreach(server->triggers, trigger_json, trig);
  json_object_set_new(root, "triggers", trig);
  respond_json(req, 200, root, "Cache-Control: no-store\r\n");
  json_decref(root);
}

/* The dashboard page. It holds no state, so it is open like the probes;
 * the data it shows comes from /api/state under that endpoint's auth (the
 * page asks for the token when /api/state answers 401). The policy keeps
 * the page from loading anything but itself and /api/state. */
static void handle_dashboard(http_req_t *req) {
  respond(req, 200, "text/html; charset=utf-8",
          "Cache-Control: no-cache\r\n"
          "X-Content-Type-Options: nosniff\r\n"
          "Content-Security-Policy: default-src 'none'; script-src "
          "'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; "
          "img-src data:; form-action 'none'; frame-ancestors 'none'\r\n",
          imp_dashboard_html, imp_dashboard_html_len);
}

static void handle_metrics(http_conn_t *conn, http_req_t *req) {
  imp_buf_t b = {0};
  if (imp_metrics_render(conn->http->server->metrics, &b) != 0) abort();
  respond(req, 200, "text/plain; version=0.0.4; charset=utf-8", NULL, b.data,
          b.len);
  imp_buf_free(&b);
}

static int path_is(const char *p, size_t n, const char *want) {
  return n == strlen(want) && memcmp(p, want, n) == 0;
}

static int path_under(const char *p, size_t n, const char *prefix) {
  size_t pl = strlen(prefix);
  return n >= pl && memcmp(p, prefix, pl) == 0;
}

static void route(http_conn_t *conn, http_req_t *req) {
  imp_server_t *server = conn->http->server;
  http_msg_t *m = &req->msg;
  struct http_parser_url u;
  http_parser_url_init(&u);
  if (m->url_len == 0 ||
      http_parser_parse_url(m->hbuf.data, m->url_len, 0, &u) != 0 ||
      !(u.field_set & (1 << UF_PATH))) {
    respond_error(req, 400, "BAD_REQUEST", "invalid request target");
    return;
  }
  const char *path = m->hbuf.data + u.field_data[UF_PATH].off;
  size_t plen = u.field_data[UF_PATH].len;
  int get = m->method == HTTP_GET || m->method == HTTP_HEAD;
  int post = m->method == HTTP_POST;
  if (path_under(path, plen, "/function/")) {
    if (post)
      handle_invoke(conn, req, path + 10, plen - 10);
    else
      respond_405(req, "POST");
  } else if (path_under(path, plen, "/topics/")) {
    if (post)
      handle_publish(conn, req, path + 8, plen - 8);
    else
      respond_405(req, "POST");
  } else if (path_is(path, plen, "/healthz")) {
    if (get)
      respond(req, 200, "text/plain; charset=utf-8", NULL, "ok\n", 3);
    else
      respond_405(req, "GET");
  } else if (path_is(path, plen, "/readyz")) {
    if (!get)
      respond_405(req, "GET");
    else if (server->ready && !server->stopping)
      respond(req, 200, "text/plain; charset=utf-8", NULL, "ready\n", 6);
    else
      respond_error(req, 503,
                    server->stopping ? "SHUTTING_DOWN" : "UNAVAILABLE",
                    server->stopping ? "server is stopping"
                                     : "server is starting (restoring state)");
  } else if (path_is(path, plen, "/metrics")) {
    if (get)
      handle_metrics(conn, req);
    else
      respond_405(req, "GET");
  } else if (path_is(path, plen, "/")) {
    if (get)
      handle_dashboard(req);
    else
      respond_405(req, "GET");
  } else if (path_is(path, plen, "/api/state")) {
    if (get)
      handle_state(conn, req);
    else
      respond_405(req, "GET");
  } else {
    respond_error(req, 404, "NOT_FOUND", "no such endpoint: %.*s",
                  (int)(plen > 200 ? 200 : plen), path);
  }
}

/* A complete request: queue it for its answer and serve it. */
static void dispatch(http_conn_t *conn, http_req_t *req) {
  pipeline_add(conn, req);
  if (!req->keep_alive) conn->stop_parsing = 1;
  route(conn, req);
  flush_ready(conn);
}

/* Parses and dispatches what has been read, one request at a time. */
static void conn_process(http_conn_t *conn) {
  if (conn->in_process || conn->closing || conn->lingering) return;
  conn->in_process = 1;
  imp_http_t *http = conn->http;
  while (!conn->closing && !conn->stop_parsing && conn->in_off < conn->in.len) {
    if (conn->npipeline >= HTTP_MAX_PIPELINE ||
        pending_out(conn) > HTTP_PAUSE_ABOVE)
      break;
    size_t avail = conn->in.len - conn->in_off;
    size_t n = http_parser_execute(&conn->parser, &http->settings,
                                   conn->in.data + conn->in_off, avail);
    conn->in_off += n;
    enum http_errno e = HTTP_PARSER_ERRNO(&conn->parser);
    if (e == HPE_PAUSED) {
      http_parser_pause(&conn->parser, 0);
      http_req_t *req = conn->complete;
      conn->complete = NULL;
      if (req) dispatch(conn, req);
      continue;
    }
    if (e != HPE_OK) {
      char msg[200];
      int status = conn->reject               ? conn->reject
                   : e == HPE_HEADER_OVERFLOW ? 431
                                              : 400;
      if (conn->reject)
        snprintf(msg, sizeof msg, "%s", conn->reject_msg);
      else
        snprintf(msg, sizeof msg, "malformed request: %s",
                 http_errno_description(e));
      fail_conn(conn, status,
                status == 413 || status == 431 ? "TOO_LARGE"
                : status == 405                ? "METHOD_NOT_ALLOWED"
                                               : "BAD_REQUEST",
                msg);
      break;
    }
    if (n < avail) { /* the parser stopped without saying why */
      fail_conn(conn, 400, "BAD_REQUEST", "malformed request");
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

/* ---- listener, sweep
 * ------------------------------------------------------------------- */

static void on_connection(uv_stream_t *listener, int status) {
  imp_http_t *http = listener->data;
  if (status < 0) {
    IMP_LOG(IMP_LOG_WARN, "http accept: %s", uv_strerror(status));
    return;
  }
  http_conn_t *conn = calloc(1, sizeof *conn);
  if (conn == NULL) return;
  conn->http = http;
  conn->refs = 1;
  conn->active_ms = imp_now_ms();
  http_parser_init(&conn->parser, HTTP_REQUEST);
  conn->parser.data = conn;
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
  if (http->nconns > HTTP_MAX_CONNS) {
    fail_conn(conn, 503, "UNAVAILABLE", "too many HTTP connections");
    return;
  }
  update_reading(conn);
}

static void on_sweep(uv_timer_t *t) {
  imp_http_t *http = t->data;
  uint64_t now = imp_now_ms();
  http_date(http);
  http_conn_t *next;
  for (http_conn_t *c = http->conns.next; c != &http->conns; c = next) {
    next = c->next;
    if (c->closing) continue;
    if (c->lingering) {
      if (now - c->linger_ms > HTTP_LINGER_MS) conn_close(c);
    } else if (c->cur && now - c->cur_ms > HTTP_REQUEST_MS) {
      fail_conn(c, 408, "BAD_REQUEST", "the request did not arrive in time");
    } else if (c->head == NULL && c->cur == NULL && pending_out(c) == 0 &&
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

int imp_http_start(imp_server_t *server) {
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
  http->conns.next = http->conns.prev = &http->conns;
  http->settings.on_message_begin = on_message_begin;
  http->settings.on_url = on_url;
  http->settings.on_header_field = on_header_field;
  http->settings.on_header_value = on_header_value;
  http->settings.on_headers_complete = on_headers_complete;
  http->settings.on_body = on_body;
  http->settings.on_message_complete = on_message_complete;
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
    server->http = http; /* freed by imp_http_free */
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
  uv_timer_start(&http->sweep, on_sweep, 1000, 1000);
  uv_unref((uv_handle_t *)&http->sweep);
  if (server->metrics)
    imp_metrics_register(server->metrics, collect_http, http);
  server->http = http;
  return 0;
}

void imp_http_stop_listening(imp_server_t *server) {
  imp_http_t *http = server->http;
  if (http == NULL || !http->listening) return;
  http->listening = 0;
  uv_close((uv_handle_t *)&http->listener, NULL);
}

void imp_http_stop(imp_server_t *server) {
  imp_http_t *http = server->http;
  if (http == NULL || http->handles_closed) return;
  imp_http_stop_listening(server);
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
        req_free(r);
    }
    c->stop_parsing = 1;
    c->eof = 1;
    flush_ready(c);
    c->close_after_flush = 1;
    conn_flush(c);
  }
}

void imp_http_close(imp_server_t *server) {
  imp_http_t *http = server->http;
  if (http == NULL || http->handles_closed) return;
  http->handles_closed = 1;
  imp_http_stop_listening(server);
  for (http_conn_t *c = http->conns.next; c != &http->conns; c = c->next)
    conn_close(c);
  uv_close((uv_handle_t *)&http->flush, NULL);
  uv_close((uv_handle_t *)&http->sweep, NULL);
}

void imp_http_free(imp_server_t *server) {
  imp_http_t *http = server->http;
  if (http == NULL) return;
  if (server->metrics)
    imp_metrics_unregister(server->metrics, collect_http, http);
  server->http = NULL;
  free(http);
}
