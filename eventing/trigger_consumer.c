/*
 * A trigger's Kafka consumer: created with the broker's fixed and default
 * properties, its queues served on the loop (imp_kafka_watch), rebalances
 * (revoked partitions drain before they are released), commit reports,
 * and leaving the group at a stop.
 */
#include "eventing/trigger_consumer.h"

#include <stdio.h>
#include <string.h>

#include "eventing/trigger_partition.h"
#include "eventing/trigger_util.h"

#define DRAIN_BATCH 2048     /* records per wake-up before yielding */
#define REVOKE_WAIT_MS 5000  /* in-flight calls of revoked partitions */
#define COMMIT_HOLD_MS 15000 /* commits refused during a rebalance */

static int is_cooperative(rd_kafka_t *rk) {
  const char *p = rd_kafka_rebalance_protocol(rk);
  return p != NULL && strcmp(p, "COOPERATIVE") == 0;
}

static void unassign(trigger_t *trigger,
                     const rd_kafka_topic_partition_list_t *list) {
  rd_kafka_error_t *error = NULL;
  rd_kafka_resp_err_t e = RD_KAFKA_RESP_ERR_NO_ERROR;
  if (is_cooperative(trigger->rk))
    error = rd_kafka_incremental_unassign(trigger->rk, list);
  else
    e = rd_kafka_assign(trigger->rk, NULL);
  if (error != NULL) {
    IMP_LOG(IMP_LOG_WARN, "trigger %s: unassign: %s", trigger->spec->name,
            rd_kafka_error_string(error));
    rd_kafka_error_destroy(error);
  } else if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
    IMP_LOG(IMP_LOG_WARN, "trigger %s: unassign: %s", trigger->spec->name,
            rd_kafka_err2str(e));
  }
}

/*
 * Rebalance, served by the drain on the loop thread. Revoked partitions
 * stop taking records; their invocations under way may finish (bounded by
 * REVOKE_WAIT_MS), then their low-water marks are committed and only then
 * are they unassigned (trigger_progress), so the next owner starts where
 * this one finished. Lost partitions are dropped at once: another member
 * owns them already and a commit would be refused.
 */
static void on_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts, void *opaque) {
  trigger_t *trigger = opaque;
  int coop = is_cooperative(rk);
  trigger->hold_rebalance = 0; /* this rebalance is over */
  if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
    if (trigger->hold_assigns > 0) trigger->hold_assigns--;
    if (trigger->state == T_RUNNING)
      for (int i = 0; i < parts->cnt; i++)
        if (strcmp(parts->elems[i].topic, trigger->spec->topic) == 0 &&
            part_new(trigger, parts->elems[i].partition) == NULL)
          IMP_LOG(IMP_LOG_ERROR, "trigger %s: cannot track partition %d",
                  trigger->spec->name, (int)parts->elems[i].partition);
    trigger->assigned = 1;
    rd_kafka_error_t *error = NULL;
    rd_kafka_resp_err_t e = RD_KAFKA_RESP_ERR_NO_ERROR;
    if (coop)
      error = rd_kafka_incremental_assign(rk, parts);
    else
      e = rd_kafka_assign(rk, parts);
    if (error) {
      trigger_set_kafka_error(trigger, "assign: %s",
                              rd_kafka_error_string(error));
      rd_kafka_error_destroy(error);
    } else if (e) {
      trigger_set_kafka_error(trigger, "assign: %s", rd_kafka_err2str(e));
    }
    if (parts->cnt > 0 && trigger->adminq != NULL) {
      /* The group's committed offsets, for describe, without blocking. */
      rd_kafka_ListConsumerGroupOffsets_t *req =
          rd_kafka_ListConsumerGroupOffsets_new(trigger->spec->group, parts);
      rd_kafka_ListConsumerGroupOffsets(rk, &req, 1, NULL, trigger->adminq);
      rd_kafka_ListConsumerGroupOffsets_destroy(req);
    }
    IMP_LOG(IMP_LOG_INFO, "trigger %s: assigned %d partition%s of %s",
            trigger->spec->name, parts->cnt, parts->cnt == 1 ? "" : "s",
            trigger->spec->topic);
    return;
  }
  int lost = err != RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS ||
             rd_kafka_assignment_lost(rk);
  if (err != RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS)
    trigger_set_kafka_error(trigger, "rebalance failed: %s",
                            rd_kafka_err2str(err));
  IMP_LOG(IMP_LOG_INFO, "trigger %s: %s %d partition%s of %s",
          trigger->spec->name, lost ? "lost" : "revoked", parts->cnt,
          parts->cnt == 1 ? "" : "s", trigger->spec->topic);
  if (lost) trigger->hold_assigns = 0;
  if (lost || trigger->state >= T_CLOSING) {
    parts_release(trigger, parts, lost);
    unassign(trigger, parts);
    return;
  }
  for (int i = 0; i < parts->cnt; i++) {
    part_t *part = part_get(trigger, parts->elems[i].partition);
    if (part) part_stop(part);
  }
  if (trigger->revoking) { /* not expected: one rebalance at a time */
    parts_release(trigger, trigger->revoking, 0);
    unassign(trigger, trigger->revoking);
    rd_kafka_topic_partition_list_destroy(trigger->revoking);
  }
  trigger->revoking = rd_kafka_topic_partition_list_copy(parts);
  trigger->revoke_deadline = imp_now_ms() + REVOKE_WAIT_MS;
  trigger_kick(trigger);
}

