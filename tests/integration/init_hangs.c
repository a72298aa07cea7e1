/*
 * Test artifact: impulse_init() never returns. Deploying it must fail with
 * INVALID_ARTIFACT once the server's validation timeout passes, and the
 * stuck validation worker must be killed.
 */
#include <unistd.h>

#include <impulse/function.h>

IMPULSE_FUNCTION();

IMPULSE_EXPORT int impulse_init(impulse_ctx_t *ctx) {
  (void)ctx;
  for (;;) pause();
}

IMPULSE_EXPORT int impulse_handle(impulse_ctx_t *ctx) {
  return impulse_respond(ctx, "unreachable", 11);
}
