/*
 * `impulse sim`: a per-minute invocation trace (Azure Functions 2019
 * format) and the mean durations of its functions, loaded from files
 * checked line by line against the limits below.
 */
#ifndef IMP_SIM_TRACE_H
#define IMP_SIM_TRACE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define IMP_SIM_MINUTES 1440            /* one day per trace row */
#define IMP_SIM_MAX_LINE (1u << 20)     /* bytes of one trace line */
#define IMP_SIM_MAX_NAME 128            /* bytes of a hash column */
#define IMP_SIM_MAX_PER_MINUTE 1000000u /* invocations of one function/min */
#define IMP_SIM_MAX_FUNCTIONS 20000u
#define IMP_SIM_MAX_DURATION_MS 864e5 /* mean duration: one day */

/* One function of the trace. */
typedef struct imp_sim_fn_s {
  char hash[IMP_SIM_MAX_NAME + 1];  /* HashFunction */
  uint32_t counts[IMP_SIM_MINUTES]; /* invocations per minute */
  uint64_t total;                   /* sum of counts */
  double duration_ms;               /* mean handler duration */
  int has_duration;                 /* 0: the default duration is used */
} imp_sim_fn_t;

/* A loaded trace: owned array of functions, freed by imp_sim_trace_free(). */
typedef struct imp_sim_trace_s {
  imp_sim_fn_t *fn;
  size_t count;
  size_t cap;
} imp_sim_trace_t;

/*
 * Loads an invocation trace: an optional header line starting with
 * "HashFunction", then rows of HashFunction,HashOwner,HashApp and 1440
 * per-minute counts. At most `limit` functions are kept (0 = all). Returns
 * 0, or a negative errno with a message naming the line in `err`.
 */
int imp_sim_trace_load(imp_sim_trace_t *tr, const char *path, size_t limit,
                       char *err, size_t errlen);

/* The same from an open stream (not closed); `path` names it in errors. */
int imp_sim_trace_read(imp_sim_trace_t *tr, FILE *f, const char *path,
                       size_t limit, char *err, size_t errlen);

/*
 * Sets each function's duration from an Azure durations file (columns named
 * by its header; HashFunction and Average in ms are used), the others get
 * `default_ms`. Returns 0 or a negative errno with a message in `err`;
 * `*matched` (may be NULL) gets the number of functions found.
 */
int imp_sim_durations_load(imp_sim_trace_t *tr, const char *path,
                           double default_ms, size_t *matched, char *err,
                           size_t errlen);

/* The same from an open stream (not closed); `path` names it in errors. */
int imp_sim_durations_read(imp_sim_trace_t *tr, FILE *f, const char *path,
                           double default_ms, size_t *matched, char *err,
                           size_t errlen);

/* Sets every function without a duration to `default_ms`. */
void imp_sim_durations_default(imp_sim_trace_t *tr, double default_ms);

/* Releases the functions. */
void imp_sim_trace_free(imp_sim_trace_t *tr);

#endif
