#!/usr/bin/env bash
# Installs what is missing, builds, and runs every test: unit tests, the end-to-end tests with
# the real components (RabbitMQ, Alertmanager, Prometheus, Chromium, the OpenTelemetry JS SDK),
# the kill -9 restart tests (all through ctest), then a short fuzz run of the decoders and the
# order fold.
#
#   bash scripts/test.sh           everything (what CI runs)
#   bash scripts/test.sh --unit    the unit tests only (ctest -L unit: no component started, no
#                                  npm install); builds only their targets
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# `unit_tests` (tests/CMakeLists.txt) builds the executables `ctest -L unit` runs: one per part
# (ordertrace_<part>_tests, services_<part>_tests, ordertrace_sdk_tests) and the in-process
# server tests.

case "${1:-}" in
  "") ;;
  --unit)
    bash scripts/install-deps.sh
    bash scripts/build.sh unit_tests
    (cd build && ctest -L unit --output-on-failure --timeout 300 -j"${JOBS:-2}")
    exit 0
    ;;
  -h | --help)
    sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'
    exit 0
    ;;
  *)
    echo "test.sh: unknown option '$1' (try --help)" >&2
    exit 2
    ;;
esac

bash scripts/install-deps.sh
(cd tests/e2e && npm ci --no-audit --no-fund --loglevel=error)
(cd tests/console && npm ci --no-audit --no-fund --loglevel=error)
bash scripts/build.sh
(cd build && ctest --output-on-failure --timeout 600 -j1)
FUZZ_SECONDS="${FUZZ_SECONDS:-30}" bash scripts/fuzz.sh
