/*
 * Unit tests for runtime/sim.c: replays of tiny generated traces whose
 * cold starts and idle time are worked out by hand, the trace loader on
 * hostile files, and the command line.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "tests/support/test_main.h"
#include "tools/sim.h"

typedef struct fixture_s {
  char dir[64];
  char path[128];
} fixture_t;

static int setup(void **state) {
  fixture_t *fx = calloc(1, sizeof *fx);
  if (fx == NULL) return -1;
  snprintf(fx->dir, sizeof fx->dir, "/tmp/impulse-test-sim-XXXXXX");
  if (mkdtemp(fx->dir) == NULL) return -1;
  snprintf(fx->path, sizeof fx->path, "%s/trace.csv", fx->dir);
  *state = fx;
  return 0;
}

static int teardown(void **state) {
  fixture_t *fx = *state;
  char p[160];
  const char *names[] = {"trace.csv", "dur.csv", "out.tsv", "plot.svg",
                         "err.txt"};
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
    snprintf(p, sizeof p, "%s/%s", fx->dir, names[i]);
    unlink(p);
  }
  rmdir(fx->dir);
  free(fx);
  return 0;
}

/* Writes a row: name, then `counts` (minute index -> calls) for the listed
 * minutes, zeros elsewhere. */
static void row(FILE *f, const char *name, const int *minutes,
                const unsigned *calls, size_t n) {
  fprintf(f, "%s,owner,app", name);
  for (int m = 0; m < IMP_SIM_MINUTES; m++) {
    unsigned c = 0;
    for (size_t i = 0; i < n; i++)
      if (minutes[i] == m) c = calls[i];
    fprintf(f, ",%u", c);
  }
  fputc('\n', f);
}

static void header(FILE *f) {
  fputs("HashFunction,HashOwner,HashApp", f);
  for (int m = 1; m <= IMP_SIM_MINUTES; m++) fprintf(f, ",%d", m);
  fputc('\n', f);
}

/*
 * Three functions, calls evenly spread in their minute (one call: at 30 s;
 * three calls: at 10, 30 and 50 s), 100 ms each, instances starting in 1 s:
 *   f1: one call in minute 1 and one in minute 5;
 *   f2: one call in minute 1 and one in minute 20;
 *   f3: three calls in minute 1.
 */
static void write_small(const char *path) {
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  header(f);
  row(f, "f1", (const int[]){0, 4}, (const unsigned[]){1, 1}, 2);
  row(f, "f2", (const int[]){0, 19}, (const unsigned[]){1, 1}, 2);
  row(f, "f3", (const int[]){0}, (const unsigned[]){3}, 1);
  fclose(f);
}

/* Writes a trace of the one function `name` (calls[i] calls in minute
 * minutes[i]) to `path`, and loads it into *tr. */
static void load_one(imp_sim_trace_t *tr, const char *path, const char *name,
                     const int *minutes, const unsigned *calls, size_t n) {
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  header(f);
  row(f, name, minutes, calls, n);
  fclose(f);
  char err[256];
  assert_int_equal(imp_sim_trace_load(tr, path, 0, err, sizeof err), 0);
}

static void opts_even(imp_sim_opts_t *o) {
  imp_sim_opts_default(o);
  o->spread = IMP_SIM_SPREAD_EVEN;
}

/*
 * fixed:10m by hand (times in ms):
 *  f1: cold at 30000, ready 31000, runs to 31100; warm call at 270000 (idle
 *      238.9 s), done 270100; the instance goes at the first tick 10 min
 *      later, 871000 (idle 600.9 s): 1 cold start, 839.8 s idle.
 *  f2: the same first call, gone at 632000 (idle 600.9 s); the call at
 *      1170000 is cold again, gone at 1772000 (idle 600.9 s): 2 cold
 *      starts, 1201.8 s.
 *  f3: cold at 10000 (runs 11000-11100), warm at 30000 and 50000, gone at
 *      651000: idle 18.9 + 19.9 + 600.9 = 639.7 s, 1 cold start.
 * All three are alive in the second 30-31 s: peak 3.
 */
