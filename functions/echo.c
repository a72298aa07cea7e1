/*
 * echo: responds with the request payload unchanged.
 */
#include <impulse/function.h>

IMPULSE_FUNCTION();

IMPULSE_EXPORT int impulse_handle(impulse_ctx_t *ctx) {
  size_t len;
  const void *payload = impulse_payload(ctx, &len);
  return impulse_respond(ctx, payload, len);
}
