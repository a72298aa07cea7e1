/*
 * Test artifact: a complete function built for another ABI version.
 * Deploying it must fail with INVALID_ARTIFACT naming the ABI version.
 */
#include <impulse/function.h>

/* Not IMPULSE_FUNCTION(): claims a future ABI on purpose. */
IMPULSE_EXPORT const uint32_t impulse_abi_version = IMPULSE_ABI_VERSION + 41u;

IMPULSE_EXPORT int impulse_handle(impulse_ctx_t *ctx) {
  size_t len;
  const void *in = impulse_payload(ctx, &len);
  return impulse_respond(ctx, in, len);
}
