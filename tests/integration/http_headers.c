/*
 * http_headers (test only): shows that invoke headers travel both ways.
 * Responds with the payload, a header "seen" holding the request header
 * "greeting" (or "-"), and "content-type: text/plain".
 */
#include <impulse/function.h>

IMPULSE_FUNCTION();

IMPULSE_EXPORT int impulse_handle(impulse_ctx_t *ctx) {
  size_t len, glen;
  const void *payload = impulse_payload(ctx, &len);
  const void *g = impulse_header(ctx, "greeting", &glen);
  if (g == NULL) {
    g = "-";
    glen = 1;
  }
  if (impulse_set_header(ctx, "seen", g, glen) != 0 ||
      impulse_set_header(ctx, "content-type", "text/plain", 10) != 0)
    return IMPULSE_ERROR;
  return impulse_respond(ctx, payload, len);
}
