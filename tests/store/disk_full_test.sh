#!/usr/bin/env bash
# Disk full is a degraded mode, not a crash. On a 64 MiB tmpfs mounted for the test,
# with a filler file beside the data folder: ingest until the store refuses, then check that
# ingest answers 503 with Retry-After and no path, reads still answer, the
# ordertrace_store_out_of_space gauge is 1 and the server lives; restart it while still full
# (it must start, read-only); free the fillers and check that ingest resumes by itself, the
# gauge returns to 0, and every acknowledged trace is readable.
#
# Usage: tests/store/disk_full_test.sh [path/to/ordertrace]
# Needs root (mount -t tmpfs): exits 77 (skipped) with a message where mounting is refused.
# Needs bash, curl, jq, python3 (free ports). Loopback only; about 30 s.
set -euo pipefail

readonly kSpansPerRequest=100
readonly kMaxRequests=2000   # a bound: the disk fills after a few hundred
e2e_name=disk_full
kBudgetSeconds=240

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=../support/e2e_checks.sh
source "$here/../support/e2e_checks.sh"
bin="${1:-${ORDERTRACE_BIN:-$here/../../build/src/ordertrace}}"
[[ -x "$bin" ]] || { echo "disk_full: no executable ordertrace at $bin" >&2; exit 2; }
for tool in curl jq python3; do
  command -v "$tool" > /dev/null || { echo "disk_full: $tool is required" >&2; exit 2; }
done

work="$(mktemp -d "${TMPDIR:-/tmp}/ordertrace-disk-full.XXXXXX")"
mnt="$work/mnt"
server_pid=""
mounted=""

cleanup() {
  if [[ -n "$server_pid" ]]; then
    kill -9 "$server_pid" 2> /dev/null || true
    wait "$server_pid" 2> /dev/null || true
  fi
  [[ -n "$mounted" ]] && umount "$mnt" 2> /dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

mkdir -p "$mnt"
if ! mount -t tmpfs -o size=64m tmpfs "$mnt" 2> "$work/mount.err"; then
  echo "disk_full: SKIPPED: cannot mount a tmpfs here ($(head -c 200 "$work/mount.err"))"
  exit 77
fi
mounted=1
# The filler takes most of the file system; deleting it is "freeing space".
dd if=/dev/zero of="$mnt/filler" bs=1M count=34 status=none

cat > "$work/ordertrace.yaml" << EOF
data_dir: $mnt/data
store:
  write_buffer_mb: 4
  block_cache_mb: 8
  min_free_mb: 6
sampling:
  enabled: false
EOF

# shellcheck source=../support/ordertrace_server.sh
source "$here/../support/ordertrace_server.sh"

stop_server() {
  kill -TERM "$server_pid" 2> /dev/null || true
  wait "$server_pid" 2> /dev/null || true
  server_pid=""
}

nonce="$(printf '%08x' "$((RANDOM * 32768 + RANDOM))")"
padding="$(head -c 1500 /dev/zero | tr '\0' 'p')"
now_nanos() { date +%s%N; }

# Sends request $1 (one trace of kSpansPerRequest lifecycle spans, ~1.6 KB each); prints the
# HTTP code; on 200 records its trace id in acks. Headers and body go to $work/last.*.
send_request() {
  local i=$1 trace span k spans="" start
  trace="$(printf '%s%024x' "$nonce" "$i")"
  start="$(now_nanos)"
  for ((k = 1; k <= kSpansPerRequest; ++k)); do
    span="$(printf '%08x%08x' "$i" "$k")"
    spans+="${spans:+,}{\"traceId\":\"$trace\",\"spanId\":\"$span\",\"name\":\"fill\",\
\"startTimeUnixNano\":\"$start\",\"endTimeUnixNano\":\"$((start + 1000))\",\"attributes\":[\
{\"key\":\"order_id\",\"value\":{\"stringValue\":\"full-$nonce-$i-$k\"}},\
{\"key\":\"new_status\",\"value\":{\"stringValue\":\"SUBMITTED\"}},\
{\"key\":\"padding\",\"value\":{\"stringValue\":\"$padding-$i-$k\"}}]}"
  done
  printf '{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":%s}]},%s' \
    '{"stringValue":"disk-full-test"}' "\"scopeSpans\":[{\"spans\":[$spans]}]}]}" > "$work/body"
  local code
  code="$(curl -sS -D "$work/last.headers" -o "$work/last.body" -w '%{http_code}' \
    --max-time 10 -H 'Content-Type: application/json' --data-binary "@$work/body" \
    "$otlp_url" 2> /dev/null)" || code=000
  [[ "$code" == 200 ]] && echo "$trace" >> "$work/acks"
  echo "$code"
}

gauge() {
  curl -fsS --max-time 5 "$api_url/metrics" 2> /dev/null |
    awk '$1 == "ordertrace_store_out_of_space" { print $2 }'
}

# Prints how many acknowledged traces do not read back with all their spans.
missing_acks() {
  local trace missing=0 count
  while read -r trace; do
    count="$(curl -sS --max-time 5 "$api_url/api/traces/$trace" 2> /dev/null |
      jq '[(.batches // [])[].scopeSpans[]?.spans[]?] | length' 2> /dev/null || echo 0)"
    [[ "$count" == "$kSpansPerRequest" ]] || missing=$((missing + 1))
  done < "$work/acks"
  echo "$missing"
}

