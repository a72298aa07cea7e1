/*
 * The trigger broker's private parts, shared by its files and by nothing
 * else (the broker's interface is trigger.h):
 *
 *   trigger.c            the broker: open, close, free; each trigger's life
 *                        (create, stop, close, delete); the RPC handlers
 *   trigger_spec.c       a TriggerSpec checked and completed with defaults
 *   trigger_info.c       what `trigger describe` and /metrics show
 *   trigger_consumer.c   the consumer: its queues served on the loop,
 *                        rebalances, commit reports, leaving the group
 *   trigger_partition.c  assigned partitions: records taken, started as
 *                        the ordering and the function's room allow,
 *                        paused and resumed, committed, released
 *   trigger_record.c     one record: its memory, its stored attempt
 *                        count, its invocation, retries, completion
 *   trigger_batch.c      records sent to the function in one call
 *   trigger_output.c     a record's dead letter or reply
 *
 * Everything runs on the server's loop thread. Functions shared between
 * these files are declared below under the file that defines them. They
 * keep the short names of the broker's vocabulary (rec_*, part_*,
 * trigger_*) rather than imp_*: they are not an interface of the module,
 * like libuv's uv__ functions of its internal.h.
 */
#ifndef IMP_TRIGGER_INTERNAL_H
#define IMP_TRIGGER_INTERNAL_H

#include <string.h>

#include "eventing/trigger.h"
#include "eventing/trigger_types.h"
#include "eventing/trigger_util.h"

#define CLOSE_WAIT_MS 5000 /* leaving the group */

/* A spec's defaults (trigger_spec_check() fills them in). */
#define DEF_FROM "earliest"
#define DEF_ORDERING "partition"
#define DEF_MAX_IN_FLIGHT 64u
#define DEF_MAX_RETRIES 3u
#define DEF_BACKOFF_INITIAL 100u
#define DEF_BACKOFF_MAX 10000u

/* ---- trigger.c ----------------------------------------------------------- */

/* The trigger has stopped: partitions released, consumer destroyed, a
 * pending `trigger rm` answered; a removed trigger leaves the list. */
void trigger_closed(trigger_t *trigger);

/* ---- trigger_spec.c ------------------------------------------------------ */

/* Checks a spec and fills in the defaults. Strings set point into `group`
 * (80 bytes) and `dlq` (260 bytes) or are borrowed from the request. 0, or
 * -1 with the reason in err. */
int trigger_spec_check(Impulse__TriggerSpec *s, char *group, char *dlq,
                       char *err, size_t errlen);
/* A deep copy, freed with impulse__trigger_spec__free_unpacked(). */
Impulse__TriggerSpec *trigger_spec_clone(const Impulse__TriggerSpec *s);

/* ---- trigger_info.c ------------------------------------------------------ */

/* Fills `info` for a trigger; parts/pp are caller-owned arrays of at least
 * trigger->nparts entries, state one of slen bytes. */
void trigger_fill_info(trigger_t *trigger, Impulse__TriggerInfo *info,
                       Impulse__PartitionInfo *parts,
                       Impulse__PartitionInfo **pp, char *state, size_t slen);
/* Calls cb with the trigger's info (trigger_fill_info()); `info` and what
 * it points to are borrowed for the call. */
void trigger_with_info(trigger_t *trigger, imp_trigger_info_cb cb, void *arg);
/* Calls cb with the info of every trigger listed (not removed). */
void triggers_with_info(triggers_t *triggers, imp_trigger_info_cb cb,
                        void *arg);
/* The impulse_trigger_* families (an imp_metrics_register() collector;
 * arg is the broker). */
void triggers_collect(imp_metrics_writer_t *w, void *arg);

/* ---- trigger_consumer.c -------------------------------------------------- */

/* Creates the trigger's consumer (not subscribed yet). 0, or negative
 * with err. */
int consumer_open(trigger_t *trigger, char *err, size_t errlen);
int consumer_subscribe(trigger_t *trigger, char *err, size_t errlen);
/* Destroys the consumer: it has left its group, or the wait for that is
 * over. */
void consumer_destroy(trigger_t *trigger);
/* Drains the consumer's queues (bounded per call) and moves a revoke or a
 * stop along. */
void trigger_service(trigger_t *trigger);
/* Services the trigger on the next loop turn. */
void trigger_kick(trigger_t *trigger);
/* Moves a revoke or a stop along once what it waits for is done or its
 * time is up. */
void trigger_progress(trigger_t *trigger);

