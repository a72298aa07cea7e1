/*
 * The fleet: worker processes, their connections, the warm pool (see
 * instance.h for what it reports, and how).
 *
 * A worker is spawned with a listening UNIX socket the server made (fd 3);
 * the server connects right away, so there is no start-up race. The worker
 * is generic until a Load specialises it. Its death is known when both the
 * process exit and the end of its connection have been seen: replies that
 * the worker wrote before dying are read before the in-flight calls are
 * failed.
 *
 * With --worker-grace (default 60 s) a worker outlives a crash of its
 * server: each worker has a stored InstanceRecord (id, pid, socket, a
 * random secret passed in its environment) written when it starts and
 * deleted when it ends. A restarted server opens every recorded process
 * with pidfd_open() (exit notification and signals without pid reuse
 * races, for a process that is not its child), connects to its socket and
 * sends Attach{id, secret}; the worker answers with what it has loaded and
 * serves on. A worker no server attaches to within the grace period exits.
 */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "server/fleet/instance.h"
#include "server/fleet/output.h"

#include "core/codec.h"
#include "policy/blame.h"
#include "policy/pipeline.h"

typedef struct spawn_ctx_s {
  uv_connect_t req;
  imp_instance_t *inst;
} spawn_ctx_t;

const char *imp_instance_state_name(imp_inst_state_t state) {
  static const char *names[] = {"starting", "generic",  "loading",
                                "ready",    "draining", "dead"};
  return state <= IMP_INST_DEAD ? names[state] : "unknown";
}

/* ---- stored records ------------------------------------------------------ */

static size_t record_key(uint64_t id, char *k) {
  for (int i = 0; i < 8; i++) k[i] = (char)(id >> (56 - 8 * i));
  return 8;
}

/* Written without fsync: a record must survive a kill -9 of the server
 * (the bytes are in the kernel), and after a machine crash the workers are
 * gone anyway. */
static void record_put(imp_instance_t *inst) {
  imp_fleet_t *fleet = inst->fleet;
  Impulse__InstanceRecord r = IMPULSE__INSTANCE_RECORD__INIT;
  r.id = inst->id;
  if (inst->state == IMP_INST_READY && inst->loaded_name[0]) {
    r.function = inst->loaded_name;
    r.has_version = 1;
    r.version = inst->version;
  }
  r.has_pid = r.has_started_ms = r.has_secret = 1;
  r.pid = inst->pid;
  r.socket = inst->socket_path;
  r.started_ms = imp_wall_ms();
  r.secret.data = (uint8_t *)inst->secret;
  r.secret.len = strlen(inst->secret);
  char k[8];
  imp_batch_t *b = imp_batch_new();
  char err[256];
  if (imp_batch_put_msg(b, fleet->store, IMP_CF_INSTANCES, k,
                        record_key(inst->id, k), &r.base) != 0 ||
      imp_store_write(fleet->store, b, 0, err, sizeof err) != 0)
    IMP_LOG(IMP_LOG_WARN, "instance %llu: cannot store its record",
            (unsigned long long)inst->id);
  imp_batch_free(b);
}

static void record_delete(imp_instance_t *inst) {
  imp_fleet_t *fleet = inst->fleet;
  char k[8], err[256];
  imp_batch_t *b = imp_batch_new();
  imp_batch_delete(b, fleet->store, IMP_CF_INSTANCES, k,
                   record_key(inst->id, k));
  if (imp_store_write(fleet->store, b, 0, err, sizeof err) != 0)
    IMP_LOG(IMP_LOG_WARN, "instance %llu: cannot delete its record: %s",
            (unsigned long long)inst->id, err);
  imp_batch_free(b);
}

void imp_instance_signal(imp_instance_t *inst, int sig) {
  if (inst->exited) return;
  if (inst->adopted) {
    if (inst->pidfd >= 0) pidfd_send_signal(inst->pidfd, sig, NULL, 0);
  } else {
    uv_process_kill(&inst->proc, sig);
  }
}

static void inst_unlink(imp_instance_t *inst) {
  inst->prev->next = inst->next;
  inst->next->prev = inst->prev;
  inst->next = inst->prev = inst;
  inst->fleet->ninstances--;
}

static void env_free(char **env, size_t n) {
  for (size_t i = 0; i < n; i++) free(env[i]);
  free(env);
}

/* A copy of n "KEY=VALUE" entries, or NULL without memory. */
static char **env_dup(char **env, size_t n) {
  char **copy = calloc(n ? n : 1, sizeof *copy);
  for (size_t i = 0; copy != NULL && i < n; i++)
    if ((copy[i] = strdup(env[i])) == NULL) {
      env_free(copy, i);
      copy = NULL;
    }
  return copy;
}

static void inst_handle_closed(imp_instance_t *inst) {
  if (--inst->handles_open > 0) return;
  free(inst->slots);
  free(inst->free_slots);
  free(inst->pending_path);
  env_free(inst->pending_env, inst->pending_nenv);
  if (inst->output) imp_output_release(inst->output);
  free(inst);
}

static void on_proc_closed(uv_handle_t *h) {
  imp_instance_t *inst = IMP_CONTAINER_OF(h, imp_instance_t, proc);
  inst_handle_closed(inst);
}

static void on_pidpoll_closed(uv_handle_t *h) {
  imp_instance_t *inst = IMP_CONTAINER_OF(h, imp_instance_t, pidpoll);
  close(inst->pidfd);
  inst->pidfd = -1;
  inst_handle_closed(inst);
}

