/*
 * What a function sees of a call: the operations behind impulse_ctx_t
 * (include/impulse/function.h) on an invocation_t. The request is
 * borrowed from the decoded envelope; what the function answers is
 * checked against the frame limit as it is given, so that a response that
 * cannot be sent is refused at once with a reason, not at the reply.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "worker/crash.h"
#include "worker/ctx.h"

#define MAX_RESPONSE_HEADERS 256u
#define HEADER_OVERHEAD 16u /* encoding overhead charged per header */
#define LOG_FRAME_HDR 4u    /* impulse_log frame header (op_log) */
#define LOG_FRAME_MAX 4096u /* a whole frame: PIPE_BUF, one atomic write */

/* imp_arena_alloc(), and a failure noted as the runtime's own. */
static void *arena_alloc(imp_arena_t *arena, size_t len) {
  void *p = imp_arena_alloc(arena, len);
  if (p == NULL && len <= IMP_ARENA_MAX) imp_wk_note_alloc_failure();
  return p;
}

static invocation_t *ctx_invocation(impulse_ctx_t *ctx) {
  return ctx->runtime;
}

/* Largest payload plus header bytes a response may carry. */
static size_t response_budget(const invocation_t *invocation) {
  return invocation->worker->max_frame - RESPONSE_SLACK;
}

static const void *op_payload(impulse_ctx_t *ctx, size_t *len) {
  invocation_t *invocation = ctx_invocation(ctx);
  if (len != NULL) *len = invocation->payload_len;
  return invocation->payload;
}

static Impulse__Header **request_headers(invocation_t *invocation, size_t *n) {
  *n = invocation->n_req_headers;
  return invocation->req_headers;
}

static size_t op_header_count(impulse_ctx_t *ctx) {
  size_t n;
  request_headers(ctx_invocation(ctx), &n);
  return n;
}

static const void *header_value(const Impulse__Header *header, size_t *len) {
  if (len != NULL) *len = header->value.len;
  /* Decoded pieces are NUL-terminated (imp_wire_decode()), so values are
   * too. */
  return header->value.data != NULL ? (const void *)header->value.data : "";
}

static int op_header_at(impulse_ctx_t *ctx, size_t i, const char **name,
                        const void **value, size_t *len) {
  size_t n;
  Impulse__Header **headers = request_headers(ctx_invocation(ctx), &n);
  if (i >= n) return -1;
  if (name != NULL) *name = headers[i]->name;
  const void *v = header_value(headers[i], len);
  if (value != NULL) *value = v;
  return 0;
}

static const void *op_header(impulse_ctx_t *ctx, const char *name,
                             size_t *len) {
  size_t n;
  Impulse__Header **headers = request_headers(ctx_invocation(ctx), &n);
  if (name == NULL) return NULL;
  for (size_t i = 0; i < n; i++)
    if (strcmp(headers[i]->name, name) == 0)
      return header_value(headers[i], len);
  return NULL;
}

/* Remembers why a response was refused, for a handler that then fails
 * without a message of its own. */
static void note_refused(invocation_t *invocation, size_t len, size_t budget) {
  snprintf(invocation->refused, sizeof invocation->refused,
           "response of %zu bytes refused: at most %zu bytes fit in a frame",
           len, budget);
}

/* Replaces the response with a new malloc'd buffer of `len` bytes (plus a
 * NUL). Returns the buffer, or NULL when too large or out of memory. */
static char *response_replace(invocation_t *invocation, size_t len) {
  size_t budget = response_budget(invocation);
  if (len > budget || invocation->header_bytes > budget - len) {
    note_refused(invocation, len, budget);
    return NULL;
  }
  char *buf = malloc(len + 1);
  if (buf == NULL) {
    imp_wk_note_alloc_failure();
    return NULL;
  }
  buf[len] = '\0';
  free(invocation->response);
  invocation->response = buf;
  invocation->response_len = len;
  return buf;
}

static int op_respond(impulse_ctx_t *ctx, const void *data, size_t len) {
  invocation_t *invocation = ctx_invocation(ctx);
  if (data == NULL && len > 0) return IMPULSE_ERROR;
  /* Copy before replacing: `data` may point into the current response. */
  size_t budget = response_budget(invocation);
  if (len > budget || invocation->header_bytes > budget - len) {
    note_refused(invocation, len, budget);
    return IMPULSE_ERROR;
  }
  char *copy = malloc(len + 1);
  if (copy == NULL) {
    imp_wk_note_alloc_failure();
    return IMPULSE_ERROR;
  }
  if (len > 0) memcpy(copy, data, len);
  copy[len] = '\0';
  free(invocation->response);
  invocation->response = copy;
  invocation->response_len = len;
  return IMPULSE_OK;
}

static void *op_response_buffer(impulse_ctx_t *ctx, size_t len) {
  return response_replace(ctx_invocation(ctx), len);
}

