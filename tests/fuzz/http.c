/*
 * HTTP requests as the front end reads them (runtime/server/http/parse.c,
 * request.c): the first input byte sets the size of each read (1 to 256
 * bytes), the second the body limit and the mode.
 *
 * Raw mode: the rest is a byte stream of pipelined requests, parsed as a
 * connection parses it (each read appended, one request at a time). Checks:
 * - a request is either parsed or refused (400, 405, 413, 431 or 505),
 *   never both, and nothing is parsed after a refusal or after a request
 *   that ends the connection;
 * - limits hold: target and headers within HTTP_MAX_HEADER_BYTES, at most
 *   HTTP_MAX_HEADERS headers, the body within its limit, every header's
 *   name and value inside the message;
 * - the same stream read whole gives the same requests and the same end;
 * - each request's route points inside its target, and the InvokeRequest
 *   or PublishRequest made of it packs and unpacks to the same fields
 *   (X-Impulse-* headers, idempotency key, deadline, key, partition).
 *
 * Built mode: the rest is split at 0xff bytes into (name, value, body)
 * triples, of which the target writes valid POST requests, alternately
 * with Content-Length and chunked bodies; all of them must come out, in
 * order, with their target, header and body, up to the first whose body is
 * over the limit, which is refused with 413.
 */
#include <string.h>

#include "core/limits.h"
#include "fuzz.h"
#include "server/http/parse.h"
#include "server/http/request.h"

static const size_t body_limits[] = {0, 16, 1024, 1u << 20};

static uint64_t mix(uint64_t h, const void *p, size_t n) {
  const unsigned char *b = p;
  for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 1099511628211ull;
  return (h ^ n) * 1099511628211ull;
}

static int lower_eq(const char *a, const char *b, size_t n) {
  for (size_t i = 0; i < n; i++) {
    char c = b[i] >= 'A' && b[i] <= 'Z' ? (char)(b[i] + 32) : b[i];
    if (a[i] != c) return 0;
  }
  return 1;
}

static void check_msg(const http_msg_t *m, size_t max_body) {
  FUZZ_CHECK(m->url_len <= m->hbuf.len);
  FUZZ_CHECK(m->hbuf.len <= HTTP_MAX_HEADER_BYTES);
  FUZZ_CHECK(m->nhdrs <= HTTP_MAX_HEADERS && m->nhdrs <= m->caphdrs);
  FUZZ_CHECK(m->body.len <= max_body);
  FUZZ_CHECK(m->method != HTTP_CONNECT);
  size_t at = m->url_len;
  for (size_t i = 0; i < m->nhdrs; i++) {
    const http_hdr_t *h = &m->hdrs[i];
    FUZZ_CHECK(h->name >= at && h->name + h->nlen <= m->hbuf.len);
    if (h->vlen > 0) {
      FUZZ_CHECK(h->value >= h->name + h->nlen);
      FUZZ_CHECK(h->value + h->vlen <= m->hbuf.len);
      at = h->value + h->vlen;
    } else {
      at = h->name + h->nlen;
    }
  }
}

