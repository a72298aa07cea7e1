/*
 * `impulse sim`: the command line. Loads the trace (and durations), replays
 * it under every policy asked for, and prints the summary; optionally the
 * per-function TSV and the SVG plot (sim_report.c).
 */
#include "tools/sim.h"

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/common.h"
#include "tools/sim_report.h"

#define EXIT_FAIL 1
#define EXIT_USAGE 2
#define MAX_COLD_START_MS 600000u
#define MAX_CONCURRENCY 10000u

/* ---- command line -------------------------------------------------------- */

static int parse_u64(const char *s, uint64_t max, uint64_t *out) {
  if (*s == '\0' || strlen(s) > 20) return -EINVAL;
  uint64_t v = 0;
  for (const char *p = s; *p; p++) {
    if (!isdigit((unsigned char)*p)) return -EINVAL;
    if (v > (UINT64_MAX - 9) / 10) return -ERANGE;
    v = v * 10 + (uint64_t)(*p - '0');
  }
  if (v > max) return -ERANGE;
  *out = v;
  return 0;
}

/* Settings that --set KEY=VALUE may change. */
enum { KNOB_AS, KNOB_PRED, KNOB_POOL };
enum { KNOB_DBL, KNOB_U32 };
typedef struct knob_s {
  const char *name;
  int where;
  int type;
  size_t off;
} knob_t;

#define AS_K(n, t, f) \
  { n, KNOB_AS, t, offsetof(imp_as_cfg_t, f) }
#define PRED_K(n, t, f) \
  { n, KNOB_PRED, t, offsetof(imp_pred_cfg_t, f) }
#define POOL_K(n, t, f) \
  { n, KNOB_POOL, t, offsetof(imp_as_pool_cfg_t, f) }
static const knob_t knobs[] = {
    AS_K("target-utilization", KNOB_DBL, target_utilization),
    AS_K("stable-window-s", KNOB_U32, stable_window_s),
    AS_K("panic-window-s", KNOB_U32, panic_window_s),
    AS_K("panic-threshold", KNOB_DBL, panic_threshold),
    AS_K("max-scale-up-rate", KNOB_DBL, max_scale_up_rate),
    AS_K("max-scale-down-rate", KNOB_DBL, max_scale_down_rate),
    AS_K("scale-to-zero-after-s", KNOB_U32, scale_to_zero_after_s),
    AS_K("dense-per-min", KNOB_DBL, dense_per_min),
    AS_K("dense-activity", KNOB_DBL, dense_activity),
    AS_K("cold-cost-s", KNOB_DBL, cold_cost_s),
    PRED_K("alpha", KNOB_DBL, alpha),
    PRED_K("alpha-season", KNOB_DBL, alpha_season),
    PRED_K("beta", KNOB_DBL, beta),
    PRED_K("gamma", KNOB_DBL, gamma),
    PRED_K("phi", KNOB_DBL, phi),
    PRED_K("head", KNOB_DBL, head),
    PRED_K("tail", KNOB_DBL, tail),
    PRED_K("margin", KNOB_DBL, margin),
    PRED_K("min-samples", KNOB_U32, min_samples),
    PRED_K("cv-min", KNOB_DBL, cv_min),
    PRED_K("oob-max", KNOB_DBL, oob_max),
    PRED_K("min-prewarm-min", KNOB_U32, min_prewarm_min),
    PRED_K("fallback-keepalive-s", KNOB_U32, fallback_keepalive_s),
    PRED_K("activity-alpha", KNOB_DBL, activity_alpha),
    PRED_K("hist-cold-cost-s", KNOB_DBL, cold_cost_s),
    POOL_K("pool-refill-s", KNOB_DBL, refill_s),
    POOL_K("pool-headroom", KNOB_DBL, headroom),
    POOL_K("pool-floor", KNOB_U32, floor),
    POOL_K("pool-cap", KNOB_U32, cap),
};

/* Applies "KEY=VALUE" to `opts`. Returns 0 or -EINVAL. */
static int apply_knob(imp_sim_opts_t *opts, const char *arg) {
  const char *eq = strchr(arg, '=');
  if (eq == NULL) return -EINVAL;
  size_t klen = (size_t)(eq - arg);
  for (size_t i = 0; i < IMP_ARRAY_SIZE(knobs); i++) {
    const knob_t *k = &knobs[i];
    if (strlen(k->name) != klen || strncmp(k->name, arg, klen) != 0) continue;
    char *base = k->where == KNOB_AS     ? (char *)&opts->as
                 : k->where == KNOB_PRED ? (char *)&opts->pred
                                         : (char *)&opts->pool;
    const char *val = eq + 1;
    if (k->type == KNOB_U32) {
      uint64_t v;
      if (parse_u64(val, UINT32_MAX, &v) != 0) return -EINVAL;
      uint32_t u = (uint32_t)v;
      memcpy(base + k->off, &u, sizeof u);
    } else {
      char *end;
      errno = 0;
      double d = strtod(val, &end);
      if (end == val || *end != '\0' || errno != 0 || !isfinite(d))
        return -EINVAL;
      memcpy(base + k->off, &d, sizeof d);
    }
    return 0;
  }
  return -EINVAL;
}