static void test_fixed_by_hand(void **state) {
  fixture_t *fx = *state;
  write_small(fx->path);
  char err[256];
  imp_sim_trace_t tr;
  assert_int_equal(imp_sim_trace_load(&tr, fx->path, 0, err, sizeof err), 0);
  assert_int_equal(tr.count, 3);
  assert_int_equal(tr.fn[2].total, 3);
  imp_sim_durations_default(&tr, 100.0);
  imp_sim_opts_t o;
  opts_even(&o);
  imp_sim_policy_t pol;
  assert_int_equal(imp_sim_policy_parse("fixed:10m", &pol), 0);
  imp_sim_result_t r;
  assert_int_equal(imp_sim_run(&tr, &pol, &o, &r), 0);
  assert_int_equal(r.invocations, 7);
  assert_int_equal(r.cold_starts, 4);
  assert_int_equal(r.fn_cold[0], 1);
  assert_int_equal(r.fn_cold[1], 2);
  assert_int_equal(r.fn_cold[2], 1);
  assert_true(fabs(r.fn_wasted_s[0] - 839.8) < 1e-6);
  assert_true(fabs(r.fn_wasted_s[1] - 1201.8) < 1e-6);
  assert_true(fabs(r.fn_wasted_s[2] - 639.7) < 1e-6);
  assert_true(fabs(r.wasted_s - 2681.3) < 1e-6);
  assert_int_equal(r.peak_instances, 3);
  assert_int_equal(r.starts, 4);
  assert_true(fabs(r.cold_start_frac - 4.0 / 7.0) < 1e-12);
  /* Per-function fractions 1/2, 2/2, 1/3: the 75th percentile (nearest
   * rank 3 of 3) is 1. */
  assert_true(r.p75_fn_cold_frac == 1.0);
  imp_sim_result_free(&r);

  /* fixed:2m: f1's second call, 4 minutes later, is cold too. */
  assert_int_equal(imp_sim_policy_parse("fixed:2m", &pol), 0);
  assert_int_equal(imp_sim_run(&tr, &pol, &o, &r), 0);
  assert_int_equal(r.fn_cold[0], 2);
  assert_int_equal(r.cold_starts, 5);
  imp_sim_result_free(&r);

  /* kpa: scale to zero 30 s after the last call, so f1 and f2 start cold
   * twice; f3's calls are 20 s apart, within the grace: once. */
  assert_int_equal(imp_sim_policy_parse("kpa", &pol), 0);
  assert_int_equal(imp_sim_run(&tr, &pol, &o, &r), 0);
  assert_int_equal(r.fn_cold[0], 2);
  assert_int_equal(r.fn_cold[1], 2);
  assert_int_equal(r.fn_cold[2], 1);
  imp_sim_result_free(&r);
  imp_sim_trace_free(&tr);
}

/*
 * A timer every 10 minutes all day (144 calls, each at 30 s into its
 * minute): fixed:9m misses every call, fixed:10m keeps the instance (it
 * would go at 600 s after the call ended, 1.1 s after the next call came);
 * the histogram policies learn the period, after which an instance is warm
 * only about a minute and a half of every ten.
 */
