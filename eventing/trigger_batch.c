/*
 * Record batches: while the function's handler is fast (the invoker's
 * batch hint above 1), records started in one loop turn go to it
 * together: one invoke_batch call (encoded by core/batch.h), one instance slot,
 * one frame each way, instead of one of each per record. The worker runs them
 * in order on one handler thread and answers each. Per record nothing changes:
 * its own result, retries, dead letter, reply, commit. A record that failed
 * once is retried alone (`solo`), and when a whole batch fails (its worker
 * crashed or it timed out) each of its records runs again alone, at once and
 * without counting an attempt: the failure cannot be pinned on any one of them,
 * and the record that caused it then fails alone and is counted.
 */
#include "eventing/trigger_batch.h"

#include <stdlib.h>
#include <string.h>

#include "core/batch.h"
#include "eventing/trigger_record.h"
#include "eventing/trigger_util.h"

/* What on_batch_done() gets: the records of the batch, in order. */
typedef struct batch_ctx_s {
  size_t n;
  rec_t *recs[];
} batch_ctx_t;

/* Runs a record of a failed batch again, alone and at once; or, while its
 * partition is being released, leaves it to the partition's next owner. */
static void rec_rerun_alone(rec_t *rec) {
  rec->solo = 1;
  if (rec->part->stopping) {
    rec_stall(rec);
    rec->trigger->triggers->hooks->kick(rec->trigger);
    return;
  }
  rec_invoke_one(rec);
}

static void on_batch_done(void *arg, uint64_t tag, const imp_answer_t *answer) {
  batch_ctx_t *ctx = arg;
  const Impulse__InvokeBatchResponse *resp = answer->batch;
  (void)tag;
  for (size_t i = 0; i < ctx->n; i++) {
    rec_t *rec = ctx->recs[i];
    rec->ops--;
    if (rec->part == NULL || rec->state != R_ACTIVE) {
      rec_maybe_free(rec);
      continue;
    }
    if (answer->code != 0) {
      /* A failure of the function or of the moment (it is gone, busy,
       * cannot start, the server stops) is each record's; any other (a
       * crash, a timeout) cannot be pinned on one of them. */
      if (answer->code == IMPULSE__ERROR_CODE__SHUTTING_DOWN ||
          answer->code == IMPULSE__ERROR_CODE__NOT_FOUND ||
          is_transient(answer->code))
        rec_fail(rec, answer->code, answer->message);
      else
        rec_rerun_alone(rec);
      continue;
    }
    const Impulse__BatchResult *r =
        resp != NULL && i < resp->n_results ? resp->results[i] : NULL;
    rec->solo = 1; /* whatever comes next for it, it comes alone */
    if (r == NULL || r->code == IMPULSE__ERROR_CODE__UNAVAILABLE) {
      rec_rerun_alone(rec); /* no answer for it in the batch's */
    } else if (r->code != 0) {
      rec_fail(rec, r->code, r->message ? r->message : "failed");
    } else {
      rec->solo = 0;
      Impulse__InvokeResponse ok = IMPULSE__INVOKE_RESPONSE__INIT;
      ok.has_payload = r->has_payload;
      ok.payload = r->payload;
      ok.n_headers = r->n_headers;
      ok.headers = r->headers;
      rec_invoked(rec, &ok);
    }
  }
  free(ctx);
}

