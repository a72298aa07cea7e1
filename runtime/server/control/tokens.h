/*
 * Scoped tokens: `imp_<id>_<secret>`, kept in the tokens column family as
 * the SHA-256 of the secret only, and in memory for the front doors to
 * check a Hello or an HTTP request against. A token the RPC gateway
 * accepted is held by reference; revoking it (or its expiry) is seen at the
 * connection's next call. The RPCs create, list and revoke (admin only,
 * checked by the front door).
 */
#ifndef IMP_TOKENS_H
#define IMP_TOKENS_H

#include <stddef.h>
#include <stdint.h>

#include "base/rpc.h"
#include "base/store.h"
#include "policy/scopes.h"

/* "imp_" + 16 hex digits of id + "_" + 64 hex digits of secret. */
#define IMP_TOKEN_PREFIX "imp_"
#define IMP_TOKEN_ID_LEN 16
#define IMP_TOKEN_SECRET_LEN 64
#define IMP_TOKEN_LEN (4 + IMP_TOKEN_ID_LEN + 1 + IMP_TOKEN_SECRET_LEN)
/* At most this many tokens on a server. */
#define IMP_TOKENS_MAX 10000u

typedef struct imp_token_s imp_token_t;
typedef struct imp_tokens_s imp_tokens_t;

/* A scoped token in memory. Shared by the table and the connections that
 * authenticated with it; imp_token_unref() drops a reference. */
struct imp_token_s {
  int refs;
  int revoked;
  char id[IMP_TOKEN_ID_LEN + 1];
  char name[IMP_NAME_MAX + 1];
  char secret_sha256[65];
  uint64_t created_ms;
  uint64_t expires_ms; /* 0 = never */
  imp_grant_t grant;
  imp_token_t *next;
};

/* Loads every stored token. Returns 0 with *out (imp_tokens_free()), or a
 * negative error with the reason in err. `store` is borrowed. */
int imp_tokens_open(imp_store_t *store, imp_tokens_t **out, char *err,
                    size_t errlen);

/* Frees the table; tokens still referenced by connections stay until
 * their last imp_token_unref(). */
void imp_tokens_free(imp_tokens_t *tokens);

/* Whether `s` (len bytes, not NUL-terminated) has the shape of a scoped
 * token (starts with "imp_"). */
int imp_token_is_scoped(const char *s, size_t len);

/* Checks a scoped token. Returns 0 with *out (a new reference: release
 * with imp_token_unref()), or -EACCES with the reason in msg (unknown,
 * wrong secret, revoked, expired). Compares the secret's hash in constant
 * time. `now_ms` is wall-clock time. */
int imp_tokens_check(imp_tokens_t *tokens, const char *s, size_t len,
                     uint64_t now_ms, imp_token_t **out, char *msg,
                     size_t msglen);

/* 0 while `token` may be used at `now_ms`, else -EACCES with the reason. */
int imp_token_usable(const imp_token_t *token, uint64_t now_ms, char *msg,
                     size_t msglen);

void imp_token_ref(imp_token_t *token);
void imp_token_unref(imp_token_t *token);

/* The RPCs. Each takes `env` (freed here) and answers `rpc` once, after
 * a change is synced to the store. */
void imp_tokens_create(imp_tokens_t *tokens, imp_rpc_t *rpc,
                       Impulse__Envelope *env, uint64_t now_ms);
void imp_tokens_list(imp_tokens_t *tokens, imp_rpc_t *rpc,
                     Impulse__Envelope *env);
void imp_tokens_revoke(imp_tokens_t *tokens, imp_rpc_t *rpc,
                       Impulse__Envelope *env);

#endif
