#!/usr/bin/env bash
# Installs what building and testing corral needs on Debian 12 (run as root).
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
packages=(
  # build
  gcc clang libclang-rt-14-dev meson ninja-build pkg-config scdoc
  libproc2-dev libyaml-dev libsystemd-dev libmicrohttpd-dev libjson-c-dev libcurl4-openssl-dev
  # tests
  libcmocka-dev python3 python3-pytest procps util-linux prometheus curl valgrind binutils
  # tests of packaging/: systemd-analyze verify/security, man -l and groff, YAML
  systemd man-db groff-base python3-yaml
  # bench/batch: the peers corral is measured against
  parallel
)
# libclang-rt-14-dev: libFuzzer for tests/fuzz. bench/overhead also wants `supervisor`
# (supervisord), left out here: its package starts a daemon.
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
