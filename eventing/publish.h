/* Publish RPC: produce a record for clients without a Kafka library. */
#ifndef IMP_PUBLISH_H
#define IMP_PUBLISH_H

#include "impulse.pb-c.h"

struct imp_server_s;
struct imp_client_s;

/* Handles a PublishRequest (takes ownership of env); answers publish_ok once
 * the broker acknowledged the record, or an error. */
void imp_publish_rpc(struct imp_server_s *server, struct imp_client_s *client,
                     Impulse__Envelope *env);

/* Handles an EnsureTopicRequest (takes ownership of env): creates the topic
 * when missing and answers ensure_topic_ok with its partition count, so a
 * client can produce to it directly afterwards. */
void imp_publish_ensure_topic_rpc(struct imp_server_s *server,
                                  struct imp_client_s *client,
                                  Impulse__Envelope *env);

#endif
