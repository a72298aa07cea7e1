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
#include "server/invoke/call.h"
#include "server/invoke/function.h"
#include "server/invoke/invoke.h"

typedef struct imp_server_s imp_server_t;
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

struct imp_server_s {
  uv_loop_t *loop;
  imp_config_t cfg;
  imp_conn_loop_t cl;
  imp_store_t *store;
  imp_kafka_t *kafka;
  imp_triggers_t *triggers;
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
  imp_invoke_t invoke;     /* the call path and the functions */
  imp_fleet_t fleet;       /* the worker processes */
  imp_client_t clients;    /* sentinel */
  imp_metrics_t *metrics;  /* /metrics collectors, owned */
  struct imp_http_s *http; /* HTTP front end, NULL when off */
  uint64_t ticks;          /* controller ticks (1 s) so far */
  imp_as_pool_t pool;      /* demand for generic workers */
  uint32_t pool_target;    /* generic workers to keep */
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
void imp_controller_stop(imp_server_t *server);
void imp_controller_free(imp_server_t *server);
/* Handlers for client requests; each takes ownership of env. */
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
/* Sets server->invoke up (the call path) with the controller as the owner
 * that gives functions their instances. */
void imp_controller_invoke_init(imp_server_t *server);
/* RecordList RPC: the recordings of RecordListRequest.name; NOT_FOUND for
 * an unknown function. Takes ownership of env. */
void imp_controller_record_list(imp_server_t *server, imp_rpc_t *rpc,
                                Impulse__Envelope *env);
/* The fleet's owner: sets server->fleet up with the controller's handlers
 * of instance events. */
void imp_controller_fleet_init(imp_server_t *server);
/* Loads fn (the version its traffic wants next) into inst. */
int imp_controller_load(imp_server_t *server, imp_function_t *fn,
                        imp_instance_t *inst);
/* Counts inst in fn->starting (on) or not (off); idempotent. */
void imp_controller_mark_starting(imp_function_t *fn, imp_instance_t *inst,
                                  int on);

#endif
