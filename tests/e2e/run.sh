#!/usr/bin/env bash
# Runs the end-to-end tests against an ordertrace binary.
# Usage:
#   tests/e2e/run.sh [path/to/ordertrace]
#       the ordertrace tests: every *.test.mjs except the *_interop.test.mjs ones
#   tests/e2e/run.sh --mes-api path/to/mes-api [path/to/ordertrace]
#       the interop tests (*_interop.test.mjs): Node amqplib + OpenTelemetry against the C++
#       mes-api, over a private RabbitMQ (scripts/rabbitmq.sh; needs root)
# ordertrace defaults to build/src/ordertrace. A missing binary is an error (exit 2), never a skip.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo_root="$(cd "$here/../.." && pwd)"

usage() {
  echo "usage: $0 [--mes-api path/to/mes-api] [path/to/ordertrace]" >&2
  exit 2
}

mes_api=""
interop=0
while [[ $# -gt 0 ]]; do
  case "$1" in
    --mes-api)
      [[ $# -ge 2 ]] || usage
      interop=1
      mes_api="$2"
      shift 2
      ;;
    --mes-api=*)
      interop=1
      mes_api="${1#--mes-api=}"
      shift
      ;;
    -*) usage ;;
    *) break ;;
  esac
done
[[ $# -le 1 ]] || usage

# An absolute path to an executable, or exit 2 naming what is missing.
absolute_executable() {  # absolute_executable WHAT PATH HINT
  if [[ -z "$2" || ! -x "$2" || -d "$2" ]]; then
    echo "run.sh: no executable $1 at '${2}' ($3)" >&2
    exit 2
  fi
  echo "$(cd "$(dirname "$2")" && pwd)/$(basename "$2")"
}

bin="$(absolute_executable ordertrace "${1:-$here/../../build/src/ordertrace}" \
  'build it first, or pass its path')"

cd "$here"
if [[ ! -d node_modules ]]; then
  npm ci --no-audit --no-fund
fi

shopt -s nullglob
tests=()
if ((interop)); then
  mes_api="$(absolute_executable mes-api "$mes_api" \
    'build it first: cmake --build build --target mes-api')"
  tests=(./*_interop.test.mjs)
else
  for t in ./*.test.mjs; do
    [[ $t == *_interop.test.mjs ]] || tests+=("$t")
  done
fi
if ((${#tests[@]} == 0)); then
  echo "run.sh: no test files found in $here" >&2
  exit 2
fi

export ORDERTRACE_BIN="$bin"
export ORDERTRACE_REPO_ROOT="$repo_root"
if ((interop)); then
  export MES_API_BIN="$mes_api"
fi
exec node --test --test-concurrency=1 --test-timeout=120000 "${tests[@]}"
