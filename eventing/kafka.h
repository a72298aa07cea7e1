/*
 * Kafka connection of a server: an external cluster (--kafka) or an
 * embedded Kafka-protocol cluster (librdkafka's mock cluster, in memory),
 * plus a shared idempotent producer driven from the libuv loop.
 */
#ifndef IMP_KAFKA_H
#define IMP_KAFKA_H

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "impulse.pb-c.h"

#define IMP_KAFKA_DEFAULT_BROKERS 3u    /* of an embedded cluster */
#define IMP_KAFKA_DEFAULT_PARTITIONS 8u /* of a topic made on demand */
#define IMP_KAFKA_MAX_PARTITIONS 10000  /* of any topic */

typedef struct imp_kafka_s imp_kafka_t;

typedef struct imp_kafka_opts_s {
  const char *bootstrap;     /* "host:port,..."; NULL = embedded cluster */
  unsigned embedded_brokers; /* brokers of the embedded cluster [3] */
  const char *const *props;  /* librdkafka "name=value" pass-through */
  size_t nprops;
  unsigned default_partitions; /* topics created on demand [8] */
  size_t max_message;          /* largest record produced [1 MiB] */
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
 * or hand it to rd_kafka_new). NULL with a message on failure. Its log
 * callback writes librdkafka's lines to the server log (from librdkafka's
 * threads). */
rd_kafka_conf_t *imp_kafka_conf(const imp_kafka_t *kafka, char *err,
                                size_t errlen);

/* Makes sure `topic` exists, creating it with `partitions` partitions (0 =
 * the default) if needed: the mock API in embedded mode, the Admin API
 * otherwise (on `impulse kafka` reached with --kafka: a Metadata request,
 * which creates it with the mock's default of 4 partitions). An existing
 * topic keeps its count; topics known to exist are remembered, so later
 * calls for them cost nothing. Blocks for at most a few seconds; while the
 * cluster does not answer, fails at once for a few seconds. 0, or negative
 * (-EINVAL for a bad name or count) with err. */
int imp_kafka_ensure_topic(imp_kafka_t *kafka, const char *topic,
                           int partitions, char *err, size_t errlen);

/* Number of partitions of a topic from metadata (blocks up to timeout_ms,
 * 0 = a few seconds), -ENOENT when it does not exist, or another negative
 * error. Never creates the topic. */
int imp_kafka_partition_count(imp_kafka_t *kafka, const char *topic,
                              int timeout_ms);

/* Called once per produced record on the loop thread: err 0 with the
 * partition and offset, or negative with a message. */
typedef void (*imp_kafka_produce_cb)(void *arg, int err, const char *errstr,
                                     int32_t partition, int64_t offset);

/* Produces one record (copied; key NULL = no key) with the shared
 * producer. partition < 0 lets the partitioner choose. A topic not known
 * yet is first ensured (see imp_kafka_ensure_topic: may block). Returns 0
 * and later calls cb exactly once (also from imp_kafka_close(), then with
 * IMP_ECANCELED), or a negative error and cb is never called: -EMSGSIZE
 * above imp_kafka_max_message(), -ENOBUFS when the producer's queue is full,
 * -ENOENT unknown partition, -ESHUTDOWN while closing. Errors given to cb:
 * -EMSGSIZE, -ETIMEDOUT, -ENOENT, -EACCES, IMP_ECANCELED, -EIO. */
int imp_kafka_produce(imp_kafka_t *kafka, const char *topic, int32_t partition,
                      const void *key, size_t klen, const void *value,
                      size_t vlen, Impulse__Header *const *headers,
                      size_t nheaders, imp_kafka_produce_cb cb, void *arg);

/* Watches an rd_kafka queue from the loop: `cb` runs on the loop thread
 * whenever the queue may have events. The owner drains it without blocking
 * until it is empty (a new event on a non-empty queue wakes nobody); events
 * already queued when the watch starts are signalled once. The watch does
 * not keep the loop alive (uv_unref). `queue` is borrowed: unwatch before
 * destroying it. NULL on failure (logged). */
typedef struct imp_kafka_watch_s imp_kafka_watch_t;
imp_kafka_watch_t *imp_kafka_watch(uv_loop_t *loop, rd_kafka_queue_t *queue,
                                   void (*cb)(void *arg), void *arg);
/* Stops watching; the watch is freed asynchronously. */
void imp_kafka_unwatch(imp_kafka_watch_t *watch);

/* 1 when the cluster is librdkafka's mock cluster: the embedded one, or
 * `impulse kafka` reached with --kafka (its traits differ from a real
 * cluster's: an empty Fetch waits the full fetch.wait.max.ms, no Admin
 * API). Asks the cluster once, which may block up to a few seconds. */
int imp_kafka_is_mock(imp_kafka_t *kafka);

/* Records produced whose delivery callback has not run yet. */
size_t imp_kafka_in_flight(const imp_kafka_t *kafka);

/* Largest record imp_kafka_produce() accepts: key + value + header names
 * and values, in bytes. */
size_t imp_kafka_max_message(const imp_kafka_t *kafka);

/* Starts librdkafka's mock cluster of `brokers` brokers, owned by a handle
 * of its own (*rkp; the cluster is *mcp): the embedded cluster of a server,
 * or of `impulse kafka`. Returns 0, or a negative error with a message in
 * err. Stop it with rd_kafka_mock_cluster_destroy(), then
 * rd_kafka_destroy() of the handle. Its log lines go to the server log. */
int imp_kafka_mock_start(unsigned brokers, rd_kafka_t **rkp,
                         rd_kafka_mock_cluster_t **mcp, char *err,
                         size_t errlen);

#endif
