#include "server/control/tokens.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "core/common.h"
#include "core/limits.h"

struct imp_tokens_s {
  imp_store_t *store; /* borrowed */
  imp_token_t *head;  /* each holds one reference for the table */
  unsigned count;
};

/* The longest TTL a token may be given: ten years. */
#define TTL_MAX_MS (10ull * 365 * 86400 * 1000)

void imp_token_ref(imp_token_t *token) {
  token->refs++;
}

void imp_token_unref(imp_token_t *token) {
  if (token->refs <= 0) abort(); /* refcount underflow is a bug */
  if (--token->refs == 0) free(token);
}

/* Compares two NUL-terminated strings of equal expected length without
 * leaking where they differ. */
static int equal_ct(const char *a, const char *b) {
  size_t la = strlen(a), lb = strlen(b);
  unsigned char diff = (unsigned char)(la != lb);
  for (size_t i = 0; i < la && i < lb; i++)
    diff |= (unsigned char)(a[i] ^ b[i]);
  return diff == 0;
}

static int is_hex(const char *s, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
      return 0;
  return 1;
}

/* Builds a token from its record; NULL when the record does not make
 * sense (logged: such a token never authenticates). */
static imp_token_t *token_from_record(const Impulse__TokenRecord *rec) {
  const Impulse__TokenInfo *info = rec->info;
  if (strlen(info->id) != IMP_TOKEN_ID_LEN || !is_hex(info->id, 16) ||
      strlen(rec->secret_sha256) != 64 || info->n_scopes == 0 ||
      info->n_scopes > IMP_SCOPES_MAX ||
      (info->name && strlen(info->name) > IMP_NAME_MAX))
    return NULL;
  imp_token_t *t = calloc(1, sizeof *t);
  if (t == NULL) return NULL;
  t->refs = 1;
  memcpy(t->id, info->id, IMP_TOKEN_ID_LEN + 1);
  if (info->name) memcpy(t->name, info->name, strlen(info->name) + 1);
  memcpy(t->secret_sha256, rec->secret_sha256, 65);
  t->created_ms = info->created_ms;
  t->expires_ms = info->expires_ms;
  for (size_t i = 0; i < info->n_scopes; i++) {
    char err[400];
    if (imp_scope_parse(info->scopes[i], &t->grant.scopes[t->grant.n], err,
                        sizeof err) != 0) {
      IMP_LOG(IMP_LOG_WARN, "token %s: %s", t->id, err);
      free(t);
      return NULL;
    }
    t->grant.n++;
  }
  return t;
}

static void table_add(imp_tokens_t *tokens, imp_token_t *t) {
  t->next = tokens->head;
  tokens->head = t;
  tokens->count++;
}

static int load_one(void *arg, const char *key, size_t klen, const char *val,
                    size_t vlen) {
  imp_tokens_t *tokens = arg;
  Impulse__TokenRecord *rec =
      impulse__token_record__unpack(NULL, vlen, (const uint8_t *)val);
  imp_token_t *t = rec ? token_from_record(rec) : NULL;
  if (rec) impulse__token_record__free_unpacked(rec, NULL);
  if (t == NULL) {
    IMP_LOG(IMP_LOG_WARN, "token %.*s: stored record unreadable, ignored",
            (int)(klen < 64 ? klen : 64), key);
    return 0;
  }
  table_add(tokens, t);
  return 0;
}

int imp_tokens_open(imp_store_t *store, imp_tokens_t **out, char *err,
                    size_t errlen) {
  *out = NULL;
  imp_tokens_t *tokens = calloc(1, sizeof *tokens);
  if (tokens == NULL) return -ENOMEM;
  tokens->store = store;
  int rc = imp_store_scan(store, IMP_CF_TOKENS, NULL, 0, load_one, tokens);
  if (rc != 0) {
    snprintf(err, errlen, "cannot read the stored tokens: %s",
             imp_strerror(rc));
    imp_tokens_free(tokens);
    return rc;
  }
  *out = tokens;
  return 0;
}

void imp_tokens_free(imp_tokens_t *tokens) {
  if (tokens == NULL) return;
  imp_token_t *t = tokens->head;
  while (t) {
    imp_token_t *next = t->next;
    imp_token_unref(t);
    t = next;
  }
  free(tokens);
}

