#include "policy/pipeline.h"

int imp_pipe_observe(imp_pipe_t *p, uint64_t us) {
  if (p->win_n == 0 || us < p->win_min_us) p->win_min_us = us;
  if (++p->win_n < IMP_FAST_WINDOW) return 0;
  p->win_n = 0;
  p->least_us = p->win_min_us;
  int fast =
      p->fast ? p->least_us < IMP_FAST_OFF_US : p->least_us < IMP_FAST_ON_US;
  if (fast == p->fast) return 0;
  p->fast = fast;
  return 1;
}

uint32_t imp_pipe_extra(const imp_pipe_t *p, uint32_t concurrency) {
  return p->fast ? IMP_PIPELINE_EXTRA(concurrency) : 0;
}

unsigned imp_pipe_batch(const imp_pipe_t *p) {
  if (!p->fast) return 1;
  uint64_t us = p->least_us ? p->least_us : 1;
  uint64_t n = IMP_BATCH_US / us;
  return n < 1 ? 1 : n > IMP_BATCH_MAX ? IMP_BATCH_MAX : (unsigned)n;
}
