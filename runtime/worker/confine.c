/*
 * The worker's seccomp filter (confine.h).
 *
 * Default allow, and a list of refusals: a function is ordinary user code
 * (files, threads, sockets, its own signals), so an allow-list would break
 * real libraries for little gain, while these calls are how code in one
 * process reaches others or the kernel's administration:
 *
 *   other processes      ptrace, process_vm_readv/writev, pidfd_getfd,
 *                        pidfd_send_signal, kill/tgkill/rt_sigqueueinfo/
 *                        rt_tgsigqueueinfo to any pid but the worker's own
 *                        (kill(0) and kill(-1) would reach the server's
 *                        process group), tkill
 *   namespaces           unshare, setns, clone with a CLONE_NEW* flag
 *                        (clone3 answers ENOSYS so that libc falls back to
 *                        clone, whose flags the filter can read)
 *   the kernel           mount, umount2, pivot_root, bpf, perf_event_open,
 *                        kexec_load, kexec_file_load, init_module,
 *                        finit_module, delete_module, keyctl, add_key,
 *                        request_key, userfaultfd, io_uring_* (its
 *                        operations bypass seccomp), open_by_handle_at,
 *                        name_to_handle_at, fanotify_init, swapon, swapoff,
 *                        reboot, syslog, acct, quotactl, settimeofday,
 *                        clock_settime, clock_adjtime, adjtimex
 *
 * Refused calls fail with EPERM (clone3: ENOSYS); the process goes on.
 * Calls of another architecture (x32, i386 through int 0x80) kill it.
 */
#include "worker/confine.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <seccomp.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

static int confined;

int imp_wk_confined(void) {
  return confined;
}

#if defined(__SANITIZE_ADDRESS__) || defined(IMPULSE_ASAN)
/* LeakSanitizer stops the world with ptrace at exit, which a confined
 * worker may not use: no leak check in a confined worker (the server and
 * unconfined processes keep theirs). */
int __lsan_is_turned_off(void);
int __lsan_is_turned_off(void) {
  return confined;
}
#endif

static const int refused[] = {
    SCMP_SYS(ptrace),
    SCMP_SYS(process_vm_readv),
    SCMP_SYS(process_vm_writev),
    SCMP_SYS(pidfd_getfd),
    SCMP_SYS(pidfd_send_signal),
    SCMP_SYS(tkill),
    SCMP_SYS(setns),
    SCMP_SYS(mount),
    SCMP_SYS(umount2),
    SCMP_SYS(pivot_root),
    SCMP_SYS(bpf),
    SCMP_SYS(perf_event_open),
    SCMP_SYS(kexec_load),
    SCMP_SYS(kexec_file_load),
    SCMP_SYS(init_module),
    SCMP_SYS(finit_module),
    SCMP_SYS(delete_module),
    SCMP_SYS(keyctl),
    SCMP_SYS(add_key),
    SCMP_SYS(request_key),
    SCMP_SYS(userfaultfd),
    SCMP_SYS(io_uring_setup),
    SCMP_SYS(io_uring_enter),
    SCMP_SYS(io_uring_register),
    SCMP_SYS(open_by_handle_at),
    SCMP_SYS(name_to_handle_at),
    SCMP_SYS(fanotify_init),
    SCMP_SYS(swapon),
    SCMP_SYS(swapoff),
    SCMP_SYS(reboot),
    SCMP_SYS(syslog),
    SCMP_SYS(acct),
    SCMP_SYS(quotactl),
    SCMP_SYS(settimeofday),
    SCMP_SYS(clock_settime),
    SCMP_SYS(clock_adjtime),
    SCMP_SYS(adjtimex),
};

/* Signals may go to this process only (its pid, as the first argument). */
static const int signalling[] = {
    SCMP_SYS(kill),
    SCMP_SYS(tgkill),
    SCMP_SYS(rt_sigqueueinfo),
    SCMP_SYS(rt_tgsigqueueinfo),
};

static int final_compile(char *err, size_t errlen);

