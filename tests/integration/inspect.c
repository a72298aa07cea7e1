/*
 * Test artifact: looks around from inside an instance, as hostile code
 * would, and answers with what it found. The payload is a command:
 *
 *   env           the instance's environment, "KEY=VALUE\n" each
 *   getenv KEY    impulse_getenv(KEY): its value, or "(unset)"
 *   read PATH     the first 4 KiB of a file, or "error: REASON"
 *   ls DIR        the names in a directory, one per line, or "error: ..."
 *   pids          how many processes this instance sees in /proc
 *   orphan NAME   starts a process named NAME that detaches and sleeps for
 *                 an hour (it must die with the instance); its pid
 *   memfd MB      writes MB MiB into a memfd (memory that RLIMIT_DATA does
 *                 not count); "ok" if the instance survived
 *   forks N       N children at once, each waiting; "K" of them started
 *   threads N     N threads at once; "K" of them started
 *   fds N         N descriptors at once; "K" of them opened
 *   connect IP PORT  a TCP connection; "ok" or "error: REASON"
 *   attack NAME [PID]  one attack on PID (default: the worker's parent) or
 *                 the kernel; "ok" when the call succeeded, else "error:
 * REASON": ptrace          PTRACE_ATTACH to the server vm-read process_vm_readv
 * of the server's memory kill            SIGKILL to the server unshare a new
 * user namespace clone-ns        a child in new user and PID namespaces
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <impulse/function.h>

IMPULSE_FUNCTION();

extern char **environ;

static int answer_env(impulse_ctx_t *ctx) {
  char out[8192];
  size_t n = 0;
  for (char **e = environ; e != NULL && *e != NULL; e++) {
    int w = snprintf(out + n, sizeof out - n, "%s\n", *e);
    if (w < 0 || (size_t)w >= sizeof out - n) break;
    n += (size_t)w;
  }
  return impulse_respond(ctx, out, n);
}

static int answer_read(impulse_ctx_t *ctx, const char *path) {
  char out[4096];
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    int n = snprintf(out, sizeof out, "error: %s", strerror(errno));
    return impulse_respond(ctx, out, (size_t)n);
  }
  ssize_t got = read(fd, out, sizeof out);
  int e = errno;
  close(fd);
  if (got < 0) {
    int n = snprintf(out, sizeof out, "error: %s", strerror(e));
    return impulse_respond(ctx, out, (size_t)n);
  }
  return impulse_respond(ctx, out, (size_t)got);
}

/* The outcome of an attack's system call: 0 or -1 with errno. */
static int answer_outcome(impulse_ctx_t *ctx, long rc) {
  char out[256];
  int n = rc == -1 ? snprintf(out, sizeof out, "error: %s", strerror(errno))
                   : snprintf(out, sizeof out, "ok");
  return impulse_respond(ctx, out, (size_t)n);
}

static int answer_count(impulse_ctx_t *ctx, long k) {
  char out[64];
  int n = snprintf(out, sizeof out, "%ld", k);
  return impulse_respond(ctx, out, (size_t)n);
}

static int answer_ls(impulse_ctx_t *ctx, const char *dir) {
  char out[8192];
  size_t n = 0;
  DIR *d = opendir(dir);
  if (d == NULL) return answer_outcome(ctx, -1);
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
    int w = snprintf(out + n, sizeof out - n, "%s\n", e->d_name);
    if (w < 0 || (size_t)w >= sizeof out - n) break;
    n += (size_t)w;
  }
  closedir(d);
  return impulse_respond(ctx, out, n);
}

static int answer_pids(impulse_ctx_t *ctx) {
  DIR *d = opendir("/proc");
  if (d == NULL) return answer_outcome(ctx, -1);
  long k = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL)
    if (e->d_name[0] >= '1' && e->d_name[0] <= '9') k++;
  closedir(d);
  return answer_count(ctx, k);
}

static int orphan(impulse_ctx_t *ctx, const char *name) {
  pid_t pid = fork();
  if (pid == 0) {
    /* Detached twice over, as a daemon would be. */
    setsid();
    if (fork() != 0) _exit(0);
    prctl(PR_SET_NAME, name, 0, 0, 0);
    for (int i = 0; i < 3600; i++) sleep(1);
    _exit(0);
  }
  if (pid > 0) waitpid(pid, NULL, 0);
  return answer_outcome(ctx, pid < 0 ? -1 : 0);
}

static int memfd_fill(impulse_ctx_t *ctx, long mb) {
  int fd = memfd_create("hog", MFD_CLOEXEC);
  if (fd < 0) return answer_outcome(ctx, -1);
  static char chunk[1 << 20];
  memset(chunk, 0x5a, sizeof chunk);
  for (long i = 0; i < mb; i++)
    if (write(fd, chunk, sizeof chunk) != (ssize_t)sizeof chunk) {
      close(fd);
      return answer_outcome(ctx, -1);
    }
  close(fd);
  return answer_outcome(ctx, 0);
}

static int gate[2] = {-1, -1};

static void *waiter(void *arg) {
  char c;
  (void)arg;
  while (read(gate[0], &c, 1) < 0 && errno == EINTR) {
  }
  return NULL;
}

/* Starts up to n children or threads that wait on a pipe, counts them,
 * then lets them all go. */
