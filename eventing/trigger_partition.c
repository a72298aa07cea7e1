/*
 * The partitions assigned to a trigger: the records taken from each, kept
 * in offset order (trigger_track.h) and started as the ordering (key
 * queues for ordering key) and the function's room allow; a record's
 * finish and the slot it frees; back-pressure (pause and resume); commits
 * of the low-water mark of finished records; release at a revoke or a
 * stop.
 */
#include "eventing/trigger_partition.h"

#include <stdlib.h>
#include <string.h>

#include "eventing/trigger_record.h"
#include "eventing/trigger_track.h"
#include "eventing/trigger_util.h"

#define QUEUE_ROOM 64 /* calls a trigger lets wait in a function's queue */
#define MAX_PARTITION_ID 100000
/* Bytes of keys and values kept per partition before it is paused. */
#define WINDOW_BYTES (4u << 20)

/*
 * Pauses or resumes fetching a partition. Pausing drops what librdkafka had
 * prefetched for it; resuming fetches again from the record after the last
 * one it handed out. librdkafka 2.0.2 does not wake the partition's broker
 * thread on a resume: when all the partitions that broker leads are paused
 * it sleeps up to a second, which capped a trigger at max-in-flight records
 * per partition per second. An asynchronous seek to that same position
 * (where the resume would fetch from anyway, so nothing is skipped or read
 * twice) goes through the path that does wake it.
 */
static void part_pause(part_t *part, int on) {
  trigger_t *trigger = part->trigger;
  rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
  rd_kafka_topic_partition_list_add(l, trigger->spec->topic, part->id)->offset =
      part->track.next;
  rd_kafka_resp_err_t e = on ? rd_kafka_pause_partitions(trigger->rk, l)
                             : rd_kafka_resume_partitions(trigger->rk, l);
  if (!on && e == RD_KAFKA_RESP_ERR_NO_ERROR && part->track.next >= 0) {
    rd_kafka_error_t *error = rd_kafka_seek_partitions(trigger->rk, l, 0);
    if (error) rd_kafka_error_destroy(error); /* resumed all the same */
  }
  rd_kafka_topic_partition_list_destroy(l);
  if (e != RD_KAFKA_RESP_ERR_NO_ERROR)
    IMP_LOG(IMP_LOG_WARN, "trigger %s: cannot %s partition %d: %s",
            trigger->spec->name, on ? "pause" : "resume", (int)part->id,
            rd_kafka_err2str(e));
  part->paused = on;
}

/* Starts the records the ordering allows. */
void part_pump(part_t *part) {
  trigger_t *trigger = part->trigger;
  if (part->stopping || trigger->ordering == ORD_KEY) return;
  unsigned limit =
      trigger->ordering == ORD_PARTITION ? 1 : trigger->max_in_flight;
  /* Calls waiting in the function's queue cost a copy and a timer each and
   * help nobody: start only as many as keep it short, and be woken when
   * the function frees slots (imp_triggers_wake). */
  unsigned batch;
  imp_invoker_t *inv = trigger->triggers->env.invoker;
  long budget =
      inv->ops->queue_room(inv, trigger->spec->function, QUEUE_ROOM, &batch);
  /* With batches, each call the queue has room for carries `batch`
   * records; those in the batch being built have no slot yet. */
  trigger->batch_max = batch;
  if (batch > 1 && budget > 0)
    budget = budget * (long)batch - (long)trigger->bqn;
  while (part->active < limit && part->cursor < part->track.tail) {
    if (budget <= 0) {
      if (!trigger->waiting) inv->ops->want_room(inv, trigger->spec->function);
      trigger->waiting = 1;
      break;
    }
    if (part->cursor < part->track.head) {
      part->cursor = part->track.head;
      continue;
    }
    rec_t *rec = imp_track_at(&part->track, part->cursor++)->item;
    if (rec != NULL && rec->state == R_WAITING) {
      rec_start(rec);
      budget--;
    }
  }
}

/* Resumes a paused partition once its window has drained to half. */
static void part_check_resume(part_t *part) {
  trigger_t *trigger = part->trigger;
  if (part->paused && !part->stopping &&
      imp_track_len(&part->track) <= trigger->window / 2 &&
      part->bytes <= WINDOW_BYTES / 2)
    part_pause(part, 0);
}

/* ---- key queues (ordering key) ------------------------------------------- */

static uint64_t hash_key(const rec_t *rec) {
  uint64_t h = 1469598103934665603ull; /* FNV-1a */
  for (size_t i = 0; i < rec->klen; i++) {
    h ^= (unsigned char)rec->key[i];
    h *= 1099511628211ull;
  }
  return rec->key ? h : 0;
}

