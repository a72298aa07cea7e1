/*
 * The fleet: worker processes (`impulse-worker`), their connections and the
 * warm pool of generic workers. It knows processes, sockets, slots and
 * Loads; it knows nothing of functions, versions or callers.
 *
 * It reports up through what it was given: each call it carries has its own
 * completion callback (imp_sent_t.done), and an instance's life events go to
 * the owner's ops table (imp_fleet_ops_t). Everything runs on the loop
 * thread.
 */
#ifndef IMP_INSTANCE_H
#define IMP_INSTANCE_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "base/config.h"
#include "base/conn.h"
#include "base/store.h"
#include "impulse.pb-c.h"
#include "policy/dispatcher.h"
#include "server/fleet/isolate.h"

typedef struct imp_fleet_s imp_fleet_t;
typedef struct imp_instance_s imp_instance_t;
typedef struct imp_sent_s imp_sent_t;

/* A call's end as its instance sees it: code 0 with the worker's answer
 * (`rest`, the reply Envelope's body after its id, borrowed), or the
 * instance ended with the call unanswered: code CRASHED or OUT_OF_MEMORY
 * when the call may have run, UNAVAILABLE ("did not run") when the dying
 * worker named an earlier call as the one that crashed it (crash blame,
 * docs/architecture.md), and `message` says why. Called exactly once per
 * imp_instance_send() that returned 0, after its slot is free. */
typedef void (*imp_sent_cb)(imp_sent_t *sent, int code, const char *message,
                            const char *rest, size_t restlen);

/* A call as an instance carries it: embedded in the caller's own record of
 * the call (get back to it with IMP_CONTAINER_OF). */
struct imp_sent_s {
  imp_sent_cb done;         /* set by the caller before sending */
  imp_instance_t *instance; /* while sent */
  uint64_t wid;             /* request id on the worker connection */
  int timed_out;            /* the caller gave up (imp_instance_timed_out) */
};

/* What to load into a worker. Strings are borrowed for the call. */
typedef struct imp_load_s {
  const char *function;
  uint32_t version;
  const char *path;     /* the artifact */
  const char *sha256;   /* its hash, checked by the worker; NULL: none */
  char sha_buf[65];     /* room for sha256 */
  uint32_t concurrency; /* handler threads; calls at once */
  uint32_t extra;       /* calls it may hold queued beyond concurrency */
  uint32_t memory_mb;   /* 0 = no limit */
  char **env;           /* the function's environment, "KEY=VALUE" each */
  size_t nenv;
  const char *network; /* "none" or NULL/"outbound" */
  uint32_t cpu_millis; /* cpu limit, thousandths of a CPU; 0 = none */
} imp_load_t;

typedef enum imp_inst_state_e {
  IMP_INST_STARTING = 0, /* spawned, connecting */
  IMP_INST_GENERIC,      /* warm pool: connected, nothing loaded */
  IMP_INST_LOADING,      /* Load sent */
  IMP_INST_READY,        /* serving its function */
  IMP_INST_DRAINING,     /* no new calls; reload or stop when drained */
  IMP_INST_DEAD          /* exited or being torn down */
} imp_inst_state_t;

/* An instance's life events, to its owner (the controller). */
typedef struct imp_fleet_ops_s {
  /* A new worker is connected, generic: the owner loads what it wants
   * into it (an imp_instance_load() asked while it was starting is not
   * remembered) or leaves it in the warm pool. */
  void (*connected)(void *owner, imp_instance_t *inst);
  /* A Load was answered: code 0 (the instance is READY; for a validation,
   * the artifact passed), else an ErrorCode and the loader's message. */
  void (*loaded)(void *owner, imp_instance_t *inst, int code,
                 const char *message);
  /* An adopted worker answered Attach: what it has loaded (`function`
   * NULL when generic). */
  void (*attached)(void *owner, imp_instance_t *inst, const char *function,
                   uint32_t version);
  /* The instance ended (its process and connection are gone); the calls
   * it carried have had their done callbacks. `code` and `message` say
   * why (CRASHED, OUT_OF_MEMORY, UNAVAILABLE when stopped). */
  void (*gone)(void *owner, imp_instance_t *inst, int code,
               const char *message);
  /* A DRAINING instance with reload_when_drained set has no call in
   * flight: the owner reloads it (imp_instance_load) or stops it. */
  void (*drained)(void *owner, imp_instance_t *inst);
} imp_fleet_ops_t;

