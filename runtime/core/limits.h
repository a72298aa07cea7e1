/*
 * The limits of what Impulse accepts, in one place: the server checks
 * requests against them, the CLI checks its flags against the same numbers
 * before it sends anything, and help texts and docs/operations.md quote
 * them. A change here changes every side at once.
 */
#ifndef IMP_LIMITS_H
#define IMP_LIMITS_H

#include <stddef.h>

/* Names of functions and triggers: 1-64 of [A-Za-z0-9_.-], starting with a
 * letter or digit. */
#define IMP_NAME_MAX 64

/* Function settings (deploy, scale). */
#define IMP_CONCURRENCY_MAX 1024u    /* calls at once per instance */
#define IMP_TIMEOUT_MAX_MS 3600000u  /* handler timeout: one hour */
#define IMP_DEADLINE_MAX_MS 3600000u /* an invocation's --deadline */
#define IMP_INSTANCES_MAX 10000u     /* min and max instances */
#define IMP_MEMORY_MAX_MB (1u << 20) /* 1 TiB; 0 = no limit */
#define IMP_CPU_MAX_MILLIS 1024000u  /* 1,024 CPUs; 0 = no limit */
#define IMP_TARGET_CONCURRENCY_MIN 0.01
#define IMP_TARGET_CONCURRENCY_MAX 10000.0
#define IMP_SCALE_TO_ZERO_MAX_S 86400u
#define IMP_MAX_STEP_PCT_MAX 100u /* rolling upgrade step */

/* A function's environment (deploy --env): variables, and bytes of all
 * "KEY=VALUE" entries together. Keys are 1-128 of [A-Za-z0-9_], not
 * starting with a digit. */
#define IMP_ENV_MAX_VARS 256u
#define IMP_ENV_MAX_BYTES (64u << 10)
#define IMP_ENV_KEY_MAX 128

/* Secrets (impulse secret set, deploy --secret): names are like environment
 * keys; a value is at most IMP_SECRET_MAX_BYTES; a function names at most
 * IMP_SECRET_MAX_REFS secrets. */
#define IMP_SECRET_MAX_BYTES (64u << 10)
#define IMP_SECRET_MAX_REFS 64u

/* Frames: the default of `impulse serve --max-frame`, and its bounds. An
 * artifact, a payload or a published record travels in one frame, so this
 * is also the largest upload the server takes. */
#define IMP_DEFAULT_MAX_FRAME (16u << 20)
#define IMP_MAX_FRAME_MIN 4096u
#define IMP_MAX_FRAME_MAX (1u << 30)
/* A client connection's frames, either way, until its Hello succeeds: a
 * peer that has not said who it is cannot make the server hold a large
 * frame. */
#define IMP_PREHELLO_MAX_FRAME 4096u

/* Invocations. */
#define IMP_IDEM_MAX_KEY 256 /* idempotency key, bytes */

/* Kafka: topic names (Kafka's own rule), partitions of a topic created on
 * demand. */
#define IMP_TOPIC_MAX 249
#define IMP_PARTITIONS_MAX 10000u

/* Triggers. */
#define IMP_TRIGGER_MAX_IN_FLIGHT 10000u
#define IMP_TRIGGER_MAX_RETRIES 1000u
#define IMP_TRIGGER_BACKOFF_MAX_MS 3600000u
#define IMP_GROUP_MAX 255 /* consumer group id, printable */

/* 1 when `s` is a valid function or trigger name, else 0. */
int imp_name_valid(const char *s);

/* 0 when `topic` is a valid Kafka topic name, else -EINVAL with the reason
 * in err (which quotes at most 64 bytes of the name). */
int imp_topic_valid(const char *topic, char *err, size_t errlen);

/* 0 when the n entries of `env` ("KEY=VALUE" each) make a valid function
 * environment: valid keys, no key twice, values of any bytes but NUL, within
 * the limits above; else -EINVAL with the reason in err. */
int imp_env_valid(char *const *env, size_t n, char *err, size_t errlen);

/* 1 when `name` is a valid secret name (the syntax of an environment key:
 * 1-128 of [A-Za-z0-9_], not starting with a digit), else 0. */
int imp_secret_name_valid(const char *name);

/* A secret reference of a function ("NAME" or "NAME=VAR"): *namelen gets
 * the length of NAME, and the variable it is exposed as is returned
 * (borrowed from `ref`: VAR, or NAME itself, ending at NUL or '='). */
const char *imp_secret_ref_split(const char *ref, size_t *namelen);

/* 0 when the n references of `refs` are valid together with the function's
 * environment `env` (nenv "KEY=VALUE" entries): valid names and variables,
 * at most IMP_SECRET_MAX_REFS, no variable twice and none that is also a
 * key of `env`; else -EINVAL with the reason in err. */
int imp_secret_refs_valid(char *const *refs, size_t n, char *const *env,
                          size_t nenv, char *err, size_t errlen);

#endif