static void on_commit(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                      rd_kafka_topic_partition_list_t *offsets, void *opaque) {
  trigger_t *trigger = opaque;
  (void)rk;
  if (err == RD_KAFKA_RESP_ERR__NO_OFFSET) return;
  int rebalancing = err == RD_KAFKA_RESP_ERR_REBALANCE_IN_PROGRESS;
  for (int i = 0; offsets && i < offsets->cnt; i++)
    if (offsets->elems[i].err == RD_KAFKA_RESP_ERR_REBALANCE_IN_PROGRESS)
      rebalancing = 1;
  if (rebalancing) {
    /*
     * The group coordinator refuses commits while it rebalances (a real
     * broker takes them with the current generation; the embedded cluster
     * does not). Committing again with the generation that is about to
     * end gets ILLEGAL_GENERATION, and librdkafka then treats the whole
     * assignment as lost, so all the work since the last commit would be
     * done again. Hold the periodic commits until the rebalance callback
     * says it is over; the revoke path commits the revoked partitions.
     */
    trigger->hold_rebalance = 1;
    trigger->commit_hold_until = imp_now_ms() + COMMIT_HOLD_MS;
    IMP_LOG(IMP_LOG_DEBUG, "trigger %s: group rebalancing: commits held",
            trigger->spec->name);
  } else if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    trigger_set_kafka_error(trigger, "commit: %s", rd_kafka_err2str(err));
  }
  for (int i = 0; offsets && i < offsets->cnt; i++) {
    part_t *part = part_get(trigger, offsets->elems[i].partition);
    if (part == NULL) continue;
    if (err == 0 && offsets->elems[i].err == 0) {
      if (offsets->elems[i].offset > part->committed)
        part->committed = offsets->elems[i].offset;
    } else if (part->commit_sent == offsets->elems[i].offset) {
      part->commit_sent = part->committed; /* tried again next tick */
    }
  }
}

static void on_consumer_error(rd_kafka_t *rk, int err, const char *reason,
                              void *opaque) {
  trigger_t *trigger = opaque;
  if (err == RD_KAFKA_RESP_ERR__FATAL) {
    char why[256];
    rd_kafka_fatal_error(rk, why, sizeof why);
    trigger_set_kafka_error(trigger, "consumer failed: %s", why);
    return;
  }
  trigger_set_kafka_error(trigger, "%s", reason);
}

/* Committed offsets of partitions just assigned (describe shows them until
 * this server commits its own). */
