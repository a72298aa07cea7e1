/*
 * probe (impulse-bench-events): stamps the time each event is handled.
 *
 * The payload is text, padded with NUL bytes to the event size:
 *
 *     SEQ SEND_NS PATH
 *
 * SEQ is the event's index, SEND_NS its send time (CLOCK_REALTIME ns, not
 * used here: the bench keeps its own copy) and PATH an absolute path to a
 * file of 8-byte slots that the bench created with ftruncate(). On its
 * first call in a worker process the probe maps that file MAP_SHARED (size
 * from fstat) and keeps the mapping for the life of the process; every
 * call then stores clock_gettime(CLOCK_REALTIME) in ns into slot SEQ,
 * unless the slot already holds a stamp (a record delivered again keeps
 * the time it was first handled). It responds with an empty payload.
 *
 * The payload comes from a Kafka record, so it is checked like any input
 * from outside: a malformed one, a SEQ beyond the file, or a PATH other
 * than the one mapped fails the call with IMPULSE_BAD_INPUT.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <impulse/function.h>

IMPULSE_FUNCTION();

/* Largest payload looked at; the bench sends 100 bytes. */
#define PROBE_MAX_PAYLOAD 4096u

/* The mapping, shared by the handler threads of this worker process. A
 * function object is its own program with no context to pass between
 * calls, so this is process state by necessity: `slots` is published with
 * release order once the rest is set and never changes afterwards (until
 * impulse_fini); `lock` serialises the first mapping. */
typedef struct probe_map_s {
  pthread_mutex_t lock;
  _Atomic(uint64_t *) slots;
  size_t nslots;
  size_t len; /* bytes mapped */
  char path[PATH_MAX];
} probe_map_t;

static probe_map_t probe_map = {.lock = PTHREAD_MUTEX_INITIALIZER};

/* Parses a decimal number of at most 20 digits from p[0..end); advances
 * *p past it. 0, or -1 when there is no number or it overflows. */
static int parse_u64(const char **p, const char *end, uint64_t *out) {
  const char *s = *p;
  uint64_t v = 0;
  size_t digits = 0;
  while (s < end && *s >= '0' && *s <= '9') {
    unsigned d = (unsigned)(*s - '0');
    if (v > (UINT64_MAX - d) / 10) return -1;
    v = v * 10 + d;
    s++;
    digits++;
  }
  if (digits == 0) return -1;
  *p = s;
  *out = v;
  return 0;
}

/* Maps `path` if nothing is mapped yet. 0, or an IMPULSE_* status with the
 * error set on ctx. */
static int map_once(impulse_ctx_t *ctx, const char *path) {
  int rc = IMPULSE_OK;
  pthread_mutex_lock(&probe_map.lock);
  if (atomic_load_explicit(&probe_map.slots, memory_order_relaxed) != NULL)
    goto out;
  int fd = open(path, O_RDWR | O_CLOEXEC);
  if (fd < 0) {
    rc = impulse_error(ctx, IMPULSE_ERROR, "probe: open %s: %s", path,
                       strerror(errno));
    goto out;
  }
  struct stat st;
  if (fstat(fd, &st) != 0 || st.st_size < (off_t)sizeof(uint64_t)) {
    close(fd);
    rc = impulse_error(ctx, IMPULSE_ERROR, "probe: %s: not a stamp file", path);
    goto out;
  }
  size_t len = (size_t)st.st_size;
  void *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  /* The mapping keeps the file; the descriptor is not needed. */
  close(fd);
  if (m == MAP_FAILED) {
    rc = impulse_error(ctx, IMPULSE_ERROR, "probe: mmap %s: %s", path,
                       strerror(errno));
    goto out;
  }
  probe_map.len = len;
  probe_map.nslots = len / sizeof(uint64_t);
  snprintf(probe_map.path, sizeof probe_map.path, "%s", path);
  atomic_store_explicit(&probe_map.slots, (uint64_t *)m, memory_order_release);
out:
  pthread_mutex_unlock(&probe_map.lock);
  return rc;
}

IMPULSE_EXPORT void impulse_fini(void) {
  /* No handler runs any more when the object is unloaded. */
  uint64_t *slots = atomic_exchange(&probe_map.slots, NULL);
  if (slots != NULL) munmap(slots, probe_map.len);
}

IMPULSE_EXPORT int impulse_handle(impulse_ctx_t *ctx) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  uint64_t now = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;

  size_t len;
  const char *payload = impulse_payload(ctx, &len);
  if (payload == NULL || len == 0 || len > PROBE_MAX_PAYLOAD)
    return impulse_error(ctx, IMPULSE_BAD_INPUT, "probe: payload of %zu bytes",
                         len);
  /* The text ends at the first NUL (padding) or at the end. */
  const char *end = memchr(payload, '\0', len);
  if (end == NULL) end = payload + len;
  const char *p = payload;
  uint64_t seq, send_ns;
  if (parse_u64(&p, end, &seq) != 0 || p == end || *p++ != ' ' ||
      parse_u64(&p, end, &send_ns) != 0 || p == end || *p++ != ' ')
    return impulse_error(ctx, IMPULSE_BAD_INPUT,
                         "probe: expected 'SEQ SEND_NS PATH'");
  size_t plen = (size_t)(end - p);
  if (plen == 0 || plen >= PATH_MAX || p[0] != '/')
    return impulse_error(ctx, IMPULSE_BAD_INPUT,
                         "probe: expected an absolute PATH");
  char path[PATH_MAX];
  memcpy(path, p, plen);
  path[plen] = '\0';

  uint64_t *slots =
      atomic_load_explicit(&probe_map.slots, memory_order_acquire);
  if (slots == NULL) {
    int rc = map_once(ctx, path);
    if (rc != IMPULSE_OK) return rc;
    slots = atomic_load_explicit(&probe_map.slots, memory_order_acquire);
  }
  /* path and nslots were written before slots was published. */
  if (strcmp(path, probe_map.path) != 0)
    return impulse_error(ctx, IMPULSE_BAD_INPUT,
                         "probe: this process stamps %s, not %s",
                         probe_map.path, path);
  if (seq >= probe_map.nslots)
    return impulse_error(ctx, IMPULSE_BAD_INPUT,
                         "probe: sequence %llu beyond the %zu slots of %s",
                         (unsigned long long)seq, probe_map.nslots, path);
  /* First handling wins; the slot is 8-byte aligned (page-aligned map). */
  uint64_t expected = 0;
  __atomic_compare_exchange_n(&slots[seq], &expected, now, 0, __ATOMIC_RELAXED,
                              __ATOMIC_RELAXED);
  return impulse_respond(ctx, "", 0);
}
