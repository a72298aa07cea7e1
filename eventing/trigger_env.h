/*
 * What the trigger broker is given to work with, and what describe hands
 * out: apart from the broker's functions (trigger.h, which includes this)
 * so that the broker's own pieces, below trigger.c, use them without
 * depending on it.
 */
#ifndef IMP_TRIGGER_ENV_H
#define IMP_TRIGGER_ENV_H

#include <uv.h>

#include "base/conn.h"
#include "base/invoker.h"
#include "base/metrics.h"
#include "base/store.h"
#include "eventing/kafka.h"
#include "impulse.pb-c.h"

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

/* What imp_triggers_foreach() calls once per trigger: `info` and
 * everything it points to are borrowed for the call. */
typedef void (*imp_trigger_info_cb)(void *arg,
                                    const Impulse__TriggerInfo *info);

#endif
