/*
 * recorder (test and demo): records each event it is invoked with, for
 * triggers. Appends one line per call to the file named by the environment
 * variable IMPULSE_RECORDER_FILE (workers inherit the server's
 * environment):
 *
 *     TOPIC PARTITION OFFSET KEY VALUE\n
 *
 * (record_line.h says how the line is made). Responds "ok"; fails when
 * the variable is not set or the line cannot be written.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <impulse/function.h>

#include "record_line.h"

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

IMPULSE_EXPORT int impulse_handle(impulse_ctx_t *ctx) {
  size_t plen;
  const char *payload = impulse_payload(ctx, &plen);
  if (record_line(ctx, fd, payload, plen) != 0)
    return impulse_error(ctx, IMPULSE_ERROR,
                         "cannot append to the record file");
  return impulse_respond(ctx, "ok", 2);
}
