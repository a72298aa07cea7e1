#include "core/common.h"

#include <ctype.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

int imp_log_level = IMP_LOG_INFO;

const char *imp_strerror(int err) {
  switch (err) {
    case 0: return "success";
    case IMP_EPROTO: return "malformed frame";
    case IMP_EFRAMETOOBIG: return "frame larger than the maximum frame size";
    case IMP_ESTORE: return "state store failure";
    case IMP_EARTIFACT: return "not a valid function artifact";
    default: return err < 0 ? strerror(-err) : "unknown error";
  }
}

int imp_buf_reserve(imp_buf_t *buf, size_t extra) {
  if (buf->cap - buf->len >= extra) return 0;
  size_t need = buf->len + extra;
  if (need < buf->len) return -ENOMEM;
  size_t cap = buf->cap ? buf->cap : 256;
  while (cap < need) cap *= 2;
  char *p = realloc(buf->data, cap);
  if (p == NULL) return -ENOMEM;
  buf->data = p;
  buf->cap = cap;
  return 0;
}

int imp_buf_append(imp_buf_t *buf, const void *data, size_t len) {
  int rc = imp_buf_reserve(buf, len);
  if (rc != 0) return rc;
  if (len) memcpy(buf->data + buf->len, data, len);
  buf->len += len;
  return 0;
}

void imp_buf_consume(imp_buf_t *buf, size_t n) {
  if (n >= buf->len) {
    buf->len = 0;
    return;
  }
  memmove(buf->data, buf->data + n, buf->len - n);
  buf->len -= n;
}

void imp_buf_read_space(imp_buf_t *buf, size_t chunk, char **base,
                        size_t *len) {
  if (imp_buf_reserve(buf, chunk) != 0) {
    *base = NULL;
    *len = 0;
    return;
  }
  *base = buf->data + buf->len;
  *len = buf->cap - buf->len;
}

void imp_buf_free(imp_buf_t *buf) {
  free(buf->data);
  buf->data = NULL;
  buf->len = buf->cap = 0;
}

uint64_t imp_now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

uint64_t imp_now_ms(void) {
  return imp_now_ns() / 1000000ull;
}

uint64_t imp_wall_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (uint64_t)ts.tv_sec * 1000ull + (uint64_t)ts.tv_nsec / 1000000ull;
}

int imp_log_parse(const char *name) {
  static const char *names[] = {"error", "warn", "info", "debug"};
  for (size_t i = 0; i < IMP_ARRAY_SIZE(names); i++)
    if (strcmp(name, names[i]) == 0) return (int)i;
  return -1;
}

int imp_log_flag(const char *cmd, const char *name) {
  int level = imp_log_parse(name);
  if (level < 0) {
    fprintf(stderr, "impulse %s: --log-level is error, warn, info or debug\n",
            cmd);
    return -1;
  }
  imp_log_level = level;
  return 0;
}

int imp_parse_ull(const char *s, unsigned long long min, unsigned long long max,
                  unsigned long long *out) {
  char *end;
  if (s[0] < '0' || s[0] > '9') return -EINVAL;
  errno = 0;
  unsigned long long v = strtoull(s, &end, 10);
  if (errno != 0 || *end != '\0' || v < min || v > max) return -EINVAL;
  *out = v;
  return 0;
}

int imp_uint_flag(const char *cmd, const char *flag, const char *s,
                  unsigned long min, unsigned long max, unsigned long *out) {
  unsigned long long v;
  if (imp_parse_ull(s, min, max, &v) != 0) {
    fprintf(stderr,
            "impulse %s: %s must be a whole number from %lu to %lu, not '%s'\n",
            cmd, flag, min, max, s);
    return -1;
  }
  *out = (unsigned long)v;
  return 0;
}

int imp_write_file_atomic(const char *path, const void *data, size_t len) {
  char tmp[4200];
  if (snprintf(tmp, sizeof tmp, "%s.tmp.%d", path, (int)getpid()) >=
      (int)sizeof tmp)
    return -ENAMETOOLONG;
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return -errno;
  ssize_t w = write(fd, data, len);
  int rc = (w == (ssize_t)len && fsync(fd) == 0) ? 0 : -EIO;
  close(fd);
  if (rc == 0 && rename(tmp, path) != 0) rc = -errno;
  if (rc != 0) unlink(tmp);
  return rc;
}

void imp_log(int level, const char *fmt, ...) {
  static const char *tags[] = {"error", "warn", "info", "debug"};
  char line[2048];
  struct timespec ts;
  struct tm tm;
  clock_gettime(CLOCK_REALTIME, &ts);
  gmtime_r(&ts.tv_sec, &tm);
  int n = snprintf(line, sizeof line,
                   "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %-5s [%d] ",
                   tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                   tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000L,
                   tags[level < 0   ? 0
                        : level > 3 ? 3
                                    : level],
                   (int)getpid());
  va_list ap;
  va_start(ap, fmt);
  if (n > 0 && (size_t)n < sizeof line)
    n += vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  if ((size_t)n >= sizeof line - 1) n = (int)sizeof line - 2;
  line[n++] = '\n';
  /* One write per line so lines from several processes do not interleave. */
  ssize_t w = write(STDERR_FILENO, line, (size_t)n);
  (void)w;
}

