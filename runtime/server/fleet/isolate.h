/*
 * How the server isolates and limits its instances (isolate.c): which
 * sandbox mode the workers use, and a cgroup per instance.
 *
 * The sandbox mode is probed once at start (--sandbox auto): "userns" when
 * a process can make user, mount, PID and IPC namespaces, "uid" when the
 * server runs as root without them, "none" otherwise (docs/security.md).
 *
 * Cgroups: with a writable cgroup v1 memory (and pids, cpu) hierarchy, or
 * a cgroup v2 tree the server may delegate in, every instance gets its own
 * group: memory (memfd, shared memory and page cache included, no swap),
 * pids (processes and threads) and cpu limits. Without either, the
 * workers' rlimits are all there is, and the server says so.
 */
#ifndef IMP_ISOLATE_H
#define IMP_ISOLATE_H

#include <stddef.h>
#include <stdint.h>

#include "base/config.h"

typedef struct imp_isolate_s {
  char mode[8];      /* "userns", "uid" or "none" */
  int cgroup;        /* 0 none, 1 v1, 2 v2 */
  int has_cpu;       /* a cpu controller to limit with */
  char cg_mem[512];  /* v1: memory hierarchy dir of ours; v2: our tree */
  char cg_pids[512]; /* v1 only */
  char cg_cpu[512];  /* v1 only */
  char describe[400];
} imp_isolate_t;

/* Probes the sandbox mode (cfg->sandbox: "auto" or one to require) and
 * sets up the cgroup tree. 0, or -1 when a required mode is unavailable
 * (the reason in err). */
int imp_isolate_setup(imp_isolate_t *iso, const imp_config_t *cfg, char *err,
                      size_t errlen);

/* The limits written to an instance's group, so that a Load writes only
 * what changes (each write to a cgroup file costs the loop time). */
typedef struct imp_isolate_limits_s {
  unsigned memory_mb;
  unsigned max_procs;
  unsigned cpu_millis;
  int cpu_joined; /* in its cpu group (v1: joined with the first limit) */
} imp_isolate_limits_t;

/* A group for instance `id`, limited to `max_procs` processes and threads
 * and, until its Load says otherwise, `memory_mb`; *now records them.
 * 0 or -errno. */
int imp_isolate_create(const imp_isolate_t *iso, uint64_t id,
                       unsigned memory_mb, unsigned max_procs,
                       imp_isolate_limits_t *now);
/* Moves process `pid` into the group of instance `id`. 0 or -errno. */
int imp_isolate_join(const imp_isolate_t *iso, uint64_t id, int pid);
/* The function's limits, at its Load: memory (0 = none beyond the
 * group's), processes and threads, cpu in thousandths of a CPU (0 = no
 * limit). `pid` is the instance's process: with cgroup v1 it and its
 * descendants join the cpu group with the first cpu limit. */
void imp_isolate_limit(const imp_isolate_t *iso, uint64_t id, int pid,
                       imp_isolate_limits_t *now, unsigned memory_mb,
                       unsigned max_procs, unsigned cpu_millis);
/* 1 when the kernel killed a process of the group for its memory. */
int imp_isolate_oom_killed(const imp_isolate_t *iso, uint64_t id);
/* Removes the group (its processes are gone). */
void imp_isolate_remove(const imp_isolate_t *iso, uint64_t id);
/* Removes every instance group without a process (those whose removal
 * came too early: the kernel was still ending their last process), but
 * the groups `live` (when given) says belong to instances still known:
 * their counters are read when their end is seen. */
void imp_isolate_sweep(const imp_isolate_t *iso,
                       int (*live)(void *arg, uint64_t id), void *arg);
/* At the server's end: the sweep, then the server's own groups when no
 * worker (one outliving the server for --worker-grace) is left in them. */
void imp_isolate_release(const imp_isolate_t *iso);

/* The outer uid of instance `id` when the server runs as root (0 when it
 * does not): one per instance, from cfg->sandbox_uid_base. */
unsigned imp_isolate_uid(const imp_config_t *cfg, uint64_t id);

#endif
