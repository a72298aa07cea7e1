/*
 * Impulse function ABI.
 *
 * A function is a shared object that exports impulse_handle() and, through
 * IMPULSE_FUNCTION(), the ABI version it was built against. It may also
 * export impulse_init() and impulse_fini(). The worker dlopen()s the object
 * with RTLD_NOW | RTLD_LOCAL, checks impulse_abi_version against
 * IMPULSE_ABI_VERSION, calls impulse_init() once, then calls impulse_handle()
 * for each invocation, from as many threads at once as the function's
 * configured concurrency, and impulse_fini() before unloading.
 *
 * Every runtime service reaches the function through the context's operation
 * table, so a function needs no symbol from the runtime and can be built
 * with nothing but this header:
 *
 *     cc -shared -fPIC -fvisibility=hidden -o echo.so echo.c
 *
 * Minimal example:
 *
 *     #include <impulse/function.h>
 *     IMPULSE_FUNCTION();
 *     IMPULSE_EXPORT int impulse_handle(impulse_ctx_t *ctx) {
 *       size_t len;
 *       const void *in = impulse_payload(ctx, &len);
 *       return impulse_respond(ctx, in, len);
 *     }
 */
#ifndef IMPULSE_FUNCTION_H
#define IMPULSE_FUNCTION_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Version of this ABI. A loader refuses an object built for another one. */
#define IMPULSE_ABI_VERSION 1u

/* Marks a symbol as exported even when built with -fvisibility=hidden. */
#define IMPULSE_EXPORT __attribute__((visibility("default")))

/* Declares the ABI version symbol; put it once in every function object. */
#define IMPULSE_FUNCTION() \
  IMPULSE_EXPORT const uint32_t impulse_abi_version = IMPULSE_ABI_VERSION

/* Status codes a handler returns. Any other non-zero value is passed to the
 * caller as a function error with that status. */
#define IMPULSE_OK 0
#define IMPULSE_ERROR 1     /* generic failure of the function */
#define IMPULSE_BAD_INPUT 2 /* the payload was not acceptable */

/* Log levels for impulse_log(). */
#define IMPULSE_LOG_ERROR 0
#define IMPULSE_LOG_WARN 1
#define IMPULSE_LOG_INFO 2
#define IMPULSE_LOG_DEBUG 3

typedef struct impulse_ctx_s impulse_ctx_t;

/* Operation table filled in by the runtime. Use the inline helpers below
 * rather than calling through it directly. */
typedef struct impulse_ops_s {
  const void *(*payload)(impulse_ctx_t *ctx, size_t *len);
  size_t (*header_count)(impulse_ctx_t *ctx);
  int (*header_at)(impulse_ctx_t *ctx, size_t i, const char **name,
                   const void **value, size_t *len);
  const void *(*header)(impulse_ctx_t *ctx, const char *name, size_t *len);
  int (*respond)(impulse_ctx_t *ctx, const void *data, size_t len);
  void *(*response_buffer)(impulse_ctx_t *ctx, size_t len);
  int (*set_header)(impulse_ctx_t *ctx, const char *name, const void *value,
                    size_t len);
  int (*set_error)(impulse_ctx_t *ctx, int status, const char *message);
  void *(*alloc)(impulse_ctx_t *ctx, size_t len);
  void (*log)(impulse_ctx_t *ctx, int level, const char *message);
  int64_t (*remaining_ms)(impulse_ctx_t *ctx);
  /* Added after the first release, at the end so that objects built
   * before keep working: a runtime of that release lacks it. */
  const char *(*getenv)(impulse_ctx_t *ctx, const char *key);
} impulse_ops_t;

/* The invocation context. Valid only during the call it is passed to. */
struct impulse_ctx_s {
  uint32_t abi_version;     /* IMPULSE_ABI_VERSION of the runtime */
  const impulse_ops_t *ops; /* runtime services */
  const char *function;     /* function name (borrowed) */
  uint32_t version;         /* function version being run */
  void *runtime;            /* private to the runtime */
};

/* --- Symbols a function object exports ------------------------------- */

/* Required. Handles one invocation. Returns IMPULSE_OK, or a non-zero status
 * (set a message with impulse_error()). Called concurrently from up to the
 * function's concurrency threads; must be thread-safe. */
IMPULSE_EXPORT int impulse_handle(impulse_ctx_t *ctx);