static void test_timer_learned(void **state) {
  fixture_t *fx = *state;
  int minutes[144];
  unsigned calls[144];
  for (int i = 0; i < 144; i++) {
    minutes[i] = i * 10;
    calls[i] = 1;
  }
  imp_sim_trace_t tr;
  load_one(&tr, fx->path, "timer", minutes, calls, 144);
  imp_sim_durations_default(&tr, 100.0);
  imp_sim_opts_t o;
  opts_even(&o);
  imp_sim_policy_t pol;
  imp_sim_result_t r;
  assert_int_equal(imp_sim_policy_parse("fixed:9m", &pol), 0);
  assert_int_equal(imp_sim_run(&tr, &pol, &o, &r), 0);
  assert_int_equal(r.cold_starts, 144);
  imp_sim_result_free(&r);
  assert_int_equal(imp_sim_policy_parse("fixed:10m", &pol), 0);
  assert_int_equal(imp_sim_run(&tr, &pol, &o, &r), 0);
  assert_int_equal(r.cold_starts, 1);
  double fixed_waste = r.wasted_s;
  imp_sim_result_free(&r);
  /* hybrid (Shahrad's settings): until the histogram has 4 idle times
   * its fallback keeps 10 minutes from the start of the last active
   * minute, 9.5 minutes after the call: the first 5 calls are cold, then
   * the window 9.5-11.55 min pre-warms. impulse's fallback (15 min) covers
   * the learning: only the first call. */
  const char *names[] = {"hybrid", "impulse"};
  const uint64_t cold[] = {5, 1};
  for (int k = 0; k < 2; k++) {
    assert_int_equal(imp_sim_policy_parse(names[k], &pol), 0);
    assert_int_equal(imp_sim_run(&tr, &pol, &o, &r), 0);
    assert_int_equal(r.cold_starts, cold[k]);
    assert_true(r.wasted_s < 144 * 180.0);
    assert_true(r.wasted_s < fixed_waste / 4);
    imp_sim_result_free(&r);
  }
  imp_sim_trace_free(&tr);
}

/* The same trace and seed give the same figures; another seed moves the
 * calls. */
static void test_deterministic(void **state) {
  fixture_t *fx = *state;
  int minutes[60];
  unsigned calls[60];
  for (int i = 0; i < 60; i++) {
    minutes[i] = i * 3;
    calls[i] = 5 + (unsigned)(i % 7) * 3;
  }
  imp_sim_trace_t tr;
  load_one(&tr, fx->path, "busy", minutes, calls, 60);
  imp_sim_durations_default(&tr, 5000.0);
  imp_sim_opts_t o;
  imp_sim_opts_default(&o);
  imp_sim_policy_t pol;
  assert_int_equal(imp_sim_policy_parse("impulse", &pol), 0);
  imp_sim_result_t a, b;
  assert_int_equal(imp_sim_run(&tr, &pol, &o, &a), 0);
  assert_int_equal(imp_sim_run(&tr, &pol, &o, &b), 0);
  assert_int_equal(a.cold_starts, b.cold_starts);
  assert_true(a.wasted_s == b.wasted_s);
  assert_int_equal(a.peak_instances, b.peak_instances);
  uint64_t total = 0;
  for (int i = 0; i < 60; i++) total += calls[i];
  assert_int_equal(a.invocations, total);
  imp_sim_result_free(&b);
  o.seed = 2;
  assert_int_equal(imp_sim_run(&tr, &pol, &o, &b), 0);
  assert_int_equal(b.invocations, total);
  assert_true(a.wasted_s != b.wasted_s);
  imp_sim_result_free(&a);
  imp_sim_result_free(&b);
  imp_sim_trace_free(&tr);
}

/* Writes `text` as the trace and expects the loader to refuse it with a
 * message containing `want`. */
static void refuse(fixture_t *fx, const char *text, size_t len,
                   const char *want) {
  FILE *f = fopen(fx->path, "w");
  assert_non_null(f);
  fwrite(text, 1, len, f);
  fclose(f);
  char err[512] = "";
  imp_sim_trace_t tr;
  int rc = imp_sim_trace_load(&tr, fx->path, 0, err, sizeof err);
  assert_true(rc < 0);
  if (strstr(err, want) == NULL) fail_msg("'%s' does not say '%s'", err, want);
  assert_null(tr.fn);
}

