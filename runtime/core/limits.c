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

/* Length of the key of "KEY=VALUE", or 0 when it is not a valid key. */
static size_t env_key_len(const char *kv) {
  size_t i = 0;
  if (!isalpha((unsigned char)kv[0]) && kv[0] != '_') return 0;
  while (isalnum((unsigned char)kv[i]) || kv[i] == '_') i++;
  return kv[i] == '=' && i <= IMP_ENV_KEY_MAX ? i : 0;
}

int imp_env_valid(char *const *env, size_t n, char *err, size_t errlen) {
  if (n > IMP_ENV_MAX_VARS) {
    snprintf(err, errlen, "%zu environment variables, above %u", n,
             IMP_ENV_MAX_VARS);
    return -EINVAL;
  }
  size_t total = 0;
  for (size_t i = 0; i < n; i++) {
    size_t klen = env[i] ? env_key_len(env[i]) : 0;
    if (klen == 0) {
      snprintf(err, errlen,
               "environment entry '%.64s' is not KEY=VALUE with a KEY of 1-%d "
               "letters, digits or '_' (not starting with a digit)",
               env[i] ? env[i] : "", IMP_ENV_KEY_MAX);
      return -EINVAL;
    }
    for (size_t j = 0; j < i; j++)
      if (strncmp(env[j], env[i], klen + 1) == 0) {
        snprintf(err, errlen, "environment variable %.*s is given twice",
                 (int)klen, env[i]);
        return -EINVAL;
      }
    total += strlen(env[i]) + 1;
  }
  if (total > IMP_ENV_MAX_BYTES) {
    snprintf(err, errlen, "the environment is %zu bytes, above %u", total,
             IMP_ENV_MAX_BYTES);
    return -EINVAL;
  }
  return 0;
}
