#!/usr/bin/env bash
# Crash durability: every OTLP request that ordertrace answered 200 must survive `kill -9`.
#
# Phase 1 sends $RESTART_REQUESTS (default 200) OTLP/JSON requests one after another (each:
# one trace, kSpans spans of distinct orders), kills the server with SIGKILL right after the
# last acknowledged one, and restarts it on the same data folder. Phase 2 runs kSenders
# concurrent sender loops and kills the server while they are still sending; only requests
# answered 200 are recorded. After each restart every acknowledged order and trace must be
# readable through the HTTP API. The last line reads "restart: N passed, M failed".
#
# Usage: tests/restart/restart_test.sh [path/to/ordertrace]
#   (default: $ORDERTRACE_BIN, else build/src/ordertrace)
# Needs bash, curl, jq and python3 (for free ports). Loopback only; bounded in count and time.
set -euo pipefail

readonly kRequests="${RESTART_REQUESTS:-200}"     # phase 1 requests
readonly kSpans=3                                  # spans (orders) per request
readonly kSenders=2                                # phase 2 concurrent senders
readonly kSenderMaxRequests=400                    # per sender, an upper bound
readonly kAcksBeforeKill=100                       # phase 2 kills after this many acks...
readonly kAckWaitSeconds=30                        # ...or after this long
readonly kReadySeconds=15
readonly kHost=127.0.0.1

if [[ ! "$kRequests" =~ ^[0-9]+$ ]] || ((kRequests < 1 || kRequests > 5000)); then
  echo "restart: RESTART_REQUESTS must be from 1 to 5000" >&2
  exit 2
fi

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
bin="${1:-${ORDERTRACE_BIN:-$here/../../build/src/ordertrace}}"
if [[ ! -x "$bin" ]]; then
  echo "restart: no executable ordertrace at $bin (build it first, or pass its path)" >&2
  exit 2
fi
for tool in curl jq python3; do
  command -v "$tool" > /dev/null || { echo "restart: $tool is required" >&2; exit 2; }
done

work="$(mktemp -d "${TMPDIR:-/tmp}/ordertrace-restart.XXXXXX")"
data_dir="$work/data"
server_pid=""
sender_pids=()

