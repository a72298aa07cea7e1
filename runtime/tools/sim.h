/*
 * `impulse sim`: replays a per-minute invocation trace (Azure Functions 2019
 * format) in virtual time through the autoscaler and predictor the server
 * uses, under several keep-alive/scaling policies, and reports cold starts
 * and idle instance time for each.
 *
 * The command line is sim.c. The trace loader (sim_trace.h) and the replay
 * (sim_replay.h) are included here so that tests can run them on small
 * generated traces without going through the command line; the reports are
 * sim_report.h.
 */
#ifndef IMP_SIM_H
#define IMP_SIM_H

#include "tools/sim_replay.h"
#include "tools/sim_trace.h"

#define IMP_SIM_MAX_POLICIES 16

/* Entry point of `impulse sim ...` (argv[0] is "sim"). */
int imp_sim_main(int argc, char **argv);

#endif
