/*
 * The instance sandbox (sandbox.h).
 *
 * userns mode, in order:
 *
 *   1. started as root: drop to the instance's dedicated uid (supplementary
 *      groups too), so that the user namespace maps to an unprivileged
 *      user of the machine, never to root;
 *   2. unshare user, mount, PID and IPC namespaces; map uid and gid 0 of
 *      the new user namespace to the outer ones (one id each, setgroups
 *      denied);
 *   3. fork: the parent stays outside as the reaper; the child is pid 1 of
 *      the new PID namespace (when it ends, the kernel kills every process
 *      left in it) and dies with the reaper (PR_SET_PDEATHSIG);
 *   4. the child builds its root on a tmpfs: /usr read-only (and the
 *      merged-/usr links /bin, /lib, /lib64, /sbin, or read-only binds when
 *      they are directories), a few files of /etc that name resolution, TLS
 *      and the dynamic loader read, /dev/{null,zero,full,random,urandom},
 *      a new proc, and a private /tmp of --tmp-mb; pivot_root into it,
 *      detach the old root and remount the new one read-only.
 *
 * At the first Load (imp_wk_sandbox_seal): an empty network namespace for
 * --network none, then every capability dropped and the second seccomp
 * stage (no unshare at all). Until then the worker runs no function code.
 */
#include "worker/sandbox.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <net/if.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "worker/confine.h"

#define NEWROOT "/tmp" /* where the new root is built (in our mount ns) */

static int userns;      /* in userns mode (seal has namespaces to deal with) */
static int sealed = -1; /* -1: not yet; else the network_none it had */
static unsigned max_procs; /* --max-procs, lowered to at the seal */

/* Room for the most handler threads a function may ask for, until the
 * seal knows how many it asked for (an rlimit can be lowered, not
 * raised, without privilege). */
#define PROCS_CEILING (1024u + 64u)

static int fail(char *err, size_t errlen, const char *what) {
  snprintf(err, errlen, "%s: %s", what, strerror(errno));
  return -1;
}

static int write_file(const char *path, const char *text) {
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  ssize_t n = write(fd, text, strlen(text));
  int e = errno;
  close(fd);
  errno = e;
  return n == (ssize_t)strlen(text) ? 0 : -1;
}

static int limits_apply(const imp_wk_sandbox_t *sb, char *err, size_t errlen) {
  if (sb->max_fds > 0) {
    struct rlimit rl = {sb->max_fds, sb->max_fds};
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
      return fail(err, errlen, "setrlimit(RLIMIT_NOFILE)");
  }
  if (sb->max_procs > 0) {
    max_procs = sb->max_procs;
    rlim_t n = sb->max_procs > PROCS_CEILING ? sb->max_procs : PROCS_CEILING;
    struct rlimit rl = {n, n};
    if (setrlimit(RLIMIT_NPROC, &rl) != 0)
      return fail(err, errlen, "setrlimit(RLIMIT_NPROC)");
  }
  struct rlimit none = {0, 0}; /* a crash dumps no core of a function */
  setrlimit(RLIMIT_CORE, &none);
  return 0;
}

static int uid_drop(unsigned uid, char *err, size_t errlen) {
  if (uid == 0 || geteuid() != 0) return 0;
  if (setgroups(0, NULL) != 0) return fail(err, errlen, "setgroups");
  if (setresgid(uid, uid, uid) != 0) return fail(err, errlen, "setresgid");
  if (setresuid(uid, uid, uid) != 0) return fail(err, errlen, "setresuid");
  return 0;
}

/* ---- the reaper and the init ------------------------------------------- */

static volatile pid_t child_pid;

static void forward(int sig) {
  if (child_pid > 0) kill(child_pid, sig);
}

static const int forwarded[] = {SIGTERM, SIGINT,  SIGHUP,
                                SIGQUIT, SIGUSR1, SIGUSR2};

/* Blocks (how = SIG_BLOCK) or unblocks the signals the reaper and the init
 * forward. Blocked across the forks: a namespace's init drops a signal it
 * has no handler for, and the server's SIGTERM must not be lost while the
 * init is still building the root. */
static void forwarded_mask(int how) {
  sigset_t set;
  sigemptyset(&set);
  for (size_t i = 0; i < sizeof forwarded / sizeof forwarded[0]; i++)
    sigaddset(&set, forwarded[i]);
  sigprocmask(how, &set, NULL);
}

static void forward_signals(pid_t child) {
  child_pid = child;
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = forward;
  sigemptyset(&sa.sa_mask);
  for (size_t i = 0; i < sizeof forwarded / sizeof forwarded[0]; i++)
    sigaction(forwarded[i], &sa, NULL);
  forwarded_mask(SIG_UNBLOCK);
}

