/*
 * Trigger broker: one Kafka consumer group per trigger, each record turned
 * into an invocation of the trigger's function, at-least-once, with
 * ordering, retries, dead-lettering and back-pressure.
 */
#ifndef IMP_TRIGGER_H
#define IMP_TRIGGER_H

#include "base/rpc.h"
#include "eventing/trigger_env.h"
#include "impulse.pb-c.h"

typedef struct imp_triggers_s imp_triggers_t;

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
void imp_triggers_foreach(imp_triggers_t *t, imp_trigger_info_cb cb, void *arg);

#endif