static const unsigned long namespaces[] = {
    CLONE_NEWNS,  CLONE_NEWUTS, CLONE_NEWIPC,    CLONE_NEWUSER,
    CLONE_NEWPID, CLONE_NEWNET, CLONE_NEWCGROUP,
};

int imp_wk_confine(int netns_later, char *err, size_t errlen) {
  if (confined) return 0;
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
    snprintf(err, errlen, "PR_SET_NO_NEW_PRIVS: %s", strerror(errno));
    return -1;
  }
  scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
  if (ctx == NULL) {
    snprintf(err, errlen, "seccomp_init failed");
    return -1;
  }
  const char *what = "rule";
  /* Every thread of the process, should one exist already. */
  int rc = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_TSYNC, 1);
  for (size_t i = 0; rc == 0 && i < sizeof refused / sizeof refused[0]; i++)
    rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), refused[i], 0);
  uint32_t self = (uint32_t)getpid();
  for (size_t i = 0; rc == 0 && i < sizeof signalling / sizeof signalling[0];
       i++)
    rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), signalling[i], 1,
                          SCMP_A0_32(SCMP_CMP_NE, self));
  for (size_t i = 0; rc == 0 && i < sizeof namespaces / sizeof namespaces[0];
       i++)
    rc = seccomp_rule_add(
        ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(clone), 1,
        SCMP_A0_64(SCMP_CMP_MASKED_EQ, namespaces[i], namespaces[i]));
  if (rc == 0)
    rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0);
  /* unshare: refused, but for an empty network namespace the first Load
   * may still make (imp_wk_sandbox_seal), which then refuses it too. */
  if (rc == 0 && netns_later)
    rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(unshare), 1,
                          SCMP_A0_64(SCMP_CMP_NE, CLONE_NEWNET));
  else if (rc == 0)
    rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(unshare), 0);
  if (rc == 0) {
    what = "load";
    rc = seccomp_load(ctx);
  }
  seccomp_release(ctx);
  if (rc != 0) {
    snprintf(err, errlen, "seccomp %s: %s", what, strerror(-rc));
    return -1;
  }
  if (final_compile(err, errlen) != 0) return -1;
  confined = 1;
  return 0;
}

/* The final stage, compiled by libseccomp while the worker starts and
 * loaded as it is at the first Load (compiling it there cost a cold start
 * a quarter of a millisecond). */
static struct sock_filter final_insns[64];
static unsigned short final_len;

static int final_compile(char *err, size_t errlen) {
  scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
  if (ctx == NULL) {
    snprintf(err, errlen, "seccomp_init failed");
    return -1;
  }
  int rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(unshare), 0);
  int pipefd[2] = {-1, -1};
  if (rc == 0 && pipe2(pipefd, O_CLOEXEC) != 0) rc = -errno;
  if (rc == 0) rc = seccomp_export_bpf(ctx, pipefd[1]);
  seccomp_release(ctx);
  ssize_t n = -1;
  if (rc == 0) {
    close(pipefd[1]);
    pipefd[1] = -1;
    n = read(pipefd[0], final_insns, sizeof final_insns);
  }
  for (int i = 0; i < 2; i++)
    if (pipefd[i] >= 0) close(pipefd[i]);
  if (rc != 0 || n <= 0 || n % (ssize_t)sizeof final_insns[0] != 0 ||
      (size_t)n == sizeof final_insns) {
    snprintf(err, errlen, "seccomp (final stage): %s",
             rc != 0 ? strerror(-rc) : "unexpected program size");
    return -1;
  }
  final_len = (unsigned short)(n / (ssize_t)sizeof final_insns[0]);
  return 0;
}

int imp_wk_confine_final(char *err, size_t errlen) {
  if (!confined || final_len == 0) {
    snprintf(err, errlen, "not confined");
    return -1;
  }
  struct sock_fprog prog = {final_len, final_insns};
  if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_TSYNC,
              &prog) != 0) {
    snprintf(err, errlen, "seccomp (final stage): %s", strerror(errno));
    return -1;
  }
  return 0;
}
