/*
 * HTTP requests from bytes (parse.h). One request at a time:
 * on_message_complete pauses http-parser, so that the caller takes the
 * request before anything after it is parsed.
 */
#include "server/http/parse.h"

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Buffers here hold at most a few times --max-frame; running out of memory
 * is handled like everywhere else in the server. */
static void put(imp_buf_t *b, const void *p, size_t n) {
  if (n && imp_buf_append(b, p, n) != 0) abort();
}

static int refuse(http_parse_t *ps, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int refuse(http_parse_t *ps, int status, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(ps->error, sizeof ps->error, fmt, ap);
  va_end(ap);
  ps->status = status;
  return -1;
}

static int header_room(http_parse_t *ps, size_t more) {
  if (ps->msg.hbuf.len + more <= HTTP_MAX_HEADER_BYTES) return 0;
  return refuse(ps, 431, "request target and headers above %u bytes",
                HTTP_MAX_HEADER_BYTES);
}

static int on_message_begin(http_parser *p) {
  http_parse_t *ps = p->data;
  http_msg_free(&ps->msg);
  ps->in_msg = 1;
  ps->in_head = 1;
  ps->began = 1;
  return 0;
}

static int on_url(http_parser *p, const char *at, size_t len) {
  http_parse_t *ps = p->data;
  if (header_room(ps, len) != 0) return -1;
  put(&ps->msg.hbuf, at, len);
  ps->msg.url_len += len;
  return 0;
}

static int on_header_field(http_parser *p, const char *at, size_t len) {
  http_parse_t *ps = p->data;
  http_msg_t *m = &ps->msg;
  if (header_room(ps, len) != 0) return -1;
  if (m->last != 1) { /* a new header (else the name goes on) */
    if (m->nhdrs == HTTP_MAX_HEADERS)
      return refuse(ps, 431, "more than %d request headers", HTTP_MAX_HEADERS);
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
  put(&m->hbuf, at, len);
  m->hdrs[m->nhdrs - 1].nlen += len;
  return 0;
}

static int on_header_value(http_parser *p, const char *at, size_t len) {
  http_parse_t *ps = p->data;
  http_msg_t *m = &ps->msg;
  if (header_room(ps, len) != 0) return -1;
  http_hdr_t *h = &m->hdrs[m->nhdrs - 1];
  if (m->last != 2) {
    h->value = m->hbuf.len;
    m->last = 2;
  }
  put(&m->hbuf, at, len);
  h->vlen += len;
  return 0;
}

static int on_headers_complete(http_parser *p) {
  http_parse_t *ps = p->data;
  http_msg_t *m = &ps->msg;
  m->method = p->method;
  ps->in_head = 0;
  /* HTTP/1.0 and 1.1 only: a request line without a version (which
   * http-parser reads as HTTP/0.9) or any other version is refused, not
   * guessed at. */
  if (p->http_major == 0)
    return refuse(ps, 400,
                  "the request line has no HTTP version: use HTTP/1.1");
  if (p->http_major != 1 || p->http_minor > 1)
    return refuse(ps, 505, "HTTP/%u.%u is not supported: use HTTP/1.1",
                  (unsigned)p->http_major, (unsigned)p->http_minor);
  if (p->method == HTTP_CONNECT)
    return refuse(ps, 405, "CONNECT is not supported");
  /* Without a Content-Length, http-parser leaves ULLONG_MAX. */
  if (p->content_length != ULLONG_MAX && p->content_length > ps->max_body)
    return refuse(ps, 413,
                  "request body of %llu bytes is above the %zu-byte limit",
                  (unsigned long long)p->content_length, ps->max_body);
  if (p->content_length != ULLONG_MAX && p->content_length > 0 &&
      imp_buf_reserve(&m->body, (size_t)p->content_length) != 0)
    abort();
  const http_hdr_t *e = http_find_header(m, "expect");
  if (e && http_ieq(http_hval(m, e), e->vlen, "100-continue"))
    ps->expect_continue = 1;
  return 0;
}

static int on_body(http_parser *p, const char *at, size_t len) {
  http_parse_t *ps = p->data;
  imp_buf_t *b = &ps->msg.body;
  if (b->len + len > ps->max_body)
    return refuse(ps, 413, "request body above the %zu-byte limit",
                  ps->max_body);
  put(b, at, len);
  return 0;
}

static int on_message_complete(http_parser *p) {
  http_parse_t *ps = p->data;
  ps->keep_alive = http_should_keep_alive(p);
  ps->http10 = p->http_major == 1 && p->http_minor == 0;
  ps->head = p->method == HTTP_HEAD;
  /* One request at a time: the caller takes it outside the parser. */
  http_parser_pause(p, 1);
  return 0;
}

static const http_parser_settings settings = {
    .on_message_begin = on_message_begin,
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

void http_parse_init(http_parse_t *ps, size_t max_body) {
  memset(ps, 0, sizeof *ps);
  http_parser_init(&ps->parser, HTTP_REQUEST);
  ps->parser.data = ps;
  ps->max_body = max_body;
}

size_t http_parse_execute(http_parse_t *ps, const char *data, size_t len,
                          int *event) {
  size_t n = http_parser_execute(&ps->parser, &settings, data, len);
  enum http_errno e = HTTP_PARSER_ERRNO(&ps->parser);
  if (e == HPE_PAUSED) {
    http_parser_pause(&ps->parser, 0);
    *event = HTTP_PARSE_REQUEST;
    return n;
  }
  if (e != HPE_OK) {
    if (ps->status == 0) {
      ps->status = e == HPE_HEADER_OVERFLOW ? 431 : 400;
      snprintf(ps->error, sizeof ps->error, "malformed request: %s",
               http_errno_description(e));
    }
    *event = HTTP_PARSE_ERROR;
    return n;
  }
  if (n < len) { /* the parser stopped without saying why */
    ps->status = 400;
    snprintf(ps->error, sizeof ps->error, "malformed request");
    *event = HTTP_PARSE_ERROR;
    return n;
  }
  *event = HTTP_PARSE_MORE;
  return n;
}

http_msg_t http_parse_take(http_parse_t *ps) {
  http_msg_t m = ps->msg;
  memset(&ps->msg, 0, sizeof ps->msg);
  ps->in_msg = ps->in_head = 0;
  return m;
}

void http_parse_free(http_parse_t *ps) {
  http_msg_free(&ps->msg);
  ps->in_msg = ps->in_head = 0;
}

void http_msg_free(http_msg_t *m) {
  imp_buf_free(&m->hbuf);
  imp_buf_free(&m->body);
  free(m->hdrs);
  memset(m, 0, sizeof *m);
}

const http_hdr_t *http_find_header(const http_msg_t *m, const char *name) {
  for (size_t i = 0; i < m->nhdrs; i++)
    if (http_ieq(m->hbuf.data + m->hdrs[i].name, m->hdrs[i].nlen, name))
      return &m->hdrs[i];
  return NULL;
}

const char *http_hname(const http_msg_t *m, const http_hdr_t *h) {
  return m->hbuf.data + h->name;
}

const char *http_hval(const http_msg_t *m, const http_hdr_t *h) {
  return m->hbuf.data + h->value;
}

int http_ieq(const char *a, size_t alen, const char *b) {
  size_t bl = strlen(b);
  return alen == bl && strncasecmp(a, b, bl) == 0;
}

int http_iprefix(const char *a, size_t alen, const char *p) {
  size_t pl = strlen(p);
  return alen >= pl && strncasecmp(a, p, pl) == 0;
}

int http_is_tchar(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
         (c >= '0' && c <= '9') || (c && strchr("!#$%&'*+-.^_`|~", c));
}

int http_is_field_value(const uint8_t *p, size_t n) {
  for (size_t i = 0; i < n; i++)
    if ((p[i] < 0x20 && p[i] != '\t') || p[i] == 0x7f) return 0;
  return 1;
}

int http_valid_function_name(const char *s, size_t n) {
  if (n == 0 || n > 64) return 0;
  for (size_t i = 0; i < n; i++) {
    char c = s[i];
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
          (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-'))
      return 0;
  }
  return 1;
}

int http_parse_u64(const char *s, size_t n, uint64_t max, uint64_t *out) {
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

void http_hdrset_add(hdrset_t *s, const char *prefix, const char *name,
                     size_t nlen, int lower, const void *value, size_t vlen) {
  if (s->n == s->cap) {
    size_t cap = s->cap ? s->cap * 2 : 8;
    Impulse__Header *h = realloc(s->h, cap * sizeof *h);
    if (h == NULL) abort();
    s->h = h;
    Impulse__Header **p = realloc(s->p, cap * sizeof *p);
    if (p == NULL) abort();
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

void http_hdrset_free(hdrset_t *s) {
  for (size_t i = 0; i < s->n; i++) free(s->h[i].name);
  free(s->h);
  free(s->p);
  memset(s, 0, sizeof *s);
}

Impulse__Header **http_hdrset_ptrs(hdrset_t *s) {
  for (size_t i = 0; i < s->n; i++) s->p[i] = &s->h[i];
  return s->p;
}
