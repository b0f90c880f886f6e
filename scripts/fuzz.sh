#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (build-fuzz/) and runs each for FUZZ_SECONDS
# (default 30) from the seed corpus in fuzz/corpus. A crash fails the run and leaves the
# input in build-fuzz/.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
seconds="${FUZZ_SECONDS:-30}"

CXX=clang++ cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DORDERTRACE_BUILD_FUZZ=ON -DORDERTRACE_BUILD_TESTS=OFF -DORDERTRACE_BUILD_BENCH=OFF >/dev/null
ninja -C build-fuzz -j"${JOBS:-2}" otlp_proto_fuzzer otlp_json_fuzzer http_request_fuzzer \
  order_fold_fuzzer

for target in otlp_proto_fuzzer:proto otlp_json_fuzzer:json http_request_fuzzer:http \
  order_fold_fuzzer:fold; do
  name="${target%%:*}"
  seeds="fuzz/corpus/${target##*:}"
  work="build-fuzz/corpus-${name}"
  mkdir -p "$work"
  echo "fuzz: $name for ${seconds}s"
  # pipefail (inherited by the subshell) keeps the fuzzer's exit code through tail.
  if ! (cd build-fuzz && "./fuzz/$name" -max_total_time="$seconds" -max_len=65536 \
        -rss_limit_mb=2048 -print_final_stats=1 "../$work" "../$seeds" 2>&1 | tail -n 12); then
    echo "fuzz: $name found a failure (the input is in build-fuzz/)"
    exit 1
  fi
done
echo "fuzz: 4 passed, 0 failed"
