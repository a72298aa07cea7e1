/*
 * CloudEvents both ways (eventing/cloudevents.c and the publish mapping of
 * runtime/server/http/request.c). The first input byte picks what the rest
 * is:
 * 0: a structured-mode event (JSON body of POST /topics/T). When it is
 *    taken, every record header is content-type or ce_<valid attribute>,
 *    imp_ce_header_attr() names the attributes the broker fills in, and
 *    the same event sent in binary mode (ce-<attr> headers, the data as the
 *    body) makes the same record: headers, value and key.
 * 1: binary-mode headers (name, value pairs split at 0xff bytes): every
 *    ce- header becomes ce_<lower-case attribute> with the same value.
 * 2: a record's time (8 bytes of milliseconds) and id parts: the time is
 *    RFC 3339 with milliseconds, and reads back to the same instant when
 *    in years 0000-9999; the id is <topic>-<partition>-<offset>.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "eventing/cloudevents.h"
#include "fuzz.h"
#include "server/http/request.h"

/* A message as the parser would have collected it. */
static void msg_header(http_msg_t *m, const char *name, size_t nlen,
                       const void *value, size_t vlen) {
  if (m->nhdrs == m->caphdrs) {
    m->caphdrs = m->caphdrs ? m->caphdrs * 2 : 8;
    m->hdrs = realloc(m->hdrs, m->caphdrs * sizeof *m->hdrs);
    FUZZ_CHECK(m->hdrs != NULL);
  }
  /* A parsed message's hbuf always holds its target first, so never is
   * NULL when it has headers (whose names may be empty here). */
  FUZZ_CHECK(imp_buf_reserve(&m->hbuf, 1) == 0);
  http_hdr_t *h = &m->hdrs[m->nhdrs++];
  h->name = m->hbuf.len;
  h->nlen = nlen;
  FUZZ_CHECK(imp_buf_append(&m->hbuf, name, nlen) == 0);
  h->value = m->hbuf.len;
  h->vlen = vlen;
  if (vlen) FUZZ_CHECK(imp_buf_append(&m->hbuf, value, vlen) == 0);
}

static int by_name(const void *a, const void *b) {
  const Impulse__Header *x = *(Impulse__Header *const *)a;
  const Impulse__Header *y = *(Impulse__Header *const *)b;
  return strcmp(x->name, y->name);
}

static void check_header(const Impulse__Header *h) {
  const char *n = h->name;
  unsigned bit = imp_ce_header_attr(n);
  if (strcmp(n, "content-type") == 0) {
    FUZZ_CHECK(bit == 0);
    return;
  }
  FUZZ_CHECK(strncmp(n, IMP_CE_KAFKA_PREFIX, 3) == 0);
  FUZZ_CHECK(imp_ce_attr_valid(n + 3, strlen(n + 3)));
  static const char *const named[] = {"id", "source", "type", "time",
                                      "specversion"};
  unsigned want = 0;
  for (unsigned i = 0; i < 5; i++)
    if (strcmp(n + 3, named[i]) == 0) want = 1u << i;
  FUZZ_CHECK(bit == want);
}