/* A worker process. */
struct imp_instance_s {
  uint64_t id;
  imp_fleet_t *fleet;
  imp_inst_state_t state;
  uv_process_t proc;
  imp_conn_t conn;
  char socket_path[600];
  int pid;
  int exited;       /* exit callback seen */
  int eof;          /* connection closed */
  int handles_open; /* process + connection handles not closed */
  int64_t exit_status;
  int term_signal;
  int owned;            /* taken by the owner (not a warm-pool worker) */
  char loaded_name[65]; /* what was last loaded (InstanceRecord) */
  uint32_t version;     /* its version */
  uint32_t memory_mb;   /* its memory limit (for OOM messages) */
  imp_dinst_t d;        /* dispatcher view: slots, version, ready */
  imp_sent_t **slots;   /* in-flight calls by slot */
  uint32_t *free_slots; /* stack of free slot numbers */
  uint32_t nslots;
  uint32_t nfree;
  uint32_t gen;
  unsigned timed_out_calls; /* calls given up by their callers, running */
  int stop_when_drained;    /* killed once its calls are done */
  int reload_when_drained;  /* ops->drained once its calls are done */
  int validate_only;        /* throw-away validation worker */
  char *pending_path;       /* validation asked for while starting */
  char pending_name[65];
  char pending_sha[65];
  char **pending_env; /* and its environment, a copy */
  size_t pending_nenv;
  char secret[33];      /* hex; a restarted server attaches with it */
  int adopted;          /* outlived a previous server, re-attached */
  int pidfd;            /* adopted: exit notification, signals */
  uv_poll_t pidpoll;    /* adopted: readable when the process ends */
  uint64_t attach_wid;  /* Attach sent, answer pending */
  int verified;         /* adopted and its Attach was accepted */
  int crash_named;      /* the dying worker named the call it ran */
  uint32_t crashed_gen; /* that call's send number (wid >> 32) */
  uint64_t load_wid;
  uint64_t load_sent_ns;       /* the Load's send (its answer's latency) */
  imp_isolate_limits_t limits; /* what its cgroup is limited to */
  uint64_t eof_ms; /* its connection ended, the process not yet: killed
                      if it has not exited EXIT_WAIT_MS later */
  uint64_t started_ms;
  uint64_t ready_ms;
  uint64_t idle_since_ms;
  uint64_t served;
  /* The owner's (the controller's): never read by the fleet. */
  struct imp_output_s *output; /* its stdout/stderr/impulse_log readers */
  void *function;       /* its function (imp_function_t), NULL while generic */
  int counted_starting; /* counted in function->starting */
  void *pending_deploy; /* the deploy this validation is for */
  int upg_state;        /* IMP_UPGI_* */
  int upg_validated;    /* passed the upgrade's validation */
  unsigned val_pending, val_next, val_failed; /* replay of recordings */
  char val_reason[300];
  struct imp_instance_s *next, *prev; /* the fleet's list */
};

struct imp_fleet_s {
  uv_loop_t *loop;
  imp_conn_loop_t *cl;
  imp_store_t *store;       /* InstanceRecords */
  const imp_config_t *cfg;  /* max_frame, worker_grace_ms, warm_pool */
  char worker_exe[600];     /* impulse-worker, or `impulse` itself */
  int worker_separate;      /* worker_exe is impulse-worker */
  char run_dir[600];        /* the workers' sockets */
  imp_isolate_t iso;        /* sandbox mode and cgroups (isolate.h) */
  imp_instance_t instances; /* sentinel */
  unsigned ninstances;
  uint64_t next_instance_id;
  unsigned pool_misses; /* starts without a warm worker (the owner's
                           count; read and reset by the autoscaler) */
  uv_timer_t pool_timer;
  uv_timer_t exit_timer; /* instances whose connection ended before exit */
  int stopping;          /* no refills; stopped instances are expected */
  const imp_fleet_ops_t *ops;
  void *owner;
  /* Where workers' output goes (fleet/output.h); NULL: the server's
   * stderr. Set by the owner before the first spawn. */
  struct imp_fnlogs_s *logs;
};

