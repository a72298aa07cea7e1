/*
 * Record batches: records started in one loop turn sent to their function
 * in one call while its handler is fast. Each record of a batch goes on
 * alone through trigger_record.h (its result, retry, output).
 */
#ifndef IMP_TRIGGER_BATCH_H
#define IMP_TRIGGER_BATCH_H

#include "eventing/trigger_types.h"

/* Sends the record to its function: in the trigger's batch while the
 * function takes batches, else alone. The broker's invoke hook. */
void rec_invoke(rec_t *rec);
/* Sends every trigger's batch (the connection loop's before_flush hook;
 * arg is the broker). */
void batches_flush(void *arg);

#endif
