/*
 * A trigger's Kafka consumer: created with the broker's fixed and default
 * properties, its queues served on the loop, rebalances, commit reports,
 * and leaving the group at a stop. It hands records to their partitions
 * (trigger_partition.h) and tells the broker that the trigger has stopped
 * through the broker's hooks (`closed`).
 */
#ifndef IMP_TRIGGER_CONSUMER_H
#define IMP_TRIGGER_CONSUMER_H

#include <stddef.h>

#include "eventing/trigger_types.h"

/* Creates the trigger's consumer (not subscribed yet). 0, or negative
 * with err. */
int consumer_open(trigger_t *trigger, char *err, size_t errlen);
/* Subscribes the consumer to the trigger's topic. 0, or -EIO with err. */
int consumer_subscribe(trigger_t *trigger, char *err, size_t errlen);
/* Destroys the consumer: it has left its group, or the wait for that is
 * over. */
void consumer_destroy(trigger_t *trigger);
/* Drains the consumer's queues (bounded per call) and moves a revoke or a
 * stop along. */
void trigger_service(trigger_t *trigger);
/* Services the trigger on the next loop turn. */
void trigger_kick(trigger_t *trigger);

#endif