/* Ends this process as `status` (a wait status) says its child ended. */
static _Noreturn void mirror(int status) {
  if (WIFEXITED(status)) _exit(WEXITSTATUS(status));
  int sig = WIFSIGNALED(status) ? WTERMSIG(status) : SIGKILL;
  signal(sig, SIG_DFL);
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, sig);
  sigprocmask(SIG_UNBLOCK, &set, NULL);
  kill(getpid(), sig);
  _exit(128 + sig);
}

/* The process outside the namespaces: forwards the server's signals to
 * the init and exits as the worker did (the init reports it on `note`;
 * without a report, as the init itself ended). */
static _Noreturn void reap(pid_t init, int note) {
  forward_signals(init);
  int status;
  while (waitpid(init, &status, 0) < 0)
    if (errno != EINTR) _exit(127);
  int reported;
  if (read(note, &reported, sizeof reported) == (ssize_t)sizeof reported)
    status = reported;
  mirror(status);
}

/* pid 1 of the namespace: the worker's parent. It reaps every process
 * left to it, forwards signals to the worker and, when the worker ends,
 * tells the reaper how and exits (the kernel then kills what is left).
 * The worker is not pid 1 itself because a namespace's init cannot die of
 * a signal it raises (abort(), a re-raised crash). */
static _Noreturn void init_run(pid_t worker, int note) {
  forward_signals(worker);
  for (;;) {
    int status;
    pid_t pid = waitpid(-1, &status, 0);
    if (pid == worker) {
      if (write(note, &status, sizeof status) < 0) _exit(127);
      _exit(0);
    }
    if (pid < 0 && errno != EINTR) _exit(127);
  }
}

/* ---- the file system ----------------------------------------------------- */

/* A read-only bind of `src` on `dst` (created as a directory or a file,
 * like src). Flags the outer mount locks (nosuid, nodev, noexec) are kept,
 * as a remount in a user namespace must. Missing sources are skipped. */
static int bind_ro(const char *src, const char *dst, char *err, size_t errlen) {
  struct stat st;
  if (stat(src, &st) != 0) return 0;
  if (S_ISDIR(st.st_mode)) {
    if (mkdir(dst, 0755) != 0 && errno != EEXIST) return fail(err, errlen, dst);
  } else {
    int fd = open(dst, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) return fail(err, errlen, dst);
    close(fd);
  }
  if (mount(src, dst, NULL, MS_BIND | MS_REC, NULL) != 0)
    return fail(err, errlen, src);
  struct statvfs sv;
  unsigned long flags = MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID;
  if (statvfs(src, &sv) == 0) {
    if (sv.f_flag & ST_NODEV) flags |= MS_NODEV;
    if (sv.f_flag & ST_NOEXEC) flags |= MS_NOEXEC;
    if (sv.f_flag & ST_NOATIME) flags |= MS_NOATIME;
    if (sv.f_flag & ST_NODIRATIME) flags |= MS_NODIRATIME;
    if (sv.f_flag & ST_RELATIME) flags |= MS_RELATIME;
  }
  if (mount(NULL, dst, NULL, flags, NULL) != 0) return fail(err, errlen, dst);
  return 0;
}

/* /bin, /lib, ...: a link into usr/ as on the host (merged /usr), or a
 * read-only bind when the host has a directory there. */
static int top_link(const char *name, char *err, size_t errlen) {
  char host[64], inside[64], target[256];
  snprintf(host, sizeof host, "/%s", name);
  snprintf(inside, sizeof inside, NEWROOT "/%s", name);
  ssize_t n = readlink(host, target, sizeof target - 1);
  if (n > 0) {
    target[n] = '\0';
    if (symlink(target, inside) != 0) return fail(err, errlen, inside);
    return 0;
  }
  return bind_ro(host, inside, err, errlen);
}

/* An empty read-only tmpfs over `dir` inside the new root, when `dir` is
 * under something the root shows. */
static int hide(const char *dir, char *err, size_t errlen) {
  char inside[4200];
  struct stat st;
  if (dir == NULL || dir[0] != '/') return 0;
  snprintf(inside, sizeof inside, NEWROOT "%s", dir);
  if (stat(inside, &st) != 0 || !S_ISDIR(st.st_mode)) return 0;
  if (mount("tmpfs", inside, "tmpfs",
            MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_RDONLY,
            "size=4k,mode=0555") != 0)
    return fail(err, errlen, "hiding a server directory");
  return 0;
}

