/*
 * The librdkafka clients of impulse-bench-events; see events_kafka.h.
 */
#include "events_kafka.h"

#include <stdio.h>
#include <string.h>

#include "bench.h"

static void on_dr(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque) {
  (void)rk;
  ek_reports_t *reports = opaque;
  if (reports == NULL) return;
  if (m->err)
    atomic_fetch_add(&reports->failed, 1);
  else
    atomic_fetch_add(&reports->ok, 1);
}

static int conf_set(rd_kafka_conf_t *conf, const char *k, const char *v) {
  char err[256];
  if (rd_kafka_conf_set(conf, k, v, err, sizeof err) != RD_KAFKA_CONF_OK) {
    fprintf(stderr, "impulse-bench-events: %s=%s: %s\n", k, v, err);
    return -1;
  }
  return 0;
}

static rd_kafka_conf_t *base_conf(const char *bootstrap) {
  rd_kafka_conf_t *conf = rd_kafka_conf_new();
  conf_set(conf, "bootstrap.servers", bootstrap);
  return conf;
}

/* rd_kafka_new() of a `type` client on `conf` (taken, also on failure). */
static rd_kafka_t *new_client(rd_kafka_type_t type, rd_kafka_conf_t *conf) {
  char err[256];
  rd_kafka_t *rk = rd_kafka_new(type, conf, err, sizeof err);
  if (rk == NULL) {
    fprintf(stderr, "impulse-bench-events: %s: %s\n",
            type == RD_KAFKA_PRODUCER ? "producer" : "consumer", err);
    rd_kafka_conf_destroy(conf);
  }
  return rk;
}

rd_kafka_t *ek_producer(const char *bootstrap, const char *linger_ms,
                        ek_reports_t *reports) {
  rd_kafka_conf_t *conf = base_conf(bootstrap);
  conf_set(conf, "enable.idempotence", "true");
  conf_set(conf, "linger.ms", linger_ms);
  conf_set(conf, "queue.buffering.max.messages", "1000000");
  rd_kafka_conf_set_dr_msg_cb(conf, on_dr);
  rd_kafka_conf_set_opaque(conf, reports);
  return new_client(RD_KAFKA_PRODUCER, conf);
}

int ek_produce(rd_kafka_t *rk, const char *topic, const char *key,
               const void *value, size_t len) {
  for (int tries = 0;; tries++) {
    rd_kafka_resp_err_t e = rd_kafka_producev(
        rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY(key, strlen(key)),
        RD_KAFKA_V_VALUE((void *)value, len),
        RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
    if (e == RD_KAFKA_RESP_ERR_NO_ERROR) return 0;
    if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL || tries > 10000 ||
        bench_interrupted) {
      fprintf(stderr, "impulse-bench-events: produce: %s\n",
              rd_kafka_err2str(e));
      return -1;
    }
    rd_kafka_poll(rk, 1);
  }
}

rd_kafka_t *ek_consumer(const char *bootstrap, const char *group,
                        const char *topic) {
  rd_kafka_conf_t *conf = base_conf(bootstrap);
  conf_set(conf, "group.id", group);
  conf_set(conf, "auto.offset.reset", "earliest");
  conf_set(conf, "fetch.wait.max.ms", "5");
  conf_set(conf, "session.timeout.ms", "6000");
  conf_set(conf, "enable.auto.commit", "false");
  conf_set(conf, "enable.partition.eof", "false");
  rd_kafka_t *rk = new_client(RD_KAFKA_CONSUMER, conf);
  if (rk == NULL) return NULL;
  rd_kafka_poll_set_consumer(rk);
  rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
  rd_kafka_topic_partition_list_add(l, topic, RD_KAFKA_PARTITION_UA);
  rd_kafka_resp_err_t e = rd_kafka_subscribe(rk, l);
  rd_kafka_topic_partition_list_destroy(l);
  if (e) {
    fprintf(stderr, "impulse-bench-events: subscribe: %s\n",
            rd_kafka_err2str(e));
    rd_kafka_destroy(rk);
    return NULL;
  }
  return rk;
}

void ek_consumer_close(rd_kafka_t *rk) {
  rd_kafka_consumer_close(rk);
  rd_kafka_destroy(rk);
}

int ek_wait_assigned(rd_kafka_t *rk, int want, unsigned timeout_ms) {
  uint64_t end = bench_now_ns() + (uint64_t)timeout_ms * 1000000ull;
  while (!bench_interrupted && bench_now_ns() < end) {
    rd_kafka_topic_partition_list_t *a = NULL;
    if (rd_kafka_assignment(rk, &a) == 0 && a) {
      int cnt = a->cnt;
      rd_kafka_topic_partition_list_destroy(a);
      if (cnt >= want) return 0;
    }
    rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 50);
    if (m) rd_kafka_message_destroy(m);
  }
  return -1;
}
