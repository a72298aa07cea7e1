#include "policy/traffic.h"

unsigned imp_traffic_pick(const unsigned *weight, const unsigned *have,
                          unsigned n, unsigned total) {
  int best = -1;
  double best_gap = 0;
  for (unsigned e = 0; e < n; e++) {
    if (weight[e] == 0) continue;
    double gap = total * weight[e] / 100.0 - have[e];
    if (have[e] == 0) gap += total; /* every live version gets one first */
    if (best < 0 || gap > best_gap) {
      best = (int)e;
      best_gap = gap;
    }
  }
  return best < 0 ? 0 : (unsigned)best;
}
