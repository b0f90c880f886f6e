#!/usr/bin/env bash
# Installs what is missing, builds, and runs every test: unit tests, the OpenTelemetry JS SDK
# end-to-end tests, the kill -9 restart test (all through ctest), then a short fuzz run of
# the OTLP decoders.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash scripts/install-deps.sh
(cd tests/e2e && npm ci --no-audit --no-fund --loglevel=error)
(cd tests/console && npm ci --no-audit --no-fund --loglevel=error)
bash scripts/build.sh
(cd build && ctest --output-on-failure --timeout 600 -j1)
FUZZ_SECONDS="${FUZZ_SECONDS:-30}" bash scripts/fuzz.sh
