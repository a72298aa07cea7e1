/* POST /function/NAME: the body is the payload of an invocation
 * (invoke.c). */
#ifndef IMP_HTTP_INVOKE_H
#define IMP_HTTP_INVOKE_H

#include "server/http/engine.h"

void http_handle_invoke(http_conn_t *conn, http_req_t *req, const char *name,
                        size_t nlen);

#endif
