/* impulse-worker: the function runtime process on its own (see worker.c). */
#include "worker/worker.h"

int main(int argc, char **argv) {
  return imp_worker_main(argc, argv);
}
