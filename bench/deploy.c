/*
 * The server under test as every benchmark program talks to it: an admin
 * connection, and functions deployed with the instances and concurrency
 * of the run. Failures are printed with the program's name.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "core/common.h" /* runtime/: imp_read_file, imp_strerror */

impulse_client_t *bench_connect(const char *prog, const char *addr,
                                const char *token) {
  impulse_client_t *client = NULL;
  if (impulse_client_connect(addr, token, &client) != 0) {
    fprintf(stderr, "%s: connect %s: %s\n", prog, addr,
            client ? impulse_client_error(client) : "no memory");
    impulse_client_close(client);
    return NULL;
  }
  impulse_client_set_timeout(client, BENCH_CALL_TIMEOUT_MS);
  return client;
}

int bench_deploy(const char *prog, impulse_client_t *client, const char *name,
                 const void *artifact, size_t len,
                 const bench_deploy_opts_t *opts) {
  impulse_deploy_opts_t d;
  memset(&d, 0, sizeof d);
  d.concurrency = opts->concurrency;
  d.min_instances = opts->min_instances;
  d.max_instances = opts->max_instances;
  d.has_min = d.has_max = 1;
  uint32_t version = 0;
  int rc = impulse_deploy(client, name, artifact, len, &d, &version);
  if (rc != 0)
    fprintf(stderr, "%s: deploy %s: %s: %s\n", prog, name,
            impulse_status_name(rc), impulse_client_error(client));
  return rc == 0 ? 0 : -1;
}

int bench_deploy_file(const char *prog, impulse_client_t *client,
                      const char *name, const char *path,
                      const bench_deploy_opts_t *opts) {
  char *artifact = NULL;
  size_t len = 0;
  int rc = imp_read_file(path, BENCH_MAX_ARTIFACT, &artifact, &len);
  if (rc != 0) {
    fprintf(stderr, "%s: %s: %s\n", prog, path, imp_strerror(rc));
    return -1;
  }
  rc = bench_deploy(prog, client, name, artifact, len, opts);
  free(artifact);
  return rc;
}
