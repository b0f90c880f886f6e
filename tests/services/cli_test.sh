#!/usr/bin/env bash
# The services' executables as an operator runs them (docs/services.md, "Running them"):
#   - a bad setting (flag, environment variable or YAML key) stops a service at start with one
#     line on stderr naming the setting, and exit code 2;
#   - SIGTERM or SIGINT stops a running service with exit code 0 within a few seconds, also while
#     RabbitMQ is unreachable and messages wait in its outbox, after flushing its spans to the
#     collector; with the collector unreachable too, the flush gives up within its bound.
#
#   tests/services/cli_test.sh SHOP_API CRM_API MES_API
#
# No RabbitMQ is needed: the services are pointed at a closed loopback port. The OTLP collector is
# a small Python HTTP server that counts the export requests it receives.
set -uo pipefail

if [[ $# -ne 3 ]]; then
  echo "usage: $0 SHOP_API CRM_API MES_API" >&2
  exit 2
fi
SHOP=$(realpath "$1") CRM=$(realpath "$2") MES=$(realpath "$3")
readonly SHOP CRM MES
# Time allowed from the signal to the exit: the services stop their HTTP server, consumers and
# outbox relay at once, then flush spans (bounded at 5 s when the collector is away).
readonly STOP_SECONDS=3
readonly STOP_SECONDS_COLLECTOR_DOWN=8

WORK=$(mktemp -d /tmp/ot-services-cli-XXXXXX)
readonly WORK
PIDS=()
cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do
    kill -KILL "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
  done
  rm -rf "$WORK"
}
trap cleanup EXIT
# Drops a reaped process from PIDS, so that cleanup never signals a reused pid.
forget() {
  local kept=() pid
  for pid in "${PIDS[@]}"; do [[ $pid == "$1" ]] || kept+=("$pid"); done
  PIDS=("${kept[@]}")
}

FAILURES=0
fail() {
  echo "FAIL: $*" >&2
  FAILURES=$((FAILURES + 1))
}

# free_port: a free loopback TCP port.
# shellcheck source=../../scripts/lib/free_ports.sh
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/../../scripts/lib/free_ports.sh"

# --- Bad settings: exit 2, nothing on stdout, one line on stderr that names the setting ---

# expect_bad_setting NAME SETTING -- COMMAND...
expect_bad_setting() {
  local name=$1 setting=$2
  shift 3
  local out=$WORK/bad.out err=$WORK/bad.err rc
  (cd "$WORK" && timeout 10 "$@") >"$out" 2>"$err"
  rc=$?
  local lines
  lines=$(wc -l <"$err")
  if [[ $rc -ne 2 ]]; then
    fail "$name: exit $rc, expected 2; stderr: $(head -c 300 "$err")"
  elif [[ $lines -ne 1 ]]; then
    fail "$name: $lines lines on stderr, expected one: $(head -c 300 "$err")"
  elif ! grep -q -- "$setting" "$err"; then
    fail "$name: the error does not name '$setting': $(cat "$err")"
  elif [[ -s $out ]]; then
    fail "$name: printed on stdout: $(head -c 300 "$out")"
  else
    echo "ok: $name -> exit 2: $(cat "$err")"
  fi
}

printf 'time_scale: 60\nno_such_setting: 1\n' >"$WORK/unknown_key.yaml"
printf 'time_scale: -4\n' >"$WORK/bad_value.yaml"
for binary in "$SHOP" "$CRM" "$MES"; do
  name=$(basename "$binary")
  expect_bad_setting "$name --time-scale -1" time_scale -- "$binary" --time-scale -1
  expect_bad_setting "$name --time-scale fast" time_scale -- "$binary" --time-scale fast
  expect_bad_setting "$name --http-listen nonsense" http_listen -- \
    "$binary" --http-listen nonsense
  expect_bad_setting "$name --max-body-bytes 0" max_body_bytes -- "$binary" --max-body-bytes 0
  expect_bad_setting "$name ALEXANDRITE_TIME_SCALE=0" time_scale -- \
    env ALEXANDRITE_TIME_SCALE=0 "$binary"
  expect_bad_setting "$name --config (unknown key)" no_such_setting -- \
    "$binary" --config "$WORK/unknown_key.yaml"
  expect_bad_setting "$name --config (bad value)" time_scale -- \
    "$binary" --config "$WORK/bad_value.yaml"
done
expect_bad_setting "shop-api --time-scal 5 (unknown flag)" time-scal -- "$SHOP" --time-scal 5
expect_bad_setting "crm-api --time-scale (no value)" time-scale -- "$CRM" --time-scale
expect_bad_setting "mes-api --dashboard-indexes maybe" dashboard_indexes -- \
  "$MES" --dashboard-indexes maybe
expect_bad_setting "mes-api --seed-history -3" seed_history -- "$MES" --seed-history -3

# --- Stopping by signal ---

COLLECTOR_PORT=$(free_port)
readonly COLLECTOR_PORT
readonly EXPORTS=$WORK/exports.log
cat >"$WORK/collector.py" <<'EOF'
import http.server
import sys


class Collector(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        with open(sys.argv[2], "a") as log:
            log.write(self.path + "\n")
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), Collector).serve_forever()
EOF
: >"$EXPORTS"
python3 "$WORK/collector.py" "$COLLECTOR_PORT" "$EXPORTS" &
PIDS+=($!)

