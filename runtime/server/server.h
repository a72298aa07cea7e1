/*
 * Private types of `impulse serve`, shared by the gateway, the controller
 * and the instance manager. Everything runs on one libuv loop thread.
 */
#ifndef IMP_SERVER_H
#define IMP_SERVER_H

#include <uv.h>

#include "eventing/kafka.h"
#include "eventing/publish.h"
#include "eventing/trigger.h"
#include "policy/autoscaler.h"
#include "policy/dispatcher.h"
#include "policy/pipeline.h"
#include "server/base/config.h"
#include "server/base/conn.h"
#include "server/base/invoker.h"
#include "server/base/metrics.h"
#include "server/base/rpc.h"
#include "server/base/store.h"
#include "server/fleet/instance.h"
#include "server/recordings.h"

typedef struct imp_server_s imp_server_t;
typedef struct imp_function_s imp_function_t;
typedef struct imp_call_s imp_call_t;
typedef struct imp_client_s imp_client_t;

/* A client connection on the RPC port. */
struct imp_client_s {
  imp_conn_t conn;
  imp_server_t *server;
  int admin;
  int refs; /* 1 for the open connection + 1 per call */
  unsigned in_flight;
  struct imp_client_s *next, *prev;
};

/* One invocation from arrival to answer. */
struct imp_call_s {
  imp_client_t *client;    /* referenced; NULL for internal calls */
  imp_invoke_done_cb done; /* internal calls: called once with the answer */
  imp_batch_done_cb bdone; /* internal invoke_batch calls, instead */
  void *done_arg;
  uint32_t batch;     /* items of an invoke_batch; 0 = one invoke */
  uint64_t client_id; /* request id on the client connection */
  imp_function_t *function;
  imp_sent_t sent; /* while sent to an instance (fleet) */
  char *fwd;       /* request body after its id, while queued */
  size_t fwdlen;
  imp_dwait_t wait; /* queue link while waiting for a slot */
  uv_timer_t timer; /* queue deadline, then execution timeout */
  uint64_t started_ms;
  uint64_t started_ns;  /* arrival, for the duration histogram */
  uint64_t sent_ns;     /* when sent to the instance */
  uint64_t deadline_ms; /* overall, monotonic; 0 = none */
  char *idem_key;       /* idempotency key, owned; NULL = none */
  int replay;           /* an upgrade's replay of a recorded call */
  uint32_t lat_div;     /* 1 + calls ahead of it on the instance */
  char *rec_req;        /* sampled request body (recordings.c), owned */
  size_t rec_reqlen;
  uint32_t version;                 /* of the instance it was sent to */
  struct imp_call_s *fnext, *fprev; /* function's list of live calls */
};

/* A deployed function with its in-memory serving state. */
/* A running rolling upgrade of a function (upgrade.c). */
enum { IMP_UPG_RUNNING = 1, IMP_UPG_ROLLBACK };
enum {
  IMP_UPGI_SERVING = 0, /* serves (or is not part of an upgrade) */
  IMP_UPGI_DETACHED,    /* no new calls; reloads once drained */
  IMP_UPGI_UPGRADING,   /* Load sent */
  IMP_UPGI_VALIDATING   /* replaying recorded calls */
};
typedef struct imp_upgrade_s {
  int state;         /* IMP_UPG_* */
  uint32_t from, to; /* versions */
  char from_path[600], to_path[600];
  unsigned max_step_pct;
  int exact;           /* --validate exact */
  char reason[300];    /* why it rolls back */
  uint64_t started_ms; /* monotonic */
  unsigned validated, replayed;
  struct imp_server_s *server;
  struct imp_function_s *fn;
  uv_timer_t timer;            /* runs the next step from the loop */
  struct imp_recorded_s *recs; /* recorded calls of earlier versions */
  size_t nrecs;
} imp_upgrade_t;

/* A function's autoscaler and the signals of the current second
 * (runtime/scaler.c). */
typedef struct imp_fn_scaler_s {
  int on;
  imp_as_t as;
  imp_pred_t pred;
  uint32_t arrivals, completions, inflight_max, waited;
  double dur_sum_ms, wait_sum_ms;
  uint64_t busy_ns;   /* integral of calls in flight over the second */
  uint64_t last_ns;   /* last change of in_flight */
  uint64_t sample_ns; /* start of the second being counted */
  int64_t lag;        /* consumer lag of its triggers, -1 none */
  uint32_t lag_partitions;
  int lag_uncapped;
  int64_t saved_ms; /* predictor state last saved */
  uint32_t desired;
  imp_as_decision_t decision;
  char reason[IMP_AS_REASON_MAX]; /* of the decision */
} imp_fn_scaler_t;

