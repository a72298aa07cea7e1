/*
 * The Logs RPC (logs.h): a query over a function's log (base/fnlog.h).
 */
#include "server/control/logs.h"

#include <stdlib.h>
#include <string.h>

#include "core/common.h"
#include "core/limits.h"

void imp_logs_answer_free(imp_logs_answer_t *a) {
  free(a->entries);
  free(a->ptrs);
  a->entries = NULL;
  a->ptrs = NULL;
}

static int matches(const imp_fnlog_entry_t *e, const Impulse__LogsRequest *req,
                   uint64_t oldest_ms) {
  if (req->has_after && e->seq <= req->after) return 0;
  if (req->has_instance && req->instance != 0 && e->instance != req->instance)
    return 0;
  return e->time_ms >= oldest_ms;
}

int imp_control_logs_query(imp_control_t *ctl, const Impulse__LogsRequest *req,
                           size_t budget, imp_logs_answer_t *a, char *err,
                           size_t errlen) {
  memset(a, 0, sizeof *a);
  impulse__logs_response__init(&a->resp);
  if (req->function == NULL || !imp_name_valid(req->function)) {
    snprintf(err, errlen, "invalid function name");
    return IMPULSE__ERROR_CODE__BAD_REQUEST;
  }
  if (imp_ctl_fn_find(ctl, req->function) == NULL) {
    snprintf(err, errlen, "unknown function '%s'", req->function);
    return IMPULSE__ERROR_CODE__NOT_FOUND;
  }
  imp_fnlog_t *log = imp_fnlogs_get(&ctl->logs, req->function, 0);
  a->resp.has_next = a->resp.has_more = a->resp.has_dropped = 1;
  a->resp.next = req->has_after ? req->after : 0;
  if (log == NULL) return 0; /* nothing written yet */
  a->resp.dropped = imp_fnlog_dropped(log);
  uint64_t now = imp_wall_ms();
  uint64_t oldest = 0;
  if (req->has_since_ms && req->since_ms > 0)
    oldest = req->since_ms < now ? now - req->since_ms : 0;
  /* Matching entries, then the last `tail` of them, then what fits. */
  size_t n = 0;
  for (const imp_fnlog_entry_t *e = log->head; e != NULL; e = e->next)
    if (matches(e, req, oldest)) n++;
  size_t skip =
      req->has_tail && req->tail > 0 && req->tail < n ? n - req->tail : 0;
  size_t want = n - skip;
  a->entries = calloc(want ? want : 1, sizeof *a->entries);
  a->ptrs = calloc(want ? want : 1, sizeof *a->ptrs);
  if (a->entries == NULL || a->ptrs == NULL) {
    imp_logs_answer_free(a);
    snprintf(err, errlen, "out of memory");
    return IMPULSE__ERROR_CODE__INTERNAL;
  }
  size_t k = 0, used = 0, seen = 0;
  for (const imp_fnlog_entry_t *e = log->head; e != NULL; e = e->next) {
    if (!matches(e, req, oldest) || seen++ < skip) continue;
    /* Each entry costs its bytes and some 40 of framing. */
    if (k > 0 && used + e->len + 40 > budget) {
      a->resp.more = 1;
      break;
    }
    used += e->len + 40;
    Impulse__LogEntry *o = &a->entries[k];
    impulse__log_entry__init(o);
    o->has_seq = o->has_time_ms = o->has_instance = o->has_version = 1;
    o->seq = e->seq;
    o->time_ms = e->time_ms;
    o->instance = e->instance;
    o->version = e->version;
    o->stream = (char *)imp_fnlog_stream_name(e->stream);
    if (e->stream == IMP_FNLOG_LOG) {
      o->has_level = 1;
      o->level = e->level;
    }
    o->has_message = 1;
    o->message.data = (uint8_t *)e->data;
    o->message.len = e->len;
    if (e->cut) o->has_cut = o->cut = 1;
    a->ptrs[k++] = o;
    a->resp.next = e->seq;
  }
  /* Nothing matched beyond `after`: the cursor stays where it was, or
   * moves to the newest entry so that a follower skips what it filtered
   * out. */
  if (k == 0 && log->tail != NULL && !a->resp.more &&
      log->tail->seq > a->resp.next)
    a->resp.next = log->tail->seq;
  a->resp.entries = a->ptrs;
  a->resp.n_entries = k;
  return 0;
}

void imp_control_logs(imp_control_t *ctl, imp_rpc_t *rpc,
                      Impulse__Envelope *env) {
  imp_logs_answer_t a;
  char err[200];
  /* Room for the envelope around the entries. */
  size_t budget = ctl->cfg->max_frame > 8192 ? ctl->cfg->max_frame / 2 : 4096;
  int code =
      imp_control_logs_query(ctl, env->logs, budget, &a, err, sizeof err);
  if (code != 0)
    imp_rpc_error(rpc, code, "%s", err);
  else
    imp_rpc_answer(rpc, IMPULSE__ENVELOPE__BODY_LOGS_OK, &a.resp);
  imp_logs_answer_free(&a);
  impulse__envelope__free_unpacked(env, NULL);
}
