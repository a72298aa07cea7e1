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

/* Length of an environment key at the start of `s`, ending at NUL or '=',
 * or 0 when it is not a valid key. */
static size_t key_len(const char *s) {
  size_t i = 0;
  if (!isalpha((unsigned char)s[0]) && s[0] != '_') return 0;
  while (isalnum((unsigned char)s[i]) || s[i] == '_') i++;
  return (s[i] == '\0' || s[i] == '=') && i <= IMP_ENV_KEY_MAX ? i : 0;
}

int imp_secret_name_valid(const char *name) {
  size_t n = name ? key_len(name) : 0;
  return n > 0 && name[n] == '\0';
}

const char *imp_secret_ref_split(const char *ref, size_t *namelen) {
  const char *eq = strchr(ref, '=');
  *namelen = eq ? (size_t)(eq - ref) : strlen(ref);
  return eq ? eq + 1 : ref;
}

/* Length of the variable a reference exposes, up to NUL or '='. */
static size_t var_len(const char *var) {
  const char *eq = strchr(var, '=');
  return eq ? (size_t)(eq - var) : strlen(var);
}

int imp_secret_refs_valid(char *const *refs, size_t n, char *const *env,
                          size_t nenv, char *err, size_t errlen) {
  if (n > IMP_SECRET_MAX_REFS) {
    snprintf(err, errlen, "%zu secrets, above %u", n, IMP_SECRET_MAX_REFS);
    return -EINVAL;
  }
  for (size_t i = 0; i < n; i++) {
    size_t nl = 0;
    const char *var = refs[i] ? imp_secret_ref_split(refs[i], &nl) : NULL;
    if (var == NULL || nl == 0 || key_len(refs[i]) != nl || key_len(var) == 0 ||
        var[key_len(var)] != '\0') {
      snprintf(err, errlen,
               "secret '%.64s' is not NAME or NAME=VARIABLE with names of "
               "1-%d letters, digits or '_' (not starting with a digit)",
               refs[i] ? refs[i] : "", IMP_ENV_KEY_MAX);
      return -EINVAL;
    }
    size_t vl = var_len(var);
    for (size_t j = 0; j < i; j++) {
      size_t nj;
      const char *vj = imp_secret_ref_split(refs[j], &nj);
      if (var_len(vj) == vl && strncmp(vj, var, vl) == 0) {
        snprintf(err, errlen, "variable %.*s is given by two secrets", (int)vl,
                 var);
        return -EINVAL;
      }
    }
    for (size_t j = 0; j < nenv; j++)
      if (env[j] && strncmp(env[j], var, vl) == 0 && env[j][vl] == '=') {
        snprintf(err, errlen,
                 "variable %.*s is both in the environment (--env) and a "
                 "secret's (--secret %.*s): use another variable, "
                 "--secret NAME=VARIABLE",
                 (int)vl, var, (int)nl, refs[i]);
        return -EINVAL;
      }
  }
  return 0;
}