/* The queue of the record's key, created when missing; NULL without
 * memory. */
static keyq_t *keyq_get(part_t *part, const rec_t *rec) {
  uint64_t h = hash_key(rec);
  int null_key = rec->key == NULL;
  if (part->nkb) {
    for (keyq_t *k = part->kb[h & (part->nkb - 1)]; k; k = k->next)
      if (k->hash == h && k->null_key == null_key && k->klen == rec->klen &&
          memcmp(k->key, rec->key ? rec->key : "", rec->klen) == 0)
        return k;
  }
  if (part->nkeys >= part->nkb) {
    size_t nkb = part->nkb ? part->nkb * 2 : 64;
    keyq_t **kb = calloc(nkb, sizeof *kb);
    if (kb == NULL) return NULL;
    for (size_t i = 0; i < part->nkb; i++) {
      keyq_t *k = part->kb[i], *next;
      for (; k; k = next) {
        next = k->next;
        k->next = kb[k->hash & (nkb - 1)];
        kb[k->hash & (nkb - 1)] = k;
      }
    }
    free(part->kb);
    part->kb = kb;
    part->nkb = nkb;
  }
  keyq_t *k = calloc(1, sizeof *k + rec->klen);
  if (k == NULL) return NULL;
  k->hash = h;
  k->null_key = null_key;
  k->klen = rec->klen;
  if (rec->klen) memcpy(k->key, rec->key, rec->klen);
  k->next = part->kb[h & (part->nkb - 1)];
  part->kb[h & (part->nkb - 1)] = k;
  part->nkeys++;
  return k;
}

static void keyq_remove(part_t *part, keyq_t *k) {
  keyq_t **pp = &part->kb[k->hash & (part->nkb - 1)];
  while (*pp != k) pp = &(*pp)->next;
  *pp = k->next;
  part->nkeys--;
  free(k);
}

/* Starts the next record of the finished record's key, or drops the key's
 * queue when nothing of that key is left. */
static void keyq_next(part_t *part, rec_t *rec) {
  keyq_t *k = rec->keyq;
  if (k == NULL) return;
  rec->keyq = NULL;
  if (k->busy == rec) k->busy = NULL;
  if (k->head != NULL && !part->stopping) {
    rec_t *next = k->head;
    k->head = next->knext;
    if (k->head == NULL) k->tail = NULL;
    next->knext = NULL;
    k->busy = next;
    rec_start(next);
  } else if (k->head == NULL && k->busy == NULL) {
    keyq_remove(part, k);
  }
}

/* ---- a record's end ------------------------------------------------------ */

/*
 * The record was invoked and its reply is handed to the producer: its
 * invocation slot (and its key, with ordering key) go to the next record
 * while the reply's delivery is awaited. Replies keep their order: the
 * producer is idempotent and a record's reply has its key. The record
 * still holds back the commit until part_finish().
 */
void part_free_slot(rec_t *rec) {
  part_t *part = rec->part;
  if (rec->slot_freed || part == NULL || rec->state != R_ACTIVE) return;
  rec->slot_freed = 1;
  part->active--;
  part->replying++;
  if (rec->trigger->ordering == ORD_KEY) keyq_next(part, rec);
  part_pump(part);
}

/* The record's function succeeded (and the reply was written) or it was
 * dead-lettered: it no longer holds back its partition's commit. */
void part_finish(rec_t *rec) {
  part_t *part = rec->part;
  trigger_t *trigger = rec->trigger;
  attempt_delete(rec);
  imp_track_done(&part->track, rec->seq);
  part->pending--;
  part->bytes -= rec->klen + rec->vlen;
  rec->part = NULL;
  if (rec->slot_freed) {
    part->replying--;
  } else {
    part->active--;
    if (trigger->ordering == ORD_KEY) keyq_next(part, rec);
  }
  rec_maybe_free(rec);
  part_pump(part);
  part_check_resume(part);
  if (part->stopping) trigger->triggers->hooks->kick(trigger);
}

/* ---- records taken ------------------------------------------------------- */

