#!/usr/bin/env bash
# The OTLP forward (docs/architecture.md, "Forward"), with two real ordertrace processes: A
# forwards what it stores to B.
#  1. OTLP/HTTP: spans sent to A appear in B (B's /api/traces).
#  2. B down while spans are sent to A (acknowledged, queued), B up: all arrive.
#  3. kill -9 A with spans queued (B down), restart A, B up: all arrive.
#  4. OTLP/gRPC: the same forward over gRPC, and again across B down and up. With tail sampling
#     on A: kept spans go on, detail released later goes on, dropped detail never.
#  5. A Python endpoint that records requests: the configured headers arrive, the body is OTLP
#     protobuf (decoded by the wire format), operator_id is not in it in clear, a 429 with
#     Retry-After: 1 is waited out and counted.
#  6. TLS: B serves TLS with a CA made by tests/support/make_test_ca.sh; A forwards over https
#     and over gRPC with SSL credentials trusting it; without the CA nothing is sent.
#
# Usage: tests/forward/forward_test.sh [path/to/ordertrace]
# Needs bash, curl, jq, openssl, python3. Loopback only; about 15 s, bounded at 90 s.
# pid_a, pid_b and pid_rec are read through stop's indirection (${!1}).
# shellcheck disable=SC2034
set -euo pipefail

e2e_name=forward
kBudgetSeconds=90
readonly kSpans=20 # spans per trace sent in each step

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=../support/e2e_checks.sh
source "$here/../support/e2e_checks.sh"
bin="${1:-${ORDERTRACE_BIN:-$here/../../build/src/ordertrace}}"
[[ -x "$bin" ]] || { echo "forward: no executable ordertrace at $bin" >&2; exit 2; }
for tool in curl jq openssl python3; do
  command -v "$tool" > /dev/null || { echo "forward: $tool is required" >&2; exit 2; }
done

