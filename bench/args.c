/*
 * The command-line options of the benchmark programs; see bench.h.
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "bench.h"

/* A number from opt->min to opt->max (a whole one for BENCH_OPT_UINT)
 * into what opt->out points to; 0, or -1 after saying why. */
static int parse_number(const char *prog, const bench_opt_t *opt,
                        const char *s) {
  char *end;
  errno = 0;
  double v = strtod(s, &end);
  if (errno || end == s || *end || !(v >= opt->min && v <= opt->max)) {
    fprintf(stderr, "%s: --%s must be a number from %.15g to %.15g, not '%s'\n",
            prog, opt->name, opt->min, opt->max, s);
    return -1;
  }
  if (opt->kind == BENCH_OPT_NUM) {
    *(double *)opt->out = v;
    return 0;
  }
  if (v != floor(v)) {
    fprintf(stderr, "%s: --%s must be a whole number, not '%s'\n", prog,
            opt->name, s);
    return -1;
  }
  *(unsigned *)opt->out = (unsigned)v;
  return 0;
}

int bench_parse_opts(const char *prog, int argc, char **argv,
                     const bench_opt_t *opts, size_t n,
                     void (*usage)(FILE *f)) {
  struct option *lopts = calloc(n + 2, sizeof *lopts);
  if (lopts == NULL) {
    fprintf(stderr, "%s: out of memory\n", prog);
    return -1;
  }
  for (size_t i = 0; i < n; i++) {
    lopts[i].name = opts[i].name;
    lopts[i].has_arg =
        opts[i].kind == BENCH_OPT_FLAG ? no_argument : required_argument;
    lopts[i].val = 256 + (int)i;
  }
  lopts[n].name = "help";
  lopts[n].val = 'h';
  int rc = 0, c;
  while (rc == 0 && (c = getopt_long(argc, argv, "h", lopts, NULL)) != -1) {
    if (c == 'h') {
      usage(stdout);
      rc = 1;
      break;
    }
    if (c < 256 || (size_t)(c - 256) >= n) {
      usage(stderr); /* after what getopt_long said */
      rc = -1;
      break;
    }
    const bench_opt_t *opt = &opts[c - 256];
    switch (opt->kind) {
      case BENCH_OPT_STR: *(const char **)opt->out = optarg; break;
      case BENCH_OPT_FLAG: *(int *)opt->out = 1; break;
      default: rc = parse_number(prog, opt, optarg); break;
    }
  }
  free(lopts);
  if (rc == 0 && optind < argc) {
    fprintf(stderr, "%s: unexpected argument '%s'\n", prog, argv[optind]);
    rc = -1;
  }
  return rc;
}
