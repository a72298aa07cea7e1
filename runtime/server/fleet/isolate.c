/*
 * Sandbox mode and cgroups of the instances (isolate.h).
 *
 * Cgroup layout, under a name that depends only on the state directory
 * (so that a restarted server finds the groups of the workers it adopts):
 *
 *   v1  /sys/fs/cgroup/{memory,pids,cpu}/impulse-HASH/iID
 *   v2  <the server's cgroup>/impulse-HASH/iID, with the server moved into
 *       <the server's cgroup>/impulse-server when its own group must stay
 *       free of processes to delegate controllers
 *
 * A group's memory limit is the function's --memory plus a fixed slack for
 * the runtime itself (the worker, its libraries, its stacks); swap is not
 * allowed, so the limit is what the instance can hold in RAM.
 */
#include "server/fleet/isolate.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/common.h"

#ifndef CGROUP2_SUPER_MAGIC
#define CGROUP2_SUPER_MAGIC 0x63677270
#endif

/* Room for the runtime beside the function's memory. Sanitizer builds map
 * far more (shadow memory, quarantine). */
#if defined(__SANITIZE_ADDRESS__) || defined(IMPULSE_ASAN)
#define SLACK_MB 768u
#else
#define SLACK_MB 48u
#endif

#define V1_ROOT "/sys/fs/cgroup"

unsigned imp_isolate_uid(const imp_config_t *cfg, uint64_t id) {
  if (geteuid() != 0 || cfg->sandbox_uid_base == 0) return 0;
  return cfg->sandbox_uid_base + (unsigned)(id % 65536u);
}

/* ---- the sandbox probe --------------------------------------------------- */

static int write_str(const char *path, const char *text) {
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return -errno;
  ssize_t n = write(fd, text, strlen(text));
  int e = errno;
  close(fd);
  if (n == (ssize_t)strlen(text)) return 0;
  return n < 0 ? -e : -EIO;
}

/* Why the probe failed, by its exit status. */
static const char *probe_failure(int code) {
  switch (code) {
    case 10: return "cannot switch to the instance uid";
    case 11: return "unshare of user, mount, PID and IPC namespaces refused";
    case 12: return "the id maps of a user namespace cannot be written";
    case 13: return "mounts refused in a user namespace";
    case 15: return "proc cannot be mounted (a masked proc, as in containers)";
    default: return "the probe failed";
  }
}

/* Does in a child what a userns worker does first (drop to an
 * unprivileged uid when root, the namespaces, the id maps, a mount, a
 * proc): 0 when all of it works, else the exit status of the step that
 * failed (probe_failure). */
static int userns_probe(unsigned uid) {
  char uidmap[32], gidmap[32];
  pid_t pid = fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    if (uid != 0 && (setgroups(0, NULL) != 0 || setresgid(uid, uid, uid) != 0 ||
                     setresuid(uid, uid, uid) != 0))
      _exit(10);
    prctl(PR_SET_DUMPABLE, 1, 0, 0, 0);
    snprintf(uidmap, sizeof uidmap, "0 %u 1\n", (unsigned)getuid());
    snprintf(gidmap, sizeof gidmap, "0 %u 1\n", (unsigned)getgid());
    if (unshare(CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC) != 0)
      _exit(11);
    if (write_str("/proc/self/setgroups", "deny") != 0 ||
        write_str("/proc/self/uid_map", uidmap) != 0 ||
        write_str("/proc/self/gid_map", gidmap) != 0)
      _exit(12);
    /* A proc of the new PID namespace must mount: a container's masked
     * proc refuses that, and the sandbox needs it. */
    pid_t inner = fork();
    if (inner < 0) _exit(14);
    if (inner == 0) {
      if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0 ||
          mount("tmpfs", "/tmp", "tmpfs", 0, "size=16k") != 0)
        _exit(13);
      if (mkdir("/tmp/proc", 0755) != 0 ||
          mount("proc", "/tmp/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC,
                NULL) != 0)
        _exit(15);
      _exit(0);
    }
    int st;
    while (waitpid(inner, &st, 0) < 0)
      if (errno != EINTR) _exit(16);
    _exit(WIFEXITED(st) ? WEXITSTATUS(st) : 17);
  }
  int status;
  while (waitpid(pid, &status, 0) < 0)
    if (errno != EINTR) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* ---- cgroups --------------------------------------------------------------
 */

