/*
 * Test artifact: impulse_init() refuses to start. Deploying it must fail
 * with INVALID_ARTIFACT carrying the message set by the function.
 */
#include <impulse/function.h>

IMPULSE_FUNCTION();

IMPULSE_EXPORT int impulse_init(impulse_ctx_t *ctx) {
  return impulse_error(ctx, IMPULSE_ERROR, "init-refused: missing config");
}

IMPULSE_EXPORT int impulse_handle(impulse_ctx_t *ctx) {
  return impulse_respond(ctx, "unreachable", 11);
}
