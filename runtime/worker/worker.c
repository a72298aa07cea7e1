/*
 * Worker process (`impulse worker`): the function runtime.
 *
 * The server binds and listens on a UNIX socket, spawns
 * `impulse worker --listen-fd N` and connects to it. The worker serves one
 * connection at a time (a newer connection replaces the older one) with the
 * frame codec of core/codec.h and core/wire.h, and answers every request
 * with the request's envelope id:
 *
 *   load   -> dlopen() the function object, check impulse_abi_version, call
 *             impulse_init(); answer load_ok or error INVALID_ARTIFACT. With
 *             validate_only the object is finalised and unloaded again and
 *             the worker stays generic; otherwise the worker is specialised
 *             and a later load replaces the object in place.
 *   invoke -> run impulse_handle(); answer invoke_ok, or error FUNCTION_ERROR
 *             when the handler returns a non-zero status.
 *   invoke_batch -> run impulse_handle() once per item, in order; answer
 *             all of them in one invoke_batch_ok.
 *   attach -> a restarted server proves it owns this worker; answer
 *             attach_ok with what is loaded.
 *
 * Threads. The main thread does all socket I/O with poll() on the listening
 * socket, the connection and an eventfd. With concurrency 1 the handler runs
 * inline on that thread. With concurrency N > 1, N handler threads take jobs
 * from a queue, pack their replies into a shared buffer under the worker
 * lock and wake the I/O thread through the eventfd, which then writes every
 * ready reply in as few write() calls as it can. Both hand-offs are batched
 * so that a busy pool costs few wake-ups per call (see imp_worker_t).
 *
 * Exits (core/codec.h) tell the server why the worker ended:
 * IMP_WORKER_EXIT_OOM when a fatal signal arrives near the memory limit or
 * after an allocation failure, IMP_WORKER_EXIT_ORPHAN when the connection is
 * gone and no other arrives within --grace-ms; any other fatal signal is
 * re-raised with its default action so the server sees the real signal.
 *
 * This file parses the options, starts the worker and shuts it down; the
 * parts it is made of are listed in context.h.
 */
#include "worker/worker.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <malloc.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/common.h"
#include "worker/confine.h"
#include "worker/conn.h"
#include "worker/context.h"
#include "worker/crash.h"
#include "worker/load.h"
#include "worker/pool.h"
#include "worker/sandbox.h"

#if defined(IMPULSE_TSAN) || defined(__SANITIZE_THREAD__)
#include <sanitizer/common_interface_defs.h>
#endif

#define FIRST_CONNECT_MS 10000u /* wait for the server's first connect */

/* ---- startup and shutdown ------------------------------------------------ */

static void usage(void) {
  fprintf(
      stderr,
      "usage: impulse worker --listen-fd N [--secret-fd N] [--id ID]\n"
      "                      [--max-frame BYTES] [--grace-ms MS]\n"
      "                      [--log-level LEVEL] [--log-fd N] [--sandbox "
      "MODE]\n"
      "                      [--sandbox-uid UID] [--tmp-mb MB]\n"
      "                      [--max-fds N] [--max-procs N] [--hide DIR]\n"
      "\n"
      "The function runtime process. Started by the server, not by hand.\n"
      "\n"
      "  --listen-fd N        listening UNIX socket to accept the server on\n"
      "  --secret-fd N        pipe to read the re-attach secret from (then\n"
      "                       closed); without it the worker dies with\n"
      "                       its server\n"
      "  --id ID              instance id shown in log lines\n"
      "  --max-frame BYTES    largest frame accepted or sent (default %u)\n"
      "  --grace-ms MS        wait this long for a new connection after\n"
      "                       the server's connection ends (default 0)\n"
      "  --log-level LEVEL    error, warn, info or debug (default info)\n"
      "  --sandbox MODE       userns, uid or none (default none; see\n"
      "                       docs/security.md)\n"
      "  --sandbox-uid UID    started as root: run as this uid\n"
      "  --tmp-mb MB          size of the private /tmp (userns; default 64)\n"
      "  --max-fds N          open files at most (RLIMIT_NOFILE)\n"
      "  --max-procs N        processes of its uid at most (RLIMIT_NPROC)\n"
      "  --hide DIR           a server directory never to show inside\n"
      "  --log-fd N           pipe impulse_log() writes its framed lines to\n"
      "                       (default: none, they go to stderr)\n",
      (unsigned)IMP_DEFAULT_MAX_FRAME);
}

/* Parses the command line into `worker`. Returns -1 to go on running, or
 * the code to exit with (--help, bad usage). */
