/* impulse: one binary for the server, its workers and the client commands. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "server/serve.h"
#include "tools/kafka_main.h"
#include "tools/sim.h"
#include "worker/worker.h"

int main(int argc, char **argv) {
  if (argc >= 2 && strcmp(argv[1], "serve") == 0)
    return imp_serve_main(argc - 1, argv + 1);
  if (argc >= 2 && strcmp(argv[1], "worker") == 0)
    return imp_worker_main(argc - 1, argv + 1);
  if (argc >= 2 && strcmp(argv[1], "kafka") == 0)
    return imp_kafka_main(argc - 1, argv + 1);
  if (argc >= 2 && strcmp(argv[1], "sim") == 0)
    return imp_sim_main(argc - 1, argv + 1);
  return imp_cli_main(argc, argv);
}
