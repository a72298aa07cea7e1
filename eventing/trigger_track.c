#include "eventing/trigger_track.h"

#include <errno.h>
#include <stdlib.h>

void imp_track_init(imp_track_t *track) {
  track->ring = NULL;
  track->cap = 0;
  track->head = track->tail = 0;
  track->next = -1;
}

void imp_track_free(imp_track_t *track) {
  free(track->ring);
  imp_track_init(track);
}

/* Doubles the ring, keeping every entry at its sequence number. */
static int grow(imp_track_t *track) {
  size_t cap = track->cap ? track->cap * 2 : 64;
  imp_track_entry_t *ring = malloc(cap * sizeof *ring);
  if (ring == NULL) return -ENOMEM;
  for (uint64_t s = track->head; s < track->tail; s++)
    ring[s & (cap - 1)] = track->ring[s & (track->cap - 1)];
  free(track->ring);
  track->ring = ring;
  track->cap = cap;
  return 0;
}

int imp_track_push(imp_track_t *track, int64_t offset, void *item,
                   uint64_t *seq) {
  if (item == NULL || offset < 0 || (track->next >= 0 && offset < track->next))
    return -EINVAL;
  if (imp_track_len(track) == track->cap && grow(track) != 0) return -ENOMEM;
  imp_track_entry_t *e = imp_track_at(track, track->tail);
  e->offset = offset;
  e->item = item;
  *seq = track->tail++;
  track->next = offset + 1;
  return 0;
}

void imp_track_done(imp_track_t *track, uint64_t seq) {
  if (seq < track->head || seq >= track->tail) return;
  imp_track_at(track, seq)->item = NULL;
  while (track->head < track->tail &&
         imp_track_at(track, track->head)->item == NULL)
    track->head++;
}

int64_t imp_track_low_water(const imp_track_t *track) {
  if (track->head < track->tail)
    return imp_track_at(track, track->head)->offset;
  return track->next;
}