static const char usage_text[] =
    "usage: impulse sim --trace FILE [options]\n"
    "\n"
    "Replays a per-minute invocation trace (Azure Functions 2019 format:\n"
    "HashFunction,HashOwner,HashApp,1..1440) in virtual time through the\n"
    "autoscaler and predictor of the server, and reports cold starts and\n"
    "idle instance time per policy.\n"
    "\n"
    "  --trace FILE          invocation counts per function and minute\n"
    "  --policy LIST         comma-separated: fixed:10m (also fixed:Ns,\n"
    "                        fixed:Nh), kpa, hybrid, impulse\n"
    "                        (default fixed:10m,kpa,hybrid,impulse)\n"
    "  --durations FILE      Azure durations file (HashFunction, Average ms);\n"
    "                        other functions run --default-duration-ms\n"
    "  --default-duration-ms N  (default 100)\n"
    "  --concurrency N       calls per instance at once (default 1)\n"
    "  --cold-start-ms N     instance start time (default 1000)\n"
    "  --format table|tsv    output (default table; ratios to fixed:10m)\n"
    "  --plot FILE.svg       arrivals, forecast and instances of one function\n"
    "  --plot-function HASH|INDEX  the function to plot (default the busiest)\n"
    "  --per-function FILE   write each function's figures (TSV) there\n"
    "  --functions N         replay only the first N functions\n"
    "  --spread uniform|even place calls in their minute at seeded random\n"
    "                        times (default) or evenly\n"
    "  --seed N              seed of the uniform spread (default 1)\n"
    "  --set KEY=VALUE       change an autoscaler, predictor or pool setting\n"
    "                        (repeatable; see docs/autoscaling.md for keys)\n"
    "  --quiet               no progress on stderr\n"
    "  -h, --help            show this help\n";

static int usage_error(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));
static int usage_error(const char *fmt, ...) {
  va_list ap;
  fputs("impulse sim: ", stderr);
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputs("\n\n", stderr);
  fputs(usage_text, stderr);
  return EXIT_USAGE;
}

enum {
  OPT_TRACE = 256,
  OPT_POLICY,
  OPT_DURATIONS,
  OPT_DEFAULT_DURATION,
  OPT_CONCURRENCY,
  OPT_COLD,
  OPT_FORMAT,
  OPT_PLOT,
  OPT_PLOT_FN,
  OPT_FUNCTIONS,
  OPT_SPREAD,
  OPT_SEED,
  OPT_QUIET,
  OPT_PER_FN,
  OPT_SET
};

