/*
 * `impulse sim`: the reports of a replay. The summary as a table or TSV,
 * one TSV line per policy and function, and an SVG plot of one function's
 * day: its arrivals against the forecast, and each policy's instances.
 */
#include "tools/sim_report.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/common.h"

/* ---- output -------------------------------------------------------------- */

static double ratio(double a, double b) {
  return b > 0.0 ? a / b : (a > 0.0 ? INFINITY : 1.0);
}

void imp_sim_print_tsv(FILE *out, const imp_sim_result_t *res, size_t n,
                       const imp_sim_result_t *base) {
  fprintf(out,
          "policy\tinvocations\tcold_starts\tcold_start_frac\t"
          "p75_function_cold_start_frac\twasted_instance_seconds\t"
          "peak_instances\tinstance_starts\talive_instance_seconds\t"
          "cold_starts_vs_fixed10m\twasted_vs_fixed10m\tpool_mean\t"
          "pool_covered_frac\trun_seconds\n");
  for (size_t i = 0; i < n; i++) {
    const imp_sim_result_t *r = &res[i];
    fprintf(out, "%s\t%llu\t%llu\t%.6f\t%.6f\t%.1f\t%u\t%llu\t%.1f\t",
            r->policy.name, (unsigned long long)r->invocations,
            (unsigned long long)r->cold_starts, r->cold_start_frac,
            r->p75_fn_cold_frac, r->wasted_s, r->peak_instances,
            (unsigned long long)r->starts, r->alive_s);
    if (base != NULL)
      fprintf(out, "%.4f\t%.4f\t",
              ratio((double)r->cold_starts, (double)base->cold_starts),
              ratio(r->wasted_s, base->wasted_s));
    else
      fprintf(out, "\t\t");
    fprintf(out, "%.2f\t%.4f\t%.2f\n", r->pool_mean, r->pool_covered_frac,
            r->run_s);
  }
}

void imp_sim_print_table(FILE *out, const imp_sim_result_t *res, size_t n,
                         const imp_sim_result_t *base) {
  fprintf(out, "%-12s %11s %11s %9s %9s %14s %6s", "policy", "invocations",
          "cold_starts", "cold_frac", "p75_fn", "wasted_inst_s", "peak");
  if (base != NULL)
    fprintf(out, "  %10s %10s %10s %10s", "cold/f10m", "p75/f10m", "waste/f10m",
            "peak/f10m");
  fputc('\n', out);
  for (size_t i = 0; i < n; i++) {
    const imp_sim_result_t *r = &res[i];
    fprintf(out, "%-12s %11llu %11llu %9.4f %9.4f %14.0f %6u", r->policy.name,
            (unsigned long long)r->invocations,
            (unsigned long long)r->cold_starts, r->cold_start_frac,
            r->p75_fn_cold_frac, r->wasted_s, r->peak_instances);
    if (base != NULL)
      fprintf(out, "  %10.3f %10.3f %10.3f %10.3f",
              ratio((double)r->cold_starts, (double)base->cold_starts),
              ratio(r->p75_fn_cold_frac, base->p75_fn_cold_frac),
              ratio(r->wasted_s, base->wasted_s),
              ratio(r->peak_instances, base->peak_instances));
    fputc('\n', out);
  }
}

static void svg_text(FILE *f, const char *s) {
  for (; *s; s++) {
    switch (*s) {
      case '<': fputs("&lt;", f); break;
      case '>': fputs("&gt;", f); break;
      case '&': fputs("&amp;", f); break;
      case '"': fputs("&quot;", f); break;
      default:
        if ((unsigned char)*s >= 0x20 && (unsigned char)*s < 0x7f) fputc(*s, f);
    }
  }
}

#define SVG_W 1200
#define SVG_X0 70
#define SVG_X1 1170

static void svg_line(FILE *f, const double *v, double vmax, int y0, int y1,
                     const char *color, double width) {
  fprintf(
      f,
      "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"%.1f\" points=\"",
      color, width);
  for (int m = 0; m < IMP_SIM_MINUTES; m++) {
    double x = SVG_X0 + (double)(SVG_X1 - SVG_X0) * m / (IMP_SIM_MINUTES - 1);
    double y = y1 - (vmax > 0 ? v[m] / vmax : 0.0) * (y1 - y0);
    fprintf(f, "%.1f,%.1f ", x, y);
  }
  fputs("\"/>\n", f);
}

static void svg_axes(FILE *f, int y0, int y1, double vmax, const char *label) {
  fprintf(f,
          "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"none\" "
          "stroke=\"#999\"/>\n",
          SVG_X0, y0, SVG_X1 - SVG_X0, y1 - y0);
  for (int h = 0; h <= 24; h += 3) {
    double x = SVG_X0 + (double)(SVG_X1 - SVG_X0) * h / 24.0;
    fprintf(
        f,
        "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" stroke=\"#ddd\"/>"
        "<text x=\"%.1f\" y=\"%d\" font-size=\"11\" text-anchor=\"middle\">"
        "%02d:00</text>\n",
        x, y0, x, y1, x, y1 + 14, h);
  }
  fprintf(
      f,
      "<text x=\"%d\" y=\"%d\" font-size=\"11\" text-anchor=\"end\">%.0f</text>"
      "<text x=\"%d\" y=\"%d\" font-size=\"11\" text-anchor=\"end\">0</text>"
      "<text x=\"14\" y=\"%d\" font-size=\"12\" transform=\"rotate(-90 14 "
      "%d)\" "
      "text-anchor=\"middle\">%s</text>\n",
      SVG_X0 - 4, y0 + 10, vmax, SVG_X0 - 4, y1, (y0 + y1) / 2, (y0 + y1) / 2,
      label);
}