static int parse_args(imp_worker_t *worker, int argc, char **argv) {
  enum {
    OPT_LISTEN_FD = 256,
    OPT_SECRET_FD,
    OPT_ID,
    OPT_MAX_FRAME,
    OPT_GRACE,
    OPT_LOG,
    OPT_SANDBOX,
    OPT_SANDBOX_UID,
    OPT_TMP_MB,
    OPT_MAX_FDS,
    OPT_MAX_PROCS,
    OPT_HIDE,
    OPT_LOG_FD
  };
  static const struct option options[] = {
      {"listen-fd", required_argument, NULL, OPT_LISTEN_FD},
      {"secret-fd", required_argument, NULL, OPT_SECRET_FD},
      {"id", required_argument, NULL, OPT_ID},
      {"max-frame", required_argument, NULL, OPT_MAX_FRAME},
      {"grace-ms", required_argument, NULL, OPT_GRACE},
      {"log-level", required_argument, NULL, OPT_LOG},
      {"sandbox", required_argument, NULL, OPT_SANDBOX},
      {"sandbox-uid", required_argument, NULL, OPT_SANDBOX_UID},
      {"tmp-mb", required_argument, NULL, OPT_TMP_MB},
      {"max-fds", required_argument, NULL, OPT_MAX_FDS},
      {"max-procs", required_argument, NULL, OPT_MAX_PROCS},
      {"hide", required_argument, NULL, OPT_HIDE},
      {"log-fd", required_argument, NULL, OPT_LOG_FD},
      {"help", no_argument, NULL, 'h'},
      {NULL, 0, NULL, 0},
  };
  const char *id = NULL;
  unsigned long long v;
  int opt;
  optind = 0; /* full re-initialisation: getopt may have run before */
  while ((opt = getopt_long(argc, argv, "+h", options, NULL)) != -1) {
    switch (opt) {
      case OPT_LISTEN_FD:
        if (imp_parse_ull(optarg, 0, INT_MAX, &v) != 0) goto bad;
        worker->listen_fd = (int)v;
        break;
      case OPT_SECRET_FD:
        if (imp_parse_ull(optarg, 0, INT_MAX, &v) != 0) goto bad;
        worker->secret_fd = (int)v;
        break;
      case OPT_ID:
        if (strlen(optarg) > MAX_ID_LEN) goto bad;
        id = optarg;
        worker->id = strtoull(optarg, NULL, 10);
        break;
      case OPT_MAX_FRAME:
        /* Room for RESPONSE_SLACK plus a useful payload. */
        if (imp_parse_ull(optarg, 4096, UINT32_MAX, &v) != 0) goto bad;
        worker->max_frame = (size_t)v;
        break;
      case OPT_GRACE:
        if (imp_parse_ull(optarg, 0, UINT32_MAX, &v) != 0) goto bad;
        worker->grace_ms = (unsigned)v;
        break;
      case OPT_LOG_FD:
        if (imp_parse_ull(optarg, 0, INT_MAX, &v) != 0) goto bad;
        worker->log_fd = (int)v;
        break;
      case OPT_LOG: {
        int level = imp_log_parse(optarg);
        if (level < 0) goto bad;
        imp_log_level = level;
        break;
      }
      case OPT_SANDBOX:
        if (strcmp(optarg, "userns") != 0 && strcmp(optarg, "uid") != 0 &&
            strcmp(optarg, "none") != 0)
          goto bad;
        snprintf(worker->sandbox.mode, sizeof worker->sandbox.mode, "%s",
                 optarg);
        break;
      case OPT_SANDBOX_UID:
        if (imp_parse_ull(optarg, 1, UINT32_MAX - 1, &v) != 0) goto bad;
        worker->sandbox.uid = (unsigned)v;
        break;
      case OPT_TMP_MB:
        if (imp_parse_ull(optarg, 1, 1u << 20, &v) != 0) goto bad;
        worker->sandbox.tmp_mb = (unsigned)v;
        break;
      case OPT_MAX_FDS:
        if (imp_parse_ull(optarg, 16, 1u << 20, &v) != 0) goto bad;
        worker->sandbox.max_fds = (unsigned)v;
        break;
      case OPT_MAX_PROCS:
        if (imp_parse_ull(optarg, 1, 1u << 22, &v) != 0) goto bad;
        worker->sandbox.max_procs = (unsigned)v;
        break;
      case OPT_HIDE:
        if (optarg[0] != '/' ||
            worker->sandbox.nhide == IMP_WK_SANDBOX_MAX_HIDE)
          goto bad;
        worker->sandbox.hide[worker->sandbox.nhide++] = optarg;
        break;
      case 'h':
        usage(); /* to stderr too: the worker never writes to stdout */
        return IMP_WORKER_EXIT_OK;
      default: usage(); return IMP_WORKER_EXIT_USAGE;
    }
  }
  if (optind != argc || worker->listen_fd < 0) goto bad_quiet;
  if (id != NULL)
    snprintf(worker->label, sizeof worker->label, "worker %s", id);
  return -1;
bad:
  fprintf(stderr, "worker: invalid value for --%s: %s\n",
          opt == OPT_LISTEN_FD     ? "listen-fd"
          : opt == OPT_SECRET_FD   ? "secret-fd"
          : opt == OPT_ID          ? "id"
          : opt == OPT_MAX_FRAME   ? "max-frame"
          : opt == OPT_GRACE       ? "grace-ms"
          : opt == OPT_LOG         ? "log-level"
          : opt == OPT_LOG_FD      ? "log-fd"
          : opt == OPT_SANDBOX     ? "sandbox"
          : opt == OPT_SANDBOX_UID ? "sandbox-uid"
          : opt == OPT_TMP_MB      ? "tmp-mb"
          : opt == OPT_MAX_FDS     ? "max-fds"
          : opt == OPT_MAX_PROCS   ? "max-procs"
                                   : "hide",
          optarg);
bad_quiet:
  usage();
  return IMP_WORKER_EXIT_USAGE;
}