static void on_conn_closed(imp_conn_t *conn) {
  inst_handle_closed((imp_instance_t *)conn->data);
}

/* Both the exit and the end of the connection have been seen. */
/* The calls the instance carried and never answered get their end, each
 * with the blame it deserves (policy/blame.h). */
static void fail_slots(imp_instance_t *inst, int code, const char *message) {
  int named = inst->crash_named;
  char unrun[600];
  snprintf(unrun, sizeof unrun,
           "the call did not run: its instance ended before it started (%s)",
           message);
  for (uint32_t i = 0; i < inst->nslots; i++) {
    imp_sent_t *sent = inst->slots[i];
    if (sent == NULL) continue;
    inst->slots[i] = NULL;
    inst->free_slots[inst->nfree++] = i;
    imp_dispatch_release(&inst->d);
    sent->instance = NULL;
    int c =
        imp_blame(code, named, inst->crashed_gen, (uint32_t)(sent->wid >> 32));
    sent->done(sent, c, c == code ? message : unrun, NULL, 0);
  }
}

static void inst_finish(imp_instance_t *inst) {
  imp_fleet_t *fleet = inst->fleet;
  int code = IMPULSE__ERROR_CODE__CRASHED;
  char msg[256];
  int killed_by_us = inst->stop_when_drained || fleet->stopping;
  /* The kernel's OOM killer (a cgroup's limit) kills with SIGKILL. */
  int oom_killed = inst->term_signal == SIGKILL && !killed_by_us &&
                   imp_isolate_oom_killed(&fleet->iso, inst->id);
  if (oom_killed ||
      (inst->exit_status == IMP_WORKER_EXIT_OOM && inst->term_signal == 0)) {
    code = IMPULSE__ERROR_CODE__OUT_OF_MEMORY;
    unsigned mb = inst->memory_mb;
    snprintf(msg, sizeof msg,
             "function exceeded its memory limit of %u MB; instance %llu was "
             "replaced",
             mb, (unsigned long long)inst->id);
  } else if (inst->validate_only && inst->term_signal) {
    snprintf(msg, sizeof msg, "killed by signal %d (%s)", inst->term_signal,
             strsignal(inst->term_signal));
  } else if (inst->term_signal && !killed_by_us) {
    snprintf(msg, sizeof msg,
             "function crashed: instance %llu (pid %d) was killed by signal %d "
             "(%s) and was replaced",
             (unsigned long long)inst->id, inst->pid, inst->term_signal,
             strsignal(inst->term_signal));
  } else if (killed_by_us) {
    code = IMPULSE__ERROR_CODE__UNAVAILABLE;
    snprintf(msg, sizeof msg, "instance %llu was stopped",
             (unsigned long long)inst->id);
  } else {
    snprintf(msg, sizeof msg,
             "function crashed: instance %llu (pid %d) exited with status %lld "
             "and was replaced",
             (unsigned long long)inst->id, inst->pid,
             (long long)inst->exit_status);
  }
  if (inst->exit_status == IMP_WORKER_EXIT_SANDBOX && inst->term_signal == 0)
    snprintf(msg, sizeof msg,
             "instance %llu could not enter its sandbox (see the log)",
             (unsigned long long)inst->id);
  imp_inst_state_t was = inst->state;
  inst->state = IMP_INST_DEAD;
  imp_isolate_remove(&fleet->iso, inst->id);
  if (inst->socket_path[0]) unlink(inst->socket_path);
  record_delete(inst);
  IMP_LOG(
      was == IMP_INST_GENERIC || killed_by_us ? IMP_LOG_DEBUG : IMP_LOG_WARN,
      "instance %llu (pid %d, %s%s) ended: %s", (unsigned long long)inst->id,
      inst->pid,
      inst->owned && inst->loaded_name[0] ? inst->loaded_name : "generic",
      inst->validate_only ? ", validation" : "", msg);
  inst_unlink(inst);
  /* Callers told below may call again at once: not onto this instance. */
  inst->d.ready = 0;
  fail_slots(inst, code, msg);
  fleet->ops->gone(fleet->owner, inst, code, msg);
  if (!inst->conn.closing) imp_conn_close(&inst->conn, 0);
  imp_fleet_refill_later(fleet);
}

static void on_proc_exit(uv_process_t *proc, int64_t status, int sig) {
  imp_instance_t *inst = IMP_CONTAINER_OF(proc, imp_instance_t, proc);
  inst->exited = 1;
  inst->exit_status = status;
  inst->term_signal = sig;
  uv_close((uv_handle_t *)proc, on_proc_closed);
  if (inst->eof) inst_finish(inst);
}

static void on_pid_exit(uv_poll_t *poll, int status, int events);

/* An adopted process that did not prove it is our worker (no listener on
 * its socket, or a refused Attach: its pid may have been reused): it is
 * forgotten, never signalled. */
static void adopt_abandon(imp_instance_t *inst) {
  if (!inst->exited) {
    inst->exited = 1;
    inst->exit_status = -1;
    uv_poll_stop(&inst->pidpoll);
    uv_close((uv_handle_t *)&inst->pidpoll, on_pidpoll_closed);
  }
  inst->stop_when_drained = 1;
}

#define EXIT_WAIT_MS 100u

static void on_exit_wait(uv_timer_t *t) {
  imp_fleet_t *fleet = t->data;
  uint64_t now = imp_now_ms();
  int waiting = 0;
  for (imp_instance_t *i = fleet->instances.next; i != &fleet->instances;
       i = i->next) {
    if (i->eof_ms == 0 || i->exited) continue;
    if (now - i->eof_ms >= EXIT_WAIT_MS) {
      i->eof_ms = 0;
      imp_instance_signal(i, SIGKILL);
    } else {
      waiting = 1;
    }
  }
  if (!waiting) uv_timer_stop(t);
}

