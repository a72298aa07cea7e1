/*
 * What the CLI parses from its user (runtime/core/common.c and
 * runtime/cli/events.c). The first input byte picks the parser:
 * 0: `impulse publish` input lines with a -K delimiter (its length is the
 *    second byte % 4, its bytes follow): each event is one non-empty line,
 *    and key + delimiter + value give the line back;
 * 1: imp_parse_hostport: an address taken is HOST:PORT with a port of
 *    digits in 0..65535, and host and port written back give the text;
 * 2: imp_parse_duration_ms and imp_parse_ull: a value taken is at most a
 *    year, written back with its unit it parses the same; a number taken
 *    is the digits' value;
 * 3: imp_escape_bytes: one line of printable ASCII that unescapes to the
 *    same bytes.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/events.h"
#include "core/common.h"
#include "fuzz.h"

static void events(const uint8_t *data, size_t size) {
  if (size < 1) return;
  size_t dl = data[0] % 4;
  data++, size--;
  if (size < dl) return;
  char delim[4];
  memcpy(delim, data, dl);
  data += dl, size -= dl;
  if (size == 0) return;
  FILE *f = fmemopen((void *)data, size, "r");
  FUZZ_CHECK(f != NULL);
  imp_cli_events_t src = {0};
  src.in = f;
  if (dl > 0) {
    src.delim = delim;
    src.delim_len = dl;
  }
  imp_cli_event_t ev;
  int rc;
  /* The lines, as the input has them. */
  const char *p = (const char *)data, *end = p + size;
  uint64_t lineno = 0;
  while ((rc = imp_cli_events_next(&src, &ev)) == 1) {
    const char *line;
    size_t len;
    do {
      FUZZ_CHECK(p < end);
      line = p;
      const char *nl = memchr(p, '\n', (size_t)(end - p));
      len = nl ? (size_t)(nl - p) : (size_t)(end - p);
      p = nl ? nl + 1 : end;
      lineno++;
      if (len > 0 && line[len - 1] == '\r') len--;
    } while (len == 0);
    FUZZ_CHECK(ev.line == lineno && (ev.vlen > 0 || ev.key != NULL));
    if (ev.key == NULL) {
      FUZZ_CHECK(ev.vlen == len && memcmp(ev.value, line, len) == 0);
    } else {
      FUZZ_CHECK(dl > 0 && ev.klen + dl + ev.vlen == len);
      FUZZ_CHECK(memcmp(ev.key, line, ev.klen) == 0);
      FUZZ_CHECK(memcmp(line + ev.klen, delim, dl) == 0);
      FUZZ_CHECK(memcmp(ev.value, line + ev.klen + dl, ev.vlen) == 0);
      /* The delimiter's first occurrence splits. */
      FUZZ_CHECK(ev.klen + dl - 1 < dl ||
                 memmem(line, ev.klen + dl - 1, delim, dl) == NULL);
    }
  }
  FUZZ_CHECK(rc == 0);
  /* Nothing but empty lines was left. */
  for (; p < end; p++) FUZZ_CHECK(*p == '\n' || *p == '\r');
  free(src.line);
  fclose(f);
}

static char *cstr(const uint8_t *data, size_t size) {
  char *s = malloc(size + 1);
  FUZZ_CHECK(s != NULL);
  memcpy(s, data, size);
  s[size] = '\0';
  return s;
}

static int all_digits(const char *s) {
  if (*s == '\0') return 0;
  for (; *s; s++)
    if (*s < '0' || *s > '9') return 0;
  return 1;
}

static void hostport(const uint8_t *data, size_t size) {
  char *s = cstr(data, size);
  size_t hostlen = size % 64 + 1;
  char host[65];
  memset(host, 'x', sizeof host);
  int port = -1;
  if (imp_parse_hostport(s, host, hostlen, &port) == 0) {
    size_t hl = strnlen(host, hostlen);
    FUZZ_CHECK(hl < hostlen && hl > 0 && host[hostlen] == 'x');
    FUZZ_CHECK(port >= 0 && port <= 65535);
    const char *colon = strrchr(s, ':');
    FUZZ_CHECK(colon != NULL && all_digits(colon + 1));
    FUZZ_CHECK(atoi(colon + 1) == port);
    size_t cl = (size_t)(colon - s);
    size_t at = s[0] == '[' && cl >= 2 && s[cl - 1] == ']' ? 1 : 0;
    FUZZ_CHECK(memcmp(s + at, host, hl) == 0);
    FUZZ_CHECK((size_t)(colon - s) == hl + 2 * at);
  }
  free(s);
}

static void numbers(const uint8_t *data, size_t size) {
  char *s = cstr(data, size);
  uint64_t ms;
  if (imp_parse_duration_ms(s, &ms) == 0) {
    FUZZ_CHECK(ms <= 366ull * 86400000ull);
    char again[40];
    snprintf(again, sizeof again, "%llums", (unsigned long long)ms);
    uint64_t ms2;
    FUZZ_CHECK(imp_parse_duration_ms(again, &ms2) == 0 && ms2 == ms);
  }
  unsigned long long v;
  if (imp_parse_ull(s, 0, ULLONG_MAX, &v) == 0) {
    FUZZ_CHECK(all_digits(s));
    char again[32];
    snprintf(again, sizeof again, "%llu", v);
    /* Leading zeros aside, the digits are the number's. */
    const char *d = s;
    while (d[0] == '0' && d[1] != '\0') d++;
    FUZZ_CHECK(strcmp(again, d) == 0);
  }
  free(s);
}

static int hexval(char c) {
  return c >= '0' && c <= '9'   ? c - '0'
         : c >= 'a' && c <= 'f' ? c - 'a' + 10
                                : -1;
}

static void escape(const uint8_t *data, size_t size) {
  imp_buf_t out = {0};
  FUZZ_CHECK(imp_escape_bytes(&out, data, size) == 0);
  FUZZ_CHECK(out.data != NULL && out.data[out.len] == '\0');
  FUZZ_CHECK(out.len <= 4 * size);
  uint8_t *back = malloc(size ? size : 1);
  FUZZ_CHECK(back != NULL);
  size_t n = 0;
  for (size_t i = 0; i < out.len; i++) {
    char c = out.data[i];
    FUZZ_CHECK(c >= 0x20 && c < 0x7f);
    FUZZ_CHECK(n < size || size == 0);
    if (c != '\\') {
      back[n++] = (uint8_t)c;
      continue;
    }
    FUZZ_CHECK(i + 1 < out.len);
    c = out.data[++i];
    if (c == '\\')
      back[n++] = '\\';
    else if (c == 'n')
      back[n++] = '\n';
    else if (c == 'r')
      back[n++] = '\r';
    else if (c == 't')
      back[n++] = '\t';
    else {
      FUZZ_CHECK(c == 'x' && i + 2 < out.len);
      int hi = hexval(out.data[i + 1]), lo = hexval(out.data[i + 2]);
      FUZZ_CHECK(hi >= 0 && lo >= 0);
      back[n++] = (uint8_t)(hi * 16 + lo);
      i += 2;
    }
  }
  FUZZ_CHECK(n == size && (size == 0 || memcmp(back, data, size) == 0));
  free(back);
  imp_buf_free(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) return 0;
  switch (data[0] % 4) {
    case 0: events(data + 1, size - 1); break;
    case 1: hostport(data + 1, size - 1); break;
    case 2: numbers(data + 1, size - 1); break;
    default: escape(data + 1, size - 1); break;
  }
  return 0;
}
