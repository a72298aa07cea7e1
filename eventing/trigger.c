/*
 * Trigger broker: one Kafka consumer group per trigger; each record becomes
 * an internal invocation of the trigger's function, at-least-once.
 *
 * Everything here runs on the server's loop thread. Each consumer's queue
 * is hooked into the loop (imp_kafka_watch) and drained without blocking;
 * rebalance and commit callbacks are served by that drain, so they run on
 * the loop thread too.
 *
 * Per assigned partition the broker keeps the records it took, in offset
 * order (trigger_track.h), and commits only the contiguous low-water mark
 * of finished records (the function succeeded, or the record was
 * dead-lettered), asynchronously, from a 100 ms tick, never per record.
 * A partition is paused once the records it holds that are not finished
 * reach max-in-flight (or the records kept behind an unfinished one reach a
 * window), and resumed when that drains to half: librdkafka drops what it
 * had prefetched for a paused partition and fetches again from the last
 * record it handed out, so nothing is buffered without bound.
 *
 * Lifetimes: a record (rec_t) belongs to its partition until it is finished
 * or the partition is released; callbacks still pending on it (invocation,
 * produce, retry timer) keep it alive after that and free it when they
 * come. Records hold a reference on their trigger, triggers on the broker,
 * so a callback that arrives after imp_triggers_free() (imp_kafka_close()
 * reports unsent records after it) finds valid memory and only frees.
 */
#include "eventing/trigger.h"

#include <stdlib.h>
#include <string.h>

#include "eventing/trigger_batch.h"
#include "eventing/trigger_consumer.h"
#include "eventing/trigger_info.h"
#include "eventing/trigger_output.h"
#include "eventing/trigger_partition.h"
#include "eventing/trigger_record.h"
#include "eventing/trigger_spec.h"
#include "eventing/trigger_types.h"
#include "eventing/trigger_util.h"

#define TICK_MS 100         /* commits, deadlines, close polling */
#define CLOSE_WAIT_MS 5000  /* leaving the group */
#define DELETE_WAIT_MS 3000 /* in-flight calls of a deleted trigger */

/* ---- triggers ------------------------------------------------------------ */

static int ordering_of(const char *s) {
  if (strcmp(s, "key") == 0) return ORD_KEY;
  if (strcmp(s, "none") == 0) return ORD_NONE;
  return ORD_PARTITION;
}

static void on_trigger_handle_closed(uv_handle_t *h) {
  trigger_unref(h->data);
}

static void on_tick(uv_timer_t *t) {
  trigger_t *trigger = IMP_CONTAINER_OF(t, trigger_t, tick);
  /* A wake-up can be missed (slots freed by a crash or a timeout): look
   * again at least every tick. */
  if (trigger->waiting) {
    trigger->waiting = 0;
    trigger->repump = 1;
  }
  trigger_commit(trigger, 0);
  trigger_service(trigger);
}

/* A trigger for `spec` (taken), in the list, consumer not started. */
static trigger_t *trigger_new(imp_triggers_t *triggers,
                              Impulse__TriggerSpec *spec) {
  trigger_t *trigger = calloc(1, sizeof *trigger);
  if (trigger == NULL) abort();
  trigger->triggers = triggers;
  triggers->refs++;
  trigger->spec = spec;
  trigger->ordering =
      ordering_of(spec->ordering ? spec->ordering : DEF_ORDERING);
  trigger->max_in_flight = spec->has_max_in_flight && spec->max_in_flight
                               ? spec->max_in_flight
                               : DEF_MAX_IN_FLIGHT;
  trigger->max_retries =
      spec->has_max_retries ? spec->max_retries : DEF_MAX_RETRIES;
  trigger->backoff_initial =
      spec->has_backoff_initial_ms && spec->backoff_initial_ms
          ? spec->backoff_initial_ms
          : DEF_BACKOFF_INITIAL;
  trigger->backoff_max = spec->has_backoff_max_ms && spec->backoff_max_ms
                             ? spec->backoff_max_ms
                             : DEF_BACKOFF_MAX;
  if (trigger->backoff_max < trigger->backoff_initial)
    trigger->backoff_max = trigger->backoff_initial;
  unsigned w = trigger->max_in_flight * 64;
  trigger->window = w < 4096 ? 4096 : w > 65536 ? 65536 : w;
  imp_ce_record_source(spec->topic, trigger->ce_source,
                       sizeof trigger->ce_source);
  imp_ce_reply_source(spec->function, trigger->reply_source,
                      sizeof trigger->reply_source);
  trigger->refs = 3; /* the list + two timers */
  uv_loop_t *loop = triggers->env.loop;
  uv_timer_init(loop, &trigger->tick);
  uv_timer_init(loop, &trigger->more);
  trigger->tick.data = trigger->more.data = trigger;
  /* Never keep the loop alive: the server's own handles do. */
  uv_unref((uv_handle_t *)&trigger->tick);
  uv_unref((uv_handle_t *)&trigger->more);
  uv_timer_start(&trigger->tick, on_tick, TICK_MS, TICK_MS);
  trigger->next = &triggers->list;
  trigger->prev = triggers->list.prev;
  triggers->list.prev->next = trigger;
  triggers->list.prev = trigger;
  return trigger;
}

