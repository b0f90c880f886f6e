#!/usr/bin/env bash
# Configures and builds ordertrace (release with debug info) into build/; arguments name
# targets (default: everything, tests and benchmarks included).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
ninja -C build -j"${JOBS:-2}" "$@"
