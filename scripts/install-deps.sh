#!/usr/bin/env bash
# Installs the Debian packages Impulse needs to build and test, when missing.
# Runs `apt-get update` first whenever something has to be installed, since a
# fresh machine has empty package lists.
set -euo pipefail

packages=(
  build-essential cmake pkg-config
  librdkafka-dev libuv1-dev libprotobuf-c-dev protobuf-c-compiler
  librocksdb-dev libcmocka-dev libssl-dev libhttp-parser-dev libjansson-dev
  libseccomp-dev
  kcat wrk curl
  chromium  # headless, for the dashboard test
  python3 python3-yaml yamllint
  clang-format  # .ci/run checks the formatting of every source
  clang libclang-rt-14-dev  # make fuzz: libFuzzer and the sanitizers
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "installing: ${missing[*]}"
SUDO=
if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