struct imp_function_s {
  char name[65];
  Impulse__FunctionRecord *rec; /* owned, as stored */
  Impulse__VersionRecord *vrec; /* owned, current version */
  char artifact_path[600];
  imp_dispatch_t dispatch;
  unsigned instances; /* attached (loading, ready, draining) */
  unsigned starting;  /* being started or loading */
  uint64_t invocations, errors, cold_starts;
  uint64_t idempotent_hits; /* answered from the idempotency store */
  uint64_t warm_starts;     /* instances started from the warm pool */
  int trigger_waiting;      /* a trigger waits for room (queue_room) */
  unsigned in_flight;
  int deleted;
  imp_pipe_t pipe;          /* pipelining and batch sizes (pipeline.h) */
  imp_fn_metrics_t metrics; /* outcomes and durations (metrics.c) */
  imp_call_t calls;         /* sentinel: calls of this function */
  imp_fn_scaler_t sc;
  imp_fn_rec_t recording; /* recorded requests (recordings.c) */
  /* Traffic split (rec->traffic) with each version's artifact; ntraffic 0
   * = everything to rec->version (artifact_path). */
  unsigned ntraffic;
  uint32_t tversion[IMP_DISPATCH_MAX_SPLIT];
  uint32_t tweight[IMP_DISPATCH_MAX_SPLIT];
  char tpath[IMP_DISPATCH_MAX_SPLIT][600];
  imp_upgrade_t *upg;            /* running rolling upgrade, or NULL */
  Impulse__UpgradeInfo upg_info; /* describe's view of it */
  struct imp_function_s *next, *prev;
};

struct imp_server_s {
  uv_loop_t *loop;
  imp_config_t cfg;
  imp_conn_loop_t cl;
  imp_store_t *store;
  imp_kafka_t *kafka;
  imp_triggers_t *triggers;
  imp_invoker_t invoker; /* calls for the trigger broker, HTTP */
  /* Trigger lag for the autoscaler: calls visit once per trigger (set by
   * serve.c from the broker; NULL without one). */
  void (*lag_source)(void *arg, imp_trigger_info_cb visit, void *varg);
  void *lag_source_arg;
  uv_tcp_t listener;
  uv_signal_t sigint, sigterm;
  uv_timer_t tick;
  uv_timer_t ready_timer; /* until restored (serve.c) */
  char token[65];
  char exe[600];
  char artifact_dir[600];
  uint64_t started_ms;
  int ready;
  int stopping;   /* no new work; draining */
  int final_stop; /* connections and workers closing */
  uint64_t drain_deadline_ms;
  imp_function_t functions; /* sentinel */
  unsigned nfunctions;
  imp_fleet_t fleet;       /* the worker processes */
  imp_client_t clients;    /* sentinel */
  imp_metrics_t *metrics;  /* /metrics collectors, owned */
  struct imp_http_s *http; /* HTTP front end, NULL when off */
  uint64_t ticks;          /* controller ticks (1 s) so far */
  imp_as_pool_t pool;      /* demand for generic workers */
  uint32_t pool_target;    /* generic workers to keep */
  char idem_cursor[400];   /* where the idempotency sweep resumes */
  size_t idem_cursorlen;
};

