#!/usr/bin/env bash
# Detail spans waiting for the tail sampler survive kill -9: two traces, each a root
# span (always kept) and a detail span the sampler holds (ratio 0); kill -9 while both wait;
# restart. A failed span of the first trace, before its deadline, must keep the detail
# acknowledged before the crash (readable at /api/traces/{id}); the second trace's detail,
# whose deadline passes, must be dropped as it would have been without the crash.
#
# Usage: tests/restart/sampler_restart_test.sh [path/to/ordertrace]
# Needs bash, curl, jq, python3 (free ports). Loopback only; about 20 s.
set -euo pipefail

readonly kWaitSeconds=8 # sampling.decision_wait
e2e_name=sampler_restart
kBudgetSeconds=120

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=../support/e2e_checks.sh
source "$here/../support/e2e_checks.sh"
bin="${1:-${ORDERTRACE_BIN:-$here/../../build/src/ordertrace}}"
[[ -x "$bin" ]] || { echo "sampler_restart: no executable ordertrace at $bin" >&2; exit 2; }
for tool in curl jq python3; do
  command -v "$tool" > /dev/null || { echo "sampler_restart: $tool is required" >&2; exit 2; }
done

work="$(mktemp -d "${TMPDIR:-/tmp}/ordertrace-sampler-restart.XXXXXX")"
server_pid=""
cleanup() {
  if [[ -n "$server_pid" ]]; then
    kill -9 "$server_pid" 2> /dev/null || true
    wait "$server_pid" 2> /dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

cat > "$work/ordertrace.yaml" << EOF
data_dir: $work/data
store:
  min_free_mb: 0
sampling:
  enabled: true
  ratio: 0
  decision_wait: ${kWaitSeconds}s
EOF

# shellcheck source=../support/ordertrace_server.sh
source "$here/../support/ordertrace_server.sh"

nonce="$(printf '%08x' "$((RANDOM * 32768 + RANDOM))")"
trace_a="${nonce}000000000000000000000a0a"
trace_b="${nonce}000000000000000000000b0b"
root_id=00000000000000aa

# span TRACE SPAN_ID NAME STATUS_CODE [PARENT]: one span of 1 ms ending now, as OTLP/JSON.
span() {
  local end start parent=""
  end="$(date +%s%N)"
  start=$((end - 1000000))
  [[ -n "${5:-}" ]] && parent="\"parentSpanId\":\"$5\","
  echo "{\"traceId\":\"$1\",\"spanId\":\"$2\",$parent\"name\":\"$3\",\
\"startTimeUnixNano\":\"$start\",\"endTimeUnixNano\":\"$end\",\"status\":{\"code\":$4}}"
}

# send SPAN_JSON...: prints the HTTP code.
send() {
  local spans
  spans="$(IFS=,; echo "$*")"
  curl -sS -o /dev/null -w '%{http_code}' --max-time 5 -H 'Content-Type: application/json' \
    --data-binary "{\"resourceSpans\":[{\"resource\":{\"attributes\":[{\"key\":\"service.name\",\
\"value\":{\"stringValue\":\"sampler-restart\"}}]},\"scopeSpans\":[{\"spans\":[$spans]}]}]}" \
    "$otlp_url" 2> /dev/null || echo 000
}

# The names of the spans stored for trace $1, sorted, comma-separated.
stored_names() {
  curl -sS --max-time 5 "$api_url/api/traces/$1" 2> /dev/null |
    jq -r '[(.batches // [])[].scopeSpans[]?.spans[]?.name] | sort | join(",")' 2> /dev/null
}

metric() {
  curl -fsS --max-time 5 "$api_url/metrics" 2> /dev/null | awk -v m="$1" '$1 == m { print $2 }'
}

start_server || fail "ordertrace did not start"
check "trace A acknowledged" [ "$(send "$(span "$trace_a" "$root_id" root 0)" \
  "$(span "$trace_a" 00000000000000a1 detail-a 0 "$root_id")")" = 200 ]
check "trace B acknowledged" [ "$(send "$(span "$trace_b" "$root_id" root 0)" \
  "$(span "$trace_b" 00000000000000b1 detail-b 0 "$root_id")")" = 200 ]
sent_at=$SECONDS
check "both detail spans wait for a decision" [ "$(metric ordertrace_sampling_pending_spans)" = 2 ]
check "before the crash, only the roots are stored" [ "$(stored_names "$trace_a")" = root ]

kill -9 "$server_pid"
wait "$server_pid" 2> /dev/null || true
server_pid=""
start_server || fail "ordertrace did not start again after kill -9"
check "the detail waits again after the restart" \
  [ "$(metric ordertrace_sampling_pending_spans)" = 2 ]
check "a failed span of trace A is acknowledged" \
  [ "$(send "$(span "$trace_a" 00000000000000a2 failed-a 2 "$root_id")")" = 200 ]
check "trace A keeps the detail acknowledged before the crash" \
  [ "$(stored_names "$trace_a")" = "detail-a,failed-a,root" ]

# Past trace B's deadline (counted from before the crash), its detail is dropped: wait for the
# sampler to have decided it (nothing pending any more) rather than for the clock.
decided_by=$((sent_at + kWaitSeconds + 30))
until [ "$(metric ordertrace_sampling_pending_spans)" = 0 ] || ((SECONDS > decided_by)); do
  sleep 0.2
done
check "a failed span of trace B after its deadline is acknowledged" \
  [ "$(send "$(span "$trace_b" 00000000000000b2 failed-b 2 "$root_id")")" = 200 ]
check "trace B's detail was dropped as without a crash" \
  [ "$(stored_names "$trace_b")" = "failed-b,root" ]
check "nothing waits any more" [ "$(metric ordertrace_sampling_pending_spans)" = 0 ]

# Decided before the next restart: nothing comes back.
kill -9 "$server_pid"
wait "$server_pid" 2> /dev/null || true
server_pid=""
start_server || fail "ordertrace did not start a third time"
check "decided detail is not restored again" [ "$(metric ordertrace_sampling_pending_spans)" = 0 ]
check "trace A reads the same after another restart" \
  [ "$(stored_names "$trace_a")" = "detail-a,failed-a,root" ]

echo "sampler_restart: $passed passed, $failed failed"
((failed == 0)) || { tail -20 "$work/server.log" >&2; exit 1; }
