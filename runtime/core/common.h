/*
 * Private helpers shared by every Impulse module: error codes, growable
 * byte buffers, clocks, logging. Nothing here is installed.
 */
#ifndef IMP_COMMON_H
#define IMP_COMMON_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Errors are 0 or negative: negative errno where one fits, else IMP_E*. */
#define IMP_EBASE (-4000)
#define IMP_EPROTO (IMP_EBASE - 1)       /* frame does not decode */
#define IMP_EFRAMETOOBIG (IMP_EBASE - 2) /* length prefix above the limit */
#define IMP_ESTORE (IMP_EBASE - 3)       /* RocksDB failure */
#define IMP_EARTIFACT (IMP_EBASE - 4)    /* upload is not a valid function */
#define IMP_ECANCELED (-ECANCELED)

/* Returns a static description of an IMP_E* or negative errno code. */
const char *imp_strerror(int err);

#define IMP_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define IMP_CONTAINER_OF(ptr, type, member) \
  ((type *)((char *)(ptr)-offsetof(type, member)))

/* Growable byte buffer. `data` is owned; free with imp_buf_free(). */
typedef struct imp_buf_s {
  char *data;
  size_t len;
  size_t cap;
} imp_buf_t;

/* Ensures room for `extra` more bytes; returns 0 or -ENOMEM. */
int imp_buf_reserve(imp_buf_t *buf, size_t extra);
/* Appends bytes; returns 0 or -ENOMEM. */
int imp_buf_append(imp_buf_t *buf, const void *data, size_t len);
/* Drops the first `n` bytes. */
void imp_buf_consume(imp_buf_t *buf, size_t n);
/* Room for a read at the end of buf: at least `chunk` free bytes reserved,
 * *base and *len set to all the free space (NULL and 0 when out of memory,
 * which a libuv read callback reports as UV_ENOBUFS). */
void imp_buf_read_space(imp_buf_t *buf, size_t chunk, char **base, size_t *len);
void imp_buf_free(imp_buf_t *buf);

/* Monotonic clock in nanoseconds / milliseconds; wall clock in ms. */
uint64_t imp_now_ns(void);
uint64_t imp_now_ms(void);
uint64_t imp_wall_ms(void);

/* Logging: levels, a process-wide threshold set once at start. */
enum { IMP_LOG_ERROR = 0, IMP_LOG_WARN, IMP_LOG_INFO, IMP_LOG_DEBUG };
extern int imp_log_level;
/* Parses "error|warn|info|debug"; returns the level or -1. */
int imp_log_parse(const char *name);
/* --log-level of command `cmd`: sets imp_log_level and returns 0, or says
 * what the flag takes on stderr and returns -1. */
int imp_log_flag(const char *cmd, const char *name);
void imp_log(int level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
#define IMP_LOG(level, ...)                                    \
  do {                                                         \
    if ((level) <= imp_log_level) imp_log(level, __VA_ARGS__); \
  } while (0)

/* Parses a whole decimal number in [min, max]: digits only (no sign, no
 * space), nothing after them. Returns 0 with *out set, or -EINVAL. */
int imp_parse_ull(const char *s, unsigned long long min, unsigned long long max,
                  unsigned long long *out);
/* A numeric flag of command `cmd` (e.g. --partitions of "kafka"): like
 * imp_parse_ull(), but when `s` is not a whole number in [min, max] it says
 * so on stderr and returns -1. */
int imp_uint_flag(const char *cmd, const char *flag, const char *s,
                  unsigned long min, unsigned long max, unsigned long *out);

/* Appends `p[0..n)` to `out` as printable ASCII: backslash as "\\\\",
 * newline, carriage return and tab as "\\n", "\\r", "\\t", every other
 * byte outside 0x20..0x7e (control characters, ANSI escapes, non-ASCII) as
 * "\\xHH". The result is one line that cannot move a terminal's cursor or
 * fake another line. Returns 0 or -ENOMEM. */
int imp_escape_bytes(imp_buf_t *out, const void *p, size_t n);

/* Parses a duration: a whole number followed by ms, s, m, h or d (no unit:
 * seconds), at most a year. Returns 0 with *ms set, or -EINVAL. */
int imp_parse_duration_ms(const char *s, uint64_t *ms);

/* Writes data[0..len) as the whole of `path`, atomically: a temporary file
 * beside it, fsync, rename (a reader sees the old file or all of the new).
 * Returns 0 or a negative errno. */
int imp_write_file_atomic(const char *path, const void *data, size_t len);

/* Parses "HOST:PORT" (an IPv6 host in brackets) into host (caller's
 * buffer of hostlen bytes, NUL-terminated, not empty) and port (1 to 5
 * digits, at most 65535, nothing else). 0 or -EINVAL. */
int imp_parse_hostport(const char *s, char *host, size_t hostlen, int *port);

/* Reads a whole file into a malloc'd buffer (caller frees) with a size cap.
 * Returns 0, -EFBIG when larger than `max`, or a negative errno. */
int imp_read_file(const char *path, size_t max, char **out, size_t *outlen);

/* Lower-case hex of `len` bytes into `out` (2*len+1 bytes). */
void imp_hex(const uint8_t *in, size_t len, char *out);

/* SHA-256 of a buffer as 64 hex chars plus NUL. */
void imp_sha256_hex(const void *data, size_t len, char out[65]);

#endif