/* --- gateway.c ---------------------------------------------------------- */
int imp_gateway_start(imp_server_t *server);
void imp_gateway_stop_listening(imp_server_t *server);
/* Stops listening and closes every client connection (after flushing). */
void imp_gateway_stop(imp_server_t *server);
/* Sends a reply to a client (dropped if the client has gone). */
void imp_client_reply(imp_client_t *client, const Impulse__Envelope *env);
void imp_client_error(imp_client_t *client, uint64_t id, int code,
                      const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void imp_client_unref(imp_client_t *client);

/* --- stats.c ------------------------------------------------------------ */
/* Registers the server's own families: functions, instances, the warm
 * pool, triggers, store writes, uptime and build info. `server` is
 * borrowed. Returns 0 or -ENOMEM. */
int imp_metrics_register_server(imp_metrics_t *m, struct imp_server_s *server);

/* --- backup.c ------------------------------------------------------------ */
/* Backup RPC: a checkpoint of the state store into a new state directory
 * (BackupRequest.dir), written on libuv's thread pool; answers later.
 * Takes ownership of env. */
void imp_backup_rpc(imp_server_t *server, imp_rpc_t *rpc,
                    Impulse__Envelope *env);

/* --- scaler.c (the autoscaler in the server) ------------------------------ */
/* Starts a function's autoscaler (restoring its saved forecast); applies
 * changed settings; frees it; deletes its saved forecast. */
void imp_scaler_fn_init(imp_server_t *server, imp_function_t *fn);
void imp_scaler_fn_config(imp_server_t *server, imp_function_t *fn);
void imp_scaler_fn_free(imp_function_t *fn);
void imp_scaler_fn_forget(imp_server_t *server, imp_function_t *fn);
/* fn->in_flight is about to change by delta (+1: a call arrives). */
void imp_scaler_inflight(imp_function_t *fn, int delta);
/* Once a second: closes the second's signals, decides, scales. */
void imp_scaler_tick(imp_server_t *server);
/* Saves every function's forecast (at a clean stop). */
void imp_scaler_save_all(imp_server_t *server);
/* The last decision into a FunctionInfo (strings borrowed from fn). */
void imp_scaler_fill_info(imp_function_t *fn, Impulse__FunctionInfo *fi);
const char *imp_scaler_policy_name(int policy);
/* Whether `s` names a policy (NULL: the default). */
int imp_scaler_policy_valid(const char *s);

/* --- controller.c ------------------------------------------------------- */
/* The version a (re)loading instance of fn should load (the one furthest
 * below its traffic share, not counting `inst`) and its artifact path
 * (borrowed from fn). */
const char *imp_controller_load_target(imp_function_t *fn,
                                       const imp_instance_t *inst,
                                       uint32_t *version);
/* How many more calls may be sent to `function` without more than `room`
 * waiting in its queue (<= 0: none); the trigger broker asks before it
 * starts records, and is woken with imp_triggers_wake() when slots free.
 * *batch gets imp_controller_batch_hint() of the function. */
long imp_controller_queue_room(imp_server_t *server, const char *function,
                               long room, unsigned *batch);
/* A trigger stopped for lack of room in `function`: wake it when slots
 * free (so completions of functions no trigger waits for cost nothing). */
void imp_controller_want_room(imp_server_t *server, const char *function);
/* Whether instances of fn's `version` may serve (current, or in the split). */
int imp_controller_version_live(const imp_function_t *fn, uint32_t version);
void imp_controller_traffic(imp_server_t *server, imp_rpc_t *rpc,
                            Impulse__Envelope *env);
void imp_controller_upgrade(imp_server_t *server, imp_rpc_t *rpc,
                            Impulse__Envelope *env);
/* Starts one more instance of fn (a warm worker when there is one). */
int imp_controller_start_instance(imp_server_t *server, imp_function_t *fn);
/* Retires idle ready instances of fn above `keep` (never below min). */
void imp_controller_retire_idle(imp_server_t *server, imp_function_t *fn,
                                unsigned keep);
int imp_controller_restore(imp_server_t *server);
/* Fails queued calls with SHUTTING_DOWN; calls in flight go on. */
void imp_controller_drain(imp_server_t *server);
/* Calls sent to instances and not yet answered, over all functions. */
unsigned imp_controller_in_flight(imp_server_t *server);
void imp_controller_stop(imp_server_t *server);
void imp_controller_free(imp_server_t *server);
/* Handlers for client requests; each takes ownership of env. */
void imp_controller_invoke(imp_server_t *server, imp_client_t *client,
                           Impulse__Envelope *env, const char *body,
                           size_t len);
void imp_controller_deploy(imp_server_t *server, imp_rpc_t *rpc,
                           Impulse__Envelope *env);
void imp_controller_delete(imp_server_t *server, imp_rpc_t *rpc,
                           Impulse__Envelope *env);
void imp_controller_scale(imp_server_t *server, imp_rpc_t *rpc,
                          Impulse__Envelope *env);
void imp_controller_list(imp_server_t *server, imp_rpc_t *rpc,
                         Impulse__Envelope *env);
void imp_controller_describe(imp_server_t *server, imp_rpc_t *rpc,
                             Impulse__Envelope *env);
/* Fills fi and cfg (the caller's) with what `impulse describe` shows of fn:
 * settings with the defaults applied, counters; strings borrowed from fn. */
void imp_controller_function_info(imp_server_t *server, imp_function_t *fn,
                                  Impulse__FunctionInfo *fi,
                                  Impulse__FunctionConfig *cfg);
void imp_controller_tick(imp_server_t *server);
/* Sets server->invoker up: the call path behind imp_invoker_t. */
void imp_controller_invoker_init(imp_server_t *server);
/* Invokes a function for an in-process caller (the trigger broker). Returns
 * 0 and later calls done exactly once on the loop thread; or -ENOENT (no
 * such function), -ESHUTDOWN, -E2BIG (request above the frame limit), and
 * then never calls done. `req` is borrowed. */
int imp_controller_invoke_internal(imp_server_t *server,
                                   const Impulse__InvokeRequest *req,
                                   imp_invoke_done_cb done, void *arg);
/* Record batches (docs/architecture.md): how many records a trigger may
 * put in one call to `function` now. 1 (single invocations) unless the
 * function's handler is known to be fast; then enough for about
 * IMP_BATCH_US of handler time, at most IMP_BATCH_MAX. */
unsigned imp_controller_batch_hint(imp_server_t *server, const char *function);
/* Like imp_controller_invoke_internal() for an invoke_batch of `items`
 * records: one call, one instance slot, done once with every item's
 * result. `rest` is the request Envelope's body after its id (field 43
 * holding the InvokeBatchRequest), encoded by the caller; borrowed. */
int imp_controller_invoke_batch(imp_server_t *server, const char *function,
                                uint32_t items, const char *rest,
                                size_t restlen, imp_batch_done_cb done,
                                void *arg);
/* The fleet's owner: sets server->fleet up with the controller's handlers
 * of instance events. */
void imp_controller_fleet_init(imp_server_t *server);
/* Loads fn (the version its traffic wants next) into inst. */
int imp_controller_load(imp_server_t *server, imp_function_t *fn,
                        imp_instance_t *inst);
/* Counts inst in fn->starting (on) or not (off); idempotent. */
void imp_controller_mark_starting(imp_function_t *fn, imp_instance_t *inst,
                                  int on);
/* Frees a call that has already been answered. */
void imp_controller_call_free(imp_call_t *call);

#endif
