/*
 * The librdkafka clients of impulse-bench-events (events.c): an idempotent
 * producer that counts its delivery reports, and a consumer in a group of
 * its own reading one topic from earliest. Errors are printed on stderr
 * as "impulse-bench-events: why". Nothing here is installed or used
 * outside bench/.
 */
#ifndef IMP_BENCH_EVENTS_KAFKA_H
#define IMP_BENCH_EVENTS_KAFKA_H

#include <librdkafka/rdkafka.h>
#include <stdatomic.h>
#include <stddef.h>

/* Delivery reports of a producer: acknowledged and failed messages. */
typedef struct ek_reports_s {
  atomic_ulong ok, failed;
} ek_reports_t;

/* An idempotent producer on `bootstrap` (borrowed) with linger.ms
 * `linger_ms`; its delivery reports are counted in *reports (borrowed, may
 * be NULL; it must outlive the producer). Returns the producer (free with
 * rd_kafka_destroy()) or NULL. */
rd_kafka_t *ek_producer(const char *bootstrap, const char *linger_ms,
                        ek_reports_t *reports);

/* Produces one message (copied), waiting while the queue is full unless
 * interrupted. Returns 0 or -1. */
int ek_produce(rd_kafka_t *rk, const char *topic, const char *key,
               const void *value, size_t len);

/* A consumer in `group` subscribed to `topic`, from earliest, with no
 * automatic commit. Returns it (close with ek_consumer_close()) or NULL. */
rd_kafka_t *ek_consumer(const char *bootstrap, const char *group,
                        const char *topic);

/* Leaves the group and destroys the consumer. */
void ek_consumer_close(rd_kafka_t *rk);

/* Waits at most `timeout_ms` until the consumer is assigned at least
 * `want` partitions (polling it meanwhile: messages read are dropped).
 * Returns 0, or -1 on time-out or interruption. */
int ek_wait_assigned(rd_kafka_t *rk, int want, unsigned timeout_ms);

#endif
