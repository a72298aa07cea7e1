/*
 * `impulse sim`: the reports of a replay. The summary as a table or TSV,
 * one TSV line per policy and function, and an SVG plot of one function's
 * day.
 */
#ifndef IMP_SIM_REPORT_H
#define IMP_SIM_REPORT_H

#include <stddef.h>
#include <stdio.h>

#include "tools/sim_replay.h"
#include "tools/sim_trace.h"

/* The summary of `n` results, one line per policy, against `base` (the
 * fixed:10m result, or NULL): as tab-separated values with a header line,
 * or as an aligned table. */
void imp_sim_print_tsv(FILE *out, const imp_sim_result_t *res, size_t n,
                       const imp_sim_result_t *base);
void imp_sim_print_table(FILE *out, const imp_sim_result_t *res, size_t n,
                         const imp_sim_result_t *base);

/* Writes forecast vs actual arrivals and each policy's instances over the
 * day for function `fi` as an SVG file. Returns 0 or a negative errno. */
int imp_sim_write_svg(const char *path, const imp_sim_trace_t *tr, size_t fi,
                      const imp_sim_opts_t *opts, const imp_sim_result_t *res,
                      size_t n);

/* Writes one line per policy and function (tab-separated, with a header
 * line): where the cold starts and the idle time come from. Returns 0 or a
 * negative errno. */
int imp_sim_write_per_function(const char *path, const imp_sim_trace_t *tr,
                               const imp_sim_result_t *res, size_t n);

#endif
