/*
 * What a parsed HTTP request asks for (request.h).
 */
#include "server/http/request.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/limits.h"
#include "eventing/cloudevents.h"

static int path_is(const char *p, size_t n, const char *want) {
  return n == strlen(want) && memcmp(p, want, n) == 0;
}

static int path_under(const char *p, size_t n, const char *prefix) {
  size_t pl = strlen(prefix);
  return n >= pl && memcmp(p, prefix, pl) == 0;
}

void http_route_match(const http_msg_t *m, http_route_t *r) {
  memset(r, 0, sizeof *r);
  struct http_parser_url u;
  http_parser_url_init(&u);
  if (m->url_len == 0 ||
      http_parser_parse_url(m->hbuf.data, m->url_len, 0, &u) != 0 ||
      !(u.field_set & (1 << UF_PATH))) {
    r->endpoint = HTTP_EP_BAD_TARGET;
    return;
  }
  const char *path = m->hbuf.data + u.field_data[UF_PATH].off;
  size_t plen = u.field_data[UF_PATH].len;
  int get = m->method == HTTP_GET || m->method == HTTP_HEAD;
  int post = m->method == HTTP_POST;
  r->path = path;
  r->plen = plen;
  if (path_under(path, plen, "/function/")) {
    r->endpoint = HTTP_EP_INVOKE;
    r->name = path + 10;
    r->nlen = plen - 10;
  } else if (path_under(path, plen, "/topics/")) {
    r->endpoint = HTTP_EP_PUBLISH;
    r->name = path + 8;
    r->nlen = plen - 8;
  } else if (path_is(path, plen, "/healthz")) {
    r->endpoint = HTTP_EP_HEALTHZ;
  } else if (path_is(path, plen, "/readyz")) {
    r->endpoint = HTTP_EP_READYZ;
  } else if (path_is(path, plen, "/metrics")) {
    r->endpoint = HTTP_EP_METRICS;
  } else if (path_is(path, plen, "/")) {
    r->endpoint = HTTP_EP_DASHBOARD;
  } else if (path_under(path, plen, "/api/functions/") && plen > 20 &&
             memcmp(path + plen - 5, "/logs", 5) == 0) {
    r->endpoint = HTTP_EP_LOGS;
    r->name = path + 15;
    r->nlen = plen - 20;
    if (u.field_set & (1 << UF_QUERY)) {
      r->query = m->hbuf.data + u.field_data[UF_QUERY].off;
      r->qlen = u.field_data[UF_QUERY].len;
    }
  } else if (path_is(path, plen, "/api/state")) {
    r->endpoint = HTTP_EP_STATE;
  } else {
    r->endpoint = HTTP_EP_NOT_FOUND;
    return;
  }
  if (r->endpoint == HTTP_EP_INVOKE || r->endpoint == HTTP_EP_PUBLISH) {
    if (!post) r->allow = "POST";
  } else if (!get) {
    r->allow = "GET";
  }
}

