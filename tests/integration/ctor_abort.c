/*
 * Test artifact: a library constructor that aborts while the object is being
 * loaded, before impulse_init. Deploying it must fail with INVALID_ARTIFACT
 * (the validation worker dies), and nothing else may be disturbed.
 */
#include <stdlib.h>

#include <impulse/function.h>

IMPULSE_FUNCTION();

__attribute__((constructor)) static void explode_on_load(void) {
  abort();
}

IMPULSE_EXPORT int impulse_handle(impulse_ctx_t *ctx) {
  return impulse_respond(ctx, "unreachable", 11);
}