/* Ensures the topics a trigger reads and writes exist. */
static int ensure_topics(imp_triggers_t *triggers,
                         const Impulse__TriggerSpec *spec, char *err,
                         size_t errlen) {
  imp_kafka_t *kafka = triggers->env.kafka;
  const char *topics[] = {spec->topic, spec->dlq, spec->reply_topic};
  for (size_t i = 0; i < IMP_ARRAY_SIZE(topics); i++) {
    if (topics[i] == NULL) continue;
    char why[256];
    int rc = imp_kafka_ensure_topic(kafka, topics[i], 0, why, sizeof why);
    if (rc != 0) {
      snprintf(err, errlen, "topic %s: %s", topics[i], why);
      return rc;
    }
  }
  return 0;
}

/* Starts consuming; on failure the trigger stays, showing the error. */
static int trigger_start(trigger_t *trigger, char *err, size_t errlen) {
  int rc = consumer_open(trigger, err, errlen);
  if (rc == 0) rc = consumer_subscribe(trigger, err, errlen);
  if (rc != 0) trigger_set_kafka_error(trigger, "%s", err);
  return rc;
}

/* Begins stopping: records stop starting; what is under way may finish for
 * drain_ms; then offsets are committed and the consumer leaves its group
 * (at most close_ms more). */
static void trigger_stop(trigger_t *trigger, unsigned drain_ms,
                         unsigned close_ms) {
  if (trigger->state != T_RUNNING) return;
  trigger->state = T_DRAINING;
  uint64_t now = imp_now_ms();
  trigger->drain_deadline = now + drain_ms;
  trigger->close_deadline = now + drain_ms + close_ms;
  for (size_t i = 0; i < trigger->nparts; i++)
    if (trigger->parts[i]) part_stop(trigger->parts[i]);
  trigger_kick(trigger);
}

/* The trigger has stopped: partitions released, consumer destroyed, a
 * pending `trigger rm` answered; a removed trigger leaves the list. The
 * broker's closed hook. */
static void trigger_closed(trigger_t *trigger) {
  trigger->state = T_CLOSED;
  parts_release(trigger, NULL, 1);
  if (trigger->revoking)
    rd_kafka_topic_partition_list_destroy(trigger->revoking);
  trigger->revoking = NULL;
  consumer_destroy(trigger);
  uv_timer_stop(&trigger->tick);
  uv_timer_stop(&trigger->more);
  IMP_LOG(IMP_LOG_INFO,
          "trigger %s stopped (received %llu, handled %llu, "
          "dead-lettered %llu)",
          trigger->spec->name, (unsigned long long)trigger->received,
          (unsigned long long)trigger->handled,
          (unsigned long long)trigger->dead_lettered);
  if (trigger->del_rpc) {
    Impulse__TriggerDeleteResponse ok = IMPULSE__TRIGGER_DELETE_RESPONSE__INIT;
    imp_rpc_t *rpc = trigger->del_rpc;
    trigger->del_rpc = NULL;
    imp_rpc_answer(rpc, IMPULSE__ENVELOPE__BODY_TRIGGER_DELETE_OK, &ok);
  }
  if (trigger->removed) {
    /* Out of the list; the handles hold the last references. */
    trigger->next->prev = trigger->prev;
    trigger->prev->next = trigger->next;
    trigger->next = trigger->prev = trigger;
    uv_close((uv_handle_t *)&trigger->tick, on_trigger_handle_closed);
    uv_close((uv_handle_t *)&trigger->more, on_trigger_handle_closed);
    trigger_unref(trigger);
  }
}