static void on_conn_error(imp_conn_t *conn, int err) {
  imp_instance_t *inst = conn->data;
  if (inst->eof) return;
  inst->eof = 1;
  if (inst->adopted && !inst->verified) {
    IMP_LOG(IMP_LOG_INFO, "instance %llu (pid %d) of the previous run is gone",
            (unsigned long long)inst->id, inst->pid);
    adopt_abandon(inst);
    inst_finish(inst);
    return;
  }
  if (err != 0 && err != UV_EOF)
    IMP_LOG(IMP_LOG_DEBUG, "instance %llu connection: %s",
            (unsigned long long)inst->id,
            err < IMP_EBASE + 1 ? imp_strerror(err) : uv_strerror(err));
  if (!inst->exited) {
    /* A dying worker's connection often ends just before its process is
     * seen to exit (a sandboxed one's reaper needs a moment to report how
     * its child died): killed only if it is still there a little later.
     * A worker that hung up or broke the protocol cannot be trusted. */
    imp_fleet_t *fleet = inst->fleet;
    inst->eof_ms = imp_now_ms();
    if (!uv_is_active((uv_handle_t *)&fleet->exit_timer))
      uv_timer_start(&fleet->exit_timer, on_exit_wait, EXIT_WAIT_MS,
                     EXIT_WAIT_MS);
    return;
  }
  inst_finish(inst);
}

static void check_drained(imp_instance_t *inst) {
  if (inst->state != IMP_INST_DRAINING) return;
  if (inst->d.outstanding > inst->timed_out_calls) return;
  if (inst->stop_when_drained || inst->timed_out_calls > 0) {
    imp_instance_kill(inst);
  } else if (inst->reload_when_drained) {
    inst->reload_when_drained = 0;
    inst->fleet->ops->drained(inst->fleet->owner, inst);
  }
}

/* Replies to Load, and anything that is not the answer to a call. */
static void on_frame(imp_conn_t *conn, Impulse__Envelope *env, const char *body,
                     size_t len) {
  imp_instance_t *inst = conn->data;
  imp_fleet_t *fleet = inst->fleet;
  (void)body;
  (void)len;
  if (inst->attach_wid != 0 && env->id == inst->attach_wid) {
    inst->attach_wid = 0;
    if (env->body_case == IMPULSE__ENVELOPE__BODY_ATTACH_OK) {
      const Impulse__AttachResponse *a = env->attach_ok;
      inst->verified = 1;
      IMP_LOG(IMP_LOG_INFO, "instance %llu (pid %d, %s) re-attached",
              (unsigned long long)inst->id, inst->pid,
              a->function ? a->function : "generic");
      fleet->ops->attached(fleet->owner, inst, a->function,
                           a->has_version ? a->version : 0);
    } else {
      IMP_LOG(
          IMP_LOG_WARN, "instance %llu (pid %d) refused to attach: %s",
          (unsigned long long)inst->id, inst->pid,
          env->body_case == IMPULSE__ENVELOPE__BODY_ERROR && env->error->message
              ? env->error->message
              : "unexpected answer");
      imp_conn_close(&inst->conn, 0); /* not verified: forgotten (above) */
    }
  } else if (inst->load_wid != 0 && env->id == inst->load_wid) {
    inst->load_wid = 0;
    int ok = env->body_case == IMPULSE__ENVELOPE__BODY_LOAD_OK;
    int code = ok ? 0 : IMPULSE__ERROR_CODE__INVALID_ARTIFACT;
    const char *msg = "unexpected reply to Load";
    if (env->body_case == IMPULSE__ENVELOPE__BODY_ERROR) {
      code = env->error->code;
      msg = env->error->message ? env->error->message : "load failed";
    }
    IMP_LOG(IMP_LOG_DEBUG,
            "instance %llu: Load answered in %llu us (%llu us in the worker)",
            (unsigned long long)inst->id,
            (unsigned long long)((imp_now_ns() - inst->load_sent_ns) / 1000u),
            (unsigned long long)(ok && env->load_ok->has_load_us
                                     ? env->load_ok->load_us
                                     : 0));
    if (ok && !inst->validate_only) {
      inst->state = IMP_INST_READY;
      inst->ready_ms = inst->idle_since_ms = imp_now_ms();
      record_put(inst); /* with its function, for a restarted server */
    }
    fleet->ops->loaded(fleet->owner, inst, code, ok ? NULL : msg);
  } else if (env->body_case == IMPULSE__ENVELOPE__BODY_ERROR) {
    IMP_LOG(IMP_LOG_WARN, "instance %llu reports: %s",
            (unsigned long long)inst->id,
            env->error->message ? env->error->message : "?");
  }
  impulse__envelope__free_unpacked(env, NULL);
}

/* Answers to calls are forwarded to the caller without a decode: only the id
 * is rewritten (see imp_envelope_split_id). */