/* Checks that the inherited descriptor is a listening socket and keeps it
 * from leaking into anything the function executes. */
static int listen_fd_check(imp_worker_t *worker) {
  int accepting = 0;
  socklen_t len = sizeof accepting;
  if (getsockopt(worker->listen_fd, SOL_SOCKET, SO_ACCEPTCONN, &accepting,
                 &len) != 0 ||
      !accepting) {
    IMP_LOG(IMP_LOG_ERROR, "%s: fd %d is not a listening socket", worker->label,
            worker->listen_fd);
    return -EINVAL;
  }
  int flags = fcntl(worker->listen_fd, F_GETFD);
  if (flags >= 0) fcntl(worker->listen_fd, F_SETFD, flags | FD_CLOEXEC);
  return 0;
}

/* Reads the secret a restarted server attaches with from the pipe the
 * server wrote it to, and closes the pipe. The secret is never in the
 * environment or the command line, where /proc would show it. */
static void secret_read(imp_worker_t *worker) {
  if (worker->secret_fd < 0) return;
  char buf[MAX_SECRET + 2];
  size_t got = 0;
  while (got < sizeof buf - 1) {
    ssize_t n = read(worker->secret_fd, buf + got, sizeof buf - 1 - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got += (size_t)n;
  }
  close(worker->secret_fd);
  worker->secret_fd = -1;
  while (got > 0 && (buf[got - 1] == '\n' || buf[got - 1] == '\0')) got--;
  if (got == 0 || got > MAX_SECRET) {
    IMP_LOG(IMP_LOG_WARN, "%s: no usable secret on its pipe", worker->label);
    return;
  }
  memcpy(worker->secret, buf, got);
  worker->secret[got] = '\0';
}

/* Releases everything; returns `code`. Exits directly if a handler is still
 * running, since its thread cannot be joined. */
static int worker_shutdown(imp_worker_t *worker, int code) {
  /* No call may start from now on (see imp_wk_call_begin()). */
  if (imp_wk_calls_stop()) _exit(code);
  imp_wk_pool_stop(worker);
  imp_wk_function_close(&worker->fn);
  if (worker->conn_fd >= 0) close(worker->conn_fd);
  imp_wk_wake_fd_set(-1);
  close(worker->wake_fd);
  imp_buf_free(&worker->in);
  imp_buf_free(&worker->out);
  imp_buf_free(&worker->done);
  pthread_cond_destroy(&worker->jobs_cond);
  pthread_mutex_destroy(&worker->lock);
  IMP_LOG(IMP_LOG_DEBUG, "%s: exit %d", worker->label, code);
  return code;
}

/* ThreadSanitizer builds: race reports go to the server's log, on the fd
 * the server passes for them (core/codec.h), instead of stderr, which is
 * the function's log. Called in the process that runs the function: the
 * sanitizer drops an fd set by a parent it forked from (the sandbox's
 * reaper and init). */
static void tsan_report_fd(void) {
#if defined(IMPULSE_TSAN) || defined(__SANITIZE_THREAD__)
  int flags = fcntl(IMP_WORKER_TSAN_FD, F_GETFD);
  if (flags < 0) return; /* not started by a server: stderr it is */
  fcntl(IMP_WORKER_TSAN_FD, F_SETFD, flags | FD_CLOEXEC);
  __sanitizer_set_report_fd((void *)(intptr_t)IMP_WORKER_TSAN_FD);
#endif
}

int imp_worker_main(int argc, char **argv) {
  /* First, before anything allocates: every glibc arena is a separate heap
   * whose reservations would eat into the function's memory budget. */
  mallopt(M_ARENA_MAX, 2);

  imp_worker_t worker_storage;
  imp_worker_t *worker = &worker_storage;
  memset(worker, 0, sizeof *worker);
  worker->listen_fd = -1;
  worker->secret_fd = -1;
  worker->conn_fd = -1;
  worker->wake_fd = -1;
  worker->log_fd = -1;
  worker->max_frame = IMP_DEFAULT_MAX_FRAME;
  imp_wire_decoder_init(&worker->decoder);
  snprintf(worker->label, sizeof worker->label, "worker");
  snprintf(worker->sandbox.mode, sizeof worker->sandbox.mode, "none");

  int rc = parse_args(worker, argc, argv);
  if (rc >= 0) return rc;
  if (listen_fd_check(worker) != 0) return IMP_WORKER_EXIT_USAGE;

  secret_read(worker);
  /* The impulse_log channel stays out of anything the function executes. */
  if (worker->log_fd >= 0) {
    int flags = fcntl(worker->log_fd, F_GETFD);
    if (flags < 0)
      worker->log_fd = -1;
    else
      fcntl(worker->log_fd, F_SETFD, flags | FD_CLOEXEC);
  }

  /* Into the sandbox before anything else: in userns mode this process
   * stays outside as the reaper and only the sandboxed child returns. A
   * worker that cannot enter it never takes a function. */
  char why[256], none[65];
  worker->sandbox.die_with_parent =
      worker->grace_ms == 0 || worker->secret[0] == '\0';
  if (imp_wk_sandbox_enter(&worker->sandbox, why, sizeof why) != 0) {
    IMP_LOG(IMP_LOG_ERROR, "%s: cannot enter its %s sandbox: %s", worker->label,
            worker->sandbox.mode, why);
    return IMP_WORKER_EXIT_SANDBOX;
  }
  tsan_report_fd();

  /* Confined from the start, a warm-pool worker too, and with OpenSSL's
   * first-use set-up (2 ms) done: both stay off the path of a cold call,
   * whose Load then only checks and copies the artifact. A failure here
   * is reported again by every Load, which refuses to run a function. */
  imp_sha256_hex("", 0, none);
  if (imp_wk_confine(strcmp(worker->sandbox.mode, "userns") == 0, why,
                     sizeof why) != 0)
    IMP_LOG(IMP_LOG_ERROR, "%s: cannot confine itself: %s", worker->label, why);

  /* Without a grace period (or a secret to re-attach with) the worker
   * ends with its server: a handler stuck on the I/O thread would never
   * see the connection close. With one, it outlives a server crash and
   * waits --grace-ms for the restarted server to attach. */
  if (worker->sandbox.die_with_parent &&
      strcmp(worker->sandbox.mode, "userns") != 0) {
    pid_t parent = getppid();
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent || parent == 1) return IMP_WORKER_EXIT_ORPHAN;
  }

  worker->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (worker->wake_fd < 0) {
    IMP_LOG(IMP_LOG_ERROR, "%s: eventfd: %s", worker->label, strerror(errno));
    return IMP_WORKER_EXIT_ORPHAN;
  }
  pthread_mutex_init(&worker->lock, NULL);
  pthread_cond_init(&worker->jobs_cond, NULL);
  imp_wk_wake_fd_set(worker->wake_fd);
  void *altstack = imp_wk_altstack_install();
  imp_wk_signals_install();

  /* The server connects right after spawning; if it never does, do not
   * linger forever. */
  worker->orphan_deadline_ms =
      imp_now_ms() + (worker->grace_ms > FIRST_CONNECT_MS ? worker->grace_ms
                                                          : FIRST_CONNECT_MS);
  IMP_LOG(IMP_LOG_DEBUG, "%s: started, listening on fd %d", worker->label,
          worker->listen_fd);
  rc = imp_wk_run(worker);
  rc = worker_shutdown(worker, rc);
  imp_wk_altstack_free(altstack);
  return rc;
}
