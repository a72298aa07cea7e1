/*
 * Integration test harness, load: callers that invoke one function in a
 * loop, each on a connection of its own in a thread of its own, counting
 * what answered, while the test looks at the server (scaling, an
 * upgrade). The callers make no cmocka call (cmocka is not thread-safe):
 * the test checks the counters after it_load_stop().
 */
#ifndef IT_HARNESS_LOAD_H
#define IT_HARNESS_LOAD_H

#include <pthread.h>
#include <stdatomic.h>

#include "harness.h"

#define IT_LOAD_MAX_CALLERS 64

typedef struct it_load_s it_load_t;

/* One caller: its load, its place (it waits while index >= active), its
 * thread. */
typedef struct it_caller_s {
  it_load_t *load;
  int index;
  pthread_t thread;
} it_caller_t;

struct it_load_s {
  const it_server_t *server;
  const char *function; /* borrowed */
  const char *payload;  /* borrowed, NUL-terminated */
  int callers;
  atomic_int active; /* callers 0..active-1 call; the others wait */
  atomic_int stop;
  atomic_ulong ok;           /* answered with status OK */
  atomic_ulong failed;       /* anything else; said on stderr */
  atomic_uint versions_seen; /* bit v set when version v (< 32) answered */
  it_caller_t caller[IT_LOAD_MAX_CALLERS];
};

/* Starts `callers` callers (at most IT_LOAD_MAX_CALLERS) of `function`
 * with `payload` on `server` (all borrowed until it_load_stop()), the
 * first `active` of them calling; the test may change load->active
 * meanwhile. A caller that cannot connect counts one failure and ends.
 * Returns 0, or -1 after saying why (callers already started are
 * stopped). */
int it_load_start(it_load_t *load, const it_server_t *server,
                  const char *function, const char *payload, int callers,
                  int active);

/* Stops the callers and waits for them. */
void it_load_stop(it_load_t *load);

#endif
