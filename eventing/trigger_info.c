/*
 * What a trigger shows: `trigger describe` and `ls` (its spec, state,
 * counters, and the partitions this server holds) and the
 * impulse_trigger_* /metrics families, both from trigger_fill_info().
 */
#include "eventing/trigger_info.h"

#include <stdio.h>
#include <stdlib.h>

/* Fills `info` for a trigger; parts/pp are caller-owned arrays of at least
 * trigger->nparts entries. */
void trigger_fill_info(trigger_t *trigger, Impulse__TriggerInfo *info,
                       Impulse__PartitionInfo *parts,
                       Impulse__PartitionInfo **pp, char *state, size_t slen) {
  impulse__trigger_info__init(info);
  info->spec = trigger->spec;
  uint64_t now = imp_now_ms();
  unsigned in_flight = 0;
  size_t n = 0;
  for (size_t i = 0; i < trigger->nparts; i++) {
    part_t *part = trigger->parts[i];
    if (part == NULL) continue;
    Impulse__PartitionInfo *pi = &parts[n];
    impulse__partition_info__init(pi);
    pi->partition = part->id;
    pi->has_committed = pi->has_high_watermark = pi->has_lag = 1;
    pi->has_in_flight = pi->has_paused = 1;
    pi->committed = part->committed;
    int64_t lo = -1, hi = -1;
    if (trigger->rk)
      rd_kafka_get_watermark_offsets(trigger->rk, trigger->spec->topic,
                                     part->id, &lo, &hi);
    if (hi < 0) hi = -1; /* not known yet (RD_KAFKA_OFFSET_INVALID) */
    if (lo < 0) lo = -1;
    pi->high_watermark = hi;
    int64_t from = part->committed >= 0 ? part->committed : lo;
    pi->lag = hi >= 0 && from >= 0 && hi > from ? hi - from : 0;
    pi->in_flight = part->active + part->replying;
    pi->paused = part->paused;
    in_flight += part->active + part->replying;
    pp[n++] = pi;
  }
  info->n_partitions = n;
  info->partitions = pp;
  info->has_handled = info->has_retried = info->has_dead_lettered = 1;
  info->has_in_flight = info->has_received = 1;
  info->handled = trigger->handled;
  info->retried = trigger->retried;
  info->dead_lettered = trigger->dead_lettered;
  info->has_batches = info->has_batched = 1;
  info->batches = trigger->batches;
  info->batched = trigger->batched;
  info->in_flight = in_flight;
  info->received = trigger->received;
  if (trigger->state == T_CLOSED)
    snprintf(state, slen, "stopped");
  else if (trigger->state != T_RUNNING)
    snprintf(state, slen, "stopping");
  else if (trigger->rk == NULL ||
           (trigger->kerr_ms && now - trigger->kerr_ms < REASON_SHOW_MS))
    snprintf(state, slen, "error: %s",
             trigger->kerr[0] ? trigger->kerr : "not started");
  else if (trigger->reason_ms && now - trigger->reason_ms < REASON_SHOW_MS)
    snprintf(state, slen, "%s", trigger->reason);
  else if (!trigger->assigned)
    snprintf(state, slen, "joining");
  else
    snprintf(state, slen, "running");
  info->state = state;
}

void trigger_with_info(trigger_t *trigger, imp_trigger_info_cb cb, void *arg) {
  Impulse__TriggerInfo info;
  Impulse__PartitionInfo *parts = calloc(trigger->nparts + 1, sizeof *parts);
  Impulse__PartitionInfo **pp = calloc(trigger->nparts + 1, sizeof *pp);
  if (!parts || !pp) abort();
  char state[512];
  trigger_fill_info(trigger, &info, parts, pp, state, sizeof state);
  cb(arg, &info);
  free(parts);
  free(pp);
}

void triggers_with_info(triggers_t *triggers, imp_trigger_info_cb cb,
                        void *arg) {
  for (trigger_t *t = triggers->list.next; t != &triggers->list; t = t->next)
    if (!t->removed) trigger_with_info(t, cb, arg);
}

