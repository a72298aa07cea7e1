/*
 * Secrets (secrets.h). A secret is a SecretRecord under its name in the
 * secrets column family; a function names secrets in its config
 * (FunctionConfig.secrets), never values. The values leave the store only
 * in the LoadRequest that starts an instance of a function naming them.
 */
#include "server/control/secrets.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/common.h"
#include "core/limits.h"

/* 1 when fn's config names secret `name`. */
static int fn_uses(const imp_function_t *fn, const char *name) {
  const Impulse__FunctionConfig *cfg = fn->rec ? fn->rec->config : NULL;
  size_t want = strlen(name);
  for (size_t i = 0; cfg && i < cfg->n_secrets; i++) {
    size_t nl;
    imp_secret_ref_split(cfg->secrets[i], &nl);
    if (nl == want && strncmp(cfg->secrets[i], name, nl) == 0) return 1;
  }
  return 0;
}

/* The stored record of secret `name` (free it), or NULL: *rc gets
 * -ENOENT, IMP_ESTORE or -EBADMSG. */
static Impulse__SecretRecord *secret_get(imp_control_t *ctl, const char *name,
                                         size_t nlen, int *rc) {
  char *v;
  size_t vl;
  *rc = imp_store_get(ctl->store, IMP_CF_SECRETS, name, nlen, &v, &vl);
  if (*rc != 0) return NULL;
  Impulse__SecretRecord *rec =
      impulse__secret_record__unpack(NULL, vl, (const uint8_t *)v);
  free(v);
  if (rec == NULL) *rc = -EBADMSG;
  return rec;
}

void imp_control_secret_set(imp_control_t *ctl, imp_rpc_t *rpc,
                            Impulse__Envelope *env) {
  const Impulse__SecretSetRequest *req = env->secret_set;
  if (!imp_secret_name_valid(req->name)) {
    imp_rpc_error(rpc, IMPULSE__ERROR_CODE__BAD_REQUEST,
                  "invalid secret name '%.64s': use 1-%d letters, digits or "
                  "'_', not starting with a digit",
                  req->name, IMP_ENV_KEY_MAX);
    goto out;
  }
  if (req->value.len > IMP_SECRET_MAX_BYTES) {
    imp_rpc_error(rpc, IMPULSE__ERROR_CODE__TOO_LARGE,
                  "secret %s: the value is %zu bytes, above %u", req->name,
                  req->value.len, IMP_SECRET_MAX_BYTES);
    goto out;
  }
  if (req->value.len && memchr(req->value.data, '\0', req->value.len)) {
    imp_rpc_error(rpc, IMPULSE__ERROR_CODE__BAD_REQUEST,
                  "secret %s: the value has a NUL byte, which an environment "
                  "variable cannot hold",
                  req->name);
    goto out;
  }
  size_t nlen = strlen(req->name);
  int rc;
  Impulse__SecretRecord *old = secret_get(ctl, req->name, nlen, &rc);
  if (old == NULL && rc != -ENOENT && rc != -EBADMSG) {
    imp_rpc_error(rpc, IMPULSE__ERROR_CODE__INTERNAL,
                  "cannot read secret %s: %s", req->name, imp_strerror(rc));
    goto out;
  }
  uint64_t now = imp_wall_ms();
  Impulse__SecretRecord rec = IMPULSE__SECRET_RECORD__INIT;
  rec.value = req->value;
  rec.has_created_ms = rec.has_updated_ms = 1;
  rec.created_ms = old && old->has_created_ms ? old->created_ms : now;
  rec.updated_ms = now;
  if (old) impulse__secret_record__free_unpacked(old, NULL);
  imp_batch_t *b = imp_batch_new();
  imp_batch_put_msg(b, ctl->store, IMP_CF_SECRETS, req->name, nlen, &rec.base);
  char err[256];
  rc = imp_store_write(ctl->store, b, 1, err, sizeof err);
  imp_batch_free(b);
  if (rc != 0) {
    imp_rpc_error(rpc, IMPULSE__ERROR_CODE__INTERNAL,
                  "could not store secret %s: %s", req->name, err);
    goto out;
  }
  /* The name and the size only: a value is never logged. */
  IMP_LOG(IMP_LOG_INFO, "secret %s %s (%zu bytes)", req->name,
          old ? "replaced" : "set", req->value.len);
  Impulse__SecretSetResponse ok = IMPULSE__SECRET_SET_RESPONSE__INIT;
  ok.has_created = ok.has_size = 1;
  ok.created = old == NULL;
  ok.size = req->value.len;
  imp_rpc_answer(rpc, IMPULSE__ENVELOPE__BODY_SECRET_SET_OK, &ok);
out:
  impulse__envelope__free_unpacked(env, NULL);
}

