#!/usr/bin/env bash
# Fails when a C source of the project differs from what clang-format makes
# of it with the committed .clang-format; lists the files and the first
# lines that differ. `make format` fixes them.
#
#   check-format.sh [FILE...]     (default: every *.c and *.h git tracks or would add)
set -euo pipefail
cd "$(dirname "$0")/.."
fmt=${CLANG_FORMAT:-clang-format}
if ! command -v "$fmt" >/dev/null; then
  echo "check-format: $fmt not found; run scripts/install-deps.sh" >&2
  exit 1
fi
if [ $# -gt 0 ]; then
  files=("$@")
else
  mapfile -t files < <(git ls-files --cached --others --exclude-standard '*.c' '*.h')
fi
bad=0
for f in "${files[@]}"; do
  if ! out=$("$fmt" --style=file "$f" | diff -u "$f" - 2>&1); then
    bad=$((bad + 1))
    echo "check-format: $f differs from clang-format (make format):" >&2
    printf '%s\n' "$out" | sed -n '3,12p' >&2
  fi
done
if [ "$bad" -gt 0 ]; then
  echo "check-format: $bad of ${#files[@]} files need 'make format'" >&2
  exit 1
fi
echo "check-format: ${#files[@]} files formatted as .clang-format says"
