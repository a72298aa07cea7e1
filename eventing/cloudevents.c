/*
 * CloudEvents attributes on Kafka records and HTTP requests; see
 * cloudevents.h. Called per record on the trigger's hot path: nothing here
 * allocates, and the time's formatted second is cached by the caller.
 */
#include "eventing/cloudevents.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

const char *const imp_ce_required[IMP_CE_NREQUIRED] = {"specversion", "id",
                                                       "source", "type"};

unsigned imp_ce_header_attr(const char *name) {
  /* Most headers are not attributes: one compare decides. */
  if (strncmp(name, IMP_CE_KAFKA_PREFIX, sizeof IMP_CE_KAFKA_PREFIX - 1) != 0)
    return 0;
  if (strcmp(name, IMP_CE_H_ID) == 0) return IMP_CE_ID;
  if (strcmp(name, IMP_CE_H_SOURCE) == 0) return IMP_CE_SOURCE;
  if (strcmp(name, IMP_CE_H_TYPE) == 0) return IMP_CE_TYPE;
  if (strcmp(name, IMP_CE_H_TIME) == 0) return IMP_CE_TIME;
  if (strcmp(name, IMP_CE_H_SPECVERSION) == 0) return IMP_CE_SPECVERSION;
  return 0;
}

int imp_ce_attr_valid(const char *name, size_t len) {
  if (len == 0 || len > IMP_CE_ATTR_MAX) return 0;
  for (size_t i = 0; i < len; i++)
    if (!((name[i] >= 'a' && name[i] <= 'z') ||
          (name[i] >= '0' && name[i] <= '9')))
      return 0;
  return 1;
}

size_t imp_ce_attr_header(const char *attr, size_t len, char *buf,
                          size_t buflen) {
  static const char ct[] = "content-type";
  static const char dct[] = "datacontenttype";
  if (len == sizeof dct - 1 && memcmp(attr, dct, len) == 0) {
    if (buflen < sizeof ct) return 0;
    memcpy(buf, ct, sizeof ct);
    return sizeof ct - 1;
  }
  size_t pl = sizeof IMP_CE_KAFKA_PREFIX - 1;
  if (buflen <= pl + len) return 0;
  memcpy(buf, IMP_CE_KAFKA_PREFIX, pl);
  memcpy(buf + pl, attr, len);
  buf[pl + len] = '\0';
  return pl + len;
}

size_t imp_ce_http_attr(const char *name, size_t len) {
  size_t pl = sizeof IMP_CE_HTTP_PREFIX - 1;
  if (len <= pl) return 0;
  for (size_t i = 0; i < pl; i++) {
    char c = name[i];
    if (c >= 'A' && c <= 'Z') c = (char)(c + 32);
    if (c != IMP_CE_HTTP_PREFIX[i]) return 0;
  }
  return pl;
}

size_t imp_ce_record_id(const char *topic, const char *partition, size_t plen,
                        const char *offset, size_t olen, char *buf,
                        size_t buflen) {
  size_t tl = strlen(topic);
  if (buflen < tl + plen + olen + 3) return 0;
  size_t n = tl;
  memcpy(buf, topic, tl);
  buf[n++] = '-';
  memcpy(buf + n, partition, plen);
  n += plen;
  buf[n++] = '-';
  memcpy(buf + n, offset, olen);
  n += olen;
  buf[n] = '\0';
  return n;
}

size_t imp_ce_record_source(const char *topic, char *buf, size_t buflen) {
  int n = snprintf(buf, buflen, "kafka://%s", topic);
  return n > 0 ? (size_t)n : 0;
}

size_t imp_ce_reply_source(const char *function, char *buf, size_t buflen) {
  int n = snprintf(buf, buflen, "impulse://functions/%s", function);
  return n > 0 ? (size_t)n : 0;
}

void imp_ce_clock_init(imp_ce_clock_t *cache) {
  memset(cache, 0, sizeof *cache);
}

size_t imp_ce_time(imp_ce_clock_t *cache, int64_t ms, char *buf) {
  /* A record's timestamp comes from its producer: RFC 3339 has four-digit
   * years, and a later time would not fit the cache's text (strftime
   * wrote nothing, leaving ".mmmZ"). */
  if (ms < 0) ms = 0;
  if (ms > IMP_CE_TIME_LAST_MS) ms = IMP_CE_TIME_LAST_MS;
  int64_t sec = ms / 1000;
  if (sec != cache->sec || cache->len == 0) {
    time_t s = (time_t)sec;
    struct tm tm;
    cache->len = 0;
    if (gmtime_r(&s, &tm) != NULL)
      cache->len =
          strftime(cache->text, sizeof cache->text, "%Y-%m-%dT%H:%M:%S", &tm);
    cache->sec = sec;
  }
  size_t n = cache->len;
  memcpy(buf, cache->text, n);
  int frac = (int)(ms % 1000);
  buf[n++] = '.';
  buf[n++] = (char)('0' + frac / 100);
  buf[n++] = (char)('0' + frac / 10 % 10);
  buf[n++] = (char)('0' + frac % 10);
  buf[n++] = 'Z';
  buf[n] = '\0';
  return n;
}
