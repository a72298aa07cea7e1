/*
 * crash (test only): dies on purpose so crash handling can be tested.
 * Payload "segv" or empty: writes through a NULL pointer (SIGSEGV).
 * Payload "abort": calls abort() (SIGABRT).
 * Anything else is refused with IMPULSE_BAD_INPUT.
 */
#include <stdlib.h>
#include <string.h>

#include <impulse/function.h>

IMPULSE_FUNCTION();

/* no_sanitize: in sanitizer builds UBSan would stop the NULL store itself,
 * and the point is a real SIGSEGV. */
__attribute__((no_sanitize("undefined"))) IMPULSE_EXPORT int impulse_handle(
    impulse_ctx_t *ctx) {
  size_t len;
  const char *mode = impulse_payload(ctx, &len);
  if (len == 0 || (len == 4 && memcmp(mode, "segv", 4) == 0)) {
    /* volatile: the store must really happen. */
    volatile int *volatile p = NULL;
    *p = 1;
    return IMPULSE_ERROR; /* not reached */
  }
  if (len == 5 && memcmp(mode, "abort", 5) == 0) abort();
  return impulse_error(ctx, IMPULSE_BAD_INPUT,
                       "unknown crash mode (expected \"segv\" or \"abort\")");
}
