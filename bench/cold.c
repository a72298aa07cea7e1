/*
 * Cold starts, measured through the public client library (blocking calls
 * on one connection), the way an application would see them:
 *
 *   (a) deploy a fresh copy of echo under a new name with min 0 instances,
 *       then time from the Deploy answer to the answer of an Invoke sent
 *       right after it;
 *   (b) deploy a fresh copy with min 0, wait for the warm pool to refill,
 *       then time one Invoke: the server must take a generic worker from
 *       the pool, load the function and run it;
 *   floor of (b): an Invoke on an instance that is already warm.
 *
 * Before each run the warm pool is given time to be full again, so that
 * the runs are alike; every fresh function is deleted after its run.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"
#include "support.h"

#define COLD_CALL_TIMEOUT_MS 30000u
#define COLD_POOL_WAIT_MS 5000u
#define WARM_SAMPLES 50u

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static void median_max(double *v, unsigned n, double *median, double *max) {
  if (n == 0) {
    *median = *max = 0;
    return;
  }
  qsort(v, n, sizeof *v, cmp_double);
  *median = n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
  *max = v[n - 1];
}

static double ms_between(uint64_t a, uint64_t b) {
  return (double)(b - a) / 1e6;
}

/* Describe `name`: *ready and *instances from its FunctionInfo. */
static int describe(impulse_client_t *client, const char *name, unsigned *ready,
                    unsigned *instances) {
  Impulse__Envelope *resp = NULL;
  int rc = sup_describe(client, name, &resp);
  if (rc != 0) return rc;
  const Impulse__FunctionInfo *fi = resp->describe_ok->function;
  *ready = fi && fi->has_ready ? fi->ready : 0;
  *instances = fi && fi->has_instances ? fi->instances : 0;
  impulse__envelope__free_unpacked(resp, NULL);
  return 0;
}

/* Generic workers in the warm pool, or a negative status. */
static int warm_pool_size(impulse_client_t *client) {
  Impulse__Envelope *resp = NULL;
  int rc = sup_server_info(client, &resp);
  if (rc != 0) return rc;
  int n = resp->server_info_ok->has_warm_pool
              ? (int)resp->server_info_ok->warm_pool
              : 0;
  impulse__envelope__free_unpacked(resp, NULL);
  return n;
}

/* Waits until the pool holds `want` generic workers or timeout_ms passes. */
static int wait_pool(impulse_client_t *client, unsigned want,
                     unsigned timeout_ms) {
  uint64_t end = bench_now_ns() + (uint64_t)timeout_ms * 1000000ull;
  for (;;) {
    int n = warm_pool_size(client);
    if (n < 0) return n;
    if ((unsigned)n >= want || bench_now_ns() > end) return n;
    if (bench_sleep_ms(20) != 0) return IMPULSE_S_CONNECTION;
  }
}

int cold_wait_ready(const char *addr, const char *name, unsigned ready,
                    unsigned timeout_ms, char *err, size_t errlen) {
  impulse_client_t *client = NULL;
  int rc = impulse_client_connect(addr, "", &client);
  if (rc != 0) {
    snprintf(err, errlen, "connect: %s",
             client ? impulse_client_error(client) : "no memory");
    impulse_client_close(client);
    return -1;
  }
  impulse_client_set_timeout(client, COLD_CALL_TIMEOUT_MS);
  uint64_t end = bench_now_ns() + (uint64_t)timeout_ms * 1000000ull;
  unsigned r = 0, n = 0;
  for (;;) {
    rc = describe(client, name, &r, &n);
    if (rc != 0) {
      snprintf(err, errlen, "describe %s: %s", name,
               impulse_client_error(client));
      break;
    }
    if (r >= ready) break;
    if (bench_now_ns() > end) {
      snprintf(err, errlen, "%s: %u of %u instances ready after %u ms", name, r,
               ready, timeout_ms);
      rc = -1;
      break;
    }
    if (bench_sleep_ms(20) != 0) {
      snprintf(err, errlen, "interrupted");
      rc = -1;
      break;
    }
  }
  impulse_client_close(client);
  return rc == 0 ? 0 : -1;
}

/* One invoke; 0 when answered OK (the response is checked and freed). */
static int invoke_ok(impulse_client_t *client, const char *name,
                     const void *payload, size_t len, char *err,
                     size_t errlen) {
  impulse_response_t *resp = NULL;
  int rc = impulse_invoke(client, name, payload, len, NULL, &resp);
  if (rc != 0) {
    snprintf(err, errlen, "invoke %s: %s: %s", name, impulse_status_name(rc),
             impulse_client_error(client));
    return -1;
  }
  int st = resp->status;
  if (st != IMPULSE_S_OK || resp->len != len) {
    snprintf(err, errlen, "invoke %s: %s: %s", name, impulse_status_name(st),
             resp->error ? resp->error : "wrong payload size");
    impulse_response_free(resp);
    return -1;
  }
  impulse_response_free(resp);
  return 0;
}