static int mkdir_ok(const char *dir) {
  return mkdir(dir, 0755) == 0 || errno == EEXIST ? 0 : -errno;
}

static int writable_dir(const char *dir) {
  return access(dir, W_OK) == 0;
}

static void group_name(const imp_config_t *cfg, char name[32]) {
  char hex[65];
  imp_sha256_hex(cfg->state_dir, strlen(cfg->state_dir), hex);
  snprintf(name, 32, "impulse-%.12s", hex);
}

static int v1_setup(imp_isolate_t *iso, const char *name) {
  if (!writable_dir(V1_ROOT "/memory") || !writable_dir(V1_ROOT "/pids"))
    return -1;
  snprintf(iso->cg_mem, sizeof iso->cg_mem, V1_ROOT "/memory/%s", name);
  snprintf(iso->cg_pids, sizeof iso->cg_pids, V1_ROOT "/pids/%s", name);
  if (mkdir_ok(iso->cg_mem) != 0 || mkdir_ok(iso->cg_pids) != 0) return -1;
  /* Children count towards their parents' usage (always so on recent
   * kernels; the flag is gone there). */
  char path[600];
  snprintf(path, sizeof path, "%s/memory.use_hierarchy", iso->cg_mem);
  write_str(path, "1");
  if (writable_dir(V1_ROOT "/cpu")) {
    snprintf(iso->cg_cpu, sizeof iso->cg_cpu, V1_ROOT "/cpu/%s", name);
    iso->has_cpu = mkdir_ok(iso->cg_cpu) == 0;
  }
  iso->cgroup = 1;
  return 0;
}

/* The server's own group in the v2 tree ("0::/path"). */
static int v2_self(char *out, size_t len) {
  FILE *f = fopen("/proc/self/cgroup", "re");
  if (f == NULL) return -1;
  char line[1024];
  int rc = -1;
  while (fgets(line, sizeof line, f) != NULL) {
    if (strncmp(line, "0::", 3) != 0) continue;
    line[strcspn(line, "\n")] = '\0';
    const char *rel = strcmp(line + 3, "/") == 0 ? "" : line + 3;
    if (strlen(rel) + sizeof V1_ROOT > len) break;
    memcpy(out, V1_ROOT, sizeof V1_ROOT - 1);
    memcpy(out + sizeof V1_ROOT - 1, rel, strlen(rel) + 1);
    rc = 0;
  }
  fclose(f);
  return rc;
}

static int v2_setup(imp_isolate_t *iso, const char *name) {
  struct statfs sf;
  if (statfs(V1_ROOT, &sf) != 0 ||
      (unsigned long)sf.f_type != CGROUP2_SUPER_MAGIC)
    return -1;
  char self[400], path[600];
  if (v2_self(self, sizeof self) != 0 || !writable_dir(self)) return -1;
  snprintf(path, sizeof path, "%s/cgroup.subtree_control", self);
  if (write_str(path, "+memory +pids") == -EBUSY) {
    /* Processes in our group: move the server into a leaf first. */
    char leaf[600], procs[700];
    snprintf(leaf, sizeof leaf, "%s/impulse-server", self);
    snprintf(procs, sizeof procs, "%s/cgroup.procs", leaf);
    if (mkdir_ok(leaf) != 0 || write_str(procs, "0") != 0) return -1;
  }
  if (write_str(path, "+memory +pids") != 0) return -1;
  iso->has_cpu = write_str(path, "+cpu") == 0;
  snprintf(iso->cg_mem, sizeof iso->cg_mem, "%s/%s", self, name);
  if (mkdir_ok(iso->cg_mem) != 0) return -1;
  snprintf(path, sizeof path, "%s/cgroup.subtree_control", iso->cg_mem);
  if (write_str(path, "+memory +pids") != 0) return -1;
  if (iso->has_cpu) write_str(path, "+cpu");
  iso->cgroup = 2;
  return 0;
}