static void on_admin_event(trigger_t *trigger, rd_kafka_event_t *ev) {
  if (rd_kafka_event_type(ev) != RD_KAFKA_EVENT_LISTCONSUMERGROUPOFFSETS_RESULT)
    return;
  if (rd_kafka_event_error(ev) != RD_KAFKA_RESP_ERR_NO_ERROR) {
    IMP_LOG(IMP_LOG_DEBUG, "trigger %s: committed offsets: %s",
            trigger->spec->name, rd_kafka_event_error_string(ev));
    return;
  }
  const rd_kafka_ListConsumerGroupOffsets_result_t *res =
      rd_kafka_event_ListConsumerGroupOffsets_result(ev);
  size_t n = 0;
  const rd_kafka_group_result_t **groups =
      rd_kafka_ListConsumerGroupOffsets_result_groups(res, &n);
  for (size_t g = 0; g < n; g++) {
    const rd_kafka_topic_partition_list_t *l =
        rd_kafka_group_result_partitions(groups[g]);
    for (int i = 0; l && i < l->cnt; i++) {
      part_t *part = part_get(trigger, l->elems[i].partition);
      if (part == NULL || l->elems[i].err || l->elems[i].offset < 0) continue;
      if (l->elems[i].offset > part->committed)
        part->committed = l->elems[i].offset;
      if (l->elems[i].offset > part->commit_sent)
        part->commit_sent = l->elems[i].offset;
    }
  }
}

/*
 * Serves the queue rd_kafka_consumer_close_queue() reports on. The
 * consumer's own queue is forwarded there, records it still held
 * included, so it is polled as events (rd_kafka_queue_poll_callback()
 * asserts on a record): callbacks run, records are dropped (uncommitted,
 * they come again), a rebalance handed back as an event is served here.
 */
static void close_queue_drain(trigger_t *trigger) {
  rd_kafka_event_t *ev;
  while (trigger->closeq != NULL &&
         (ev = rd_kafka_queue_poll(trigger->closeq, 0)) != NULL) {
    if (rd_kafka_event_type(ev) == RD_KAFKA_EVENT_REBALANCE) {
      rd_kafka_topic_partition_list_t *l =
          rd_kafka_event_topic_partition_list(ev);
      if (l != NULL)
        on_rebalance(trigger->rk, rd_kafka_event_error(ev), l, trigger);
    }
    rd_kafka_event_destroy(ev);
  }
}

static void trigger_progress(trigger_t *trigger);

/* Drains the consumer queue (bounded per wake-up) and moves stop and
 * revoke along. */
void trigger_service(trigger_t *trigger) {
  if (trigger->state == T_CLOSED) return;
  trigger->refs++; /* a callback below may drop the last other reference */
  if (trigger->ordering == ORD_KEY) { /* part_pump() does it otherwise */
    imp_invoker_t *inv = trigger->triggers->env.invoker;
    inv->ops->queue_room(inv, trigger->spec->function, 0, &trigger->batch_max);
  }
  if (trigger->repump && trigger->state == T_RUNNING) {
    trigger->repump = 0;
    for (size_t i = 0; i < trigger->nparts; i++)
      if (trigger->parts[i] != NULL) part_pump(trigger->parts[i]);
  }
  if (trigger->rk != NULL && trigger->state < T_CLOSING) {
    int n = 0;
    rd_kafka_message_t *msg;
    while (n < DRAIN_BATCH &&
           (msg = rd_kafka_consumer_poll(trigger->rk, 0)) != NULL) {
      n++;
      if (msg->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        if (trigger->state == T_RUNNING) trigger_on_record(trigger, msg);
      } else if (msg->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
        trigger_set_kafka_error(trigger, "%s", rd_kafka_message_errstr(msg));
      }
      rd_kafka_message_destroy(msg);
      if (trigger->state >= T_CLOSING) break;
    }
    if (n == DRAIN_BATCH) trigger_kick(trigger);
  }
  rd_kafka_event_t *ev;
  while (trigger->adminq != NULL &&
         (ev = rd_kafka_queue_poll(trigger->adminq, 0)) != NULL) {
    on_admin_event(trigger, ev);
    rd_kafka_event_destroy(ev);
  }
  if (trigger->closeq != NULL && trigger->state == T_CLOSING)
    close_queue_drain(trigger);
  trigger_progress(trigger);
  trigger_unref(trigger);
}

static void on_consumer_events(void *arg) {
  trigger_service(arg);
}

static void on_more(uv_timer_t *t) {
  trigger_service(IMP_CONTAINER_OF(t, trigger_t, more));
}

/* Services the trigger on the next loop turn. */
void trigger_kick(trigger_t *trigger) {
  if (trigger->state != T_CLOSED &&
      !uv_is_active((uv_handle_t *)&trigger->more))
    uv_timer_start(&trigger->more, on_more, 0, 0);
}

