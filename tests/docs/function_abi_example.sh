#!/bin/sh
# Builds the worked example of docs/function-abi.md: the first ```c block
# after the "## A worked example" heading is extracted and compiled as a
# function (C11, warnings as errors, hidden visibility), and the object
# must export the ABI symbols the example defines.
#
# Usage: function_abi_example.sh DOC INCLUDE_DIR
# Environment: CC (default cc).
set -eu
doc=$1
include=$2
cc=${CC:-cc}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

awk '/^## A worked example/ { section = 1; next }
     section && !code && /^```c$/ { code = 1; next }
     code && /^```$/ { exit }
     code { print }' "$doc" > "$tmp/example.c"
if [ ! -s "$tmp/example.c" ]; then
  echo "no C block under '## A worked example' in $doc" >&2
  exit 1
fi

"$cc" -std=c11 -Wall -Wextra -Wstrict-prototypes -Werror -shared -fPIC \
  -fvisibility=hidden -I"$include" "$tmp/example.c" -o "$tmp/example.so"

for sym in impulse_abi_version impulse_init impulse_handle impulse_fini; do
  if ! nm -D --defined-only "$tmp/example.so" | grep -q " $sym\$"; then
    echo "the example does not export $sym" >&2
    exit 1
  fi
done
echo "docs/function-abi.md example: built, exports the ABI symbols"
