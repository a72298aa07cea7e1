/*
 * The trace files of `impulse sim` (runtime/tools/sim_trace.c): an
 * invocation trace in the Azure Functions 2019 format and, after the first
 * NUL byte of the input, a durations file. Both are read through stdio as
 * from a file. Checks:
 * - a trace is refused with a message, or has 1 to IMP_SIM_MAX_FUNCTIONS
 *   functions whose names are 1 to IMP_SIM_MAX_NAME bytes, counts within
 *   IMP_SIM_MAX_PER_MINUTE and totals their sums;
 * - the trace written back in the format reads to the same functions;
 * - durations are finite, within 1 ms and IMP_SIM_MAX_DURATION_MS, and no
 *   more functions are matched than there are.
 */
#include <math.h>
#include <string.h>

#include "core/common.h"
#include "fuzz.h"
#include "tools/sim_trace.h"

static void check_trace(const imp_sim_trace_t *tr) {
  FUZZ_CHECK(tr->count >= 1 && tr->count <= IMP_SIM_MAX_FUNCTIONS);
  for (size_t i = 0; i < tr->count; i++) {
    const imp_sim_fn_t *fn = &tr->fn[i];
    size_t n = strnlen(fn->hash, sizeof fn->hash);
    FUZZ_CHECK(n >= 1 && n <= IMP_SIM_MAX_NAME);
    FUZZ_CHECK(strchr(fn->hash, ',') == NULL);
    uint64_t total = 0;
    for (size_t m = 0; m < IMP_SIM_MINUTES; m++) {
      FUZZ_CHECK(fn->counts[m] <= IMP_SIM_MAX_PER_MINUTE);
      total += fn->counts[m];
    }
    FUZZ_CHECK(total == fn->total);
  }
}

/* Writes tr in the trace format (header, then HashFunction,HashOwner,
 * HashApp and the minutes). */
static void write_trace(const imp_sim_trace_t *tr, imp_buf_t *out) {
  char num[16];
  const char *head = "HashFunction,HashOwner,HashApp";
  FUZZ_CHECK(imp_buf_append(out, head, strlen(head)) == 0);
  for (int m = 1; m <= IMP_SIM_MINUTES; m++) {
    int n = snprintf(num, sizeof num, ",%d", m);
    FUZZ_CHECK(imp_buf_append(out, num, (size_t)n) == 0);
  }
  FUZZ_CHECK(imp_buf_append(out, "\n", 1) == 0);
  for (size_t i = 0; i < tr->count; i++) {
    const imp_sim_fn_t *fn = &tr->fn[i];
    FUZZ_CHECK(imp_buf_append(out, fn->hash, strlen(fn->hash)) == 0);
    FUZZ_CHECK(imp_buf_append(out, ",o,a", 4) == 0);
    for (size_t m = 0; m < IMP_SIM_MINUTES; m++) {
      int n = snprintf(num, sizeof num, ",%u", fn->counts[m]);
      FUZZ_CHECK(imp_buf_append(out, num, (size_t)n) == 0);
    }
    FUZZ_CHECK(imp_buf_append(out, "\r\n", 2) == 0);
  }
}

static int read_trace(imp_sim_trace_t *tr, const void *p, size_t n,
                      size_t limit, char *err, size_t errlen) {
  FILE *f = fmemopen((void *)p, n, "r");
  FUZZ_CHECK(f != NULL);
  int rc = imp_sim_trace_read(tr, f, "trace", limit, err, errlen);
  fclose(f);
  return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 2) return 0;
  size_t limit = data[0] % 4; /* 0: all functions */
  data++, size--;
  const uint8_t *nul = memchr(data, '\0', size);
  size_t tlen = nul ? (size_t)(nul - data) : size;
  char err[256];
  imp_sim_trace_t tr;
  err[0] = '\0';
  if (tlen == 0) return 0; /* fmemopen needs a size */
  int rc = read_trace(&tr, data, tlen, limit, err, sizeof err);
  if (rc != 0) {
    FUZZ_CHECK(rc < 0 && err[0] != '\0' && tr.fn == NULL && tr.count == 0);
    return 0;
  }
  check_trace(&tr);
  if (limit) FUZZ_CHECK(tr.count <= limit);

  /* Written back, it reads the same. */
  imp_buf_t out = {0};
  write_trace(&tr, &out);
  imp_sim_trace_t again;
  FUZZ_CHECK(read_trace(&again, out.data, out.len, 0, err, sizeof err) == 0);
  FUZZ_CHECK(again.count == tr.count);
  for (size_t i = 0; i < tr.count; i++) {
    FUZZ_CHECK(strcmp(again.fn[i].hash, tr.fn[i].hash) == 0);
    FUZZ_CHECK(again.fn[i].total == tr.fn[i].total);
    FUZZ_CHECK(memcmp(again.fn[i].counts, tr.fn[i].counts,
                      sizeof tr.fn[i].counts) == 0);
  }
  imp_sim_trace_free(&again);
  imp_buf_free(&out);

  if (nul && size - tlen > 1) {
    FILE *f = fmemopen((void *)(nul + 1), size - tlen - 1, "r");
    FUZZ_CHECK(f != NULL);
    size_t matched = 0;
    rc = imp_sim_durations_read(&tr, f, "durations", 100.0, &matched, err,
                                sizeof err);
    fclose(f);
    FUZZ_CHECK(matched <= tr.count);
    if (rc == 0)
      for (size_t i = 0; i < tr.count; i++) {
        double d = tr.fn[i].duration_ms;
        FUZZ_CHECK(isfinite(d) && d >= 1.0 && d <= IMP_SIM_MAX_DURATION_MS);
      }
  }
  imp_sim_trace_free(&tr);
  return 0;
}
