/*
 * Integration test harness, load: callers that invoke one function in a
 * loop, each on a connection of its own in a thread of its own, counting
 * what answered, while the test looks at the server (scaling, an
 * upgrade), and an echo stream that goes on across faults and restarts.
 * The callers make no cmocka call (cmocka is not thread-safe): the test
 * checks the counters once they are stopped.
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

/* An echo stream: one caller in a thread of its own that invokes the
 * function "echo" with "PREFIX N" (N = 0, 1, ...) in a loop, `pause_ms`
 * apart, and checks that each answer is its payload. It connects again
 * (20 ms later) whenever it could not connect or lost its connection, so
 * it outlives a restart of the server. */
typedef struct it_stream_s {
  /* The server's address, copied at start: the caller's thread rewrites
   * the server's own while it restarts (the same port when free). */
  char addr[sizeof(((it_server_t *)0)->addr)];
  const char *prefix;
  unsigned timeout_ms; /* of each call */
  unsigned pause_ms;
  atomic_int stop;
  atomic_ulong ok;       /* the right answer */
  atomic_ulong refused;  /* could not connect, or the connection was lost */
  atomic_ulong wrong;    /* any other failure, or a wrong answer */
  char first_error[512]; /* the first refused or wrong call: read it after
                            it_stream_stop() */
  pthread_t thread;
  int started;
} it_stream_t;

/* Starts the stream on the address of `server` (borrowed for the call),
 * with `prefix` (borrowed until it_stream_stop()). Returns 0, or -1 when
 * the thread could not start. */
int it_stream_start(it_stream_t *stream, const it_server_t *server,
                    const char *prefix, unsigned timeout_ms, unsigned pause_ms);

/* Stops the stream and waits for it; harmless when it is not running. */
void it_stream_stop(it_stream_t *stream);

#endif
