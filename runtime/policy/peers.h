/*
 * Connections per peer (pure logic, no I/O): the front doors admit a new
 * connection only while its peer holds fewer than a per-peer cap and all
 * peers together fewer than a global cap. A peer is a source address:
 * an IPv4 address, or the /64 prefix of an IPv6 one (a single host is
 * usually given a whole /64, so counting its addresses one by one would
 * not limit it).
 *
 * The table holds one entry per peer with at least one admitted
 * connection, in an open-addressed hash keyed with a seed chosen by the
 * caller (a random one, so that peers cannot pick colliding addresses).
 */
#ifndef IMP_PEERS_H
#define IMP_PEERS_H

#include <stddef.h>
#include <stdint.h>

struct sockaddr;

/* A peer's key: an IPv4 address as ::ffff:a.b.c.d, or an IPv6 /64 prefix
 * followed by zeros. */
typedef struct imp_peer_s {
  uint8_t b[16];
} imp_peer_t;

/* What imp_peers_admit() decided. */
typedef enum imp_admit_e {
  IMP_ADMIT_OK = 0,
  IMP_ADMIT_PEER_CAP,  /* the peer holds max_per_peer connections */
  IMP_ADMIT_GLOBAL_CAP /* all peers hold max_total connections */
} imp_admit_t;

typedef struct imp_peer_slot_s imp_peer_slot_t;

typedef struct imp_peers_s {
  imp_peer_slot_t *slots; /* owned; NULL until the first admission */
  size_t cap;             /* slots, a power of two */
  size_t used;            /* peers with a connection */
  unsigned total;         /* admitted connections, all peers */
  unsigned max_total;
  unsigned max_per_peer;
  uint64_t seed;
} imp_peers_t;

/* An empty table with the caps (each at least 1) and the hash seed. */
void imp_peers_init(imp_peers_t *peers, unsigned max_total,
                    unsigned max_per_peer, uint64_t seed);
/* Frees the table (the caps stay). */
void imp_peers_free(imp_peers_t *peers);

/* The peer of a socket address (AF_INET or AF_INET6; IPv4-mapped IPv6
 * addresses count as IPv4). Returns 0, or -EAFNOSUPPORT for another
 * family (a UNIX socket has no peer to count). */
int imp_peer_from_sockaddr(const struct sockaddr *sa, imp_peer_t *peer);

/* The peer as text ("192.0.2.1", "2001:db8::/64") into buf; returns buf. */
const char *imp_peer_str(const imp_peer_t *peer, char *buf, size_t len);

/* Admits one more connection of `peer` and counts it, or says which cap
 * it is over (nothing counted). Returns an imp_admit_t, or -ENOMEM (the
 * table could not grow: the caller refuses the connection). */
int imp_peers_admit(imp_peers_t *peers, const imp_peer_t *peer);

/* Forgets one admitted connection of `peer`; aborts when it had none (a
 * release without its admission is a bug). */
void imp_peers_release(imp_peers_t *peers, const imp_peer_t *peer);

/* Connections counted for `peer` now. */
unsigned imp_peers_count(const imp_peers_t *peers, const imp_peer_t *peer);

#endif
