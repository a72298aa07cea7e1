/* Stored answers of idempotent invocations (see idempotency.c). */
#ifndef IMP_IDEMPOTENCY_H
#define IMP_IDEMPOTENCY_H

#include <stddef.h>

#include "base/store.h"
#include "core/limits.h"

/* Room for a store key: function name (64), NUL, key. */
#define IMP_IDEM_KEY_BUF (64 + 1 + IMP_IDEM_MAX_KEY)

/* Builds the store key of (function, key) in out. Returns its length, or
 * -EINVAL for an empty key, a key over IMP_IDEM_MAX_KEY or a short out. */
int imp_idem_key(const char *function, const char *key, char *out,
                 size_t outlen);

/* The stored answer of (function, key) that has not expired: 0 with
 * *answer (free with free()) and *len, -ENOENT, -EINVAL (bad key) or
 * IMP_ESTORE. */
int imp_idem_lookup(imp_store_t *store, const char *function, const char *key,
                    char **answer, size_t *len);

/* Stores `answer` (borrowed: the reply Envelope after its id) for
 * (function, key) for --idempotency-ttl. 0 or a negative error (logged). */
int imp_idem_store(imp_store_t *store, unsigned ttl_s, const char *function,
                   const char *key, const char *answer, size_t len);

/* Deletes expired answers, a bounded number per call (server tick). */
/* Where the sweep of expired answers resumes. */
typedef struct imp_idem_cursor_s {
  char key[IMP_IDEM_KEY_BUF];
  size_t len;
} imp_idem_cursor_t;
void imp_idem_sweep(imp_store_t *store, imp_idem_cursor_t *cursor);

#endif
