/*
 * Completion tracking of one partition for the trigger broker: the records
 * taken from the partition, in offset order, each pending or finished, and
 * the contiguous low-water mark of finished records, which is the offset
 * the consumer group may commit. Pure bookkeeping, no I/O, so the rules are
 * unit-tested on their own (tests/eventing/test_trigger_track.c).
 *
 * Entries are addressed by a sequence number that stays valid while the
 * ring grows; the ring holds the records from the first unfinished one up
 * to the newest.
 */
#ifndef IMP_TRIGGER_TRACK_H
#define IMP_TRIGGER_TRACK_H

#include <stddef.h>
#include <stdint.h>

typedef struct imp_track_entry_s {
  int64_t offset;
  void *item; /* owner's record; NULL once finished */
} imp_track_entry_t;

typedef struct imp_track_s {
  imp_track_entry_t *ring; /* owned; capacity is a power of two */
  size_t cap;
  uint64_t head; /* sequence number of the oldest entry kept */
  uint64_t tail; /* sequence number the next push gets */
  int64_t next;  /* offset after the newest pushed; -1 before any */
} imp_track_t;

void imp_track_init(imp_track_t *track);
/* Frees the ring; items are left to the owner. */
void imp_track_free(imp_track_t *track);

/* Appends a record taken from the partition (`item` non-NULL, borrowed).
 * Offsets must increase. Returns 0 with *seq set, -EINVAL for an offset not
 * above the previous one, or -ENOMEM. */
int imp_track_push(imp_track_t *track, int64_t offset, void *item,
                   uint64_t *seq);

/* Marks entry `seq` finished and drops finished entries from the front. */
void imp_track_done(imp_track_t *track, uint64_t seq);

/* The offset to commit: the first unfinished offset, or the offset after
 * the newest record when all are finished; -1 before the first push. */
int64_t imp_track_low_water(const imp_track_t *track);

/* Entries kept (finished ones behind an unfinished one included). */
static inline size_t imp_track_len(const imp_track_t *track) {
  return (size_t)(track->tail - track->head);
}

/* Entry of sequence number seq (head <= seq < tail), borrowed. */
static inline imp_track_entry_t *imp_track_at(const imp_track_t *track,
                                              uint64_t seq) {
  return &track->ring[seq & (track->cap - 1)];
}

#endif
