/*
 * POST /function/NAME (invoke.h).
 */
#include "server/http/invoke.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "server/http/request.h"
#include "server/invoke/invoke.h"

static void on_invoked(void *arg, uint64_t tag, const imp_answer_t *answer) {
  http_req_t *req = arg;
  const Impulse__InvokeResponse *resp = answer->resp;
  (void)tag;
  http_conn_t *conn = req->conn;
  if (!http_req_resume(req)) return;
  if (answer->code != 0) {
    http_respond_code(req, answer->code, 1, answer->message);
  } else {
    imp_buf_t extra = {0};
    const char *ctype = "application/octet-stream";
    char ctbuf[256];
    http_bprintf(&extra, "X-Impulse-Version: %u\r\n",
                 resp->has_version ? resp->version : 0);
    for (size_t i = 0; i < resp->n_headers; i++) {
      const Impulse__Header *h = resp->headers[i];
      const uint8_t *v = h->has_value ? h->value.data : NULL;
      size_t vl = h->has_value ? h->value.len : 0;
      size_t nl = strlen(h->name);
      int ok = nl > 0 && nl <= 256 && http_is_field_value(v, vl);
      for (size_t k = 0; ok && k < nl; k++)
        ok = http_is_tchar((unsigned char)h->name[k]);
      if (!ok) continue; /* cannot be written as an HTTP header */
      http_bprintf(&extra, "X-Impulse-Header-%s: ", h->name);
      http_bput(&extra, v, vl);
      http_bputs(&extra, "\r\n");
      if (http_ieq(h->name, nl, "content-type") && vl < sizeof ctbuf) {
        memcpy(ctbuf, v, vl);
        ctbuf[vl] = '\0';
        ctype = ctbuf;
      }
    }
    http_bput(&extra, "", 1); /* NUL-terminated for http_respond() */
    http_respond(req, 200, ctype, extra.data,
                 resp->has_payload ? resp->payload.data : NULL,
                 resp->has_payload ? resp->payload.len : 0);
    imp_buf_free(&extra);
  }
  http_req_answered(conn);
}

void http_handle_invoke(http_conn_t *conn, http_req_t *req, const char *name,
                        size_t nlen) {
  imp_server_t *server = conn->server;
  http_msg_t *m = &req->msg;
  if (!http_valid_function_name(name, nlen)) {
    http_respond_error(req, 400, "BAD_REQUEST",
                       "invalid function name (1-64 of [A-Za-z0-9_.-])");
    return;
  }
  char fname[65];
  memcpy(fname, name, nlen);
  fname[nlen] = '\0';
  if (http_check_auth(conn, req, IMPULSE__ENVELOPE__BODY_INVOKE, fname) != 0)
    return;
  if (server->stopping) {
    http_respond_error(req, 503, "SHUTTING_DOWN", "server is stopping");
    return;
  }
  Impulse__InvokeRequest ir = IMPULSE__INVOKE_REQUEST__INIT;
  hdrset_t hs = {0};
  char *key = NULL;
  char err[256];
  if (http_invoke_request(m, fname, &ir, &hs, &key, err, sizeof err) != 0) {
    http_respond_error(req, 400, "BAD_REQUEST", "%s", err);
    http_hdrset_free(&hs);
    free(key);
    return;
  }
  /* The request is packed by the call; what it points to is freed after. */
  http_msg_t msg = http_msg_take(req);
  req->waiting = 1;
  conn->refs++;
  imp_invoker_t *inv = &server->control.invoke.invoker;
  int rc = inv->ops->invoke(inv, &ir, on_invoked, req);
  /* From here on req may have been answered and freed (rc == 0). */
  if (rc != 0) {
    req->waiting = 0;
    conn->refs--;
    if (rc == -ENOENT)
      http_respond_error(req, 404, "NOT_FOUND", "unknown function '%s'", fname);
    else if (rc == -ESHUTDOWN)
      http_respond_error(req, 503, "SHUTTING_DOWN", "server is stopping");
    else if (rc == -E2BIG)
      http_respond_error(req, 413, "TOO_LARGE",
                         "request above the %zu-byte frame limit",
                         server->cfg.max_frame);
    else
      http_respond_error(req, 500, "INTERNAL", "cannot invoke: %s",
                         imp_strerror(rc));
  }
  http_hdrset_free(&hs);
  free(key);
  http_msg_free(&msg);
}
