/*
 * `impulse sim`: loading a per-minute invocation trace (Azure Functions
 * 2019 format) and the mean durations of its functions. Input files are
 * checked line by line against the limits of sim.h; an error names the
 * file and the line.
 */
#include "tools/sim_trace.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/common.h"

/* ---- small helpers ------------------------------------------------------- */

static int fail(char *err, size_t errlen, int rc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int fail(char *err, size_t errlen, int rc, const char *fmt, ...) {
  if (err != NULL && errlen > 0) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
  }
  return rc;
}

/*
 * Reads one line into `buf` without its end-of-line. Returns 1, 0 at the
 * end of the file, -E2BIG for a line that does not fit, -EINVAL for a NUL
 * byte, -EIO on a read error.
 */
static int read_line(FILE *f, char *buf, size_t cap, size_t *len) {
  if (fgets(buf, (int)cap, f) == NULL) return ferror(f) ? -EIO : 0;
  size_t n = strlen(buf);
  if (n == 0 || buf[n - 1] != '\n') {
    if (n == cap - 1 && !feof(f)) return -E2BIG;
    if (!feof(f)) return -EINVAL; /* fgets stopped early: a NUL byte */
  } else {
    buf[--n] = '\0';
  }
  if (n > 0 && buf[n - 1] == '\r') buf[--n] = '\0';
  *len = n;
  return 1;
}

static const char *line_error(int rc) {
  switch (rc) {
    case -E2BIG: return "line too long";
    case -EINVAL: return "NUL byte in line";
    default: return "read error";
  }
}

/* ---- trace --------------------------------------------------------------- */

void imp_sim_trace_free(imp_sim_trace_t *tr) {
  free(tr->fn);
  tr->fn = NULL;
  tr->count = tr->cap = 0;
}

/* Parses one data row into `fn`. Returns 0 or -EINVAL with `err` set. */
static int parse_row(char *line, const char *path, size_t lineno,
                     imp_sim_fn_t *fn, char *err, size_t errlen) {
  size_t field = 0;
  char *p = line;
  memset(fn, 0, sizeof *fn);
  for (;;) {
    char *end = strchr(p, ',');
    if (end != NULL) *end = '\0';
    size_t flen = strlen(p);
    if (field < 3) {
      if (flen == 0 || flen > IMP_SIM_MAX_NAME)
        return fail(err, errlen, -EINVAL,
                    "%s:%zu: field %zu: a name of 1 to %d bytes is expected",
                    path, lineno, field + 1, IMP_SIM_MAX_NAME);
      if (field == 0) memcpy(fn->hash, p, flen + 1);
    } else if (field < 3 + IMP_SIM_MINUTES) {
      uint64_t v = 0;
      if (flen == 0 || flen > 10)
        return fail(err, errlen, -EINVAL,
                    "%s:%zu: field %zu: '%.20s' is not a count", path, lineno,
                    field + 1, p);
      for (size_t i = 0; i < flen; i++) {
        if (!isdigit((unsigned char)p[i]))
          return fail(err, errlen, -EINVAL,
                      "%s:%zu: field %zu: '%.20s' is not a count", path, lineno,
                      field + 1, p);
        v = v * 10 + (uint64_t)(p[i] - '0');
      }
      if (v > IMP_SIM_MAX_PER_MINUTE)
        return fail(err, errlen, -ERANGE,
                    "%s:%zu: field %zu: %llu invocations in a minute is above "
                    "the limit of %u",
                    path, lineno, field + 1, (unsigned long long)v,
                    IMP_SIM_MAX_PER_MINUTE);
      fn->counts[field - 3] = (uint32_t)v;
      fn->total += v;
    }
    field++;
    if (end == NULL) break;
    p = end + 1;
  }
  if (field != 3 + IMP_SIM_MINUTES)
    return fail(err, errlen, -EINVAL,
                "%s:%zu: expected %d fields (HashFunction,HashOwner,HashApp "
                "and %d minutes), found %zu",
                path, lineno, 3 + IMP_SIM_MINUTES, IMP_SIM_MINUTES, field);
  return 0;
}

