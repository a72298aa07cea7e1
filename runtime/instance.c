/*
 * Instance manager: worker processes, their connections, the warm pool.
 *
 * A worker is spawned with a listening UNIX socket the server made (fd 3);
 * the server connects right away, so there is no start-up race. The worker
 * is generic until a Load specialises it. Its death is known when both the
 * process exit and the end of its connection have been seen: replies that
 * the worker wrote before dying are read before the in-flight calls are
 * failed.
 */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "server.h"
#include "worker.h"

typedef struct spawn_ctx_s {
  uv_connect_t req;
  imp_instance_t *inst;
} spawn_ctx_t;

const char *imp_instance_state_name(imp_inst_state_t state) {
  static const char *names[] = {"starting", "generic", "loading",
                                "ready", "draining", "dead"};
  return state <= IMP_INST_DEAD ? names[state] : "unknown";
}

static void inst_unlink(imp_instance_t *inst) {
  inst->prev->next = inst->next;
  inst->next->prev = inst->prev;
  inst->next = inst->prev = inst;
  inst->server->ninstances--;
}

static void inst_handle_closed(imp_instance_t *inst) {
  if (--inst->handles_open > 0) return;
  free(inst->slots);
  free(inst->free_slots);
  free(inst->pending_path);
  free(inst);
}

static void on_proc_closed(uv_handle_t *h) {
  imp_instance_t *inst = IMP_CONTAINER_OF(h, imp_instance_t, proc);
  inst_handle_closed(inst);
}

static void on_conn_closed(imp_conn_t *conn) {
  inst_handle_closed((imp_instance_t *)conn->data);
}

/* Both the exit and the end of the connection have been seen. */
static void inst_finish(imp_instance_t *inst) {
  imp_server_t *server = inst->server;
  int code = IMPULSE__ERROR_CODE__CRASHED;
  char msg[256];
  int killed_by_us = inst->stop_when_drained || server->stopping;
  if (inst->exit_status == IMP_WORKER_EXIT_OOM && inst->term_signal == 0) {
    code = IMPULSE__ERROR_CODE__OUT_OF_MEMORY;
    unsigned mb = server->cfg.default_memory_mb;
    if (inst->function && inst->function->rec->config &&
        inst->function->rec->config->has_memory_mb)
      mb = inst->function->rec->config->memory_mb;
    snprintf(msg, sizeof msg,
             "function exceeded its memory limit of %u MB; instance %llu was "
             "replaced", mb, (unsigned long long)inst->id);
  } else if (inst->validate_only && inst->term_signal) {
    snprintf(msg, sizeof msg, "killed by signal %d (%s)", inst->term_signal,
             strsignal(inst->term_signal));
  } else if (inst->term_signal && !killed_by_us) {
    snprintf(msg, sizeof msg,
             "function crashed: instance %llu (pid %d) was killed by signal %d "
             "(%s) and was replaced", (unsigned long long)inst->id, inst->pid,
             inst->term_signal, strsignal(inst->term_signal));
  } else if (killed_by_us) {
    code = IMPULSE__ERROR_CODE__UNAVAILABLE;
    snprintf(msg, sizeof msg, "instance %llu was stopped",
             (unsigned long long)inst->id);
  } else {
    snprintf(msg, sizeof msg,
             "function crashed: instance %llu (pid %d) exited with status %lld "
             "and was replaced", (unsigned long long)inst->id, inst->pid,
             (long long)inst->exit_status);
  }
  imp_inst_state_t was = inst->state;
  inst->state = IMP_INST_DEAD;
  if (inst->socket_path[0]) unlink(inst->socket_path);
  IMP_LOG(was == IMP_INST_GENERIC || killed_by_us ? IMP_LOG_DEBUG : IMP_LOG_WARN,
          "instance %llu (pid %d, %s%s) ended: %s", (unsigned long long)inst->id,
          inst->pid, inst->function ? inst->function->name : "generic",
          inst->validate_only ? ", validation" : "", msg);
  inst_unlink(inst);
  imp_controller_instance_gone(server, inst, code, msg);
  if (!inst->conn.closing) imp_conn_close(&inst->conn, 0);
  imp_instance_refill_later(server);
}

static void on_proc_exit(uv_process_t *proc, int64_t status, int sig) {
  imp_instance_t *inst = IMP_CONTAINER_OF(proc, imp_instance_t, proc);
  inst->exited = 1;
  inst->exit_status = status;
  inst->term_signal = sig;
  uv_close((uv_handle_t *)proc, on_proc_closed);
  if (inst->eof) inst_finish(inst);
}

