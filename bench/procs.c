/*
 * The benchmark's children and temp dir: the floor echo server, `impulse
 * serve` (with its workers, which share its process group), and the mkdtemp
 * state dir. bench_procs_cleanup() undoes all of it and is called on every
 * exit path; the signal handler only sets a flag and stops the server so
 * that any blocking call returns promptly and the main flow cleans up.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "support.h"

volatile sig_atomic_t bench_interrupted;

/* Process-wide because the signal handler must reach them; written only by
 * the main flow before the children exist and read by the handler. */
static volatile pid_t floor_pid = -1;
static volatile pid_t impulse_pid = -1;
static char tmpdir[256];
/* --http for `impulse serve` (see bench_impulse_set_http). */
static const char *impulse_http = "off";

const char *bench_tmpdir(void) {
  return tmpdir;
}

uint64_t bench_now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int bench_sleep_ms(unsigned ms) {
  uint64_t end = bench_now_ns() + (uint64_t)ms * 1000000ull;
  for (;;) {
    if (bench_interrupted) return -1;
    uint64_t now = bench_now_ns();
    if (now >= end) return 0;
    uint64_t left = end - now;
    if (left > 20000000ull) left = 20000000ull; /* re-check the flag often */
    struct timespec ts = {0, (long)left};
    nanosleep(&ts, NULL);
  }
}

static void on_signal(int sig) {
  (void)sig;
  bench_interrupted = 1;
  /* kill() is async-signal-safe. Stopping the server makes a client call
   * that is blocked on it fail now instead of at its timeout. */
  if (impulse_pid > 0) kill(impulse_pid, SIGTERM);
}

int bench_procs_init(void) {
  const char *base = getenv("TMPDIR");
  if (base == NULL || base[0] == '\0') base = "/tmp";
  /* Worker sockets live under STATE/run: keep the path short. */
  snprintf(tmpdir, sizeof tmpdir, "%s/impulse-bench.XXXXXX", base);
  if (strlen(tmpdir) > 60 || mkdtemp(tmpdir) == NULL) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/impulse-bench.XXXXXX");
    if (mkdtemp(tmpdir) == NULL) {
      fprintf(stderr, "impulse-bench: mkdtemp: %s\n", strerror(errno));
      tmpdir[0] = '\0';
      return -1;
    }
  }
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGHUP, &sa, NULL);
  signal(SIGPIPE, SIG_IGN);
  return 0;
}

void bench_procs_cleanup(void) {
  pid_t pid = impulse_pid;
  if (pid > 0) {
    /* Graceful first: the server stops its workers itself. */
    sup_stop(pid, 6000);
    /* Anything left in its process group (a worker it lost track of). */
    kill(-pid, SIGKILL);
    impulse_pid = -1;
  }
  pid = floor_pid;
  if (pid > 0) {
    kill(pid, SIGKILL);
    sup_wait(pid, 2000, NULL);
    floor_pid = -1;
  }
  if (tmpdir[0]) {
    sup_rm_tree(tmpdir);
    tmpdir[0] = '\0';
  }
}

int bench_floor_start(int *port) {
  return bench_child_start(bench_floor_main, port);
}

int bench_child_start(void (*child_main)(int report_fd), int *port) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) {
    fprintf(stderr, "impulse-bench: pipe: %s\n", strerror(errno));
    return -1;
  }
  fflush(NULL);
  pid_t pid = fork();
  if (pid < 0) {
    fprintf(stderr, "impulse-bench: fork: %s\n", strerror(errno));
    close(fds[0]);
    close(fds[1]);
    return -1;
  }
  if (pid == 0) {
    close(fds[0]);
    child_main(fds[1]);
  }
  floor_pid = pid;
  close(fds[1]);
  struct pollfd pfd = {.fd = fds[0], .events = POLLIN};
  int got = -1;
  if (poll(&pfd, 1, 5000) == 1 &&
      read(fds[0], &got, sizeof got) == (ssize_t)sizeof got && got > 0) {
    close(fds[0]);
    *port = got;
    return 0;
  }
  close(fds[0]);
  fprintf(stderr, "impulse-bench: the floor server did not start\n");
  return -1;
}

int bench_impulse_alive(void) {
  pid_t pid = impulse_pid;
  if (pid <= 0) return 0;
  pid_t r = waitpid(pid, NULL, WNOHANG);
  if (r == pid) {
    impulse_pid = -1;
    kill(-pid, SIGKILL); /* its workers */
    return 0;
  }
  return 1;
}

void bench_impulse_set_http(const char *addr) {
  impulse_http = addr;
}

int bench_impulse_start(const char *impulse_bin, unsigned warm_pool,
                        unsigned ready_timeout_ms, int *port, char *token,
                        size_t token_len) {
  char state[512], ready[512], listen[64], pool[32], tokpath[600];
  snprintf(state, sizeof state, "%s/state", tmpdir);
  snprintf(ready, sizeof ready, "%s/ready", tmpdir);
  snprintf(pool, sizeof pool, "%u", warm_pool);
  int p = sup_free_port();
  if (p < 0) {
    fprintf(stderr, "impulse-bench: no free port\n");
    return -1;
  }
  snprintf(listen, sizeof listen, "127.0.0.1:%d", p);
  if (access(impulse_bin, X_OK) != 0) {
    fprintf(stderr, "impulse-bench: %s: %s\n", impulse_bin, strerror(errno));
    return -1;
  }
  const char *argv[] = {impulse_bin,    "serve",      "--state-dir", state,
                        "--listen",     listen,       "--warm-pool", pool,
                        "--ready-file", ready,        "--log-level", "warn",
                        "--http",       impulse_http, NULL};
  sup_spawn_t how = SUP_SPAWN_INIT;
  how.path = impulse_bin;
  how.argv = argv;
  how.out = 2; /* stdout belongs to the report; the server logs to stderr */
  how.own_group = 1; /* so that the cleanup can reach the workers too */
  how.death_signal = SIGTERM;
  how.default_signals = 1;
  how.exec_error = "impulse-bench";
  pid_t pid = sup_spawn(&how);
  if (pid < 0) {
    fprintf(stderr, "impulse-bench: fork: %s\n", strerror(-pid));
    return -1;
  }
  impulse_pid = pid;

  char *line = NULL;
  int rc = sup_wait_line_file(ready, pid, ready_timeout_ms, &bench_interrupted,
                              &line, NULL);
  free(line);
  if (rc == -ECHILD) {
    impulse_pid = -1;
    kill(-pid, SIGKILL); /* its workers */
    fprintf(stderr,
            "impulse-bench: impulse serve exited before it was ready\n");
    return -1;
  }
  if (rc == -ETIMEDOUT)
    fprintf(stderr, "impulse-bench: impulse serve not ready after %u ms\n",
            ready_timeout_ms);
  if (rc != 0) return -1;

  snprintf(tokpath, sizeof tokpath, "%s/admin.token", state);
  FILE *f = fopen(tokpath, "r");
  if (f == NULL || fgets(token, (int)token_len, f) == NULL) {
    fprintf(stderr, "impulse-bench: cannot read %s\n", tokpath);
    if (f) fclose(f);
    return -1;
  }
  fclose(f);
  token[strcspn(token, "\r\n")] = '\0';
  *port = p;
  return 0;
}
