/*
 * POST /topics/TOPIC (publish.h).
 */
#include "server/http/publish.h"

#include <stdlib.h>
#include <string.h>

#include "eventing/publish.h"
#include "server/http/request.h"

static void on_published(void *arg, int err, const char *errstr,
                         int32_t partition, int64_t offset) {
  http_req_t *req = arg;
  http_conn_t *conn = req->conn;
  if (!http_req_resume(req)) return;
  if (err != 0) {
    char msg[512];
    int code = imp_publish_error_code(conn->server->kafka, err, errstr, msg,
                                      sizeof msg);
    http_respond_code(req, code, 0, msg);
  } else {
    json_t *j = json_object();
    json_object_set_new(j, "topic", http_jcstr(req->topic));
    json_object_set_new(j, "partition", json_integer(partition));
    json_object_set_new(j, "offset", json_integer(offset));
    http_respond_json(req, 202, j, NULL);
    json_decref(j);
  }
  http_req_answered(conn);
}

void http_handle_publish(http_conn_t *conn, http_req_t *req, const char *topic,
                         size_t tlen) {
  imp_server_t *server = conn->server;
  http_msg_t *m = &req->msg;
  char tname[256];
  if (tlen >= sizeof tname) {
    http_respond_error(req, 400, "BAD_REQUEST", "topic name is too long");
    return;
  }
  memcpy(tname, topic, tlen);
  tname[tlen] = '\0';
  if (http_check_auth(conn, req, IMPULSE__ENVELOPE__BODY_PUBLISH, tname) != 0)
    return;
  if (server->stopping) {
    http_respond_error(req, 503, "SHUTTING_DOWN", "server is stopping");
    return;
  }
  Impulse__PublishRequest pr = IMPULSE__PUBLISH_REQUEST__INIT;
  pr.topic = tname;
  hdrset_t hs = {0};
  json_t *ev = NULL;
  char *data = NULL;
  char err[512];
  if (http_publish_request(m, &pr, &hs, &ev, &data, err, sizeof err) != 0) {
    http_respond_error(req, 400, "BAD_REQUEST", "%s", err);
    goto out;
  }
  req->topic = strdup(tname);
  if (req->topic == NULL) abort();
  http_msg_t msg = http_msg_take(req);
  req->waiting = 1;
  conn->refs++;
  char why[512];
  int code =
      imp_publish_start(server->kafka, &pr, on_published, req, why, sizeof why);
  /* From here on req may have been answered and freed (code == 0). */
  if (code != 0) {
    req->waiting = 0;
    conn->refs--;
    http_respond_code(req, code, 0, why);
  }
  http_msg_free(&msg);
out:
  http_hdrset_free(&hs);
  free(data);
  if (ev) json_decref(ev);
}