static int on_raw(imp_conn_t *conn, const char *body, size_t len) {
  imp_instance_t *inst = conn->data;
  uint64_t id;
  size_t off;
  if (imp_envelope_split_id(body, len, &id, &off) != 0) return 0;
  if (inst->load_wid != 0 && id == inst->load_wid) return 0;
  uint32_t slot = (uint32_t)(id & 0xffffffffu);
  imp_sent_t *sent = slot < inst->nslots ? inst->slots[slot] : NULL;
  if (sent == NULL || sent->wid != id) return 0;
  if (len > off && (unsigned char)body[off] == IMP_TAG_ERROR &&
      imp_answer_code(body + off, len - off) == IMPULSE__ERROR_CODE__CRASHED) {
    /* Not an answer: a worker never answers CRASHED. Its crash handler
     * names the call it was running, after writing every reply before it
     * (worker.c, crash_flush_arm()); the call stays in its slot until the
     * worker's end is seen (fail_slots()). */
    inst->crash_named = 1;
    inst->crashed_gen = (uint32_t)(id >> 32);
    return 1;
  }
  inst->slots[slot] = NULL;
  inst->free_slots[inst->nfree++] = slot;
  imp_dispatch_release(&inst->d);
  inst->served++;
  if (inst->d.outstanding == 0) inst->idle_since_ms = imp_now_ms();
  sent->instance = NULL;
  if (sent->timed_out) inst->timed_out_calls--;
  sent->done(sent, 0, NULL, body + off, len - off);
  if (inst->state == IMP_INST_DRAINING) check_drained(inst);
  return 1;
}

static void send_pending(imp_instance_t *inst);

static void on_connect(uv_connect_t *req, int status) {
  spawn_ctx_t *sc = IMP_CONTAINER_OF(req, spawn_ctx_t, req);
  imp_instance_t *inst = sc->inst;
  free(sc);
  if (status < 0) {
    IMP_LOG(IMP_LOG_ERROR, "instance %llu: connect to %s: %s",
            (unsigned long long)inst->id, inst->socket_path,
            uv_strerror(status));
    inst->conn.closing = 1;
    uv_close((uv_handle_t *)&inst->conn.h.pipe, NULL);
    inst_handle_closed(inst);
    on_conn_error(&inst->conn, status);
    return;
  }
  int rc =
      imp_conn_start(&inst->conn, inst->fleet->cl, inst->fleet->cfg->max_frame);
  if (rc != 0) {
    on_conn_error(&inst->conn, rc);
    return;
  }
  send_pending(inst);
}

/* Called once connected: do what was asked while the worker was starting. */
static void send_pending(imp_instance_t *inst) {
  if (inst->state != IMP_INST_STARTING) return;
  if (inst->adopted) {
    Impulse__Envelope env = IMPULSE__ENVELOPE__INIT;
    Impulse__AttachRequest a = IMPULSE__ATTACH_REQUEST__INIT;
    a.instance_id = inst->id;
    a.secret.data = (uint8_t *)inst->secret;
    a.secret.len = strlen(inst->secret);
    env.id = ((uint64_t)++inst->gen << 32) | 0xffffffffu;
    env.body_case = IMPULSE__ENVELOPE__BODY_ATTACH;
    env.attach = &a;
    inst->attach_wid = env.id;
    if (imp_conn_send(&inst->conn, &env) != 0) imp_instance_kill(inst);
    return;
  }
  if (inst->validate_only && inst->pending_path) {
    char *path = inst->pending_path, **env = inst->pending_env;
    size_t nenv = inst->pending_nenv;
    inst->pending_path = NULL;
    inst->pending_env = NULL;
    inst->pending_nenv = 0;
    inst->state = IMP_INST_GENERIC;
    imp_instance_validate(inst, path, inst->pending_sha, inst->pending_name,
                          env, nenv);
    free(path);
    env_free(env, nenv);
  } else {
    inst->state = IMP_INST_GENERIC;
    inst->fleet->ops->connected(inst->fleet->owner, inst);
  }
}

/* The instance's process (or pidfd) handle is open: opens the connection
 * to its socket (on_connect goes on) and puts it in the fleet's list. */
static void inst_connect(imp_instance_t *inst) {
  imp_fleet_t *fleet = inst->fleet;
  inst->handles_open = 2;
  uv_pipe_init(fleet->loop, &inst->conn.h.pipe, 0);
  inst->conn.data = inst;
  inst->conn.on_frame = on_frame;
  inst->conn.on_raw = on_raw;
  inst->conn.on_error = on_conn_error;
  inst->conn.on_closed = on_conn_closed;
  spawn_ctx_t *sc = malloc(sizeof *sc);
  if (sc == NULL) abort();
  sc->inst = inst;
  uv_pipe_connect(&sc->req, &inst->conn.h.pipe, inst->socket_path, on_connect);
  inst->next = &fleet->instances;
  inst->prev = fleet->instances.prev;
  fleet->instances.prev->next = inst;
  fleet->instances.prev = inst;
  fleet->ninstances++;
}

/* The worker's stdout, stderr and impulse_log channel as pipes into its
 * function's log (output.h) instead of the server's stderr: swaps their
 * stdio entries and adds --log-fd. Without a log table (fleet->logs NULL)
 * nothing changes. 0 or a negative errno (logged). */
static int output_pipes(imp_instance_t *inst, uv_stdio_container_t *stdio,
                        char **args, uv_process_options_t *opts) {
  imp_fleet_t *fleet = inst->fleet;
  if (fleet->logs == NULL) return 0;
  int rc =
      imp_output_new(fleet->loop, fleet->logs, inst->id, stdio, &inst->output);
  if (rc != 0) {
    IMP_LOG(IMP_LOG_ERROR, "worker output pipes: %s", uv_strerror(rc));
    return rc;
  }
  opts->stdio_count = IMP_OUTPUT_LOG_FD + 1;
  size_t n = 0;
  while (args[n] != NULL) n++;
  args[n] = "--log-fd";
  args[n + 1] = IMP_OUTPUT_LOG_FD_STR;
  return 0;
}

