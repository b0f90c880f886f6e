#!/usr/bin/env bash
# Installs what is missing, builds, and runs ordertrace with its embedded defaults on loopback
# (OTLP/gRPC 4317, OTLP/HTTP 4318, API 8686, data in ./data) until Ctrl-C.
# Extra arguments go to ordertrace (see `build/src/ordertrace --help`).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

step() { printf '\n== %s\n' "$*"; }
fail() { printf 'run: %s\n' "$*" >&2; exit 1; }

step "Installing missing packages (Debian)"
bash scripts/install-deps.sh || fail "installing packages failed (apt-get needs root and the Debian mirrors)"
step "Building"
bash scripts/build.sh ordertrace || fail "the build failed; see the compiler output above"

step "Starting ordertrace"
cat <<'INFO'
  Send spans:   OTLP/gRPC 127.0.0.1:4317, OTLP/HTTP http://127.0.0.1:4318/v1/traces
  Find orders:  curl http://127.0.0.1:8686/api/v1/orders?limit=10
                curl http://127.0.0.1:8686/api/v1/orders/ORDER_ID
  Traces:       curl http://127.0.0.1:8686/api/traces/TRACE_ID   (Tempo-compatible)
  Stop:         Ctrl-C
INFO
exec build/src/ordertrace "$@"
