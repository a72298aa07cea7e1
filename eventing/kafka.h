/*
 * Kafka connection of a server: an external cluster (--kafka) or an
 * embedded Kafka-protocol cluster (librdkafka's mock cluster, in memory),
 * plus a shared idempotent producer driven from the libuv loop.
 */
#ifndef IMP_KAFKA_H
#define IMP_KAFKA_H

#include <librdkafka/rdkafka.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "impulse.pb-c.h"

typedef struct imp_kafka_s imp_kafka_t;

typedef struct imp_kafka_opts_s {
  const char *bootstrap;        /* "host:port,..."; NULL = embedded cluster */
  unsigned embedded_brokers;    /* brokers of the embedded cluster [3] */
  const char *const *props;     /* librdkafka "name=value" pass-through */
  size_t nprops;
  unsigned default_partitions;  /* topics created on demand [8] */
  size_t max_message;           /* largest record produced [1 MiB] */
} imp_kafka_opts_t;

/* Connects (or starts the embedded cluster) and starts the producer, whose
 * delivery reports are served on `loop`. Returns 0 or a negative error with
 * a message in err. Free with imp_kafka_close(). */
int imp_kafka_open(uv_loop_t *loop, const imp_kafka_opts_t *opts,
                   imp_kafka_t **out, char *err, size_t errlen);

/* Flushes the producer (bounded by timeout_ms), destroys the clients and the
 * embedded cluster. Delivery callbacks still pending get an error. */
void imp_kafka_close(imp_kafka_t *kafka, int timeout_ms);

/* Bootstrap address clients should use (borrowed). */
const char *imp_kafka_bootstrap(const imp_kafka_t *kafka);
int imp_kafka_is_embedded(const imp_kafka_t *kafka);

/* A new librdkafka configuration with the bootstrap servers and every
 * pass-through property applied; the caller owns it (rd_kafka_conf_destroy,
 * or hand it to rd_kafka_new). NULL with a message on failure. */
rd_kafka_conf_t *imp_kafka_conf(const imp_kafka_t *kafka, char *err,
                                size_t errlen);

/* Makes sure `topic` exists, creating it with `partitions` partitions (0 =
 * the default) if needed: the mock API in embedded mode, the Admin API
 * otherwise. Blocks for at most a few seconds. 0 or negative with err. */
int imp_kafka_ensure_topic(imp_kafka_t *kafka, const char *topic,
                           int partitions, char *err, size_t errlen);

/* Number of partitions of a topic from metadata, or a negative error. */
int imp_kafka_partition_count(imp_kafka_t *kafka, const char *topic,
                              int timeout_ms);

/* Called once per produced record on the loop thread: err 0 with the
 * partition and offset, or negative with a message. */
typedef void (*imp_kafka_produce_cb)(void *arg, int err, const char *errstr,
                                     int32_t partition, int64_t offset);

/* Produces one record (copied) with the shared producer. partition < 0 lets
 * the partitioner choose. Returns 0 and later calls cb exactly once, or a
 * negative error (cb never called): -EMSGSIZE above max_message. */
int imp_kafka_produce(imp_kafka_t *kafka, const char *topic, int32_t partition,
                      const void *key, size_t klen, const void *value,
                      size_t vlen, Impulse__Header *const *headers,
                      size_t nheaders, imp_kafka_produce_cb cb, void *arg);

/* Watches an rd_kafka queue from the loop: `cb` runs on the loop thread
 * whenever the queue may have events (drain it without blocking). */
typedef struct imp_kafka_watch_s imp_kafka_watch_t;
imp_kafka_watch_t *imp_kafka_watch(uv_loop_t *loop, rd_kafka_queue_t *queue,
                                   void (*cb)(void *arg), void *arg);
/* Stops watching; the watch is freed asynchronously. */
void imp_kafka_unwatch(imp_kafka_watch_t *watch);

/* Entry point of `impulse kafka ...` (argv[0] is "kafka"): a standalone
 * embedded cluster. */
int imp_kafka_main(int argc, char **argv);

#endif
