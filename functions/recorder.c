/*
 * recorder (test and demo): records each event it is invoked with, for
 * triggers. Appends one line per call to the file named by the environment
 * variable IMPULSE_RECORDER_FILE (workers inherit the server's
 * environment):
 *
 *     TOPIC PARTITION OFFSET KEY VALUE\n
 *
 * from the trigger's kafka.* headers ("-" for one that is missing, e.g. a
 * direct invocation or a record without a key) and the payload, with
 * spaces and newlines in the key and value replaced by '_' so that a line
 * always has five fields. The file is opened with O_APPEND and each
 * line is one write(2), so concurrent calls never interleave. Responds
 * "ok"; fails when the variable is not set or the file cannot be written.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <impulse/function.h>

IMPULSE_FUNCTION();

static int fd = -1;

IMPULSE_EXPORT int impulse_init(impulse_ctx_t *ctx) {
  const char *path = getenv("IMPULSE_RECORDER_FILE");
  if (path == NULL || path[0] == '\0')
    return impulse_error(ctx, IMPULSE_ERROR,
                         "IMPULSE_RECORDER_FILE is not set in the server's "
                         "environment");
  fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0)
    return impulse_error(ctx, IMPULSE_ERROR, "cannot open %s: %s", path,
                         strerror(errno));
  return IMPULSE_OK;
}

IMPULSE_EXPORT void impulse_fini(void) {
  if (fd >= 0) close(fd);
  fd = -1;
}

/* Appends a field (or "-"), replacing bytes that would split the line. */
static char *put_field(char *p, const char *end, const void *v, size_t len) {
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

IMPULSE_EXPORT int impulse_handle(impulse_ctx_t *ctx) {
  static const char *const names[] = {"kafka.topic", "kafka.partition",
                                      "kafka.offset", "kafka.key"};
  size_t plen;
  const char *payload = impulse_payload(ctx, &plen);
  size_t cap = plen + 1024;
  char *line = impulse_alloc(ctx, cap);
  if (line == NULL) return impulse_error(ctx, IMPULSE_ERROR, "out of memory");
  char *p = line, *end = line + cap - 1;
  for (size_t i = 0; i < 4; i++) {
    size_t len = 0;
    const void *v = impulse_header(ctx, names[i], &len);
    if (v != NULL && len > 256) len = 256;
    p = put_field(p, end, v, len);
    *p++ = ' ';
  }
  p = put_field(p, end, payload, plen);
  *p++ = '\n';
  size_t n = (size_t)(p - line);
  ssize_t w = write(fd, line, n);
  if (w != (ssize_t)n)
    return impulse_error(ctx, IMPULSE_ERROR,
                         "cannot append to the record file");
  return impulse_respond(ctx, "ok", 2);
}
