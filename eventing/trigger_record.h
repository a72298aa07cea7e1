/*
 * One record of a trigger: its memory, its stored attempt count, its
 * invocation, retries with backoff. Its batch, output and finish are
 * above it, reached through the broker's hooks (trigger_types.h).
 */
#ifndef IMP_TRIGGER_RECORD_H
#define IMP_TRIGGER_RECORD_H

#include <stddef.h>
#include <stdint.h>

#include "eventing/kafka.h"
#include "eventing/trigger_types.h"
#include "impulse.pb-c.h"

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

#endif
