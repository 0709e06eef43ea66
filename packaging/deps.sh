#!/usr/bin/env bash
# Installs what building and testing corral needs on Debian 12 (run as root).
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
packages=(
  # build
  gcc clang meson ninja-build pkg-config scdoc
  libproc2-dev libyaml-dev libsystemd-dev libmicrohttpd-dev libjson-c-dev libcurl4-openssl-dev
  # tests
  libcmocka-dev python3 python3-pytest procps util-linux prometheus curl valgrind
  # tests of packaging/: systemd-analyze verify/security, man -l and groff, YAML
  systemd man-db groff-base python3-yaml
  # bench/batch: the peers corral is measured against
  parallel
)
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
