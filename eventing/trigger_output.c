/*
 * Outputs, dead letters and replies: a record may end in one record of output,
 * produced with its key: itself to the dead-letter topic (PH_DLQ) with
 * x-impulse-* headers saying why, or the function's response to the reply topic
 * (PH_REPLY) with ce_* headers tying it to the input. Either way the record is
 * finished once the output is acknowledged; a failure that may pass is retried
 * with backoff without counting an attempt, a stopping server stalls the record
 * (it comes again), and an output too large to be written at all is dropped
 * rather than block the partition for ever. Both kinds take the one path below
 * (rec_output(), on_output_done(), output_failed()).
 */
#include "eventing/trigger_output.h"

#include <string.h>

#include "eventing/cloudevents.h"
#include "eventing/trigger_record.h"
#include "eventing/trigger_util.h"

#define OUTPUT_HEADERS (MAX_RECORD_HEADERS + 8) /* either kind's, at most */
_Static_assert(MAX_REPLY_HEADERS + 4 <= OUTPUT_HEADERS, "reply headers");

/* Headers of the record's dead letter: its own, then why and whence.
 * Their text goes to `buf` (64 bytes). */
static size_t dlq_headers(const rec_t *rec, Impulse__Header *hs, char *buf) {
  const Impulse__TriggerSpec *spec = rec->trigger->spec;
  char *abuf = buf, *pbuf = buf + 16, *obuf = buf + 32;
  size_t n = 0;
  for (size_t i = 0; i < rec->nhdrs; i++)
    hset(&hs[n++], rec->hdrs[i].name, rec->hdrs[i].value, rec->hdrs[i].len);
  hset(&hs[n++], "x-impulse-error", rec->error, strlen(rec->error));
  hset(&hs[n++], "x-impulse-attempts", abuf, fmt_i64(abuf, rec->attempts));
  hset(&hs[n++], "x-impulse-original-topic", spec->topic, strlen(spec->topic));
  hset(&hs[n++], "x-impulse-original-partition", pbuf,
       fmt_i64(pbuf, rec->partition));
  hset(&hs[n++], "x-impulse-original-offset", obuf, fmt_i64(obuf, rec->offset));
  hset(&hs[n++], "x-impulse-function", spec->function, strlen(spec->function));
  hset(&hs[n++], "x-impulse-trigger", spec->name, strlen(spec->name));
  return n;
}

/* Headers of the record's reply: the CloudEvents attributes of a reply,
 * with the input's ce_id, then the response's own. The id's text goes to
 * `buf` (IMP_CE_ID_MAX bytes). */
static size_t reply_headers(const rec_t *rec, Impulse__Header *hs, char *buf) {
  const trigger_t *trigger = rec->trigger;
  size_t n = 0, idlen;
  const void *id = rec_ce_id(rec, buf, IMP_CE_ID_MAX, &idlen);
  hset(&hs[n++], IMP_CE_H_SPECVERSION, IMP_CE_VERSION,
       sizeof IMP_CE_VERSION - 1);
  hset(&hs[n++], IMP_CE_H_ID, id, idlen);
  hset(&hs[n++], IMP_CE_H_SOURCE, trigger->reply_source,
       strlen(trigger->reply_source));
  hset(&hs[n++], IMP_CE_H_TYPE, IMP_CE_TYPE_REPLY,
       sizeof IMP_CE_TYPE_REPLY - 1);
  for (size_t i = 0; i < rec->nrhdrs; i++)
    hset(&hs[n++], rec->rhdrs[i].name, rec->rhdrs[i].value, rec->rhdrs[i].len);
  return n;
}

static const char *output_topic(const rec_t *rec, int kind) {
  return kind == PH_DLQ ? rec->trigger->spec->dlq
                        : rec->trigger->spec->reply_topic;
}

/*
 * The record's output of `kind` was not written: `err` from
 * imp_kafka_produce() (at_once) or from its delivery report, with the
 * producer's reason in errstr (may be NULL).
 */
