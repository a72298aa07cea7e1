/*
 * hello: responds "Hello, <payload>!", or "Hello, world!" for an empty
 * payload. Logs one line from impulse_init() when an instance starts.
 */
#include <string.h>

#include <impulse/function.h>

IMPULSE_FUNCTION();

IMPULSE_EXPORT int impulse_init(impulse_ctx_t *ctx) {
  impulse_log(ctx, IMPULSE_LOG_INFO, "hello version %u ready",
              (unsigned)ctx->version);
  return IMPULSE_OK;
}

IMPULSE_EXPORT int impulse_handle(impulse_ctx_t *ctx) {
  static const char prefix[] = "Hello, ";
  size_t len;
  const char *name = impulse_payload(ctx, &len);
  if (len == 0) {
    name = "world";
    len = strlen(name);
  }
  size_t total = sizeof prefix - 1 + len + 1;
  if (total < len)
    return impulse_error(ctx, IMPULSE_BAD_INPUT, "payload too large");
  char *out = impulse_response_buffer(ctx, total);
  if (out == NULL)
    return impulse_error(ctx, IMPULSE_ERROR, "response of %zu bytes too large",
                         total);
  memcpy(out, prefix, sizeof prefix - 1);
  memcpy(out + sizeof prefix - 1, name, len);
  out[total - 1] = '!';
  return IMPULSE_OK;
}