/* A record consumed from an assigned partition. */
void trigger_on_record(trigger_t *trigger, const rd_kafka_message_t *msg) {
  int32_t id = msg->partition;
  part_t *part =
      id >= 0 && (size_t)id < trigger->nparts ? trigger->parts[id] : NULL;
  if (part == NULL || part->stopping) return; /* redelivered to its owner */
  if (part->track.next >= 0 && msg->offset < part->track.next)
    return; /* seen */
  if (msg->offset < part->skip_below) {
    /* The group restarted the partition below what this process finished
     * before (its commit was refused, or the partition was lost): those
     * records were handled; jump past them. */
    if (!part->skipping) {
      rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
      rd_kafka_topic_partition_list_add(l, trigger->spec->topic, id)->offset =
          part->skip_below;
      rd_kafka_error_t *error = rd_kafka_seek_partitions(trigger->rk, l, 0);
      if (error) rd_kafka_error_destroy(error); /* the records are skipped */
      rd_kafka_topic_partition_list_destroy(l);
      IMP_LOG(IMP_LOG_INFO,
              "trigger %s: partition %d restarts at %lld, "
              "below %lld handled here already: skipping to it",
              trigger->spec->name, (int)id, (long long)msg->offset,
              (long long)part->skip_below);
      part->skipping = 1;
      /* Committable at once: everything below was finished here. */
      if (part->track.next < part->skip_below)
        part->track.next = part->skip_below;
    }
    return;
  }
  /* A record that cannot be tracked cannot be skipped either: the next
   * one finishing would commit past it. Without memory, stop here; the
   * records not committed come again after the restart. */
  rec_t *rec = rec_new(trigger, msg);
  if (rec == NULL ||
      imp_track_push(&part->track, msg->offset, rec, &rec->seq) != 0) {
    IMP_LOG(IMP_LOG_ERROR, "trigger %s: out of memory for a record",
            trigger->spec->name);
    abort();
  }
  rec->part = part;
  attempt_lookup(part, rec);
  part->seen = 1;
  part->pending++;
  part->bytes += rec->klen + rec->vlen;
  trigger->received++;
  if (trigger->ordering == ORD_KEY) {
    keyq_t *k = keyq_get(part, rec);
    if (k == NULL) abort(); /* the record is tracked: it cannot be dropped */
    rec->keyq = k;
    if (k->busy == NULL && k->head == NULL) {
      k->busy = rec;
      rec_start(rec);
    } else if (k->tail) {
      k->tail->knext = rec;
      k->tail = rec;
    } else {
      k->head = k->tail = rec;
    }
  } else {
    part_pump(part);
  }
  /* Records wait in the window while max-in-flight of them run: pausing
   * at max-in-flight would drop librdkafka's prefetch and refetch it on
   * every resume. */
  if (!part->paused && (imp_track_len(&part->track) >= trigger->window ||
                        part->bytes >= WINDOW_BYTES))
    part_pause(part, 1);
}

part_t *part_get(trigger_t *trigger, int32_t id) {
  return id >= 0 && (size_t)id < trigger->nparts ? trigger->parts[id] : NULL;
}

part_t *part_new(trigger_t *trigger, int32_t id) {
  if (id < 0 || id >= MAX_PARTITION_ID) return NULL;
  if ((size_t)id >= trigger->nparts) {
    size_t n = (size_t)id + 1 > trigger->nparts * 2 ? (size_t)id + 1
                                                    : trigger->nparts * 2;
    part_t **parts = realloc(trigger->parts, n * sizeof *parts);
    if (parts == NULL) return NULL;
    memset(parts + trigger->nparts, 0, (n - trigger->nparts) * sizeof *parts);
    trigger->parts = parts;
    trigger->nparts = n;
  }
  if (trigger->parts[id] != NULL) return trigger->parts[id];
  part_t *part = calloc(1, sizeof *part);
  if (part == NULL) return NULL;
  part->trigger = trigger;
  part->id = id;
  part->committed = part->commit_sent = -1;
  part->skip_below = (size_t)id < trigger->ndone ? trigger->done[id] : -1;
  imp_track_init(&part->track);
  attempts_load(part); /* counts of its records from earlier runs */
  trigger->parts[id] = part;
  return part;
}

/* Nothing new starts; records waiting for a retry stop waiting. Records
 * whose invocation or produce is under way are let finish. */
void part_stop(part_t *part) {
  if (part->stopping) return;
  part->stopping = 1;
  for (uint64_t s = part->track.head; s < part->track.tail; s++) {
    rec_t *rec = imp_track_at(&part->track, s)->item;
    if (rec != NULL && rec->state == R_ACTIVE && rec->in_backoff)
      rec_stall(rec);
  }
}

static void commit_add(rd_kafka_topic_partition_list_t *list, part_t *part) {
  int64_t lwm = imp_track_low_water(&part->track);
  if (lwm < 0 || lwm <= part->commit_sent) return;
  rd_kafka_topic_partition_list_add(list, part->trigger->spec->topic, part->id)
      ->offset = lwm;
  part->commit_sent = lwm;
}

/* Forgets the partition: records still under way are given up (their
 * callbacks only free them) and come again to whoever owns it next. */