/* Trigger families, one pass over the triggers per family so that each
 * family's samples stay together. */
typedef struct trig_pass_s {
  imp_metrics_writer_t *w;
  int which;
} trig_pass_t;

enum {
  TP_LAG,
  TP_IN_FLIGHT,
  TP_RECEIVED,
  TP_HANDLED,
  TP_RETRIES,
  TP_DLQ,
  TP_COMMITTED,
  TP_BATCHES,
  TP_BATCHED,
  TP_COUNT
};

static const struct {
  const char *name;
  imp_metric_type_t type;
  const char *help;
} trig_families[TP_COUNT] = {
    {"impulse_trigger_lag", IMP_METRIC_GAUGE,
     "Records behind the committed offset, over the partitions this server "
     "holds."},
    {"impulse_trigger_in_flight", IMP_METRIC_GAUGE,
     "Invocations of the trigger running or awaiting their reply."},
    {"impulse_trigger_received_total", IMP_METRIC_COUNTER,
     "Records consumed by the trigger."},
    {"impulse_trigger_handled_total", IMP_METRIC_COUNTER,
     "Records whose invocation succeeded."},
    {"impulse_trigger_retries_total", IMP_METRIC_COUNTER,
     "Retry attempts made for failed invocations."},
    {"impulse_trigger_dead_lettered_total", IMP_METRIC_COUNTER,
     "Records written to the dead-letter topic."},
    {"impulse_trigger_committed_offset", IMP_METRIC_GAUGE,
     "Offset committed for each partition this server holds."},
    {"impulse_trigger_batches_total", IMP_METRIC_COUNTER,
     "Record batches sent to the function (one call each)."},
    {"impulse_trigger_batched_records_total", IMP_METRIC_COUNTER,
     "Records those batches carried."},
};

static void trig_sample(void *arg, const Impulse__TriggerInfo *info) {
  trig_pass_t *tp = arg;
  const char *name = trig_families[tp->which].name;
  imp_label_t l[2] = {{"trigger", info->spec->name}, {"partition", NULL}};
  int64_t lag = 0;
  switch (tp->which) {
    case TP_LAG:
      for (size_t i = 0; i < info->n_partitions; i++)
        lag += info->partitions[i]->lag;
      imp_metrics_sample(tp->w, name, l, 1, (double)lag);
      break;
    case TP_IN_FLIGHT:
      imp_metrics_sample(tp->w, name, l, 1, info->in_flight);
      break;
    case TP_RECEIVED:
      imp_metrics_sample_u64(tp->w, name, l, 1, info->received);
      break;
    case TP_HANDLED:
      imp_metrics_sample_u64(tp->w, name, l, 1, info->handled);
      break;
    case TP_RETRIES:
      imp_metrics_sample_u64(tp->w, name, l, 1, info->retried);
      break;
    case TP_DLQ:
      imp_metrics_sample_u64(tp->w, name, l, 1, info->dead_lettered);
      break;
    case TP_BATCHES:
      imp_metrics_sample_u64(tp->w, name, l, 1, info->batches);
      break;
    case TP_BATCHED:
      imp_metrics_sample_u64(tp->w, name, l, 1, info->batched);
      break;
    case TP_COMMITTED:
      for (size_t i = 0; i < info->n_partitions; i++) {
        const Impulse__PartitionInfo *p = info->partitions[i];
        if (p->committed < 0) continue; /* nothing committed yet */
        char part[16];
        snprintf(part, sizeof part, "%d", (int)p->partition);
        l[1].value = part;
        imp_metrics_sample(tp->w, name, l, 2, (double)p->committed);
      }
      break;
  }
}

void triggers_collect(imp_metrics_writer_t *w, void *arg) {
  triggers_t *triggers = arg;
  for (int f = 0; f < TP_COUNT; f++) {
    imp_metrics_family(w, trig_families[f].name, trig_families[f].type,
                       trig_families[f].help);
    trig_pass_t tp = {w, f};
    triggers_with_info(triggers, trig_sample, &tp);
  }
}
