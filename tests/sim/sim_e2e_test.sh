#!/usr/bin/env bash
# Detection, end to end: the whole system (RabbitMQ, ordertrace, shop-api, crm-api, mes-api;
# scripts/system.sh) on free loopback ports, driven by order-sim.
#
# (a) 200 orders with every kind of fault (--faults all --fault-rate 0.3): every kind is made at
#     least once, and ordertrace's record of every faulted order shows its fault (missed == 0)
#     while no fault-free order looks faulty (false_alarms == 0).
# (b) then 60 fault-free orders on the same system: no false alarm (no order looks stuck).
# Both keep models under 100,000 triangles (5 MB uploads), so that a 2-core machine uploads
# them within the INITIATED stage's time-scaled SLA plus ordertrace's grace.
# order-sim scores both against its ground truth (`order-sim score --json`); the tables are
# printed. The last line reads "sim_e2e: N passed, M failed".
#
# Usage: tests/sim/sim_e2e_test.sh [BUILD_DIR]   (default: $ORDERTRACE_BUILD_DIR, else build/)
# Needs root (RabbitMQ runs as the rabbitmq user), curl, jq, python3. Bounded: at most
# SIM_E2E_SECONDS (default 300) until the system is stopped, which takes at most ~50 s more.
# SIM_E2E_KEEP=1 keeps the temporary folder (logs, truth files) for a look afterwards;
# SIM_E2E_SEED=N repeats a run (order-sim --seed; printed at the start).
set -euo pipefail

readonly kTimeScale=600
readonly kBudgetSeconds="${SIM_E2E_SECONDS:-300}"
readonly kFaultKinds=(lost_status_event lost_price_request calculator_hang calculator_slow
  operator_no_show consumer_crash missed_status_write skipped_status partner_order_dropped)

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
build="$(cd "${1:-${ORDERTRACE_BUILD_DIR:-$root/build}}" 2> /dev/null && pwd)" || {
  echo "sim_e2e: no build folder ${1:-${ORDERTRACE_BUILD_DIR:-$root/build}}" >&2
  exit 2
}
sim="$build/services/order-sim"
if [[ ! -x $sim ]]; then
  echo "sim_e2e: no executable order-sim at $sim (bash scripts/build.sh order-sim)" >&2
  exit 2
fi
for tool in curl jq python3 timeout; do
  command -v "$tool" > /dev/null || { echo "sim_e2e: $tool is required" >&2; exit 2; }
done
[[ $(id -u) -eq 0 ]] || { echo "sim_e2e: must run as root (RabbitMQ runs as user rabbitmq)" >&2; exit 2; }

# shellcheck source=scripts/system.sh
source "$root/scripts/system.sh"

work="$(mktemp -d "${TMPDIR:-/tmp}/ordertrace-sim.XXXXXX")"
chmod 755 "$work" # the rabbitmq user must reach $work/state/rabbitmq
e2e_name=sim_e2e
# shellcheck source=tests/support/e2e_checks.sh
source "$root/tests/support/e2e_checks.sh" # passed, failed, fail, check, budget, e2e_bounded...
seed="${SIM_E2E_SEED:-$RANDOM}"


cleanup() {
  local rc=$?
  trap '' INT TERM
  e2e_stop_child
  system_stop || true
  if ((rc != 0)); then e2e_show_logs "$SYSTEM_LOGS"; fi
  if [[ ${SIM_E2E_KEEP:-0} == 1 ]]; then
    echo "sim_e2e: kept $work" >&2
  else
    rm -rf "$work"
  fi
  return $rc
}
trap cleanup EXIT
trap 'echo "sim_e2e: interrupted" >&2; exit 130' INT TERM


