/* POST /topics/TOPIC: a record published to Kafka, from a CloudEvent
 * in binary or structured mode (publish.c). */
#ifndef IMP_HTTP_PUBLISH_H
#define IMP_HTTP_PUBLISH_H

#include "server/http/engine.h"

void http_handle_publish(http_conn_t *conn, http_req_t *req, const char *topic,
                         size_t tlen);

#endif
