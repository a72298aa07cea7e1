/*
 * Arena: a bump allocator whose pieces are all freed together, in one
 * call. For the many small pieces of one invocation or one decoded
 * message, where a malloc and a free per piece would cost more than the
 * work done with them.
 *
 * An arena starts empty and allocates nothing until its first piece; the
 * first block then holds the size given to imp_arena_init() (a decoder
 * sizes it from the frame it decodes, so that one block is the usual
 * case). When a block is full the next one is chained to it, as large as
 * the first or as large as the piece that did not fit. Not thread-safe:
 * one thread allocates at a time; the release may happen on another
 * thread once the allocating one is done.
 */
#ifndef IMP_ARENA_H
#define IMP_ARENA_H

#include <protobuf-c/protobuf-c.h>
#include <stddef.h>
#include <stdint.h>

#define IMP_ARENA_BLOCK (16u << 10)  /* block size when none is given */
#define IMP_ARENA_ALIGN 16u          /* alignment of every piece */
#define IMP_ARENA_MAX (SIZE_MAX / 2) /* largest piece: above, refused */

/* One block: a header, then `cap` bytes of which `used` are handed out. */
typedef struct imp_arena_block_s {
  struct imp_arena_block_s *next;
  size_t used;
  size_t cap;
  max_align_t data[];
} imp_arena_block_t;

typedef struct imp_arena_s {
  imp_arena_block_t *head; /* block being filled; NULL while empty */
  size_t block;            /* size of the blocks it allocates */
} imp_arena_t;

/* Prepares an empty arena whose blocks hold `first` bytes (0 =
 * IMP_ARENA_BLOCK). Allocates nothing: the first block comes with the
 * first imp_arena_alloc(). A zeroed imp_arena_t is an empty arena of
 * IMP_ARENA_BLOCK blocks too. */
void imp_arena_init(imp_arena_t *arena, size_t first);

/* Returns `len` bytes aligned to IMP_ARENA_ALIGN (a distinct piece even
 * for 0), valid until imp_arena_release(); NULL when out of memory or
 * when `len` is above IMP_ARENA_MAX. */
void *imp_arena_alloc(imp_arena_t *arena, size_t len);

/* Frees every piece at once. The arena is empty again and may be used
 * anew, with the same block size. */
void imp_arena_release(imp_arena_t *arena);

/* Fills `alloc` with a protobuf-c allocator drawing from `arena`
 * (borrowed: it must outlive every use of `alloc`). Its free does
 * nothing; what it allocated goes with imp_arena_release(), so a message
 * unpacked with it is released that way, never with free_unpacked. */
void imp_arena_allocator(imp_arena_t *arena, ProtobufCAllocator *alloc);

#endif