static int root_build(const imp_wk_sandbox_t *sb, char *err, size_t errlen) {
  if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0)
    return fail(err, errlen, "making mounts private");
  if (mount("tmpfs", NEWROOT, "tmpfs", MS_NOSUID | MS_NODEV,
            "size=1m,nr_inodes=4096,mode=0755") != 0)
    return fail(err, errlen, "root tmpfs");
  static const char *const dirs[] = {NEWROOT "/dev", NEWROOT "/proc",
                                     NEWROOT "/tmp", NEWROOT "/etc"};
  for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++)
    if (mkdir(dirs[i], 0755) != 0) return fail(err, errlen, dirs[i]);
  if (bind_ro("/usr", NEWROOT "/usr", err, errlen) != 0) return -1;
  static const char *const tops[] = {"bin", "sbin", "lib", "lib32", "lib64"};
  for (size_t i = 0; i < sizeof tops / sizeof tops[0]; i++)
    if (top_link(tops[i], err, errlen) != 0) return -1;
  static const char *const etc[] = {
      "ld.so.cache",     "ld.so.conf",    "ld.so.conf.d", "resolv.conf",
      "hosts",           "nsswitch.conf", "host.conf",    "gai.conf",
      "services",        "protocols",     "localtime",    "ssl",
      "ca-certificates", "alternatives",  "passwd",       "group"};
  for (size_t i = 0; i < sizeof etc / sizeof etc[0]; i++) {
    char src[64], dst[64];
    snprintf(src, sizeof src, "/etc/%s", etc[i]);
    snprintf(dst, sizeof dst, NEWROOT "/etc/%s", etc[i]);
    if (bind_ro(src, dst, err, errlen) != 0) return -1;
  }
  static const char *const devs[] = {"null", "zero", "full", "random",
                                     "urandom"};
  for (size_t i = 0; i < sizeof devs / sizeof devs[0]; i++) {
    char src[32], dst[48];
    snprintf(src, sizeof src, "/dev/%s", devs[i]);
    snprintf(dst, sizeof dst, NEWROOT "/dev/%s", devs[i]);
    int fd = open(dst, O_WRONLY | O_CREAT | O_CLOEXEC, 0666);
    if (fd < 0) return fail(err, errlen, dst);
    close(fd);
    /* Device files keep their mount's flags: no nodev here. */
    if (mount(src, dst, NULL, MS_BIND, NULL) != 0)
      return fail(err, errlen, src);
  }
  if (symlink("/proc/self/fd", NEWROOT "/dev/fd") != 0 ||
      symlink("/proc/self/fd/0", NEWROOT "/dev/stdin") != 0 ||
      symlink("/proc/self/fd/1", NEWROOT "/dev/stdout") != 0 ||
      symlink("/proc/self/fd/2", NEWROOT "/dev/stderr") != 0 ||
      symlink("/tmp", NEWROOT "/dev/shm") != 0)
    return fail(err, errlen, "/dev links");
  if (mount("proc", NEWROOT "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC,
            NULL) != 0)
    return fail(err, errlen, "mounting proc");
  char opts[64];
  snprintf(opts, sizeof opts, "size=%um,mode=1777",
           sb->tmp_mb ? sb->tmp_mb : 64);
  if (mount("tmpfs", NEWROOT "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, opts) != 0)
    return fail(err, errlen, "private /tmp");
  for (unsigned i = 0; i < sb->nhide; i++)
    if (hide(sb->hide[i], err, errlen) != 0) return -1;
  if (chdir(NEWROOT) != 0) return fail(err, errlen, "chdir to the new root");
  /* pivot_root(".", "."): the old root ends up on top of the new one,
   * where it is detached at once. */
  if (syscall(SYS_pivot_root, ".", ".") != 0)
    return fail(err, errlen, "pivot_root");
  if (umount2(".", MNT_DETACH) != 0)
    return fail(err, errlen, "detaching the old root");
  if (chdir("/") != 0) return fail(err, errlen, "chdir /");
  if (mount(NULL, "/", NULL,
            MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV, NULL) != 0)
    return fail(err, errlen, "making the root read-only");
  return 0;
}

/* ---- entering --------------------------------------------------------------
 */

static int userns_enter(const imp_wk_sandbox_t *sb, char *err, size_t errlen) {
  pid_t parent = getppid();
  if (uid_drop(sb->uid, err, errlen) != 0) return -1;
  /* A process that changed its uid is not dumpable, which makes its
   * /proc/self files root's: the maps below could not be written. */
  prctl(PR_SET_DUMPABLE, 1, 0, 0, 0);
  uid_t uid = getuid();
  gid_t gid = getgid();
  if (unshare(CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC) != 0)
    return fail(err, errlen, "unshare(user, mount, pid, ipc)");
  char map[64];
  snprintf(map, sizeof map, "0 %u 1\n", (unsigned)uid);
  if (write_file("/proc/self/setgroups", "deny") != 0 ||
      write_file("/proc/self/uid_map", map) != 0)
    return fail(err, errlen, "writing the uid map");
  snprintf(map, sizeof map, "0 %u 1\n", (unsigned)gid);
  if (write_file("/proc/self/gid_map", map) != 0)
    return fail(err, errlen, "writing the gid map");
  if (sb->die_with_parent) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(0); /* the server is already gone */
  }
  int note[2];
  if (pipe2(note, O_CLOEXEC) != 0) return fail(err, errlen, "pipe");
  forwarded_mask(SIG_BLOCK);
  pid_t init = fork();
  if (init < 0) return fail(err, errlen, "fork");
  if (init > 0) {
    close(note[1]);
    /* Nothing of the instance stays open here but the note: its socket
     * must close when the worker ends. */
    if (note[0] != 3) {
      dup3(note[0], 3, O_CLOEXEC);
      note[0] = 3;
    }
    syscall(SYS_close_range, 4u, ~0u, 0u);
    reap(init, note[0]);
  }
  /* pid 1 of the new namespaces: dies with the reaper. */
  close(note[0]);
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (root_build(sb, err, errlen) != 0) return -1;
  pid_t worker = fork();
  if (worker < 0) return fail(err, errlen, "fork");
  if (worker > 0) {
    if (note[1] != 3) {
      dup3(note[1], 3, O_CLOEXEC);
      note[1] = 3;
    }
    syscall(SYS_close_range, 4u, ~0u, 0u);
    init_run(worker, note[1]);
  }
  /* The worker, pid 2: dies with the init (as every process of the
   * namespace does). */
  close(note[1]);
  forwarded_mask(SIG_UNBLOCK);
  /* No setsid(): a session of its own would also be a scheduling group
   * of its own (autogroup), which cost the closed-loop benchmark a tenth
   * of its throughput; the filter already keeps signals in the worker. */
  userns = 1;
  return 0;
}

