/*
 * Impulse C client library.
 *
 * A client holds one TCP connection to an `impulse serve` gateway. Calls are
 * blocking; impulse_invoke_send()/impulse_invoke_recv() pipeline many
 * invocations on the one connection. A client is not thread-safe: use one
 * per thread.
 *
 * Errors: functions return IMPULSE_S_OK (0) or a negative impulse_status_t;
 * impulse_client_error() gives the server's or the library's message for the
 * last failure on that client.
 */
#ifndef IMPULSE_CLIENT_H
#define IMPULSE_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Status codes: the negated ErrorCode values of the wire protocol, plus
 * library-side failures. */
typedef enum impulse_status_e {
  IMPULSE_S_OK = 0,
  IMPULSE_S_BAD_REQUEST = -1,
  IMPULSE_S_UNAUTHENTICATED = -2,
  IMPULSE_S_NOT_FOUND = -3,
  IMPULSE_S_TOO_LARGE = -4,
  IMPULSE_S_OVERLOADED = -5,
  IMPULSE_S_TIMEOUT = -6,
  IMPULSE_S_CRASHED = -7,
  IMPULSE_S_FUNCTION_ERROR = -8,
  IMPULSE_S_INVALID_ARTIFACT = -9,
  IMPULSE_S_OUT_OF_MEMORY = -10,
  IMPULSE_S_UNAVAILABLE = -11,
  IMPULSE_S_INTERNAL = -12,
  IMPULSE_S_SHUTTING_DOWN = -13,
  IMPULSE_S_EXISTS = -14,
  IMPULSE_S_IN_PROGRESS = -15, /* same idempotency key running (retried) */
  IMPULSE_S_PERMISSION_DENIED = -16, /* the token lacks the scope needed */
  IMPULSE_S_CONNECTION = -100, /* could not connect, or the connection broke */
  IMPULSE_S_PROTOCOL = -101,   /* the server sent something undecodable */
  IMPULSE_S_NOMEM = -102,
  IMPULSE_S_INVALID = -103 /* bad argument to the library */
} impulse_status_t;

/* Short name of a status ("NOT_FOUND", "CONNECTION", ...). */
const char *impulse_status_name(int status);

typedef struct impulse_client_s impulse_client_t;

/* Connects to `addr` ("host:port"; NULL means $IMPULSE_ADDR, else
 * 127.0.0.1:7070) and authenticates with `token` (NULL means
 * $IMPULSE_TOKEN; empty or unset means anonymous). On success *out is a new
 * client freed with impulse_client_close(). On failure *out is still set
 * (unless NOMEM) so impulse_client_error() can tell why; close it too. */
int impulse_client_connect(const char *addr, const char *token,
                           impulse_client_t **out);

/* Closes the connection and frees the client. NULL is allowed. */
void impulse_client_close(impulse_client_t *client);

/* Message for the last failure on this client (borrowed, valid until the
 * next call on the client). */
const char *impulse_client_error(const impulse_client_t *client);

/* Sets the per-call receive timeout in milliseconds (0 = wait forever,
 * default 0). A call that times out returns IMPULSE_S_CONNECTION and the
 * connection is closed. */
void impulse_client_set_timeout(impulse_client_t *client, uint32_t ms);

/* A request or response header. */
typedef struct impulse_header_s {
  const char *name;
  const void *value;
  size_t len;
} impulse_header_t;

/* Result of an invocation. Free with impulse_response_free(). */
typedef struct impulse_response_s {
  uint64_t id;         /* request id, as returned by impulse_invoke_send */
  int status;          /* IMPULSE_S_OK or a negative impulse_status_t */
  int function_status; /* handler's own status for FUNCTION_ERROR */
  const char *error;   /* error message when status != OK, else NULL */
  const void *payload; /* response payload (NUL-terminated, not counted) */
  size_t len;
  uint32_t version; /* function version that answered */
  size_t header_count;
  const impulse_header_t *headers;
} impulse_response_t;

void impulse_response_free(impulse_response_t *response);