int imp_parse_hostport(const char *s, char *host, size_t hostlen, int *port) {
  const char *colon = strrchr(s, ':');
  if (colon == NULL || colon == s) return -EINVAL;
  size_t hl = (size_t)(colon - s);
  const char *h = s;
  if (h[0] == '[' && hl >= 2 && h[hl - 1] == ']') { /* [::1]:7070 */
    h++;
    hl -= 2;
  }
  if (hl == 0 || hl + 1 > hostlen) return -EINVAL;
  /* Digits only: strtol alone would take " 80", "+80" and "-0". */
  const char *d = colon + 1;
  size_t dl = strspn(d, "0123456789");
  if (dl == 0 || dl > 5 || d[dl] != '\0') return -EINVAL;
  long p = strtol(d, NULL, 10);
  if (p > 65535) return -EINVAL;
  memcpy(host, h, hl);
  host[hl] = '\0';
  *port = (int)p;
  return 0;
}

int imp_read_file(const char *path, size_t max, char **out, size_t *outlen) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -errno;
  int rc = 0;
  char *data = NULL;
  size_t len = 0, cap = 0;
  for (;;) {
    if (len == cap) {
      size_t ncap = cap ? cap * 2 : 65536;
      if (ncap > max + 1) ncap = max + 1;
      if (ncap <= len) {
        rc = -EFBIG;
        goto out;
      }
      char *p = realloc(data, ncap);
      if (p == NULL) {
        rc = -ENOMEM;
        goto out;
      }
      data = p;
      cap = ncap;
    }
    ssize_t n = read(fd, data + len, cap - len);
    if (n < 0) {
      if (errno == EINTR) continue;
      rc = -errno;
      goto out;
    }
    if (n == 0) break;
    len += (size_t)n;
    if (len > max) {
      rc = -EFBIG;
      goto out;
    }
  }
  *out = data;
  *outlen = len;
  data = NULL;
out:
  free(data);
  close(fd);
  return rc;
}

void imp_hex(const uint8_t *in, size_t len, char *out) {
  static const char digits[] = "0123456789abcdef";
  for (size_t i = 0; i < len; i++) {
    out[2 * i] = digits[in[i] >> 4];
    out[2 * i + 1] = digits[in[i] & 15];
  }
  out[2 * len] = '\0';
}

void imp_sha256_hex(const void *data, size_t len, char out[65]) {
  uint8_t md[32];
  unsigned int mdlen = 0;
  EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL);
  imp_hex(md, 32, out);
}

int imp_escape_bytes(imp_buf_t *out, const void *p, size_t n) {
  static const char hex[] = "0123456789abcdef";
  const unsigned char *s = p;
  /* At most four bytes out per byte in. */
  if (n > (SIZE_MAX - 1) / 4 || imp_buf_reserve(out, 4 * n + 1) != 0)
    return -ENOMEM;
  char *o = out->data + out->len;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = s[i];
    if (c == '\\') {
      *o++ = '\\';
      *o++ = '\\';
    } else if (c >= 0x20 && c < 0x7f) {
      *o++ = (char)c;
    } else if (c == '\n' || c == '\r' || c == '\t') {
      *o++ = '\\';
      *o++ = c == '\n' ? 'n' : c == '\r' ? 'r' : 't';
    } else {
      *o++ = '\\';
      *o++ = 'x';
      *o++ = hex[c >> 4];
      *o++ = hex[c & 15];
    }
  }
  out->len = (size_t)(o - out->data);
  out->data[out->len] = '\0';
  return 0;
}

int imp_parse_duration_ms(const char *s, uint64_t *ms) {
  static const struct {
    const char *unit;
    uint64_t ms;
  } units[] = {{"ms", 1},    {"s", 1000},    {"", 1000},
               {"m", 60000}, {"h", 3600000}, {"d", 86400000}};
  const uint64_t max = 366ull * 86400000ull;
  if (s == NULL || *s < '0' || *s > '9') return -EINVAL;
  uint64_t v = 0;
  while (*s >= '0' && *s <= '9') {
    v = v * 10 + (uint64_t)(*s++ - '0');
    if (v > max) return -EINVAL;
  }
  for (size_t i = 0; i < IMP_ARRAY_SIZE(units); i++)
    if (strcmp(s, units[i].unit) == 0) {
      if (v > max / units[i].ms) return -EINVAL;
      *ms = v * units[i].ms;
      return 0;
    }
  return -EINVAL;
}