typedef struct list_ctx_s {
  imp_control_t *ctl;
  Impulse__SecretInfo *infos;
  size_t n, cap;
} list_ctx_t;

static int list_one(void *arg, const char *k, size_t kl, const char *v,
                    size_t vl) {
  list_ctx_t *lc = arg;
  if (lc->n == lc->cap) {
    size_t cap = lc->cap ? lc->cap * 2 : 16;
    Impulse__SecretInfo *p = realloc(lc->infos, cap * sizeof *p);
    if (p == NULL) return -ENOMEM;
    lc->infos = p;
    lc->cap = cap;
  }
  Impulse__SecretRecord *rec =
      impulse__secret_record__unpack(NULL, vl, (const uint8_t *)v);
  Impulse__SecretInfo *si = &lc->infos[lc->n];
  impulse__secret_info__init(si);
  si->name = strndup(k, kl);
  if (si->name == NULL) {
    if (rec) impulse__secret_record__free_unpacked(rec, NULL);
    return -ENOMEM;
  }
  lc->n++;
  if (rec) {
    si->has_size = si->has_created_ms = si->has_updated_ms = 1;
    si->size = rec->value.len;
    si->created_ms = rec->created_ms;
    si->updated_ms = rec->updated_ms;
    impulse__secret_record__free_unpacked(rec, NULL);
  }
  imp_function_t *fn;
  size_t users = 0;
  IMP_REGISTRY_EACH(fn, &lc->ctl->invoke.registry) {
    if (!fn->deleted && fn_uses(fn, si->name)) users++;
  }
  if (users == 0) return 0;
  si->used_by = calloc(users, sizeof *si->used_by);
  if (si->used_by == NULL) return -ENOMEM;
  IMP_REGISTRY_EACH(fn, &lc->ctl->invoke.registry) {
    if (!fn->deleted && fn_uses(fn, si->name))
      si->used_by[si->n_used_by++] = fn->name; /* borrowed for the answer */
  }
  return 0;
}

void imp_control_secret_list(imp_control_t *ctl, imp_rpc_t *rpc,
                             Impulse__Envelope *env) {
  list_ctx_t lc = {ctl, NULL, 0, 0};
  Impulse__SecretInfo **ptrs = NULL;
  int rc = imp_store_scan(ctl->store, IMP_CF_SECRETS, NULL, 0, list_one, &lc);
  if (rc == 0 && (ptrs = calloc(lc.n + 1, sizeof *ptrs)) == NULL) rc = -ENOMEM;
  if (rc != 0) {
    imp_rpc_error(rpc, IMPULSE__ERROR_CODE__INTERNAL,
                  "cannot list the secrets: %s", imp_strerror(rc));
    goto out;
  }
  for (size_t i = 0; i < lc.n; i++) ptrs[i] = &lc.infos[i];
  Impulse__SecretListResponse ok = IMPULSE__SECRET_LIST_RESPONSE__INIT;
  ok.n_secrets = lc.n;
  ok.secrets = ptrs;
  imp_rpc_answer(rpc, IMPULSE__ENVELOPE__BODY_SECRET_LIST_OK, &ok);
out:
  for (size_t i = 0; i < lc.n; i++) {
    free(lc.infos[i].name);
    free(lc.infos[i].used_by);
  }
  free(lc.infos);
  free(ptrs);
  impulse__envelope__free_unpacked(env, NULL);
}

