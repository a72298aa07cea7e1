/*
 * References on triggers and on the broker, and what a trigger shows of
 * its failures (trigger_util.h).
 */
#include "eventing/trigger_util.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void triggers_unref(triggers_t *triggers) {
  if (triggers->refs <= 0) abort(); /* refcount underflow is a bug */
  if (--triggers->refs > 0) return;
  imp_batch_free(triggers->batch);
  free(triggers->scratch);
  while (triggers->rec_free != NULL) {
    void *next;
    memcpy(&next, triggers->rec_free, sizeof next);
    free(triggers->rec_free);
    triggers->rec_free = next;
  }
  free(triggers);
}

void trigger_unref(trigger_t *trigger) {
  if (trigger->refs <= 0) abort(); /* refcount underflow is a bug */
  if (--trigger->refs > 0) return;
  triggers_t *triggers = trigger->triggers;
  impulse__trigger_spec__free_unpacked(trigger->spec, NULL);
  free(trigger->bq);
  free(trigger->parts);
  free(trigger->done);
  free(trigger);
  triggers_unref(triggers);
}

void trigger_set_reason(trigger_t *trigger, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(trigger->reason, sizeof trigger->reason, fmt, ap);
  va_end(ap);
  trigger->reason_ms = imp_now_ms();
}

void trigger_set_kafka_error(trigger_t *trigger, const char *fmt, ...) {
  char msg[sizeof trigger->kerr];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  uint64_t now = imp_now_ms();
  /* The same error again is logged at most every 10 s. */
  if (strcmp(msg, trigger->kerr) != 0 ||
      now - trigger->kerr_ms > REASON_SHOW_MS)
    IMP_LOG(IMP_LOG_WARN, "trigger %s: %s", trigger->spec->name, msg);
  memcpy(trigger->kerr, msg, sizeof msg);
  trigger->kerr_ms = now;
}