int imp_wk_sandbox_enter(const imp_wk_sandbox_t *sb, char *err, size_t errlen) {
  if (limits_apply(sb, err, errlen) != 0) return -1;
  if (strcmp(sb->mode, "userns") == 0) return userns_enter(sb, err, errlen);
  if (strcmp(sb->mode, "uid") == 0) {
    return uid_drop(sb->uid, err, errlen); /* the caller sets PDEATHSIG */
  }
  if (strcmp(sb->mode, "none") == 0) return 0;
  snprintf(err, errlen, "unknown sandbox mode '%s'", sb->mode);
  return -1;
}

/* ---- sealing ------------------------------------------------------------- */

static int loopback_up(void) {
  int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s < 0) return -1;
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "lo");
  int rc = ioctl(s, SIOCGIFFLAGS, &ifr);
  if (rc == 0) {
    ifr.ifr_flags |= IFF_UP;
    rc = ioctl(s, SIOCSIFFLAGS, &ifr);
  }
  close(s);
  return rc;
}

static int caps_drop(char *err, size_t errlen) {
  /* The bounding set stays: with PR_SET_NO_NEW_PRIVS no execve can give
   * back a capability (file capabilities are ignored), and the ambient set
   * goes with the permitted one. */
  struct __user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, 0};
  struct __user_cap_data_struct data[2];
  memset(data, 0, sizeof data);
  if (syscall(SYS_capset, &hdr, data) != 0)
    return fail(err, errlen, "dropping capabilities");
  return 0;
}

int imp_wk_sandbox_seal(int network_none, unsigned concurrency, char *err,
                        size_t errlen) {
  network_none = network_none != 0;
  if (sealed >= 0) {
    if (sealed == network_none) return 0;
    snprintf(err, errlen,
             "this instance's network is %s and cannot change in place; "
             "it takes a new instance",
             sealed ? "none" : "outbound");
    return -1;
  }
  if (network_none) {
    if (!userns) {
      snprintf(err, errlen,
               "--network none needs the userns sandbox (this worker runs "
               "without namespaces)");
      return -1;
    }
    if (unshare(CLONE_NEWNET) != 0)
      return fail(err, errlen, "unshare(network)");
    if (loopback_up() != 0) return fail(err, errlen, "loopback up");
  }
  if (max_procs > 0) {
    rlim_t n = concurrency + 64 > max_procs ? concurrency + 64 : max_procs;
    struct rlimit rl = {n, n};
    if (setrlimit(RLIMIT_NPROC, &rl) != 0)
      return fail(err, errlen, "setrlimit(RLIMIT_NPROC)");
  }
  if (userns && caps_drop(err, errlen) != 0) return -1;
  if (imp_wk_confine_final(err, errlen) != 0) return -1;
  sealed = network_none;
  return 0;
}