static void structured(const uint8_t *data, size_t size) {
  http_msg_t m = {0};
  static const char ct[] = "application/cloudevents+json";
  msg_header(&m, "Content-Type", 12, ct, sizeof ct - 1);
  if (size) FUZZ_CHECK(imp_buf_append(&m.body, data, size) == 0);
  Impulse__PublishRequest pr = IMPULSE__PUBLISH_REQUEST__INIT;
  hdrset_t hs = {0};
  json_t *ev = NULL;
  char *value = NULL;
  char err[512];
  if (http_publish_request(&m, &pr, &hs, &ev, &value, err, sizeof err) != 0)
    goto out;
  for (size_t i = 0; i < pr.n_headers; i++) check_header(pr.headers[i]);
  /* The same event in binary mode. */
  http_msg_t b = {0};
  int skip = 0;
  for (size_t i = 0; i < pr.n_headers; i++) {
    const Impulse__Header *h = pr.headers[i];
    if (strcmp(h->name, "content-type") == 0) {
      /* Would make the binary request a structured one. */
      if (h->value.len >= sizeof ct - 1 &&
          strncasecmp((const char *)h->value.data, ct, sizeof ct - 1) == 0)
        skip = 1;
      msg_header(&b, "content-type", 12, h->value.data, h->value.len);
    } else {
      char name[IMP_CE_HEADER_MAX];
      size_t nl = strlen(h->name);
      memcpy(name, "Ce-", 3);
      memcpy(name + 3, h->name + 3, nl - 3);
      msg_header(&b, name, nl, h->value.data, h->value.len);
    }
  }
  if (pr.has_value && pr.value.len)
    FUZZ_CHECK(imp_buf_append(&b.body, pr.value.data, pr.value.len) == 0);
  if (!skip) {
    Impulse__PublishRequest p2 = IMPULSE__PUBLISH_REQUEST__INIT;
    hdrset_t hs2 = {0};
    json_t *ev2 = NULL;
    char *v2 = NULL;
    FUZZ_CHECK(
        http_publish_request(&b, &p2, &hs2, &ev2, &v2, err, sizeof err) == 0);
    FUZZ_CHECK(ev2 == NULL && p2.n_headers == pr.n_headers);
    qsort(pr.headers, pr.n_headers, sizeof *pr.headers, by_name);
    qsort(p2.headers, p2.n_headers, sizeof *p2.headers, by_name);
    for (size_t i = 0; i < pr.n_headers; i++) {
      const Impulse__Header *x = pr.headers[i], *y = p2.headers[i];
      FUZZ_CHECK(strcmp(x->name, y->name) == 0);
      FUZZ_CHECK(x->value.len == y->value.len);
      FUZZ_CHECK(x->value.len == 0 ||
                 memcmp(x->value.data, y->value.data, x->value.len) == 0);
    }
    size_t vl = pr.has_value ? pr.value.len : 0;
    FUZZ_CHECK(p2.value.len == vl);
    FUZZ_CHECK(vl == 0 || memcmp(p2.value.data, pr.value.data, vl) == 0);
    FUZZ_CHECK(p2.has_key == pr.has_key && p2.key.len == pr.key.len);
    FUZZ_CHECK(!pr.has_key || pr.key.len == 0 ||
               memcmp(p2.key.data, pr.key.data, pr.key.len) == 0);
    http_hdrset_free(&hs2);
    free(v2);
  }
  http_msg_free(&b);
out:
  http_hdrset_free(&hs);
  free(value);
  if (ev) json_decref(ev);
  http_msg_free(&m);
}

static void binary(const uint8_t *data, size_t size) {
  http_msg_t m = {0};
  /* Fields at 0xff bytes: name, value, name, value... */
  size_t start = 0, name = 0, nlen = 0;
  int is_value = 0;
  for (size_t i = 0; i <= size && m.nhdrs < 64; i++) {
    if (i < size && data[i] != 0xff) continue;
    if (is_value)
      msg_header(&m, (const char *)data + name, nlen, data + start, i - start);
    else
      name = start, nlen = i - start;
    is_value ^= 1;
    start = i + 1;
  }
  Impulse__PublishRequest pr = IMPULSE__PUBLISH_REQUEST__INIT;
  hdrset_t hs = {0};
  json_t *ev = NULL;
  char *value = NULL;
  char err[512];
  if (http_publish_request(&m, &pr, &hs, &ev, &value, err, sizeof err) != 0)
    goto out;
  size_t k = 0;
  const http_hdr_t *ct = http_find_header(&m, "content-type");
  if (ct) {
    FUZZ_CHECK(strcmp(pr.headers[k]->name, "content-type") == 0);
    FUZZ_CHECK(pr.headers[k]->value.len == ct->vlen);
    k++;
  }
  for (size_t i = 0; i < m.nhdrs; i++) {
    const http_hdr_t *x = &m.hdrs[i];
    const char *n = http_hname(&m, x);
    size_t at = imp_ce_http_attr(n, x->nlen);
    if (at == 0) {
      if (x->nlen > strlen(HDR_PREFIX) && http_iprefix(n, x->nlen, HDR_PREFIX))
        k++;
      continue;
    }
    FUZZ_CHECK(at == 3 && x->nlen > 3);
    FUZZ_CHECK(k < pr.n_headers);
    const Impulse__Header *h = pr.headers[k++];
    FUZZ_CHECK(strncmp(h->name, IMP_CE_KAFKA_PREFIX, 3) == 0);
    for (size_t j = 3; j < x->nlen && h->name[j] != '\0'; j++) {
      char c = n[j] >= 'A' && n[j] <= 'Z' ? (char)(n[j] + 32) : n[j];
      FUZZ_CHECK(h->name[j] == c);
    }
    FUZZ_CHECK(h->value.len == x->vlen);
    FUZZ_CHECK(x->vlen == 0 ||
               memcmp(h->value.data, http_hval(&m, x), x->vlen) == 0);
  }
  FUZZ_CHECK(k == pr.n_headers);
out:
  http_hdrset_free(&hs);
  free(value);
  if (ev) json_decref(ev);
  http_msg_free(&m);
}

