/*
 * flaky (test only): a function that fails one kind of event every time.
 * Records every call like `recorder` (when IMPULSE_RECORDER_FILE is set in
 * the server's environment: "TOPIC PARTITION OFFSET KEY VALUE" per line,
 * one O_APPEND write each), then fails with IMPULSE_ERROR when the payload
 * contains "poison", and responds "ok" otherwise. Tests use it for retries
 * and dead-lettering; counting a poison event's lines counts its attempts.
 * An event containing "crash" aborts the worker process instead (after
 * recording the call).
 * IMPULSE_FLAKY_DELAY_US, when set, makes every call sleep that long first
 * (at most 1 s), so a test can keep a run going for a while.
 */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <impulse/function.h>

#include "record_line.h"

IMPULSE_FUNCTION();

static int fd = -1;
static unsigned delay_us;

IMPULSE_EXPORT int impulse_init(impulse_ctx_t *ctx) {
  const char *path = getenv("IMPULSE_RECORDER_FILE");
  const char *delay = getenv("IMPULSE_FLAKY_DELAY_US");
  (void)ctx;
  if (delay != NULL) {
    unsigned long v = strtoul(delay, NULL, 10);
    delay_us = v > 1000000 ? 1000000 : (unsigned)v;
  }
  if (path != NULL && path[0] != '\0')
    fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  return IMPULSE_OK;
}

IMPULSE_EXPORT void impulse_fini(void) {
  if (fd >= 0) close(fd);
  fd = -1;
}

IMPULSE_EXPORT int impulse_handle(impulse_ctx_t *ctx) {
  size_t len;
  const char *payload = impulse_payload(ctx, &len);
  if (delay_us) usleep(delay_us);
  if (fd >= 0) (void)record_line(ctx, fd, payload, len);
  if (memmem(payload, len, "crash", 5) != NULL) abort(); /* the worker dies */
  if (memmem(payload, len, "poison", 6) != NULL)
    return impulse_error(ctx, IMPULSE_ERROR, "poison event refused");
  return impulse_respond(ctx, "ok", 2);
}