int imp_sim_trace_load(imp_sim_trace_t *tr, const char *path, size_t limit,
                       char *err, size_t errlen) {
  memset(tr, 0, sizeof *tr);
  FILE *f = fopen(path, "r");
  if (f == NULL)
    return fail(err, errlen, -errno, "%s: %s", path, strerror(errno));
  int rc = imp_sim_trace_read(tr, f, path, limit, err, errlen);
  fclose(f);
  return rc;
}

int imp_sim_trace_read(imp_sim_trace_t *tr, FILE *f, const char *path,
                       size_t limit, char *err, size_t errlen) {
  memset(tr, 0, sizeof *tr);
  int rc = 0;
  char *line = malloc(IMP_SIM_MAX_LINE + 2);
  if (line == NULL) {
    rc = fail(err, errlen, -ENOMEM, "out of memory");
    goto out;
  }
  size_t lineno = 0, len;
  for (;;) {
    int r = read_line(f, line, IMP_SIM_MAX_LINE + 2, &len);
    if (r == 0) break;
    lineno++;
    if (r < 0) {
      rc = fail(err, errlen, r == -EIO ? -EIO : -EINVAL, "%s:%zu: %s%s", path,
                lineno, line_error(r), r == -E2BIG ? " (limit 1 MiB)" : "");
      goto out;
    }
    if (len == 0) continue;
    if (lineno == 1 && strncmp(line, "HashFunction", 12) == 0) continue;
    if (limit > 0 && tr->count >= limit) break;
    if (tr->count >= IMP_SIM_MAX_FUNCTIONS) {
      rc = fail(err, errlen, -E2BIG,
                "%s:%zu: more than %u functions (use --functions N)", path,
                lineno, IMP_SIM_MAX_FUNCTIONS);
      goto out;
    }
    if (tr->count == tr->cap) {
      size_t cap = tr->cap ? tr->cap * 2 : 64;
      imp_sim_fn_t *fn = realloc(tr->fn, cap * sizeof *fn);
      if (fn == NULL) {
        rc = fail(err, errlen, -ENOMEM, "out of memory");
        goto out;
      }
      tr->fn = fn;
      tr->cap = cap;
    }
    rc = parse_row(line, path, lineno, &tr->fn[tr->count], err, errlen);
    if (rc != 0) goto out;
    tr->count++;
  }
  if (tr->count == 0)
    rc = fail(err, errlen, -EINVAL, "%s: no functions in the trace", path);
out:
  free(line);
  if (rc != 0) imp_sim_trace_free(tr);
  return rc;
}

void imp_sim_durations_default(imp_sim_trace_t *tr, double default_ms) {
  for (size_t i = 0; i < tr->count; i++)
    if (!tr->fn[i].has_duration) tr->fn[i].duration_ms = default_ms;
}

static int cmp_fn_hash(const void *a, const void *b) {
  const imp_sim_fn_t *const *x = a, *const *y = b;
  return strcmp((*x)->hash, (*y)->hash);
}

static int find_fn(const void *key, const void *elem) {
  const imp_sim_fn_t *const *y = elem;
  return strcmp(key, (*y)->hash);
}

/* Splits a CSV line in place (no quoting in these files). */
static size_t split(char *line, char **fields, size_t max) {
  size_t n = 0;
  char *p = line;
  for (;;) {
    char *end = strchr(p, ',');
    if (n < max) fields[n] = p;
    n++;
    if (end == NULL) break;
    *end = '\0';
    p = end + 1;
  }
  return n;
}

#define DUR_MAX_FIELDS 64

int imp_sim_durations_load(imp_sim_trace_t *tr, const char *path,
                           double default_ms, size_t *matched, char *err,
                           size_t errlen) {
  if (matched != NULL) *matched = 0;
  FILE *f = fopen(path, "r");
  if (f == NULL)
    return fail(err, errlen, -errno, "%s: %s", path, strerror(errno));
  int rc =
      imp_sim_durations_read(tr, f, path, default_ms, matched, err, errlen);
  fclose(f);
  return rc;
}