static trigger_t *trigger_find(imp_triggers_t *triggers, const char *name) {
  for (trigger_t *t = triggers->list.next; t != &triggers->list; t = t->next)
    if (!t->removed && strcmp(t->spec->name, name) == 0) return t;
  return NULL;
}

/* ---- the broker ---------------------------------------------------------- */

static int restore_one(void *arg, const char *k, size_t kl, const char *v,
                       size_t vl) {
  imp_triggers_t *triggers = arg;
  Impulse__TriggerSpec *spec =
      impulse__trigger_spec__unpack(NULL, vl, (const uint8_t *)v);
  if (spec == NULL) {
    IMP_LOG(IMP_LOG_ERROR, "restore: undecodable trigger record (%.*s)",
            (int)kl, k);
    return 0;
  }
  trigger_t *trigger = trigger_new(triggers, spec);
  char err[512];
  if (triggers->env.kafka == NULL) {
    trigger_set_kafka_error(trigger, "no Kafka connection");
    return 0;
  }
  /* The embedded cluster starts empty: its topics are made again (at
   * once, in-process). An external cluster has them since the trigger was
   * created; asking it here could hold the server's start for seconds per
   * topic while it is unreachable. */
  if (imp_kafka_is_embedded(triggers->env.kafka) &&
      ensure_topics(triggers, spec, err, sizeof err) != 0)
    trigger_set_kafka_error(trigger, "%s", err); /* the consumer waits for it */
  if (trigger_start(trigger, err, sizeof err) != 0) return 0;
  IMP_LOG(IMP_LOG_DEBUG, "restored trigger %s (%s -> %s)", spec->name,
          spec->topic, spec->function);
  return 0;
}

/* The broker's woken: `function` freed slots (see part_pump). */
static void on_room(void *arg, const char *function) {
  imp_triggers_t *triggers = arg;
  for (trigger_t *t = triggers->list.next; t != &triggers->list; t = t->next)
    if (t->waiting && strcmp(t->spec->function, function) == 0) {
      t->waiting = 0;
      t->repump = 1;
      trigger_kick(t);
    }
}

static void on_flush_check(uv_check_t *check) {
  attempts_flush(IMP_CONTAINER_OF(check, imp_triggers_t, flush));
}

/* What the broker's pieces tell the pieces above them (trigger_types.h). */
static const trigger_hooks_t hooks = {
    .invoke = rec_invoke,        /* trigger_batch.c */
    .output = rec_output,        /* trigger_output.c */
    .free_slot = part_free_slot, /* trigger_partition.c */
    .finish = part_finish,       /* trigger_partition.c */
    .kick = trigger_kick,        /* trigger_consumer.c */
    .closed = trigger_closed,
};

int imp_triggers_open(const imp_triggers_env_t *env, imp_triggers_t **out) {
  imp_triggers_t *triggers = calloc(1, sizeof *triggers);
  if (triggers == NULL) return -ENOMEM;
  triggers->env = *env;
  triggers->hooks = &hooks;
  triggers->refs = 1;
  triggers->list.next = triggers->list.prev = &triggers->list;
  triggers->batch = imp_batch_new();
  triggers->rng = imp_now_ns() | 1;
  imp_ce_clock_init(&triggers->clock);
  uv_check_init(env->loop, &triggers->flush);
  uv_check_start(&triggers->flush, on_flush_check);
  uv_unref((uv_handle_t *)&triggers->flush);
  triggers->flush_open = 1;
  uv_idle_init(env->loop, &triggers->bq_idle);
  triggers->bq_idle_open = 1;
  env->cl->before_flush = batches_flush;
  env->cl->before_flush_arg = triggers;
  env->invoker->on_room = on_room;
  env->invoker->on_room_arg = triggers;
  if (env->metrics != NULL &&
      imp_metrics_register(env->metrics, triggers_collect, triggers) != 0)
    IMP_LOG(IMP_LOG_WARN, "no room for the trigger metrics");
  int rc = imp_store_scan(env->store, IMP_CF_TRIGGERS, NULL, 0, restore_one,
                          triggers);
  unsigned n = 0;
  for (trigger_t *t = triggers->list.next; t != &triggers->list; t = t->next)
    n++;
  if (n) IMP_LOG(IMP_LOG_INFO, "restored %u trigger%s", n, n == 1 ? "" : "s");
  *out = triggers;
  return rc;
}

