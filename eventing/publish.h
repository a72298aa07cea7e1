/* Publish RPC: produce a record for clients without a Kafka library. */
#ifndef IMP_PUBLISH_H
#define IMP_PUBLISH_H

#include "base/rpc.h"
#include "eventing/kafka.h"
#include "impulse.pb-c.h"

/* Checks a PublishRequest (borrowed), creates its topic when missing and
 * hands the record to the shared producer. Returns 0 and later calls cb
 * exactly once, on the loop thread (see imp_kafka_produce); or an
 * ErrorCode (> 0) with the reason in msg, and cb is never called. May block
 * for a few seconds the first time a topic is seen. Shared by the Publish
 * RPC and the HTTP front end. */
int imp_publish_start(imp_kafka_t *kafka, const Impulse__PublishRequest *req,
                      imp_kafka_produce_cb cb, void *arg, char *msg,
                      size_t msglen);

/* ErrorCode, and the message in msg, for an error given to a produce
 * callback (err, errstr as imp_kafka_produce_cb gets them). */
int imp_publish_error_code(imp_kafka_t *kafka, int err, const char *errstr,
                           char *msg, size_t msglen);

/* Handles a PublishRequest (takes ownership of env); answers publish_ok once
 * the broker acknowledged the record, or an error. */
void imp_publish_rpc(imp_kafka_t *kafka, imp_rpc_t *rpc,
                     Impulse__Envelope *env);

/* Handles an EnsureTopicRequest (takes ownership of env): creates the topic
 * when missing and answers ensure_topic_ok with its partition count, so a
 * client can produce to it directly afterwards. */
void imp_publish_ensure_topic_rpc(imp_kafka_t *kafka, imp_rpc_t *rpc,
                                  Impulse__Envelope *env);

#endif
