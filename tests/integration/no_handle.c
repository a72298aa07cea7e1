/*
 * Test artifact: a valid ELF shared object with the ABI version symbol but
 * no impulse_handle. Deploying it must fail with INVALID_ARTIFACT naming the
 * missing symbol.
 */
#include <impulse/function.h>

IMPULSE_FUNCTION();

/* Looks like a handler, but has the wrong name. */
IMPULSE_EXPORT int impulse_handler(impulse_ctx_t *ctx) {
  size_t len;
  const void *in = impulse_payload(ctx, &len);
  return impulse_respond(ctx, in, len);
}