/* Sets the fleet up on `loop` (its strings and sentinel; the pool timer).
 * `cfg`, `cl` and `store` are borrowed. */
void imp_fleet_init(imp_fleet_t *fleet, uv_loop_t *loop, imp_conn_loop_t *cl,
                    imp_store_t *store, const imp_config_t *cfg,
                    const imp_fleet_ops_t *ops, void *owner);
/* Stops refilling the pool (the server is stopping) and closes the timer. */
void imp_fleet_stop(imp_fleet_t *fleet);
/* Sends `sig` to every worker. */
void imp_fleet_signal_all(imp_fleet_t *fleet, int sig);
/* Generic workers connected and waiting (the warm pool's content). */
unsigned imp_fleet_warm(const imp_fleet_t *fleet);

/* Spawns a worker process. `owned`: taken by the caller at once (else it
 * joins the warm pool). Returns the instance or NULL (error logged). */
imp_instance_t *imp_instance_spawn(imp_fleet_t *fleet, int owned);
/* A connected generic worker of the warm pool, now owned by the caller,
 * or NULL when there is none. */
imp_instance_t *imp_instance_take_generic(imp_fleet_t *fleet);
/* Loads a function: Load sent, the answer comes to ops->loaded. On a
 * worker still starting it does nothing (ops->connected comes once it is
 * connected). 0 or a negative error. */
int imp_instance_load(imp_instance_t *inst, const imp_load_t *load);
/* Loads `path` only to check it (dlopen, ABI, init, fini): the answer comes
 * to ops->loaded; the worker is thrown away afterwards by the owner. */
int imp_instance_validate(imp_instance_t *inst, const char *path,
                          const char *sha256, const char *name, char **env,
                          size_t nenv);
/* Sends a call (takes a slot): `rest` is the request Envelope's body after
 * its id, forwarded as is. sent->done must be set. 0, or -EBUSY (no free
 * slot) or a send error, and then done is never called. */
int imp_instance_send(imp_instance_t *inst, imp_sent_t *sent, const char *rest,
                      size_t restlen);
/* The caller gave up on a call (it answered its own caller TIMEOUT): the
 * instance takes no new calls and is stopped once its other calls are
 * done; the call's done still comes when the worker answers or ends. */
void imp_instance_timed_out(imp_instance_t *inst, imp_sent_t *sent);
/* Takes the instance out of service (no new calls) and stops it once its
 * calls are done, at once when idle or still loading. */
void imp_instance_retire(imp_instance_t *inst);
/* Stops the worker (SIGKILL). Teardown completes asynchronously. */
void imp_instance_kill(imp_instance_t *inst);
/* Sends a signal to the worker process (spawned or adopted). */
void imp_instance_signal(imp_instance_t *inst, int sig);
/* A worker a previous server started (its stored InstanceRecord): opens
 * its process and connects to its socket; it is attached (Attach with its
 * secret) once connected. NULL when the process is gone. */
imp_instance_t *imp_instance_adopt(imp_fleet_t *fleet,
                                   const Impulse__InstanceRecord *rec);
/* An adopted worker that has `load` loaded already: slots sized, READY. */
void imp_instance_adopted_ready(imp_instance_t *inst, const imp_load_t *load);
/* Spawns workers until the warm pool reaches --warm-pool. */
void imp_fleet_fill_pool(imp_fleet_t *fleet);
/* Same, from a timer shortly after: keeps process starts off hot paths. */
void imp_fleet_refill_later(imp_fleet_t *fleet);
const char *imp_instance_state_name(imp_inst_state_t state);

#endif
