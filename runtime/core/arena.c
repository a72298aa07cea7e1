#include "core/arena.h"

#include <stdlib.h>

void imp_arena_init(imp_arena_t *arena, size_t first) {
  arena->head = NULL;
  arena->block = first ? first : IMP_ARENA_BLOCK;
}

void *imp_arena_alloc(imp_arena_t *arena, size_t len) {
  /* Checked before rounding up, so that neither the rounding nor the
   * block header can overflow. */
  if (len > IMP_ARENA_MAX) return NULL;
  size_t need = len < IMP_ARENA_ALIGN ? IMP_ARENA_ALIGN
                                      : (len + IMP_ARENA_ALIGN - 1) &
                                            ~(size_t)(IMP_ARENA_ALIGN - 1);
  imp_arena_block_t *block = arena->head;
  if (block == NULL || block->cap - block->used < need) {
    size_t unit = arena->block ? arena->block : IMP_ARENA_BLOCK;
    size_t cap = need > unit ? need : unit;
    block = malloc(sizeof *block + cap);
    if (block == NULL) return NULL;
    block->used = 0;
    block->cap = cap;
    if (need > unit && arena->head != NULL) {
      /* A large block goes behind the head so the head's free room stays
       * available to the small allocations that follow. */
      block->next = arena->head->next;
      arena->head->next = block;
    } else {
      block->next = arena->head;
      arena->head = block;
    }
  }
  void *p = (char *)block->data + block->used;
  block->used += need;
  return p;
}

void imp_arena_release(imp_arena_t *arena) {
  imp_arena_block_t *block = arena->head;
  while (block != NULL) {
    imp_arena_block_t *next = block->next;
    free(block);
    block = next;
  }
  arena->head = NULL;
}

static void *pb_alloc(void *data, size_t size) {
  return imp_arena_alloc(data, size);
}

static void pb_free(void *data, void *p) {
  (void)data;
  (void)p; /* with the arena, in imp_arena_release() */
}

void imp_arena_allocator(imp_arena_t *arena, ProtobufCAllocator *alloc) {
  alloc->alloc = pb_alloc;
  alloc->free = pb_free;
  alloc->allocator_data = arena;
}
