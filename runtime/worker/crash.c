/*
 * Crash handling: the worker's fatal-signal handler and what it needs.
 *
 * A handler that dies of a signal (SIGSEGV, SIGBUS, SIGABRT, SIGFPE,
 * SIGILL) ends the worker: the handler writes the replies the I/O thread
 * had packed and the frame naming the running call (imp_wk_crash_arm()),
 * then exits with IMP_WORKER_EXIT_OOM when the process is at its memory
 * limit or an allocation failed before, or dies of the same signal, so
 * that the server sees the real one. SIGTERM and SIGINT end the worker
 * promptly, at once when a call is running (it may never return).
 */
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "worker/crash.h"

#define OOM_MARGIN (16u << 20) /* "near the limit" for the crash handler */

/*
 * State shared with signal handlers. A handler gets no context pointer, so
 * this is the one place where the worker keeps globals; everything else
 * hangs off imp_worker_t. Only lock-free atomics live here, which makes them
 * safe to touch from a handler.
 */
static struct {
  atomic_size_t mem_limit; /* RLIMIT_DATA in force, 0 = none */
  atomic_int alloc_failed; /* the runtime saw an allocation fail */
  atomic_int running;      /* init/handle/fini calls in progress */
  atomic_int term;         /* SIGTERM or SIGINT received */
  atomic_int wake_fd;      /* eventfd of the I/O thread, or -1 */
  /* While a handler runs on the I/O thread: the replies packed before it,
   * written by the crash handler (imp_wk_crash_arm()). */
  atomic_int flush_fd;
  _Atomic(const char *) flush_data;
  atomic_size_t flush_len;
  /* Then this frame: Error{CRASHED} under the running call's id, which
   * tells the server which call it was. Written by the thread that may
   * crash, read by its own signal handler. */
  uint8_t crash_mark[IMP_WIRE_CRASH_MARK_MAX];
  size_t crash_mark_len;
} sig_state = {0, 0, 0, 0, -1, -1, NULL, 0, {0}, 0};

/* ---- memory accounting, usable from a signal handler --------------------- */

/* Only open(), read() and close() are used and the parsing is by hand, so
 * the crash handler may call it. */
size_t imp_wk_vmdata_bytes(void) {
  static const char key[] = "VmData:";
  char buf[4096];
  size_t len = 0;
  int fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  while (len < sizeof buf - 1) {
    ssize_t n = read(fd, buf + len, sizeof buf - 1 - len);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    len += (size_t)n;
  }
  close(fd);
  for (size_t i = 0; i + sizeof key - 1 < len; i++) {
    if (i > 0 && buf[i - 1] != '\n') continue;
    size_t k = 0;
    while (k < sizeof key - 1 && buf[i + k] == key[k]) k++;
    if (k < sizeof key - 1) continue;
    size_t j = i + k, kib = 0;
    while (j < len && (buf[j] == ' ' || buf[j] == '\t')) j++;
    while (j < len && buf[j] >= '0' && buf[j] <= '9')
      kib = kib * 10 + (size_t)(buf[j++] - '0');
    return kib * 1024;
  }
  return 0;
}

void imp_wk_mem_limit_set(size_t limit) {
  atomic_store(&sig_state.mem_limit, limit);
}

void imp_wk_note_alloc_failure(void) {
  atomic_store(&sig_state.alloc_failed, 1);
}

void imp_wk_fatal_oom(const char *what) {
  IMP_LOG(IMP_LOG_ERROR, "worker: out of memory %s, exiting", what);
  _exit(IMP_WORKER_EXIT_OOM);
}

/* ---- signals ------------------------------------------------------------- */

static void write_stderr(const char *s) {
  size_t n = 0;
  while (s[n] != '\0') n++;
  ssize_t w = write(STDERR_FILENO, s, n);
  (void)w;
}

/* Writes `len` bytes from a signal handler; false unless all went. */
static bool write_all(int fd, const char *p, size_t len) {
  while (len > 0) {
    ssize_t n = write(fd, p, len);
    if (n <= 0) return false; /* a full socket: give up */
    p += n;
    len -= (size_t)n;
  }
  return true;
}

/* Writes the replies armed by imp_wk_crash_arm(), then the frame naming
 * the running call; from a signal handler. When the replies cannot all be
 * written the call is not named, and the server blames every call it has
 * no answer to. */
static void crash_flush(void) {
  int fd = atomic_load(&sig_state.flush_fd);
  if (fd < 0) return;
  const char *p = atomic_load(&sig_state.flush_data);
  size_t len = atomic_load(&sig_state.flush_len);
  if ((len == 0 || write_all(fd, p, len)) && sig_state.crash_mark_len > 0)
    write_all(fd, (const char *)sig_state.crash_mark, sig_state.crash_mark_len);
}