static const char *palette[] = {"#d62728", "#2ca02c", "#9467bd", "#1f77b4",
                                "#ff7f0e", "#8c564b", "#e377c2", "#17becf"};

int imp_sim_write_svg(const char *path, const imp_sim_trace_t *tr, size_t fi,
                      const imp_sim_opts_t *opts, const imp_sim_result_t *res,
                      size_t n) {
  const imp_sim_fn_t *fn = &tr->fn[fi];
  double actual[IMP_SIM_MINUTES], fc[IMP_SIM_MINUTES], inst[IMP_SIM_MINUTES];
  imp_pred_t *p = malloc(sizeof *p);
  if (p == NULL) return -ENOMEM;
  /* The forecast each minute had when it began (one lead ahead), from the
   * same predictor the impulse policy uses, fed minute by minute. */
  imp_pred_init(p, &opts->pred);
  double amax = 1.0, imax = 1.0;
  for (int m = 0; m < IMP_SIM_MINUTES; m++) {
    int64_t start = (int64_t)m * 60000;
    imp_pred_advance(p, start);
    fc[m] = imp_pred_forecast(p, start + opts->cold_start_ms);
    imp_pred_observe(p, start + 30000, fn->counts[m]);
    actual[m] = fn->counts[m];
    if (actual[m] > amax) amax = actual[m];
    if (fc[m] > amax) amax = fc[m];
  }
  free(p);
  for (size_t k = 0; k < n; k++)
    if (res[k].plot_instances != NULL)
      for (int m = 0; m < IMP_SIM_MINUTES; m++)
        if (res[k].plot_instances[m] > imax) imax = res[k].plot_instances[m];

  FILE *f = fopen(path, "w");
  if (f == NULL) return -errno;
  fprintf(
      f,
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"700\" "
      "font-family=\"sans-serif\">\n<rect width=\"100%%\" height=\"100%%\" "
      "fill=\"white\"/>\n<text x=\"%d\" y=\"22\" font-size=\"14\">function ",
      SVG_W, SVG_X0);
  svg_text(f, fn->hash);
  fprintf(f, " (#%zu): %llu calls, %.0f ms</text>\n", fi,
          (unsigned long long)fn->total, fn->duration_ms);
  svg_axes(f, 40, 320, amax, "arrivals / minute");
  svg_line(f, actual, amax, 40, 320, "#bbb", 2.5);
  svg_line(f, fc, amax, 40, 320, "#1f77b4", 1.2);
  fprintf(f,
          "<text x=\"%d\" y=\"56\" font-size=\"12\" fill=\"#999\">actual</text>"
          "<text x=\"%d\" y=\"72\" font-size=\"12\" fill=\"#1f77b4\">forecast "
          "(Holt-Winters, one cold start ahead)</text>\n",
          SVG_X0 + 8, SVG_X0 + 8);
  svg_axes(f, 370, 650, imax, "instances (max per minute)");
  for (size_t k = 0, shown = 0; k < n; k++) {
    if (res[k].plot_instances == NULL) continue;
    const char *color = palette[shown % IMP_ARRAY_SIZE(palette)];
    for (int m = 0; m < IMP_SIM_MINUTES; m++)
      inst[m] = res[k].plot_instances[m];
    svg_line(f, inst, imax, 370, 650, color, 1.0);
    fprintf(f, "<text x=\"%d\" y=\"%zu\" font-size=\"12\" fill=\"%s\">",
            SVG_X0 + 8, 386 + 16 * shown, color);
    svg_text(f, res[k].policy.name);
    fputs("</text>\n", f);
    shown++;
  }
  fputs("</svg>\n", f);
  if (fclose(f) != 0) return -EIO;
  return 0;
}

int imp_sim_write_per_function(const char *path, const imp_sim_trace_t *tr,
                               const imp_sim_result_t *res, size_t n) {
  FILE *f = fopen(path, "w");
  if (f == NULL) return -errno;
  fprintf(f,
          "policy\tindex\tfunction\tinvocations\tactive_minutes\t"
          "duration_ms\tcold_starts\tcold_starts_from_zero\t"
          "wasted_instance_seconds\tpeak_instances\n");
  for (size_t k = 0; k < n; k++) {
    for (size_t i = 0; i < tr->count; i++) {
      const imp_sim_fn_t *fn = &tr->fn[i];
      unsigned active = 0;
      for (int m = 0; m < IMP_SIM_MINUTES; m++) active += fn->counts[m] > 0;
      fprintf(f, "%s\t%zu\t%s\t%llu\t%u\t%.0f\t%llu\t%llu\t%.1f\t%u\n",
              res[k].policy.name, i, fn->hash, (unsigned long long)fn->total,
              active, fn->duration_ms, (unsigned long long)res[k].fn_cold[i],
              (unsigned long long)res[k].fn_cold_zero[i], res[k].fn_wasted_s[i],
              res[k].fn_peak[i]);
    }
  }
  if (fclose(f) != 0) return -EIO;
  return 0;
}