void imp_triggers_close(imp_triggers_t *triggers, int timeout_ms) {
  if (triggers == NULL || triggers->closing) return;
  triggers->closing = 1;
  unsigned t = timeout_ms > 0 ? (unsigned)timeout_ms : 0;
  /* Calls under way get most of the time; leaving the group is quick. */
  unsigned drain = t / 2, close = t - drain;
  if (close > CLOSE_WAIT_MS) close = CLOSE_WAIT_MS;
  for (trigger_t *tr = triggers->list.next; tr != &triggers->list;
       tr = tr->next)
    trigger_stop(tr, drain, close);
}

int imp_triggers_closed(const imp_triggers_t *triggers) {
  if (triggers == NULL) return 1;
  if (!triggers->closing) return 0;
  for (const trigger_t *t = triggers->list.next; t != &triggers->list;
       t = t->next)
    if (t->state != T_CLOSED) return 0;
  return 1;
}

static void on_flush_closed(uv_handle_t *h) {
  triggers_unref(IMP_CONTAINER_OF(h, imp_triggers_t, flush));
}

static void on_bq_idle_closed(uv_handle_t *h) {
  triggers_unref(IMP_CONTAINER_OF(h, imp_triggers_t, bq_idle));
}

void imp_triggers_free(imp_triggers_t *triggers) {
  if (triggers == NULL) return;
  batches_flush(triggers); /* the server is stopping: the records stall */
  if (triggers->env.cl->before_flush_arg == triggers) {
    triggers->env.cl->before_flush = NULL;
    triggers->env.cl->before_flush_arg = NULL;
  }
  if (triggers->env.invoker->on_room_arg == triggers) {
    triggers->env.invoker->on_room = NULL;
    triggers->env.invoker->on_room_arg = NULL;
  }
  if (triggers->env.metrics != NULL)
    imp_metrics_unregister(triggers->env.metrics, triggers_collect, triggers);
  if (triggers->bq_idle_open) {
    triggers->bq_idle_open = 0;
    triggers->refs++;
    uv_close((uv_handle_t *)&triggers->bq_idle, on_bq_idle_closed);
  }
  attempts_flush(triggers);
  while (triggers->list.next != &triggers->list) {
    trigger_t *trigger = triggers->list.next;
    if (trigger->state != T_CLOSED) {
      trigger->state = T_CLOSING; /* nothing is committed any more */
      trigger->removed = 1;
      trigger_closed(trigger);
    } else {
      trigger->next->prev = trigger->prev;
      trigger->prev->next = trigger->next;
      uv_close((uv_handle_t *)&trigger->tick, on_trigger_handle_closed);
      uv_close((uv_handle_t *)&trigger->more, on_trigger_handle_closed);
      trigger_unref(trigger);
    }
  }
  triggers->freed = 1;
  if (triggers->flush_open) {
    triggers->refs++;
    uv_close((uv_handle_t *)&triggers->flush, on_flush_closed);
  }
  triggers_unref(triggers);
}

/* ---- RPC ----------------------------------------------------------------- */

