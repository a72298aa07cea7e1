/*
 * POST /topics/TOPIC (publish.h).
 */
#include "server/http/publish.h"

#include <stdlib.h>
#include <string.h>

#include "eventing/cloudevents.h"
#include "eventing/publish.h"

static void on_published(void *arg, int err, const char *errstr,
                         int32_t partition, int64_t offset) {
  http_req_t *req = arg;
  http_conn_t *conn = req->conn;
  if (!http_req_resume(req)) return;
  if (err != 0) {
    char msg[512];
    int code = imp_publish_error_code(conn->server->kafka, err, errstr, msg,
                                      sizeof msg);
    http_respond_code(req, code, 0, msg);
  } else {
    json_t *j = json_object();
    json_object_set_new(j, "topic", http_jcstr(req->topic));
    json_object_set_new(j, "partition", json_integer(partition));
    json_object_set_new(j, "offset", json_integer(offset));
    http_respond_json(req, 202, j, NULL);
    json_decref(j);
  }
  http_req_answered(conn);
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
    http_respond_error(req, 400, "BAD_REQUEST",
                       "a structured-mode event must be a JSON object");
    return -1;
  }
  for (size_t i = 0; i < IMP_CE_NREQUIRED; i++)
    if (!json_is_string(json_object_get(ev, imp_ce_required[i]))) {
      http_respond_error(req, 400, "BAD_REQUEST",
                         "the event has no '%s' attribute (a string)",
                         imp_ce_required[i]);
      return -1;
    }
  json_t *d = json_object_get(ev, "data");
  json_t *d64 = json_object_get(ev, "data_base64");
  if (d && d64) {
    http_respond_error(req, 400, "BAD_REQUEST",
                       "the event has both 'data' and 'data_base64'");
    return -1;
  }
  const char *k;
  json_t *v;
  json_object_foreach(ev, k, v) {
    if (strcmp(k, "data") == 0 || strcmp(k, "data_base64") == 0) continue;
    if (!imp_ce_attr_valid(k, strlen(k))) {
      http_respond_error(
          req, 400, "BAD_REQUEST",
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
      http_respond_error(req, 400, "BAD_REQUEST",
                         "attribute '%s' must be a string, number or boolean",
                         k);
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
      http_respond_error(req, 400, "BAD_REQUEST",
                         "'data_base64' must be a string");
      return -1;
    }
    size_t n = json_string_length(d64), out;
    *data = malloc(n / 4 * 3 + 1);
    if (*data == NULL) abort();
    if (base64_decode(json_string_value(d64), n, (uint8_t *)*data, &out) != 0) {
      http_respond_error(req, 400, "BAD_REQUEST",
                         "'data_base64' is not base64");
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

void http_handle_publish(http_conn_t *conn, http_req_t *req, const char *topic,
                         size_t tlen) {
  imp_server_t *server = conn->server;
  http_msg_t *m = &req->msg;
  char tname[256];
  if (tlen >= sizeof tname) {
    http_respond_error(req, 400, "BAD_REQUEST", "topic name is too long");
    return;
  }
  memcpy(tname, topic, tlen);
  tname[tlen] = '\0';
  if (http_check_auth(conn, req, IMPULSE__ENVELOPE__BODY_PUBLISH, tname) != 0)
    return;
  if (server->stopping) {
    http_respond_error(req, 503, "SHUTTING_DOWN", "server is stopping");
    return;
  }
  Impulse__PublishRequest pr = IMPULSE__PUBLISH_REQUEST__INIT;
  pr.topic = tname;
  hdrset_t hs = {0};
  json_t *ev = NULL;
  char *data = NULL;
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
    ev = json_loadb(m->body.data ? m->body.data : "", m->body.len,
                    JSON_REJECT_DUPLICATES, &jerr);
    if (ev == NULL) {
      http_respond_error(req, 400, "BAD_REQUEST", "invalid JSON: %s (line %d)",
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
    if (h)
      http_hdrset_add(&hs, "", "content-type", 12, 0, http_hval(m, h), h->vlen);
    size_t pl = strlen(HDR_PREFIX);
    for (size_t i = 0; i < m->nhdrs; i++) {
      const http_hdr_t *x = &m->hdrs[i];
      const char *n = http_hname(m, x);
      size_t at = imp_ce_http_attr(n, x->nlen);
      if (at > 0) {
        http_hdrset_add(&hs, IMP_CE_KAFKA_PREFIX, n + at, x->nlen - at, 1,
                        http_hval(m, x), x->vlen);
        if (http_ieq(n + at, x->nlen - at, "partitionkey")) {
          pkey = http_hval(m, x);
          pkeylen = x->vlen;
        }
      } else if (x->nlen > pl && http_iprefix(n, x->nlen, HDR_PREFIX)) {
        http_hdrset_add(&hs, "", n + pl, x->nlen - pl, 1, http_hval(m, x),
                        x->vlen);
      }
    }
  }
  if ((h = http_find_header(m, "x-impulse-key")) != NULL) {
    pkey = http_hval(m, h);
    pkeylen = h->vlen;
  }
  if (pkey) {
    pr.has_key = 1;
    pr.key.data = (uint8_t *)pkey;
    pr.key.len = pkeylen;
  }
  if ((h = http_find_header(m, "x-impulse-partition")) != NULL) {
    uint64_t v;
    if (http_parse_u64(http_hval(m, h), h->vlen, INT32_MAX, &v) != 0) {
      http_respond_error(req, 400, "BAD_REQUEST",
                         "X-Impulse-Partition must be a partition number");
      goto out;
    }
    pr.has_partition = 1;
    pr.partition = (int32_t)v;
  }
  pr.n_headers = hs.n;
  pr.headers = http_hdrset_ptrs(&hs);
  req->topic = strdup(tname);
  if (req->topic == NULL) abort();
  http_msg_t msg = http_msg_take(req);
  req->waiting = 1;
  conn->refs++;
  char why[512];
  int code =
      imp_publish_start(server->kafka, &pr, on_published, req, why, sizeof why);
  /* From here on req may have been answered and freed (code == 0). */
  if (code != 0) {
    req->waiting = 0;
    conn->refs--;
    http_respond_code(req, code, 0, why);
  }
  http_msg_free(&msg);
out:
  http_hdrset_free(&hs);
  free(data);
  if (ev) json_decref(ev);
}
