/*
 * Test artifact: looks around from inside an instance, as hostile code
 * would, and answers with what it found. The payload is a command:
 *
 *   env           the instance's environment, "KEY=VALUE\n" each
 *   read PATH     the first 4 KiB of a file, or "error: REASON"
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <impulse/function.h>

IMPULSE_FUNCTION();

extern char **environ;

static int answer_env(impulse_ctx_t *ctx) {
  char out[8192];
  size_t n = 0;
  for (char **e = environ; e != NULL && *e != NULL; e++) {
    int w = snprintf(out + n, sizeof out - n, "%s\n", *e);
    if (w < 0 || (size_t)w >= sizeof out - n) break;
    n += (size_t)w;
  }
  return impulse_respond(ctx, out, n);
}

static int answer_read(impulse_ctx_t *ctx, const char *path) {
  char out[4096];
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    int n = snprintf(out, sizeof out, "error: %s", strerror(errno));
    return impulse_respond(ctx, out, (size_t)n);
  }
  ssize_t got = read(fd, out, sizeof out);
  int e = errno;
  close(fd);
  if (got < 0) {
    int n = snprintf(out, sizeof out, "error: %s", strerror(e));
    return impulse_respond(ctx, out, (size_t)n);
  }
  return impulse_respond(ctx, out, (size_t)got);
}

IMPULSE_EXPORT int impulse_handle(impulse_ctx_t *ctx) {
  size_t len;
  const char *in = impulse_payload(ctx, &len);
  char cmd[1024];
  if (len >= sizeof cmd)
    return impulse_error(ctx, IMPULSE_ERROR, "command too long");
  memcpy(cmd, in, len);
  cmd[len] = '\0';
  if (strcmp(cmd, "env") == 0) return answer_env(ctx);
  if (strncmp(cmd, "read ", 5) == 0) return answer_read(ctx, cmd + 5);
  return impulse_error(ctx, IMPULSE_ERROR, "unknown command");
}