void imp_triggers_create(imp_triggers_t *triggers, imp_rpc_t *rpc,
                         Impulse__Envelope *env) {
  const imp_triggers_env_t *tenv = &triggers->env;
  Impulse__TriggerSpec *req = env->trigger_create->spec;
  char err[768], group[80], dlq[260];
  if (triggers->closing) {
    imp_rpc_error(rpc, IMPULSE__ERROR_CODE__SHUTTING_DOWN,
                  "server is stopping");
    goto out;
  }
  Impulse__TriggerSpec s = *req;
  if (trigger_spec_check(&s, group, dlq, err, sizeof err) != 0) {
    imp_rpc_error(rpc, IMPULSE__ERROR_CODE__BAD_REQUEST, "%s", err);
    goto out;
  }
  if (trigger_find(triggers, s.name) != NULL) {
    imp_rpc_error(rpc, IMPULSE__ERROR_CODE__EXISTS,
                  "trigger '%s' already exists (remove it first)", s.name);
    goto out;
  }
  if (!tenv->invoker->ops->exists(tenv->invoker, s.function)) {
    imp_rpc_error(rpc, IMPULSE__ERROR_CODE__NOT_FOUND,
                  "unknown function '%s': deploy it before creating a "
                  "trigger for it",
                  s.function);
    goto out;
  }
  if (tenv->kafka == NULL) {
    imp_rpc_error(rpc, IMPULSE__ERROR_CODE__UNAVAILABLE,
                  "eventing is not available: no Kafka connection");
    goto out;
  }
  s.has_created_ms = 1;
  s.created_ms = imp_wall_ms();
  /* Topics first (bounded, a few seconds at most), so a record produced
   * right after the answer has somewhere to go. */
  if (ensure_topics(triggers, &s, err, sizeof err) != 0) {
    imp_rpc_error(rpc, IMPULSE__ERROR_CODE__UNAVAILABLE, "%s", err);
    goto out;
  }
  trigger_t *trigger = trigger_new(triggers, trigger_spec_clone(&s));
  int rc = consumer_open(trigger, err, sizeof err);
  if (rc == 0) {
    imp_batch_t *b = imp_batch_new();
    imp_batch_put_msg(b, tenv->store, IMP_CF_TRIGGERS, s.name, strlen(s.name),
                      &trigger->spec->base);
    char serr[256];
    rc = imp_store_write(tenv->store, b, 1, serr, sizeof serr);
    imp_batch_free(b);
    if (rc != 0) {
      snprintf(err, sizeof err, "could not store the trigger: %s", serr);
      rc = IMP_ESTORE;
    }
  }
  if (rc == 0) rc = consumer_subscribe(trigger, err, sizeof err);
  if (rc != 0 && rc != -EIO) {
    /* Not stored (or no consumer): gone again. */
    trigger->removed = 1;
    trigger->state = T_CLOSING;
    trigger_closed(trigger);
    imp_rpc_error(rpc,
                  rc == IMP_ESTORE ? IMPULSE__ERROR_CODE__INTERNAL
                                   : IMPULSE__ERROR_CODE__BAD_REQUEST,
                  "%s", err);
    goto out;
  }
  if (rc != 0)
    trigger_set_kafka_error(trigger, "%s", err); /* stored; shows in state */
  IMP_LOG(IMP_LOG_INFO, "trigger %s: %s -> %s (group %s, ordering %s)",
          trigger->spec->name, trigger->spec->topic, trigger->spec->function,
          trigger->spec->group, trigger->spec->ordering);
  Impulse__TriggerCreateResponse ok = IMPULSE__TRIGGER_CREATE_RESPONSE__INIT;
  ok.spec = trigger->spec;
  imp_rpc_answer(rpc, IMPULSE__ENVELOPE__BODY_TRIGGER_CREATE_OK, &ok);
out:
  impulse__envelope__free_unpacked(env, NULL);
}

