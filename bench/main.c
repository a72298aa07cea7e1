/*
 * impulse-bench: measures `impulse serve` against the cheapest server that
 * speaks its framing (a raw libuv echo, "the floor") on the same machine in
 * one run, and prints both with their ratio.
 *
 *   1. the floor echo server starts in a child process;
 *   2. `impulse serve` starts in a temp state dir; echo is deployed;
 *   3. closed loop against the floor, then against Impulse;
 *   4. open loop at a fraction (default 50 %) of Impulse's closed-loop peak,
 *      against Impulse, then against the floor at the same absolute rate;
 *   5. cold starts;
 *   6. the report (a table, or --format tsv), then everything is cleaned up.
 *
 * Progress goes to stderr, the report to stdout. Nothing here asserts on a
 * timing: the exit status only says whether the run could be completed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "client/client_internal.h"

#define ECHO_NAME "echo"
#define READY_TIMEOUT_MS 15000u
#define INSTANCES_TIMEOUT_MS 15000u
#define PHASE_PAUSE_MS 300u

typedef struct opts_s {
  const char *impulse;
  const char *functions;
  unsigned connections;
  unsigned pipeline;
  double duration_s;
  double warmup_s;
  unsigned payload;
  unsigned instances;
  unsigned max_instances; /* 0 = same as instances */
  unsigned fn_concurrency;
  unsigned warm_pool;
  double open_fraction;
  double rate;               /* absolute open-loop rate; 0 = fraction of peak */
  unsigned open_connections; /* 0 = same as connections */
  unsigned cold_runs;
  unsigned cold_concurrency;
  unsigned pool_wait_ms;
  int no_open, no_cold;
  int tsv;
} opts_t;

typedef struct report_s {
  lg_result_t closed_floor, closed_impulse;
  int have_open;
  double open_rate;
  lg_result_t open_floor, open_impulse;
  int have_cold;
  cold_result_t cold;
  char date[64];
  char machine[256];
  char loadavg[64]; /* /proc/loadavg at the start: others' load */
} report_t;

/* The help text is laid out as it prints. */
/* clang-format off */
static void usage(FILE *f) {
  fprintf(f,
"Usage: impulse-bench [options]\n"
"\n"
"Starts a raw libuv echo server (the floor) and `impulse serve`, deploys the\n"
"echo function, and measures both: closed-loop throughput and latency, open-\n"
"loop latency at a fixed rate, and Impulse's cold starts. Prints a table\n"
"with the ratio impulse/floor. No figure is checked: this is not a test.\n"
"\n"
"Options:\n"
"  --impulse PATH        impulse binary [build/impulse]\n"
"  --functions DIR       directory holding echo.so [build/functions]\n"
"  --connections N       client connections [16]\n"
"  --pipeline P          closed loop: requests in flight per connection [8]\n"
"  --duration S          measured seconds per phase [5]\n"
"  --warmup S            unmeasured seconds before each phase [1]\n"
"  --payload BYTES       invoke payload size [64]\n"
"  --instances N         echo min instances [2]\n"
"  --max-instances N     echo max instances [same as --instances]\n"
"  --fn-concurrency N    echo per-instance concurrency [1]\n"
"  --warm-pool N         server warm pool [2]\n"
"  --open-fraction F     open-loop rate as a fraction of Impulse's peak [0.5]\n"
"  --rate R              open-loop rate in requests/s (overrides the fraction)\n"
"  --open-connections N  connections for the open loop [same as --connections]\n"
"  --cold-runs N         cold-start repetitions of (a) and (b) [10]\n"
"  --cold-concurrency N  concurrency of the cold-start copies of echo [1]\n"
"  --pool-wait-ms MS     (b): wait after deploy for the pool to refill [1500]\n"
"  --no-open             skip the open-loop phase\n"
"  --no-cold             skip the cold-start phase\n"
"  --format table|tsv    report format [table]\n"
"  -h, --help            this text\n");
}
/* clang-format on */