int imp_token_is_scoped(const char *s, size_t len) {
  return len >= 4 && memcmp(s, IMP_TOKEN_PREFIX, 4) == 0;
}

int imp_token_usable(const imp_token_t *token, uint64_t now_ms, char *msg,
                     size_t msglen) {
  if (token->revoked) {
    snprintf(msg, msglen, "token %s was revoked", token->id);
    return -EACCES;
  }
  if (token->expires_ms != 0 && now_ms >= token->expires_ms) {
    snprintf(msg, msglen, "token %s has expired", token->id);
    return -EACCES;
  }
  return 0;
}

static imp_token_t *find_id(imp_tokens_t *tokens, const char *id) {
  for (imp_token_t *t = tokens->head; t; t = t->next)
    if (strcmp(t->id, id) == 0) return t;
  return NULL;
}

static imp_token_t *find_name(imp_tokens_t *tokens, const char *name) {
  for (imp_token_t *t = tokens->head; t; t = t->next)
    if (t->name[0] && strcmp(t->name, name) == 0) return t;
  return NULL;
}

int imp_tokens_check(imp_tokens_t *tokens, const char *s, size_t len,
                     uint64_t now_ms, imp_token_t **out, char *msg,
                     size_t msglen) {
  *out = NULL;
  if (len != IMP_TOKEN_LEN || !imp_token_is_scoped(s, len) ||
      s[4 + IMP_TOKEN_ID_LEN] != '_' || !is_hex(s + 4, IMP_TOKEN_ID_LEN) ||
      !is_hex(s + 5 + IMP_TOKEN_ID_LEN, IMP_TOKEN_SECRET_LEN)) {
    snprintf(msg, msglen, "invalid token");
    return -EACCES;
  }
  char id[IMP_TOKEN_ID_LEN + 1];
  memcpy(id, s + 4, IMP_TOKEN_ID_LEN);
  id[IMP_TOKEN_ID_LEN] = '\0';
  char hash[65];
  imp_sha256_hex(s + 5 + IMP_TOKEN_ID_LEN, IMP_TOKEN_SECRET_LEN, hash);
  imp_token_t *t = find_id(tokens, id);
  /* An unknown id and a wrong secret get the same answer. */
  if (t == NULL || !equal_ct(hash, t->secret_sha256)) {
    snprintf(msg, msglen, "invalid token");
    return -EACCES;
  }
  int rc = imp_token_usable(t, now_ms, msg, msglen);
  if (rc != 0) return rc;
  imp_token_ref(t);
  *out = t;
  return 0;
}

/* ---- the RPCs ------------------------------------------------------------ */

/* Fills `info` from `t`; the scope strings go to `bufs` (IMP_SCOPES_MAX
 * strings of IMP_TOPIC_MAX + 10 bytes) and `ptrs`. */
typedef struct info_store_s {
  char *ptrs[IMP_SCOPES_MAX];
  char bufs[IMP_SCOPES_MAX][IMP_TOPIC_MAX + 10];
} info_store_t;

static void fill_info(const imp_token_t *t, Impulse__TokenInfo *info,
                      info_store_t *st) {
  impulse__token_info__init(info);
  info->id = (char *)t->id;
  info->name = t->name[0] ? (char *)t->name : NULL;
  for (unsigned i = 0; i < t->grant.n; i++) {
    st->ptrs[i] = st->bufs[i];
    imp_scope_format(&t->grant.scopes[i], st->bufs[i], sizeof st->bufs[i]);
  }
  info->n_scopes = t->grant.n;
  info->scopes = st->ptrs;
  info->has_created_ms = 1;
  info->created_ms = t->created_ms;
  info->has_expires_ms = 1;
  info->expires_ms = t->expires_ms;
}

