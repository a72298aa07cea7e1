/*
 * /api/state, the dashboard and /metrics (state.h).
 */
#include "server/http/state.h"

#include <stdlib.h>
#include <string.h>

#include "eventing/trigger.h"
#include "policy/scopes.h"
#include "server/control/info.h"
#include "server/control/logs.h"
#include "server/control/secrets.h"
#include "server/http/dashboard.h"

static json_t *state_json(imp_server_t *server) {
  json_t *root = json_object();
  json_t *srv = json_object();
  char addr[300];
  unsigned warm = imp_fleet_warm(&server->control.fleet);
  json_object_set_new(srv, "version", json_string(IMPULSE_VERSION));
  json_object_set_new(srv, "uptime_ms",
                      http_ju64(imp_now_ms() - server->started_ms));
  json_object_set_new(srv, "ready",
                      json_boolean(server->ready && !server->stopping));
  json_object_set_new(srv, "stopping", json_boolean(server->stopping));
  snprintf(addr, sizeof addr, "%s:%d", server->cfg.listen_host,
           server->cfg.listen_port);
  json_object_set_new(srv, "rpc", http_jcstr(addr));
  snprintf(addr, sizeof addr, "%s:%d", server->cfg.http_host,
           server->cfg.http_port);
  json_object_set_new(srv, "http", http_jcstr(addr));
  json_object_set_new(srv, "invoke_needs_token",
                      json_boolean(server->cfg.invoke_needs_token));
  json_object_set_new(srv, "max_frame", http_ju64(server->cfg.max_frame));
  json_object_set_new(srv, "sandbox",
                      http_jcstr(server->control.fleet.iso.describe));
  json_t *pool = json_object();
  json_object_set_new(pool, "target", http_ju64(server->cfg.warm_pool));
  json_object_set_new(pool, "ready", http_ju64(warm));
  json_object_set_new(srv, "warm_pool", pool);
  json_t *kafka = json_object();
  json_object_set_new(kafka, "bootstrap",
                      server->kafka
                          ? http_jcstr(imp_kafka_bootstrap(server->kafka))
                          : json_null());
  json_object_set_new(
      kafka, "embedded",
      json_boolean(server->kafka && imp_kafka_is_embedded(server->kafka)));
  json_object_set_new(srv, "kafka", kafka);
  json_object_set_new(srv, "functions",
                      http_ju64(server->control.invoke.registry.count));
  json_object_set_new(srv, "instances",
                      http_ju64(server->control.fleet.ninstances));
  json_object_set_new(root, "server", srv);

  json_t *fns = json_array();
  imp_function_t *fn;
  IMP_REGISTRY_EACH(fn, &server->control.invoke.registry) {
    if (fn->deleted) continue;
    Impulse__FunctionInfo fi;
    Impulse__FunctionConfig cfg;
    imp_control_function_info(&server->control, fn, &fi, &cfg);
    json_t *f = json_object();
    json_object_set_new(f, "name", http_jcstr(fi.name));
    json_object_set_new(f, "version", http_ju64(fi.version));
    json_object_set_new(f, "sha256", http_jcstr(fi.sha256));
    json_object_set_new(f, "instances", http_ju64(fi.instances));
    json_object_set_new(f, "ready", http_ju64(fi.ready));
    json_object_set_new(f, "in_flight", http_ju64(fi.in_flight));
    json_object_set_new(f, "queued", http_ju64(fi.queued));
    json_object_set_new(f, "invocations", http_ju64(fi.invocations));
    json_object_set_new(f, "errors", http_ju64(fi.errors));
    json_object_set_new(f, "cold_starts", http_ju64(fi.cold_starts));
    json_object_set_new(f, "warm_starts", http_ju64(fi.warm_starts));
    json_object_set_new(f, "policy",
                        http_jcstr(fi.policy ? fi.policy : cfg.policy));
    /* The autoscaler's last decision; null until it has made one. */
    json_object_set_new(f, "desired",
                        fi.has_desired ? http_ju64(fi.desired) : json_null());
    json_object_set_new(
        f, "forecast_per_min",
        fi.has_forecast_per_min ? json_real(fi.forecast_per_min) : json_null());
    json_object_set_new(f, "forecast_instances",
                        fi.has_forecast_instances
                            ? http_ju64(fi.forecast_instances)
                            : json_null());
    json_object_set_new(f, "panic", json_boolean(fi.has_panic && fi.panic));
    json_object_set_new(f, "scale_reason", http_jcstr(fi.scale_reason));
    json_t *set = json_object();
    json_object_set_new(set, "concurrency", http_ju64(cfg.concurrency));
    json_object_set_new(set, "timeout_ms", http_ju64(cfg.timeout_ms));
    json_object_set_new(set, "memory_mb", http_ju64(cfg.memory_mb));
    json_object_set_new(set, "min_instances", http_ju64(cfg.min_instances));
    json_object_set_new(set, "max_instances", http_ju64(cfg.max_instances));
    /* Names only: the environment's values and the secrets' stay out. */
    json_t *names = json_array(), *secrets = json_array();
    size_t nenv;
    char **env = imp_ctl_env_names(fn->rec->config, &nenv);
    for (size_t i = 0; i < nenv; i++)
      json_array_append_new(names, http_jcstr(env[i]));
    free(env);
    for (size_t i = 0; i < cfg.n_secrets; i++)
      json_array_append_new(secrets, http_jcstr(cfg.secrets[i]));
    json_object_set_new(set, "env", names);
    json_object_set_new(set, "secrets", secrets);
    json_object_set_new(f, "settings", set);
    json_array_append_new(fns, f);
  }
  json_object_set_new(root, "functions", fns);

  json_t *insts = json_array();
  uint64_t now = imp_now_ms();
  for (imp_instance_t *i = server->control.fleet.instances.next;
       i != &server->control.fleet.instances; i = i->next) {
    json_t *o = json_object();
    json_object_set_new(o, "id", http_ju64(i->id));
    json_object_set_new(o, "function",
                        i->function
                            ? http_jcstr(((imp_function_t *)i->function)->name)
                            : json_null());
    json_object_set_new(o, "version", http_ju64(i->function ? i->version : 0));
    json_object_set_new(o, "state",
                        json_string(imp_instance_state_name(i->state)));
    json_object_set_new(o, "pid", json_integer(i->pid));
    json_object_set_new(o, "outstanding", http_ju64(i->d.outstanding));
    json_object_set_new(o, "served", http_ju64(i->served));
    json_object_set_new(
        o, "uptime_ms",
        http_ju64(now > i->started_ms ? now - i->started_ms : 0));
    json_array_append_new(insts, o);
  }
  json_object_set_new(root, "instances", insts);
  return root;
}

