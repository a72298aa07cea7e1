#!/usr/bin/env bash
# `make fuzz`: builds the fuzz targets of tests/fuzz with clang, libFuzzer,
# ASan and UBSan in build-fuzz/, then runs each for FUZZ_SECONDS.
#
#   FUZZ_SECONDS=60        seconds per target (default 60)
#   FUZZ_TARGETS="frame"   only these targets (default: all)
#   FUZZ_BUILD=build-fuzz  build directory
#   FUZZ_JOBS=2            targets run at once (default: the cores)
#
# Each target starts from its committed seeds (tests/fuzz/corpus/NAME,
# read only) and from what earlier runs found (FUZZ_BUILD/corpus/NAME, kept
# between runs). An input that makes a target fail is saved under
# FUZZ_BUILD/crashes/NAME/; once the bug is fixed, copy it into
# tests/fuzz/corpus/NAME/ as crash-<what> so that `make test` replays it.
# Every run is appended to FUZZ_BUILD/fuzz-time.tsv, and the summary shows
# the seconds each target has run in total in this build directory.
# Exits 1 when any target found something.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${FUZZ_SECONDS:-60}
build=${FUZZ_BUILD:-build-fuzz}
jobs=${JOBS:-$(nproc 2>/dev/null || echo 2)}
case "$seconds" in '' | *[!0-9]* | 0)
  echo "fuzz: FUZZ_SECONDS must be a positive number of seconds, not '$seconds'" >&2
  exit 2
  ;;
esac

cmake -S . -B "$build" -DCMAKE_C_COMPILER=clang -DIMPULSE_FUZZ=ON \
  -DIMPULSE_WERROR=ON >/dev/null
cmake --build "$build" -j "$jobs" --target fuzz_targets

bindir="$build/tests/fuzz"
all=()
for exe in "$bindir"/fuzz_*; do
  n=$(basename "$exe")
  case "$n" in fuzz_replay_*) continue ;; esac
  [ -x "$exe" ] && all+=("${n#fuzz_}")
done
targets=(${FUZZ_TARGETS:-${all[@]}})
for t in "${targets[@]}"; do
  if [ ! -x "$bindir/fuzz_$t" ]; then
    echo "fuzz: no target '$t' (targets: ${all[*]})" >&2
    exit 2
  fi
done

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:allocator_may_return_null=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
log_tsv="$build/fuzz-time.tsv"
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
parallel=${FUZZ_JOBS:-$jobs}
case "$parallel" in '' | *[!0-9]* | 0) parallel=1 ;; esac
echo "fuzz: ${#targets[@]} targets, ${seconds} s each, ${parallel} at a time"

# One target's run; its summary line goes to $build/fuzz-$t.result, and a
# finding also to $build/fuzz-$t.failed.
run_one() {
  local t=$1
  local work="$build/corpus/$t" crashes="$build/crashes/$t"
  local log="$build/fuzz-$t.log" result="$build/fuzz-$t.result"
  rm -f "$result" "$build/fuzz-$t.failed"
  mkdir -p "$work" "$crashes"
  local args=(-max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048
    -print_final_stats=1 -artifact_prefix="$crashes/")
  [ -f "tests/fuzz/$t.dict" ] && args+=(-dict="tests/fuzz/$t.dict")
  if [ -f "tests/fuzz/$t.options" ]; then
    local extra
    read -r -a extra <"tests/fuzz/$t.options"
    args+=("${extra[@]}")
  fi
  local start rc=0 took execs total corpus
  start=$(date +%s)
  "$bindir/fuzz_$t" "${args[@]}" "$work" "tests/fuzz/corpus/$t" >"$log" 2>&1 || rc=$?
  took=$(($(date +%s) - start))
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  # One short line per run: appends of it from parallel runs do not mix.
  printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$(date -u +%FT%TZ)" "$t" "$took" \
    "${execs:-0}" "$rc" "$commit" >>"$log_tsv"
  total=$(awk -F'\t' -v t="$t" '$2 == t { s += $3 } END { print s + 0 }' "$log_tsv")
  corpus=$(find "$work" -type f | wc -l)
  if [ "$rc" -ne 0 ]; then
    {
      printf 'fuzz: %-14s FAILED after %s s (exit %s); log %s, input in %s\n' \
        "$t" "$took" "$rc" "$log" "$crashes"
      grep -E 'ERROR|invariant failed|runtime error|SUMMARY' "$log" | head -5 || true
    } >"$result"
    touch "$build/fuzz-$t.failed"
  else
    printf 'fuzz: %-14s %4s s  %10s execs  corpus %5s  (%s s in all runs here)\n' \
      "$t" "$took" "${execs:-?}" "$corpus" "$total" >"$result"
  fi
  cat "$result"
}

running=0
for t in "${targets[@]}"; do
  if [ "$running" -ge "$parallel" ]; then
    wait -n || true
    running=$((running - 1))
  fi
  run_one "$t" &
  running=$((running + 1))
done
wait || true
failed=()
for t in "${targets[@]}"; do
  [ -f "$build/fuzz-$t.failed" ] && failed+=("$t")
done
if [ ${#failed[@]} -ne 0 ]; then
  echo "fuzz: findings in: ${failed[*]}" >&2
  exit 1
fi