void imp_tokens_create(imp_tokens_t *tokens, imp_rpc_t *rpc,
                       Impulse__Envelope *env, uint64_t now_ms) {
  const Impulse__TokenCreateRequest *req = env->token_create;
  imp_token_t *t = NULL;
  imp_batch_t *b = NULL;
  info_store_t *st = NULL;
  char err[512];
  uint8_t raw[8 + 32]; /* the id, then the secret */
  memset(raw, 0, sizeof raw);
  if (req->n_scopes == 0 || req->n_scopes > IMP_SCOPES_MAX) {
    imp_rpc_error(rpc, IMPULSE__ERROR_CODE__BAD_REQUEST,
                  "a token needs 1 to %d scopes (--scope), not %zu",
                  IMP_SCOPES_MAX, req->n_scopes);
    goto out;
  }
  if (req->name && req->name[0] && !imp_name_valid(req->name)) {
    imp_rpc_error(rpc, IMPULSE__ERROR_CODE__BAD_REQUEST,
                  "invalid token name '%.80s' (1-%d of [A-Za-z0-9_.-], "
                  "starting with a letter or digit)",
                  req->name, IMP_NAME_MAX);
    goto out;
  }
  if (req->ttl_ms > TTL_MAX_MS) {
    imp_rpc_error(rpc, IMPULSE__ERROR_CODE__BAD_REQUEST,
                  "ttl %llu ms is above the limit of ten years",
                  (unsigned long long)req->ttl_ms);
    goto out;
  }
  if (req->name && req->name[0] && find_name(tokens, req->name)) {
    imp_rpc_error(rpc, IMPULSE__ERROR_CODE__EXISTS,
                  "a token named '%s' exists (revoke it first)", req->name);
    goto out;
  }
  if (tokens->count >= IMP_TOKENS_MAX) {
    imp_rpc_error(rpc, IMPULSE__ERROR_CODE__BAD_REQUEST,
                  "this server holds %u tokens, the most it takes; revoke "
                  "some first",
                  tokens->count);
    goto out;
  }
  t = calloc(1, sizeof *t);
  st = malloc(sizeof *st);
  if (t == NULL || st == NULL) {
    imp_rpc_error(rpc, IMPULSE__ERROR_CODE__INTERNAL, "out of memory");
    goto out;
  }
  t->refs = 1;
  for (size_t i = 0; i < req->n_scopes; i++) {
    if (imp_scope_parse(req->scopes[i], &t->grant.scopes[i], err, sizeof err) !=
        0) {
      imp_rpc_error(rpc, IMPULSE__ERROR_CODE__BAD_REQUEST, "%s", err);
      goto out;
    }
    t->grant.n++;
  }
  do {
    if (getrandom(raw, sizeof raw, 0) != (ssize_t)sizeof raw) {
      imp_rpc_error(rpc, IMPULSE__ERROR_CODE__INTERNAL,
                    "cannot get random bytes: %s", strerror(errno));
      goto out;
    }
    imp_hex(raw, 8, t->id);
  } while (find_id(tokens, t->id) != NULL);
  char secret[IMP_TOKEN_SECRET_LEN + 1];
  imp_hex(raw + 8, 32, secret);
  imp_sha256_hex(secret, IMP_TOKEN_SECRET_LEN, t->secret_sha256);
  if (req->name) snprintf(t->name, sizeof t->name, "%s", req->name);
  t->created_ms = now_ms;
  t->expires_ms = req->ttl_ms ? now_ms + req->ttl_ms : 0;

  Impulse__TokenInfo info;
  fill_info(t, &info, st);
  Impulse__TokenRecord rec = IMPULSE__TOKEN_RECORD__INIT;
  rec.info = &info;
  rec.secret_sha256 = t->secret_sha256;
  b = imp_batch_new();
  if (b == NULL || imp_batch_put_msg(b, tokens->store, IMP_CF_TOKENS, t->id,
                                     IMP_TOKEN_ID_LEN, &rec.base) != 0) {
    imp_rpc_error(rpc, IMPULSE__ERROR_CODE__INTERNAL, "out of memory");
    goto out;
  }
  if (imp_store_write(tokens->store, b, 1, err, sizeof err) != 0) {
    imp_rpc_error(rpc, IMPULSE__ERROR_CODE__INTERNAL,
                  "could not store the token: %s", err);
    goto out;
  }
  char full[IMP_TOKEN_LEN + 1];
  snprintf(full, sizeof full, IMP_TOKEN_PREFIX "%s_%s", t->id, secret);
  table_add(tokens, t);
  IMP_LOG(IMP_LOG_INFO, "token %s%s%s created", t->id, t->name[0] ? " " : "",
          t->name);
  Impulse__TokenCreateResponse ok = IMPULSE__TOKEN_CREATE_RESPONSE__INIT;
  ok.token = full;
  ok.info = &info;
  t = NULL; /* the table's now */
  imp_rpc_answer(rpc, IMPULSE__ENVELOPE__BODY_TOKEN_CREATE_OK, &ok);
  explicit_bzero(full, sizeof full);
  explicit_bzero(secret, sizeof secret);
out:
  explicit_bzero(raw, sizeof raw);
  if (t) imp_token_unref(t);
  free(st);
  imp_batch_free(b);
  impulse__envelope__free_unpacked(env, NULL);
}