static void output_failed(rec_t *rec, int kind, int err, const char *errstr,
                          int at_once) {
  trigger_t *trigger = rec->trigger;
  const Impulse__TriggerSpec *spec = trigger->spec;
  const char *what = kind == PH_DLQ ? "dead-letter topic" : "reply topic";
  if (at_once && err == -EMSGSIZE) {
    /* It can never be written anywhere: say so loudly and go on, rather
     * than block the partition for ever. */
    if (kind == PH_DLQ)
      IMP_LOG(IMP_LOG_ERROR,
              "trigger %s: %s/%d@%lld is too large for the %s %s and is "
              "dropped (%s)",
              spec->name, spec->topic, (int)rec->partition,
              (long long)rec->offset, what, spec->dlq, rec->error);
    else
      IMP_LOG(IMP_LOG_ERROR,
              "trigger %s: the response to %s/%d@%lld is too large for the "
              "%s %s and is dropped",
              spec->name, spec->topic, (int)rec->partition,
              (long long)rec->offset, what, spec->reply_topic);
    rec_schedule(rec, PH_FINISH, 0);
  } else if (err == -ESHUTDOWN || err == IMP_ECANCELED) {
    rec_stall(rec);
  } else {
    trigger_set_kafka_error(trigger, "cannot write to %s %s: %s", what,
                            output_topic(rec, kind),
                            errstr ? errstr : imp_strerror(err));
    rec->transient++;
    rec_schedule(rec, kind, trigger_backoff_ms(trigger, rec->transient));
  }
}

static void on_output_done(void *arg, int err, const char *errstr,
                           int32_t partition, int64_t offset) {
  rec_t *rec = arg;
  rec->ops--;
  if (rec->part == NULL || rec->state != R_ACTIVE) {
    rec_maybe_free(rec);
    return;
  }
  if (err != 0) {
    output_failed(rec, rec->phase, err, errstr, 0);
    return;
  }
  if (rec->phase == PH_DLQ) {
    trigger_t *trigger = rec->trigger;
    trigger->dead_lettered++;
    IMP_LOG(IMP_LOG_WARN,
            "trigger %s: %s/%d@%lld dead-lettered to %s/%d@%lld after %u "
            "attempt%s: %s",
            trigger->spec->name, trigger->spec->topic, (int)rec->partition,
            (long long)rec->offset, trigger->spec->dlq, (int)partition,
            (long long)offset, rec->attempts, rec->attempts == 1 ? "" : "s",
            rec->error);
  }
  rec->trigger->triggers->hooks->finish(rec);
}

/* Produces the record's output of `kind` (PH_DLQ or PH_REPLY); the record
 * is finished once it is acknowledged. A reply frees the record's slot as
 * soon as the producer has it (the hooks' free_slot). */
void rec_output(rec_t *rec, int kind) {
  Impulse__Header hs[OUTPUT_HEADERS];
  Impulse__Header *hp[OUTPUT_HEADERS];
  char text[IMP_CE_ID_MAX];
  size_t n;
  const char *value;
  size_t vlen;
  if (kind == PH_DLQ) {
    n = dlq_headers(rec, hs, text);
    value = rec->value;
    vlen = rec->vlen;
  } else {
    n = reply_headers(rec, hs, text);
    value = rec->rpayload;
    vlen = rec->replylen;
  }
  for (size_t i = 0; i < n; i++) hp[i] = &hs[i];
  rec->phase = kind; /* for on_output_done() */
  rec->ops++;
  int rc = imp_kafka_produce(rec->trigger->triggers->env.kafka,
                             output_topic(rec, kind), -1, rec->key, rec->klen,
                             value, vlen, hp, n, on_output_done, rec);
  if (rc != 0) {
    rec->ops--;
    output_failed(rec, kind, rc, NULL, 1);
  } else if (kind == PH_REPLY) {
    rec->trigger->triggers->hooks->free_slot(rec);
  }
}
