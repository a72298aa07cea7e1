/*
 * Helpers shared by the integration tests (tests/integration) and the
 * benchmarks (bench/), linked into both as the static library
 * impulse_test_support:
 *
 *   proc.c  children: spawning one (in a process group of its own), running
 *           a program for its output, waiting, stopping, killing a process
 *           group, waiting for the ready file a child writes
 *   net.c   a free loopback port
 *   fs.c    reading a file, removing a directory tree
 *   rpc.c   control calls the public client API does not wrap: describe,
 *           server info, topics, triggers
 *
 * Nothing here asserts or prints (exec_error of sup_spawn aside): each
 * function returns what happened, and the caller says so in its own words.
 * Not installed.
 */
#ifndef IMP_TEST_SUPPORT_H
#define IMP_TEST_SUPPORT_H

#include <signal.h>
#include <stddef.h>
#include <sys/types.h>

#include "core/codec.h" /* runtime/: Impulse__Envelope and its bodies */
#include "impulse/client.h"

/* ---- proc.c ------------------------------------------------------------- */

/* How sup_spawn() starts a child. Start from SUP_SPAWN_INIT. */
typedef struct sup_spawn_s {
  const char *path;        /* executable; NULL: argv[0], looked up on PATH */
  const char *const *argv; /* NULL-terminated, argv[0] included; borrowed */
  char *const *envp;       /* the child's environment; NULL: ours */
  int in, out, err;        /* the child's 0, 1 and 2; -1 keeps ours */
  int own_group;           /* the child leads a process group of its own */
  int death_signal;        /* sent to the child when we die; 0: none */
  int default_signals;     /* SIGINT, SIGTERM, SIGHUP, SIGPIPE: default */
  const char *exec_error;  /* when exec fails, the child prints
                              "EXEC_ERROR: exec PATH: REASON" on stderr */
} sup_spawn_t;

#define SUP_SPAWN_INIT \
  { .in = -1, .out = -1, .err = -1 }

/* Flushes stdio, forks and execs as `how` (borrowed) says; does not wait.
 * With own_group the parent also puts the child in its group, so that a
 * kill of the group cannot miss it; with death_signal a child whose parent
 * is already gone exits at once. Between fork and exec the child makes
 * async-signal-safe calls only (exec_error aside). Returns the child's pid,
 * or a negative errno when fork failed. */
pid_t sup_spawn(const sup_spawn_t *how);

/* The exit code of a wait status: the exit status (0..255), or 128 + the
 * signal that ended the process. */
int sup_exit_code(int wstatus);

/*
 * Runs argv (NULL-terminated, argv[0] looked up on PATH) with stdin from
 * the file `in` (NULL: /dev/null), stdout into *out and stderr on ours; the
 * child gets SIGKILL when we die. Killed after `ms` (also when it closed
 * its stdout but did not exit by then), or as soon as *stop is non-zero
 * (stop may be NULL). When out is not NULL, *out gets what the program
 * wrote, also when it was killed (malloc'd, NUL-terminated; free() it;
 * NULL when the run could not start).
 * Returns the exit code (sup_exit_code), -ETIMEDOUT or -EINTR when it was
 * killed on time-out or on *stop, -ENOMEM when *out could not be
 * allocated, or another negative errno when it could not be run.
 */
int sup_run(const char *const *argv, const char *in, char **out, unsigned ms,
            const volatile sig_atomic_t *stop);

/* sup_run() of the child `how` (borrowed) describes, its stdout being the
 * pipe read into *out (how->out is not used). With own_group the kill on
 * time-out or on *stop goes to its whole process group, and what is left
 * of the group once the child is gone is killed too (sup_kill_group). */
int sup_run_as(const sup_spawn_t *how, char **out, unsigned ms,
               const volatile sig_atomic_t *stop);

/* Waits at most `ms` for our child `pid` to exit and reaps it. Returns 1
 * with its wait status in *wstatus (may be NULL) when it exited, 0 when it
 * still runs, or a negative errno (-ECHILD: not our child, or reaped). */
