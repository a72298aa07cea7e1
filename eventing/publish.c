/*
 * Publish and EnsureTopic RPCs: produce records for clients without a Kafka
 * library, and create topics for clients that produce directly.
 *
 * A Publish is answered from the producer's delivery report, which comes on
 * the loop thread some milliseconds later, through the request's imp_rpc_t
 * (a caller that has gone meanwhile is the front door's business).
 */
#include "eventing/publish.h"

#include <stdlib.h>
#include <string.h>

#include "core/common.h"
#include "core/limits.h"

/* A publish waiting for its delivery report. */
typedef struct publish_s {
  imp_rpc_t *rpc; /* answered from the delivery report */
  imp_kafka_t *kafka;
} publish_t;

/* ErrorCode and message for a produce failure. */
static int error_code(imp_kafka_t *kafka, int err, size_t size,
                      const char *errstr, char *msg, size_t len) {
  switch (err) {
    case -EMSGSIZE:
      if (size > imp_kafka_max_message(kafka))
        snprintf(msg, len, "record of %zu bytes is above the %zu-byte limit",
                 size, imp_kafka_max_message(kafka));
      else
        snprintf(msg, len, "the broker refused the record as too large: %s",
                 errstr ? errstr : "message size too large");
      return IMPULSE__ERROR_CODE__TOO_LARGE;
    case -ENOBUFS:
      snprintf(msg, len,
               "the producer's queue is full (the Kafka cluster is slow or "
               "unreachable); retry later");
      return IMPULSE__ERROR_CODE__OVERLOADED;
    case -ENOENT:
      snprintf(msg, len, "no such topic or partition%s%s", errstr ? ": " : "",
               errstr ? errstr : "");
      return IMPULSE__ERROR_CODE__BAD_REQUEST;
    case -EINVAL:
      snprintf(msg, len, "%s", errstr ? errstr : "invalid record");
      return IMPULSE__ERROR_CODE__BAD_REQUEST;
    case -ESHUTDOWN:
    case IMP_ECANCELED:
      snprintf(msg, len,
               "server is stopping; the record may not have been "
               "written");
      return IMPULSE__ERROR_CODE__SHUTTING_DOWN;
    default:
      snprintf(msg, len, "the Kafka cluster did not acknowledge the record: %s",
               errstr ? errstr : imp_strerror(err));
      return IMPULSE__ERROR_CODE__UNAVAILABLE;
  }
}

int imp_publish_error_code(imp_kafka_t *kafka, int err, const char *errstr,
                           char *msg, size_t msglen) {
  return error_code(kafka, err, 0, errstr, msg, msglen);
}

static void on_published(void *arg, int err, const char *errstr,
                         int32_t partition, int64_t offset) {
  publish_t *pub = arg;
  if (err != 0) {
    char msg[512];
    int code = imp_publish_error_code(pub->kafka, err, errstr, msg, sizeof msg);
    imp_rpc_error(pub->rpc, code, "%s", msg);
  } else {
    Impulse__PublishResponse ok = IMPULSE__PUBLISH_RESPONSE__INIT;
    ok.has_partition = ok.has_offset = 1;
    ok.partition = partition;
    ok.offset = offset;
    imp_rpc_answer(pub->rpc, IMPULSE__ENVELOPE__BODY_PUBLISH_OK, &ok);
  }
  free(pub);
}