static void on_conn_error(imp_conn_t *conn, int err) {
  imp_instance_t *inst = conn->data;
  if (inst->eof) return;
  inst->eof = 1;
  if (err != 0 && err != UV_EOF)
    IMP_LOG(IMP_LOG_DEBUG, "instance %llu connection: %s",
            (unsigned long long)inst->id,
            err < IMP_EBASE + 1 ? imp_strerror(err) : uv_strerror(err));
  if (!inst->exited) {
    /* The worker hung up or broke the protocol: it cannot be trusted. */
    uv_process_kill(&inst->proc, SIGKILL);
    return;
  }
  inst_finish(inst);
}

static void check_drained(imp_instance_t *inst) {
  if (inst->state != IMP_INST_DRAINING) return;
  if (inst->d.outstanding > inst->timed_out_calls) return;
  if (inst->stop_when_drained || inst->timed_out_calls > 0) {
    imp_instance_kill(inst);
  } else if (inst->reload_when_drained && inst->function) {
    inst->reload_when_drained = 0;
    imp_controller_mark_starting(inst->function, inst, 1);
    imp_instance_load(inst, inst->function);
  }
}

/* Replies to Load, and anything that is not the answer to a call. */
static void on_frame(imp_conn_t *conn, Impulse__Envelope *env,
                     const char *body, size_t len) {
  imp_instance_t *inst = conn->data;
  imp_server_t *server = inst->server;
  (void)body;
  (void)len;
  if (inst->load_wid != 0 && env->id == inst->load_wid) {
    inst->load_wid = 0;
    int ok = env->body_case == IMPULSE__ENVELOPE__BODY_LOAD_OK;
    int code = ok ? 0 : IMPULSE__ERROR_CODE__INVALID_ARTIFACT;
    const char *msg = "unexpected reply to Load";
    if (env->body_case == IMPULSE__ENVELOPE__BODY_ERROR) {
      code = env->error->code;
      msg = env->error->message ? env->error->message : "load failed";
    }
    if (inst->validate_only) {
      imp_controller_validated(server, inst, code, ok ? NULL : msg);
    } else if (ok) {
      inst->state = IMP_INST_READY;
      inst->ready_ms = inst->idle_since_ms = imp_now_ms();
      imp_controller_instance_ready(server, inst);
    } else {
      imp_controller_instance_load_failed(server, inst, code, msg);
    }
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
  imp_server_t *server = inst->server;
  uint64_t id;
  size_t off;
  if (imp_envelope_split_id(body, len, &id, &off) != 0) return 0;
  if (inst->load_wid != 0 && id == inst->load_wid) return 0;
  uint32_t slot = (uint32_t)(id & 0xffffffffu);
  imp_call_t *call = slot < inst->nslots ? inst->slots[slot] : NULL;
  if (call == NULL || call->wid != id) return 0;
  inst->slots[slot] = NULL;
  inst->free_slots[inst->nfree++] = slot;
  imp_dispatch_release(&inst->d);
  inst->served++;
  if (inst->d.outstanding == 0) inst->idle_since_ms = imp_now_ms();
  call->instance = NULL;
  if (call->timed_out) {
    inst->timed_out_calls--;
    imp_controller_call_free(call);
  } else {
    imp_controller_call_done(server, call, body + off, len - off);
  }
  if (inst->state == IMP_INST_DRAINING)
    check_drained(inst);
  else if (inst->state == IMP_INST_READY && inst->function)
    imp_controller_slot_freed(server, inst->function);
  return 1;
}

static void send_pending(imp_instance_t *inst);

static void on_connect(uv_connect_t *req, int status) {
  spawn_ctx_t *sc = IMP_CONTAINER_OF(req, spawn_ctx_t, req);
  imp_instance_t *inst = sc->inst;
  free(sc);
  if (status < 0) {
    IMP_LOG(IMP_LOG_ERROR, "instance %llu: connect to %s: %s",
            (unsigned long long)inst->id, inst->socket_path, uv_strerror(status));
    inst->conn.closing = 1;
    uv_close((uv_handle_t *)&inst->conn.h.pipe, NULL);
    inst_handle_closed(inst);
    on_conn_error(&inst->conn, status);
    return;
  }
  int rc = imp_conn_start(&inst->conn, &inst->server->cl,
                          inst->server->cfg.max_frame);
  if (rc != 0) {
    on_conn_error(&inst->conn, rc);
    return;
  }
  send_pending(inst);
}

/* Called once connected: do what was asked while the worker was starting. */
static void send_pending(imp_instance_t *inst) {
  if (inst->state != IMP_INST_STARTING) return;
  if (inst->validate_only && inst->pending_path) {
    char *path = inst->pending_path;
    inst->pending_path = NULL;
    inst->state = IMP_INST_GENERIC;
    imp_instance_validate(inst, path, inst->pending_name);
    free(path);
  } else if (inst->function) {
    inst->state = IMP_INST_GENERIC;
    imp_instance_load(inst, inst->function);
  } else {
    inst->state = IMP_INST_GENERIC;
    imp_controller_generic_available(inst->server);
  }
}

imp_instance_t *imp_instance_spawn(imp_server_t *server) {
  imp_instance_t *inst = calloc(1, sizeof *inst);
  if (inst == NULL) return NULL;
  int fd = -1;
  inst->server = server;
  inst->id = ++server->next_instance_id;
  inst->state = IMP_INST_STARTING;
  inst->started_ms = imp_now_ms();
  inst->d.index = (size_t)-1;
  int n = snprintf(inst->socket_path, sizeof inst->socket_path, "%s/w-%llu.sock",
                   server->run_dir, (unsigned long long)inst->id);
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

  char idbuf[32], framebuf[32], gracebuf[32];
  snprintf(idbuf, sizeof idbuf, "%llu", (unsigned long long)inst->id);
  snprintf(framebuf, sizeof framebuf, "%zu", server->cfg.max_frame);
  snprintf(gracebuf, sizeof gracebuf, "%u", server->cfg.worker_grace_ms);
  static const char *levels[] = {"error", "warn", "info", "debug"};
  char *args[] = {server->worker_exe, "worker", "--listen-fd", "3", "--id",
                  idbuf, "--max-frame", framebuf, "--grace-ms", gracebuf,
                  "--log-level", (char *)levels[imp_log_level & 3], NULL};
  uv_stdio_container_t stdio[4];
  stdio[0].flags = UV_IGNORE;
  stdio[1].flags = UV_INHERIT_FD; /* workers never print to stdout */
  stdio[1].data.fd = 2;
  stdio[2].flags = UV_INHERIT_FD;
  stdio[2].data.fd = 2;
  stdio[3].flags = UV_INHERIT_FD;
  stdio[3].data.fd = fd;
  uv_process_options_t opts = {0};
  opts.file = server->worker_exe;
  /* impulse-worker takes the flags directly; `impulse` needs "worker". */
  opts.args = server->worker_separate ? args + 1 : args;
  if (server->worker_separate) args[1] = server->worker_exe;
  opts.exit_cb = on_proc_exit;
  opts.stdio = stdio;
  opts.stdio_count = 4;
  int rc = uv_spawn(server->loop, &inst->proc, &opts);
  if (rc != 0) {
    IMP_LOG(IMP_LOG_ERROR, "spawn worker: %s", uv_strerror(rc));
    uv_close((uv_handle_t *)&inst->proc, NULL);
    goto fail;
  }
  close(fd);
  fd = -1;
  inst->pid = inst->proc.pid;
  inst->handles_open = 2;
  uv_pipe_init(server->loop, &inst->conn.h.pipe, 0);
  inst->conn.data = inst;
  inst->conn.on_frame = on_frame;
  inst->conn.on_raw = on_raw;
  inst->conn.on_error = on_conn_error;
  inst->conn.on_closed = on_conn_closed;
  spawn_ctx_t *sc = malloc(sizeof *sc);
  if (sc == NULL) abort();
  sc->inst = inst;
  uv_pipe_connect(&sc->req, &inst->conn.h.pipe, inst->socket_path, on_connect);

  inst->next = &server->instances;
  inst->prev = server->instances.prev;
  server->instances.prev->next = inst;
  server->instances.prev = inst;
  server->ninstances++;
  IMP_LOG(IMP_LOG_DEBUG, "instance %llu spawned (pid %d)",
          (unsigned long long)inst->id, inst->pid);
  return inst;
fail:
  if (fd >= 0) close(fd);
  unlink(inst->socket_path);
  if (inst->handles_open == 0) free(inst);
  return NULL;
}

static int send_load(imp_instance_t *inst, const char *name, uint32_t version,
                     const char *path, uint32_t concurrency, uint32_t memory_mb,
                     int validate_only) {
  Impulse__Envelope env = IMPULSE__ENVELOPE__INIT;
  Impulse__LoadRequest load = IMPULSE__LOAD_REQUEST__INIT;
  load.function = (char *)name;
  load.version = version;
  load.path = (char *)path;
  load.has_concurrency = 1;
  load.concurrency = concurrency;
  load.has_memory_mb = 1;
  load.memory_mb = memory_mb;
  load.has_validate_only = 1;
  load.validate_only = validate_only;
  env.id = ((uint64_t)++inst->gen << 32) | 0xffffffffu;
  env.body_case = IMPULSE__ENVELOPE__BODY_LOAD;
  env.load = &load;
  inst->load_wid = env.id;
  inst->state = IMP_INST_LOADING;
  return imp_conn_send(&inst->conn, &env);
}

int imp_instance_load(imp_instance_t *inst, imp_function_t *fn) {
  inst->function = fn;
  if (inst->state == IMP_INST_STARTING) return 0; /* sent on connect */
  Impulse__FunctionConfig *c = fn->rec->config;
  uint32_t conc = c && c->has_concurrency ? c->concurrency
                                          : inst->server->cfg.default_concurrency;
  uint32_t mem = c && c->has_memory_mb ? c->memory_mb
                                       : inst->server->cfg.default_memory_mb;
  if (conc == 0) conc = 1;
  uint32_t slots = conc + IMP_PIPELINE_EXTRA(conc);
  if (slots != inst->nslots) {
    /* Only reached with no call in flight (generic, or drained). */
    free(inst->slots);
    free(inst->free_slots);
    inst->slots = calloc(slots, sizeof *inst->slots);
    inst->free_slots = malloc(slots * sizeof *inst->free_slots);
    if (inst->slots == NULL || inst->free_slots == NULL) abort();
    inst->nslots = slots;
  }
  inst->nfree = 0;
  for (uint32_t i = slots; i > 0; i--) inst->free_slots[inst->nfree++] = i - 1;
  inst->d.extra = fn->fast ? IMP_PIPELINE_EXTRA(conc) : 0;
  inst->version = fn->rec->version;
  inst->d.concurrency = conc;
  inst->d.version = inst->version;
  inst->d.ready = 0;
  return send_load(inst, fn->name, fn->rec->version, fn->artifact_path, conc,
                   mem, 0);
}

int imp_instance_validate(imp_instance_t *inst, const char *path,
                          const char *name) {
  inst->validate_only = 1;
  if (inst->state == IMP_INST_STARTING) {
    inst->pending_path = strdup(path);
    snprintf(inst->pending_name, sizeof inst->pending_name, "%s", name);
    return inst->pending_path ? 0 : -ENOMEM;
  }
  return send_load(inst, name, 0, path, 1, 0, 1);
}

int imp_instance_send(imp_instance_t *inst, imp_call_t *call, const char *rest,
                      size_t restlen) {
  if (inst->nfree == 0) return -EBUSY;
  uint32_t slot = inst->free_slots[--inst->nfree];
  call->wid = ((uint64_t)++inst->gen << 32) | slot;
  int rc = imp_conn_send_with_id(&inst->conn, call->wid, rest, restlen);
  if (rc != 0) {
    inst->free_slots[inst->nfree++] = slot;
    return rc;
  }
  inst->slots[slot] = call;
  call->instance = inst;
  imp_dispatch_acquire(&inst->d);
  return 0;
}

void imp_instance_call_timed_out(imp_instance_t *inst, imp_call_t *call) {
  call->timed_out = 1;
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

void imp_instance_kill(imp_instance_t *inst) {
  inst->stop_when_drained = 1;
  inst->d.ready = 0;
  if (!inst->exited) uv_process_kill(&inst->proc, SIGKILL);
}

static int is_pool_member(const imp_instance_t *inst) {
  return inst->function == NULL && !inst->validate_only &&
         !inst->stop_when_drained &&
         (inst->state == IMP_INST_STARTING || inst->state == IMP_INST_GENERIC);
}

imp_instance_t *imp_instance_take_generic(imp_server_t *server) {
  for (imp_instance_t *i = server->instances.next; i != &server->instances;
       i = i->next)
    if (is_pool_member(i) && i->state == IMP_INST_GENERIC) return i;
  return NULL;
}

void imp_instance_fill_pool(imp_server_t *server) {
  if (server->stopping) return;
  unsigned have = 0;
  for (imp_instance_t *i = server->instances.next; i != &server->instances;
       i = i->next)
    if (is_pool_member(i)) have++;
  while (have < server->cfg.warm_pool) {
    if (imp_instance_spawn(server) == NULL) break;
    have++;
  }
}

static void on_refill(uv_timer_t *t) {
  imp_instance_fill_pool(t->data);
}

void imp_instance_refill_later(imp_server_t *server) {
  /* A process start is a fork() of the server, which stalls the loop for
   * milliseconds: never do it on the path of a call that is waiting. */
  if (server->stopping || uv_is_active((uv_handle_t *)&server->pool_timer))
    return;
  uv_timer_start(&server->pool_timer, on_refill, 50, 0);
}
