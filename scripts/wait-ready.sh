#!/usr/bin/env bash
# Waits until `impulse serve` (started by `make run`) is ready: the file it
# writes with --ready-file once it is restored and serving, holding its pid
# and addresses. Prints those and exits 0; exits 1 after TIMEOUT seconds
# (default 900: `make run` builds first on a fresh machine).
#
#   wait-ready.sh READY_FILE [TIMEOUT]
set -euo pipefail
file=${1:?usage: wait-ready.sh READY_FILE [TIMEOUT]}
timeout=${2:-900}
start=$(date +%s)
said=0
while :; do
  if [ -s "$file" ]; then
    read -r pid rpc http < "$file" || true
    # A file left by a server that was killed names a dead process.
    if [ -n "${pid:-}" ] && kill -0 "$pid" 2>/dev/null; then
      echo "impulse serve is ready (pid $pid): RPC $rpc${http:+, HTTP http://$http/}"
      exit 0
    fi
  fi
  now=$(date +%s)
  if [ $((now - start)) -ge "$timeout" ]; then
    echo "wait-ready: impulse serve not ready after ${timeout} s (no live server in $file)" >&2
    exit 1
  fi
  if [ $((now - start)) -ge $((said + 10)) ]; then
    said=$((now - start))
    echo "waiting for impulse serve (${said} s; the first 'make run' builds everything first)..." >&2
  fi
  sleep 0.2
done