int http_invoke_request(const http_msg_t *m, const char *fname,
                        Impulse__InvokeRequest *ir, hdrset_t *hs, char **key,
                        char *err, size_t errlen) {
  *key = NULL;
  ir->function = (char *)fname;
  ir->has_payload = 1;
  ir->payload.data = (uint8_t *)m->body.data;
  ir->payload.len = m->body.len;
  const http_hdr_t *h = http_find_header(m, "x-impulse-deadline-ms");
  if (h) {
    uint64_t v;
    if (http_parse_u64(http_hval(m, h), h->vlen, IMP_DEADLINE_MAX_MS, &v) !=
        0) {
      snprintf(err, errlen,
               "X-Impulse-Deadline-Ms must be a number of milliseconds (0 to "
               "%u)",
               IMP_DEADLINE_MAX_MS);
      return -1;
    }
    ir->has_deadline_ms = 1;
    ir->deadline_ms = (uint32_t)v;
  }
  h = http_find_header(m, "x-impulse-idempotency-key");
  if (h && h->vlen > 0) {
    if (memchr(http_hval(m, h), '\0', h->vlen)) {
      snprintf(err, errlen, "X-Impulse-Idempotency-Key holds a NUL byte");
      return -1;
    }
    *key = strndup(http_hval(m, h), h->vlen);
    if (*key == NULL) abort();
    ir->idempotency_key = *key;
  }
  size_t pl = strlen(HDR_PREFIX);
  for (size_t i = 0; i < m->nhdrs; i++) {
    const http_hdr_t *x = &m->hdrs[i];
    if (x->nlen > pl && http_iprefix(http_hname(m, x), x->nlen, HDR_PREFIX))
      http_hdrset_add(hs, "", http_hname(m, x) + pl, x->nlen - pl, 1,
                      http_hval(m, x), x->vlen);
  }
  ir->n_headers = hs->n;
  ir->headers = http_hdrset_ptrs(hs);
  return 0;
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
 * or -1 with the reason for a 400 in err. *data (malloc'd or NULL) is the
 * caller's. */
static int structured_event(json_t *ev, hdrset_t *hs,
                            Impulse__PublishRequest *pr, char **data,
                            const char **pkey, char *err, size_t errlen) {
  *data = NULL;
  if (!json_is_object(ev)) {
    snprintf(err, errlen, "a structured-mode event must be a JSON object");
    return -1;
  }
  for (size_t i = 0; i < IMP_CE_NREQUIRED; i++)
    if (!json_is_string(json_object_get(ev, imp_ce_required[i]))) {
      snprintf(err, errlen, "the event has no '%s' attribute (a string)",
               imp_ce_required[i]);
      return -1;
    }
  json_t *d = json_object_get(ev, "data");
  json_t *d64 = json_object_get(ev, "data_base64");
  if (d && d64) {
    snprintf(err, errlen, "the event has both 'data' and 'data_base64'");
    return -1;
  }
  const char *k;
  json_t *v;
  json_object_foreach(ev, k, v) {
    if (strcmp(k, "data") == 0 || strcmp(k, "data_base64") == 0) continue;
    if (!imp_ce_attr_valid(k, strlen(k))) {
      snprintf(err, errlen,
               "invalid attribute name '%.64s' (lower-case letters and "
               "digits)",
               k);
      return -1;
    }
    /* The key of the record: a string, as CloudEvents types it and as a
     * binary-mode ce-partitionkey header always is (a number here would
     * name the same key in one mode and none in the other). */
    if (strcmp(k, "partitionkey") == 0 && !json_is_string(v) &&
        !json_is_null(v)) {
      snprintf(err, errlen, "attribute 'partitionkey' must be a string");
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
      snprintf(err, errlen,
               "attribute '%s' must be a string, number or boolean", k);
      return -1;
    }
    char hdr[IMP_CE_HEADER_MAX];
    size_t hl = imp_ce_attr_header(k, strlen(k), hdr, sizeof hdr);
    http_hdrset_add(hs, "", hdr, hl, 0, s, sl);
    if (strcmp(k, "partitionkey") == 0 && json_is_string(v) && *pkey == NULL)
      *pkey = json_string_value(v);
  }
  if (d64) {
    if (!json_is_string(d64)) {
      snprintf(err, errlen, "'data_base64' must be a string");
      return -1;
    }
    size_t n = json_string_length(d64), out;
    *data = malloc(n / 4 * 3 + 1);
    if (*data == NULL) abort();
    if (base64_decode(json_string_value(d64), n, (uint8_t *)*data, &out) != 0) {
      snprintf(err, errlen, "'data_base64' is not base64");
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

int http_publish_request(const http_msg_t *m, Impulse__PublishRequest *pr,
                         hdrset_t *hs, json_t **ev, char **data, char *err,
                         size_t errlen) {
  *ev = NULL;
  *data = NULL;
  const char *pkey = NULL;
  size_t pkeylen = 0;
  const http_hdr_t *h = http_find_header(m, "content-type");
  size_t ctl = 0;
  if (h) { /* the media type, before any parameters */
    const char *v = http_hval(m, h);
    while (ctl < h->vlen && v[ctl] != ';' && v[ctl] != ' ' && v[ctl] != '\t')
      ctl++;
  }
  if (h && http_ieq(http_hval(m, h), ctl, IMP_CE_MEDIA_TYPE)) {
    json_error_t jerr;
    *ev = json_loadb(m->body.data ? m->body.data : "", m->body.len,
                     JSON_REJECT_DUPLICATES, &jerr);
    if (*ev == NULL) {
      snprintf(err, errlen, "invalid JSON: %s (line %d)", jerr.text, jerr.line);
      return -1;
    }
    if (structured_event(*ev, hs, pr, data, &pkey, err, errlen) != 0) return -1;
    if (pkey) pkeylen = strlen(pkey);
  } else {
    /* Binary mode: ce-* headers are the attributes, the body the data. */
    static const char empty[1] = "";
    pr->has_value = 1;
    pr->value.data = (uint8_t *)(m->body.len ? m->body.data : empty);
    pr->value.len = m->body.len;
    if (h)
      http_hdrset_add(hs, "", "content-type", 12, 0, http_hval(m, h), h->vlen);
    size_t pl = strlen(HDR_PREFIX);
    for (size_t i = 0; i < m->nhdrs; i++) {
      const http_hdr_t *x = &m->hdrs[i];
      const char *n = http_hname(m, x);
      size_t at = imp_ce_http_attr(n, x->nlen);
      if (at > 0) {
        http_hdrset_add(hs, IMP_CE_KAFKA_PREFIX, n + at, x->nlen - at, 1,
                        http_hval(m, x), x->vlen);
        if (http_ieq(n + at, x->nlen - at, "partitionkey")) {
          pkey = http_hval(m, x);
          pkeylen = x->vlen;
        }
      } else if (x->nlen > pl && http_iprefix(n, x->nlen, HDR_PREFIX)) {
        http_hdrset_add(hs, "", n + pl, x->nlen - pl, 1, http_hval(m, x),
                        x->vlen);
      }
    }
  }
  if ((h = http_find_header(m, "x-impulse-key")) != NULL) {
    pkey = http_hval(m, h);
    pkeylen = h->vlen;
  }
  if (pkey) {
    pr->has_key = 1;
    pr->key.data = (uint8_t *)pkey;
    pr->key.len = pkeylen;
  }
  if ((h = http_find_header(m, "x-impulse-partition")) != NULL) {
    uint64_t v;
    if (http_parse_u64(http_hval(m, h), h->vlen, INT32_MAX, &v) != 0) {
      snprintf(err, errlen, "X-Impulse-Partition must be a partition number");
      return -1;
    }
    pr->has_partition = 1;
    pr->partition = (int32_t)v;
  }
  pr->n_headers = hs->n;
  pr->headers = http_hdrset_ptrs(hs);
  return 0;
}
