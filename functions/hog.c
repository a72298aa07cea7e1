/*
 * hog (test only): allocates memory without bound, 1 MiB at a time, touching
 * every page, until malloc() fails; then frees it all (so the instance stays
 * usable) and fails with "out of memory after N MiB". Only run it under a
 * memory limit: without one it takes all the memory of the machine.
 */
#include <stdlib.h>
#include <string.h>

#include <impulse/function.h>

IMPULSE_FUNCTION();

#define CHUNK (1u << 20)

IMPULSE_EXPORT int impulse_handle(impulse_ctx_t *ctx) {
  void *chunks = NULL; /* list linked through the first bytes of each chunk */
  size_t mib = 0;
  for (;;) {
    void **chunk = malloc(CHUNK);
    if (chunk == NULL) break;
    memset(chunk, 0xa5, CHUNK);
    *chunk = chunks;
    chunks = chunk;
    mib++;
  }
  while (chunks != NULL) {
    void *next = *(void **)chunks;
    free(chunks);
    chunks = next;
  }
  return impulse_error(ctx, IMPULSE_ERROR, "out of memory after %zu MiB", mib);
}
