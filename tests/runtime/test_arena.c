/*
 * Unit tests for runtime/core/arena.c: the bump allocator of invocations
 * and decoded messages. Leaks and overruns show in the sanitizer run.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/arena.h"
#include "core/codec.h"
#include "tests/support/test_main.h"

static size_t block_count(const imp_arena_t *arena) {
  size_t n = 0;
  for (const imp_arena_block_t *b = arena->head; b != NULL; b = b->next) n++;
  return n;
}

static int in_block(const imp_arena_block_t *b, const void *p, size_t len) {
  const char *lo = (const char *)b->data;
  const char *q = p;
  return q >= lo && q + len <= lo + b->cap;
}

static void test_empty_until_first_alloc(void **state) {
  (void)state;
  imp_arena_t arena;
  imp_arena_init(&arena, 0);
  assert_null(arena.head);
  assert_int_equal(arena.block, IMP_ARENA_BLOCK);
  imp_arena_release(&arena); /* an empty arena releases nothing */
  assert_null(arena.head);

  /* A zeroed arena is an empty one of the default block size. */
  imp_arena_t zero;
  memset(&zero, 0, sizeof zero);
  void *p = imp_arena_alloc(&zero, 10);
  assert_non_null(p);
  assert_int_equal(zero.head->cap, IMP_ARENA_BLOCK);
  imp_arena_release(&zero);
}

static void test_aligned_distinct_pieces(void **state) {
  (void)state;
  imp_arena_t arena;
  imp_arena_init(&arena, 1024);
  char *prev = NULL;
  for (size_t len = 0; len < 40; len++) {
    char *p = imp_arena_alloc(&arena, len);
    assert_non_null(p);
    assert_int_equal((uintptr_t)p % IMP_ARENA_ALIGN, 0);
    /* Even a 0-byte piece is distinct from the one before. */
    if (prev != NULL) assert_true(p > prev);
    memset(p, 0x5a, len); /* writable over its whole length */
    prev = p;
  }
  assert_true(block_count(&arena) >= 1);
  imp_arena_release(&arena);
}

/* The first block has the size given; when it is full the next one is
 * chained in front of it, of the same size. */
static void test_blocks_chained_when_full(void **state) {
  (void)state;
  imp_arena_t arena;
  imp_arena_init(&arena, 256);
  void *a = imp_arena_alloc(&arena, 200);
  assert_non_null(a);
  assert_int_equal(block_count(&arena), 1);
  imp_arena_block_t *first = arena.head;
  assert_int_equal(first->cap, 256);
  assert_true(in_block(first, a, 200));

  void *b = imp_arena_alloc(&arena, 48); /* 208 + 48 = 256: still fits */
  assert_int_equal(block_count(&arena), 1);
  assert_true(in_block(first, b, 48));

  void *c = imp_arena_alloc(&arena, 1); /* the first is full */
  assert_int_equal(block_count(&arena), 2);
  assert_ptr_equal(arena.head->next, first);
  assert_int_equal(arena.head->cap, 256);
  assert_true(in_block(arena.head, c, 1));
  imp_arena_release(&arena);
  assert_null(arena.head);

  /* Used again after the release: same block size. */
  assert_non_null(imp_arena_alloc(&arena, 8));
  assert_int_equal(arena.head->cap, 256);
  imp_arena_release(&arena);
}

/* A piece larger than a block gets a block of its own behind the head,
 * so the head's free room still serves the small pieces after it. */
static void test_large_piece_behind_head(void **state) {
  (void)state;
  imp_arena_t arena;
  imp_arena_init(&arena, 256);
  void *small = imp_arena_alloc(&arena, 16);
  imp_arena_block_t *head = arena.head;
  void *big = imp_arena_alloc(&arena, 4000);
  assert_non_null(small);
  assert_non_null(big);
  assert_int_equal(block_count(&arena), 2);
  assert_ptr_equal(arena.head, head);
  assert_int_equal(head->next->cap, 4000);
  assert_true(in_block(head->next, big, 4000));
  memset(big, 1, 4000);
  void *after = imp_arena_alloc(&arena, 16);
  assert_true(in_block(head, after, 16));

  /* In an empty arena the large block simply becomes the head. */
  imp_arena_t empty;
  imp_arena_init(&empty, 64);
  void *p = imp_arena_alloc(&empty, 1000);
  assert_non_null(p);
  assert_int_equal(block_count(&empty), 1);
  assert_int_equal(empty.head->cap, 1008); /* rounded to the alignment */
  imp_arena_release(&empty);
  imp_arena_release(&arena);
}

/* Sizes that would overflow the rounding or the block header are refused
 * before anything is allocated. */
static void test_oversized_refused(void **state) {
  (void)state;
  imp_arena_t arena;
  imp_arena_init(&arena, 0);
  assert_null(imp_arena_alloc(&arena, SIZE_MAX));
  assert_null(imp_arena_alloc(&arena, SIZE_MAX - IMP_ARENA_ALIGN + 2));
  assert_null(imp_arena_alloc(&arena, (size_t)IMP_ARENA_MAX + 1));
  assert_null(arena.head);
  /* Still usable afterwards. */
  assert_non_null(imp_arena_alloc(&arena, 32));
  imp_arena_release(&arena);
}

/* The protobuf-c view: a message unpacked into the arena is released with
 * it (the leak checker sees anything left behind). */
static void test_protobuf_allocator(void **state) {
  (void)state;
  Impulse__Header h[2] = {IMPULSE__HEADER__INIT, IMPULSE__HEADER__INIT};
  Impulse__Header *hp[2] = {&h[0], &h[1]};
  h[0].name = "content-type";
  h[0].has_value = 1;
  h[0].value.data = (uint8_t *)"text/plain";
  h[0].value.len = 10;
  h[1].name = "x-empty";
  Impulse__InvokeRequest inv = IMPULSE__INVOKE_REQUEST__INIT;
  inv.function = "echo";
  inv.has_payload = 1;
  inv.payload.data = (uint8_t *)"hello";
  inv.payload.len = 5;
  inv.n_headers = 2;
  inv.headers = hp;
  uint8_t buf[256];
  size_t len = impulse__invoke_request__pack(&inv, buf);

  imp_arena_t arena;
  imp_arena_init(&arena, 4096);
  ProtobufCAllocator alloc;
  imp_arena_allocator(&arena, &alloc);
  assert_ptr_equal(alloc.allocator_data, &arena);
  Impulse__InvokeRequest *r = impulse__invoke_request__unpack(&alloc, len, buf);
  assert_non_null(r);
  assert_string_equal(r->function, "echo");
  assert_int_equal(r->payload.len, 5);
  assert_memory_equal(r->payload.data, "hello", 5);
  assert_int_equal(r->n_headers, 2);
  assert_string_equal(r->headers[0]->name, "content-type");
  assert_string_equal(r->headers[1]->name, "x-empty");
  assert_int_equal(block_count(&arena), 1);
  /* A failed unpack frees its pieces through the allocator: harmless. */
  assert_null(impulse__invoke_request__unpack(&alloc, len - 3, buf));
  imp_arena_release(&arena);
}

TEST_MAIN("unit_arena", NULL, NULL,
          cmocka_unit_test(test_empty_until_first_alloc),
          cmocka_unit_test(test_aligned_distinct_pieces),
          cmocka_unit_test(test_blocks_chained_when_full),
          cmocka_unit_test(test_large_piece_behind_head),
          cmocka_unit_test(test_oversized_refused),
          cmocka_unit_test(test_protobuf_allocator))