static int parse_args(int argc, char **argv, opts_t *o) {
  const char *format = "table";
  const bench_opt_t opts[] = {
      {"impulse", BENCH_OPT_STR, &o->impulse, 0, 0},
      {"functions", BENCH_OPT_STR, &o->functions, 0, 0},
      {"connections", BENCH_OPT_UINT, &o->connections, 1, 4096},
      {"pipeline", BENCH_OPT_UINT, &o->pipeline, 1, 4096},
      {"duration", BENCH_OPT_NUM, &o->duration_s, 0.1, 3600},
      {"warmup", BENCH_OPT_NUM, &o->warmup_s, 0, 600},
      {"payload", BENCH_OPT_UINT, &o->payload, 0, 512u << 10},
      {"instances", BENCH_OPT_UINT, &o->instances, 1, 64},
      {"max-instances", BENCH_OPT_UINT, &o->max_instances, 1, 64},
      {"fn-concurrency", BENCH_OPT_UINT, &o->fn_concurrency, 1, 1024},
      {"warm-pool", BENCH_OPT_UINT, &o->warm_pool, 0, 64},
      {"open-fraction", BENCH_OPT_NUM, &o->open_fraction, 0.001, 10},
      {"rate", BENCH_OPT_NUM, &o->rate, 1, 1e8},
      {"open-connections", BENCH_OPT_UINT, &o->open_connections, 1, 4096},
      {"cold-runs", BENCH_OPT_UINT, &o->cold_runs, 1, 1000},
      {"cold-concurrency", BENCH_OPT_UINT, &o->cold_concurrency, 1, 1024},
      {"pool-wait-ms", BENCH_OPT_UINT, &o->pool_wait_ms, 0, 60000},
      {"no-open", BENCH_OPT_FLAG, &o->no_open, 0, 0},
      {"no-cold", BENCH_OPT_FLAG, &o->no_cold, 0, 0},
      {"format", BENCH_OPT_STR, &format, 0, 0},
  };
  int rc = bench_parse_opts("impulse-bench", argc, argv, opts,
                            sizeof opts / sizeof opts[0], usage);
  if (rc == 1) exit(0);
  if (rc != 0) return -1;
  if (strcmp(format, "table") == 0) {
    o->tsv = 0;
  } else if (strcmp(format, "tsv") == 0) {
    o->tsv = 1;
  } else {
    fprintf(stderr, "impulse-bench: --format is 'table' or 'tsv'\n");
    return -1;
  }
  if (o->max_instances == 0) o->max_instances = o->instances;
  if (o->max_instances < o->instances) {
    fprintf(stderr, "impulse-bench: --max-instances is below --instances\n");
    return -1;
  }
  if (o->open_connections == 0) o->open_connections = o->connections;
  return 0;
}

static void describe_machine(report_t *r) {
  time_t now = time(NULL);
  struct tm tm;
  gmtime_r(&now, &tm);
  strftime(r->date, sizeof r->date, "%Y-%m-%d %H:%M UTC", &tm);
  char model[160] = "unknown CPU";
  FILE *f = fopen("/proc/cpuinfo", "r");
  if (f) {
    char line[256];
    while (fgets(line, sizeof line, f)) {
      if (strncmp(line, "model name", 10) == 0) {
        char *p = strchr(line, ':');
        if (p) {
          p++;
          while (*p == ' ') p++;
          p[strcspn(p, "\n")] = '\0';
          snprintf(model, sizeof model, "%s", p);
        }
        break;
      }
    }
    fclose(f);
  }
  struct utsname un;
  if (uname(&un) != 0) snprintf(un.release, sizeof un.release, "?");
  snprintf(r->machine, sizeof r->machine, "%ld CPUs, %s, Linux %s",
           sysconf(_SC_NPROCESSORS_ONLN), model, un.release);
  snprintf(r->loadavg, sizeof r->loadavg, "?");
  f = fopen("/proc/loadavg", "r");
  if (f) {
    double l1, l5, l15;
    if (fscanf(f, "%lf %lf %lf", &l1, &l5, &l15) == 3)
      snprintf(r->loadavg, sizeof r->loadavg, "%.2f %.2f %.2f", l1, l5, l15);
    fclose(f);
  }
}