/* Whether the user set a librdkafka property with --kafka-opt. */
static int user_set(const imp_triggers_env_t *env, const char *name) {
  size_t n = strlen(name);
  for (size_t i = 0; i < env->nkafka_props; i++)
    if (strncmp(env->kafka_props[i], name, n) == 0 &&
        env->kafka_props[i][n] == '=')
      return 1;
  return 0;
}

/* Creates the consumer (not subscribed yet). 0, or negative with err. */
int consumer_open(trigger_t *trigger, char *err, size_t errlen) {
  const imp_triggers_env_t *env = &trigger->triggers->env;
  Impulse__TriggerSpec *spec = trigger->spec;
  if (env->kafka == NULL) {
    snprintf(err, errlen, "no Kafka connection");
    return -ENOTCONN;
  }
  rd_kafka_conf_t *conf = imp_kafka_conf(env->kafka, err, errlen);
  if (conf == NULL) return -EINVAL;
  char client_id[100];
  snprintf(client_id, sizeof client_id, "impulse-trigger-%s", spec->name);
  int embedded = imp_kafka_is_embedded(env->kafka);
  /* Ours always: the broker depends on them. */
  /* clang-format off */
  const char *fixed[] = {
      "group.id", spec->group,
      "enable.auto.commit", "false",
      "enable.auto.offset.store", "false",
      "enable.partition.eof", "false",
      "auto.offset.reset", spec->from,
      NULL};
  /* Defaults the user may override with --kafka-opt. The embedded cluster
   * answers an empty Fetch only after the full fetch.wait.max.ms, so it
   * gets a few ms; a real cluster answers as soon as data arrives. */
  const char *defaults[] = {
      "client.id", client_id,
      "partition.assignment.strategy", "cooperative-sticky",
      "session.timeout.ms", "6000",
      "heartbeat.interval.ms", "500",
      "fetch.wait.max.ms", embedded ? "5" : "100",
      NULL};
  /* clang-format on */
  char why[256];
  for (size_t i = 0; fixed[i]; i += 2)
    if (rd_kafka_conf_set(conf, fixed[i], fixed[i + 1], why, sizeof why) !=
        RD_KAFKA_CONF_OK) {
      snprintf(err, errlen, "%s=%s: %s", fixed[i], fixed[i + 1], why);
      rd_kafka_conf_destroy(conf);
      return -EINVAL;
    }
  for (size_t i = 0; defaults[i]; i += 2)
    if (!user_set(env, defaults[i]) &&
        rd_kafka_conf_set(conf, defaults[i], defaults[i + 1], why,
                          sizeof why) != RD_KAFKA_CONF_OK) {
      snprintf(err, errlen, "%s=%s: %s", defaults[i], defaults[i + 1], why);
      rd_kafka_conf_destroy(conf);
      return -EINVAL;
    }
  rd_kafka_conf_set_opaque(conf, trigger);
  rd_kafka_conf_set_rebalance_cb(conf, on_rebalance);
  rd_kafka_conf_set_offset_commit_cb(conf, on_commit);
  rd_kafka_conf_set_error_cb(conf, on_consumer_error);
  rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, why, sizeof why);
  if (rk == NULL) {
    rd_kafka_conf_destroy(conf);
    snprintf(err, errlen, "cannot create the consumer: %s", why);
    return -EINVAL;
  }
  rd_kafka_poll_set_consumer(rk);
  trigger->rk = rk;
  trigger->cq = rd_kafka_queue_get_consumer(rk);
  trigger->watch =
      imp_kafka_watch(env->loop, trigger->cq, on_consumer_events, trigger);
  trigger->adminq = rd_kafka_queue_new(rk);
  trigger->admin_watch =
      imp_kafka_watch(env->loop, trigger->adminq, on_consumer_events, trigger);
  if (trigger->cq == NULL || trigger->watch == NULL ||
      trigger->admin_watch == NULL) {
    snprintf(err, errlen, "cannot watch the consumer's queues");
    return -ENOMEM;
  }
  return 0;
}

