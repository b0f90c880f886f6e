#!/usr/bin/env bash
# Runs the end-to-end tests against an ordertrace binary.
# Usage: tests/e2e/run.sh [path/to/ordertrace]   (default: build/src/ordertrace)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
bin="${1:-$here/../../build/src/ordertrace}"
if [[ ! -x "$bin" ]]; then
  echo "run.sh: no executable ordertrace at $bin (build it first, or pass its path)" >&2
  exit 2
fi
bin="$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")"

cd "$here"
if [[ ! -d node_modules ]]; then
  npm ci --no-audit --no-fund
fi
ORDERTRACE_BIN="$bin" exec node --test --test-concurrency=1 --test-timeout=120000 ./*.test.mjs
