/*
 * The instance sandbox (sandbox.c): namespaces, a private file system and
 * limits a worker puts itself in before it takes any function, and the
 * last step at its first Load. docs/security.md says what each mode
 * guarantees.
 *
 *   userns  user, PID, mount and IPC namespaces; inside, only the system's
 *           libraries (read-only), a few device files, a private proc and
 *           a size-capped /tmp. When the server runs as root, the user
 *           namespace maps to a dedicated unprivileged uid per instance.
 *   uid     the server runs as root but namespaces are unavailable: the
 *           worker runs as a dedicated unprivileged uid per instance.
 *   none    neither: the seccomp filter and the resource limits only.
 */
#ifndef IMP_WORKER_SANDBOX_H
#define IMP_WORKER_SANDBOX_H

#include <stddef.h>

#define IMP_WK_SANDBOX_MAX_HIDE 4

typedef struct imp_wk_sandbox_s {
  char mode[8];        /* "userns", "uid" or "none" */
  unsigned uid;        /* outer uid when started as root (0: keep) */
  unsigned tmp_mb;     /* size of the private /tmp (userns) */
  unsigned max_fds;    /* RLIMIT_NOFILE; 0 = leave as inherited */
  unsigned max_procs;  /* RLIMIT_NPROC; 0 = leave as inherited */
  int die_with_parent; /* the worker must not outlive the server */
  /* Directories that must not be visible inside even when they lie under
   * a directory the sandbox shows (the state and run directories). */
  const char *hide[IMP_WK_SANDBOX_MAX_HIDE];
  unsigned nhide;
} imp_wk_sandbox_t;

/*
 * Puts the process in the sandbox `sb` describes. In userns mode the
 * process forks: the caller's process stays outside as the instance's
 * reaper (it forwards the server's signals and exits as the sandboxed
 * process did) and this returns only in the sandboxed child, which is
 * pid 1 of its PID namespace, so that every process a function starts dies
 * with it. Must run before the process has a second thread and before
 * imp_wk_confine(). Returns 0, or -1 with the reason in err.
 */
int imp_wk_sandbox_enter(const imp_wk_sandbox_t *sb, char *err, size_t errlen);

/*
 * The last step, at the first Load, before any code of a function runs:
 * with `network_none`, an empty network namespace (loopback only); the
 * process limit lowered to what `concurrency` handler threads need; then
 * every capability is dropped and no namespace can be made any more.
 * Later calls check that `network_none` did not change (an instance keeps
 * its network). Returns 0, or -1 with the reason in err.
 */
int imp_wk_sandbox_seal(int network_none, unsigned concurrency, char *err,
                        size_t errlen);

#endif
