/*
 * The RPC gateway: the TCP front door speaking the framed protocol
 * (docs/protocol.md). Authenticates connections (Hello with the admin
 * token), decodes frames and routes each request down: invocations to the
 * call path with a completion callback of its own, control requests to the
 * controller and the trigger broker with an imp_rpc_t to answer through.
 */
#ifndef IMP_GATEWAY_H
#define IMP_GATEWAY_H

#include "server/server.h"

typedef struct imp_gateway_s imp_gateway_t;

/* Listens on cfg.listen_host:listen_port. 0 with *out, or a uv error
 * (logged); *out may be set then too and must be freed the same way. */
int imp_gateway_start(imp_server_t *server, imp_gateway_t **out);
/* Stops accepting connections; open ones are served on. */
void imp_gateway_stop_listening(imp_gateway_t *gw);
/* Stops listening and closes every client connection (after flushing). */
void imp_gateway_stop(imp_gateway_t *gw);
/* Frees the gateway once the loop has run its handles' close callbacks
 * (NULL is fine). */
void imp_gateway_free(imp_gateway_t *gw);

#endif