static void part_release(part_t *part) {
  trigger_t *trigger = part->trigger;
  int64_t lwm = imp_track_low_water(&part->track);
  if (lwm < part->skip_below) lwm = part->skip_below;
  if (lwm >= 0 && (size_t)part->id >= trigger->ndone) {
    size_t n = (size_t)part->id + 1;
    int64_t *done = realloc(trigger->done, n * sizeof *done);
    if (done != NULL) {
      for (size_t i = trigger->ndone; i < n; i++) done[i] = -1;
      trigger->done = done;
      trigger->ndone = n;
    }
  }
  if (lwm >= 0 && (size_t)part->id < trigger->ndone)
    trigger->done[part->id] = lwm;
  if (part->paused && trigger->rk) part_pause(part, 0);
  for (uint64_t s = part->track.head; s < part->track.tail; s++) {
    rec_t *rec = imp_track_at(&part->track, s)->item;
    if (rec == NULL) continue;
    if (rec->in_backoff) uv_timer_stop(&rec->timer);
    rec->in_backoff = 0;
    rec->part = NULL;
    rec->keyq = NULL;
    rec_maybe_free(rec);
  }
  for (size_t i = 0; i < part->nkb; i++) {
    keyq_t *k = part->kb[i], *next;
    for (; k; k = next) {
      next = k->next;
      free(k);
    }
  }
  free(part->kb);
  for (size_t i = 0; i < part->natt; i++) free(part->att[i].error);
  free(part->att);
  imp_track_free(&part->track);
  trigger->parts[part->id] = NULL;
  free(part);
}

static void commit_async(trigger_t *trigger,
                         rd_kafka_topic_partition_list_t *list) {
  if (list->cnt == 0 || trigger->rk == NULL) return;
  rd_kafka_resp_err_t e = rd_kafka_commit(trigger->rk, list, 1);
  if (e != RD_KAFKA_RESP_ERR_NO_ERROR && e != RD_KAFKA_RESP_ERR__NO_OFFSET) {
    trigger_set_kafka_error(trigger, "commit: %s", rd_kafka_err2str(e));
    for (int i = 0; i < list->cnt; i++) {
      part_t *part = part_get(trigger, list->elems[i].partition);
      if (part) part->commit_sent = part->committed;
    }
  }
}

/* Commits every partition's low-water mark that moved. */
void trigger_commit(trigger_t *trigger, int force) {
  if (trigger->rk == NULL || trigger->state >= T_CLOSING) return;
  if (!force && (trigger->hold_rebalance || trigger->hold_assigns > 0)) {
    if (imp_now_ms() < trigger->commit_hold_until) return;
    trigger->hold_rebalance = trigger->hold_assigns = 0; /* waited enough */
  }
  rd_kafka_topic_partition_list_t *list = NULL;
  for (size_t i = 0; i < trigger->nparts; i++) {
    part_t *part = trigger->parts[i];
    if (part == NULL) continue;
    int64_t lwm = imp_track_low_water(&part->track);
    if (lwm < 0 || lwm <= part->commit_sent) continue;
    if (list == NULL) list = rd_kafka_topic_partition_list_new(8);
    commit_add(list, part);
  }
  if (list == NULL) return;
  commit_async(trigger, list);
  rd_kafka_topic_partition_list_destroy(list);
}

/* The partition of index i when it is one of `which` (or `which` is NULL),
 * else NULL. */
static part_t *part_listed(trigger_t *trigger, size_t i,
                           const rd_kafka_topic_partition_list_t *which) {
  part_t *part = trigger->parts[i];
  if (part == NULL || which == NULL) return part;
  return rd_kafka_topic_partition_list_find(which, trigger->spec->topic,
                                            part->id) != NULL
             ? part
             : NULL;
}

/* Releases the listed partitions (or all when list is NULL), committing
 * their low-water marks unless `lost`. */
void parts_release(trigger_t *trigger,
                   const rd_kafka_topic_partition_list_t *which, int lost) {
  rd_kafka_topic_partition_list_t *commit =
      rd_kafka_topic_partition_list_new(8);
  for (size_t i = 0; i < trigger->nparts; i++) {
    part_t *part = part_listed(trigger, i, which);
    if (part == NULL) continue;
    if (!lost) commit_add(commit, part);
    part_release(part);
  }
  if (!lost) commit_async(trigger, commit);
  rd_kafka_topic_partition_list_destroy(commit);
  attempts_flush(trigger->triggers);
}

unsigned parts_busy(trigger_t *trigger,
                    const rd_kafka_topic_partition_list_t *which) {
  unsigned n = 0;
  for (size_t i = 0; i < trigger->nparts; i++) {
    part_t *part = part_listed(trigger, i, which);
    if (part != NULL) n += part->active + part->replying;
  }
  return n;
}
