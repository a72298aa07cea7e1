/*
 * HTTP requests from bytes (parse.c): http-parser's callbacks collect a
 * request's method, target, headers and body into an http_msg_t under the
 * front end's limits, and the helpers handlers read a request with. Pure:
 * no I/O, no loop, no clock. The engine (engine.c) runs one http_parse_t
 * per connection over what it has read; tests/fuzz/http.c feeds it
 * arbitrary streams in arbitrary reads.
 */
#ifndef IMP_HTTP_PARSE_H
#define IMP_HTTP_PARSE_H

#include <http_parser.h>
#include <stddef.h>
#include <stdint.h>

#include "core/common.h"
#include "impulse.pb-c.h"

#define HTTP_MAX_HEADER_BYTES (64u * 1024) /* request target + headers */

#define HTTP_MAX_HEADERS 128

#define HDR_PREFIX "x-impulse-header-"

/* A header: offsets into the message's hbuf. */
typedef struct http_hdr_s {
  size_t name, nlen, value, vlen;
} http_hdr_t;

/* What the parser collected of one request; handlers read it. hbuf holds
 * the request target (url_len bytes from offset 0), then the header names
 * and values; nothing in it is NUL-terminated. */
typedef struct http_msg_s {
  imp_buf_t hbuf;
  size_t url_len;
  http_hdr_t *hdrs;
  size_t nhdrs, caphdrs;
  int last; /* last callback: 0 target, 1 header name, 2 header value */
  imp_buf_t body;
  int method;
} http_msg_t;

/* What http_parse_execute() stopped at. */
enum {
  HTTP_PARSE_MORE,    /* every byte taken; no request complete yet */
  HTTP_PARSE_REQUEST, /* a request is complete: http_parse_take() it */
  HTTP_PARSE_ERROR    /* refused: answer status/error, parse no more */
};

/* One connection's parser. Fields after `parser` are read by the caller;
 * `began` and `expect_continue` are cleared by it. */
typedef struct http_parse_s {
  http_parser parser;
  size_t max_body;     /* longest body taken (--max-frame) */
  http_msg_t msg;      /* the request being parsed, or the complete one */
  int in_msg;          /* msg holds a request begun and not taken */
  int in_head;         /* its target and headers are still arriving */
  int began;           /* a request began since the caller cleared this */
  int expect_continue; /* its head asked for 100 Continue */
  int keep_alive;      /* the complete request's: the connection goes on */
  int http10;          /* ... it came as HTTP/1.0 */
  int head;            /* ... its method is HEAD */
  int status;          /* HTTP_PARSE_ERROR: the answer's status (4xx, 505) */
  char error[160];     /* ... and why, NUL-terminated */
} http_parse_t;

/* Starts a parser for a connection's requests, bodies at most max_body. */
void http_parse_init(http_parse_t *ps, size_t max_body);

/* Parses data[0..len), which follows what earlier calls took. Returns how
 * many bytes it took and sets *event: HTTP_PARSE_MORE (all of them),
 * HTTP_PARSE_REQUEST (the request ends at the last byte taken; the rest
 * is parsed by the next call, after http_parse_take()) or HTTP_PARSE_ERROR
 * (status and error say why; the connection ends). Limits: the target and
 * headers together HTTP_MAX_HEADER_BYTES (431), HTTP_MAX_HEADERS headers
 * (431), the body max_body (413, by Content-Length before any byte of it),
 * HTTP/1.0 and 1.1 only (400, 505), no CONNECT (405). */
size_t http_parse_execute(http_parse_t *ps, const char *data, size_t len,
                          int *event);

/* Moves the complete request out (the caller frees it with
 * http_msg_free()); the parser is ready for the next one. */
http_msg_t http_parse_take(http_parse_t *ps);

/* Frees a request cut short (or refused); the parser stays usable only
 * after http_parse_init(). */
void http_parse_free(http_parse_t *ps);

void http_msg_free(http_msg_t *m);

/* Lookups in a parsed request. Names compare without case; name and
 * value are hbuf bytes (not NUL-terminated), of h->nlen and h->vlen. */
const http_hdr_t *http_find_header(const http_msg_t *m, const char *name);
const char *http_hname(const http_msg_t *m, const http_hdr_t *h);
const char *http_hval(const http_msg_t *m, const http_hdr_t *h);

/* a[0..alen) equals b (NUL-terminated) / starts with p, ignoring case. */
int http_ieq(const char *a, size_t alen, const char *b);
int http_iprefix(const char *a, size_t alen, const char *p);
/* RFC 9110 token characters, for header names. */
int http_is_tchar(unsigned char c);
/* A header value we may write: no control characters except tab. */
int http_is_field_value(const uint8_t *p, size_t n);
/* 1 to 64 of [A-Za-z0-9_.-]. */
int http_valid_function_name(const char *s, size_t n);
/* A decimal number up to max, blanks around it allowed: 0 with *out set,
 * or -1. */
int http_parse_u64(const char *s, size_t n, uint64_t max, uint64_t *out);

/* Headers of a protobuf request built from an HTTP one: names and values
 * copied (each name NUL-terminated), freed by http_hdrset_free(). */
typedef struct hdrset_s {
  Impulse__Header *h;
  Impulse__Header **p;
  size_t n, cap;
} hdrset_t;

/* Adds prefix + name[0..nlen) (lower-cased when `lower`) = value. */
void http_hdrset_add(hdrset_t *s, const char *prefix, const char *name,
                     size_t nlen, int lower, const void *value, size_t vlen);
void http_hdrset_free(hdrset_t *s);
/* The pointer array of the complete set (valid until the next add). */
Impulse__Header **http_hdrset_ptrs(hdrset_t *s);

#endif