/* Optional. Called once after loading, before any invocation. Returns 0, or
 * non-zero to refuse to load (the deploy or the instance start fails with the
 * message set through impulse_error()). Payload and headers are empty. */
IMPULSE_EXPORT int impulse_init(impulse_ctx_t *ctx);

/* Optional. Called once before the object is unloaded. */
IMPULSE_EXPORT void impulse_fini(void);

/* --- Helpers for handlers --------------------------------------------- */

/* Request payload (borrowed, valid for the call); *len gets its size. The
 * bytes are followed by a NUL that is not counted in *len. */
static inline const void *impulse_payload(impulse_ctx_t *ctx, size_t *len) {
  return ctx->ops->payload(ctx, len);
}

/* Number of request headers (event metadata for triggered calls). */
static inline size_t impulse_header_count(impulse_ctx_t *ctx) {
  return ctx->ops->header_count(ctx);
}

/* Header i (0 <= i < count): name and value are borrowed. Returns 0, or -1
 * when i is out of range. */
static inline int impulse_header_at(impulse_ctx_t *ctx, size_t i,
                                    const char **name, const void **value,
                                    size_t *len) {
  return ctx->ops->header_at(ctx, i, name, value, len);
}

/* Value of the first header called `name` (borrowed), or NULL; *len gets its
 * size when len is not NULL. */
static inline const void *impulse_header(impulse_ctx_t *ctx, const char *name,
                                         size_t *len) {
  return ctx->ops->header(ctx, name, len);
}

/* Sets the response payload to a copy of data[0..len). Returns IMPULSE_OK,
 * or IMPULSE_ERROR when the response would exceed the maximum frame size. */
static inline int impulse_respond(impulse_ctx_t *ctx, const void *data,
                                  size_t len) {
  return ctx->ops->respond(ctx, data, len);
}

/* Returns a runtime-owned buffer of `len` bytes that becomes the response
 * payload (no copy), or NULL when too large or out of memory. */
static inline void *impulse_response_buffer(impulse_ctx_t *ctx, size_t len) {
  return ctx->ops->response_buffer(ctx, len);
}

/* Adds a response header (copied). Returns IMPULSE_OK or IMPULSE_ERROR. */
static inline int impulse_set_header(impulse_ctx_t *ctx, const char *name,
                                     const void *value, size_t len) {
  return ctx->ops->set_header(ctx, name, value, len);
}

/* Allocates `len` bytes that live until the invocation ends; freed by the
 * runtime. Returns NULL when out of memory. */
static inline void *impulse_alloc(impulse_ctx_t *ctx, size_t len) {
  return ctx->ops->alloc(ctx, len);
}

/* Milliseconds left before the caller's deadline (may be negative). */
static inline int64_t impulse_remaining_ms(impulse_ctx_t *ctx) {
  return ctx->ops->remaining_ms(ctx);
}

/* Records an error message for the caller and returns `status`, so a handler
 * can write `return impulse_error(ctx, IMPULSE_BAD_INPUT, "bad %s", x);`. */
static inline int impulse_error(impulse_ctx_t *ctx, int status, const char *fmt,
                                ...) __attribute__((format(printf, 3, 4)));
static inline int impulse_error(impulse_ctx_t *ctx, int status, const char *fmt,
                                ...) {
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  return ctx->ops->set_error(ctx, status, msg);
}

/* Adds an entry with `level` (IMPULSE_LOG_*) to the function's log, which
 * `impulse logs` shows (docs/function-abi.md, "Output"); messages longer
 * than 4092 bytes are cut. */
static inline void impulse_log(impulse_ctx_t *ctx, int level, const char *fmt,
                               ...) __attribute__((format(printf, 3, 4)));
static inline void impulse_log(impulse_ctx_t *ctx, int level, const char *fmt,
                               ...) {
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  ctx->ops->log(ctx, level, msg);
}

/* The value of variable `key` of the function's environment (borrowed,
 * valid until the instance ends), or NULL when it has none. The
 * environment is the function's only: its `deploy --env` variables and
 * the secrets it names (`deploy --secret`), nothing of the server's; plain
 * getenv() reads the same. Needs a runtime of this release or later. */
static inline const char *impulse_getenv(impulse_ctx_t *ctx, const char *key) {
  return ctx->ops->getenv(ctx, key);
}

#ifdef __cplusplus
}
#endif
#endif