# A port nothing listens on: RabbitMQ (and, in one case, the collector) is unreachable.
CLOSED_PORT=$(free_port)
readonly CLOSED_PORT

# wait_http PORT PATH -> 0 once http://127.0.0.1:PORT/PATH answers, within 10 s.
wait_http() {
  local _
  for _ in $(seq 1 100); do
    curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$1$2" && return 0
    sleep 0.1
  done
  return 1
}

# check_stop NAME SIGNAL OTLP_ENDPOINT LIMIT_SECONDS BINARY REQUEST_PATH
# Starts the service, makes one traced request (REQUEST_PATH; shop's creates an order, whose
# messages then wait in the outbox), sends SIGNAL and expects exit 0 within LIMIT_SECONDS.
check_stop() {
  local name=$1 signal=$2 otlp=$3 limit=$4 binary=$5 request=$6
  local port
  port=$(free_port)
  local log=$WORK/$name.log
  "$binary" --http-listen "127.0.0.1:$port" --amqp-url "amqp://guest:guest@127.0.0.1:$CLOSED_PORT/" \
    --otlp-endpoint "$otlp" --db "$WORK/$name.db" --time-scale 3600 >"$log" 2>&1 &
  local pid=$!
  PIDS+=("$pid")
  if ! wait_http "$port" /healthz; then
    fail "$name: never answered /healthz; log: $(tail -n 5 "$log")"
    return
  fi
  local code
  code=$(curl -s -o "$WORK/$name.reply" -w '%{http_code}' --max-time 5 -X POST \
    -H 'Content-Type: application/json' -d '{"customer_id": "cli-test"}' \
    "http://127.0.0.1:$port$request")
  [[ $code =~ ^(201|404)$ ]] || fail "$name: POST $request answered $code: $(cat "$WORK/$name.reply")"

  local start_ns
  start_ns=$(date +%s%N)
  kill "-$signal" "$pid"
  local deadline=$((SECONDS + limit))
  while kill -0 "$pid" 2>/dev/null && ((SECONDS <= deadline)); do sleep 0.05; done
  if kill -0 "$pid" 2>/dev/null; then
    fail "$name: still running $limit s after SIG$signal; log: $(tail -n 5 "$log")"
    return
  fi
  wait "$pid"
  local rc=$?
  forget "$pid"
  local millis=$((($(date +%s%N) - start_ns) / 1000000))
  if [[ $rc -ne 0 ]]; then
    fail "$name: exit $rc after SIG$signal, expected 0; log: $(tail -n 5 "$log")"
  else
    echo "ok: $name exits 0 ${millis} ms after SIG$signal"
  fi
}

exports_before=$(wc -l <"$EXPORTS")
check_stop shop-term TERM "http://127.0.0.1:$COLLECTOR_PORT/v1/traces" "$STOP_SECONDS" \
  "$SHOP" /api/orders
check_stop crm-term TERM "http://127.0.0.1:$COLLECTOR_PORT/v1/traces" "$STOP_SECONDS" \
  "$CRM" /api/orders/no-such-order/approve
check_stop mes-int INT "http://127.0.0.1:$COLLECTOR_PORT/v1/traces" "$STOP_SECONDS" \
  "$MES" /api/orders/no-such-order/ship
exports_after=$(wc -l <"$EXPORTS")
# Each service made spans; each must have reached the collector by the time it exited.
if ((exports_after - exports_before < 3)); then
  fail "the collector received $((exports_after - exports_before)) export(s) from 3 services"
else
  echo "ok: the collector received $((exports_after - exports_before)) export(s)"
fi
grep -qv '^/v1/traces$' "$EXPORTS" && fail "exports to an unexpected path: $(sort -u "$EXPORTS")"

# Collector and broker both away: the flush gives up within its bound and the exit stays clean.
check_stop shop-alone TERM "http://127.0.0.1:$CLOSED_PORT/v1/traces" \
  "$STOP_SECONDS_COLLECTOR_DOWN" "$SHOP" /api/orders

if ((FAILURES > 0)); then
  echo "$FAILURES check(s) failed" >&2
  exit 1
fi
echo "all checks passed"