/* A valid row with one field replaced. */
static char *row_text(const char *name, int bad_col, const char *bad) {
  size_t cap = 16 * IMP_SIM_MINUTES + 256;
  char *s = malloc(cap);
  assert_non_null(s);
  size_t n = (size_t)snprintf(s, cap, "%s,o,a", name);
  for (int m = 0; m < IMP_SIM_MINUTES; m++)
    n += (size_t)snprintf(s + n, cap - n, ",%s", m == bad_col ? bad : "0");
  snprintf(s + n, cap - n, "\n");
  return s;
}

static void test_hostile_trace(void **state) {
  fixture_t *fx = *state;
  char *good = row_text("g", -1, "");
  char *bad, text[64 * 1024];

  /* Not a number, with its line number (the header is line 1). */
  bad = row_text("b", 7, "x7");
  snprintf(text, sizeof text, "HashFunction,HashOwner,HashApp\n%s%s", good,
           bad);
  refuse(fx, text, strlen(text), ":3: field 11: 'x7' is not a count");
  free(bad);
  /* Negative and fractional counts. */
  bad = row_text("b", 0, "-1");
  refuse(fx, bad, strlen(bad), ":1: field 4");
  free(bad);
  bad = row_text("b", 0, "1.5");
  refuse(fx, bad, strlen(bad), "is not a count");
  free(bad);
  /* An absurd count. */
  bad = row_text("b", 3, "2000000");
  snprintf(text, sizeof text, "%s%s", good, bad);
  refuse(fx, text, strlen(text),
         ":2: field 7: 2000000 invocations in a minute");
  free(bad);
  bad = row_text("b", 3, "99999999999999999999");
  refuse(fx, bad, strlen(bad), "is not a count");
  free(bad);
  /* Too few fields, too many. */
  refuse(fx, "f,o,a,1,2,3\n", 12, ":1: expected 1443 fields");
  snprintf(text, sizeof text, "%s", good);
  text[strlen(text) - 1] = '\0';
  strcat(text, ",5\n");
  refuse(fx, text, strlen(text), "found 1444");
  /* An empty name, an overlong one. */
  bad = row_text("", -1, "");
  refuse(fx, bad, strlen(bad), ":1: field 1: a name of 1 to 128 bytes");
  free(bad);
  char longname[300];
  memset(longname, 'h', 200);
  longname[200] = '\0';
  bad = row_text(longname, -1, "");
  refuse(fx, bad, strlen(bad), "a name of 1 to 128 bytes");
  free(bad);
  /* A NUL byte inside a line. */
  snprintf(text, sizeof text, "%s", good);
  size_t glen = strlen(text);
  text[10] = '\0';
  refuse(fx, text, glen, ":1: NUL byte");
  /* No functions at all. */
  refuse(fx, "HashFunction,x\n", 15, "no functions");
  free(good);

  /* A line longer than the limit (1 MiB) is refused, not read whole. */
  FILE *f = fopen(fx->path, "w");
  assert_non_null(f);
  fputs("f,o,a", f);
  for (size_t i = 0; i < (IMP_SIM_MAX_LINE / 2) + 10; i++) fputs(",0", f);
  fputs("\n", f);
  fclose(f);
  char err[512];
  imp_sim_trace_t tr;
  assert_true(imp_sim_trace_load(&tr, fx->path, 0, err, sizeof err) < 0);
  assert_non_null(strstr(err, ":1: line too long"));
  /* A missing file. */
  assert_int_equal(
      imp_sim_trace_load(&tr, "/nonexistent/x.csv", 0, err, sizeof err),
      -ENOENT);
}