void imp_control_secret_delete(imp_control_t *ctl, imp_rpc_t *rpc,
                               Impulse__Envelope *env) {
  const char *name = env->secret_delete->name;
  size_t nlen = strlen(name);
  char *v;
  size_t vl;
  int rc = imp_store_get(ctl->store, IMP_CF_SECRETS, name, nlen, &v, &vl);
  if (rc == -ENOENT) {
    imp_rpc_error(rpc, IMPULSE__ERROR_CODE__NOT_FOUND, "unknown secret '%.64s'",
                  name);
    goto out;
  }
  if (rc != 0) {
    imp_rpc_error(rpc, IMPULSE__ERROR_CODE__INTERNAL,
                  "cannot read secret %s: %s", name, imp_strerror(rc));
    goto out;
  }
  free(v);
  /* Refused while a function names it: its next instance would start
   * without the variable. */
  char users[512];
  size_t used = 0, nusers = 0;
  users[0] = '\0';
  imp_function_t *fn;
  IMP_REGISTRY_EACH(fn, &ctl->invoke.registry) {
    if (fn->deleted || !fn_uses(fn, name)) continue;
    if (used < sizeof users) {
      int k = snprintf(users + used, sizeof users - used, "%s%s",
                       nusers ? ", " : "", fn->name);
      if (k > 0) used += (size_t)k;
    }
    nusers++;
  }
  if (nusers > 0) {
    imp_rpc_error(rpc, IMPULSE__ERROR_CODE__BAD_REQUEST,
                  "secret %s is used by %zu function%s (%s): redeploy %s "
                  "without --secret %s, or delete %s, first",
                  name, nusers, nusers == 1 ? "" : "s", users,
                  nusers == 1 ? "it" : "them", name,
                  nusers == 1 ? "it" : "them");
    goto out;
  }
  imp_batch_t *b = imp_batch_new();
  imp_batch_delete(b, ctl->store, IMP_CF_SECRETS, name, nlen);
  char err[256];
  rc = imp_store_write(ctl->store, b, 1, err, sizeof err);
  imp_batch_free(b);
  if (rc != 0) {
    imp_rpc_error(rpc, IMPULSE__ERROR_CODE__INTERNAL,
                  "could not store the removal of secret %s: %s", name, err);
    goto out;
  }
  IMP_LOG(IMP_LOG_INFO, "secret %s removed", name);
  Impulse__SecretDeleteResponse ok = IMPULSE__SECRET_DELETE_RESPONSE__INIT;
  imp_rpc_answer(rpc, IMPULSE__ENVELOPE__BODY_SECRET_DELETE_OK, &ok);
out:
  impulse__envelope__free_unpacked(env, NULL);
}

int imp_ctl_secrets_check(imp_control_t *ctl,
                          const Impulse__FunctionConfig *cfg, char *err,
                          size_t errlen) {
  if (cfg == NULL || cfg->n_secrets == 0) return 0;
  if (imp_secret_refs_valid(cfg->secrets, cfg->n_secrets, cfg->env, cfg->n_env,
                            err, errlen) != 0)
    return IMPULSE__ERROR_CODE__BAD_REQUEST;
  for (size_t i = 0; i < cfg->n_secrets; i++) {
    size_t nl;
    imp_secret_ref_split(cfg->secrets[i], &nl);
    char *v;
    size_t vl;
    int rc =
        imp_store_get(ctl->store, IMP_CF_SECRETS, cfg->secrets[i], nl, &v, &vl);
    if (rc == 0) {
      free(v);
      continue;
    }
    if (rc == -ENOENT) {
      snprintf(err, errlen,
               "unknown secret '%.*s' (set it first: impulse secret set %.*s)",
               (int)nl, cfg->secrets[i], (int)nl, cfg->secrets[i]);
      return IMPULSE__ERROR_CODE__NOT_FOUND;
    }
    snprintf(err, errlen, "cannot read secret %.*s: %s", (int)nl,
             cfg->secrets[i], imp_strerror(rc));
    return IMPULSE__ERROR_CODE__INTERNAL;
  }
  return 0;
}