/* SIGSEGV, SIGBUS, SIGABRT, SIGFPE, SIGILL. Async-signal-safe only. */
static void on_fatal_signal(int sig, siginfo_t *info, void *uctx) {
  (void)info;
  (void)uctx;
  crash_flush();
  size_t limit = atomic_load(&sig_state.mem_limit);
  if (atomic_load(&sig_state.alloc_failed) ||
      (limit > 0 && imp_wk_vmdata_bytes() + OOM_MARGIN >= limit)) {
    write_stderr(
        "worker: fatal signal at the memory limit, "
        "exiting as out of memory\n");
    _exit(IMP_WORKER_EXIT_OOM);
  }
  /* Die of the same signal: it is pending (blocked while we run) and is
   * delivered with the default action as soon as the handler returns. */
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = SIG_DFL;
  sigemptyset(&sa.sa_mask);
  sigaction(sig, &sa, NULL);
  raise(sig);
}

/* SIGTERM, SIGINT: leave promptly. When a handler is running it may never
 * return, so exit right here; when idle, let the I/O thread call fini. */
static void on_term_signal(int sig) {
  (void)sig;
  int saved = errno;
  atomic_store(&sig_state.term, 1);
  if (atomic_load(&sig_state.running) > 0) _exit(IMP_WORKER_EXIT_OK);
  int fd = atomic_load(&sig_state.wake_fd);
  if (fd >= 0) {
    uint64_t one = 1;
    ssize_t w = write(fd, &one, sizeof one);
    (void)w;
  }
  errno = saved;
}

void *imp_wk_altstack_install(void) {
  stack_t ss;
  memset(&ss, 0, sizeof ss);
  ss.ss_sp = malloc(ALT_STACK);
  if (ss.ss_sp == NULL) return NULL;
  ss.ss_size = ALT_STACK;
  if (sigaltstack(&ss, NULL) != 0) {
    free(ss.ss_sp);
    return NULL;
  }
  return ss.ss_sp;
}

void imp_wk_altstack_free(void *stack) {
  if (stack == NULL) return;
  stack_t ss;
  memset(&ss, 0, sizeof ss);
  ss.ss_flags = SS_DISABLE;
  sigaltstack(&ss, NULL);
  free(stack);
}

void imp_wk_signals_install(void) {
  static const int fatal[] = {SIGSEGV, SIGBUS, SIGABRT, SIGFPE, SIGILL};
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sigemptyset(&sa.sa_mask);
  sa.sa_sigaction = on_fatal_signal;
  sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
  for (size_t i = 0; i < IMP_ARRAY_SIZE(fatal); i++)
    sigaction(fatal[i], &sa, NULL);

  memset(&sa, 0, sizeof sa);
  sigemptyset(&sa.sa_mask);
  sa.sa_handler = on_term_signal;
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);

  memset(&sa, 0, sizeof sa);
  sigemptyset(&sa.sa_mask);
  sa.sa_handler = SIG_IGN;
  sigaction(SIGPIPE, &sa, NULL);
}

void imp_wk_wake_fd_set(int fd) {
  atomic_store(&sig_state.wake_fd, fd);
}

/* ---- calls in progress --------------------------------------------------- */

/* The order (count, then look at the flag) pairs with on_term_signal()
 * (flag, then look at the count). */
bool imp_wk_call_begin(void) {
  atomic_fetch_add(&sig_state.running, 1);
  if (atomic_load(&sig_state.term)) {
    atomic_fetch_sub(&sig_state.running, 1);
    return false;
  }
  return true;
}

void imp_wk_call_end(void) {
  atomic_fetch_sub(&sig_state.running, 1);
}

void imp_wk_call_enter(void) {
  atomic_fetch_add(&sig_state.running, 1);
}

bool imp_wk_terminated(void) {
  return atomic_load(&sig_state.term) != 0;
}

bool imp_wk_calls_stop(void) {
  atomic_store(&sig_state.term, 1);
  return atomic_load(&sig_state.running) > 0;
}

/* ---- the crash flush ----------------------------------------------------- */

/*
 * Naming the call that crashed (imp_controller_instance_gone()). With
 * concurrency 1 the handler runs on the I/O thread (imp_wk_invoke()),
 * after the replies to the calls before it were packed but maybe not
 * written: if it dies of a signal,
 * the fatal-signal handler writes them, then a frame naming this call, so
 * that the server blames this call alone and knows the calls sent after
 * it never started. With handler threads that is not attempted (replies
 * are under a lock, several calls run at once), nor when the process ends
 * another way (exit(), SIGKILL): then the server blames every call it has
 * no answer to.
 */
void imp_wk_crash_arm(imp_worker_t *worker, uint64_t id) {
  sig_state.crash_mark_len = imp_wire_crash_mark(sig_state.crash_mark, id);
  atomic_store(&sig_state.flush_data, worker->out.data + worker->out_off);
  atomic_store(&sig_state.flush_len, worker->out.len - worker->out_off);
  atomic_store(&sig_state.flush_fd, worker->conn_fd);
}

void imp_wk_crash_disarm(void) {
  atomic_store(&sig_state.flush_fd, -1);
}