void imp_tokens_list(imp_tokens_t *tokens, imp_rpc_t *rpc,
                     Impulse__Envelope *env) {
  impulse__envelope__free_unpacked(env, NULL);
  size_t n = tokens->count;
  Impulse__TokenInfo *infos = calloc(n ? n : 1, sizeof *infos);
  Impulse__TokenInfo **ptrs = calloc(n ? n : 1, sizeof *ptrs);
  info_store_t *st = calloc(n ? n : 1, sizeof *st);
  if (infos == NULL || ptrs == NULL || st == NULL) {
    imp_rpc_error(rpc, IMPULSE__ERROR_CODE__INTERNAL, "out of memory");
    goto out;
  }
  size_t i = 0;
  for (imp_token_t *t = tokens->head; t && i < n; t = t->next, i++) {
    fill_info(t, &infos[i], &st[i]);
    ptrs[i] = &infos[i];
  }
  Impulse__TokenListResponse ok = IMPULSE__TOKEN_LIST_RESPONSE__INIT;
  ok.n_tokens = i;
  ok.tokens = ptrs;
  imp_rpc_answer(rpc, IMPULSE__ENVELOPE__BODY_TOKEN_LIST_OK, &ok);
out:
  free(infos);
  free(ptrs);
  free(st);
}

void imp_tokens_revoke(imp_tokens_t *tokens, imp_rpc_t *rpc,
                       Impulse__Envelope *env) {
  const char *which = env->token_revoke->token;
  imp_token_t *t = find_id(tokens, which);
  if (t == NULL) t = find_name(tokens, which);
  if (t == NULL) {
    imp_rpc_error(rpc, IMPULSE__ERROR_CODE__NOT_FOUND,
                  "no token with id or name '%.80s'", which);
    goto out;
  }
  imp_batch_t *b = imp_batch_new();
  if (b == NULL) {
    imp_rpc_error(rpc, IMPULSE__ERROR_CODE__INTERNAL, "out of memory");
    goto out;
  }
  imp_batch_delete(b, tokens->store, IMP_CF_TOKENS, t->id, IMP_TOKEN_ID_LEN);
  char err[256];
  int rc = imp_store_write(tokens->store, b, 1, err, sizeof err);
  imp_batch_free(b);
  if (rc != 0) {
    imp_rpc_error(rpc, IMPULSE__ERROR_CODE__INTERNAL,
                  "could not store the revocation: %s", err);
    goto out;
  }
  /* Connections holding it see `revoked` at their next call. */
  t->revoked = 1;
  for (imp_token_t **p = &tokens->head; *p; p = &(*p)->next)
    if (*p == t) {
      *p = t->next;
      break;
    }
  tokens->count--;
  IMP_LOG(IMP_LOG_INFO, "token %s%s%s revoked", t->id, t->name[0] ? " " : "",
          t->name);
  info_store_t st;
  Impulse__TokenInfo info;
  fill_info(t, &info, &st);
  Impulse__TokenRevokeResponse ok = IMPULSE__TOKEN_REVOKE_RESPONSE__INIT;
  ok.info = &info;
  imp_rpc_answer(rpc, IMPULSE__ENVELOPE__BODY_TOKEN_REVOKE_OK, &ok);
  imp_token_unref(t);
out:
  impulse__envelope__free_unpacked(env, NULL);
}