int imp_sim_durations_read(imp_sim_trace_t *tr, FILE *f, const char *path,
                           double default_ms, size_t *matched, char *err,
                           size_t errlen) {
  int rc = 0;
  char *line = NULL;
  imp_sim_fn_t **index = NULL;
  size_t found = 0;
  line = malloc(IMP_SIM_MAX_LINE + 2);
  index = malloc((tr->count ? tr->count : 1) * sizeof *index);
  if (line == NULL || index == NULL) {
    rc = fail(err, errlen, -ENOMEM, "out of memory");
    goto out;
  }
  for (size_t i = 0; i < tr->count; i++) index[i] = &tr->fn[i];
  qsort(index, tr->count, sizeof *index, cmp_fn_hash);

  char *fields[DUR_MAX_FIELDS];
  size_t lineno = 0, len, col_hash = SIZE_MAX, col_avg = SIZE_MAX, ncols = 0;
  for (;;) {
    int r = read_line(f, line, IMP_SIM_MAX_LINE + 2, &len);
    if (r == 0) break;
    lineno++;
    if (r < 0) {
      rc =
          fail(err, errlen, -EINVAL, "%s:%zu: %s", path, lineno, line_error(r));
      goto out;
    }
    if (len == 0) continue;
    size_t n = split(line, fields, DUR_MAX_FIELDS);
    if (col_hash == SIZE_MAX) {
      /* The header names the columns. */
      if (n > DUR_MAX_FIELDS) n = DUR_MAX_FIELDS;
      for (size_t i = 0; i < n; i++) {
        if (strcmp(fields[i], "HashFunction") == 0) col_hash = i;
        if (strcmp(fields[i], "Average") == 0) col_avg = i;
      }
      if (col_hash == SIZE_MAX || col_avg == SIZE_MAX) {
        rc = fail(err, errlen, -EINVAL,
                  "%s:%zu: the header must name HashFunction and Average "
                  "columns",
                  path, lineno);
        goto out;
      }
      ncols = n;
      continue;
    }
    if (n != ncols) {
      rc = fail(err, errlen, -EINVAL, "%s:%zu: expected %zu fields, found %zu",
                path, lineno, ncols, n);
      goto out;
    }
    char *end;
    errno = 0;
    double avg = strtod(fields[col_avg], &end);
    if (end == fields[col_avg] || *end != '\0' || errno != 0 ||
        !isfinite(avg) || avg < 0.0 || avg > IMP_SIM_MAX_DURATION_MS) {
      rc = fail(err, errlen, -EINVAL,
                "%s:%zu: Average '%.20s' is not a duration in ms (0 to %.0f)",
                path, lineno, fields[col_avg], IMP_SIM_MAX_DURATION_MS);
      goto out;
    }
    imp_sim_fn_t **hit = tr->count ? bsearch(fields[col_hash], index, tr->count,
                                             sizeof *index, find_fn)
                                   : NULL;
    if (hit == NULL) continue;
    /* Several functions may share a hash (different apps): the first row
     * for each wins; neighbours in the sorted index share it too. */
    imp_sim_fn_t **lo = hit, **hi = hit;
    while (lo > index && strcmp((*(lo - 1))->hash, (*hit)->hash) == 0) lo--;
    while (hi + 1 < index + tr->count &&
           strcmp((*(hi + 1))->hash, (*hit)->hash) == 0)
      hi++;
    for (imp_sim_fn_t **p = lo; p <= hi; p++) {
      if ((*p)->has_duration) continue;
      (*p)->duration_ms = avg < 1.0 ? 1.0 : avg;
      (*p)->has_duration = 1;
      found++;
    }
  }
  if (col_hash == SIZE_MAX)
    rc = fail(err, errlen, -EINVAL, "%s: empty durations file", path);
out:
  free(line);
  free(index);
  if (rc == 0) imp_sim_durations_default(tr, default_ms);
  if (matched != NULL) *matched = found;
  return rc;
}