/* Deploys echo with the benchmark's instances and concurrency, then waits
 * until the min instances serve. */
static int deploy_echo(const opts_t *o, const char *addr, const char *token,
                       const void *artifact, size_t len) {
  impulse_client_t *client = bench_connect("impulse-bench", addr, token);
  if (client == NULL) return -1;
  bench_deploy_opts_t d = {.concurrency = o->fn_concurrency,
                           .min_instances = o->instances,
                           .max_instances = o->max_instances};
  int rc = bench_deploy("impulse-bench", client, ECHO_NAME, artifact, len, &d);
  impulse_client_close(client);
  if (rc != 0) return -1;
  char err[256];
  if (cold_wait_ready(addr, ECHO_NAME, o->instances, INSTANCES_TIMEOUT_MS, err,
                      sizeof err) != 0) {
    fprintf(stderr, "impulse-bench: %s\n", err);
    return -1;
  }
  return 0;
}

static int run_phase(const char *what, const lg_params_t *p, lg_result_t *res) {
  char err[256];
  if (p->rate > 0)
    fprintf(stderr,
            "impulse-bench: open loop, %s: %.0f req/s over %u connections, "
            "%u s...\n",
            what, p->rate, p->connections, p->duration_ms / 1000);
  else
    fprintf(stderr,
            "impulse-bench: closed loop, %s: %u connections x %u in flight, "
            "%u s...\n",
            what, p->connections, p->pipeline, p->duration_ms / 1000);
  if (lg_run(p, res, err, sizeof err) != 0) {
    fprintf(stderr, "impulse-bench: %s: %s\n", what, err);
    return -1;
  }
  if (res->errors)
    fprintf(stderr, "impulse-bench: %s: %llu error answers (first: %s)\n", what,
            (unsigned long long)res->errors, res->first_error);
  if (res->bad)
    fprintf(stderr, "impulse-bench: %s: %llu unexpected answers\n", what,
            (unsigned long long)res->bad);
  return 0;
}

static double us(uint64_t ns) {
  return (double)ns / 1000.0;
}

static double ratio(double a, double b) {
  return b > 0 ? a / b : 0;
}

/* A latency row of a table: floor and impulse in us, and their ratio. */
static void latency_row(const char *label, uint64_t floor_ns,
                        uint64_t impulse_ns) {
  printf("%-34s %14.1f %14.1f %13.2fx\n", label, us(floor_ns), us(impulse_ns),
         ratio(us(impulse_ns), us(floor_ns)));
}

/* The latency rows of a table: p50, p99 and p99.9 with the ratio, max. */
static void print_latencies(const lg_result_t *floor, const lg_result_t *imp) {
  latency_row("  latency p50 (us)", floor->p50_ns, imp->p50_ns);
  latency_row("  latency p99 (us)", floor->p99_ns, imp->p99_ns);
  latency_row("  latency p99.9 (us)", floor->p999_ns, imp->p999_ns);
  printf("%-34s %14.1f %14.1f\n", "  latency max (us)", us(floor->max_ns),
         us(imp->max_ns));
}

