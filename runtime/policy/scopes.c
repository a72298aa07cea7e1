#include "policy/scopes.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "impulse.pb-c.h"

static const char *const kind_names[] = {
    [IMP_SCOPE_NONE] = "none",       [IMP_SCOPE_ADMIN] = "admin",
    [IMP_SCOPE_DEPLOY] = "deploy",   [IMP_SCOPE_INVOKE] = "invoke",
    [IMP_SCOPE_PUBLISH] = "publish", [IMP_SCOPE_READ] = "read"};

/* The one table. Backup and the token RPCs need admin: a backup carries
 * the admin token, and a token that makes tokens is an admin token. */
static const imp_access_t table[] = {
    {IMPULSE__ENVELOPE__BODY_DEPLOY, "deploy", NULL, IMP_SCOPE_DEPLOY, 0},
    {IMPULSE__ENVELOPE__BODY_DELETE, "delete", NULL, IMP_SCOPE_DEPLOY, 0},
    {IMPULSE__ENVELOPE__BODY_SCALE, "scale", NULL, IMP_SCOPE_DEPLOY, 0},
    {IMPULSE__ENVELOPE__BODY_TRAFFIC, "traffic", NULL, IMP_SCOPE_DEPLOY, 0},
    {IMPULSE__ENVELOPE__BODY_UPGRADE, "upgrade", NULL, IMP_SCOPE_DEPLOY, 0},
    {IMPULSE__ENVELOPE__BODY_TRIGGER_CREATE, "trigger create", NULL,
     IMP_SCOPE_DEPLOY, 0},
    {IMPULSE__ENVELOPE__BODY_TRIGGER_DELETE, "trigger delete", NULL,
     IMP_SCOPE_DEPLOY, 0},
    {IMPULSE__ENVELOPE__BODY_INVOKE, "invoke", "POST /function/NAME",
     IMP_SCOPE_INVOKE, 1},
    {IMPULSE__ENVELOPE__BODY_PUBLISH, "publish", "POST /topics/TOPIC",
     IMP_SCOPE_PUBLISH, 1},
    {IMPULSE__ENVELOPE__BODY_ENSURE_TOPIC, "ensure topic", NULL,
     IMP_SCOPE_PUBLISH, 1},
    {IMPULSE__ENVELOPE__BODY_LIST, "ls", NULL, IMP_SCOPE_READ, 1},
    {IMPULSE__ENVELOPE__BODY_DESCRIBE, "describe", NULL, IMP_SCOPE_READ, 1},
    {IMPULSE__ENVELOPE__BODY_TRIGGER_LIST, "trigger ls", NULL, IMP_SCOPE_READ,
     1},
    {IMPULSE__ENVELOPE__BODY_TRIGGER_DESCRIBE, "trigger describe", NULL,
     IMP_SCOPE_READ, 1},
    /* These show payloads: never open. */
    {IMPULSE__ENVELOPE__BODY_RECORD_LIST, "record ls", NULL, IMP_SCOPE_READ, 0},
    {IMP_OP_HTTP_STATE, "GET /api/state", "GET /api/state", IMP_SCOPE_READ, 0},
    {IMPULSE__ENVELOPE__BODY_BACKUP, "backup", NULL, IMP_SCOPE_ADMIN, 0},
    {IMPULSE__ENVELOPE__BODY_TOKEN_CREATE, "token create", NULL,
     IMP_SCOPE_ADMIN, 0},
    {IMPULSE__ENVELOPE__BODY_TOKEN_LIST, "token ls", NULL, IMP_SCOPE_ADMIN, 0},
    {IMPULSE__ENVELOPE__BODY_TOKEN_REVOKE, "token revoke", NULL,
     IMP_SCOPE_ADMIN, 0},
    {IMPULSE__ENVELOPE__BODY_SECRET_SET, "secret set", NULL, IMP_SCOPE_ADMIN,
     0},
    {IMPULSE__ENVELOPE__BODY_SECRET_LIST, "secret ls", NULL, IMP_SCOPE_ADMIN,
     0},
    {IMPULSE__ENVELOPE__BODY_SECRET_DELETE, "secret rm", NULL, IMP_SCOPE_ADMIN,
     0},
    {IMPULSE__ENVELOPE__BODY_SERVER_INFO, "info", NULL, IMP_SCOPE_NONE, 1},
    /* The server's requests to its workers: no client may send them, and
     * the front door answers BAD_REQUEST to anyone who does. */
    {IMPULSE__ENVELOPE__BODY_LOAD, "load", NULL, IMP_SCOPE_NONE, 1},
    {IMPULSE__ENVELOPE__BODY_ATTACH, "attach", NULL, IMP_SCOPE_NONE, 1},
    {IMPULSE__ENVELOPE__BODY_INVOKE_BATCH, "invoke batch", NULL, IMP_SCOPE_NONE,
     1},
    {IMPULSE__ENVELOPE__BODY_LOGS, "logs", "GET /api/functions/NAME/logs",
     IMP_SCOPE_READ, 0},
};