static int op_set_header(impulse_ctx_t *ctx, const char *name,
                         const void *value, size_t len) {
  invocation_t *invocation = ctx_invocation(ctx);
  if (name == NULL || name[0] == '\0' || (value == NULL && len > 0))
    return IMPULSE_ERROR;
  size_t name_len = strlen(name);
  size_t budget = response_budget(invocation);
  size_t used = invocation->response_len + invocation->header_bytes;
  if (invocation->n_headers >= MAX_RESPONSE_HEADERS || name_len > budget ||
      len > budget || name_len + len + HEADER_OVERHEAD > budget - used)
    return IMPULSE_ERROR;
  if (invocation->n_headers == invocation->cap_headers) {
    size_t cap = invocation->cap_headers ? invocation->cap_headers * 2 : 8;
    Impulse__Header **headers =
        arena_alloc(&invocation->arena, cap * sizeof *headers);
    if (headers == NULL) return IMPULSE_ERROR;
    if (invocation->n_headers > 0)
      memcpy(headers, invocation->headers,
             invocation->n_headers * sizeof *headers);
    invocation->headers = headers;
    invocation->cap_headers = cap;
  }
  Impulse__Header *header = arena_alloc(&invocation->arena, sizeof *header);
  char *name_copy = arena_alloc(&invocation->arena, name_len + 1);
  uint8_t *value_copy = len > 0 ? arena_alloc(&invocation->arena, len) : NULL;
  if (header == NULL || name_copy == NULL || (len > 0 && value_copy == NULL))
    return IMPULSE_ERROR;
  impulse__header__init(header);
  memcpy(name_copy, name, name_len + 1);
  if (len > 0) memcpy(value_copy, value, len);
  header->name = name_copy;
  header->has_value = 1;
  header->value.len = len;
  header->value.data = value_copy;
  invocation->headers[invocation->n_headers++] = header;
  invocation->header_bytes += name_len + len + HEADER_OVERHEAD;
  return IMPULSE_OK;
}

static int op_set_error(impulse_ctx_t *ctx, int status, const char *message) {
  invocation_t *invocation = ctx_invocation(ctx);
  invocation->has_error = true;
  invocation->error_status = status;
  snprintf(invocation->error, sizeof invocation->error, "%s",
           message != NULL ? message : "");
  return status;
}

static void *op_alloc(impulse_ctx_t *ctx, size_t len) {
  return arena_alloc(&ctx_invocation(ctx)->arena, len);
}

/* With --log-fd, one frame per message (server/fleet/output.h: 'L' or
 * 'C' when cut, the level, the length as a big-endian u16, the bytes) in
 * one write() of at most PIPE_BUF bytes, so that frames of threads logging
 * at once never interleave. A full pipe blocks the caller until the server
 * reads it; a server that is gone (EPIPE, SIGPIPE is ignored) loses it. */
static void op_log(impulse_ctx_t *ctx, int level, const char *message) {
  /* IMPULSE_LOG_* and IMP_LOG_* share their numbering. */
  if (level < IMP_LOG_ERROR) level = IMP_LOG_ERROR;
  if (level > IMP_LOG_DEBUG) level = IMP_LOG_DEBUG;
  if (message == NULL) message = "";
  int fd = ctx_invocation(ctx)->worker->log_fd;
  if (fd < 0) {
    IMP_LOG(level, "%s: %s", ctx->function != NULL ? ctx->function : "-",
            message);
    return;
  }
  char frame[LOG_FRAME_MAX];
  size_t len = strlen(message), max = sizeof frame - LOG_FRAME_HDR;
  int cut = len > max;
  if (cut) len = max;
  frame[0] = cut ? 'C' : 'L';
  frame[1] = (char)level;
  frame[2] = (char)(len >> 8);
  frame[3] = (char)(len & 0xff);
  memcpy(frame + LOG_FRAME_HDR, message, len);
  ssize_t w;
  do w = write(fd, frame, LOG_FRAME_HDR + len);
  while (w < 0 && errno == EINTR);
}

static int64_t op_remaining_ms(impulse_ctx_t *ctx) {
  invocation_t *invocation = ctx_invocation(ctx);
  if (invocation->deadline_ns == 0) return INT64_MAX;
  int64_t left = (int64_t)(invocation->deadline_ns - imp_now_ns());
  return left / 1000000;
}

/* The environment was set at Load, before any handler thread ran, and
 * stays as it is while handlers run: getenv() is safe here. */
static const char *op_getenv(impulse_ctx_t *ctx, const char *key) {
  (void)ctx;
  return key != NULL && *key != '\0' ? getenv(key) : NULL;
}

const impulse_ops_t imp_wk_ops = {
    .payload = op_payload,
    .header_count = op_header_count,
    .header_at = op_header_at,
    .header = op_header,
    .respond = op_respond,
    .response_buffer = op_response_buffer,
    .set_header = op_set_header,
    .set_error = op_set_error,
    .alloc = op_alloc,
    .log = op_log,
    .remaining_ms = op_remaining_ms,
    .getenv = op_getenv,
};