/* Groups of instances that ended while the server was down (or whose
 * last process was still going when they were removed): rmdir fails on a
 * group that still has processes, such as an adopted worker's. */
static void stale_remove(const char *base, int (*live)(void *, uint64_t),
                         void *arg) {
  if (base[0] == '\0') return;
  DIR *d = opendir(base);
  if (d == NULL) return;
  struct dirent *e;
  char path[900];
  while ((e = readdir(d)) != NULL) {
    if (e->d_name[0] != 'i' || e->d_type != DT_DIR) continue;
    if (live != NULL && live(arg, strtoull(e->d_name + 1, NULL, 10))) continue;
    snprintf(path, sizeof path, "%s/%s", base, e->d_name);
    rmdir(path);
  }
  closedir(d);
}

void imp_isolate_sweep(const imp_isolate_t *iso,
                       int (*live)(void *arg, uint64_t id), void *arg) {
  if (iso->cgroup == 0) return;
  stale_remove(iso->cg_mem, live, arg);
  stale_remove(iso->cg_pids, live, arg);
  stale_remove(iso->cg_cpu, live, arg);
}

void imp_isolate_release(const imp_isolate_t *iso) {
  if (iso->cgroup == 0) return;
  /* The last processes of the instances may still be ending. */
  for (int i = 0; i < 20; i++) {
    imp_isolate_sweep(iso, NULL, NULL);
    if (rmdir(iso->cg_mem) == 0 || errno != EBUSY) break;
    usleep(10000);
  }
  rmdir(iso->cg_mem);
  if (iso->cg_pids[0]) rmdir(iso->cg_pids);
  if (iso->cg_cpu[0]) rmdir(iso->cg_cpu);
}

int imp_isolate_setup(imp_isolate_t *iso, const imp_config_t *cfg, char *err,
                      size_t errlen) {
  memset(iso, 0, sizeof *iso);
  const char *want = cfg->sandbox[0] ? cfg->sandbox : "auto";
  int root = geteuid() == 0;
  unsigned probe_uid = root ? imp_isolate_uid(cfg, 0) : 0;
  int probe = strcmp(want, "auto") == 0 || strcmp(want, "userns") == 0
                  ? userns_probe(probe_uid)
                  : 0;
  const char *why_not = probe != 0 ? probe_failure(probe) : NULL;
  if (strcmp(want, "auto") == 0) {
    snprintf(iso->mode, sizeof iso->mode, "%s",
             probe == 0 ? "userns"
             : root     ? "uid"
                        : "none");
  } else if (strcmp(want, "userns") == 0 && probe != 0) {
    snprintf(err, errlen,
             "--sandbox userns: %s (kernel.unprivileged_userns_clone, "
             "user.max_user_namespaces, or a seccomp profile or masked proc "
             "of its container); use --sandbox auto",
             why_not);
    return -1;
  } else if (strcmp(want, "uid") == 0 && !root) {
    snprintf(err, errlen, "--sandbox uid needs a server running as root");
    return -1;
  } else {
    snprintf(iso->mode, sizeof iso->mode, "%s", want);
  }

  char name[32];
  group_name(cfg, name);
  if (cfg->cgroups && v1_setup(iso, name) != 0 && v2_setup(iso, name) != 0)
    iso->cgroup = 0;
  imp_isolate_sweep(iso, NULL, NULL);

  char who[160] = "";
  if (root && strcmp(iso->mode, "none") != 0)
    snprintf(who, sizeof who, ", uid %u+ per instance", cfg->sandbox_uid_base);
  if (strcmp(iso->mode, "userns") != 0 && why_not != NULL)
    snprintf(who + strlen(who), sizeof who - strlen(who), " (no userns: %s)",
             why_not);
  snprintf(iso->describe, sizeof iso->describe, "%s%s; %s", iso->mode, who,
           iso->cgroup == 1   ? (iso->has_cpu ? "cgroup v1 (memory, pids, cpu)"
                                              : "cgroup v1 (memory, pids)")
           : iso->cgroup == 2 ? (iso->has_cpu ? "cgroup v2 (memory, pids, cpu)"
                                              : "cgroup v2 (memory, pids)")
                              : "rlimits only (no writable cgroup: memory "
                                "is RLIMIT_DATA, which memfd and shared "
                                "memory escape)");
  return 0;
}

