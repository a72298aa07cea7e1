/*
 * A TriggerSpec from `trigger create`: checked (names, topics, settings
 * within core/limits.h) and completed with the defaults, so that what is
 * stored and shown is what runs.
 */
#include "eventing/trigger_spec.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/limits.h"

static int topic_ok(const char *what, const char *topic, char *err,
                    size_t errlen) {
  char why[256];
  if (imp_topic_valid(topic, why, sizeof why) == 0) return 1;
  snprintf(err, errlen, "invalid %s '%s': %s", what, topic, why);
  return 0;
}

/* Checks a spec and fills in the defaults. Strings set point into `group`
 * (80 bytes) and `dlq` (260 bytes) or are borrowed from the request. 0, or
 * -1 with the reason in err. */
int trigger_spec_check(Impulse__TriggerSpec *s, char *group, char *dlq,
                       char *err, size_t errlen) {
  if (s->name == NULL || !imp_name_valid(s->name)) {
    snprintf(err, errlen,
             "invalid trigger name '%s' (1-64 characters of "
             "A-Z a-z 0-9 . _ -, starting with a letter or digit)",
             s->name ? s->name : "");
    return -1;
  }
  if (s->topic == NULL || !topic_ok("topic", s->topic, err, errlen)) return -1;
  if (s->function == NULL || !imp_name_valid(s->function)) {
    snprintf(err, errlen, "invalid function name '%s'",
             s->function ? s->function : "");
    return -1;
  }
  if (s->group == NULL || s->group[0] == '\0') {
    snprintf(group, 80, "impulse-%s", s->name);
    s->group = group;
  } else {
    size_t n = strlen(s->group);
    for (size_t i = 0; i < n; i++)
      if (!isgraph((unsigned char)s->group[i])) n = 0;
    if (n == 0 || n > IMP_GROUP_MAX) {
      snprintf(err, errlen, "invalid group '%s' (1-255 printable characters)",
               s->group);
      return -1;
    }
  }
  if (s->from == NULL || s->from[0] == '\0') s->from = DEF_FROM;
  if (strcmp(s->from, "earliest") != 0 && strcmp(s->from, "latest") != 0) {
    snprintf(err, errlen, "--from is 'earliest' or 'latest', not '%s'",
             s->from);
    return -1;
  }
  if (s->ordering == NULL || s->ordering[0] == '\0') s->ordering = DEF_ORDERING;
  if (strcmp(s->ordering, "partition") != 0 &&
      strcmp(s->ordering, "key") != 0 && strcmp(s->ordering, "none") != 0) {
    snprintf(err, errlen,
             "--ordering is 'partition', 'key' or 'none', not '%s'",
             s->ordering);
    return -1;
  }
  if (!s->has_max_in_flight || s->max_in_flight == 0) {
    s->has_max_in_flight = 1;
    s->max_in_flight = DEF_MAX_IN_FLIGHT;
  }
  if (s->max_in_flight > IMP_TRIGGER_MAX_IN_FLIGHT) {
    snprintf(err, errlen, "--max-in-flight must be 1 to %u, not %u",
             IMP_TRIGGER_MAX_IN_FLIGHT, s->max_in_flight);
    return -1;
  }
  if (!s->has_max_retries) {
    s->has_max_retries = 1;
    s->max_retries = DEF_MAX_RETRIES;
  }
  if (s->max_retries > IMP_TRIGGER_MAX_RETRIES) {
    snprintf(err, errlen, "--max-retries must be 0 to %u, not %u",
             IMP_TRIGGER_MAX_RETRIES, s->max_retries);
    return -1;
  }
  if (!s->has_backoff_initial_ms || s->backoff_initial_ms == 0) {
    s->has_backoff_initial_ms = 1;
    s->backoff_initial_ms = DEF_BACKOFF_INITIAL;
  }
  if (!s->has_backoff_max_ms || s->backoff_max_ms == 0) {
    s->has_backoff_max_ms = 1;
    s->backoff_max_ms = s->backoff_initial_ms > DEF_BACKOFF_MAX
                            ? s->backoff_initial_ms
                            : DEF_BACKOFF_MAX;
  }
  if (s->backoff_initial_ms > IMP_TRIGGER_BACKOFF_MAX_MS ||
      s->backoff_max_ms > IMP_TRIGGER_BACKOFF_MAX_MS ||
      s->backoff_max_ms < s->backoff_initial_ms) {
    snprintf(err, errlen,
             "--backoff INITIAL_MS:MAX_MS needs INITIAL <= MAX <= "
             "3600000, not %u:%u",
             s->backoff_initial_ms, s->backoff_max_ms);
    return -1;
  }
  if (s->dlq == NULL || s->dlq[0] == '\0') {
    if (strlen(s->topic) + 4 > IMP_TOPIC_MAX) {
      snprintf(err, errlen,
               "topic name too long for the default dead-letter "
               "topic '<topic>.dlq': give --dlq");
      return -1;
    }
    snprintf(dlq, 260, "%s.dlq", s->topic);
    s->dlq = dlq;
  }
  if (!topic_ok("dead-letter topic", s->dlq, err, errlen)) return -1;
  if (strcmp(s->dlq, s->topic) == 0) {
    snprintf(err, errlen,
             "the dead-letter topic cannot be the trigger's topic");
    return -1;
  }
  if (s->reply_topic != NULL && s->reply_topic[0] == '\0')
    s->reply_topic = NULL;
  if (s->reply_topic != NULL) {
    if (!topic_ok("reply topic", s->reply_topic, err, errlen)) return -1;
    if (strcmp(s->reply_topic, s->topic) == 0) {
      snprintf(err, errlen,
               "the reply topic cannot be the trigger's topic "
               "(every reply would trigger again)");
      return -1;
    }
  }
  return 0;
}

Impulse__TriggerSpec *trigger_spec_clone(const Impulse__TriggerSpec *s) {
  size_t n = impulse__trigger_spec__get_packed_size(s);
  uint8_t *buf = malloc(n ? n : 1);
  if (buf == NULL) abort();
  impulse__trigger_spec__pack(s, buf);
  Impulse__TriggerSpec *c = impulse__trigger_spec__unpack(NULL, n, buf);
  free(buf);
  if (c == NULL) abort();
  return c;
}