static void print_table(const opts_t *o, const report_t *r) {
  const lg_result_t *cf = &r->closed_floor, *ci = &r->closed_impulse;
  printf("impulse-bench  %s\n", r->date);
  printf("machine: %s; load average before the run: %s\n", r->machine,
         r->loadavg);
  printf(
      "load: %u connections x %u in flight, %u-byte payload, %.1f s warm-up + "
      "%.1f s measured per phase\n",
      o->connections, o->pipeline, o->payload, o->warmup_s, o->duration_s);
  printf("echo: %u instance(s) (max %u), concurrency %u; warm pool %u\n\n",
         o->instances, o->max_instances, o->fn_concurrency, o->warm_pool);

  printf("%-34s %14s %14s %14s\n", "Closed loop", "floor", "impulse",
         "impulse/floor");
  printf("%-34s %14.0f %14.0f %13.1f%%\n", "  throughput (round trips/s)",
         cf->throughput, ci->throughput,
         100 * ratio(ci->throughput, cf->throughput));
  print_latencies(cf, ci);
  printf("%-34s %14llu %14llu\n", "  error answers",
         (unsigned long long)(cf->errors + cf->bad),
         (unsigned long long)(ci->errors + ci->bad));

  if (r->have_open) {
    const lg_result_t *of = &r->open_floor, *oi = &r->open_impulse;
    char title[80];
    snprintf(title, sizeof title, "Open loop at %.0f req/s", r->open_rate);
    printf("\n%-34s %14s %14s %14s\n", title, "floor", "impulse",
           "impulse/floor");
    if (o->rate <= 0)
      printf("  (%.0f %% of Impulse's closed-loop peak, %u connections)\n",
             100 * o->open_fraction, o->open_connections);
    printf("%-34s %14.0f %14.0f\n", "  answered (req/s)", of->throughput,
           oi->throughput);
    print_latencies(of, oi);
    printf("%-34s %14.2f %14.2f\n", "  sender's largest tick gap (ms)",
           (double)of->max_tick_gap_ns / 1e6,
           (double)oi->max_tick_gap_ns / 1e6);
    printf("%-34s %14llu %14llu\n", "  error answers / not sent",
           (unsigned long long)(of->errors + of->bad + of->skipped),
           (unsigned long long)(oi->errors + oi->bad + oi->skipped));
  }

  if (r->have_cold) {
    const cold_result_t *c = &r->cold;
    printf("\n%-44s %10s %10s\n", "Cold start (ms)", "median", "max");
    printf("%-44s %10.2f %10.2f\n", "  (a) Deploy OK -> first Invoke answered",
           c->a_median_ms, c->a_max_ms);
    printf("%-44s %10.2f %10.2f\n", "  (b) Invoke, 0 instances, warm pool",
           c->b_median_ms, c->b_max_ms);
    printf("%-44s %10.3f %10.3f\n", "  floor of (b): Invoke on a warm instance",
           c->warm_median_ms, c->warm_max_ms);
    printf("%-44s %10.2f %10.2f\n", "  (the Deploy call itself)",
           c->deploy_median_ms, c->deploy_max_ms);
    printf(
        "  %u runs each, fresh copies with concurrency %u; pool had a generic "
        "worker in %u/%u runs of (b)",
        o->cold_runs, o->cold_concurrency, c->b_pool_ready, c->runs_done);
    if (c->b_had_instances)
      printf("; %u runs of (b) found an instance already started",
             c->b_had_instances);
    printf("\n");
  }

  double tr = 100 * ratio(ci->throughput, cf->throughput);
  printf("\nAims (informational, not checked)\n");
  printf("  throughput >= 40 %% of the floor:        %5.1f %%  %s\n", tr,
         tr >= 40 ? "reached" : "NOT reached");
  if (r->have_open) {
    double p99 = us(r->open_impulse.p99_ns) / 1000;
    printf(
        "  p99 < 2 ms at %.0f %% of peak:            %5.2f ms %s\n",
        100 * (o->rate > 0 ? ratio(o->rate, ci->throughput) : o->open_fraction),
        p99, p99 < 2 ? "reached" : "NOT reached");
  }
  if (r->have_cold) {
    const cold_result_t *c = &r->cold;
    printf(
        "  cold start < 5 ms, (a) / (b) median:    %5.2f / %.2f ms %s\n",
        c->a_median_ms, c->b_median_ms,
        c->a_median_ms < 5 && c->b_median_ms < 5 ? "reached" : "NOT reached");
  }
}

static void tsv_row(const char *metric, double floor_v, int has_floor,
                    double impulse_v, const char *unit) {
  printf("%s\t", metric);
  if (has_floor) printf("%.3f", floor_v);
  printf("\t%.3f\t", impulse_v);
  if (has_floor && floor_v > 0) printf("%.4f", impulse_v / floor_v);
  printf("\t%s\n", unit);
}

