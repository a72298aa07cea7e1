/*
 * A record's one record of output: its dead letter or its reply.
 */
#ifndef IMP_TRIGGER_OUTPUT_H
#define IMP_TRIGGER_OUTPUT_H

#include "eventing/trigger_types.h"

/* Produces the record's dead letter (PH_DLQ) or reply (PH_REPLY); the
 * record is finished (the broker's finish hook) once it is acknowledged.
 * The broker's output hook. */
void rec_output(rec_t *rec, int kind);

#endif
