/*
 * Trigger broker: one Kafka consumer group per trigger, each record turned
 * into an invocation of the trigger's function, at-least-once, with
 * ordering, retries, dead-lettering and back-pressure.
 */
#ifndef IMP_TRIGGER_H
#define IMP_TRIGGER_H

#include <uv.h>

#include "eventing/kafka.h"
#include "impulse.pb-c.h"
#include "server/base/conn.h"
#include "server/base/invoker.h"
#include "server/base/metrics.h"
#include "server/base/rpc.h"
#include "server/base/store.h"

typedef struct imp_triggers_s imp_triggers_t;

/* What the broker works with; every handle is borrowed and must outlive
 * it. The broker reaches functions only through `invoker`. */
typedef struct imp_triggers_env_s {
  uv_loop_t *loop;
  imp_conn_loop_t *cl;      /* its before_flush hook sends record batches */
  imp_store_t *store;       /* triggers and attempt counts */
  imp_kafka_t *kafka;       /* NULL: no Kafka, triggers cannot be created */
  imp_metrics_t *metrics;   /* the impulse_trigger_* families; may be NULL */
  imp_invoker_t *invoker;   /* its on_room is set to the broker's */
  size_t max_frame;         /* largest request to a function */
  size_t max_event_bytes;   /* larger records are dead-lettered */
  const char **kafka_props; /* --kafka-opt NAME=VALUE, for consumers */
  size_t nkafka_props;
} imp_triggers_env_t;

/* Creates the broker and starts every trigger stored in the triggers column
 * family. `env` is copied. Returns 0 or a negative error (logged). */
int imp_triggers_open(const imp_triggers_env_t *env, imp_triggers_t **out);

/* Begins stopping: no new records are taken; invocations in flight finish
 * (bounded by timeout_ms), their offsets are committed, then the consumers
 * leave their groups. Runs on the loop; see imp_triggers_closed(). */
void imp_triggers_close(imp_triggers_t *triggers, int timeout_ms);
/* 1 once a close has completed (then free with imp_triggers_free). */
int imp_triggers_closed(const imp_triggers_t *triggers);
void imp_triggers_free(imp_triggers_t *triggers);

/* RPC handlers; each takes ownership of env and answers the client. */
void imp_triggers_create(imp_triggers_t *t, imp_rpc_t *rpc,
                         Impulse__Envelope *env);
void imp_triggers_delete(imp_triggers_t *t, imp_rpc_t *rpc,
                         Impulse__Envelope *env);
void imp_triggers_list(imp_triggers_t *t, imp_rpc_t *rpc,
                       Impulse__Envelope *env);
void imp_triggers_describe(imp_triggers_t *t, imp_rpc_t *rpc,
                           Impulse__Envelope *env);

/* Calls cb once per trigger with what `impulse trigger describe` shows
 * (spec, state, counters, the partitions this server holds); `info` and
 * everything it points to are borrowed for the call. cb must not create or
 * delete triggers. For the HTTP front end and /metrics. */
typedef void (*imp_trigger_info_cb)(void *arg,
                                    const Impulse__TriggerInfo *info);
void imp_triggers_foreach(imp_triggers_t *t, imp_trigger_info_cb cb, void *arg);

#endif