/* ---- trigger_partition.c ------------------------------------------------- */

/* A record consumed from an assigned partition. */
void trigger_on_record(trigger_t *trigger, const rd_kafka_message_t *msg);
/* Starts the records the ordering and the function's room allow. */
void part_pump(part_t *part);
/* Resumes a paused partition once its window has drained to half. */
void part_check_resume(part_t *part);
/* The assigned partition `id`, or NULL. */
part_t *part_get(trigger_t *trigger, int32_t id);
/* Starts tracking an assigned partition (or returns it when tracked);
 * NULL without memory or for an id out of range. */
part_t *part_new(trigger_t *trigger, int32_t id);
/* The record's reply is with the producer: its slot goes to the next. */
void part_free_slot(rec_t *rec);
/* The record no longer holds back its partition's commit. */
void part_finish(rec_t *rec);
/* Nothing new starts; records waiting for a retry stop waiting. */
void part_stop(part_t *part);
/* Commits every partition's low-water mark that moved (force: even while
 * commits are held for a rebalance). */
void trigger_commit(trigger_t *trigger, int force);
/* Releases the listed partitions (all when `which` is NULL), committing
 * their low-water marks unless `lost`. */
void parts_release(trigger_t *trigger,
                   const rd_kafka_topic_partition_list_t *which, int lost);
/* Invocations running or awaiting their reply in the listed partitions
 * (all when `which` is NULL). */
unsigned parts_busy(trigger_t *trigger,
                    const rd_kafka_topic_partition_list_t *which);

/* ---- trigger_record.c ---------------------------------------------------- */

/* Writes the attempt counts stored this loop turn. */
void attempts_flush(triggers_t *triggers);
/* Reads the attempt counts stored for the partition's records by earlier
 * runs (attempt_lookup() gives them to their records). */
void attempts_load(part_t *part);
/* Stored attempt count of a record seen for the first time. */
void attempt_lookup(part_t *part, rec_t *rec);
/* Deletes the record's stored attempt count (it is finished). */
void attempt_delete(rec_t *rec);
/* Copies a consumed record into one block. NULL when out of memory. */
rec_t *rec_new(trigger_t *trigger, const rd_kafka_message_t *msg);
/* Frees a record that is finished or given up once no callback is owed to
 * it any more. */
void rec_maybe_free(rec_t *rec);
/* The record's ce_id: its own header, else the one made from its topic,
 * partition and offset (buf: IMP_CE_ID_MAX bytes). */
const void *rec_ce_id(const rec_t *rec, char *buf, size_t buflen, size_t *len);
/* Backoff before try number n (1-based) of something that failed. */
uint64_t trigger_backoff_ms(trigger_t *trigger, unsigned n);
/* Runs `phase` of the record after `ms` (stalls it instead while its
 * partition is being released). */
void rec_schedule(rec_t *rec, int phase, uint64_t ms);
/* Stops work on an active record: it stays unfinished and comes again. */
void rec_stall(rec_t *rec);
/* Whether a failed invocation's code says nothing about the record, only
 * about the moment (OVERLOADED, UNAVAILABLE): not counted as an attempt. */
int is_transient(int code);
/* A failed invocation: retried, or dead-lettered after max-retries. */
void rec_fail(rec_t *rec, int code, const char *message);
/* The record's function succeeded with `resp` (borrowed). */
void rec_invoked(rec_t *rec, const Impulse__InvokeResponse *resp);
/* Fills hs with the headers of the record's invocation (at most nhdrs +
 * 10), their text in `scratch` (REC_SCRATCH bytes); returns the count. */
size_t rec_headers(rec_t *rec, Impulse__Header *hs, char *scratch);
/* What a record gets when its invocation could not even be sent. */
void rec_invoke_failed(rec_t *rec, int rc);
/* Sends the record to its function alone. */
void rec_invoke_one(rec_t *rec);
/* Begins processing a record (never finishes it synchronously). */
void rec_start(rec_t *rec);

/* ---- trigger_batch.c ----------------------------------------------------- */

/* Sends the record to its function: in the trigger's batch while the
 * function takes batches, else alone. */
void rec_invoke(rec_t *rec);
/* Sends every trigger's batch (the connection loop's before_flush hook;
 * arg is the broker). */
void batches_flush(void *arg);

/* ---- trigger_output.c ---------------------------------------------------- */

/* Produces the record's dead letter (PH_DLQ) or reply (PH_REPLY); the
 * record is finished once it is acknowledged. */
void rec_output(rec_t *rec, int kind);

#endif