void imp_triggers_delete(imp_triggers_t *triggers, imp_rpc_t *rpc,
                         Impulse__Envelope *env) {
  imp_store_t *store = triggers->env.store;
  const char *name = env->trigger_delete->name;
  trigger_t *trigger = trigger_find(triggers, name);
  if (trigger == NULL) {
    imp_rpc_error(rpc, IMPULSE__ERROR_CODE__NOT_FOUND, "unknown trigger '%s'",
                  name);
    goto out;
  }
  attempts_flush(triggers);
  imp_batch_t *b = imp_batch_new();
  /* Its attempt counts (their keys begin with its name and a NUL). */
  imp_batch_delete_prefix(b, store, IMP_CF_ATTEMPTS, name, strlen(name) + 1);
  imp_batch_delete(b, store, IMP_CF_TRIGGERS, name, strlen(name));
  char err[256];
  int rc = imp_store_write(store, b, 1, err, sizeof err);
  imp_batch_free(b);
  if (rc != 0) {
    imp_rpc_error(rpc, IMPULSE__ERROR_CODE__INTERNAL,
                  "could not store the deletion: %s", err);
    goto out;
  }
  IMP_LOG(IMP_LOG_INFO, "deleting trigger %s", name);
  trigger->removed = 1;
  /* Answered once stopped: invocations under way finish (bounded), their
   * offsets are committed and the consumer has left its group. */
  trigger->del_rpc = rpc;
  if (trigger->state == T_RUNNING)
    trigger_stop(trigger, DELETE_WAIT_MS, CLOSE_WAIT_MS);
  else if (trigger->state == T_CLOSED)
    trigger_closed(trigger);
out:
  impulse__envelope__free_unpacked(env, NULL);
}

void imp_triggers_list(imp_triggers_t *triggers, imp_rpc_t *rpc,
                       Impulse__Envelope *env) {
  size_t n = 0, np = 0;
  for (trigger_t *t = triggers->list.next; t != &triggers->list; t = t->next)
    if (!t->removed) {
      n++;
      np += t->nparts;
    }
  Impulse__TriggerInfo *infos = calloc(n + 1, sizeof *infos);
  Impulse__TriggerInfo **ip = calloc(n + 1, sizeof *ip);
  Impulse__PartitionInfo *parts = calloc(np + 1, sizeof *parts);
  Impulse__PartitionInfo **pp = calloc(np + 1, sizeof *pp);
  char(*states)[512] = calloc(n + 1, sizeof *states);
  if (!infos || !ip || !parts || !pp || !states) abort();
  size_t k = 0, off = 0;
  for (trigger_t *t = triggers->list.next; t != &triggers->list; t = t->next) {
    if (t->removed) continue;
    trigger_fill_info(t, &infos[k], parts + off, pp + off, states[k],
                      sizeof states[k]);
    off += t->nparts;
    ip[k] = &infos[k];
    k++;
  }
  Impulse__TriggerListResponse ok = IMPULSE__TRIGGER_LIST_RESPONSE__INIT;
  ok.n_triggers = k;
  ok.triggers = ip;
  imp_rpc_answer(rpc, IMPULSE__ENVELOPE__BODY_TRIGGER_LIST_OK, &ok);
  free(infos);
  free(ip);
  free(parts);
  free(pp);
  free(states);
  impulse__envelope__free_unpacked(env, NULL);
}

void imp_triggers_foreach(imp_triggers_t *triggers, imp_trigger_info_cb cb,
                          void *arg) {
  triggers_with_info(triggers, cb, arg);
}

static void describe_reply(void *arg, const Impulse__TriggerInfo *info) {
  imp_rpc_t *rpc = arg;
  Impulse__TriggerDescribeResponse ok =
      IMPULSE__TRIGGER_DESCRIBE_RESPONSE__INIT;
  ok.trigger = (Impulse__TriggerInfo *)info; /* only packed */
  imp_rpc_answer(rpc, IMPULSE__ENVELOPE__BODY_TRIGGER_DESCRIBE_OK, &ok);
}

void imp_triggers_describe(imp_triggers_t *triggers, imp_rpc_t *rpc,
                           Impulse__Envelope *env) {
  const char *name = env->trigger_describe->name;
  trigger_t *trigger = trigger_find(triggers, name);
  if (trigger == NULL) {
    imp_rpc_error(rpc, IMPULSE__ERROR_CODE__NOT_FOUND, "unknown trigger '%s'",
                  name);
    impulse__envelope__free_unpacked(env, NULL);
    return;
  }
  trigger_with_info(trigger, describe_reply, rpc);
  impulse__envelope__free_unpacked(env, NULL);
}