static void test_durations(void **state) {
  fixture_t *fx = *state;
  write_small(fx->path);
  char dpath[160], err[256];
  snprintf(dpath, sizeof dpath, "%s/dur.csv", fx->dir);
  FILE *f = fopen(dpath, "w");
  assert_non_null(f);
  fputs("HashOwner,HashApp,HashFunction,Average,Count,Minimum,Maximum\n", f);
  fputs("o,a,f3,250,3,200,300\n", f);
  fputs("o,a,other,10,1,10,10\n", f);
  fputs("o,a,f1,0.2,1,0,1\n", f); /* under 1 ms: 1 ms */
  fclose(f);
  imp_sim_trace_t tr;
  assert_int_equal(imp_sim_trace_load(&tr, fx->path, 0, err, sizeof err), 0);
  size_t matched = 0;
  assert_int_equal(
      imp_sim_durations_load(&tr, dpath, 100.0, &matched, err, sizeof err), 0);
  assert_int_equal(matched, 2);
  assert_true(tr.fn[0].duration_ms == 1.0);
  assert_true(tr.fn[1].duration_ms == 100.0 && !tr.fn[1].has_duration);
  assert_true(tr.fn[2].duration_ms == 250.0);
  imp_sim_trace_free(&tr);
  /* A bad Average names its line; a header without the columns fails. */
  f = fopen(dpath, "w");
  assert_non_null(f);
  fputs("HashFunction,Average\nf1,12\nf2,abc\n", f);
  fclose(f);
  assert_int_equal(imp_sim_trace_load(&tr, fx->path, 0, err, sizeof err), 0);
  assert_true(imp_sim_durations_load(&tr, dpath, 100.0, NULL, err, sizeof err) <
              0);
  assert_non_null(strstr(err, ":3: Average 'abc'"));
  f = fopen(dpath, "w");
  fputs("a,b\n1,2\n", f);
  fclose(f);
  assert_true(imp_sim_durations_load(&tr, dpath, 100.0, NULL, err, sizeof err) <
              0);
  assert_non_null(strstr(err, "HashFunction and Average"));
  imp_sim_trace_free(&tr);
}

