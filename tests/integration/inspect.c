/*
 * Test artifact: looks around from inside an instance, as hostile code
 * would, and answers with what it found. The payload is a command:
 *
 *   env           the instance's environment, "KEY=VALUE\n" each
 *   getenv KEY    impulse_getenv(KEY): its value, or "(unset)"
 *   read PATH     the first 4 KiB of a file, or "error: REASON"
 *   attack NAME   one attack on the server (the worker's parent) or the
 *                 kernel; "ok" when the call succeeded, else "error: REASON":
 *                   ptrace          PTRACE_ATTACH to the server
 *                   vm-read         process_vm_readv of the server's memory
 *                   kill            SIGKILL to the server
 *                   unshare         a new user namespace
 *                   clone-ns        a child in new user and PID namespaces
 */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ptrace.h>
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

static int attack(impulse_ctx_t *ctx, const char *name) {
  pid_t server = getppid();
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
  return impulse_error(ctx, IMPULSE_ERROR, "unknown command");
}