static void on_spawn_failed_closed(uv_handle_t *h) {
  free(IMP_CONTAINER_OF(h, imp_instance_t, proc));
}

imp_instance_t *imp_instance_spawn(imp_fleet_t *fleet, int owned) {
  imp_instance_t *inst = calloc(1, sizeof *inst);
  if (inst == NULL) return NULL;
  int fd = -1, proc_closing = 0, secret_pipe[2] = {-1, -1};
  inst->fleet = fleet;
  inst->owned = owned;
  inst->id = ++fleet->next_instance_id;
  inst->state = IMP_INST_STARTING;
  inst->pidfd = -1;
  inst->started_ms = imp_now_ms();
  inst->d.index = (size_t)-1;
  int n =
      snprintf(inst->socket_path, sizeof inst->socket_path, "%s/w-%llu.sock",
               fleet->run_dir, (unsigned long long)inst->id);
  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  if (n < 0 || (size_t)n >= sizeof sa.sun_path) {
    IMP_LOG(IMP_LOG_ERROR, "socket path too long: %s", inst->socket_path);
    goto fail;
  }
  memcpy(sa.sun_path, inst->socket_path, (size_t)n + 1);
  unlink(inst->socket_path);
  fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0 ||
      listen(fd, 16) != 0) {
    IMP_LOG(IMP_LOG_ERROR, "worker socket %s: %s", inst->socket_path,
            strerror(errno));
    goto fail;
  }

  const imp_config_t *cfg = fleet->cfg;
  char idbuf[32], framebuf[32], gracebuf[32], uidbuf[32], tmpbuf[32],
      fdsbuf[32], procsbuf[32];
  snprintf(idbuf, sizeof idbuf, "%llu", (unsigned long long)inst->id);
  /* A Load carries the artifact: room for it and the rest of the Load. */
  snprintf(framebuf, sizeof framebuf, "%zu", cfg->max_frame + (128u << 10));
  snprintf(gracebuf, sizeof gracebuf, "%u", cfg->worker_grace_ms);
  unsigned uid = imp_isolate_uid(cfg, inst->id);
  snprintf(uidbuf, sizeof uidbuf, "%u", uid);
  snprintf(tmpbuf, sizeof tmpbuf, "%u", cfg->instance_tmp_mb);
  snprintf(fdsbuf, sizeof fdsbuf, "%u", cfg->instance_max_fds);
  snprintf(procsbuf, sizeof procsbuf, "%u", cfg->instance_max_procs);
  static const char *levels[] = {"error", "warn", "info", "debug"};
  char *args[32] = {fleet->worker_exe,
                    "worker",
                    "--listen-fd",
                    "3",
                    "--secret-fd",
                    "4",
                    "--id",
                    idbuf,
                    "--max-frame",
                    framebuf,
                    "--grace-ms",
                    gracebuf,
                    "--log-level",
                    (char *)levels[imp_log_level & 3],
                    "--sandbox",
                    fleet->iso.mode,
                    "--tmp-mb",
                    tmpbuf,
                    "--max-fds",
                    fdsbuf,
                    "--hide",
                    (char *)cfg->state_dir};
  size_t nargs = 22;
  if (uid != 0) {
    /* Per-uid process counts mean something only for a uid of its own. */
    args[nargs++] = "--sandbox-uid";
    args[nargs++] = uidbuf;
    args[nargs++] = "--max-procs";
    args[nargs++] = procsbuf;
  }
  args[nargs] = NULL;
  if (imp_isolate_create(&fleet->iso, inst->id, cfg->default_memory_mb,
                         cfg->instance_max_procs, &inst->limits) != 0)
    IMP_LOG(IMP_LOG_WARN, "instance %llu: cannot create its cgroup",
            (unsigned long long)inst->id);
  /* The re-attach secret goes through a pipe the worker reads once at
   * start: in the environment or on the command line, any process of the
   * same user could read it in /proc. */
  unsigned char raw[16];
  if (getrandom(raw, sizeof raw, 0) != (ssize_t)sizeof raw) {
    IMP_LOG(IMP_LOG_ERROR, "getrandom: %s", strerror(errno));
    goto fail;
  }
  for (size_t i = 0; i < sizeof raw; i++)
    snprintf(inst->secret + 2 * i, 3, "%02x", raw[i]);
  /* Written once the worker is in its cgroup (below): it reads the
   * secret before anything else, so it cannot start a process outside. */
  if (pipe2(secret_pipe, O_CLOEXEC) != 0) {
    IMP_LOG(IMP_LOG_ERROR, "worker secret pipe: %s", strerror(errno));
    goto fail;
  }
  _Static_assert(IMP_WORKER_TSAN_FD == IMP_OUTPUT_LOG_FD + 1,
                 "the race report fd follows the impulse_log channel");
  uv_stdio_container_t stdio[IMP_OUTPUT_LOG_FD + 2];
  stdio[0].flags = UV_IGNORE;
  stdio[1].flags = UV_INHERIT_FD; /* workers never print to stdout */
  stdio[1].data.fd = 2;
  stdio[2].flags = UV_INHERIT_FD;
  stdio[2].data.fd = 2;
  stdio[3].flags = UV_INHERIT_FD;
  stdio[3].data.fd = fd;
  stdio[4].flags = UV_INHERIT_FD;
  stdio[4].data.fd = secret_pipe[0];
  /* Nothing of the server's environment (Kafka credentials, tokens) reaches
   * a worker; only the sanitizers' options, so that instrumented builds
   * behave as configured. */
  extern char **environ;
  static const char *const keep[] = {
      "ASAN_OPTIONS=", "UBSAN_OPTIONS=", "LSAN_OPTIONS=", "TSAN_OPTIONS="};
  enum { NKEEP = sizeof keep / sizeof keep[0] };
  char *env[NKEEP + 1];
  size_t k = 0;
  for (char **e = environ; *e != NULL && k < NKEEP; e++)
    for (size_t i = 0; i < NKEEP; i++)
      if (strncmp(*e, keep[i], strlen(keep[i])) == 0) env[k++] = *e;
  env[k] = NULL;
  uv_process_options_t opts = {0};
  opts.env = env;
  opts.file = fleet->worker_exe;
  /* impulse-worker takes the flags directly; `impulse` needs "worker". */
  opts.args = fleet->worker_separate ? args + 1 : args;
  if (fleet->worker_separate) args[1] = fleet->worker_exe;
  opts.exit_cb = on_proc_exit;
  opts.stdio = stdio;
  opts.stdio_count = 5;
  if (output_pipes(inst, stdio, args, &opts) != 0) goto fail;