int sup_wait(pid_t pid, unsigned ms, int *wstatus);

/* SIGTERM to our child `pid`, then at most `ms` for it to exit; when it
 * does not, SIGKILL to its process group and to it, and at most `ms` again
 * to reap it. Returns its exit code (sup_exit_code), -ETIMEDOUT when it had
 * to be killed, or a negative errno. */
int sup_stop(pid_t pid, unsigned ms);

/* Reaps every process of group `pgid` that has exited and is ours to reap
 * (our children, and orphans handed to a child subreaper). Returns 1 while
 * some process of the group is alive, else 0. */
int sup_reap_group(pid_t pgid);

/* SIGKILLs every process of group `pgid` and reaps them (sup_reap_group)
 * until none is left or `ms` have passed. Returns 0 when the group is
 * gone, -ETIMEDOUT when some process of it is still there. */
int sup_kill_group(pid_t pgid, unsigned ms);

/*
 * Waits at most `ms` until the file at `path` holds a line (some text and
 * a newline at its end: a file written at once, e.g. renamed into place,
 * like the ready file of `impulse serve` or the bootstrap file of `impulse
 * kafka`) while our child `pid` runs. Returns 0 with the contents in *data
 * (malloc'd, NUL-terminated; free() it), -ECHILD when the child exited first
 * (reaped; *wstatus, which may be NULL, gets its wait status), -ETIMEDOUT, or
 * -EINTR as soon as *stop is non-zero (stop may be NULL).
 */
int sup_wait_line_file(const char *path, pid_t pid, unsigned ms,
                       const volatile sig_atomic_t *stop, char **data,
                       int *wstatus);

/* ---- net.c -------------------------------------------------------------- */

/* A TCP port on 127.0.0.1 that was free a moment ago (bound to port 0,
 * read back, closed), or a negative errno. */
int sup_free_port(void);

/* ---- fs.c --------------------------------------------------------------- */

/* Reads the whole file at `path`: 0 with *data (malloc'd, NUL-terminated,
 * not counted in *len; free() it), or a negative errno. */
int sup_read_file(const char *path, char **data, size_t *len);

/* Removes `path` and everything below it, without following links;
 * whatever cannot be removed stays. */
void sup_rm_tree(const char *path);

/* ---- rpc.c -------------------------------------------------------------- */

/*
 * Control calls on a connected client (borrowed). Each returns 0, or the
 * client status of imp_client_call_expect() (a negative error code for an
 * Error answer, whose message impulse_client_error() then gives). Where a
 * function hands the answer back, *resp is set on 0 only; free it with
 * impulse__envelope__free_unpacked(*resp, NULL).
 */

/* The call whose request body is `body` (borrowed, of the type `body_case`
 * carries) and whose answer must have body `expect`: *resp holds it, or,
 * with resp NULL, it is freed (the answer says no more than that the call
 * went well). -EINVAL for a body of another type. */
int sup_call(impulse_client_t *client, Impulse__Envelope__BodyCase body_case,
             void *body, Impulse__Envelope__BodyCase expect,
             Impulse__Envelope **resp);

/* Describe of function `name`: *resp holds describe_ok. */
int sup_describe(impulse_client_t *client, const char *name,
                 Impulse__Envelope **resp);

/* Server info: *resp holds server_info_ok. */
int sup_server_info(impulse_client_t *client, Impulse__Envelope **resp);

/* Creates `topic` with `partitions` unless it exists; *got (may be NULL)
 * gets the partition count it has. */
int sup_ensure_topic(impulse_client_t *client, const char *topic,
                     unsigned partitions, unsigned *got);

/* Creates the trigger `spec` (borrowed) describes. */
int sup_trigger_create(impulse_client_t *client,
                       const Impulse__TriggerSpec *spec);

/* Describe of trigger `name`: *resp holds trigger_describe_ok. */
int sup_trigger_describe(impulse_client_t *client, const char *name,
                         Impulse__Envelope **resp);

/* Deletes trigger `name`; the server answers once it has stopped. */
int sup_trigger_delete(impulse_client_t *client, const char *name);

#endif