/* Optional settings of one invocation. Zero-initialise. */
typedef struct impulse_invoke_opts_s {
  const impulse_header_t *headers;
  size_t header_count;
  uint32_t deadline_ms;        /* 0 = the function's timeout */
  const char *idempotency_key; /* NULL = none */
} impulse_invoke_opts_t;

/* Invokes `function` and waits for its answer. Returns IMPULSE_S_OK with
 * *out set (also when the function itself failed: see (*out)->status), or a
 * negative status when no answer was received (*out untouched). */
int impulse_invoke(impulse_client_t *client, const char *function,
                   const void *payload, size_t len,
                   const impulse_invoke_opts_t *opts, impulse_response_t **out);

/* Pipelining: queues an invocation without waiting (flushed when the send
 * buffer fills or on the next impulse_invoke_recv()). *id identifies it. */
int impulse_invoke_send(impulse_client_t *client, const char *function,
                        const void *payload, size_t len,
                        const impulse_invoke_opts_t *opts, uint64_t *id);

/* Waits for the next answer to any sent invocation, in completion order. */
int impulse_invoke_recv(impulse_client_t *client, impulse_response_t **out);

/* Deployment settings. Zero means the server's default. */
typedef struct impulse_deploy_opts_s {
  uint32_t concurrency;
  uint32_t timeout_ms;
  uint32_t memory_mb;
  uint32_t min_instances;
  uint32_t max_instances;
  int has_min, has_max;      /* set to send min/max even when zero */
  double target_concurrency; /* autoscaler: calls per instance; 0 = default */
  uint32_t scale_to_zero_after_s; /* idle grace before zero */
  int has_scale_to_zero;          /* set to send scale_to_zero_after_s */
  const char *policy;    /* "reactive" | "predictive"; NULL = default */
  int no_promote;        /* store the version without traffic */
  uint32_t max_step_pct; /* rolling upgrade step; 0 = 25 % */
  const char *validate;  /* "status" | "exact"; NULL = status */
  /* The function's environment, nenv "KEY=VALUE" strings: replaces the
   * stored one when nenv > 0 or env_replace is set (env_replace with
   * nenv 0 clears it); otherwise a redeploy keeps it. */
  const char *const *env;
  size_t nenv;
  int env_replace;
  /* "none" (an empty network namespace) or "outbound"; NULL = keep (the
   * first deploy: outbound). */
  const char *network;
  uint32_t cpu_millis; /* CPU per instance in thousandths; 0 = keep */
  int has_cpu;         /* set to send cpu_millis even when zero (no limit) */
  /* Secrets the function's instances get as variables, nsecrets "NAME"
   * (variable NAME) or "NAME=VAR" strings; each must exist (see
   * impulse_secret_set). Replaces the stored list when nsecrets > 0 or
   * secrets_replace is set; otherwise a redeploy keeps it. */
  const char *const *secrets;
  size_t nsecrets;
  int secrets_replace;
} impulse_deploy_opts_t;

/* Uploads a function artifact (a shared object). On success *version gets
 * the new version number. Needs the admin token. */
int impulse_deploy(impulse_client_t *client, const char *name,
                   const void *artifact, size_t len,
                   const impulse_deploy_opts_t *opts, uint32_t *version);

/* Deletes a function, its versions and its instances. Needs the admin token. */
int impulse_delete(impulse_client_t *client, const char *name);

/* Sets min and/or max instances (pass -1 to leave one unchanged). */
int impulse_scale(impulse_client_t *client, const char *name, int min, int max);

/* Sets secret `name` to value[0..len) (at most 64 KiB, no NUL byte),
 * stored durably before this returns; *created (may be NULL) says whether
 * it is new. Needs the admin token. */
int impulse_secret_set(impulse_client_t *client, const char *name,
                       const void *value, size_t len, int *created);

/* Removes secret `name`; refused (IMPULSE_S_BAD_REQUEST, naming them)
 * while functions name it. Needs the admin token. */
int impulse_secret_rm(impulse_client_t *client, const char *name);

#ifdef __cplusplus
}
#endif
#endif