static void check_invoke(const http_msg_t *m, const http_route_t *r) {
  if (!http_valid_function_name(r->name, r->nlen)) return;
  char fname[65];
  memcpy(fname, r->name, r->nlen);
  fname[r->nlen] = '\0';
  Impulse__InvokeRequest ir = IMPULSE__INVOKE_REQUEST__INIT;
  hdrset_t hs = {0};
  char *key = NULL;
  char err[256];
  err[0] = '\0';
  if (http_invoke_request(m, fname, &ir, &hs, &key, err, sizeof err) != 0) {
    FUZZ_CHECK(err[0] != '\0' && memchr(err, '\0', sizeof err) != NULL);
    goto out;
  }
  FUZZ_CHECK(!ir.has_deadline_ms || ir.deadline_ms <= IMP_DEADLINE_MAX_MS);
  const http_hdr_t *kh = http_find_header(m, "x-impulse-idempotency-key");
  if (kh && kh->vlen > 0)
    FUZZ_CHECK(key != NULL && strlen(key) == kh->vlen &&
               memcmp(key, http_hval(m, kh), kh->vlen) == 0);
  else
    FUZZ_CHECK(key == NULL);
  size_t pl = strlen(HDR_PREFIX), k = 0;
  for (size_t i = 0; i < m->nhdrs; i++) {
    const http_hdr_t *x = &m->hdrs[i];
    if (!(x->nlen > pl && http_iprefix(http_hname(m, x), x->nlen, HDR_PREFIX)))
      continue;
    FUZZ_CHECK(k < ir.n_headers);
    const Impulse__Header *h = ir.headers[k++];
    FUZZ_CHECK(strlen(h->name) <= x->nlen - pl);
    FUZZ_CHECK(lower_eq(h->name, http_hname(m, x) + pl, strlen(h->name)));
    FUZZ_CHECK(h->value.len == x->vlen);
  }
  FUZZ_CHECK(k == ir.n_headers);
  /* What goes on the wire comes back the same. */
  size_t n = impulse__invoke_request__get_packed_size(&ir);
  uint8_t *buf = malloc(n ? n : 1);
  FUZZ_CHECK(buf != NULL);
  impulse__invoke_request__pack(&ir, buf);
  Impulse__InvokeRequest *back = impulse__invoke_request__unpack(NULL, n, buf);
  FUZZ_CHECK(back != NULL && strcmp(back->function, fname) == 0);
  FUZZ_CHECK(back->payload.len == m->body.len);
  FUZZ_CHECK(back->n_headers == ir.n_headers);
  FUZZ_CHECK(back->deadline_ms == ir.deadline_ms);
  FUZZ_CHECK((key == NULL && (back->idempotency_key == NULL ||
                              back->idempotency_key[0] == '\0')) ||
             (key != NULL && strcmp(back->idempotency_key, key) == 0));
  for (size_t i = 0; i < back->n_headers; i++) {
    FUZZ_CHECK(strcmp(back->headers[i]->name, ir.headers[i]->name) == 0);
    FUZZ_CHECK(back->headers[i]->value.len == ir.headers[i]->value.len);
  }
  impulse__invoke_request__free_unpacked(back, NULL);
  free(buf);
out:
  http_hdrset_free(&hs);
  free(key);
}

static void check_publish(const http_msg_t *m) {
  Impulse__PublishRequest pr = IMPULSE__PUBLISH_REQUEST__INIT;
  pr.topic = "t";
  hdrset_t hs = {0};
  json_t *ev = NULL;
  char *data = NULL;
  char err[512];
  err[0] = '\0';
  if (http_publish_request(m, &pr, &hs, &ev, &data, err, sizeof err) != 0) {
    FUZZ_CHECK(err[0] != '\0' && memchr(err, '\0', sizeof err) != NULL);
    goto out;
  }
  FUZZ_CHECK(!pr.has_partition || pr.partition >= 0);
  FUZZ_CHECK(pr.n_headers == hs.n);
  size_t n = impulse__publish_request__get_packed_size(&pr);
  uint8_t *buf = malloc(n ? n : 1);
  FUZZ_CHECK(buf != NULL);
  impulse__publish_request__pack(&pr, buf);
  Impulse__PublishRequest *back =
      impulse__publish_request__unpack(NULL, n, buf);
  FUZZ_CHECK(back != NULL && back->n_headers == pr.n_headers);
  FUZZ_CHECK(back->value.len == (pr.has_value ? pr.value.len : 0));
  FUZZ_CHECK(back->key.len == (pr.has_key ? pr.key.len : 0));
  if (pr.has_key && pr.key.len)
    FUZZ_CHECK(memcmp(back->key.data, pr.key.data, pr.key.len) == 0);
  for (size_t i = 0; i < back->n_headers; i++)
    FUZZ_CHECK(strcmp(back->headers[i]->name, pr.headers[i]->name) == 0);
  impulse__publish_request__free_unpacked(back, NULL);
  free(buf);
out:
  http_hdrset_free(&hs);
  free(data);
  if (ev) json_decref(ev);
}

static void check_route(const http_msg_t *m) {
  http_route_t r;
  http_route_match(m, &r);
  if (r.endpoint == HTTP_EP_BAD_TARGET) {
    FUZZ_CHECK(r.path == NULL);
    return;
  }
  const char *url = m->hbuf.data, *end = url + m->url_len;
  FUZZ_CHECK(r.path >= url && r.path + r.plen <= end && r.plen > 0);
  if (r.name) FUZZ_CHECK(r.name >= r.path && r.name + r.nlen <= end);
  if (r.query) FUZZ_CHECK(r.query >= url && r.query + r.qlen <= end);
  if (r.allow) return;
  if (r.endpoint == HTTP_EP_INVOKE) check_invoke(m, &r);
  if (r.endpoint == HTTP_EP_PUBLISH) check_publish(m);
}