int consumer_subscribe(trigger_t *trigger, char *err, size_t errlen) {
  rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
  rd_kafka_topic_partition_list_add(l, trigger->spec->topic,
                                    RD_KAFKA_PARTITION_UA);
  rd_kafka_resp_err_t e = rd_kafka_subscribe(trigger->rk, l);
  rd_kafka_topic_partition_list_destroy(l);
  if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
    snprintf(err, errlen, "cannot subscribe to %s: %s", trigger->spec->topic,
             rd_kafka_err2str(e));
    return -EIO;
  }
  return 0;
}

/* Destroys the consumer: it has left its group, or the wait for that is
 * over. librdkafka then joins its threads, which takes a few ms. */
void consumer_destroy(trigger_t *trigger) {
  imp_kafka_unwatch(trigger->watch);
  imp_kafka_unwatch(trigger->close_watch);
  imp_kafka_unwatch(trigger->admin_watch);
  trigger->watch = trigger->close_watch = trigger->admin_watch = NULL;
  if (trigger->closeq) rd_kafka_queue_destroy(trigger->closeq);
  if (trigger->cq) rd_kafka_queue_destroy(trigger->cq);
  if (trigger->adminq) rd_kafka_queue_destroy(trigger->adminq);
  trigger->closeq = trigger->cq = trigger->adminq = NULL;
  if (trigger->rk == NULL) return;
  if (rd_kafka_consumer_closed(trigger->rk))
    rd_kafka_destroy(trigger->rk);
  else
    rd_kafka_destroy_flags(trigger->rk, RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
  trigger->rk = NULL;
}

/* Moves a revoke or a stop along once what it waits for is done or its
 * time is up. */
static void trigger_progress(trigger_t *trigger) {
  uint64_t now = imp_now_ms();
  if (trigger->revoking != NULL &&
      (parts_busy(trigger, trigger->revoking) == 0 ||
       now >= trigger->revoke_deadline || trigger->state != T_RUNNING)) {
    parts_release(trigger, trigger->revoking, 0);
    /* The partitions kept are committed too, now: once unassigned, the
     * consumer rejoins for a follow-up rebalance, and a commit that meets
     * the generation changing under it is refused with ILLEGAL_GENERATION,
     * which makes librdkafka drop the whole assignment as lost. So the
     * periodic commits wait for that round to end: one assign callback
     * right after the unassign, one when the round completes (bounded). */
    trigger_commit(trigger, 1);
    unassign(trigger, trigger->revoking);
    rd_kafka_topic_partition_list_destroy(trigger->revoking);
    trigger->revoking = NULL;
    if (trigger->rk && is_cooperative(trigger->rk)) {
      trigger->hold_assigns = 2;
      trigger->commit_hold_until = now + COMMIT_HOLD_MS;
    }
  }
  if (trigger->state == T_DRAINING &&
      (parts_busy(trigger, NULL) == 0 || now >= trigger->drain_deadline)) {
    if (parts_busy(trigger, NULL) > 0)
      IMP_LOG(IMP_LOG_WARN,
              "trigger %s: %u invocations still under way are "
              "given up (their records come again)",
              trigger->spec->name, parts_busy(trigger, NULL));
    parts_release(trigger, NULL, 0);
    if (trigger->rk == NULL) {
      trigger->triggers->hooks->closed(trigger);
      return;
    }
    trigger->state = T_CLOSING;
    trigger->closeq = rd_kafka_queue_new(trigger->rk);
    trigger->close_watch =
        imp_kafka_watch(trigger->triggers->env.loop, trigger->closeq,
                        on_consumer_events, trigger);
    rd_kafka_error_t *error =
        rd_kafka_consumer_close_queue(trigger->rk, trigger->closeq);
    if (error != NULL) {
      IMP_LOG(IMP_LOG_WARN, "trigger %s: close: %s", trigger->spec->name,
              rd_kafka_error_string(error));
      rd_kafka_error_destroy(error);
      trigger->triggers->hooks->closed(trigger);
      return;
    }
  }
  if (trigger->state == T_CLOSING) {
    close_queue_drain(trigger);
    if (rd_kafka_consumer_closed(trigger->rk)) {
      trigger->triggers->hooks->closed(trigger);
    } else if (now >= trigger->close_deadline) {
      IMP_LOG(IMP_LOG_WARN,
              "trigger %s: the consumer did not leave its group "
              "in time",
              trigger->spec->name);
      trigger->triggers->hooks->closed(trigger);
    }
  }
}