static void test_policy_parse(void **state) {
  (void)state;
  imp_sim_policy_t p;
  assert_int_equal(imp_sim_policy_parse("fixed:10m", &p), 0);
  assert_int_equal(p.kind, IMP_SIM_FIXED);
  assert_int_equal(p.keepalive_ms, 600000);
  assert_int_equal(imp_sim_policy_parse("fixed:90s", &p), 0);
  assert_int_equal(p.keepalive_ms, 90000);
  assert_int_equal(imp_sim_policy_parse("fixed:4h", &p), 0);
  assert_int_equal(p.keepalive_ms, 4 * 3600000);
  assert_int_equal(imp_sim_policy_parse("kpa", &p), 0);
  assert_int_equal(p.kind, IMP_SIM_KPA);
  assert_int_equal(imp_sim_policy_parse("hybrid", &p), 0);
  assert_int_equal(imp_sim_policy_parse("impulse", &p), 0);
  assert_int_equal(p.kind, IMP_SIM_IMPULSE);
  const char *bad[] = {
      "fixed:",  "fixed:10",  "fixed:0m", "fixed:10x", "fixed:25h",
      "fixed:m", "fixed:1mm", "KPA",      "",          "fixed:9999999999m"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    assert_int_equal(imp_sim_policy_parse(bad[i], &p), -EINVAL);
}

/* Runs imp_sim_main() with stdout and stderr sent to files. */
static int run_main(fixture_t *fx, char **argv, int argc, char *out,
                    size_t outlen) {
  char opath[160], epath[160];
  snprintf(opath, sizeof opath, "%s/out.tsv", fx->dir);
  snprintf(epath, sizeof epath, "%s/err.txt", fx->dir);
  fflush(stdout);
  fflush(stderr);
  int so = dup(1), se = dup(2);
  int fo = open(opath, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  int fe = open(epath, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  dup2(fo, 1);
  dup2(fe, 2);
  int rc = imp_sim_main(argc, argv);
  fflush(stdout);
  fflush(stderr);
  dup2(so, 1);
  dup2(se, 2);
  close(so);
  close(se);
  close(fo);
  close(fe);
  FILE *f = fopen(opath, "r");
  size_t n = f ? fread(out, 1, outlen - 1, f) : 0;
  out[n] = '\0';
  if (f) fclose(f);
  return rc;
}

static void test_main(void **state) {
  fixture_t *fx = *state;
  write_small(fx->path);
  char svg[160];
  snprintf(svg, sizeof svg, "%s/plot.svg", fx->dir);
  static char out[1 << 16];
  char *argv[] = {
      "sim",      "--trace", fx->path,          "--policy", "fixed:10m,kpa",
      "--format", "tsv",     "--spread",        "even",     "--quiet",
      "--plot",   svg,       "--plot-function", "f2",       NULL};
  assert_int_equal(run_main(fx, argv, 14, out, sizeof out), 0);
  const char *head =
      "policy\tinvocations\tcold_starts\tcold_start_frac\t"
      "p75_function_cold_start_frac\twasted_instance_seconds\tpeak_instances\t";
  assert_memory_equal(out, head, strlen(head));
  assert_non_null(
      strstr(out, "\nfixed:10m\t7\t4\t0.571429\t1.000000\t2681.3\t3\t"));
  assert_non_null(strstr(out, "\nkpa\t7\t"));
  FILE *f = fopen(svg, "r");
  assert_non_null(f);
  char buf[256] = "";
  assert_true(fread(buf, 1, sizeof buf - 1, f) > 0);
  fclose(f);
  assert_non_null(strstr(buf, "<svg"));

  /* The table format adds the ratios to fixed:10m (run as a baseline when
   * not asked for). */
  char *argv2[] = {"sim",     "--trace", fx->path, "--policy",
                   "impulse", "--quiet", NULL};
  assert_int_equal(run_main(fx, argv2, 6, out, sizeof out), 0);
  assert_non_null(strstr(out, "cold/f10m"));
  assert_non_null(strstr(out, "\nimpulse "));
  assert_null(strstr(out, "\nfixed:10m "));

  /* Usage errors: 2; a bad trace: 1. */
  char *bad1[] = {"sim", "--policy", "kpa", NULL};
  assert_int_equal(run_main(fx, bad1, 3, out, sizeof out), 2);
  char *bad2[] = {"sim", "--trace", fx->path, "--policy", "magic", NULL};
  assert_int_equal(run_main(fx, bad2, 5, out, sizeof out), 2);
  char *bad3[] = {"sim", "--trace", fx->path, "--concurrency", "0", NULL};
  assert_int_equal(run_main(fx, bad3, 5, out, sizeof out), 2);
  char *bad4[] = {"sim", "--trace", fx->path, "--set", "margin=2", NULL};
  assert_int_equal(run_main(fx, bad4, 5, out, sizeof out), 2);
  char *bad5[] = {"sim", "--trace", fx->path, "--set", "nosuch=1", NULL};
  assert_int_equal(run_main(fx, bad5, 5, out, sizeof out), 2);
  char *bad6[] = {"sim", "--trace", "/nonexistent.csv", NULL};
  assert_int_equal(run_main(fx, bad6, 3, out, sizeof out), 1);
  char *bad7[] = {"sim", "--trace", fx->path, "--plot", svg, "--plot-function",
                  "zz",  "--quiet", NULL};
  assert_int_equal(run_main(fx, bad7, 8, out, sizeof out), 2);
  char *help[] = {"sim", "--help", NULL};
  assert_int_equal(run_main(fx, help, 2, out, sizeof out), 0);
  assert_non_null(strstr(out, "usage: impulse sim"));
}

TEST_MAIN("unit_sim", NULL, NULL,
          cmocka_unit_test_setup_teardown(test_fixed_by_hand, setup, teardown),
          cmocka_unit_test_setup_teardown(test_timer_learned, setup, teardown),
          cmocka_unit_test_setup_teardown(test_deterministic, setup, teardown),
          cmocka_unit_test_setup_teardown(test_hostile_trace, setup, teardown),
          cmocka_unit_test_setup_teardown(test_durations, setup, teardown),
          cmocka_unit_test(test_policy_parse),
          cmocka_unit_test_setup_teardown(test_main, setup, teardown))
