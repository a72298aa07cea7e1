/* Placeholder until the trigger broker lands. */
#include "server.h"

#include <stdlib.h>

struct imp_triggers_s { int closed; };

int imp_triggers_open(struct imp_server_s *server, imp_triggers_t **out) {
  (void)server;
  *out = calloc(1, sizeof **out);
  return *out ? 0 : -ENOMEM;
}
void imp_triggers_close(imp_triggers_t *t, int timeout_ms) { (void)timeout_ms; t->closed = 1; }
int imp_triggers_closed(const imp_triggers_t *t) { return t->closed; }
void imp_triggers_free(imp_triggers_t *t) { free(t); }
static void unavailable(struct imp_client_s *client, Impulse__Envelope *env) {
  imp_client_error(client, env->id, IMPULSE__ERROR_CODE__UNAVAILABLE, "triggers are not built");
  impulse__envelope__free_unpacked(env, NULL);
}
void imp_triggers_create(imp_triggers_t *t, struct imp_client_s *c, Impulse__Envelope *e) { (void)t; unavailable(c, e); }
void imp_triggers_delete(imp_triggers_t *t, struct imp_client_s *c, Impulse__Envelope *e) { (void)t; unavailable(c, e); }
void imp_triggers_list(imp_triggers_t *t, struct imp_client_s *c, Impulse__Envelope *e) { (void)t; unavailable(c, e); }
void imp_triggers_describe(imp_triggers_t *t, struct imp_client_s *c, Impulse__Envelope *e) { (void)t; unavailable(c, e); }
