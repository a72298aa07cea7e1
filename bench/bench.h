/*
 * impulse-bench: private declarations shared by the files of the benchmark
 * program. Nothing here is installed or used outside bench/.
 *
 *   hist.c     log-linear latency histogram
 *   floor.c    the raw libuv echo server (the floor), run in a child process
 *   procs.c    temp dir, children (floor, `impulse serve`), cleanup, signals
 *   loadgen.c  libuv load generator: closed loop and open loop
 *   cold.c     cold-start measurements through the client library
 *   deploy.c   the admin connection, functions deployed for a run
 *   args.c     command-line options
 *   main.c     flags, the sequence of phases, the report
 */
#ifndef IMP_BENCH_H
#define IMP_BENCH_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "impulse/client.h"

/* Largest frame the load generator or the floor accepts from a peer. */
#define BENCH_MAX_FRAME (1u << 20)
/* Largest function object a benchmark deploys. */
#define BENCH_MAX_ARTIFACT (64u << 20)
/* Per-call timeout of the benchmarks' control connections. */
#define BENCH_CALL_TIMEOUT_MS 30000u

/* ---- hist.c ------------------------------------------------------------ */

/* Log-linear histogram of nanosecond values: exact below 128 ns, then 64
 * buckets per power of two (relative error under 1.6 %), up to 2^40 ns. */
#define HIST_SUB_BITS 6
#define HIST_SUB (1u << HIST_SUB_BITS)
#define HIST_LINEAR (2u * HIST_SUB)
#define HIST_MAX_EXP 40
#define HIST_BUCKETS (HIST_LINEAR + (HIST_MAX_EXP - HIST_SUB_BITS) * HIST_SUB)

typedef struct hist_s {
  uint64_t counts[HIST_BUCKETS];
  uint64_t total;
  uint64_t min, max;
} hist_t;

void hist_reset(hist_t *hist);
void hist_record(hist_t *hist, uint64_t ns);
/* Value at quantile q (0..1) in ns: the middle of its bucket, clamped to the
 * exact min and max seen. 0 when empty. */
uint64_t hist_quantile(const hist_t *hist, double q);

/* ---- procs.c ----------------------------------------------------------- */

/* Set by SIGINT/SIGTERM/SIGHUP; every wait in the program checks it. */
extern volatile sig_atomic_t bench_interrupted;

/* Creates the temp dir and installs the signal handlers. Returns 0 or -1
 * (message printed). The dir path is borrowed from procs.c. */
int bench_procs_init(void);
const char *bench_tmpdir(void);
/* Kills the children (impulse gracefully first, then its whole process
 * group), reaps them, removes the temp dir. Safe to call more than once. */
void bench_procs_cleanup(void);

/* Forks the floor echo server; *port gets its port. 0 or -1. */
int bench_floor_start(int *port);

/* Forks a child running child_main(report_fd), which must write its port
 * as a native int to report_fd and never return; it is killed by
 * bench_procs_cleanup() like the floor (one such child at a time). *port
 * gets the port. 0 or -1. */
int bench_child_start(void (*child_main)(int report_fd), int *port);

/* The --http flag the next bench_impulse_start() passes ("off" unless set;
 * borrowed, must stay valid). */
void bench_impulse_set_http(const char *addr);

/* Starts `impulse serve` on a free port with a state dir under the temp
 * dir and waits (at most ready_timeout_ms) for its ready file. *port gets
 * the port, token (>= 65 bytes) the admin token. 0 or -1. */
int bench_impulse_start(const char *impulse_bin, unsigned warm_pool,
                        unsigned ready_timeout_ms, int *port, char *token,
                        size_t token_len);

/* Non-zero while the child started by bench_impulse_start() runs. */
int bench_impulse_alive(void);

/* Sleeps ms milliseconds unless interrupted; returns -1 when interrupted. */
int bench_sleep_ms(unsigned ms);

/* Monotonic clock in ns. */
uint64_t bench_now_ns(void);

/* ---- floor.c ----------------------------------------------------------- */

/* Runs the echo server on 127.0.0.1:0 in the calling (child) process,
 * writes its port as a native int to report_fd, then serves until killed.
 * Does not return. */
void bench_floor_main(int report_fd) __attribute__((noreturn));

/* ---- loadgen.c --------------------------------------------------------- */

typedef enum target_kind_e {
  TARGET_FLOOR = 0,
  TARGET_IMPULSE = 1
} target_kind_t;

typedef struct lg_params_s {
  target_kind_t kind;   /* decides which reply body is expected */
  int port;             /* on 127.0.0.1 */
  const char *function; /* function name put in every Invoke */
  size_t payload;       /* payload bytes per request */
  unsigned connections;
  unsigned pipeline; /* closed loop: requests in flight per connection */
  double rate; /* open loop: requests/s over all connections; 0 = closed loop */
  unsigned warmup_ms;
  unsigned duration_ms;
} lg_params_t;

