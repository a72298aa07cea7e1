/*
 * The partitions assigned to a trigger: records taken and started as the
 * ordering and the function's room allow, a record's finish and the slot
 * it frees, pause and resume, commits, release. It starts records
 * (trigger_record.h) and asks for the trigger to be serviced through the
 * broker's hooks (`kick`).
 */
#ifndef IMP_TRIGGER_PARTITION_H
#define IMP_TRIGGER_PARTITION_H

#include <stdint.h>

#include "eventing/kafka.h"
#include "eventing/trigger_types.h"

/* A record consumed from an assigned partition (`msg` borrowed). */
void trigger_on_record(trigger_t *trigger, const rd_kafka_message_t *msg);
/* Starts the records the ordering and the function's room allow. */
void part_pump(part_t *part);
/* The record's reply is with the producer: its invocation slot (and its
 * key, with ordering key) go to the next record. The broker's free_slot
 * hook. */
void part_free_slot(rec_t *rec);
/* The record no longer holds back its partition's commit; what waited for
 * it starts. May free the record. The broker's finish hook. */
void part_finish(rec_t *rec);
/* The assigned partition `id`, or NULL. */
part_t *part_get(trigger_t *trigger, int32_t id);
/* Starts tracking an assigned partition (or returns it when tracked);
 * NULL without memory or for an id out of range. */
part_t *part_new(trigger_t *trigger, int32_t id);
/* Nothing new starts; records waiting for a retry stop waiting. */
void part_stop(part_t *part);
/* Commits every partition's low-water mark that moved (force: even while
 * commits are held for a rebalance). */
void trigger_commit(trigger_t *trigger, int force);
/* Releases the listed partitions (all when `which` is NULL), committing
 * their low-water marks unless `lost`. */
void parts_release(trigger_t *trigger,
                   const rd_kafka_topic_partition_list_t *which, int lost);
/* Invocations running or awaiting their reply in the listed partitions
 * (all when `which` is NULL). */
unsigned parts_busy(trigger_t *trigger,
                    const rd_kafka_topic_partition_list_t *which);

#endif