static void tsv_lg(const char *prefix, const lg_result_t *f,
                   const lg_result_t *i) {
  char m[64];
  snprintf(m, sizeof m, "%s_throughput", prefix);
  tsv_row(m, f->throughput, 1, i->throughput, "rps");
  snprintf(m, sizeof m, "%s_p50", prefix);
  tsv_row(m, us(f->p50_ns), 1, us(i->p50_ns), "us");
  snprintf(m, sizeof m, "%s_p99", prefix);
  tsv_row(m, us(f->p99_ns), 1, us(i->p99_ns), "us");
  snprintf(m, sizeof m, "%s_p999", prefix);
  tsv_row(m, us(f->p999_ns), 1, us(i->p999_ns), "us");
  snprintf(m, sizeof m, "%s_max", prefix);
  tsv_row(m, us(f->max_ns), 1, us(i->max_ns), "us");
  snprintf(m, sizeof m, "%s_errors", prefix);
  tsv_row(m, (double)(f->errors + f->bad + f->skipped), 1,
          (double)(i->errors + i->bad + i->skipped), "count");
}

static void print_tsv(const opts_t *o, const report_t *r) {
  printf("# impulse-bench\tdate=%s\tmachine=%s\tloadavg=%s\n", r->date,
         r->machine, r->loadavg);
  printf(
      "# "
      "connections=%u\tpipeline=%u\tpayload=%u\twarmup_s=%.1f\tduration_s=%.1f"
      "\tinstances=%u\tmax_instances=%u\tfn_concurrency=%u\twarm_pool=%u"
      "\topen_connections=%u\tcold_concurrency=%u\n",
      o->connections, o->pipeline, o->payload, o->warmup_s, o->duration_s,
      o->instances, o->max_instances, o->fn_concurrency, o->warm_pool,
      o->open_connections, o->cold_concurrency);
  printf("metric\tfloor\timpulse\tratio\tunit\n");
  tsv_lg("closed", &r->closed_floor, &r->closed_impulse);
  if (r->have_open) {
    tsv_row("open_rate", r->open_rate, 1, r->open_rate, "rps");
    tsv_lg("open", &r->open_floor, &r->open_impulse);
  }
  if (r->have_cold) {
    const cold_result_t *c = &r->cold;
    tsv_row("cold_a_median", 0, 0, c->a_median_ms, "ms");
    tsv_row("cold_a_max", 0, 0, c->a_max_ms, "ms");
    tsv_row("cold_deploy_median", 0, 0, c->deploy_median_ms, "ms");
    tsv_row("cold_deploy_max", 0, 0, c->deploy_max_ms, "ms");
    tsv_row("cold_b_median", c->warm_median_ms, 1, c->b_median_ms, "ms");
    tsv_row("cold_b_max", c->warm_max_ms, 1, c->b_max_ms, "ms");
  }
}

static int read_artifact(const char *dir, char **data, size_t *len) {
  char path[1024];
  snprintf(path, sizeof path, "%s/echo.so", dir);
  int rc = imp_read_file(path, BENCH_MAX_ARTIFACT, data, len);
  if (rc != 0) {
    fprintf(stderr, "impulse-bench: %s: %s (build the functions first)\n", path,
            imp_strerror(rc));
    return -1;
  }
  return 0;
}

