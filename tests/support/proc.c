/*
 * Children of a test or a benchmark; see support.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "support.h"

/* While a child runs, how often its state (and *stop) is looked at. */
#define POLL_SLICE_MS 100
#define WAIT_STEP_MS 10u
/* How long the rest of a process group may take to go after SIGKILL. */
#define GROUP_KILL_MS 5000u

static uint64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void sleep_ms(unsigned ms) {
  struct timespec ts = {ms / 1000u, (long)(ms % 1000u) * 1000000L};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

static void default_signal(int sig) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = SIG_DFL;
  sigaction(sig, &sa, NULL);
}

pid_t sup_spawn(const sup_spawn_t *how) {
  const char *path = how->path ? how->path : how->argv[0];
  char *const *argv = (char *const *)how->argv;
  fflush(NULL); /* nothing buffered is written twice */
  pid_t parent = getpid();
  pid_t pid = fork();
  if (pid < 0) return -errno;
  if (pid == 0) {
    if (how->own_group) setpgid(0, 0);
    if (how->death_signal) {
      prctl(PR_SET_PDEATHSIG, how->death_signal);
      if (getppid() != parent) _exit(127); /* we died before the prctl */
    }
    if (how->default_signals) {
      default_signal(SIGINT);
      default_signal(SIGTERM);
      default_signal(SIGHUP);
      default_signal(SIGPIPE);
    }
    if (how->in >= 0) dup2(how->in, 0);
    if (how->out >= 0) dup2(how->out, 1);
    if (how->err >= 0) dup2(how->err, 2);
    if (how->path && how->envp)
      execve(path, argv, how->envp);
    else if (how->path)
      execv(path, argv);
    else if (how->envp)
      execvpe(path, argv, how->envp);
    else
      execvp(path, argv);
    if (how->exec_error)
      dprintf(2, "%s: exec %s: %s\n", how->exec_error, path, strerror(errno));
    _exit(127);
  }
  if (how->own_group) setpgid(pid, pid); /* no window where kill(-pid) misses */
  return pid;
}

int sup_exit_code(int wstatus) {
  return WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : 128 + WTERMSIG(wstatus);
}

/* Room for `more` bytes after len in *buf (capacity *cap, plus one for the
 * NUL); 0, or -1 with *buf freed. */
static int grow(char **buf, size_t *cap, size_t len, size_t more) {
  if (len + more <= *cap) return 0;
  size_t c = *cap * 2;
  char *b = realloc(*buf, c + 1);
  if (b == NULL) {
    free(*buf);
    *buf = NULL;
    return -1;
  }
  *buf = b;
  *cap = c;
  return 0;
}

int sup_run(const char *const *argv, const char *in, char **out, unsigned ms,
            const volatile sig_atomic_t *stop) {
  if (out) *out = NULL;
  sup_spawn_t how = SUP_SPAWN_INIT;
  how.argv = argv;
  how.death_signal = SIGKILL;
  how.in = open(in ? in : "/dev/null", O_RDONLY | O_CLOEXEC);
  if (how.in < 0) return -errno;
  int rc = sup_run_as(&how, out, ms, stop);
  close(how.in);
  return rc;
}

