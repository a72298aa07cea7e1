/*
 * A TriggerSpec from `trigger create`, checked and completed with the
 * defaults below, so that what is stored and shown is what runs.
 */
#ifndef IMP_TRIGGER_SPEC_H
#define IMP_TRIGGER_SPEC_H

#include <stddef.h>

#include "impulse.pb-c.h"

/* A spec's defaults (trigger_spec_check() fills them in). */
#define DEF_FROM "earliest"
#define DEF_ORDERING "partition"
#define DEF_MAX_IN_FLIGHT 64u
#define DEF_MAX_RETRIES 3u
#define DEF_BACKOFF_INITIAL 100u
#define DEF_BACKOFF_MAX 10000u

/* Checks a spec and fills in the defaults. Strings set point into `group`
 * (80 bytes) and `dlq` (260 bytes) or are borrowed from the request. 0, or
 * -1 with the reason in err. */
int trigger_spec_check(Impulse__TriggerSpec *s, char *group, char *dlq,
                       char *err, size_t errlen);
/* A deep copy, freed with impulse__trigger_spec__free_unpacked(). */
Impulse__TriggerSpec *trigger_spec_clone(const Impulse__TriggerSpec *s);

#endif