root="$(mktemp -d "${TMPDIR:-/tmp}/ordertrace-forward.XXXXXX")"
pid_a="" pid_b="" pid_rec=""
stop() { # stop PID_VAR [SIGNAL]
  local pid=${!1}
  [[ -n "$pid" ]] || return 0
  kill "-${2:-TERM}" "$pid" 2> /dev/null || true
  # A clean stop waits for ordertrace's shutdown; bounded by the kill -9 below.
  for _ in $(seq 100); do kill -0 "$pid" 2> /dev/null || break; sleep 0.05; done
  kill -9 "$pid" 2> /dev/null || true
  wait "$pid" 2> /dev/null || true
  printf -v "$1" '%s' ""
}
cleanup() {
  stop pid_a KILL
  stop pid_b KILL
  stop pid_rec KILL
  if ((failed > 0)) || [[ ${keep_logs:-} == 1 ]]; then
    for log in "$root"/*/server.log; do
      echo "--- $log (tail)" >&2
      tail -15 "$log" >&2
    done
  fi
  rm -rf "$root"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# shellcheck source=../support/ordertrace_server.sh
source "$here/../support/ordertrace_server.sh"

mkdir -p "$root/a" "$root/b"
b_cacert="" # the CA B's certificate is checked against, once B serves TLS
ports_a="$(free_ports)"
ports_b="$(free_ports)"
read -r b_grpc b_http _ <<< "$ports_b"

# config_b [EXTRA_YAML]
config_b() {
  cat > "$root/b/ordertrace.yaml" << EOF
data_dir: $root/b/data
store:
  min_free_mb: 0
sampling:
  enabled: false
${1:-}
EOF
}

# config_a ENDPOINT PROTOCOL [EXTRA_YAML]: A stores every span and forwards to ENDPOINT.
config_a() {
  cat > "$root/a/ordertrace.yaml" << EOF
data_dir: $root/a/data
store:
  min_free_mb: 0
sampling:
  ${a_sampling:-enabled: false}
forward:
  endpoint: $1
  protocol: $2
  timeout: 2s
  initial_backoff: 100ms
  max_backoff: 500ms
${3:-}
EOF
}

start_a() {
  work="$root/a" server_ports="$ports_a" start_server || fail "A did not start"
  pid_a=$server_pid a_otlp=$otlp_url a_api=$api_url
}
start_b() {
  work="$root/b" server_ports="$ports_b" server_cacert="$b_cacert" start_server ||
    fail "B did not start"
  pid_b=$server_pid b_api=$api_url
}

nonce="$(printf '%08x' "$((RANDOM * 32768 + RANDOM))")"
# trace_of STEP: the trace id of a step's spans.
trace_of() { printf '%s%024x' "$nonce" "$1"; }

# send_spans STEP: kSpans spans of trace_of STEP to A (OTLP/JSON), each with an operator_id, an
# e-mail address and a phone number (which ingest removes: they must never be forwarded).
# Prints the HTTP code.
send_spans() {
  local trace spans="" end i
  trace="$(trace_of "$1")"
  end="$(date +%s%N)"
  for ((i = 1; i <= kSpans; i++)); do
    spans+="${spans:+,}{\"traceId\":\"$trace\",\"spanId\":\"$(printf '%016x' "$i")\",\
\"name\":\"step$1.span$i\",\"startTimeUnixNano\":\"$((end - 1000000))\",\
\"endTimeUnixNano\":\"$end\",\"attributes\":[{\"key\":\"operator_id\",\
\"value\":{\"stringValue\":\"OP-clear-4711\"}},{\"key\":\"customer.email\",\
\"value\":{\"stringValue\":\"jane.forward@example.com\"}},{\"key\":\"note\",\
\"value\":{\"stringValue\":\"call +49 30 7654321 before noon\"}}]}"
  done
  curl -sS -o /dev/null -w '%{http_code}' --max-time 5 -H 'Content-Type: application/json' \
    --data-binary "{\"resourceSpans\":[{\"resource\":{\"attributes\":[{\"key\":\"service.name\",\
\"value\":{\"stringValue\":\"forward-test\"}}]},\"scopeSpans\":[{\"spans\":[$spans]}]}]}" \
    "$a_otlp" 2> /dev/null || echo 000
}

# span_json TRACE SPAN_ID NAME STATUS_CODE [PARENT]: one span of 1 ms ending now, as OTLP/JSON.
span_json() {
  local end parent=""
  end="$(date +%s%N)"
  [[ -n "${5:-}" ]] && parent="\"parentSpanId\":\"$5\","
  echo "{\"traceId\":\"$1\",\"spanId\":\"$2\",$parent\"name\":\"$3\",\
\"startTimeUnixNano\":\"$((end - 1000000))\",\"endTimeUnixNano\":\"$end\",\"status\":{\"code\":$4}}"
}

# send_json SPAN_JSON...: the spans to A in one request; prints the HTTP code.
send_json() {
  local spans
  spans="$(IFS=,; echo "$*")"
  curl -sS -o /dev/null -w '%{http_code}' --max-time 5 -H 'Content-Type: application/json' \
    --data-binary "{\"resourceSpans\":[{\"resource\":{\"attributes\":[{\"key\":\"service.name\",\
\"value\":{\"stringValue\":\"forward-test\"}}]},\"scopeSpans\":[{\"spans\":[$spans]}]}]}" \
    "$a_otlp" 2> /dev/null || echo 000
}

# spans_in_b_are STEP N: B serves exactly N spans of trace_of STEP.
spans_in_b_are() { [[ "$(spans_in_b "$1")" == "$2" ]]; }

# eventually SECONDS COMMAND...: COMMAND succeeds within SECONDS (of the budget).
eventually() {
  local deadline=$((SECONDS + $(budget "$1")))
  while ((SECONDS < deadline)); do
    "${@:2}" && return 0
    sleep 0.2
  done
  "${@:2}"
}

# spans_in_b STEP: how many spans of trace_of STEP B serves.
spans_in_b() {
  curl -sS --max-time 2 ${b_cacert:+--cacert "$b_cacert"} "$b_api/api/traces/$(trace_of "$1")" \
    2> /dev/null |
    jq '[(.batches // [])[].scopeSpans[]?.spans[]?] | length' 2> /dev/null || echo 0
}

# arrives STEP SECONDS: waits until B serves all kSpans spans of the step.
arrives() {
  local deadline=$((SECONDS + $(budget "$2")))
  while ((SECONDS < deadline)); do
    [[ "$(spans_in_b "$1")" == "$kSpans" ]] && return 0
    sleep 0.2
  done
  echo "forward: step $1: B has $(spans_in_b "$1") of $kSpans spans" >&2
  return 1
}

# metric NAME_WITH_LABELS: A's value of one series ("" when absent).
metric() {
  curl -sS --max-time 2 "$a_api/metrics" 2> /dev/null |
    awk -v name="$1" '$1 == name { print $2 }'
}

is_200() { [[ "$1" == 200 ]]; }
positive() { [[ -n "$1" ]] && awk -v v="$1" 'BEGIN { exit !(v > 0) }'; }
# metric_positive NAME: A's series NAME is above 0 within 5 s.
metric_positive() {
  for _ in $(seq 50); do
    positive "$(metric "$1")" && return 0
    sleep 0.1
  done
  return 1
}

# 1. OTLP/HTTP.
config_b
start_b
config_a "http://127.0.0.1:$b_http/v1/traces" http/protobuf
start_a
check "step 1 accepted by A" is_200 "$(send_spans 1)"
check "OTLP/HTTP: spans sent to A appear in B" arrives 1 15
check "forward metrics: sent spans counted" \
  metric_positive 'ordertrace_forward_spans_total{result="sent"}'

# 2. B down, spans sent to A, B up.
stop pid_b
check "step 2 accepted by A while B is down" is_200 "$(send_spans 2)"
sleep 1
check "the queue holds them (ordertrace_forward_queue_bytes > 0)" \
  metric_positive ordertrace_forward_queue_bytes
check "failed attempts are retried (ordertrace_forward_retries_total > 0)" \
  metric_positive ordertrace_forward_retries_total
start_b
check "B down, then up: all arrive" arrives 2 15

# 3. kill -9 A with a queue.
stop pid_b
check "step 3 accepted by A while B is down" is_200 "$(send_spans 3)"
stop pid_a KILL
start_b
start_a
check "kill -9 A with a queue, restart: all arrive" arrives 3 15

# 4. OTLP/gRPC, and again across B down and up.
stop pid_a
config_a "127.0.0.1:$b_grpc" grpc
start_a
check "step 4 accepted by A" is_200 "$(send_spans 4)"
check "OTLP/gRPC: spans sent to A appear in B" arrives 4 15
stop pid_b
check "step 5 accepted by A while B is down" is_200 "$(send_spans 5)"
sleep 1
start_b
check "OTLP/gRPC: B down, then up: all arrive" arrives 5 20
check "gRPC answers counted by code" metric_positive 'ordertrace_forward_requests_total{code="OK"}'

# 4b. Tail sampling on A (detail kept only for a reason, decided within 2 s): the root span goes
# on at once, held detail goes on once a failed span keeps its trace, dropped detail never.
stop pid_a
a_sampling="enabled: true
  ratio: 0
  decision_wait: 2s"
config_a "127.0.0.1:$b_grpc" grpc
a_sampling=""
start_a
kept="$(trace_of 11)" dropped="$(trace_of 12)"
check "a root and a detail span of two traces accepted by A" is_200 "$(send_json \
  "$(span_json "$kept" 00000000000000a1 root 0)" \
  "$(span_json "$kept" 00000000000000a2 detail 0 00000000000000a1)" \
  "$(span_json "$dropped" 00000000000000b1 root 0)" \
  "$(span_json "$dropped" 00000000000000b2 detail 0 00000000000000b1)")"
check "roots go on at once, held detail does not" eventually 10 spans_in_b_are 11 1
check "a failed span of the first trace accepted" is_200 "$(send_json \
  "$(span_json "$kept" 00000000000000a3 failed 2 00000000000000a1)")"
check "the detail the sampler releases then goes on too" eventually 10 spans_in_b_are 11 3
# The second trace's decision time passes: its detail is dropped, which A counts.
check "A drops the second trace's detail once its decision time passes" eventually 10 \
  metric_positive 'ordertrace_sampling_spans_total{outcome="dropped_detail"}'
check "dropped detail is never forwarded" spans_in_b_are 12 1
stop pid_a
stop pid_b

# recorder DIR [serve options]: starts the recording endpoint, sets rec_port.
recorder() {
  mkdir -p "$1"
  python3 "$here/otlp_recorder.py" serve "$@" 2> "$1/recorder.log" &
  pid_rec=$!
  for _ in $(seq 100); do [[ -s "$1/port" ]] && break; sleep 0.05; done
  [[ -s "$1/port" ]] || fail "the recorder did not start: $(cat "$1/recorder.log")"
  rec_port="$(cat "$1/port")"
}

# recorded DIR N SECONDS: waits until the recorder has N requests.
recorded() {
  local deadline=$((SECONDS + $(budget "$3")))
  while ((SECONDS < deadline)); do
    [[ -s "$1/$2.bin" && -s "$1/$2.json" ]] && return 0
    sleep 0.1
  done
  return 1
}

header_is() { # header_is DIR N NAME VALUE
  [[ "$(jq -r --arg h "$3" '.headers[$h] // ""' "$1/$2.json")" == "$4" ]]
}

# The request N of DIR decodes as OTLP protobuf with all kSpans spans of step STEP.
body_is_otlp() { # body_is_otlp DIR N STEP
  local decoded
  decoded="$(python3 "$here/otlp_recorder.py" decode "$1/$2.bin")" || return 1
  [[ "$(jq '.spans' <<< "$decoded")" == "$kSpans" &&
    "$(jq -r '.names[0]' <<< "$decoded")" == "step$3.span1" ]] || { echo "$decoded" >&2; return 1; }
}

# Every operator_id in request N of DIR is an HMAC ("hmac:" and hex), none in clear.
operator_ids_hashed() { # operator_ids_hashed DIR N
  local decoded
  decoded="$(python3 "$here/otlp_recorder.py" decode "$1/$2.bin")" || return 1
  ! grep -q 'OP-clear-4711' "$1/$2.bin" || { echo "operator_id in clear" >&2; return 1; }
  jq -e --argjson n "$kSpans" '(.attributes.operator_id // []) | length == $n and
    all(test("^hmac:[0-9a-f]{32}$"))' <<< "$decoded" > /dev/null ||
    { jq -c .attributes.operator_id <<< "$decoded" >&2; return 1; }
}

# 5. Headers, body, Retry-After at a recording endpoint.
rec="$root/rec"
recorder "$rec" --first 429 --retry-after 1
config_a "http://127.0.0.1:$rec_port/v1/traces" http/protobuf "  headers:
    X-Scope-OrgID: alexandrite
    Authorization: Bearer forward-test-token"
start_a
check "step 6 accepted by A" is_200 "$(send_spans 6)"
check "the recorder got the request, and again after the 429" recorded "$rec" 2 15
check "X-Scope-OrgID reaches the endpoint" header_is "$rec" 2 x-scope-orgid alexandrite
check "Authorization reaches the endpoint" header_is "$rec" 2 authorization \
  "Bearer forward-test-token"
check "Content-Type is application/x-protobuf" header_is "$rec" 2 content-type \
  application/x-protobuf
check "POSTed to the endpoint's path" test "$(jq -r .path "$rec/2.json")" == /v1/traces
check "the body is OTLP protobuf with every span" body_is_otlp "$rec" 2 6
check "operator_id is hashed in what is forwarded" operator_ids_hashed "$rec" 2
check "no e-mail address or phone number is forwarded" \
  bash -c '! grep -a -q -e "jane.forward@example.com" -e "7654321" "$1"/*.bin' _ "$rec"
waited="$(jq -n --slurpfile a "$rec/1.json" --slurpfile b "$rec/2.json" '$b[0].time - $a[0].time')"
check "Retry-After: 1 was waited out (${waited}s)" awk -v w="$waited" 'BEGIN { exit !(w >= 0.9) }'
check "the 429 is counted" test "$(metric 'ordertrace_forward_requests_total{code="429"}')" = 1
stop pid_a
stop pid_rec

# 6. TLS: B serves TLS with a certificate from a CA made here; A trusts that CA.
ca="$root/ca"
bash "$here/../support/make_test_ca.sh" "$ca" || fail "make_test_ca.sh failed"
config_b "tls:
  cert_file: $ca/server.pem
  key_file: $ca/server.key"
b_cacert="$ca/ca.pem"
start_b
config_a "https://127.0.0.1:$b_http/v1/traces" http/protobuf "  ca_file: $ca/ca.pem"
start_a
check "step 7 accepted by A" is_200 "$(send_spans 7)"
check "TLS: OTLP/HTTP over https to B, trusting forward.ca_file" arrives 7 15
stop pid_a
config_a "127.0.0.1:$b_grpc" grpc "  tls: true
  ca_file: $ca/ca.pem"
start_a
check "step 8 accepted by A" is_200 "$(send_spans 8)"
check "TLS: OTLP/gRPC with SSL credentials to B" arrives 8 15
stop pid_a
# Without the CA, B's certificate is refused: nothing is sent, the spans stay queued.
config_a "https://127.0.0.1:$b_http/v1/traces" http/protobuf
start_a
check "step 9 accepted by A" is_200 "$(send_spans 9)"
check "TLS: an untrusted certificate fails the attempt (code error)" \
  metric_positive 'ordertrace_forward_requests_total{code="error"}'
check "TLS: nothing reaches B" test "$(spans_in_b 9)" = 0
check "TLS: the spans stay queued" metric_positive ordertrace_forward_queue_bytes

echo "$e2e_name: $passed passed, $failed failed (${SECONDS}s)"
((failed == 0))
