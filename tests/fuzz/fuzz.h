/*
 * Fuzz targets (docs/testing.md, "Fuzzing"). Each tests/fuzz/NAME.c
 * defines LLVMFuzzerTestOneInput() for one decoder or parser. Built two
 * ways:
 *
 * - with clang and libFuzzer (`make fuzz`, cmake -DIMPULSE_FUZZ=ON) as
 *   fuzz_NAME, which explores from tests/fuzz/corpus/NAME;
 * - with the normal compiler as fuzz_replay_NAME (replay.c supplies main),
 *   which `make test` runs over tests/fuzz/corpus/NAME, so every seed and
 *   every input that once crashed stays a regression test in every build.
 *
 * A target returns 0 for every input; a finding is a sanitizer report or a
 * failed FUZZ_CHECK (an invariant such as decode(encode(x)) == x), which
 * aborts with the condition and where it failed.
 */
#ifndef IMP_FUZZ_H
#define IMP_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Optional: run once before the first input (argc/argv of the binary). */
int LLVMFuzzerInitialize(int *argc, char ***argv);

#define FUZZ_CHECK(cond)                                                   \
  do {                                                                     \
    if (!(cond)) {                                                         \
      fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, \
              #cond);                                                      \
      abort();                                                             \
    }                                                                      \
  } while (0)

#endif