/* What a stream parsed to: the requests (a digest and a count) and how it
 * ended (0: wants more; else the refusal's status). */
typedef struct outcome_s {
  uint64_t digest;
  size_t requests;
  int status;
} outcome_t;

typedef void (*on_request_fn)(void *arg, const http_msg_t *m, size_t index);

/* Parses data[0..size) arriving in reads of `chunk` bytes, as
 * http_conn_process() does: everything not parsed yet, again after each
 * request taken. */
static outcome_t parse_stream(const uint8_t *data, size_t size, size_t chunk,
                              size_t max_body, on_request_fn fn, void *arg) {
  outcome_t o = {14695981039346656037ull, 0, 0};
  http_parse_t ps;
  http_parse_init(&ps, max_body);
  size_t arrived = 0, off = 0;
  int stop = 0;
  while (!stop && arrived < size) {
    arrived = arrived + chunk < size ? arrived + chunk : size;
    while (!stop && off < arrived) {
      int event = -1;
      size_t avail = arrived - off;
      size_t n =
          http_parse_execute(&ps, (const char *)data + off, avail, &event);
      FUZZ_CHECK(n <= avail);
      off += n;
      if (event == HTTP_PARSE_MORE) {
        FUZZ_CHECK(off == arrived);
      } else if (event == HTTP_PARSE_REQUEST) {
        FUZZ_CHECK(ps.in_msg && !ps.in_head && ps.status == 0);
        http_msg_t m = http_parse_take(&ps);
        FUZZ_CHECK(!ps.in_msg);
        check_msg(&m, max_body);
        o.digest = mix(o.digest, &m.method, sizeof m.method);
        o.digest = mix(o.digest, m.hbuf.data, m.hbuf.len);
        for (size_t i = 0; i < m.nhdrs; i++)
          o.digest = mix(o.digest, &m.hdrs[i], sizeof m.hdrs[i]);
        o.digest = mix(o.digest, m.body.data, m.body.len);
        o.digest = mix(o.digest, &ps.keep_alive, sizeof ps.keep_alive);
        if (fn) fn(arg, &m, o.requests);
        o.requests++;
        http_msg_free(&m);
        /* A request that ends the connection is the last one read. */
        if (!ps.keep_alive) stop = 1;
      } else {
        FUZZ_CHECK(event == HTTP_PARSE_ERROR);
        FUZZ_CHECK(ps.status == 400 || ps.status == 405 || ps.status == 413 ||
                   ps.status == 431 || ps.status == 505);
        FUZZ_CHECK(ps.error[0] != '\0' &&
                   memchr(ps.error, '\0', sizeof ps.error) != NULL);
        o.status = ps.status;
        stop = 1;
      }
    }
  }
  http_parse_free(&ps);
  return o;
}

static void route_each(void *arg, const http_msg_t *m, size_t index) {
  (void)arg;
  (void)index;
  check_route(m);
}

static void raw_mode(const uint8_t *data, size_t size, size_t chunk,
                     size_t max_body) {
  outcome_t a = parse_stream(data, size, chunk, max_body, route_each, NULL);
  outcome_t b = parse_stream(data, size, size ? size : 1, max_body, NULL, NULL);
  FUZZ_CHECK(a.requests == b.requests && a.digest == b.digest);
  /* Both refuse or neither does. A request that is both over a size limit
   * and malformed further on may be refused for either, depending on where
   * the reads end: the limit is checked as bytes arrive, the syntax where
   * http-parser reaches them (431 in reads of 7 bytes, 400 in one read). */
  FUZZ_CHECK((a.status == 0) == (b.status == 0));
  FUZZ_CHECK(a.status == b.status || a.status == 431 || a.status == 413 ||
             b.status == 431 || b.status == 413);
}

/* Built mode: requests the target wrote itself. */
typedef struct built_s {
  const char *value[64];
  size_t vlen[64];
  const uint8_t *body[64];
  size_t blen[64];
  size_t n;
  size_t seen;
} built_t;

