/*
 * Which version an instance of a function with a traffic split loads (pure
 * logic): the one furthest below its share of the instances, and a version
 * with traffic but no instance before any other, so every live version
 * gets an instance first.
 */
#ifndef IMP_TRAFFIC_POLICY_H
#define IMP_TRAFFIC_POLICY_H

/* `n` versions with their weights (percent; 0 = no traffic) and the
 * instances each has now, not counting the one loading; `total` is the
 * instances counted plus that one. Returns the index of the version it
 * should load (0 when no version has a weight). */
unsigned imp_traffic_pick(const unsigned *weight, const unsigned *have,
                          unsigned n, unsigned total);

#endif