int imp_ctl_secrets_env(imp_control_t *ctl, const Impulse__FunctionConfig *cfg,
                        char ***out, size_t *n) {
  size_t nenv = cfg ? cfg->n_env : 0, nsec = cfg ? cfg->n_secrets : 0;
  Impulse__SecretRecord **recs = NULL;
  size_t bytes = 0, count = nenv;
  int rc = 0;
  *out = NULL;
  *n = 0;
  if (nsec && (recs = calloc(nsec, sizeof *recs)) == NULL) return -ENOMEM;
  for (size_t i = 0; i < nenv; i++) bytes += strlen(cfg->env[i]) + 1;
  for (size_t i = 0; i < nsec; i++) {
    size_t nl;
    const char *var = imp_secret_ref_split(cfg->secrets[i], &nl);
    int grc;
    recs[i] = secret_get(ctl, cfg->secrets[i], nl, &grc);
    if (recs[i] == NULL) {
      IMP_LOG(IMP_LOG_ERROR,
              "secret %.*s is missing from the store (%s): instances start "
              "without variable %s",
              (int)nl, cfg->secrets[i], imp_strerror(grc), var);
      continue;
    }
    bytes += strlen(var) + 1 + recs[i]->value.len + 1;
    count++;
  }
  char **env = malloc((count + 1) * sizeof *env + bytes);
  if (env == NULL) {
    rc = -ENOMEM;
    goto out;
  }
  char *p = (char *)(env + count + 1);
  size_t k = 0;
  for (size_t i = 0; i < nenv; i++) {
    size_t len = strlen(cfg->env[i]) + 1;
    env[k++] = memcpy(p, cfg->env[i], len);
    p += len;
  }
  for (size_t i = 0; i < nsec; i++) {
    if (recs[i] == NULL) continue;
    size_t nl;
    const char *var = imp_secret_ref_split(cfg->secrets[i], &nl);
    size_t vlen = strlen(var);
    env[k++] = p;
    memcpy(p, var, vlen);
    p[vlen] = '=';
    memcpy(p + vlen + 1, recs[i]->value.data, recs[i]->value.len);
    p[vlen + 1 + recs[i]->value.len] = '\0';
    p += vlen + 1 + recs[i]->value.len + 1;
  }
  env[k] = NULL;
  *out = env;
  *n = k;
out:
  for (size_t i = 0; i < nsec; i++)
    if (recs[i]) impulse__secret_record__free_unpacked(recs[i], NULL);
  free(recs);
  return rc;
}

char **imp_ctl_env_names(const Impulse__FunctionConfig *cfg, size_t *n) {
  size_t nenv = cfg ? cfg->n_env : 0, bytes = 0;
  *n = 0;
  if (nenv == 0) return NULL;
  for (size_t i = 0; i < nenv; i++) bytes += strcspn(cfg->env[i], "=") + 1;
  char **names = malloc(nenv * sizeof *names + bytes);
  if (names == NULL) return NULL;
  char *p = (char *)(names + nenv);
  for (size_t i = 0; i < nenv; i++) {
    size_t kl = strcspn(cfg->env[i], "=");
    names[i] = memcpy(p, cfg->env[i], kl);
    p[kl] = '\0';
    p += kl + 1;
  }
  *n = nenv;
  return names;
}

void imp_ctl_env_strip(Impulse__FunctionConfig *cfg) {
  for (size_t i = 0; cfg && i < cfg->n_env; i++)
    cfg->env[i][strcspn(cfg->env[i], "=")] = '\0';
}
