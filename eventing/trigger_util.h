/*
 * What every piece of the trigger broker uses: the references records
 * hold on their trigger and triggers on the broker, the failure a trigger
 * shows in its state, and the text of a header or a number.
 */
#ifndef IMP_TRIGGER_UTIL_H
#define IMP_TRIGGER_UTIL_H

#include <stddef.h>
#include <stdint.h>

#include "eventing/trigger_types.h"
#include "impulse.pb-c.h"

/* Drops a reference on the broker; the last one frees it (with its pooled
 * record blocks). Aborts on underflow. */
void triggers_unref(triggers_t *triggers);
/* Drops a reference on a trigger; the last one frees it and drops its
 * reference on the broker. Aborts on underflow. */
void trigger_unref(trigger_t *trigger);

/* Shows a retried failure in the trigger's state for a while. */
void trigger_set_reason(trigger_t *trigger, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Shows a Kafka error in the trigger's state and logs it (the same one at
 * most every REASON_SHOW_MS). */
void trigger_set_kafka_error(trigger_t *trigger, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Sets a header to `name` and `value` (len bytes; NULL for a null value),
 * both borrowed. */
static inline void hset(Impulse__Header *h, const char *name, const void *value,
                        size_t len) {
  impulse__header__init(h);
  h->name = (char *)name;
  h->has_value = value != NULL;
  h->value.data = (uint8_t *)value;
  h->value.len = value ? len : 0;
}

/* Writes v in decimal at p (room for 20 characters); returns the length. */
static inline size_t fmt_i64(char *p, int64_t v) {
  char t[20];
  size_t n = 0;
  uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
  do {
    t[n++] = (char)('0' + u % 10);
    u /= 10;
  } while (u);
  size_t len = 0;
  if (v < 0) p[len++] = '-';
  while (n) p[len++] = t[--n];
  return len;
}

#endif