#if defined(IMPULSE_TSAN) || defined(__SANITIZE_THREAD__)
  /* Race reports of the worker into the server's log (core/codec.h). */
  if (opts.stdio_count < IMP_OUTPUT_LOG_FD + 1) {
    stdio[IMP_OUTPUT_LOG_FD].flags = UV_IGNORE;
  }
  stdio[IMP_WORKER_TSAN_FD].flags = UV_INHERIT_FD;
  stdio[IMP_WORKER_TSAN_FD].data.fd = 2;
  opts.stdio_count = IMP_WORKER_TSAN_FD + 1;
#endif
  int rc = uv_spawn(fleet->loop, &inst->proc, &opts);
  close(secret_pipe[0]);
  secret_pipe[0] = -1;
  if (inst->output) imp_output_start(inst->output, rc == 0);
  if (rc != 0) inst->output = NULL; /* freed by imp_output_start() */
  if (rc != 0) {
    IMP_LOG(IMP_LOG_ERROR, "spawn worker: %s", uv_strerror(rc));
    /* The handle was initialised: freed in its close callback, not here. */
    proc_closing = 1;
    uv_close((uv_handle_t *)&inst->proc, on_spawn_failed_closed);
    goto fail;
  }
  close(fd);
  fd = -1;
  inst->pid = inst->proc.pid;
  rc = imp_isolate_join(&fleet->iso, inst->id, inst->pid);
  if (rc != 0)
    IMP_LOG(IMP_LOG_WARN, "instance %llu: cannot join its cgroup: %s",
            (unsigned long long)inst->id, strerror(-rc));
  if (write(secret_pipe[1], inst->secret, strlen(inst->secret)) !=
      (ssize_t)strlen(inst->secret))
    IMP_LOG(IMP_LOG_ERROR, "worker secret pipe: %s", strerror(errno));
  close(secret_pipe[1]);
  secret_pipe[1] = -1;
  inst_connect(inst);
  record_put(inst);
  IMP_LOG(IMP_LOG_DEBUG, "instance %llu spawned (pid %d)",
          (unsigned long long)inst->id, inst->pid);
  return inst;
fail:
  if (fd >= 0) close(fd);
  for (int i = 0; i < 2; i++)
    if (secret_pipe[i] >= 0) close(secret_pipe[i]);
  imp_isolate_remove(&fleet->iso, inst->id);
  unlink(inst->socket_path);
  if (inst->handles_open == 0 && !proc_closing) free(inst);
  return NULL;
}

/* The artifact's bytes for a Load (a sandboxed worker cannot open the
 * file), read whole: at most the largest frame. NULL when unreadable; the
 * worker then reports the file it could not open. */
static uint8_t *artifact_read(const char *path, size_t max, size_t *len) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return NULL;
  struct stat st;
  uint8_t *buf = NULL;
  if (fstat(fd, &st) == 0 && st.st_size >= 0 && (size_t)st.st_size <= max)
    buf = malloc((size_t)st.st_size + 1);
  size_t got = 0;
  while (buf != NULL && got < (size_t)st.st_size) {
    ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      free(buf);
      buf = NULL;
      break;
    }
    got += (size_t)n;
  }
  close(fd);
  *len = got;
  return buf;
}

static int send_load(imp_instance_t *inst, const char *name, uint32_t version,
                     const char *path, const char *sha256, uint32_t concurrency,
                     uint32_t memory_mb, char **fn_env, size_t nenv,
                     const char *network, int validate_only) {
  Impulse__Envelope env = IMPULSE__ENVELOPE__INIT;
  Impulse__LoadRequest load = IMPULSE__LOAD_REQUEST__INIT;
  size_t artifact_len = 0;
  uint8_t *artifact =
      artifact_read(path, inst->fleet->cfg->max_frame, &artifact_len);
  if (artifact != NULL) {
    load.has_artifact = 1;
    load.artifact.data = artifact;
    load.artifact.len = artifact_len;
  }
  load.network = (char *)network;
  load.function = (char *)name;
  load.version = version;
  load.path = (char *)path;
  load.sha256 = (char *)sha256;
  load.has_concurrency = 1;
  load.concurrency = concurrency;
  load.has_memory_mb = 1;
  load.memory_mb = memory_mb;
  load.has_validate_only = 1;
  load.validate_only = validate_only;
  load.env = fn_env;
  load.n_env = nenv;
  env.id = ((uint64_t)++inst->gen << 32) | 0xffffffffu;
  env.body_case = IMPULSE__ENVELOPE__BODY_LOAD;
  env.load = &load;
  inst->load_wid = env.id;
  inst->state = IMP_INST_LOADING;
  int rc = imp_conn_send(&inst->conn, &env);
  free(artifact);
  return rc;
}

