/*
 * Test artifact: writes to stdout, stderr and impulse_log, as a function
 * that means harm to the server's log would. The payload is a command:
 *
 *   lines        one line of each stream; on stderr also ANSI escapes and
 *                a carriage return, and a line in the server's own log
 *                format; through impulse_log a message with newlines
 *   say TEXT     TEXT and a newline on stdout
 *   flood MIB    MIB MiB of 1 KiB lines ("FLOODFLOOD...\n") on stdout,
 *                1 MiB per write
 *   long         one stdout line of 10000 bytes
 *
 * Answers "ok".
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <impulse/function.h>

IMPULSE_FUNCTION();

static void put(int fd, const char *s) {
  size_t n = strlen(s);
  while (n > 0) {
    ssize_t w = write(fd, s, n);
    if (w <= 0) return;
    s += w;
    n -= (size_t)w;
  }
}

static int flood(unsigned mib) {
  enum { CHUNK = 1 << 20, LINE = 1024 };
  char *buf = malloc(CHUNK);
  if (buf == NULL) return IMPULSE_ERROR;
  for (size_t i = 0; i < CHUNK; i++)
    buf[i] = i % LINE == LINE - 1 ? '\n' : "FLOOD"[i % 5];
  for (unsigned m = 0; m < mib; m++) {
    size_t off = 0;
    while (off < CHUNK) {
      ssize_t w = write(1, buf + off, CHUNK - off);
      if (w <= 0) break;
      off += (size_t)w;
    }
  }
  free(buf);
  return IMPULSE_OK;
}

IMPULSE_EXPORT int impulse_handle(impulse_ctx_t *ctx) {
  size_t len;
  const char *in = impulse_payload(ctx, &len);
  char cmd[256];
  if (len >= sizeof cmd) len = sizeof cmd - 1;
  memcpy(cmd, in, len);
  cmd[len] = '\0';
  if (strcmp(cmd, "lines") == 0) {
    put(1, "chatty-out plain stdout line\n");
    put(2, "chatty-err \x1b[2J\x1b[31mred\x1b[0m back\rover\n");
    put(2,
        "2030-01-01T00:00:00.000Z error [1] chatty-forged server line: "
        "admin token leaked\n");
    impulse_log(ctx, IMPULSE_LOG_WARN, "chatty-log first\nsecond\x1b[1m %d",
                42);
  } else if (strncmp(cmd, "say ", 4) == 0) {
    char line[300];
    snprintf(line, sizeof line, "%s\n", cmd + 4);
    put(1, line);
  } else if (strncmp(cmd, "flood ", 6) == 0) {
    int rc = flood((unsigned)atoi(cmd + 6));
    if (rc != IMPULSE_OK) return rc;
  } else if (strcmp(cmd, "long") == 0) {
    char *line = malloc(10001);
    if (line == NULL) return IMPULSE_ERROR;
    memset(line, 'L', 10000);
    line[10000] = '\0';
    put(1, "chatty-long ");
    put(1, line);
    put(1, "\n");
    free(line);
  } else {
    return impulse_error(ctx, IMPULSE_BAD_INPUT, "unknown command");
  }
  return impulse_respond(ctx, "ok", 2);
}