int sup_run_as(const sup_spawn_t *how, char **out, unsigned ms,
               const volatile sig_atomic_t *stop) {
  int p[2], rc = 0, nomem = 0;
  if (out) *out = NULL;
  if (pipe2(p, O_CLOEXEC) != 0) return -errno;
  sup_spawn_t with_pipe = *how;
  with_pipe.out = p[1];
  pid_t pid = sup_spawn(&with_pipe);
  close(p[1]);
  if (pid < 0) {
    close(p[0]);
    return (int)pid;
  }
  size_t len = 0, cap = 65536;
  char *buf = NULL, scratch[4096];
  if (out) {
    buf = malloc(cap + 1);
    nomem = buf == NULL;
  }
  uint64_t until = now_ms() + ms;
  for (;;) {
    if (stop && *stop) {
      rc = -EINTR;
      break;
    }
    uint64_t now = now_ms();
    if (now >= until) {
      rc = -ETIMEDOUT;
      break;
    }
    uint64_t left = until - now;
    if (stop && left > POLL_SLICE_MS) left = POLL_SLICE_MS;
    struct pollfd pfd = {p[0], POLLIN, 0};
    int r = poll(&pfd, 1, (int)left);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) {
      rc = -errno;
      break;
    }
    if (r == 0) continue;
    /* Without a buffer (none wanted, or no memory) the output is read and
     * dropped, so the child never blocks on a full pipe. */
    if (buf && grow(&buf, &cap, len, 1) != 0) nomem = 1;
    ssize_t n = buf ? read(p[0], buf + len, cap - len)
                    : read(p[0], scratch, sizeof scratch);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    if (buf) len += (size_t)n;
  }
  close(p[0]);
  int st = 0;
  if (rc == 0) {
    /* Its stdout is closed: it is exiting. Give it the rest of the time. */
    uint64_t now = now_ms();
    int r = sup_wait(pid, until > now ? (unsigned)(until - now) : 0, &st);
    if (r == 0) rc = -ETIMEDOUT;
    if (r < 0) rc = r;
  }
  if (rc != 0) {
    kill(how->own_group ? -pid : pid, SIGKILL);
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
    }
  }
  /* Its helpers that outlived it (with a child subreaper, they come back
   * to us to be reaped). */
  if (how->own_group) sup_kill_group(pid, GROUP_KILL_MS);
  if (buf) buf[len] = '\0';
  if (out) *out = buf;
  if (rc != 0) return rc;
  return nomem ? -ENOMEM : sup_exit_code(st);
}

int sup_wait(pid_t pid, unsigned ms, int *wstatus) {
  uint64_t until = now_ms() + ms;
  for (;;) {
    int st;
    pid_t r = waitpid(pid, &st, WNOHANG);
    if (r == pid) {
      if (wstatus) *wstatus = st;
      return 1;
    }
    if (r < 0 && errno != EINTR) return -errno;
    if (now_ms() >= until) return 0;
    sleep_ms(WAIT_STEP_MS);
  }
}

int sup_stop(pid_t pid, unsigned ms) {
  int st;
  kill(pid, SIGTERM);
  int r = sup_wait(pid, ms, &st);
  if (r == 1) return sup_exit_code(st);
  if (r < 0) return r;
  kill(-pid, SIGKILL);
  kill(pid, SIGKILL);
  r = sup_wait(pid, ms, NULL);
  return r < 0 ? r : -ETIMEDOUT;
}

int sup_reap_group(pid_t pgid) {
  while (waitpid(-pgid, NULL, WNOHANG) > 0) {
  }
  return kill(-pgid, 0) == 0;
}

int sup_kill_group(pid_t pgid, unsigned ms) {
  uint64_t until = now_ms() + ms;
  for (;;) {
    if (kill(-pgid, SIGKILL) != 0 && errno == ESRCH) return 0;
    if (!sup_reap_group(pgid)) return 0;
    if (now_ms() > until) return -ETIMEDOUT;
    sleep_ms(WAIT_STEP_MS);
  }
}

int sup_wait_line_file(const char *path, pid_t pid, unsigned ms,
                       const volatile sig_atomic_t *stop, char **data,
                       int *wstatus) {
  uint64_t until = now_ms() + ms;
  *data = NULL;
  for (;;) {
    char *d = NULL;
    size_t len = 0;
    if (sup_read_file(path, &d, &len) == 0) {
      if (len > 1 && d[len - 1] == '\n') {
        *data = d;
        return 0;
      }
      free(d);
    }
    int st;
    if (waitpid(pid, &st, WNOHANG) == pid) {
      if (wstatus) *wstatus = st;
      return -ECHILD;
    }
    if (stop && *stop) return -EINTR;
    if (now_ms() >= until) return -ETIMEDOUT;
    sleep_ms(WAIT_STEP_MS);
  }
}