# Renders order-sim's JSON score as a table, like `order-sim score` without --json.
print_score() {
  jq -r '
    def l(w): tostring | . + " " * ([w - length, 0] | max);
    def r(w): tostring | " " * ([w - length, 0] | max) + .;
    def delay: if .detection_delay_seconds then
      "\(.detection_delay_seconds.median * 100 | round / 100) / \(.detection_delay_seconds.max * 100 | round / 100)"
      else "" end;
    ("fault kind" | l(24)) + ("faulted" | r(9)) + ("found" | r(7)) + ("missed" | r(8)) +
      ("delay median / max (s)" | r(26)),
    (.kinds | to_entries[] | (.key | l(24)) + (.value.faulted | r(9)) + (.value.found | r(7)) +
      (.value.missed | r(8)) + (.value | delay | r(26))),
    "fault-free orders: \(.fault_free.orders), false alarms: \(.fault_free.false_alarms)",
    "found \(.found), missed \(.missed), false alarms \(.false_alarms), order-sim errors \(.sim_errors // 0) (detection: \(.detection // "?"))",
    ((.missed_orders // [])[] | "  missed: \(.)"),
    ((.false_alarm_orders // [])[] | "  false alarm: \(.)")' "$1" | sed 's/^/    /'
}

# simulate NAME ORDERS SECONDS ARGS...: order-sim run, bounded; the truth goes to $work/NAME.jsonl.
simulate() {
  local name=$1 orders=$2 seconds rc=0 started=$SECONDS
  seconds="$(budget "$3")" || fail "out of time before ($name) order-sim run (budget ${kBudgetSeconds}s)"
  shift 3
  echo "sim_e2e: ($name) order-sim run --orders $orders $* (at most ${seconds}s)"
  e2e_bounded "$seconds" "$work/$name-run.log" "$work/$name-run.log" \
    "$sim" run --orders "$orders" --time-scale "$kTimeScale" --truth "$work/$name.jsonl" \
    --shop "$SYSTEM_SHOP_URL" --crm "$SYSTEM_CRM_URL" --mes "$SYSTEM_MES_URL" --seed "$seed" "$@" ||
    rc=$?
  sed 's/^/    /' "$work/$name-run.log" | tail -n 20
  case $rc in
    0) echo "sim_e2e: ($name) simulated in $((SECONDS - started))s" ;;
    124 | 137) fail "($name) order-sim run did not finish within ${seconds}s" ;;
    *) fail "($name) order-sim run exited with code $rc; read the lines above and $SYSTEM_LOGS" ;;
  esac
}

# score NAME SECONDS: order-sim score --json, bounded, into $work/NAME-score.json; prints the table.
score() {
  local name=$1 seconds rc=0
  seconds="$(budget "$2")" || fail "out of time before ($name) order-sim score (budget ${kBudgetSeconds}s)"
  e2e_bounded "$seconds" "$work/$name-score.json" "$work/$name-score.err" \
    "$sim" score --truth "$work/$name.jsonl" --ordertrace "$SYSTEM_API_URL" --json || rc=$?
  ((rc == 0)) || fail "($name) order-sim score exited with code $rc: $(tail -n 1 "$work/$name-score.err")"
  jq -e 'type == "object"' "$work/$name-score.json" > /dev/null 2>&1 ||
    fail "($name) order-sim score --json printed no JSON object: $(head -c 200 "$work/$name-score.json")"
  echo "sim_e2e: ($name) score:"
  print_score "$work/$name-score.json"
}

echo "sim_e2e: seed $seed (SIM_E2E_SEED=$seed repeats it)"
echo "sim_e2e: starting RabbitMQ, ordertrace and the services on free ports in $work/state"
export RABBITMQ_START_TIMEOUT=45
SYSTEM_BUILD_DIR=$build
SYSTEM_TIME_SCALE=$kTimeScale
SYSTEM_SERVICES_READY_SECONDS=30
system_init "$work/state" free || fail "system_init (see the line above)"
system_add_component alertmanager
system_start || fail "starting the system (see the line above)"

# (a) Every kind of fault.
simulate faults 200 200 --faults all --fault-rate 0.3 --max-polygons 100000
score faults 60
json="$work/faults-score.json"
for kind in "${kFaultKinds[@]}"; do
  check "(faults) $kind: made at least once" \
    jq -e --arg k "$kind" '(.kinds[$k].faulted // 0) >= 1' "$json" > /dev/null
  check "(faults) $kind: every faulted order found (missed == 0)" \
    jq -e --arg k "$kind" '.kinds[$k] != null and .kinds[$k].missed == 0' "$json" > /dev/null
done
check "(faults) no order-sim errors" jq -e '(.sim_errors // 0) == 0' "$json" > /dev/null
check "(faults) fault-free orders scored" jq -e '.fault_free.orders >= 1' "$json" > /dev/null
check "(faults) no false alarms among the fault-free orders" \
  jq -e '.false_alarms == 0 and .fault_free.false_alarms == 0' "$json" > /dev/null
# The orders still stuck are alerts in Alertmanager (each open gap is one alert, by gap_id).
open_gaps=$(curl -fsS "$SYSTEM_API_URL/api/v1/gaps?state=open&limit=1000" | jq '.count')
check "(faults) stuck orders are open gaps in ordertrace" test "${open_gaps:-0}" -ge 1
alerts_match() {
  local active
  open_gaps=$(curl -fsS "$SYSTEM_API_URL/api/v1/gaps?state=open&limit=1000" | jq '.count')
  active=$(curl -fsS "$SYSTEM_ALERTMANAGER_URL/api/v2/alerts?active=true&filter=alertname%3D%22OrderGap%22" |
    jq 'length')
  [[ ${active:-0} -ge $open_gaps ]]
}
wait_alerts() {
  local deadline=$((SECONDS + 30))
  until alerts_match; do ((SECONDS < deadline)) || return 1; sleep 1; done
}
check "(faults) every open gap is an active alert in Alertmanager" wait_alerts

# (b) No faults at all: nothing may look stuck.
simulate clean 60 100 --faults none --max-polygons 100000
score clean 45
json="$work/clean-score.json"
check "(clean) all 60 orders scored as fault-free" jq -e '.fault_free.orders == 60' "$json" > /dev/null
check "(clean) no faults made" jq -e '[.kinds[]?.faulted] | add // 0 | . == 0' "$json" > /dev/null
check "(clean) no order-sim errors" jq -e '(.sim_errors // 0) == 0' "$json" > /dev/null
check "(clean) no false alarms (no order reported stuck)" jq -e '.false_alarms == 0' "$json" > /dev/null

# Stopping: every service exits 0 on SIGTERM, nothing is left running from the state folder.
stop_rc=0
system_stop || stop_rc=$?
check "the system stopped cleanly (services and ordertrace exit 0 on SIGTERM)" test "$stop_rc" -eq 0
leftovers="$(pgrep -af -- "$work/" || true)"
check "nothing left running from $work" test -z "$leftovers"
[[ -z $leftovers ]] || echo "$leftovers" | sed 's/^/    left running: /' >&2

echo "sim_e2e: $passed passed, $failed failed (in $SECONDS s)"
((failed == 0))