static void trigger_json(void *arg, const Impulse__TriggerInfo *info) {
  json_t *arr = arg;
  const Impulse__TriggerSpec *s = info->spec;
  json_t *t = json_object();
  json_object_set_new(t, "name", http_jcstr(s->name));
  json_object_set_new(t, "topic", http_jcstr(s->topic));
  json_object_set_new(t, "function", http_jcstr(s->function));
  json_object_set_new(t, "state", http_jcstr(info->state));
  json_object_set_new(t, "ordering", http_jcstr(s->ordering));
  json_object_set_new(t, "group", http_jcstr(s->group));
  json_object_set_new(t, "dlq", http_jcstr(s->dlq));
  json_object_set_new(t, "reply_topic", http_jcstr(s->reply_topic));
  int64_t lag = 0;
  json_t *parts = json_array();
  for (size_t i = 0; i < info->n_partitions; i++) {
    const Impulse__PartitionInfo *p = info->partitions[i];
    json_t *o = json_object();
    json_object_set_new(o, "partition", json_integer(p->partition));
    json_object_set_new(o, "committed", json_integer(p->committed));
    json_object_set_new(o, "high_watermark", json_integer(p->high_watermark));
    json_object_set_new(o, "lag", json_integer(p->lag));
    json_object_set_new(o, "in_flight", http_ju64(p->in_flight));
    json_object_set_new(o, "paused", json_boolean(p->paused));
    json_array_append_new(parts, o);
    lag += p->lag;
  }
  json_object_set_new(t, "lag", json_integer(lag));
  json_object_set_new(t, "in_flight", http_ju64(info->in_flight));
  json_object_set_new(t, "received", http_ju64(info->received));
  json_object_set_new(t, "handled", http_ju64(info->handled));
  json_object_set_new(t, "retried", http_ju64(info->retried));
  json_object_set_new(t, "dead_lettered", http_ju64(info->dead_lettered));
  json_object_set_new(t, "batches", http_ju64(info->batches));
  json_object_set_new(t, "batched", http_ju64(info->batched));
  json_object_set_new(t, "partitions", parts);
  json_array_append_new(arr, t);
}