static int many(impulse_ctx_t *ctx, const char *what, long n) {
  if (pipe(gate) != 0) return answer_outcome(ctx, -1);
  long k = 0;
  pthread_t *threads = calloc((size_t)n + 1, sizeof *threads);
  for (; k < n; k++) {
    if (strcmp(what, "forks") == 0) {
      pid_t pid = fork();
      if (pid < 0) break;
      if (pid == 0) {
        close(gate[1]);
        waiter(NULL);
        _exit(0);
      }
    } else if (threads == NULL ||
               pthread_create(&threads[k], NULL, waiter, NULL) != 0) {
      break;
    }
  }
  close(gate[1]);
  if (strcmp(what, "forks") == 0)
    while (wait(NULL) > 0) {
    }
  else
    for (long i = 0; i < k; i++) pthread_join(threads[i], NULL);
  close(gate[0]);
  free(threads);
  return answer_count(ctx, k);
}

static int fds(impulse_ctx_t *ctx, long n) {
  int *open_fds = calloc((size_t)n + 1, sizeof *open_fds);
  long k = 0;
  for (; open_fds != NULL && k < n; k++)
    if ((open_fds[k] = open("/dev/null", O_RDONLY | O_CLOEXEC)) < 0) break;
  for (long i = 0; i < k; i++) close(open_fds[i]);
  free(open_fds);
  return answer_count(ctx, k);
}

static int tcp_connect(impulse_ctx_t *ctx, const char *arg) {
  char ip[64];
  int port;
  if (sscanf(arg, "%63s %d", ip, &port) != 2)
    return impulse_error(ctx, IMPULSE_ERROR, "connect IP PORT");
  struct sockaddr_in sa = {.sin_family = AF_INET,
                           .sin_port = htons((uint16_t)port)};
  inet_pton(AF_INET, ip, &sa.sin_addr);
  int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (s < 0) return answer_outcome(ctx, -1);
  int rc = connect(s, (struct sockaddr *)&sa, sizeof sa);
  int e = errno;
  close(s);
  errno = e;
  return answer_outcome(ctx, rc);
}

static int attack(impulse_ctx_t *ctx, const char *arg) {
  char name[32];
  int target = 0;
  pid_t server = getppid();
  if (sscanf(arg, "%31s %d", name, &target) == 2) server = target;
  if (strcmp(name, "ptrace") == 0) {
    long rc = ptrace(PTRACE_ATTACH, server, NULL, NULL);
    if (rc == 0) ptrace(PTRACE_DETACH, server, NULL, NULL);
    return answer_outcome(ctx, rc);
  }
  if (strcmp(name, "vm-read") == 0) {
    char buf[16];
    struct iovec local = {buf, sizeof buf};
    struct iovec remote = {(void *)0x400000, sizeof buf};
    ssize_t n = process_vm_readv(server, &local, 1, &remote, 1, 0);
    /* EFAULT: the call was allowed, only the address was wrong. */
    return answer_outcome(ctx, n < 0 && errno == EFAULT ? 0 : (long)n);
  }
  if (strcmp(name, "kill") == 0)
    return answer_outcome(ctx, kill(server, SIGKILL));
  if (strcmp(name, "unshare") == 0)
    return answer_outcome(ctx, unshare(CLONE_NEWUSER));
  if (strcmp(name, "clone-ns") == 0) {
    long pid = syscall(SYS_clone, CLONE_NEWUSER | CLONE_NEWPID | SIGCHLD, NULL,
                       NULL, NULL, NULL);
    if (pid == 0) _exit(0);
    if (pid > 0) waitpid((pid_t)pid, NULL, 0);
    return answer_outcome(ctx, pid < 0 ? -1 : 0);
  }
  return impulse_error(ctx, IMPULSE_ERROR, "unknown attack");
}

IMPULSE_EXPORT int impulse_handle(impulse_ctx_t *ctx) {
  size_t len;
  const char *in = impulse_payload(ctx, &len);
  char cmd[1024];
  if (len >= sizeof cmd)
    return impulse_error(ctx, IMPULSE_ERROR, "command too long");
  memcpy(cmd, in, len);
  cmd[len] = '\0';
  if (strcmp(cmd, "env") == 0) return answer_env(ctx);
  if (strncmp(cmd, "getenv ", 7) == 0) {
    const char *v = impulse_getenv(ctx, cmd + 7);
    if (v == NULL) v = "(unset)";
    return impulse_respond(ctx, v, strlen(v));
  }
  if (strncmp(cmd, "read ", 5) == 0) return answer_read(ctx, cmd + 5);
  if (strncmp(cmd, "attack ", 7) == 0) return attack(ctx, cmd + 7);
  if (strncmp(cmd, "ls ", 3) == 0) return answer_ls(ctx, cmd + 3);
  if (strcmp(cmd, "pids") == 0) return answer_pids(ctx);
  if (strncmp(cmd, "orphan ", 7) == 0) return orphan(ctx, cmd + 7);
  if (strncmp(cmd, "memfd ", 6) == 0) return memfd_fill(ctx, atol(cmd + 6));
  if (strncmp(cmd, "forks ", 6) == 0) return many(ctx, "forks", atol(cmd + 6));
  if (strncmp(cmd, "threads ", 8) == 0)
    return many(ctx, "threads", atol(cmd + 8));
  if (strncmp(cmd, "fds ", 4) == 0) return fds(ctx, atol(cmd + 4));
  if (strncmp(cmd, "connect ", 8) == 0) return tcp_connect(ctx, cmd + 8);
  return impulse_error(ctx, IMPULSE_ERROR, "unknown command");
}
