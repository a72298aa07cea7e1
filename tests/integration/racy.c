/*
 * Test artifact, ThreadSanitizer builds only (integration/test_tsan.c): a
 * handler with a data race on purpose. Every call writes a plain global,
 * sleeps 100 ms and writes it again, with nothing ordering the calls, so
 * that calls running on two handler threads of one instance race. Answers
 * "ok".
 */
#include <time.h>

#include <impulse/function.h>

IMPULSE_FUNCTION();

static unsigned long calls; /* racy: no lock, no atomic, on purpose */

IMPULSE_EXPORT int impulse_handle(impulse_ctx_t *ctx) {
  calls++;
  struct timespec pause = {0, 100 * 1000000L};
  nanosleep(&pause, NULL);
  calls++;
  return impulse_respond(ctx, "ok", 2);
}