static void expect_built(void *arg, const http_msg_t *m, size_t index) {
  built_t *b = arg;
  char url[32];
  FUZZ_CHECK(index == b->seen && index < b->n);
  int ul = snprintf(url, sizeof url, "/topics/t%zu", index);
  FUZZ_CHECK(m->method == HTTP_POST && m->url_len == (size_t)ul &&
             memcmp(m->hbuf.data, url, (size_t)ul) == 0);
  const http_hdr_t *h = http_find_header(m, "x-impulse-header-v");
  FUZZ_CHECK(h != NULL && h->vlen == b->vlen[index]);
  FUZZ_CHECK(memcmp(http_hval(m, h), b->value[index], h->vlen) == 0);
  FUZZ_CHECK(m->body.len == b->blen[index]);
  if (m->body.len)
    FUZZ_CHECK(memcmp(m->body.data, b->body[index], m->body.len) == 0);
  b->seen++;
  check_route(m);
}

static void built_mode(const uint8_t *data, size_t size, size_t chunk,
                       size_t max_body) {
  built_t b = {0};
  imp_buf_t s = {0};
  /* Fields at 0xff: value, body, value, body... */
  size_t start = 0;
  const char *vp = NULL;
  size_t vl = 0;
  int field = 0;
  for (size_t i = 0; i <= size && b.n < 64; i++) {
    if (i < size && data[i] != 0xff) continue;
    if (field == 0) {
      vp = (const char *)data + start;
      vl = i - start;
      /* A header value of letters and digits (http-parser trims blanks). */
      int ok = 1;
      for (size_t k = 0; k < vl; k++)
        if (!((vp[k] >= 'a' && vp[k] <= 'z') || (vp[k] >= '0' && vp[k] <= '9')))
          ok = 0;
      if (!ok || vl == 0) vp = "x", vl = 1;
      if (vl > 128) vl = 128; /* the request head is built in 256 bytes */
    } else {
      b.value[b.n] = vp;
      b.vlen[b.n] = vl;
      b.body[b.n] = data + start;
      b.blen[b.n] = i - start;
      b.n++;
    }
    field ^= 1;
    start = i + 1;
  }
  size_t refused_at = b.n;
  for (size_t i = 0; i < b.n; i++) {
    char head[256];
    int hl = snprintf(head, sizeof head,
                      "POST /topics/t%zu HTTP/1.1\r\nHost: h\r\n"
                      "X-Impulse-Header-V: %.*s\r\n",
                      i, (int)b.vlen[i], b.value[i]);
    FUZZ_CHECK(hl > 0 && (size_t)hl < sizeof head);
    imp_buf_append(&s, head, (size_t)hl);
    if (i % 2 == 0) {
      hl =
          snprintf(head, sizeof head, "Content-Length: %zu\r\n\r\n", b.blen[i]);
      imp_buf_append(&s, head, (size_t)hl);
      imp_buf_append(&s, b.body[i], b.blen[i]);
    } else {
      imp_buf_append(&s, "Transfer-Encoding: chunked\r\n\r\n", 30);
      /* Chunks of up to 7 bytes, then the last chunk. */
      for (size_t off = 0; off < b.blen[i]; off += 7) {
        size_t c = b.blen[i] - off < 7 ? b.blen[i] - off : 7;
        hl = snprintf(head, sizeof head, "%zx\r\n", c);
        imp_buf_append(&s, head, (size_t)hl);
        imp_buf_append(&s, b.body[i] + off, c);
        imp_buf_append(&s, "\r\n", 2);
      }
      imp_buf_append(&s, "0\r\n\r\n", 5);
    }
    if (b.blen[i] > max_body && refused_at == b.n) refused_at = i;
  }
  outcome_t o = parse_stream((const uint8_t *)s.data, s.len, chunk, max_body,
                             expect_built, &b);
  FUZZ_CHECK(o.requests == refused_at && b.seen == refused_at);
  FUZZ_CHECK(o.status == (refused_at < b.n ? 413 : 0));
  imp_buf_free(&s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 2) return 0;
  size_t chunk = (size_t)data[0] + 1;
  size_t max_body = body_limits[data[1] % 4];
  int built = (data[1] >> 2) & 1;
  if (built)
    built_mode(data + 2, size - 2, chunk, max_body);
  else
    raw_mode(data + 2, size - 2, chunk, max_body);
  return 0;
}
