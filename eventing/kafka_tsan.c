/*
 * ThreadSanitizer builds only: librdkafka's threads and locks made known
 * to the sanitizer.
 *
 * librdkafka uses C11 threads (thrd_create, mtx_lock, cnd_wait, ...), which
 * glibc (2.34 and later) implements by calling its internal pthread
 * functions directly. Neither GCC 12's nor clang 14's ThreadSanitizer
 * intercepts the C11 names, so without this file:
 *   - it never learns of librdkafka's threads: the first malloc on one of
 *     them uses a thread state that was never set up and the process dies
 *     of SIGSEGV inside the sanitizer's allocator (test_kafka, every server
 *     with its embedded cluster);
 *   - it sees none of librdkafka's locking, so memory handed from one of
 *     its threads to another under a lock (allocated by one, freed by the
 *     other) is reported as a race.
 * These definitions, in the executable, interpose glibc's for librdkafka
 * (an unversioned definition satisfies its name@GLIBC_2.34 references) and
 * do what glibc does, through the pthread functions the sanitizer does
 * intercept: a mtx_t and a cnd_t are a pthread_mutex_t and a
 * pthread_cond_t, a thrd_t is a pthread_t, a once_flag holds a
 * pthread_once_t. Only the C11 functions librdkafka 2.0 imports are here.
 *
 * The lock words themselves are librdkafka's memory, in objects it
 * publishes to its other threads with atomics the sanitizer cannot see
 * (uninstrumented code): a mutex made on one of its threads and locked on
 * another would be reported as a race on the lock word. So the lock calls
 * run with the thread's memory accesses ignored
 * (__tsan_ignore_thread_begin), which keeps their synchronisation (the
 * happens-before of unlock and lock, signal and wait) and drops only the
 * accesses to librdkafka's lock words, as tests/tsan.supp does for the
 * rest of librdkafka's memory (called_from_lib).
 *
 * The build links this object in with -Wl,--undefined=thrd_create
 * (CMakeLists.txt): nothing of ours calls these.
 */
#if defined(IMPULSE_TSAN) || defined(__SANITIZE_THREAD__)

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <threads.h>

void __tsan_ignore_thread_begin(void);
void __tsan_ignore_thread_end(void);

static int lock_call_end(int rc) {
  __tsan_ignore_thread_end();
  return rc;
}

/* `call`, a pthread call on one of librdkafka's locks, with the thread's
 * accesses ignored; its value. */
#define LOCK_CALL(call) (__tsan_ignore_thread_begin(), lock_call_end(call))

/* glibc's thrd_err_map. */
static int thrd_status(int err) {
  switch (err) {
    case 0: return thrd_success;
    case ENOMEM: return thrd_nomem;
    case ETIMEDOUT: return thrd_timedout;
    case EBUSY: return thrd_busy;
    default: return thrd_error;
  }
}

typedef struct {
  thrd_start_t func;
  void *arg;
} start_t;

static void *start(void *p) {
  start_t s = *(start_t *)p;
  free(p);
  return (void *)(intptr_t)s.func(s.arg);
}

int thrd_create(thrd_t *thr, thrd_start_t func, void *arg) {
  start_t *s = malloc(sizeof *s);
  if (s == NULL) return thrd_nomem;
  s->func = func;
  s->arg = arg;
  int rc = pthread_create(thr, NULL, start, s);
  if (rc != 0) free(s);
  return thrd_status(rc);
}

int thrd_join(thrd_t thr, int *res) {
  void *out = NULL;
  int rc = pthread_join(thr, &out);
  if (rc == 0 && res != NULL) *res = (int)(intptr_t)out;
  return thrd_status(rc);
}

int mtx_init(mtx_t *mtx, int type) {
  if (type != mtx_plain && type != mtx_timed &&
      type != (mtx_plain | mtx_recursive) &&
      type != (mtx_timed | mtx_recursive))
    return thrd_error;
  pthread_mutexattr_t attr;
  pthread_mutexattr_init(&attr);
  if (type & mtx_recursive)
    pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_RECURSIVE);
  int rc = LOCK_CALL(pthread_mutex_init((pthread_mutex_t *)mtx, &attr));
  pthread_mutexattr_destroy(&attr);
  return thrd_status(rc);
}

int mtx_lock(mtx_t *mtx) {
  return thrd_status(LOCK_CALL(pthread_mutex_lock((pthread_mutex_t *)mtx)));
}

int mtx_unlock(mtx_t *mtx) {
  return thrd_status(LOCK_CALL(pthread_mutex_unlock((pthread_mutex_t *)mtx)));
}

void mtx_destroy(mtx_t *mtx) {
  (void)LOCK_CALL(pthread_mutex_destroy((pthread_mutex_t *)mtx));
}

int cnd_init(cnd_t *cnd) {
  return thrd_status(LOCK_CALL(pthread_cond_init((pthread_cond_t *)cnd, NULL)));
}

int cnd_signal(cnd_t *cnd) {
  return thrd_status(LOCK_CALL(pthread_cond_signal((pthread_cond_t *)cnd)));
}

int cnd_broadcast(cnd_t *cnd) {
  return thrd_status(LOCK_CALL(pthread_cond_broadcast((pthread_cond_t *)cnd)));
}

int cnd_wait(cnd_t *cnd, mtx_t *mtx) {
  return thrd_status(LOCK_CALL(
      pthread_cond_wait((pthread_cond_t *)cnd, (pthread_mutex_t *)mtx)));
}

int cnd_timedwait(cnd_t *restrict cnd, mtx_t *restrict mtx,
                  const struct timespec *restrict until) {
  return thrd_status(LOCK_CALL(pthread_cond_timedwait(
      (pthread_cond_t *)cnd, (pthread_mutex_t *)mtx, until)));
}

void cnd_destroy(cnd_t *cnd) {
  (void)LOCK_CALL(pthread_cond_destroy((pthread_cond_t *)cnd));
}

void call_once(once_flag *flag, void (*func)(void)) {
  _Static_assert(sizeof(once_flag) == sizeof(pthread_once_t),
                 "a once_flag holds a pthread_once_t");
  __tsan_ignore_thread_begin();
  pthread_once((pthread_once_t *)flag, func);
  __tsan_ignore_thread_end();
}

#endif
