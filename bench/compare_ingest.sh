#!/usr/bin/env bash
# Compares the ingest cost of ordertrace binaries on this machine: runs ordertrace_ingest_bench
# for each binary in turn, ROUNDS times (alternating, so that a burst of load from other tenants
# hits one round rather than one binary), and prints each run and the median server CPU us/span
# with trace metrics and sampling off and on.
#
#   bench/compare_ingest.sh [--rounds N] [--spans N] NAME=BINARY NAME=BINARY...
#   e.g. bench/compare_ingest.sh --rounds 5 before=/tmp/ordertrace-old after=build/src/ordertrace
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

rounds=5
spans=600000
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) rounds="$2"; shift 2 ;;
    --spans) spans="$2"; shift 2 ;;
    -h|--help) sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *=*) break ;;
    *) echo "compare_ingest: unknown argument '$1' (try --help)" >&2; exit 2 ;;
  esac
done
[ $# -ge 1 ] || { echo "compare_ingest: name at least one NAME=BINARY (try --help)" >&2; exit 2; }
bench=build/bench/ordertrace_ingest_bench
[ -x "$bench" ] || { echo "compare_ingest: build $bench first (scripts/build.sh)" >&2; exit 2; }
for named in "$@"; do
  [ -x "${named#*=}" ] || { echo "compare_ingest: ${named#*=} is not an executable" >&2; exit 2; }
done

results=$(mktemp)
trap 'rm -f "$results"' EXIT
for round in $(seq "$rounds"); do
  for named in "$@"; do
    name=${named%%=*}
    "$bench" --ordertrace "${named#*=}" --spans "$spans" --orders 0 --pairs 1 2>&1 |
      awk -v name="$name" -v round="$round" '
        /^end to end, metrics\+sampling off/ { off = $10 }
        /^end to end, metrics\+sampling on/  { on = $10; rate = $8 }
        END { printf "round %s %-12s off %s  on %s us/span  (on: %s spans/s)\n", round, name, off, on, rate }' |
      tee -a "$results"
  done
done
median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
echo "median server CPU us/span over $rounds rounds:"
for named in "$@"; do
  name=${named%%=*}
  off=$(awk -v n="$name" '$3 == n { print $5 }' "$results" | median)
  on=$(awk -v n="$name" '$3 == n { print $7 }' "$results" | median)
  printf "  %-12s off %s  on %s\n" "$name" "$off" "$on"
done