int imp_publish_start(imp_kafka_t *kafka, const Impulse__PublishRequest *req,
                      imp_kafka_produce_cb cb, void *arg, char *msg,
                      size_t msglen) {
  if (kafka == NULL) {
    snprintf(msg, msglen, "this server has no Kafka connection");
    return IMPULSE__ERROR_CODE__UNAVAILABLE;
  }
  if (imp_topic_valid(req->topic, msg, msglen) != 0)
    return IMPULSE__ERROR_CODE__BAD_REQUEST;
  if (req->has_partition && req->partition < 0) {
    snprintf(msg, msglen,
             "partition %d is negative (leave it out to let the partitioner "
             "choose)",
             (int)req->partition);
    return IMPULSE__ERROR_CODE__BAD_REQUEST;
  }
  size_t size =
      (req->has_key ? req->key.len : 0) + (req->has_value ? req->value.len : 0);
  for (size_t i = 0; i < req->n_headers; i++)
    size += strlen(req->headers[i]->name) + req->headers[i]->value.len;
  /* The topic is created on first use, with the server's partition count;
   * imp_kafka_ensure_topic() remembers topics it has seen. */
  int rc = imp_kafka_ensure_topic(kafka, req->topic, 0, msg, msglen);
  if (rc != 0)
    return rc == -EINVAL ? IMPULSE__ERROR_CODE__BAD_REQUEST
                         : IMPULSE__ERROR_CODE__UNAVAILABLE;
  /* An empty key (has_key with length 0) stays distinct from no key. */
  static const char empty[1] = "";
  const void *key = req->has_key
                        ? (req->key.len ? (const void *)req->key.data : empty)
                        : NULL;
  rc = imp_kafka_produce(
      kafka, req->topic, req->has_partition ? req->partition : -1, key,
      req->has_key ? req->key.len : 0, req->has_value ? req->value.data : NULL,
      req->has_value ? req->value.len : 0, req->headers, req->n_headers, cb,
      arg);
  if (rc != 0) return error_code(kafka, rc, size, NULL, msg, msglen);
  return 0;
}

void imp_publish_rpc(imp_kafka_t *kafka, imp_rpc_t *rpc,
                     Impulse__Envelope *env) {
  publish_t *pub = malloc(sizeof *pub);
  if (pub == NULL) {
    imp_rpc_error(rpc, IMPULSE__ERROR_CODE__INTERNAL, "out of memory");
    impulse__envelope__free_unpacked(env, NULL);
    return;
  }
  pub->rpc = rpc;
  pub->kafka = kafka;
  char msg[512];
  int code = imp_publish_start(kafka, env->publish, on_published, pub, msg,
                               sizeof msg);
  if (code != 0) {
    imp_rpc_error(rpc, code, "%s", msg);
    free(pub);
  }
  impulse__envelope__free_unpacked(env, NULL);
}

void imp_publish_ensure_topic_rpc(imp_kafka_t *kafka, imp_rpc_t *rpc,
                                  Impulse__Envelope *env) {
  const Impulse__EnsureTopicRequest *req = env->ensure_topic;
  char why[512];
  if (kafka == NULL) {
    imp_rpc_error(rpc, IMPULSE__ERROR_CODE__UNAVAILABLE,
                  "this server has no Kafka connection");
    goto out;
  }
  if (req->has_partitions && req->partitions > IMP_PARTITIONS_MAX) {
    imp_rpc_error(rpc, IMPULSE__ERROR_CODE__BAD_REQUEST,
                  "%u partitions is above the limit of %u",
                  (unsigned)req->partitions, IMP_PARTITIONS_MAX);
    goto out;
  }
  int rc = imp_kafka_ensure_topic(
      kafka, req->topic, req->has_partitions ? (int)req->partitions : 0, why,
      sizeof why);
  if (rc != 0) {
    imp_rpc_error(rpc,
                  rc == -EINVAL ? IMPULSE__ERROR_CODE__BAD_REQUEST
                                : IMPULSE__ERROR_CODE__UNAVAILABLE,
                  "%s", why);
    goto out;
  }
  int n = imp_kafka_partition_count(kafka, req->topic, 0);
  Impulse__EnsureTopicResponse ok = IMPULSE__ENSURE_TOPIC_RESPONSE__INIT;
  if (n > 0) {
    ok.has_partitions = 1;
    ok.partitions = (uint32_t)n;
  }
  imp_rpc_answer(rpc, IMPULSE__ENVELOPE__BODY_ENSURE_TOPIC_OK, &ok);
out:
  impulse__envelope__free_unpacked(env, NULL);
}
