/* Placeholder until the Kafka module lands. */
#include "server.h"

void imp_publish_rpc(struct imp_server_s *server, struct imp_client_s *client,
                     Impulse__Envelope *env) {
  (void)server;
  imp_client_error(client, env->id, IMPULSE__ERROR_CODE__UNAVAILABLE, "eventing is not built");
  impulse__envelope__free_unpacked(env, NULL);
}
