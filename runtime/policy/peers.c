/*
 * Connections per peer: see peers.h.
 */
#include "policy/peers.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

struct imp_peer_slot_s {
  imp_peer_t peer;
  unsigned count; /* 0 = empty slot */
};

void imp_peers_init(imp_peers_t *peers, unsigned max_total,
                    unsigned max_per_peer, uint64_t seed) {
  memset(peers, 0, sizeof *peers);
  peers->max_total = max_total ? max_total : 1;
  peers->max_per_peer = max_per_peer ? max_per_peer : 1;
  peers->seed = seed;
}

void imp_peers_free(imp_peers_t *peers) {
  free(peers->slots);
  peers->slots = NULL;
  peers->cap = peers->used = 0;
  peers->total = 0;
}

static const uint8_t v4_prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

int imp_peer_from_sockaddr(const struct sockaddr *sa, imp_peer_t *peer) {
  memset(peer, 0, sizeof *peer);
  if (sa->sa_family == AF_INET) {
    const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
    memcpy(peer->b, v4_prefix, sizeof v4_prefix);
    memcpy(peer->b + 12, &in->sin_addr, 4);
    return 0;
  }
  if (sa->sa_family == AF_INET6) {
    const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
    memcpy(peer->b, &in6->sin6_addr, 16);
    /* A mapped IPv4 address is that IPv4 peer; any other IPv6 address
     * counts by its /64. */
    if (memcmp(peer->b, v4_prefix, sizeof v4_prefix) != 0)
      memset(peer->b + 8, 0, 8);
    return 0;
  }
  return -EAFNOSUPPORT;
}

const char *imp_peer_str(const imp_peer_t *peer, char *buf, size_t len) {
  char a[INET6_ADDRSTRLEN];
  if (len == 0) return buf;
  if (memcmp(peer->b, v4_prefix, sizeof v4_prefix) == 0) {
    inet_ntop(AF_INET, peer->b + 12, a, sizeof a);
    snprintf(buf, len, "%s", a);
  } else {
    inet_ntop(AF_INET6, peer->b, a, sizeof a);
    snprintf(buf, len, "%s/64", a);
  }
  return buf;
}

/* A keyed mix of the 16 bytes (splitmix64's finaliser on each half). */
static uint64_t peer_hash(const imp_peers_t *peers, const imp_peer_t *peer) {
  uint64_t h = peers->seed;
  for (int half = 0; half < 2; half++) {
    uint64_t w;
    memcpy(&w, peer->b + 8 * half, 8);
    h ^= w + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
    h ^= h >> 30;
    h *= 0xbf58476d1ce4e5b9ull;
    h ^= h >> 27;
    h *= 0x94d049bb133111ebull;
    h ^= h >> 31;
  }
  return h;
}

/* The slot holding `peer`, or the empty slot where it would go. */
static size_t find_slot(const imp_peers_t *peers, const imp_peer_t *peer) {
  size_t mask = peers->cap - 1;
  size_t i = (size_t)peer_hash(peers, peer) & mask;
  while (peers->slots[i].count != 0 &&
         memcmp(&peers->slots[i].peer, peer, sizeof *peer) != 0)
    i = (i + 1) & mask;
  return i;
}

/* Doubles the table (from 64 slots); kept under half full. */
static int grow(imp_peers_t *peers) {
  size_t cap = peers->cap ? peers->cap * 2 : 64;
  imp_peer_slot_t *slots = calloc(cap, sizeof *slots);
  if (slots == NULL) return -ENOMEM;
  imp_peer_slot_t *old = peers->slots;
  size_t oldcap = peers->cap;
  peers->slots = slots;
  peers->cap = cap;
  for (size_t i = 0; i < oldcap; i++)
    if (old[i].count != 0)
      peers->slots[find_slot(peers, &old[i].peer)] = old[i];
  free(old);
  return 0;
}

int imp_peers_admit(imp_peers_t *peers, const imp_peer_t *peer) {
  if (peers->total >= peers->max_total) return IMP_ADMIT_GLOBAL_CAP;
  if ((peers->used + 1) * 2 > peers->cap && grow(peers) != 0) return -ENOMEM;
  imp_peer_slot_t *s = &peers->slots[find_slot(peers, peer)];
  if (s->count >= peers->max_per_peer) return IMP_ADMIT_PEER_CAP;
  if (s->count == 0) {
    s->peer = *peer;
    peers->used++;
  }
  s->count++;
  peers->total++;
  return IMP_ADMIT_OK;
}

void imp_peers_release(imp_peers_t *peers, const imp_peer_t *peer) {
  if (peers->cap == 0) abort();
  size_t mask = peers->cap - 1;
  size_t i = find_slot(peers, peer);
  if (peers->slots[i].count == 0 || peers->total == 0) abort();
  peers->total--;
  if (--peers->slots[i].count > 0) return;
  peers->used--;
  /* Linear probing without tombstones: move later entries of the run
   * back into the hole when their home slot allows it. */
  size_t hole = i;
  for (size_t j = (i + 1) & mask; peers->slots[j].count != 0;
       j = (j + 1) & mask) {
    size_t home = (size_t)peer_hash(peers, &peers->slots[j].peer) & mask;
    /* j may move to the hole unless its home lies cyclically in
     * (hole, j]. */
    int stays =
        hole <= j ? (home > hole && home <= j) : (home > hole || home <= j);
    if (stays) continue;
    peers->slots[hole] = peers->slots[j];
    hole = j;
  }
  peers->slots[hole].count = 0;
}

unsigned imp_peers_count(const imp_peers_t *peers, const imp_peer_t *peer) {
  if (peers->cap == 0) return 0;
  return peers->slots[find_slot(peers, peer)].count;
}
