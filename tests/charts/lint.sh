#!/usr/bin/env bash
# Lints the Helm chart without helm:
#   - yamllint (strict, with the chart's .yamllint) on Chart.yaml and
#     values.yaml;
#   - check_chart.py: every .Values path a template reads is defined, every
#     value is read, includes resolve, template actions are balanced.
# Then proves each check can fail, on temporary copies of the chart with one
# planted fault each.
#
#   lint.sh [CHART_DIR]     (default: charts/impulse of this source tree)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
chart=$(cd "${1:-$here/../../charts/impulse}" && pwd)

# A Python 3 with PyYAML (Debian: python3-yaml).
py=
for cand in "${PYTHON3:-}" python3 /usr/bin/python3; do
  if [ -n "$cand" ] && "$cand" -c 'import yaml' 2>/dev/null; then
    py=$cand
    break
  fi
done
if [ -z "$py" ]; then
  echo "lint.sh: no python3 with PyYAML; run scripts/install-deps.sh" >&2
  exit 1
fi
if ! command -v yamllint >/dev/null; then
  echo "lint.sh: yamllint not found; run scripts/install-deps.sh" >&2
  exit 1
fi

run_yamllint() { # CHART
  yamllint --strict -c "$1/.yamllint" "$1/Chart.yaml" "$1/values.yaml"
}
run_check() { # CHART
  "$py" "$here/check_chart.py" "$1"
}

echo "== yamllint"
run_yamllint "$chart"
echo "== check_chart.py"
run_check "$chart"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/impulse-chart-lint.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

# expect_failure NAME PATTERN CHECK MUTATION: copies the chart, applies
# MUTATION (a shell snippet run in the copy), runs CHECK on the copy and
# requires it to fail with PATTERN in its output.
n=0
expect_failure() {
  local name=$1 pattern=$2 check=$3 mutation=$4
  n=$((n + 1))
  local copy="$tmp/c$n/impulse"
  mkdir -p "$tmp/c$n"
  cp -r "$chart" "$copy"
  (cd "$copy" && eval "$mutation")
  if "$check" "$copy" >"$tmp/out" 2>&1; then
    echo "self-check '$name': the check passed a broken chart" >&2
    exit 1
  fi
  if ! grep -q -- "$pattern" "$tmp/out"; then
    echo "self-check '$name': failed, but without '$pattern':" >&2
    cat "$tmp/out" >&2
    exit 1
  fi
  echo "self-check '$name': fails as it should"
}

echo "== self-checks"
expect_failure "undefined value" '\.Values\.server\.noSuchSetting is not in values.yaml' \
  run_check 'echo "# {{ .Values.server.noSuchSetting }}" >> templates/service.yaml'
expect_failure "value below a scalar" '\.Values\.image\.tag\.major is not in values.yaml' \
  run_check 'echo "# {{ .Values.image.tag.major }}" >> templates/service.yaml'
expect_failure "unused value" 'server.unusedSetting is not used' \
  run_check 'sed -i "s/^server:$/server:\n  unusedSetting: 1/" values.yaml'
expect_failure "unknown include" 'include of "impulse.nothing"' \
  run_check 'echo "# {{ include \"impulse.nothing\" . }}" >> templates/service.yaml'
expect_failure "if without end" 'if without its end' \
  run_check 'echo "{{- if .Values.replicaCount }}" >> templates/service.yaml'
expect_failure "stray end" 'end without an opening action' \
  run_check 'echo "{{- end }}" >> templates/service.yaml'
expect_failure "Chart.yaml name" 'name is not the directory' \
  run_check 'sed -i "s/^name: impulse$/name: other/" Chart.yaml'
expect_failure "duplicate key" 'duplicate' \
  run_yamllint 'echo "replicaCount: 2" >> values.yaml'
expect_failure "long line" 'line too long' \
  run_yamllint 'echo "# $(seq -s " " 1 40)" >> values.yaml'
echo "chart lint: ok"
