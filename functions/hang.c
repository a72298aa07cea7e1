/*
 * hang (test only): never returns, so timeouts can be tested. When the
 * payload is a number N of milliseconds (N <= 86400000, one day) it sleeps
 * that long instead and responds "slept N".
 */
#include <errno.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#include <impulse/function.h>

IMPULSE_FUNCTION();

#define MAX_SLEEP_MS 86400000ull

/* Parses payload[0..len) as a decimal number <= MAX_SLEEP_MS; 0 or -1. */
static int parse_ms(const char *payload, size_t len, unsigned long long *ms) {
  unsigned long long v = 0;
  if (len == 0 || len > 12) return -1;
  for (size_t i = 0; i < len; i++) {
    if (payload[i] < '0' || payload[i] > '9') return -1;
    v = v * 10 + (unsigned long long)(payload[i] - '0');
  }
  if (v > MAX_SLEEP_MS) return -1;
  *ms = v;
  return 0;
}

IMPULSE_EXPORT int impulse_handle(impulse_ctx_t *ctx) {
  size_t len;
  const char *payload = impulse_payload(ctx, &len);
  unsigned long long ms;
  if (parse_ms(payload, len, &ms) != 0) {
    for (;;) pause();
  }
  struct timespec left = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
  while (nanosleep(&left, &left) != 0 && errno == EINTR) {
  }
  char out[32];
  int n = snprintf(out, sizeof out, "slept %llu", ms);
  return impulse_respond(ctx, out, (size_t)n);
}
