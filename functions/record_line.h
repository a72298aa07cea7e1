/*
 * The record line of the example functions recorder and flaky: one line
 * per call, "TOPIC PARTITION OFFSET KEY VALUE\n", from the trigger's
 * kafka.* headers ("-" for one that is missing, e.g. a direct invocation
 * or a record without a key) and the payload, with spaces and newlines in
 * a field replaced by '_' so that a line always has five fields. A header
 * is cut at 256 bytes. The line is one write(2) to a file opened with
 * O_APPEND, so concurrent calls never interleave.
 */
#ifndef IMPULSE_EXAMPLE_RECORD_LINE_H
#define IMPULSE_EXAMPLE_RECORD_LINE_H

#include <unistd.h>

#include <impulse/function.h>

#define RECORD_HEADER_MAX 256

/* Appends a field (or "-"), replacing bytes that would split the line. */
static char *record_field(char *p, const char *end, const void *v, size_t len) {
  if (v == NULL) {
    if (p < end) *p++ = '-';
    return p;
  }
  const char *s = v;
  for (size_t i = 0; i < len && p < end; i++)
    *p++ = (s[i] == ' ' || s[i] == '\n' || s[i] == '\r' || s[i] == '\t') ? '_'
                                                                         : s[i];
  return p;
}

/* Appends the line of this call to `fd`. Returns 0, or -1 when out of
 * memory or the write was short. */
static int record_line(impulse_ctx_t *ctx, int fd, const char *payload,
                       size_t plen) {
  static const char *const names[] = {"kafka.topic", "kafka.partition",
                                      "kafka.offset", "kafka.key"};
  /* Four headers with their separators, the payload and the newline. */
  size_t cap = 4 * (RECORD_HEADER_MAX + 1) + plen + 1;
  char *line = impulse_alloc(ctx, cap);
  if (line == NULL) return -1;
  char *p = line, *end = line + cap;
  for (size_t i = 0; i < 4; i++) {
    size_t len = 0;
    const void *v = impulse_header(ctx, names[i], &len);
    if (v != NULL && len > RECORD_HEADER_MAX) len = RECORD_HEADER_MAX;
    p = record_field(p, end, v, len);
    *p++ = ' ';
  }
  p = record_field(p, end, payload, plen);
  *p++ = '\n';
  size_t n = (size_t)(p - line);
  return write(fd, line, n) == (ssize_t)n ? 0 : -1;
}

#endif