/* Sends the trigger's batch being built (if any). */
static void batch_send(trigger_t *trigger) {
  triggers_t *triggers = trigger->triggers;
  rec_t **recs = trigger->bq;
  size_t n = trigger->bqn, m = 0;
  trigger->bq = NULL;
  trigger->bqn = trigger->bqcap = trigger->bqbytes = 0;
  /* Records whose partition was lost or is being released since they were
   * added wait for its next owner: stalled now, so that the release does
   * not wait for them. */
  for (size_t i = 0; i < n; i++) {
    rec_t *rec = recs[i];
    if (rec->part == NULL || rec->state != R_ACTIVE) {
      rec->ops--;
      rec_maybe_free(rec);
    } else if (rec->part->stopping) {
      rec->ops--;
      rec_stall(rec);
      triggers->hooks->kick(trigger);
    } else {
      recs[m++] = rec;
    }
  }
  if (m <= 1) {
    if (m == 1) {
      recs[0]->ops--;
      rec_invoke_one(recs[0]);
    }
    free(recs);
    return;
  }
  /* The request is encoded from the records (core/batch.h) rather than
   * built as protobuf-c structs and packed: that took a fifth of the loop
   * thread's time per record. */
  size_t nh = 0;
  for (size_t i = 0; i < m; i++) nh += recs[i]->nhdrs + 10;
  if (triggers->scratch_cap < m * REC_SCRATCH) {
    char *p = realloc(triggers->scratch, m * REC_SCRATCH);
    if (p == NULL) abort(); /* a few KiB: the records' own blocks are bigger */
    triggers->scratch = p;
    triggers->scratch_cap = m * REC_SCRATCH;
  }
  Impulse__Header *hs = malloc(nh * sizeof *hs);
  size_t *hlen = malloc((nh + 2 * m) * sizeof *hlen);
  batch_ctx_t *ctx = malloc(sizeof *ctx + m * sizeof(rec_t *));
  if (hs == NULL || hlen == NULL || ctx == NULL) abort();
  size_t *ilen = hlen + nh; /* per item: its encoded length */
  size_t *cnt = ilen + m;   /* per item: its header count */
  const char *fname = trigger->spec->function;
  imp_batch_request_t br;
  imp_batch_request_init(&br, fname);
  size_t k = 0;
  for (size_t i = 0; i < m; i++) {
    rec_t *rec = recs[i];
    cnt[i] = rec_headers(rec, hs + k, triggers->scratch + i * REC_SCRATCH);
    ilen[i] =
        imp_batch_request_measure(&br, rec->vlen, hs + k, cnt[i], hlen + k);
    k += cnt[i];
    ctx->recs[i] = rec;
  }
  ctx->n = m;
  size_t restlen = imp_batch_request_size(&br);
  uint8_t *rest = malloc(restlen);
  if (rest == NULL || imp_batch_request_encode(&br, rest, restlen) != 0)
    abort();
  k = 0;
  for (size_t i = 0; i < m; i++) {
    /* The same items as measured: they fit. */
    if (imp_batch_request_encode_item(&br, ilen[i], recs[i]->value,
                                      recs[i]->vlen, hs + k, cnt[i],
                                      hlen + k) != 0)
      abort();
    k += cnt[i];
  }
  free(hs);
  free(hlen);
  int rc = triggers->env.invoker->ops->invoke_batch(
      triggers->env.invoker, fname, (uint32_t)m, (const char *)rest, restlen,
      on_batch_done, ctx);
  free(rest);
  if (rc == 0) {
    trigger->batches++;
    trigger->batched += m;
  } else {
    free(ctx);
    for (size_t i = 0; i < m; i++) {
      recs[i]->ops--;
      if (rc == -E2BIG) {
        recs[i]->solo = 1;
        rec_invoke_one(recs[i]);
      } else {
        rec_invoke_failed(recs[i], rc);
      }
    }
  }
  free(recs);
}

/* Sends every trigger's batch: called first when the loop turn's output
 * is written (imp_conn_loop_t.before_flush), so a batch goes out in the
 * turn its records were started in. */
void batches_flush(void *arg) {
  triggers_t *triggers = arg;
  while (triggers->bq_head != NULL) {
    trigger_t *trigger = triggers->bq_head;
    triggers->bq_head = trigger->bq_next;
    trigger->bq_next = NULL;
    trigger->bq_listed = 0;
    batch_send(trigger);
    trigger_unref(trigger);
  }
  if (triggers->bq_idle_open) uv_idle_stop(&triggers->bq_idle);
}

static void on_bq_idle(uv_idle_t *idle) {
  (void)idle; /* only keeps poll() from sleeping; batches_flush() sends */
}

/* Adds the record to its trigger's batch. 0 when it must go alone (too
 * large to share a frame, or no memory for the batch). */
static int batch_add(rec_t *rec) {
  trigger_t *trigger = rec->trigger;
  triggers_t *triggers = trigger->triggers;
  size_t max_frame = triggers->env.max_frame;
  size_t est = rec->vlen + rec->klen + 2 * strlen(trigger->spec->topic) +
               strlen(trigger->ce_source) + 320;
  for (size_t i = 0; i < rec->nhdrs; i++)
    est += strlen(rec->hdrs[i].name) + rec->hdrs[i].len + 8;
  if (est > max_frame / 8) return 0;
  if (trigger->bqn > 0 && trigger->bqbytes + est > max_frame / 2)
    batch_send(trigger);
  if (trigger->bqn == trigger->bqcap) {
    size_t cap = trigger->bqcap ? trigger->bqcap * 2 : 16;
    rec_t **bq = realloc(trigger->bq, cap * sizeof *bq);
    if (bq == NULL) return 0;
    trigger->bq = bq;
    trigger->bqcap = cap;
  }
  trigger->bq[trigger->bqn++] = rec;
  trigger->bqbytes += est;
  rec->ops++;
  if (!trigger->bq_listed) {
    trigger->bq_listed = 1;
    trigger->refs++;
    trigger->bq_next = triggers->bq_head;
    triggers->bq_head = trigger;
    if (triggers->bq_idle_open) uv_idle_start(&triggers->bq_idle, on_bq_idle);
  }
  if (trigger->bqn >= trigger->batch_max) batch_send(trigger);
  return 1;
}

/* Sends the record to its function: in the trigger's batch while the
 * function takes batches, else alone. */
void rec_invoke(rec_t *rec) {
  if (!rec->solo && rec->trigger->batch_max > 1 && batch_add(rec)) return;
  rec_invoke_one(rec);
}