int imp_sim_main(int argc, char **argv) {
  static const struct option longopts[] = {
      {"trace", required_argument, NULL, OPT_TRACE},
      {"policy", required_argument, NULL, OPT_POLICY},
      {"durations", required_argument, NULL, OPT_DURATIONS},
      {"default-duration-ms", required_argument, NULL, OPT_DEFAULT_DURATION},
      {"concurrency", required_argument, NULL, OPT_CONCURRENCY},
      {"cold-start-ms", required_argument, NULL, OPT_COLD},
      {"format", required_argument, NULL, OPT_FORMAT},
      {"plot", required_argument, NULL, OPT_PLOT},
      {"plot-function", required_argument, NULL, OPT_PLOT_FN},
      {"functions", required_argument, NULL, OPT_FUNCTIONS},
      {"spread", required_argument, NULL, OPT_SPREAD},
      {"seed", required_argument, NULL, OPT_SEED},
      {"quiet", no_argument, NULL, OPT_QUIET},
      {"per-function", required_argument, NULL, OPT_PER_FN},
      {"set", required_argument, NULL, OPT_SET},
      {"help", no_argument, NULL, 'h'},
      {NULL, 0, NULL, 0}};
  const char *trace = NULL, *durations = NULL, *plot = NULL, *plot_fn = NULL;
  const char *per_fn = NULL;
  const char *policies = "fixed:10m,kpa,hybrid,impulse";
  int tsv = 0;
  uint64_t v, limit = 0;
  imp_sim_opts_t opts;
  imp_sim_opts_default(&opts);
  opts.progress = 1;

  optind = 0;
  opterr = 0;
  int c;
  while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
    switch (c) {
      case OPT_TRACE: trace = optarg; break;
      case OPT_POLICY: policies = optarg; break;
      case OPT_DURATIONS: durations = optarg; break;
      case OPT_DEFAULT_DURATION:
        if (parse_u64(optarg, (uint64_t)IMP_SIM_MAX_DURATION_MS, &v) != 0 ||
            v == 0)
          return usage_error("--default-duration-ms: 1 to %.0f expected",
                             IMP_SIM_MAX_DURATION_MS);
        opts.default_duration_ms = (double)v;
        break;
      case OPT_CONCURRENCY:
        if (parse_u64(optarg, MAX_CONCURRENCY, &v) != 0 || v == 0)
          return usage_error("--concurrency: 1 to %u expected",
                             MAX_CONCURRENCY);
        opts.concurrency = (uint32_t)v;
        break;
      case OPT_COLD:
        if (parse_u64(optarg, MAX_COLD_START_MS, &v) != 0)
          return usage_error("--cold-start-ms: 0 to %u expected",
                             MAX_COLD_START_MS);
        opts.cold_start_ms = (uint32_t)v;
        break;
      case OPT_FORMAT:
        if (strcmp(optarg, "tsv") == 0)
          tsv = 1;
        else if (strcmp(optarg, "table") == 0)
          tsv = 0;
        else
          return usage_error("--format: table or tsv expected");
        break;
      case OPT_PLOT: plot = optarg; break;
      case OPT_PLOT_FN: plot_fn = optarg; break;
      case OPT_FUNCTIONS:
        if (parse_u64(optarg, IMP_SIM_MAX_FUNCTIONS, &limit) != 0 || limit == 0)
          return usage_error("--functions: 1 to %u expected",
                             IMP_SIM_MAX_FUNCTIONS);
        break;
      case OPT_SPREAD:
        if (strcmp(optarg, "uniform") == 0)
          opts.spread = IMP_SIM_SPREAD_UNIFORM;
        else if (strcmp(optarg, "even") == 0)
          opts.spread = IMP_SIM_SPREAD_EVEN;
        else
          return usage_error("--spread: uniform or even expected");
        break;
      case OPT_SEED:
        if (parse_u64(optarg, UINT64_MAX, &opts.seed) != 0)
          return usage_error("--seed: a number expected");
        break;
      case OPT_QUIET: opts.progress = 0; break;
      case OPT_PER_FN: per_fn = optarg; break;
      case OPT_SET:
        if (apply_knob(&opts, optarg) != 0)
          return usage_error("--set: unknown key or bad value in '%s'", optarg);
        break;
      case 'h': fputs(usage_text, stdout); return 0;
      default:
        return usage_error("unknown or incomplete option '%s'",
                           argv[optind - 1]);
    }
  }
  if (optind < argc)
    return usage_error("unexpected argument '%s'", argv[optind]);
  if (trace == NULL) return usage_error("--trace FILE is required");
  {
    imp_as_cfg_t check = opts.as;
    check.target_concurrency = opts.concurrency;
    check.cold_start_ms = opts.cold_start_ms;
    imp_as_pool_t pool;
    if (imp_as_cfg_check(&check) != 0 || imp_pred_cfg_check(&opts.pred) != 0 ||
        imp_as_pool_init(&pool, &opts.pool) != 0)
      return usage_error("--set: the settings are out of range");
  }

  /* Policies, plus fixed:10m as the baseline of the ratios. */
  imp_sim_policy_t pols[IMP_SIM_MAX_POLICIES + 1];
  size_t npol = 0;
  char list[512];
  if (strlen(policies) >= sizeof list) return usage_error("--policy: too long");
  snprintf(list, sizeof list, "%s", policies);
  for (char *save = NULL, *tok = strtok_r(list, ",", &save); tok != NULL;
       tok = strtok_r(NULL, ",", &save)) {
    if (npol == IMP_SIM_MAX_POLICIES)
      return usage_error("--policy: at most %d policies", IMP_SIM_MAX_POLICIES);
    if (imp_sim_policy_parse(tok, &pols[npol]) != 0)
      return usage_error("--policy: unknown policy '%s'", tok);
    npol++;
  }
  if (npol == 0) return usage_error("--policy: no policy given");
  size_t base = SIZE_MAX;
  for (size_t i = 0; i < npol; i++)
    if (pols[i].kind == IMP_SIM_FIXED && pols[i].keepalive_ms == 600000)
      base = i;
  int hidden_base = 0;
  if (base == SIZE_MAX && !tsv) {
    imp_sim_policy_parse("fixed:10m", &pols[npol]);
    base = npol++;
    hidden_base = 1;
  }

  char err[512];
  imp_sim_trace_t tr;
  int rc = imp_sim_trace_load(&tr, trace, (size_t)limit, err, sizeof err);
  if (rc != 0) {
    fprintf(stderr, "impulse sim: %s\n", err);
    return EXIT_FAIL;
  }
  int status = 0;
  imp_sim_result_t res[IMP_SIM_MAX_POLICIES + 1];
  size_t nres = 0;
  if (durations != NULL) {
    size_t matched = 0;
    rc = imp_sim_durations_load(&tr, durations, opts.default_duration_ms,
                                &matched, err, sizeof err);
    if (rc != 0) {
      fprintf(stderr, "impulse sim: %s\n", err);
      status = EXIT_FAIL;
      goto out;
    }
    if (opts.progress)
      fprintf(stderr,
              "sim: durations for %zu of %zu functions, %.0f ms for the rest\n",
              matched, tr.count, opts.default_duration_ms);
  } else {
    imp_sim_durations_default(&tr, opts.default_duration_ms);
    if (opts.progress)
      fprintf(stderr, "sim: no --durations: every call runs %.0f ms\n",
              opts.default_duration_ms);
  }

  /* The function to plot: an index, a hash (or a unique prefix of one), or
   * by default the busiest. */
  if (plot != NULL) {
    size_t busiest = 0;
    for (size_t i = 1; i < tr.count; i++)
      if (tr.fn[i].total > tr.fn[busiest].total) busiest = i;
    opts.plot_fn = (long)busiest;
    if (plot_fn != NULL) {
      long found = -1;
      if (parse_u64(plot_fn, tr.count - 1, &v) == 0) {
        found = (long)v;
      } else {
        size_t plen = strlen(plot_fn);
        for (size_t i = 0; i < tr.count; i++) {
          if (strncmp(tr.fn[i].hash, plot_fn, plen) != 0) continue;
          if (found >= 0 && strcmp(tr.fn[found].hash, tr.fn[i].hash) != 0) {
            fprintf(stderr, "impulse sim: --plot-function '%s' is ambiguous\n",
                    plot_fn);
            status = EXIT_USAGE;
            goto out;
          }
          if (found < 0) found = (long)i;
        }
      }
      if (found < 0) {
        fprintf(stderr, "impulse sim: --plot-function '%s': no such function\n",
                plot_fn);
        status = EXIT_USAGE;
        goto out;
      }
      opts.plot_fn = found;
    }
  }

  uint64_t total = 0;
  for (size_t i = 0; i < tr.count; i++) total += tr.fn[i].total;
  if (opts.progress)
    fprintf(stderr, "sim: %zu functions, %llu invocations, %zu policies\n",
            tr.count, (unsigned long long)total, npol);
  double t0 = imp_sim_mono_s();
  for (size_t k = 0; k < npol; k++) {
    rc = imp_sim_run(&tr, &pols[k], &opts, &res[nres]);
    if (rc != 0) {
      fprintf(stderr, "impulse sim: %s: %s\n", pols[k].name, strerror(-rc));
      status = EXIT_FAIL;
      goto out;
    }
    nres++;
  }
  if (opts.progress)
    fprintf(stderr, "sim: done in %.1f s\n", imp_sim_mono_s() - t0);

  size_t shown = hidden_base ? nres - 1 : nres;
  const imp_sim_result_t *b = base != SIZE_MAX ? &res[base] : NULL;
  if (tsv)
    imp_sim_print_tsv(stdout, res, shown, b);
  else
    imp_sim_print_table(stdout, res, shown, b);
  if (per_fn != NULL &&
      (rc = imp_sim_write_per_function(per_fn, &tr, res, shown)) != 0) {
    fprintf(stderr, "impulse sim: %s: %s\n", per_fn, strerror(-rc));
    status = EXIT_FAIL;
  }
  if (plot != NULL) {
    rc = imp_sim_write_svg(plot, &tr, (size_t)opts.plot_fn, &opts, res, shown);
    if (rc != 0) {
      fprintf(stderr, "impulse sim: %s: %s\n", plot, strerror(-rc));
      status = EXIT_FAIL;
    } else if (opts.progress) {
      fprintf(stderr, "sim: plot of function #%ld written to %s\n",
              opts.plot_fn, plot);
    }
  }
out:
  for (size_t k = 0; k < nres; k++) imp_sim_result_free(&res[k]);
  imp_sim_trace_free(&tr);
  return status;
}
