#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Installs what building and running corral needs on Debian 12 (run as root):
# a C compiler, meson, ninja, scdoc and the libraries' headers. The tests and
# benchmarks need more (packaging/test-deps.sh, which calls this script).
# Usage: packaging/deps.sh [EXTRA_PACKAGE...]
# apt's output is kept quiet on success and shown in full on failure.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
packages=(
  gcc libc6-dev meson ninja-build pkg-config scdoc
  libproc2-dev libyaml-dev libsystemd-dev libmicrohttpd-dev libjson-c-dev
  # `corral status` opens libcurl at run time; the build needs its headers.
  libcurl4-openssl-dev
  # the work queue (tasks.from: redis://...) and `corral enqueue`
  libhiredis-dev
  "$@"
)
log=$(mktemp)
trap 'rm -f "$log"' EXIT
apt_get() {
  if ! apt-get "$@" >"$log" 2>&1; then
    cat "$log" >&2
    echo "packaging/deps.sh: 'apt-get $1' failed; its output is above" >&2
    exit 1
  fi
}
apt_get update
apt_get install -y --no-install-recommends "${packages[@]}"
echo "packaging/deps.sh: installed ${#packages[@]} packages and what they need"
