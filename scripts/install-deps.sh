#!/usr/bin/env bash
# Installs everything ordertrace needs to build and test on Debian 12.
# Only Debian packages; idempotent; skips apt when everything is already present.
set -euo pipefail

PACKAGES=(
  build-essential cmake ninja-build pkg-config git clang clang-format libclang-rt-14-dev
  libprotobuf-dev protobuf-compiler libgrpc++-dev protobuf-compiler-grpc libabsl-dev
  librocksdb-dev libcpp-httplib-dev nlohmann-json3-dev libyaml-cpp-dev libcli11-dev
  libspdlog-dev libfmt-dev libssl-dev zlib1g-dev libboost-dev libsqlite3-dev librabbitmq-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  libre2-dev  # src/scrub: the PII rules
  rabbitmq-server prometheus prometheus-alertmanager
  nodejs npm curl jq python3 procps psmisc
  openssl  # tests/support/make_test_ca.sh: the TLS tests' CA
  python3-yaml  # tests/deploy/grafana_test.py: reads the Grafana provisioning YAML
  chromium  # tests/console: the console's browser tests (driven by playwright-core)
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
# nodejs from another origin may provide npm itself.
if command -v npm >/dev/null 2>&1; then
  tmp=(); for p in "${missing[@]}"; do [ "$p" = npm ] || [ "$p" = nodejs ] || tmp+=("$p"); done
  missing=("${tmp[@]+"${tmp[@]}"}")
fi

if [ ${#missing[@]} -gt 0 ]; then
  echo "install-deps: installing ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  # Package scripts must not start system-wide services; we start our own on loopback.
  if [ ! -e /usr/sbin/policy-rc.d ] && [ "$(id -u)" -eq 0 ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT
  fi
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
echo "install-deps: all packages present"
