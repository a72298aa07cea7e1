/*
 * Scopes of a token and the one table of what each allows. The RPC gateway
 * and the HTTP front end both ask imp_access_decide(), so what a scope
 * allows cannot differ between them (docs/security.md lists the table).
 * Pure: no I/O, no clock.
 */
#ifndef IMP_SCOPES_H
#define IMP_SCOPES_H

#include <stddef.h>

#include "core/limits.h"

typedef enum imp_scope_kind_e {
  IMP_SCOPE_NONE = 0, /* needed by nothing: anyone may call */
  IMP_SCOPE_ADMIN,    /* everything */
  IMP_SCOPE_DEPLOY,   /* deploy, delete, scale, traffic, upgrade, triggers */
  IMP_SCOPE_INVOKE,   /* invoke (all functions, or the one named) */
  IMP_SCOPE_PUBLISH,  /* publish (all topics, or the one named) */
  IMP_SCOPE_READ      /* ls, describe, record ls, trigger ls, /api/state */
} imp_scope_kind_t;

/* At most this many scopes per token. */
#define IMP_SCOPES_MAX 16

/* One scope: a kind, and for invoke and publish an optional target. */
typedef struct imp_scope_s {
  imp_scope_kind_t kind;
  char target[IMP_TOPIC_MAX + 1]; /* function or topic; "" = any */
} imp_scope_t;

/* What a scoped token grants. */
typedef struct imp_grant_s {
  unsigned n;
  imp_scope_t scopes[IMP_SCOPES_MAX];
} imp_grant_t;

/* Parses "admin", "deploy", "invoke", "invoke:NAME", "publish",
 * "publish:TOPIC" or "read" into *out. Returns 0, or -EINVAL with the
 * reason (naming `s`) in err. */
int imp_scope_parse(const char *s, imp_scope_t *out, char *err, size_t errlen);

/* Writes the scope as imp_scope_parse() reads it. Returns buf. */
const char *imp_scope_format(const imp_scope_t *scope, char *buf, size_t len);

/* Operations that are HTTP routes without an RPC twin; every other
 * operation is an Envelope body case (IMPULSE__ENVELOPE__BODY_*), and an
 * HTTP route that does what an RPC does uses that RPC's body case. */
#define IMP_OP_HTTP_STATE (-1) /* GET /api/state */

/* A row of the table. */
typedef struct imp_access_s {
  int op;           /* a body case or IMP_OP_HTTP_* */
  const char *name; /* the operation, for messages: "deploy" */
  const char *http; /* the HTTP route under the same rule, or NULL */
  imp_scope_kind_t need;
  int open; /* allowed without a token under --invoke-auth open */
} imp_access_t;

/* The row of `op`, or NULL when it has none: imp_access_decide() then asks
 * for the admin token (closed by default). Hello is decided by the front
 * door, before this. */
const imp_access_t *imp_access_find(int op);

/* The table, for documentation and tests: *n rows. */
const imp_access_t *imp_access_table(size_t *n);

/* Decides whether a caller may do `op` on `target` (the function or topic
 * it names; NULL when none). `admin`: the caller showed the admin token.
 * `grant`: the scopes of its scoped token, NULL without one. `open_mode`:
 * the server runs with --invoke-auth open. Returns 0 when allowed, else
 * IMPULSE__ERROR_CODE__UNAUTHENTICATED (no token, and the call needs one)
 * or IMPULSE__ERROR_CODE__PERMISSION_DENIED (the token's scopes do not
 * cover it), with a message naming the scope needed in msg. */
int imp_access_decide(int op, const char *target, int admin,
                      const imp_grant_t *grant, int open_mode, char *msg,
                      size_t len);

#endif
