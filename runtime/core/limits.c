#include "core/limits.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

int imp_name_valid(const char *s) {
  size_t n = s ? strlen(s) : 0;
  if (n == 0 || n > IMP_NAME_MAX || !isalnum((unsigned char)s[0])) return 0;
  for (size_t i = 0; i < n; i++)
    if (!isalnum((unsigned char)s[i]) && s[i] != '-' && s[i] != '_' &&
        s[i] != '.')
      return 0;
  return 1;
}

int imp_topic_valid(const char *topic, char *err, size_t errlen) {
  size_t len = topic ? strlen(topic) : 0;
  if (len == 0) {
    snprintf(err, errlen, "topic name is empty");
    return -EINVAL;
  }
  if (len > IMP_TOPIC_MAX) {
    snprintf(err, errlen, "topic name is %zu characters long, above %d", len,
             IMP_TOPIC_MAX);
    return -EINVAL;
  }
  if (strcmp(topic, ".") == 0 || strcmp(topic, "..") == 0) {
    snprintf(err, errlen, "topic name cannot be '%s'", topic);
    return -EINVAL;
  }
  for (size_t i = 0; i < len; i++) {
    unsigned char c = (unsigned char)topic[i];
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
        (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-')
      continue;
    snprintf(err, errlen,
             "topic name '%.64s%s' has a character other than a-z, A-Z, 0-9, "
             "'.', '_' and '-' at position %zu",
             topic, len > 64 ? "..." : "", i + 1);
    return -EINVAL;
  }
  return 0;
}