touch "$work/acks"
start_server || fail "ordertrace did not start on the tmpfs"
check "the gauge reads 0 while there is room" [ "$(gauge)" = 0 ]

code=200
for ((i = 1; i <= kMaxRequests; ++i)); do
  code="$(send_request "$i")"
  [[ "$code" == 200 ]] || break
done
acked=$(wc -l < "$work/acks")
echo "disk_full: $acked requests acknowledged before the store refused (answer $code)"
check "some requests were acknowledged before the disk filled" [ "$acked" -gt 0 ]
check "a full store answers 503" [ "$code" = 503 ]
check "the 503 carries Retry-After" grep -qi '^retry-after:' "$work/last.headers"
check "the 503 body names no path" \
  bash -c "! grep -qE '$mnt|/store|\\.log|/data' '$work/last.body'"
check "the log says the store is out of space" grep -q 'out of disk space' "$work/server.log"
check "the gauge reads 1" [ "$(gauge)" = 1 ]
check "a second request is refused the same way" [ "$(send_request 99999)" = 503 ]
check "the server is alive" kill -0 "$server_pid"
check "every acknowledged trace reads back while full" [ "$(missing_acks)" = 0 ]

stop_server
# Stopped, the store gives back what it held in reserve (its preallocated log): what is left is
# taken too, so that the restart meets a file system truly full.
dd if=/dev/zero of="$mnt/filler2" bs=64K status=none 2> /dev/null || true
start_server || fail "ordertrace did not start again while the disk is full"
check "restarted while full: reads served" [ "$(missing_acks)" = 0 ]
check "restarted while full: ingest answers 503" [ "$(send_request 99998)" = 503 ]
check "restarted while full: the gauge reads 1" [ "$(gauge)" = 1 ]

rm -f "$mnt/filler" "$mnt/filler2"
resumed=""
for ((k = 0; k < 50; ++k)); do
  code="$(send_request $((kMaxRequests + 1 + k)))"
  if [[ "$code" == 200 ]]; then resumed=1; break; fi
  sleep 0.2
done
check "ingest resumes by itself once space is freed" [ -n "$resumed" ]
check "the gauge returns to 0" [ "$(gauge)" = 0 ]
check "the log says ingest resumes" grep -q 'ingest resumes' "$work/server.log"
check "nothing acknowledged was lost" [ "$(missing_acks)" = 0 ]
check "the server is alive at the end" kill -0 "$server_pid"

echo "disk_full: $passed passed, $failed failed"
((failed == 0)) || { tail -20 "$work/server.log" >&2; exit 1; }