cleanup() {
  local pid
  for pid in "${sender_pids[@]}" $server_pid; do
    kill -9 "$pid" 2> /dev/null || true
  done
  for pid in "${sender_pids[@]}" $server_pid; do
    wait "$pid" 2> /dev/null || true
  done
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

fail() {
  echo "restart: FAILED: $*" >&2
  if [[ -f "$work/server.log" ]]; then
    echo "--- last lines of the server log ---" >&2
    tail -n 20 "$work/server.log" >&2
  fi
  exit 1
}

# free_ports: free loopback TCP ports.
# shellcheck source=../../scripts/lib/free_ports.sh
source "$here/../../scripts/lib/free_ports.sh"

# Starts ordertrace on fresh free ports over $data_dir and waits for /readyz; sets server_pid,
# otlp_url and api_url. Retries on new ports when a start fails.
start_server() {
  local attempt grpc_port http_port api_port deadline
  for attempt in 1 2 3; do
    read -r grpc_port http_port api_port <<< "$(free_ports)"
    "$bin" --data-dir "$data_dir" \
      --otlp-grpc-listen "$kHost:$grpc_port" \
      --otlp-http-listen "$kHost:$http_port" \
      --http-listen "$kHost:$api_port" >> "$work/server.log" 2>&1 &
    server_pid=$!
    otlp_url="http://$kHost:$http_port/v1/traces"
    api_url="http://$kHost:$api_port"
    deadline=$((SECONDS + kReadySeconds))
    while ((SECONDS < deadline)) && kill -0 "$server_pid" 2> /dev/null; do
      if curl -fsS --max-time 1 -o /dev/null "$api_url/readyz" 2> /dev/null; then
        return 0
      fi
      sleep 0.1
    done
    kill -9 "$server_pid" 2> /dev/null || true
    wait "$server_pid" 2> /dev/null || true
    server_pid=""
    echo "restart: start attempt $attempt failed; retrying" >&2
  done
  fail "ordertrace did not become ready within ${kReadySeconds}s"
}

crash_server() {
  kill -9 "$server_pid"
  wait "$server_pid" 2> /dev/null || true
  server_pid=""
}

nonce="$(printf '%08x' "$((RANDOM * 32768 + RANDOM))")"
start_nanos="$(($(date +%s%N) - 10 * 1000000000))"

# Sends request number $3 of sender $2 in phase $1; on 200 appends one line to file $4:
#   TRACE_ID SPAN_ID,SPAN_ID,... ORDER_ID ORDER_ID ...
# Returns non-zero when the request was not acknowledged.
send_request() {
  local phase=$1 sender=$2 i=$3 acks=$4
  local trace span order start end k code spans="" span_ids="" orders=""
  trace="$(printf '%s%04x%04x%016x' "$nonce" "$phase" "$sender" "$i")"
  start=$((start_nanos + i * 1000))
  end=$((start + 500))
  for ((k = 1; k <= kSpans; ++k)); do
    span="$(printf '%02x%02x%04x%08x' "$phase" "$sender" "$k" "$i")"
    order="restart-$nonce-$phase-$sender-$i-$k"
    spans+="${spans:+,}{\"traceId\":\"$trace\",\"spanId\":\"$span\",\"name\":\"restart.submit\",\
\"kind\":1,\"startTimeUnixNano\":\"$start\",\"endTimeUnixNano\":\"$end\",\"attributes\":[\
{\"key\":\"order_id\",\"value\":{\"stringValue\":\"$order\"}},\
{\"key\":\"new_status\",\"value\":{\"stringValue\":\"SUBMITTED\"}},\
{\"key\":\"event_version\",\"value\":{\"intValue\":\"1\"}}]}"
    span_ids+="${span_ids:+,}$span"
    orders+=" $order"
  done
  local body="{\"resourceSpans\":[{\"resource\":{\"attributes\":[{\"key\":\"service.name\",\
\"value\":{\"stringValue\":\"restart-test\"}}]},\"scopeSpans\":[{\"scope\":{\"name\":\"restart\"},\
\"spans\":[$spans]}]}]}"
  code="$(curl -sS -o /dev/null -w '%{http_code}' --connect-timeout 2 --max-time 5 \
    -H 'Content-Type: application/json' --data-binary "$body" "$otlp_url" 2> /dev/null)" || true
  [[ "$code" == 200 ]] || return 1
  echo "$trace $span_ids$orders" >> "$acks"
}

# Phase 2's sender: up to kSenderMaxRequests requests; stops after 3 failures in a row (the
# server is gone).
sender_loop() {
  local sender=$1 acks=$2 i failures=0
  for ((i = 1; i <= kSenderMaxRequests; ++i)); do
    if send_request 2 "$sender" "$i" "$acks"; then
      failures=0
    elif ((++failures >= 3)); then
      return 0
    fi
  done
}

passed=0
failed=0

# GETs every URL in file $1 with one curl and prints the answers, one JSON document a line.
# A connection per request: on a kept-alive connection each answer after the first is
# delayed ~40 ms (the server does not set TCP_NODELAY).
get_all() {
  sed 's/.*/url = "&"/' "$1" > "$1.curl"
  curl -sS --connect-timeout 2 --max-time 10 -H 'Connection: close' -w '\n' -K "$1.curl" \
    2> /dev/null || true
}

# Checks every line of the acknowledgement files given: each order answers with its trace and
# status, and each trace holds exactly its spans. Sets passed and failed; names what is missing.
verify_acks() {
  local expected="$work/expected" got="$work/got" missing="$work/missing"
  # Traces: "TRACE_ID SPAN_ID,..." with the span ids sorted.
  cat "$@" | while read -r trace span_ids _; do
    echo "trace $trace $(tr ',' '\n' <<< "$span_ids" | sort | paste -sd, -)"
  done > "$expected"
  cat "$@" | while read -r trace _ orders; do
    for order in $orders; do echo "order $order $trace SUBMITTED"; done
  done >> "$expected"

  cut -d' ' -f1 "$@" | sed "s|^|$api_url/api/traces/|" > "$work/trace-urls"
  cat "$@" | cut -d' ' -f3- | tr ' ' '\n' | sed "s|^|$api_url/api/v1/orders/|" > "$work/order-urls"
  {
    get_all "$work/trace-urls" | jq -r '[(.batches // [])[].scopeSpans[]?.spans[]?] |
      select(length > 0) | "trace \(.[0].traceId) \(map(.spanId) | sort | join(","))"'
    get_all "$work/order-urls" | jq -r 'select(.order_id != null) |
      "order \(.order_id) \(.trace_id) \(.current_status)"'
  } > "$got" || true

  sort -u "$expected" -o "$expected"
  sort -u "$got" -o "$got"
  comm -23 "$expected" "$got" > "$missing"
  failed=$(wc -l < "$missing")
  passed=$(($(wc -l < "$expected") - failed))
  if ((failed > 0)); then
    echo "restart: $failed missing or wrong after restart (KIND ID TRACE|SPANS STATUS):" >&2
    head -n 50 "$missing" | sed 's/^/restart:   /' >&2
  fi
}

# Phase 1: sequential requests, SIGKILL right after the last acknowledgement.
start_server
acks1="$work/acks-phase1"
: > "$acks1"
for ((i = 1; i <= kRequests; ++i)); do
  send_request 1 0 "$i" "$acks1" || true
done
crash_server
acked1=$(wc -l < "$acks1")
echo "restart: phase 1: $acked1 of $kRequests requests acknowledged, then kill -9"
((acked1 > 0)) || fail "phase 1: no request was acknowledged"

start_server
verify_acks "$acks1"
if ((failed > 0)); then
  echo "restart: $passed passed, $failed failed"
  fail "after the first restart $failed acknowledged orders or traces are missing"
fi

# Phase 2: concurrent senders, SIGKILL while they still send.
acks2=()
for ((s = 1; s <= kSenders; ++s)); do
  acks2+=("$work/acks-phase2-$s")
  : > "${acks2[-1]}"
  sender_loop "$s" "${acks2[-1]}" &
  sender_pids+=($!)
done
deadline=$((SECONDS + kAckWaitSeconds))
while (($(cat "${acks2[@]}" | wc -l) < kAcksBeforeKill)) && ((SECONDS < deadline)); do
  sleep 0.05
done
running=0
for pid in "${sender_pids[@]}"; do
  if kill -0 "$pid" 2> /dev/null; then running=$((running + 1)); fi
done
crash_server
((running > 0)) || fail "phase 2: the senders had finished before the kill"
for pid in "${sender_pids[@]}"; do
  wait "$pid" || true
done
sender_pids=()
acked2=$(cat "${acks2[@]}" | wc -l)
echo "restart: phase 2: $acked2 requests acknowledged;" \
  "kill -9 while $running of $kSenders senders still sent"
((acked2 > 0)) || fail "phase 2: no request was acknowledged"

start_server
verify_acks "$acks1" "${acks2[@]}"
if ((failed > 0)); then
  echo "restart: $passed passed, $failed failed"
  fail "after the second restart $failed acknowledged orders or traces are missing"
fi
echo "restart: $passed passed, 0 failed"
