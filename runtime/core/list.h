/*
 * Intrusive doubly linked lists: embed an imp_list_t in the struct, get
 * back to the struct with IMP_CONTAINER_OF. A list is a sentinel node;
 * empty when it points to itself. No allocation, O(1) insert and remove.
 */
#ifndef IMP_LIST_H
#define IMP_LIST_H

#include <stddef.h>

typedef struct imp_list_s {
  struct imp_list_s *next, *prev;
} imp_list_t;

static inline void imp_list_init(imp_list_t *head) {
  head->next = head->prev = head;
}

static inline int imp_list_empty(const imp_list_t *head) {
  return head->next == head;
}

/* Inserts `node` before `at` (at the tail when `at` is the head). */
static inline void imp_list_insert_before(imp_list_t *at, imp_list_t *node) {
  node->next = at;
  node->prev = at->prev;
  at->prev->next = node;
  at->prev = node;
}

static inline void imp_list_push_back(imp_list_t *head, imp_list_t *node) {
  imp_list_insert_before(head, node);
}

/* Unlinks `node` and leaves it pointing to itself (removing it twice is
 * harmless). */
static inline void imp_list_remove(imp_list_t *node) {
  node->prev->next = node->next;
  node->next->prev = node->prev;
  node->next = node->prev = node;
}

/* Iterates `pos` (an imp_list_t *) over the list; `pos` may not be
 * removed inside the loop (use IMP_LIST_EACH_SAFE). */
#define IMP_LIST_EACH(pos, head) \
  for ((pos) = (head)->next; (pos) != (head); (pos) = (pos)->next)
/* The same; `pos` may be removed (`tmp` holds the next node). */
#define IMP_LIST_EACH_SAFE(pos, tmp, head)                         \
  for ((pos) = (head)->next, (tmp) = (pos)->next; (pos) != (head); \
       (pos) = (tmp), (tmp) = (pos)->next)

#endif
