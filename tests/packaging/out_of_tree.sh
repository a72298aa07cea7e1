#!/usr/bin/env bash
# Packaging test: what `make install` gives a function author and an
# operator is enough on its own.
#
#   1. `cmake --install` the build tree into a temporary DESTDIR, with a
#      prefix other than the configured one, and check the installed files
#      (nothing private is installed);
#   2. outside the source tree, build a function with nothing but
#      `pkg-config --cflags impulse`, and a client program with
#      `pkg-config --cflags --libs impulse`;
#   3. start the installed `impulse serve` on a free loopback port with a
#      temporary state directory, deploy the function with the installed
#      `impulse deploy`, invoke it with `impulse invoke` and with the client
#      program;
#   4. stop the server with SIGTERM and expect a clean exit.
# The server is always stopped and the temporary directory removed.
#
#   out_of_tree.sh BUILD_DIR BINDIR LIBDIR INCLUDEDIR
#
# BINDIR, LIBDIR, INCLUDEDIR: the build's CMAKE_INSTALL_* directories.
# Environment: CMAKE (default cmake), CC (default cc), and
# IMPULSE_TEST_SANITIZE: the sanitizer flags of the build, if any (the
# client program links libimpulse, so it needs the same runtime).
set -euo pipefail

if [ $# -ne 4 ]; then
  echo "usage: out_of_tree.sh BUILD_DIR BINDIR LIBDIR INCLUDEDIR" >&2
  exit 2
fi
build=$(cd "$1" && pwd)
cmake=${CMAKE:-cmake}
cc=${CC:-cc}
sanitize=${IMPULSE_TEST_SANITIZE:-}
prefix=/opt/impulse-test # not the configured prefix: the .pc must follow
step_timeout=30

# The installed programs must not pick up the caller's settings.
unset IMPULSE_STATE_DIR IMPULSE_LISTEN IMPULSE_ADDR IMPULSE_TOKEN \
  IMPULSE_KAFKA IMPULSE_LOG_LEVEL CPATH C_INCLUDE_PATH LIBRARY_PATH

tmp=$(mktemp -d "${TMPDIR:-/tmp}/impulse-pkg.XXXXXX")
stage=$tmp/stage
log=$tmp/server.log
server_pid=

say() { echo "[out_of_tree] $*" >&2; }

fail() {
  say "FAIL: $*"
  if [ -s "$log" ]; then
    say "server log (last 40 lines):"
    tail -n 40 "$log" >&2
  fi
  exit 1
}

# 0 while $1 runs (a zombie does not count: it has exited).
running() {
  local state
  { read -r _ _ state _ <"/proc/$1/stat"; } 2>/dev/null || return 1
  [ -n "$state" ] && [ "$state" != Z ]
}

# Stops the server: SIGTERM, up to 20 s for its drain, then SIGKILL to its
# process group (workers included). Sets server_status to its exit status.
server_status=
stop_server() {
  local pid=$server_pid
  [ -n "$pid" ] || return 0
  server_pid=
  kill -TERM "$pid" 2>/dev/null || true
  local deadline=$((SECONDS + 20))
  while running "$pid" && [ "$SECONDS" -lt "$deadline" ]; do
    sleep 0.1
  done
  if running "$pid"; then
    say "server $pid still running 20 s after SIGTERM; killing it"
  fi
  kill -KILL -- "-$pid" 2>/dev/null || true
  server_status=0
  wait "$pid" 2>/dev/null || server_status=$?
}

# A guardian in its own session: when this script dies without cleaning up
# (say, killed on a timeout), it kills the server's group and removes the
# temporary directory.
guard_pid=
start_guardian() {
  setsid bash -c 'while kill -0 "$1" 2>/dev/null; do sleep 1; done
    kill -KILL -- "-$2" 2>/dev/null; rm -rf "$3"' guardian $$ "$server_pid" "$tmp" \
    </dev/null >/dev/null 2>&1 &
  guard_pid=$!
}
stop_guardian() {
  if [ -n "$guard_pid" ]; then
    kill "$guard_pid" 2>/dev/null || true
    wait "$guard_pid" 2>/dev/null || true
    guard_pid=
  fi
}

cleanup() {
  stop_server
  stop_guardian
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

in_stage() { # DIR: where an install directory lands in the staging tree
  case $1 in
  /*) echo "$stage$1" ;;
  *) echo "$stage$prefix/$1" ;;
  esac
}
bindir=$(in_stage "$2")
libdir=$(in_stage "$3")
includedir=$(in_stage "$4")

# --- 1. install -------------------------------------------------------------
say "installing $build into DESTDIR=$stage, prefix $prefix"
DESTDIR=$stage "$cmake" --install "$build" --prefix "$prefix" >"$tmp/install.log" ||
  { cat "$tmp/install.log" >&2; fail "cmake --install failed"; }

required=("$bindir/impulse" "$bindir/impulse-worker"
  "$includedir/impulse/function.h" "$includedir/impulse/client.h"
  "$libdir/libimpulse.so" "$libdir/pkgconfig/impulse.pc")
for f in "${required[@]}"; do
  [ -e "$f" ] || fail "not installed: ${f#"$stage"}"
done
while IFS= read -r f; do
  case $f in
  "$bindir/impulse" | "$bindir/impulse-worker") ;;
  "$includedir/impulse/function.h" | "$includedir/impulse/client.h") ;;
  "$libdir/libimpulse.so" | "$libdir"/libimpulse.so.*) ;;
  "$libdir/pkgconfig/impulse.pc") ;;
  *) fail "installed but not part of the public package: ${f#"$stage"}" ;;
  esac
done < <(find "$stage" ! -type d)

# --- 2. build against the installed files only ------------------------------
export PKG_CONFIG_PATH=$libdir/pkgconfig
export PKG_CONFIG_LIBDIR=$libdir/pkgconfig # not the system's .pc files
pkg-config --exists impulse || fail "pkg-config does not find impulse"
cflags=$(pkg-config --cflags impulse)
libs=$(pkg-config --libs impulse)
say "pkg-config: cflags '$cflags', libs '$libs'"

src=$tmp/src
mkdir -p "$src"
cat >"$src/reverse.c" <<'EOF'
/* Answers with its payload reversed. */
#include <impulse/function.h>

IMPULSE_FUNCTION();

IMPULSE_EXPORT int impulse_handle(impulse_ctx_t *ctx) {
  size_t len;
  const char *in = impulse_payload(ctx, &len);
  char *out = impulse_response_buffer(ctx, len);
  if (out == NULL && len > 0)
    return impulse_error(ctx, IMPULSE_ERROR, "no room for %zu bytes", len);
  for (size_t i = 0; i < len; i++) out[i] = in[len - 1 - i];
  return IMPULSE_OK;
}
EOF
cat >"$src/call.c" <<'EOF'
/* call ADDR FUNCTION PAYLOAD: invokes FUNCTION, prints its response. */
#include <stdio.h>
#include <string.h>

#include <impulse/client.h>

int main(int argc, char **argv) {
  if (argc != 4) return 2;
  impulse_client_t *client = NULL;
  int rc = impulse_client_connect(argv[1], "", &client);
  if (rc != IMPULSE_S_OK) {
    fprintf(stderr, "connect: %s\n",
            client ? impulse_client_error(client) : impulse_status_name(rc));
    impulse_client_close(client);
    return 1;
  }
  impulse_response_t *res = NULL;
  rc = impulse_invoke(client, argv[2], argv[3], strlen(argv[3]), NULL, &res);
  if (rc != IMPULSE_S_OK || res->status != IMPULSE_S_OK) {
    fprintf(stderr, "invoke: %s\n",
            rc != IMPULSE_S_OK ? impulse_client_error(client) : res->error);
    impulse_response_free(res);
    impulse_client_close(client);
    return 1;
  }
  fwrite(res->payload, 1, res->len, stdout);
  impulse_response_free(res);
  impulse_client_close(client);
  return 0;
}
EOF

cd "$src" # nothing of the source or build tree is reachable from here
# The function: exactly what a function author runs.
# shellcheck disable=SC2086 # pkg-config output is a list of words
"$cc" -shared -fPIC $cflags -MD -MF reverse.d reverse.c -o reverse.so ||
  fail "the function does not build with pkg-config --cflags impulse"
grep -q "^ *$stage/.*/impulse/function.h" <(tr ' ' '\n' <reverse.d) ||
  fail "function.h did not come from the installed tree: $(cat reverse.d)"
# shellcheck disable=SC2086
"$cc" -std=c11 -Wall -Wextra -Wstrict-prototypes -Werror $sanitize $cflags \
  call.c $libs -o call ||
  fail "the client program does not build with pkg-config --cflags --libs impulse"
deps=$(LD_LIBRARY_PATH=$libdir ldd ./call) || fail "ldd ./call failed"
grep -q "libimpulse\.so.* => $stage/" <<<"$deps" ||
  fail "the client program does not use the installed libimpulse: $deps"

# --- 3. run the installed server ---------------------------------------------
free_port() {
  python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])'
}

state=$tmp/state
ready=$tmp/ready
addr=
for attempt in 1 2 3; do
  port=$(free_port)
  addr=127.0.0.1:$port
  rm -f "$ready"
  say "starting $prefix/bin/impulse serve on $addr (attempt $attempt)"
  # Its own process group (setsid), so that stop_server reaches the workers.
  setsid "$bindir/impulse" serve --state-dir "$state" --listen "$addr" \
    --ready-file "$ready" --warm-pool 1 --kafka-brokers 1 \
    --drain-timeout 2000 </dev/null >>"$log" 2>&1 &
  server_pid=$!
  stop_guardian
  start_guardian
  deadline=$((SECONDS + 30))
  while [ "$SECONDS" -lt "$deadline" ]; do
    # "PID HOST:PORT ...": ours once it names our pid and address.
    if [ -s "$ready" ] && read -r rpid raddr _ <"$ready" &&
      [ "$rpid" = "$server_pid" ] && [ "$raddr" = "$addr" ]; then
      break 2
    fi
    running "$server_pid" || break
    sleep 0.1
  done
  if running "$server_pid"; then
    fail "server not ready within 30 s"
  fi
  stop_server
  # 2 is a usage error: no other port will help.
  [ "$server_status" != 2 ] || fail "impulse serve refused its flags"
  say "server exited during start-up (status $server_status); retrying on another port"
  addr=
done
[ -n "$addr" ] || fail "the installed server did not start"

token=$(cat "$state/admin.token") || fail "no admin token in the state directory"
impulse() { timeout "$step_timeout" "$bindir/impulse" "$@" --addr "$addr"; }

out=$(impulse deploy reverse "$src/reverse.so" --token "$token") ||
  fail "impulse deploy failed: $out"
[ "$out" = "deployed reverse version 1" ] || fail "deploy said: '$out'"

out=$(impulse invoke reverse -d 'packaged') || fail "impulse invoke failed"
[ "$out" = "degakcap" ] || fail "impulse invoke answered '$out', not 'degakcap'"

out=$(LD_LIBRARY_PATH=$libdir timeout "$step_timeout" ./call "$addr" reverse 'out of tree') ||
  fail "the client program failed"
[ "$out" = "eert fo tuo" ] || fail "the client program got '$out', not 'eert fo tuo'"

# --- 4. stop -------------------------------------------------------------------
stop_server
[ "$server_status" = 0 ] || fail "server exited with status $server_status on SIGTERM"
say "ok: installed, built out of tree, deployed, invoked, stopped"