/* Sizes the call slots for what `load` asks (only reached with no call in
 * flight: generic, or drained). */
static void setup_slots(imp_instance_t *inst, const imp_load_t *load) {
  uint32_t conc = load->concurrency ? load->concurrency : 1;
  uint32_t slots = conc + IMP_PIPELINE_EXTRA(conc);
  if (slots != inst->nslots) {
    free(inst->slots);
    free(inst->free_slots);
    inst->slots = calloc(slots, sizeof *inst->slots);
    inst->free_slots = malloc(slots * sizeof *inst->free_slots);
    if (inst->slots == NULL || inst->free_slots == NULL) abort();
    inst->nslots = slots;
  }
  inst->nfree = 0;
  for (uint32_t i = slots; i > 0; i--) inst->free_slots[inst->nfree++] = i - 1;
  inst->d.extra = load->extra;
  inst->version = load->version;
  inst->memory_mb = load->memory_mb;
  snprintf(inst->loaded_name, sizeof inst->loaded_name, "%s", load->function);
  if (inst->output)
    imp_output_set_function(inst->output, load->function, load->version);
  inst->d.concurrency = conc;
  inst->d.version = load->version;
  inst->d.ready = 0;
}

int imp_instance_load(imp_instance_t *inst, const imp_load_t *load) {
  inst->owned = 1;
  if (inst->state == IMP_INST_STARTING) return 0; /* ops->connected */
  setup_slots(inst, load);
  inst->load_sent_ns = imp_now_ns();
  const imp_config_t *cfg = inst->fleet->cfg;
  unsigned procs = cfg->instance_max_procs;
  if (procs < inst->d.concurrency + 64) procs = inst->d.concurrency + 64;
  imp_isolate_limit(&inst->fleet->iso, inst->id, inst->pid, &inst->limits,
                    load->memory_mb, procs, load->cpu_millis);
  return send_load(inst, load->function, load->version, load->path,
                   load->sha256, inst->d.concurrency, load->memory_mb,
                   load->env, load->nenv, load->network, 0);
}

int imp_instance_validate(imp_instance_t *inst, const char *path,
                          const char *sha256, const char *name, char **env,
                          size_t nenv) {
  inst->validate_only = 1;
  inst->owned = 1;
  /* A validation runs the function's init: its output is the function's. */
  if (inst->output) imp_output_set_function(inst->output, name, 0);
  if (inst->state == IMP_INST_STARTING) {
    inst->pending_path = strdup(path);
    inst->pending_env = env_dup(env, nenv);
    inst->pending_nenv = nenv;
    snprintf(inst->pending_name, sizeof inst->pending_name, "%s", name);
    snprintf(inst->pending_sha, sizeof inst->pending_sha, "%s",
             sha256 ? sha256 : "");
    return inst->pending_path && inst->pending_env ? 0 : -ENOMEM;
  }
  inst->load_sent_ns = imp_now_ns();
  return send_load(inst, name, 0, path, sha256, 1, 0, env, nenv, NULL, 1);
}

int imp_instance_send(imp_instance_t *inst, imp_sent_t *sent, const char *rest,
                      size_t restlen) {
  if (inst->nfree == 0) return -EBUSY;
  uint32_t slot = inst->free_slots[--inst->nfree];
  sent->wid = ((uint64_t)++inst->gen << 32) | slot;
  int rc = imp_conn_send_with_id(&inst->conn, sent->wid, rest, restlen);
  if (rc != 0) {
    inst->free_slots[inst->nfree++] = slot;
    return rc;
  }
  inst->slots[slot] = sent;
  sent->instance = inst;
  sent->timed_out = 0;
  imp_dispatch_acquire(&inst->d);
  return 0;
}

void imp_instance_timed_out(imp_instance_t *inst, imp_sent_t *sent) {
  sent->timed_out = 1;
  inst->timed_out_calls++;
  if (inst->state != IMP_INST_DEAD) {
    /* A hung handler holds a thread forever: let the others finish, then
     * replace the whole process. */
    inst->state = IMP_INST_DRAINING;
    inst->d.ready = 0;
    inst->stop_when_drained = 1;
    check_drained(inst);
  }
}

void imp_instance_retire(imp_instance_t *inst) {
  inst->stop_when_drained = 1;
  inst->d.ready = 0;
  if (inst->state != IMP_INST_DEAD) inst->state = IMP_INST_DRAINING;
  if (inst->d.outstanding == 0 || inst->load_wid) imp_instance_kill(inst);
}

void imp_instance_kill(imp_instance_t *inst) {
  inst->stop_when_drained = 1;
  inst->d.ready = 0;
  imp_instance_signal(inst, SIGKILL);
}

static int is_pool_member(const imp_instance_t *inst) {
  return !inst->owned && !inst->validate_only && !inst->stop_when_drained &&
         (inst->state == IMP_INST_STARTING || inst->state == IMP_INST_GENERIC);
}

unsigned imp_fleet_warm(const imp_fleet_t *fleet) {
  unsigned n = 0;
  for (const imp_instance_t *i = fleet->instances.next; i != &fleet->instances;
       i = i->next)
    if (is_pool_member(i) && i->state == IMP_INST_GENERIC) n++;
  return n;
}

