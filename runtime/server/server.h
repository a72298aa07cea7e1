/*
 * The server as `impulse serve` assembles it: the settings, the loop, the
 * state store, Kafka and the trigger broker, the controller, and the front
 * doors (the RPC gateway, the HTTP front end). serve.c builds and runs it;
 * the front doors read it to route requests down. Nothing below the front
 * doors includes this header. Everything runs on one libuv loop thread.
 */
#ifndef IMP_SERVER_H
#define IMP_SERVER_H

#include <stdint.h>
#include <uv.h>

#include "base/config.h"
#include "base/conn.h"
#include "base/metrics.h"
#include "base/store.h"
#include "eventing/kafka.h"
#include "eventing/trigger.h"
#include "server/control/control.h"
#include "server/control/tokens.h"

typedef struct imp_server_s imp_server_t;

struct imp_server_s {
  uv_loop_t *loop;
  imp_config_t cfg;
  imp_conn_loop_t cl;
  imp_store_t *store;
  imp_metrics_t *metrics; /* /metrics collectors, owned */
  imp_kafka_t *kafka;
  imp_triggers_t *triggers;
  imp_control_t control;         /* functions, instances, calls */
  imp_tokens_t *tokens;          /* scoped tokens, owned */
  struct imp_gateway_s *gateway; /* the RPC front door */
  struct imp_http_s *http;       /* HTTP front end, NULL when off */
  uv_signal_t sigint, sigterm;
  uv_timer_t tick;
  uv_timer_t ready_timer; /* until restored (serve.c) */
  char exe[600];
  uint64_t started_ms;
  int ready;
  int stopping;   /* no new work; draining */
  int final_stop; /* connections and workers closing */
  uint64_t drain_deadline_ms;
};

#endif
