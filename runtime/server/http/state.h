/* What the front end shows of the server (state.c): /api/state, the
 * dashboard page, /metrics. */
#ifndef IMP_HTTP_STATE_H
#define IMP_HTTP_STATE_H

#include "server/http/engine.h"

void http_handle_state(http_conn_t *conn, http_req_t *req);
void http_handle_dashboard(http_req_t *req);
void http_handle_metrics(http_conn_t *conn, http_req_t *req);
/* GET /api/functions/NAME/logs?since=&instance=&after=&tail= (`name` and
 * `query` point into the request; query may be NULL). */
void http_handle_logs(http_conn_t *conn, http_req_t *req, const char *name,
                      size_t nlen, const char *query, size_t qlen);

#endif
