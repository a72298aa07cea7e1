/*
 * Log-linear latency histogram (the idea of HdrHistogram, cut down): values
 * below 128 ns are counted exactly; above, each power of two is split into
 * 64 buckets, so a reported percentile is within 1.6 % of a real sample.
 * Recording is a few instructions and no allocation, which matters when the
 * load generator itself competes for the same two CPUs as the server.
 */
#include <string.h>

#include "bench.h"

static unsigned hist_index(uint64_t v) {
  if (v < HIST_LINEAR) return (unsigned)v;
  unsigned e = 63u - (unsigned)__builtin_clzll(v); /* >= 7 */
  if (e > HIST_MAX_EXP) return HIST_BUCKETS - 1;
  unsigned shift = e - HIST_SUB_BITS;
  unsigned m = (unsigned)(v >> shift); /* in [64, 127] */
  return HIST_LINEAR + (e - (HIST_SUB_BITS + 1)) * HIST_SUB + (m - HIST_SUB);
}

/* Lower bound and width of bucket idx. */
static void hist_bucket(unsigned idx, uint64_t *lo, uint64_t *width) {
  if (idx < HIST_LINEAR) {
    *lo = idx;
    *width = 1;
    return;
  }
  unsigned k = idx - HIST_LINEAR;
  unsigned e = HIST_SUB_BITS + 1 + k / HIST_SUB;
  uint64_t m = HIST_SUB + k % HIST_SUB;
  *lo = m << (e - HIST_SUB_BITS);
  *width = (uint64_t)1 << (e - HIST_SUB_BITS);
}

void hist_reset(hist_t *hist) {
  memset(hist, 0, sizeof *hist);
  hist->min = UINT64_MAX;
}

void hist_record(hist_t *hist, uint64_t ns) {
  hist->counts[hist_index(ns)]++;
  hist->total++;
  if (ns < hist->min) hist->min = ns;
  if (ns > hist->max) hist->max = ns;
}

uint64_t hist_quantile(const hist_t *hist, double q) {
  if (hist->total == 0) return 0;
  if (q <= 0) return hist->min;
  if (q >= 1) return hist->max;
  /* The rank-th smallest sample, rank counted from 1. */
  uint64_t rank = (uint64_t)(q * (double)hist->total + 0.999999);
  if (rank < 1) rank = 1;
  uint64_t seen = 0;
  for (unsigned i = 0; i < HIST_BUCKETS; i++) {
    seen += hist->counts[i];
    if (seen >= rank) {
      uint64_t lo, width;
      hist_bucket(i, &lo, &width);
      uint64_t v = lo + width / 2;
      if (v < hist->min) v = hist->min;
      if (v > hist->max) v = hist->max;
      return v;
    }
  }
  return hist->max;
}