const imp_access_t *imp_access_table(size_t *n) {
  *n = sizeof table / sizeof table[0];
  return table;
}

const imp_access_t *imp_access_find(int op) {
  for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
    if (table[i].op == op) return &table[i];
  return NULL;
}

int imp_scope_parse(const char *s, imp_scope_t *out, char *err, size_t errlen) {
  memset(out, 0, sizeof *out);
  const char *colon = strchr(s, ':');
  size_t klen = colon ? (size_t)(colon - s) : strlen(s);
  for (int k = IMP_SCOPE_ADMIN; k <= IMP_SCOPE_READ; k++) {
    if (strlen(kind_names[k]) != klen || strncmp(s, kind_names[k], klen) != 0)
      continue;
    out->kind = (imp_scope_kind_t)k;
    if (colon == NULL) return 0;
    const char *t = colon + 1;
    if (k == IMP_SCOPE_INVOKE) {
      if (!imp_name_valid(t)) break;
    } else if (k == IMP_SCOPE_PUBLISH) {
      if (imp_topic_valid(t, NULL, 0) != 0) break;
    } else {
      snprintf(err, errlen,
               "scope '%.300s': only invoke and publish take a ':NAME'", s);
      return -EINVAL;
    }
    memcpy(out->target, t, strlen(t) + 1);
    return 0;
  }
  if (out->kind == IMP_SCOPE_INVOKE || out->kind == IMP_SCOPE_PUBLISH)
    snprintf(err, errlen, "scope '%.300s': not a valid %s name", s,
             out->kind == IMP_SCOPE_INVOKE ? "function" : "topic");
  else
    snprintf(err, errlen,
             "unknown scope '%.300s' (admin, deploy, invoke, invoke:FUNCTION, "
             "publish, publish:TOPIC or read)",
             s);
  return -EINVAL;
}

const char *imp_scope_format(const imp_scope_t *scope, char *buf, size_t len) {
  const char *k = scope->kind <= IMP_SCOPE_READ ? kind_names[scope->kind] : "?";
  if (scope->target[0])
    snprintf(buf, len, "%s:%s", k, scope->target);
  else
    snprintf(buf, len, "%s", k);
  return buf;
}

static int scope_covers(const imp_scope_t *s, imp_scope_kind_t need,
                        const char *target) {
  if (s->kind == IMP_SCOPE_ADMIN) return 1;
  if (s->kind != need) return 0;
  if (s->target[0] == '\0') return 1;
  return target != NULL && strcmp(s->target, target) == 0;
}

int imp_access_decide(int op, const char *target, int admin,
                      const imp_grant_t *grant, int open_mode, char *msg,
                      size_t len) {
  /* A call the table does not name needs the admin token: a new kind of
   * request is closed until it is placed in the table. */
  static const imp_access_t unlisted = {0, "this call", NULL, IMP_SCOPE_ADMIN,
                                        0};
  const imp_access_t *a = imp_access_find(op);
  if (a == NULL) a = &unlisted;
  if (a->need == IMP_SCOPE_NONE || admin) return 0;
  if (grant != NULL)
    for (unsigned i = 0; i < grant->n; i++)
      if (scope_covers(&grant->scopes[i], a->need, target)) return 0;
  if (open_mode && a->open) return 0;
  const char *kind = kind_names[a->need];
  char need[IMP_TOPIC_MAX + 40];
  if ((a->need == IMP_SCOPE_INVOKE || a->need == IMP_SCOPE_PUBLISH) && target)
    snprintf(need, sizeof need, "'%s' or '%s:%s'", kind, kind, target);
  else
    snprintf(need, sizeof need, "'%s'", kind);
  if (grant == NULL) {
    snprintf(msg, len,
             "%s needs a token with scope %s or the admin token (none was "
             "given)",
             a->name, need);
    return IMPULSE__ERROR_CODE__UNAUTHENTICATED;
  }
  snprintf(msg, len, "%s needs scope %s; this token does not have it", a->name,
           need);
  return IMPULSE__ERROR_CODE__PERMISSION_DENIED;
}