static int digits(const char *s, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (s[i] < '0' || s[i] > '9') return 0;
  return 1;
}

static void record(const uint8_t *data, size_t size) {
  if (size < 8) return;
  int64_t ms;
  memcpy(&ms, data, 8);
  imp_ce_clock_t clock;
  imp_ce_clock_init(&clock);
  char t[IMP_CE_TIME_MAX], again[IMP_CE_TIME_MAX];
  for (int round = 0; round < 2; round++) {
    size_t n = imp_ce_time(&clock, ms, t);
    FUZZ_CHECK(n == 24 && strlen(t) == n);
    FUZZ_CHECK(digits(t, 4) && t[4] == '-' && digits(t + 5, 2) && t[7] == '-' &&
               digits(t + 8, 2) && t[10] == 'T' && digits(t + 11, 2) &&
               t[13] == ':' && digits(t + 14, 2) && t[16] == ':' &&
               digits(t + 17, 2) && t[19] == '.' && digits(t + 20, 3) &&
               t[23] == 'Z');
    /* Read back: the same instant, within the years RFC 3339 writes. */
    struct tm tm = {0};
    tm.tm_year = atoi(t) - 1900;
    tm.tm_mon = atoi(t + 5) - 1;
    tm.tm_mday = atoi(t + 8);
    tm.tm_hour = atoi(t + 11);
    tm.tm_min = atoi(t + 14);
    tm.tm_sec = atoi(t + 17);
    int64_t back = (int64_t)timegm(&tm) * 1000 + atoi(t + 20);
    const int64_t max = 253402300799999; /* 9999-12-31T23:59:59.999Z */
    FUZZ_CHECK(back == (ms < 0 ? 0 : ms > max ? max : ms));
    /* The cached second gives the same text. */
    FUZZ_CHECK(imp_ce_time(&clock, ms, again) == n && strcmp(again, t) == 0);
    /* Another millisecond of the same second. */
    int64_t sec = ms / 1000 * 1000, frac = (ms % 1000 + 1) % 1000;
    if (frac > 0 && sec > INT64_MAX - frac) break; /* the last second */
    ms = sec + frac;
  }
  /* The id of a record: topic, partition and offset texts. */
  const char *rest = (const char *)data + 8;
  size_t rl = size - 8;
  size_t tl = rl < 249 ? rl : 249;
  char topic[250];
  memcpy(topic, rest, tl);
  topic[tl] = '\0';
  tl = strlen(topic);
  char id[IMP_CE_ID_MAX];
  size_t n = imp_ce_record_id(topic, "12", 2, "-34", 3, id, sizeof id);
  FUZZ_CHECK(n == tl + 7 && strlen(id) == n);
  FUZZ_CHECK(memcmp(id, topic, tl) == 0 && strcmp(id + tl, "-12--34") == 0);
  FUZZ_CHECK(imp_ce_record_id(topic, "1", 1, "2", 1, id, tl + 4) == 0);
  char src[300];
  FUZZ_CHECK(imp_ce_record_source(topic, src, sizeof src) == tl + 8);
  FUZZ_CHECK(strncmp(src, "kafka://", 8) == 0 && strcmp(src + 8, topic) == 0);
  char hdr[IMP_CE_HEADER_MAX];
  size_t hl = imp_ce_attr_header(topic, tl, hdr, sizeof hdr);
  if (imp_ce_attr_valid(topic, tl)) FUZZ_CHECK(hl > 0 && strlen(hdr) == hl);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) return 0;
  switch (data[0] % 3) {
    case 0: structured(data + 1, size - 1); break;
    case 1: binary(data + 1, size - 1); break;
    default: record(data + 1, size - 1); break;
  }
  return 0;
}