void http_handle_state(http_conn_t *conn, http_req_t *req) {
  imp_server_t *server = conn->server;
  if (http_check_auth(conn, req, IMP_OP_HTTP_STATE, NULL) != 0) return;
  json_t *root = state_json(server);
  json_t *trig = json_array();
  if (server->triggers)
    imp_triggers_foreach(server->triggers, trigger_json, trig);
  json_object_set_new(root, "triggers", trig);
  http_respond_json(req, 200, root, "Cache-Control: no-store\r\n");
  json_decref(root);
}

/* The dashboard page. It holds no state, so it is open like the probes;
 * the data it shows comes from /api/state under that endpoint's auth (the
 * page asks for the token when /api/state answers 401). The policy keeps
 * the page from loading anything but itself and /api/state. */
void http_handle_dashboard(http_req_t *req) {
  http_respond(
      req, 200, "text/html; charset=utf-8",
      "Cache-Control: no-cache\r\n"
      "X-Content-Type-Options: nosniff\r\n"
      "Content-Security-Policy: default-src 'none'; script-src "
      "'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; "
      "img-src data:; form-action 'none'; frame-ancestors 'none'\r\n",
      imp_dashboard_html, imp_dashboard_html_len);
}

void http_handle_metrics(http_conn_t *conn, http_req_t *req) {
  imp_buf_t b = {0};
  if (imp_metrics_render(conn->server->metrics, &b) != 0) abort();
  http_respond(req, 200, "text/plain; version=0.0.4; charset=utf-8", NULL,
               b.data, b.len);
  imp_buf_free(&b);
}

/* One key=value of the logs query into req; 0, or -1 after answering 400. */
static int logs_param(http_req_t *req, Impulse__LogsRequest *q, const char *k,
                      size_t klen, const char *v, size_t vlen) {
  char val[32];
  uint64_t n;
  if (vlen >= sizeof val) goto bad;
  memcpy(val, v, vlen);
  val[vlen] = '\0';
  if (klen == 5 && memcmp(k, "since", 5) == 0) {
    if (imp_parse_duration_ms(val, &q->since_ms) != 0) goto bad;
    q->has_since_ms = 1;
  } else if (klen == 8 && memcmp(k, "instance", 8) == 0) {
    if (http_parse_u64(v, vlen, UINT64_MAX, &n) != 0) goto bad;
    q->has_instance = 1;
    q->instance = n;
  } else if (klen == 5 && memcmp(k, "after", 5) == 0) {
    if (http_parse_u64(v, vlen, UINT64_MAX, &n) != 0) goto bad;
    q->has_after = 1;
    q->after = n;
  } else if (klen == 4 && memcmp(k, "tail", 4) == 0) {
    if (http_parse_u64(v, vlen, 1000000, &n) != 0) goto bad;
    q->has_tail = 1;
    q->tail = (uint32_t)n;
  } else {
    http_respond_error(req, 400, "BAD_REQUEST",
                       "unknown parameter '%.*s' (since, instance, after, "
                       "tail)",
                       (int)(klen > 40 ? 40 : klen), k);
    return -1;
  }
  return 0;
bad:
  http_respond_error(req, 400, "BAD_REQUEST",
                     "invalid value for '%.*s': since takes a duration (30s, "
                     "5m, 2h, 1d), instance, after and tail a number",
                     (int)(klen > 40 ? 40 : klen), k);
  return -1;
}