int main(int argc, char **argv) {
  opts_t o = {
      .impulse = "build/impulse",
      .functions = "build/functions",
      .connections = 16,
      .pipeline = 8,
      .duration_s = 5,
      .warmup_s = 1,
      .payload = 64,
      .instances = 2,
      .fn_concurrency = 1,
      .warm_pool = 2,
      .open_fraction = 0.5,
      .cold_runs = 10,
      .cold_concurrency = 1,
      .pool_wait_ms = 1500,
  };
  if (parse_args(argc, argv, &o) != 0) return 2;
  static report_t r; /* large: histograms are not kept, but results are */
  memset(&r, 0, sizeof r);
  describe_machine(&r);

  char *artifact = NULL;
  size_t artifact_len = 0;
  if (read_artifact(o.functions, &artifact, &artifact_len) != 0) return 1;
  int status = 1;
  if (bench_procs_init() != 0) goto out;

  int floor_port = 0, port = 0;
  char token[128], addr[64];
  if (bench_floor_start(&floor_port) != 0) goto out;
  if (bench_impulse_start(o.impulse, o.warm_pool, READY_TIMEOUT_MS, &port,
                          token, sizeof token) != 0)
    goto out;
  snprintf(addr, sizeof addr, "127.0.0.1:%d", port);
  fprintf(stderr,
          "impulse-bench: floor on 127.0.0.1:%d, impulse on %s (state %s)\n",
          floor_port, addr, bench_tmpdir());
  if (deploy_echo(&o, addr, token, artifact, artifact_len) != 0) goto out;

  lg_params_t p;
  memset(&p, 0, sizeof p);
  p.function = ECHO_NAME;
  p.payload = o.payload;
  p.connections = o.connections;
  p.pipeline = o.pipeline;
  p.warmup_ms = (unsigned)(o.warmup_s * 1000);
  p.duration_ms = (unsigned)(o.duration_s * 1000);

  /* 3. Closed loop. */
  p.kind = TARGET_FLOOR;
  p.port = floor_port;
  if (run_phase("floor", &p, &r.closed_floor) != 0) goto out;
  if (bench_sleep_ms(PHASE_PAUSE_MS) != 0) goto out;
  p.kind = TARGET_IMPULSE;
  p.port = port;
  if (run_phase("impulse", &p, &r.closed_impulse) != 0) goto out;
  if (!bench_impulse_alive()) {
    fprintf(stderr,
            "impulse-bench: impulse serve died during the closed loop\n");
    goto out;
  }

  /* 4. Open loop at a fixed rate, the same for both targets. */
  if (!o.no_open) {
    r.open_rate =
        o.rate > 0 ? o.rate : o.open_fraction * r.closed_impulse.throughput;
    if (r.open_rate < 1) {
      fprintf(stderr,
              "impulse-bench: no open-loop phase: Impulse's peak was 0\n");
    } else {
      p.rate = r.open_rate;
      p.connections = o.open_connections;
      if (bench_sleep_ms(PHASE_PAUSE_MS) != 0) goto out;
      if (run_phase("impulse", &p, &r.open_impulse) != 0) goto out;
      if (bench_sleep_ms(PHASE_PAUSE_MS) != 0) goto out;
      p.kind = TARGET_FLOOR;
      p.port = floor_port;
      if (run_phase("floor", &p, &r.open_floor) != 0) goto out;
      r.have_open = 1;
    }
  }

  /* 5. Cold starts. */
  if (!o.no_cold) {
    if (bench_sleep_ms(PHASE_PAUSE_MS) != 0) goto out;
    fprintf(stderr, "impulse-bench: cold starts, %u runs each...\n",
            o.cold_runs);
    cold_params_t cp = {
        .addr = addr,
        .token = token,
        .artifact = artifact,
        .artifact_len = artifact_len,
        .runs = o.cold_runs,
        .concurrency = o.cold_concurrency,
        .warm_pool = o.warm_pool,
        .pool_wait_ms = o.pool_wait_ms,
        .payload = o.payload,
    };
    char err[512];
    if (cold_run(&cp, ECHO_NAME, &r.cold, err, sizeof err) != 0) {
      fprintf(stderr, "impulse-bench: cold start: %s\n", err);
      goto out;
    }
    r.have_cold = 1;
  }

  /* 6. Report. */
  if (o.tsv)
    print_tsv(&o, &r);
  else
    print_table(&o, &r);
  fflush(stdout);
  status = 0;
out:
  bench_procs_cleanup();
  free(artifact);
  if (bench_interrupted) {
    fprintf(stderr, "impulse-bench: interrupted\n");
    return 130;
  }
  return status;
}
