/*
 * A TCP forwarder on a libuv loop: every connection accepted on its
 * listening address is piped, both ways, to one target address, with
 * back-pressure (reading one side stops while the other side's writes
 * pile up). `impulse kafka --listen` uses it to give the embedded
 * cluster's first broker a fixed address.
 */
#ifndef IMP_FORWARD_H
#define IMP_FORWARD_H

#include <stddef.h>
#include <uv.h>

#include "core/list.h"

/* A forwarder; its storage belongs to the caller and must stay until the
 * loop has closed its handles after imp_fwd_stop(). */
typedef struct imp_fwd_s {
  uv_loop_t *loop;
  uv_tcp_t listener;
  struct sockaddr_storage target;
  imp_list_t pairs; /* the forwarded connections */
  int listening;    /* listener open */
  int stopping;
} imp_fwd_t;

/*
 * Listens on `addr` (IPv4 or IPv6) and forwards every connection accepted
 * there to `target`. Returns 0, or a negative error of libuv (a negative
 * errno) when it cannot listen; then the listener is closing and is gone
 * once the loop has run.
 */
int imp_fwd_start(imp_fwd_t *fwd, uv_loop_t *loop, const struct sockaddr *addr,
                  const struct sockaddr *target);

/* The address it listens on, as "IP:PORT" or "[IP6]:PORT", into buf. */
void imp_fwd_name(const imp_fwd_t *fwd, char *buf, size_t len);

/* Stops listening and closes every forwarded connection. The handles are
 * closed by the loop; nothing else is freed. Idempotent. */
void imp_fwd_stop(imp_fwd_t *fwd);

#endif