typedef struct lg_result_s {
  double seconds;    /* measured window */
  uint64_t ok;       /* answers received in the window */
  uint64_t sent;     /* requests sent in the window */
  uint64_t errors;   /* Error answers (any time) */
  uint64_t bad;      /* undecodable or unexpected answers */
  uint64_t skipped;  /* open loop: not sent, no free slot */
  double throughput; /* ok / seconds */
  double sent_rate;  /* sent / seconds */
  uint64_t p50_ns, p99_ns, p999_ns, max_ns;
  uint64_t max_tick_gap_ns; /* open loop: largest gap between sender ticks */
  char first_error[200];    /* first Error answer, for the report */
} lg_result_t;

/* Runs one load phase on its own uv loop. Returns 0 with *res filled, or
 * -1 with a message in err (connection failures, interruption). */
int lg_run(const lg_params_t *params, lg_result_t *res, char *err,
           size_t errlen);

/* ---- cold.c ------------------------------------------------------------ */

typedef struct cold_params_s {
  const char *addr; /* "127.0.0.1:PORT" */
  const char *token;
  const void *artifact; /* echo.so bytes */
  size_t artifact_len;
  unsigned runs;
  unsigned concurrency;  /* of the fresh copies */
  unsigned warm_pool;    /* the server's --warm-pool */
  unsigned pool_wait_ms; /* (b): wait after deploy for the pool to refill */
  size_t payload;
} cold_params_t;

typedef struct cold_result_s {
  /* (a) Deploy OK -> first Invoke answered, fresh function, min 0. */
  double a_median_ms, a_max_ms;
  double deploy_median_ms, deploy_max_ms; /* the Deploy call itself */
  /* (b) Invoke on a function with zero instances, warm pool present. */
  double b_median_ms, b_max_ms;
  unsigned b_pool_ready;    /* runs where the pool held a generic worker */
  unsigned b_had_instances; /* runs where the function was not at 0 instances */
  /* Floor of (b): a plain Invoke on a warm instance of `warm_function`. */
  double warm_median_ms, warm_max_ms;
  unsigned runs_done;
} cold_result_t;

/* Measures cold starts against a running server whose `warm_function` is
 * deployed and warm. Returns 0, or -1 with a message in err. */
int cold_run(const cold_params_t *params, const char *warm_function,
             cold_result_t *res, char *err, size_t errlen);

/* Waits (at most timeout_ms) until `name` has at least `ready` ready
 * instances. 0, or -1 with a message in err. */
int cold_wait_ready(const char *addr, const char *name, unsigned ready,
                    unsigned timeout_ms, char *err, size_t errlen);

/* ---- deploy.c ---------------------------------------------------------- */

/* Connects to `addr` with `token` (the admin token, or "") and a
 * BENCH_CALL_TIMEOUT_MS timeout per call. Returns the client (free with
 * impulse_client_close()), or NULL after printing "PROG: connect ADDR:
 * why". */
impulse_client_t *bench_connect(const char *prog, const char *addr,
                                const char *token);

/* What a benchmark deploys: min and max instances, concurrency. */
typedef struct bench_deploy_opts_s {
  unsigned concurrency;
  unsigned min_instances, max_instances;
} bench_deploy_opts_t;

/* Deploys `len` bytes of `artifact` (borrowed) as `name` on an admin
 * `client` (borrowed). Returns 0, or -1 after printing "PROG: deploy NAME:
 * STATUS: why". */
int bench_deploy(const char *prog, impulse_client_t *client, const char *name,
                 const void *artifact, size_t len,
                 const bench_deploy_opts_t *opts);

/* bench_deploy() of the file at `path` (at most BENCH_MAX_ARTIFACT bytes);
 * -1 after printing "PROG: PATH: why" when it cannot be read. */
int bench_deploy_file(const char *prog, impulse_client_t *client,
                      const char *name, const char *path,
                      const bench_deploy_opts_t *opts);

/* ---- args.c ------------------------------------------------------------ */

/* What an option of a benchmark takes: a whole number (into an unsigned),
 * any number (into a double), a string (a const char *, borrowed from
 * argv), or nothing (a flag: the int is set to 1). */
typedef enum bench_opt_kind_e {
  BENCH_OPT_UINT,
  BENCH_OPT_NUM,
  BENCH_OPT_STR,
  BENCH_OPT_FLAG
} bench_opt_kind_t;

/* An option --NAME: its kind, where its value goes (borrowed), and for a
 * number its bounds. */
typedef struct bench_opt_s {
  const char *name;
  bench_opt_kind_t kind;
  void *out;
  double min, max;
} bench_opt_t;

/* Parses argv (getopt_long) with the `n` options of `opts` and -h/--help.
 * Returns 0; 1 after usage(stdout) for help; or -1 after saying why: an
 * unknown option (getopt_long's message, then usage(stderr)), a bad value
 * or a stray argument ("PROG: ..."). */
int bench_parse_opts(const char *prog, int argc, char **argv,
                     const bench_opt_t *opts, size_t n, void (*usage)(FILE *f));

#endif