static void dir_of(const char *base, uint64_t id, char *out, size_t len) {
  snprintf(out, len, "%s/i%llu", base, (unsigned long long)id);
}

static void put(const char *base, uint64_t id, const char *file,
                const char *value) {
  char dir[600], path[700];
  dir_of(base, id, dir, sizeof dir);
  snprintf(path, sizeof path, "%s/%s", dir, file);
  int rc = write_str(path, value);
  if (rc != 0 && rc != -ENOENT)
    IMP_LOG(IMP_LOG_DEBUG, "cgroup %s = %s: %s", path, value, strerror(-rc));
}

static void memory_set(const imp_isolate_t *iso, uint64_t id,
                       unsigned memory_mb) {
  char v[32];
  unsigned long long bytes = ((unsigned long long)memory_mb + SLACK_MB) << 20;
  snprintf(v, sizeof v, "%llu", bytes);
  if (iso->cgroup == 1) {
    /* memsw >= memory at all times: raise in the order that keeps it. */
    put(iso->cg_mem, id, "memory.memsw.limit_in_bytes", "-1");
    put(iso->cg_mem, id, "memory.limit_in_bytes", v);
    put(iso->cg_mem, id, "memory.memsw.limit_in_bytes", v);
  } else {
    put(iso->cg_mem, id, "memory.max", v);
    put(iso->cg_mem, id, "memory.swap.max", "0");
  }
}

static void procs_set(const imp_isolate_t *iso, uint64_t id, unsigned n) {
  char v[32];
  snprintf(v, sizeof v, "%u", n);
  put(iso->cgroup == 1 ? iso->cg_pids : iso->cg_mem, id, "pids.max", v);
}

int imp_isolate_create(const imp_isolate_t *iso, uint64_t id,
                       unsigned memory_mb, unsigned max_procs,
                       imp_isolate_limits_t *now) {
  now->memory_mb = memory_mb;
  now->max_procs = max_procs;
  now->cpu_millis = 0;
  now->cpu_joined = 0;
  if (iso->cgroup == 0) return 0;
  char dir[600];
  const char *bases[] = {iso->cg_mem, iso->cgroup == 1 ? iso->cg_pids : NULL,
                         iso->cgroup == 1 && iso->has_cpu ? iso->cg_cpu : NULL};
  for (size_t i = 0; i < 3; i++) {
    if (bases[i] == NULL) continue;
    dir_of(bases[i], id, dir, sizeof dir);
    int rc = mkdir_ok(dir);
    if (rc != 0) return rc;
  }
  memory_set(iso, id, memory_mb);
  procs_set(iso, id, max_procs);
  return 0;
}

int imp_isolate_join(const imp_isolate_t *iso, uint64_t id, int pid) {
  if (iso->cgroup == 0) return 0;
  char v[32], dir[600], path[700];
  snprintf(v, sizeof v, "%d", pid);
  /* Not the cpu group (v1): an instance joins it with its first cpu
   * limit (cpu_join), since a group of its own changes how the scheduler
   * shares the CPUs even without a limit. */
  const char *bases[] = {iso->cg_mem, iso->cgroup == 1 ? iso->cg_pids : NULL};
  for (size_t i = 0; i < 2; i++) {
    if (bases[i] == NULL) continue;
    dir_of(bases[i], id, dir, sizeof dir);
    snprintf(path, sizeof path, "%s/cgroup.procs", dir);
    int rc = write_str(path, v);
    if (rc != 0) return rc;
  }
  return 0;
}

/* Moves process `pid` and its descendants (the sandbox's init and the
 * worker, any process of the function) into the cpu group of `id`. */