static int deploy_fresh(impulse_client_t *client, const cold_params_t *p,
                        const char *name, char *err, size_t errlen) {
  impulse_deploy_opts_t opts;
  memset(&opts, 0, sizeof opts);
  opts.concurrency = p->concurrency;
  opts.min_instances = 0;
  opts.has_min = 1;
  uint32_t version = 0;
  int rc = impulse_deploy(client, name, p->artifact, p->artifact_len, &opts,
                          &version);
  if (rc != 0) {
    snprintf(err, errlen, "deploy %s: %s: %s", name, impulse_status_name(rc),
             impulse_client_error(client));
    return -1;
  }
  return 0;
}

int cold_run(const cold_params_t *p, const char *warm_function,
             cold_result_t *res, char *err, size_t errlen) {
  memset(res, 0, sizeof *res);
  impulse_client_t *client = NULL;
  double *a = calloc(p->runs + 1, sizeof *a);
  double *dep = calloc(p->runs + 1, sizeof *dep);
  double *b = calloc(p->runs + 1, sizeof *b);
  double warm[WARM_SAMPLES];
  char *payload = malloc(p->payload + 1);
  int rc = -1;
  if (a == NULL || dep == NULL || b == NULL || payload == NULL) {
    snprintf(err, errlen, "out of memory");
    goto out;
  }
  memset(payload, 'c', p->payload);
  if (impulse_client_connect(p->addr, p->token, &client) != 0) {
    snprintf(err, errlen, "connect: %s",
             client ? impulse_client_error(client) : "no memory");
    goto out;
  }
  impulse_client_set_timeout(client, COLD_CALL_TIMEOUT_MS);

  /* Floor of (b): sequential invokes on the warm function. */
  for (unsigned i = 0; i < 5; i++)
    if (invoke_ok(client, warm_function, payload, p->payload, err, errlen) != 0)
      goto out;
  for (unsigned i = 0; i < WARM_SAMPLES; i++) {
    uint64_t t0 = bench_now_ns();
    if (invoke_ok(client, warm_function, payload, p->payload, err, errlen) != 0)
      goto out;
    warm[i] = ms_between(t0, bench_now_ns());
  }
  median_max(warm, WARM_SAMPLES, &res->warm_median_ms, &res->warm_max_ms);

  char name[64];
  /* (a) Deploy OK -> first Invoke answered. */
  for (unsigned i = 0; i < p->runs; i++) {
    if (bench_interrupted) goto interrupted;
    if (wait_pool(client, p->warm_pool, COLD_POOL_WAIT_MS) < 0) goto conn_err;
    snprintf(name, sizeof name, "cold-a-%u", i + 1);
    uint64_t t0 = bench_now_ns();
    if (deploy_fresh(client, p, name, err, errlen) != 0) goto out;
    uint64_t t1 = bench_now_ns();
    if (invoke_ok(client, name, payload, p->payload, err, errlen) != 0)
      goto out;
    uint64_t t2 = bench_now_ns();
    dep[i] = ms_between(t0, t1);
    a[i] = ms_between(t1, t2);
    if (impulse_delete(client, name) != 0) goto conn_err;
  }
  /* (b) Invoke with zero instances and the pool present. */
  for (unsigned i = 0; i < p->runs; i++) {
    if (bench_interrupted) goto interrupted;
    if (wait_pool(client, p->warm_pool, COLD_POOL_WAIT_MS) < 0) goto conn_err;
    snprintf(name, sizeof name, "cold-b-%u", i + 1);
    if (deploy_fresh(client, p, name, err, errlen) != 0) goto out;
    if (bench_sleep_ms(p->pool_wait_ms) != 0) goto interrupted;
    unsigned ready = 0, inst = 0;
    if (describe(client, name, &ready, &inst) != 0) goto conn_err;
    if (inst > 0) res->b_had_instances++;
    int pool = warm_pool_size(client);
    if (pool < 0) goto conn_err;
    if (pool > 0) res->b_pool_ready++;
    uint64_t t0 = bench_now_ns();
    if (invoke_ok(client, name, payload, p->payload, err, errlen) != 0)
      goto out;
    b[i] = ms_between(t0, bench_now_ns());
    if (impulse_delete(client, name) != 0) goto conn_err;
    res->runs_done = i + 1;
  }
  median_max(a, p->runs, &res->a_median_ms, &res->a_max_ms);
  median_max(dep, p->runs, &res->deploy_median_ms, &res->deploy_max_ms);
  median_max(b, p->runs, &res->b_median_ms, &res->b_max_ms);
  rc = 0;
  goto out;
conn_err:
  snprintf(err, errlen, "%s", impulse_client_error(client));
  goto out;
interrupted:
  snprintf(err, errlen, "interrupted");
out:
  impulse_client_close(client);
  free(a);
  free(dep);
  free(b);
  free(payload);
  return rc;
}
