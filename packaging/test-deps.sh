#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Installs what the tests, the fuzzers and the benchmarks need on Debian 12,
# on top of what building needs (packaging/deps.sh; run as root).
set -euo pipefail
packages=(
  # unit and end-to-end tests (meson test)
  libcmocka-dev python3 python3-pytest procps util-linux curl binutils
  # tests of the Python package: shared_array (its tests skip without numpy)
  python3-numpy
  # tests/valgrind/run
  valgrind
  # tests/fuzz: clang's libFuzzer
  clang libclang-rt-14-dev
  # tests of packaging/: promtool, systemd-analyze verify/security, man -l and
  # groff, YAML; the Debian package's build and lintian (tests/e2e/test_debian.py)
  prometheus systemd man-db groff-base python3-yaml build-essential debhelper lintian
  # tests/e2e/test_queue.py, bench/queue: a real Redis for the work queue
  redis-server
  # bench/batch: the peers corral is measured against
  parallel
  # tests/e2e/test_serve.py and bench/serve: a load generator and a real server
  wrk python3-gunicorn
  # tests/e2e/test_exit_status.py: unshare (util-linux) and mount --bind
  mount
)
# bench/overhead also wants `supervisor` (supervisord), left out here: its
# package starts a daemon.
exec bash "$(dirname "$0")/deps.sh" "${packages[@]}"