void http_handle_logs(http_conn_t *conn, http_req_t *req, const char *name,
                      size_t nlen, const char *query, size_t qlen) {
  imp_server_t *server = conn->server;
  /* A function's output may hold anything it saw: admin only. */
  if (http_check_auth(conn, req, IMPULSE__ENVELOPE__BODY_LOGS, name) != 0)
    return;
  char fname[IMP_NAME_MAX + 1];
  if (!http_valid_function_name(name, nlen)) {
    http_respond_error(req, 400, "BAD_REQUEST", "invalid function name");
    return;
  }
  memcpy(fname, name, nlen);
  fname[nlen] = '\0';
  Impulse__LogsRequest q = IMPULSE__LOGS_REQUEST__INIT;
  q.function = fname;
  while (query != NULL && qlen > 0) {
    const char *amp = memchr(query, '&', qlen);
    size_t plen = amp ? (size_t)(amp - query) : qlen;
    const char *eq = memchr(query, '=', plen);
    if (plen > 0) {
      size_t klen = eq ? (size_t)(eq - query) : plen;
      const char *v = eq ? eq + 1 : query + plen;
      size_t vlen = eq ? plen - klen - 1 : 0;
      if (logs_param(req, &q, query, klen, v, vlen) != 0) return;
    }
    if (amp == NULL) break;
    qlen -= plen + 1;
    query = amp + 1;
  }
  imp_logs_answer_t a;
  char err[200];
  int code = imp_control_logs_query(&server->control, &q, 4u << 20, &a, err,
                                    sizeof err);
  if (code != 0) {
    http_respond_code(req, code, 0, err);
    return;
  }
  json_t *root = json_object();
  json_t *arr = json_array();
  imp_buf_t b = {0};
  for (size_t i = 0; i < a.resp.n_entries; i++) {
    const Impulse__LogEntry *e = a.resp.entries[i];
    json_t *o = json_object();
    json_object_set_new(o, "seq", http_ju64(e->seq));
    json_object_set_new(o, "time_ms", http_ju64(e->time_ms));
    json_object_set_new(o, "instance", http_ju64(e->instance));
    json_object_set_new(o, "version", http_ju64(e->version));
    json_object_set_new(o, "stream", http_jcstr(e->stream));
    json_object_set_new(o, "level",
                        e->has_level ? json_integer(e->level) : json_null());
    /* Escaped as the CLI prints it: always one line of ASCII, whatever
     * bytes the function wrote. */
    b.len = 0;
    if (imp_escape_bytes(&b, e->message.data, e->message.len) != 0) abort();
    json_object_set_new(o, "message", json_stringn(b.data, b.len));
    json_object_set_new(o, "cut", json_boolean(e->cut));
    json_array_append_new(arr, o);
  }
  imp_buf_free(&b);
  json_object_set_new(root, "function", http_jcstr(fname));
  json_object_set_new(root, "entries", arr);
  json_object_set_new(root, "next", http_ju64(a.resp.next));
  json_object_set_new(root, "more", json_boolean(a.resp.more));
  json_object_set_new(root, "dropped", http_ju64(a.resp.dropped));
  imp_logs_answer_free(&a);
  http_respond_json(req, 200, root, "Cache-Control: no-store\r\n");
  json_decref(root);
}