imp_instance_t *imp_instance_take_generic(imp_fleet_t *fleet) {
  for (imp_instance_t *i = fleet->instances.next; i != &fleet->instances;
       i = i->next)
    if (is_pool_member(i) && i->state == IMP_INST_GENERIC) {
      i->owned = 1;
      return i;
    }
  return NULL;
}

void imp_fleet_fill_pool(imp_fleet_t *fleet) {
  if (fleet->stopping) return;
  unsigned have = 0;
  for (imp_instance_t *i = fleet->instances.next; i != &fleet->instances;
       i = i->next)
    if (is_pool_member(i)) have++;
  while (have < fleet->cfg->warm_pool) {
    if (imp_instance_spawn(fleet, 0) == NULL) break;
    have++;
  }
}

static int instance_live(void *arg, uint64_t id) {
  imp_fleet_t *fleet = arg;
  for (imp_instance_t *i = fleet->instances.next; i != &fleet->instances;
       i = i->next)
    if (i->id == id) return 1;
  return 0;
}

static void on_refill(uv_timer_t *t) {
  imp_fleet_t *fleet = t->data;
  imp_isolate_sweep(&fleet->iso, instance_live, fleet);
  imp_fleet_fill_pool(fleet);
}

void imp_fleet_refill_later(imp_fleet_t *fleet) {
  /* A process start is a fork() of the server, which stalls the loop for
   * milliseconds: never do it on the path of a call that is waiting. */
  if (fleet->stopping || uv_is_active((uv_handle_t *)&fleet->pool_timer))
    return;
  uv_timer_start(&fleet->pool_timer, on_refill, 50, 0);
}

void imp_fleet_init(imp_fleet_t *fleet, uv_loop_t *loop, imp_conn_loop_t *cl,
                    imp_store_t *store, const imp_config_t *cfg,
                    const imp_fleet_ops_t *ops, void *owner) {
  fleet->loop = loop;
  fleet->cl = cl;
  fleet->store = store;
  fleet->cfg = cfg;
  fleet->ops = ops;
  fleet->owner = owner;
  fleet->instances.next = fleet->instances.prev = &fleet->instances;
  uv_timer_init(loop, &fleet->pool_timer);
  fleet->pool_timer.data = fleet;
  uv_unref((uv_handle_t *)&fleet->pool_timer);
  uv_timer_init(loop, &fleet->exit_timer);
  fleet->exit_timer.data = fleet;
}

void imp_fleet_stop(imp_fleet_t *fleet) {
  if (fleet->stopping) return;
  fleet->stopping = 1;
  uv_close((uv_handle_t *)&fleet->pool_timer, NULL);
  uv_close((uv_handle_t *)&fleet->exit_timer, NULL);
}

void imp_fleet_signal_all(imp_fleet_t *fleet, int sig) {
  for (imp_instance_t *i = fleet->instances.next; i != &fleet->instances;
       i = i->next)
    imp_instance_signal(i, sig);
}

/* ---- adoption of workers a previous server started ----------------------- */

static void on_pid_exit(uv_poll_t *poll, int status, int events) {
  imp_instance_t *inst = IMP_CONTAINER_OF(poll, imp_instance_t, pidpoll);
  (void)status;
  (void)events;
  /* Not our child: its exit status is not ours to read. */
  inst->exited = 1;
  inst->exit_status = -1;
  uv_poll_stop(poll);
  uv_close((uv_handle_t *)poll, on_pidpoll_closed);
  if (inst->eof) inst_finish(inst);
}

imp_instance_t *imp_instance_adopt(imp_fleet_t *fleet,
                                   const Impulse__InstanceRecord *rec) {
  if (!rec->has_pid || rec->pid <= 0 || rec->socket == NULL ||
      !rec->has_secret || rec->secret.len == 0 ||
      rec->secret.len >= sizeof((imp_instance_t *)0)->secret)
    return NULL;
  struct sockaddr_un sa;
  if (strlen(rec->socket) >= sizeof sa.sun_path) return NULL;
  int pidfd = pidfd_open((pid_t)rec->pid, 0);
  if (pidfd < 0) return NULL; /* gone */
  imp_instance_t *inst = calloc(1, sizeof *inst);
  if (inst == NULL) {
    close(pidfd);
    return NULL;
  }
  inst->fleet = fleet;
  inst->id = rec->id;
  inst->state = IMP_INST_STARTING;
  inst->adopted = 1;
  inst->pidfd = pidfd;
  inst->pid = rec->pid;
  inst->started_ms = imp_now_ms();
  inst->d.index = (size_t)-1;
  snprintf(inst->socket_path, sizeof inst->socket_path, "%s", rec->socket);
  memcpy(inst->secret, rec->secret.data, rec->secret.len);
  inst->secret[rec->secret.len] = '\0';
  if (uv_poll_init(fleet->loop, &inst->pidpoll, pidfd) != 0) {
    close(pidfd);
    free(inst);
    return NULL;
  }
  uv_poll_start(&inst->pidpoll, UV_READABLE, on_pid_exit);
  inst_connect(inst);
  if (inst->id > fleet->next_instance_id) fleet->next_instance_id = inst->id;
  return inst;
}

void imp_instance_adopted_ready(imp_instance_t *inst, const imp_load_t *load) {
  setup_slots(inst, load);
  inst->state = IMP_INST_READY;
  inst->ready_ms = inst->idle_since_ms = imp_now_ms();
}