static void cpu_join(const imp_isolate_t *iso, uint64_t id, int pid) {
  int todo[64], n = 0;
  todo[n++] = pid;
  for (int i = 0; i < n; i++) {
    char path[700], v[32];
    snprintf(v, sizeof v, "%d", todo[i]);
    put(iso->cg_cpu, id, "cgroup.procs", v);
    snprintf(path, sizeof path, "/proc/%d/task/%d/children", todo[i], todo[i]);
    FILE *f = fopen(path, "re");
    if (f == NULL) continue;
    int child;
    while (n < 64 && fscanf(f, "%d", &child) == 1) todo[n++] = child;
    fclose(f);
  }
}

void imp_isolate_limit(const imp_isolate_t *iso, uint64_t id, int pid,
                       imp_isolate_limits_t *now, unsigned memory_mb,
                       unsigned max_procs, unsigned cpu_millis) {
  if (iso->cgroup == 0) return;
  if (memory_mb > 0 && memory_mb != now->memory_mb) {
    memory_set(iso, id, memory_mb);
    now->memory_mb = memory_mb;
  }
  if (max_procs != now->max_procs) {
    procs_set(iso, id, max_procs);
    now->max_procs = max_procs;
  }
  if (!iso->has_cpu || cpu_millis == now->cpu_millis) return;
  if (iso->cgroup == 1 && !now->cpu_joined && cpu_millis > 0) {
    cpu_join(iso, id, pid);
    now->cpu_joined = 1;
  }
  now->cpu_millis = cpu_millis;
  char v[48];
  if (iso->cgroup == 1) {
    /* cpu.cfs_period_us keeps its default, 100000. */
    snprintf(v, sizeof v, "%lld",
             cpu_millis ? (long long)cpu_millis * 100 : -1LL);
    put(iso->cg_cpu, id, "cpu.cfs_quota_us", v);
  } else {
    if (cpu_millis)
      snprintf(v, sizeof v, "%u 100000", cpu_millis * 100);
    else
      snprintf(v, sizeof v, "max 100000");
    put(iso->cg_mem, id, "cpu.max", v);
  }
}

/* The first number on the line of `file` (in the group of `id`) that
 * starts with `key`, or 0. */
static unsigned long long group_count(const imp_isolate_t *iso, uint64_t id,
                                      const char *file, const char *key) {
  char dir[600], path[700], line[128];
  dir_of(iso->cg_mem, id, dir, sizeof dir);
  snprintf(path, sizeof path, "%s/%s", dir, file);
  FILE *f = fopen(path, "re");
  if (f == NULL) return 0;
  unsigned long long n = 0, v;
  size_t klen = strlen(key);
  while (fgets(line, sizeof line, f) != NULL)
    if (strncmp(line, key, klen) == 0 && sscanf(line + klen, "%llu", &v) == 1)
      n = v;
  fclose(f);
  return n;
}

int imp_isolate_oom_killed(const imp_isolate_t *iso, uint64_t id) {
  if (iso->cgroup == 0) return 0;
  /* The kill is counted (oom_kill), and the limit was hit (failcnt, or
   * v2's max events): the second covers a kill the count does not show
   * yet when the process's end is seen. */
  if (iso->cgroup == 1)
    return group_count(iso, id, "memory.oom_control", "oom_kill ") > 0 ||
           group_count(iso, id, "memory.memsw.failcnt", "") > 0 ||
           group_count(iso, id, "memory.failcnt", "") > 0;
  return group_count(iso, id, "memory.events", "oom_kill ") > 0 ||
         group_count(iso, id, "memory.events", "max ") > 0;
}

void imp_isolate_remove(const imp_isolate_t *iso, uint64_t id) {
  if (iso->cgroup == 0) return;
  char dir[600];
  const char *bases[] = {iso->cg_mem, iso->cgroup == 1 ? iso->cg_pids : NULL,
                         iso->cgroup == 1 && iso->has_cpu ? iso->cg_cpu : NULL};
  for (size_t i = 0; i < 3; i++) {
    if (bases[i] == NULL) continue;
    dir_of(bases[i], id, dir, sizeof dir);
    /* EBUSY while the kernel still tears the last process down: the group
     * is tried again at the server's next start (imp_isolate_setup). */
    rmdir(dir);
  }
}
