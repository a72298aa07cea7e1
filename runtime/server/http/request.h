/*
 * What a parsed HTTP request asks for (request.c): its endpoint, and the
 * protobuf request an invocation or a publish makes of it. Pure: no I/O,
 * no server; the handlers (http.c, invoke.c, publish.c) answer from the
 * results, and tests/fuzz/http.c and tests/fuzz/cloudevents.c check them.
 */
#ifndef IMP_HTTP_REQUEST_H
#define IMP_HTTP_REQUEST_H

#include <jansson.h>
#include <stddef.h>

#include "impulse.pb-c.h"
#include "server/http/parse.h"

/* Endpoints (docs/http.md). */
enum {
  HTTP_EP_BAD_TARGET, /* the request target is not a path: 400 */
  HTTP_EP_NOT_FOUND,  /* 404 */
  HTTP_EP_INVOKE,     /* POST /function/NAME */
  HTTP_EP_PUBLISH,    /* POST /topics/TOPIC */
  HTTP_EP_HEALTHZ,    /* GET /healthz */
  HTTP_EP_READYZ,     /* GET /readyz */
  HTTP_EP_METRICS,    /* GET /metrics */
  HTTP_EP_DASHBOARD,  /* GET / */
  HTTP_EP_LOGS,       /* GET /api/functions/NAME/logs */
  HTTP_EP_STATE       /* GET /api/state */
};

/* Where a request goes. Pointers are into the message's hbuf. */
typedef struct http_route_s {
  int endpoint;
  const char *allow; /* the method it needs ("GET", "POST"), NULL if fine */
  const char *path;  /* the whole path (BAD_TARGET: NULL) */
  size_t plen;
  const char *name; /* INVOKE, LOGS: the function; PUBLISH: the topic */
  size_t nlen;
  const char *query; /* LOGS: the query string, or NULL */
  size_t qlen;
} http_route_t;

/* Finds the endpoint of m (its request target and method). */
void http_route_match(const http_msg_t *m, http_route_t *r);

/* The InvokeRequest of POST /function/FNAME (fname NUL-terminated, valid):
 * payload the body (borrowed from m), X-Impulse-Deadline-Ms the deadline,
 * X-Impulse-Idempotency-Key the key (*key, malloc'd), each
 * X-Impulse-Header-NAME a header NAME (lower case) in hs. Returns 0, or -1
 * with the reason for a 400 in err (NUL-terminated). On both the caller
 * frees *key (free) and hs (http_hdrset_free). */
int http_invoke_request(const http_msg_t *m, const char *fname,
                        Impulse__InvokeRequest *ir, hdrset_t *hs, char **key,
                        char *err, size_t errlen);

/* The PublishRequest of POST /topics/TOPIC (pr->topic is the caller's):
 * a CloudEvent in structured mode (Content-Type
 * application/cloudevents+json: its attributes ce_* headers, its data the
 * value) or in binary mode (the body the value, ce-* headers ce_* headers,
 * X-Impulse-Header-NAME headers NAME); X-Impulse-Key (or the partitionkey
 * attribute) the key, X-Impulse-Partition the partition. Returns 0, or -1
 * with the reason for a 400 in err. Values point into m, *ev (the parsed
 * event, json_decref) or *data (free); the caller frees those and hs on
 * both. */
int http_publish_request(const http_msg_t *m, Impulse__PublishRequest *pr,
                         hdrset_t *hs, json_t **ev, char **data, char *err,
                         size_t errlen);

#endif
