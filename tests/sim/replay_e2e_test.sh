#!/usr/bin/env bash
# Gap replay, end to end (docs/gaps.md): one simulated business day (order-sim replay: 20,000 orders
# by default, 6% with faults of every kind, ended an hour ago, real business time) sent into
# ordertrace twice, each time with a fresh data folder and a fresh Alertmanager 0.25 (Debian's
# prometheus-alertmanager, deploy/alertmanager's config), on free loopback ports:
#   (a) in-order: each service's spans in event-time order, 512 spans a request;
#   (b) shuffled: the day's spans shuffled within 5,000-span windows, then batched per service.
# After each, once ordertrace's gaps_held gauge is 0 (no deadline waits for evidence; without the
# gauge, once the gap list has not changed for 10 s; at most 120 s), it checks: every fault of
# every kind found (order-sim score; resolved gaps count), no gap on any fault-free order, every
# order's open gap count as the truth says, Alertmanager's active OrderGap alerts are exactly
# ordertrace's open order gaps (by gap_id), no gap paged and then resolved within 60 s of its
# detection (a gap without `paged` counts as paged), ordertrace_gaps_withdrawn_total 0 or absent.
# Then both deliveries must end with the same gaps: (id, kind, stage, since, deadline, state,
# resolved_at, resolved_by). Prints the tables; the last line reads "gap_replay: N passed, M
# failed".
#
# Usage: tests/sim/replay_e2e_test.sh [BUILD_DIR]   (default: $ORDERTRACE_BUILD_DIR, else build/)
# Needs curl, jq, python3, prometheus-alertmanager. Bounded: at most REPLAY_E2E_SECONDS (default
# 240) until the last process is stopped. REPLAY_E2E_ORDERS (20000), REPLAY_E2E_SEED (random;
# printed), REPLAY_E2E_KEEP=1 keeps the temporary folder (logs, truth, gap lists),
# REPLAY_E2E_ORDERTRACE=PATH tests another ordertrace binary.
set -euo pipefail

readonly kBudgetSeconds="${REPLAY_E2E_SECONDS:-240}"
readonly kOrders="${REPLAY_E2E_ORDERS:-20000}"
readonly kSettleSeconds=120
readonly kFaultKinds=(lost_status_event lost_price_request calculator_hang calculator_slow
  operator_no_show consumer_crash missed_status_write skipped_status partner_order_dropped
  status_backwards)

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
build="$(cd "${1:-${ORDERTRACE_BUILD_DIR:-$root/build}}" 2> /dev/null && pwd)" || {
  echo "gap_replay: no build folder ${1:-${ORDERTRACE_BUILD_DIR:-$root/build}}" >&2
  exit 2
}
sim="$build/services/order-sim"
ordertrace="${REPLAY_E2E_ORDERTRACE:-$build/src/ordertrace}"
for bin in "$sim" "$ordertrace"; do
  [[ -x $bin ]] || { echo "gap_replay: no executable $bin (bash scripts/build.sh ordertrace order-sim)" >&2; exit 2; }
done
for tool in curl jq python3 timeout prometheus-alertmanager; do
  command -v "$tool" > /dev/null || { echo "gap_replay: $tool is required" >&2; exit 2; }
done

# shellcheck source=scripts/system.sh
source "$root/scripts/system.sh"

work="$(mktemp -d "${TMPDIR:-/tmp}/ordertrace-replay.XXXXXX")"
e2e_name=gap_replay
# shellcheck source=tests/support/e2e_checks.sh
source "$root/tests/support/e2e_checks.sh" # passed, failed, fail, check, budget, e2e_bounded...
seed="${REPLAY_E2E_SEED:-$RANDOM}"
day_end=$(($(date +%s) - 3600))

stop_run() { # stops what the current delivery started; non-zero when ordertrace did not stop cleanly
  local rc=0
  [[ -n $SYSTEM_STATE ]] || return 0
  system_stop_process ordertrace || rc=1
  alertmanager_stop || true
  system_stop || true
  return $rc
}

cleanup() {
  local rc=$?
  trap '' INT TERM
  e2e_stop_child
  stop_run || true
  if ((rc != 0)); then e2e_show_logs "$SYSTEM_LOGS"; fi
  if [[ ${REPLAY_E2E_KEEP:-0} == 1 ]]; then
    echo "gap_replay: kept $work" >&2
  else
    rm -rf "$work"
  fi
  return $rc
}
trap cleanup EXIT
trap 'echo "gap_replay: interrupted" >&2; exit 130' INT TERM


# metric NAME: the value of an unlabelled series in ordertrace's /metrics; empty when absent.
metric() {
  # awk reads to the end (no early exit), so curl never gets a broken pipe.
  { curl -fsS --max-time 5 "$SYSTEM_API_URL/metrics" 2> /dev/null || true; } |
    awk -v name="$1" '$1 == name && value == "" { value = $2 } END { print value }'
}

# Waits until ordertrace holds no deadline waiting for evidence (gaps_held 0) or, without that
# gauge, until its gap list has not changed for 10 s; at most kSettleSeconds.
settle() {
  local name=$1 seconds deadline held last="" same_since=$SECONDS now_list
  seconds="$(budget "$kSettleSeconds")" || fail "($name) out of time before waiting for ordertrace to settle"
  deadline=$((SECONDS + seconds))
  while ((SECONDS < deadline)); do
    held="$(metric ordertrace_gaps_held)"
    if [[ -n $held ]]; then
      if [[ $held == 0 && "$(metric ordertrace_ingest_queued_spans)" == 0 ]]; then
        echo "gap_replay: ($name) settled: ordertrace_gaps_held 0 after $((SECONDS - replay_done))s"
        return 0
      fi
    else
      now_list="$(curl -fsS --max-time 10 "$SYSTEM_API_URL/api/v1/gaps?state=all&limit=1000" |
        jq -c '[.count, ([.gaps[] | select(.state == "open")] | length)]' 2> /dev/null || true)"
      if [[ $now_list != "$last" ]]; then
        last=$now_list
        same_since=$SECONDS
      elif ((SECONDS - same_since >= 10)); then
        echo "gap_replay: ($name) settled: no ordertrace_gaps_held gauge; the gap list unchanged for 10 s (after $((SECONDS - replay_done))s)"
        return 0
      fi
    fi
    sleep 1
  done
  echo "gap_replay: ($name) ordertrace_gaps_held is ${held:-absent} ${seconds}s after the replay"
  return 1
}

# Renders order-sim's JSON score as a table.
print_score() {
  jq -r '
    def l(w): tostring | . + " " * ([w - length, 0] | max);
    def r(w): tostring | " " * ([w - length, 0] | max) + .;
    ("fault kind" | l(24)) + ("faulted" | r(9)) + ("found" | r(7)) + ("missed" | r(8)),
    (.kinds | to_entries[] | (.key | l(24)) + (.value.faulted | r(9)) + (.value.found | r(7)) +
      (.value.missed | r(8))),
    "fault-free orders: \(.fault_free.orders), with a gap: \(.fault_free.false_alarms)",
    "orders whose open gaps differ from the truth: \(.open_gaps.mismatches) of \(.open_gaps.orders_checked)",
    "gaps on the day'"'"'s orders: \(.gaps_seen) (read from the \(.gap_queries)); about no order: \(.source_gaps)",
    ((.missed_orders // [])[:5][] | "  missed: \(.)"),
    ((.false_alarm_orders // [])[:5][] | "  gap on a fault-free order: \(.)"),
    ((.open_count_mismatch_orders // [])[:5][] | "  open gaps: \(.)")' "$1" | sed 's/^/    /'
}

# The checks python3 makes on one delivery's gaps and alerts; prints a line per finding and
# exits non-zero when $3 (alerts | paged) fails.
gap_checks() {
  "$SYSTEM__PYTHON" - "$@" << 'EOF'
import json, sys
from datetime import datetime, timezone

what, gaps_path, alerts_path = sys.argv[1], sys.argv[2], sys.argv[3]
gaps = [g for g in json.load(open(gaps_path)) if g.get("order_id")]

def when(text):  # RFC 3339 in UTC, with up to nanoseconds
    base, _, fraction = text.rstrip("Z").partition(".")
    at = datetime.strptime(base, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=timezone.utc).timestamp()
    return at + (float("0." + fraction) if fraction else 0)

if what == "alerts":
    alerts = json.load(open(alerts_path))
    active = {a["labels"].get("gap_id") for a in alerts}
    open_ids = {g["id"] for g in gaps if g.get("state") == "open"}
    only_am, only_ot = sorted(active - open_ids), sorted(open_ids - active)
    print(f"    open order gaps in ordertrace: {len(open_ids)}, active OrderGap alerts: {len(active)}"
          f", only in Alertmanager: {len(only_am)}, only in ordertrace: {len(only_ot)}")
    for gap_id in only_am[:5]: print(f"      alert without an open gap: {gap_id}")
    for gap_id in only_ot[:5]: print(f"      open gap without an alert: {gap_id}")
    sys.exit(0 if not only_am and not only_ot else 1)
if what == "paged":
    flapped, paged = [], 0
    for g in gaps:
        if not g.get("paged", True):
            continue
        paged += 1
        if g.get("state") == "open":
            continue
        try:
            held = when(g["resolved_at"]) - when(g["detected_at"])
        except (KeyError, TypeError, ValueError):
            held = None
        if held is None or held < 60:
            flapped.append((g["id"], held))
    absent = sum(1 for g in gaps if "paged" not in g)
    print(f"    gaps paged: {paged}{' (no paged field: every gap counted as paged)' if absent else ''}"
          f", paged and resolved within 60 s: {len(flapped)}")
    for gap_id, held in flapped[:5]:
        print(f"      {gap_id}: resolved {'?' if held is None else round(held, 3)} s after detection")
    sys.exit(0 if not flapped else 1)
if what == "outcomes":
    keys = ("id", "kind", "stage", "since", "deadline", "state", "resolved_at", "resolved_by")
    with open(alerts_path, "w") as out:
        for row in sorted(json.dumps([g.get(k) for k in keys]) for g in gaps):
            out.write(row + "\n")
EOF
}

# deliver NAME REPLAY-ARGS...: one delivery with its own ordertrace and Alertmanager.
deliver() {
  local name=$1 seconds rc=0 json
  shift
  echo "gap_replay: ($name) starting Alertmanager and ordertrace on free ports in $work/$name"
  SYSTEM_ORDERTRACE_ARGS=()
  system_init "$work/$name" free || fail "($name) system_init (see the line above)"
  alertmanager_configure || fail "($name) choosing Alertmanager's port"
  alertmanager_start || fail "($name) starting Alertmanager (see the line above)"
  system_spawn ordertrace "$ordertrace" --data-dir "$SYSTEM_STATE/ordertrace-data" \
    --otlp-grpc-listen "$SYSTEM_HOST:$SYSTEM_PORT_OTLP_GRPC" \
    --otlp-http-listen "$SYSTEM_HOST:$SYSTEM_PORT_OTLP_HTTP" \
    --http-listen "$SYSTEM_HOST:$SYSTEM_PORT_API" "${SYSTEM_ORDERTRACE_ARGS[@]}"
  system_wait_http ordertrace "$SYSTEM_API_URL/readyz" 30 || fail "($name) starting ordertrace (see the line above)"

  seconds="$(budget 150)" || fail "($name) out of time before the replay (budget ${kBudgetSeconds}s)"
  local started=$SECONDS
  e2e_bounded "$seconds" "$work/$name-replay.log" "$work/$name-replay.log" "$sim" replay --orders "$kOrders" --seed "$seed" \
    --day-end "$day_end" --truth "$work/truth.jsonl" --endpoint "$SYSTEM_OTLP_HTTP_URL" "$@" || rc=$?
  replay_done=$SECONDS
  sed 's/^/    /' "$work/$name-replay.log" | tail -n 6
  case $rc in
    0) check "($name) every request acknowledged (replayed in $((SECONDS - started))s)" true ;;
    124 | 137) fail "($name) order-sim replay did not finish within ${seconds}s" ;;
    *) check "($name) every request acknowledged (order-sim replay exit code $rc)" false ;;
  esac
  check "($name) ordertrace settles: no deadline held waiting for evidence" settle "$name"

  seconds="$(budget 60)" || fail "($name) out of time before order-sim score"
  rc=0
  e2e_bounded "$seconds" "$work/$name-score.log" "$work/$name-score.log" "$sim" score --truth "$work/truth.jsonl" \
    --ordertrace "$SYSTEM_API_URL" --json --settle 5 --gaps-out "$work/$name-gaps.json" || rc=$?
  ((rc == 0)) || fail "($name) order-sim score exited with code $rc: $(tail -n 2 "$work/$name-score.log")"
  json="$work/$name-score.json"
  jq -c . "$work/$name-score.log" > "$json" 2> /dev/null ||
    fail "($name) order-sim score printed no JSON: $(head -c 300 "$work/$name-score.log")"
  echo "gap_replay: ($name) score:"
  print_score "$json"
  for kind in "${kFaultKinds[@]}"; do
    check "($name) $kind: every faulted order found ($(jq -r --arg k "$kind" \
      '"\(.kinds[$k].found // 0) of \(.kinds[$k].faulted // 0)"' "$json"))" \
      jq -e --arg k "$kind" '(.kinds[$k].faulted // 0) >= 1 and .kinds[$k].missed == 0' "$json" > /dev/null
  done
  check "($name) no gap on any of the $(jq .fault_free.orders "$json") fault-free orders" \
    jq -e '.fault_free.orders >= 1 and .false_alarms == 0' "$json" > /dev/null
  check "($name) every order's open gap count as the truth says" \
    jq -e '.open_gaps.orders_checked >= 1 and .open_gaps.mismatches == 0' "$json" > /dev/null

  # Alertmanager gets alerts in batches: wait up to 30 s for it to match.
  local deadline=$((SECONDS + 30)) am_ok=1
  while :; do
    curl -fsS --max-time 10 "$SYSTEM_ALERTMANAGER_URL/api/v2/alerts?active=true&filter=alertname%3D%22OrderGap%22" \
      > "$work/$name-alerts.json" || echo '[]' > "$work/$name-alerts.json"
    gap_checks alerts "$work/$name-gaps.json" "$work/$name-alerts.json" > "$work/$name-alerts.txt" && am_ok=0
    ((am_ok == 0 || SECONDS >= deadline)) && break
    sleep 2
  done
  cat "$work/$name-alerts.txt"
  check "($name) Alertmanager's active OrderGap alerts are exactly the open order gaps" test "$am_ok" -eq 0
  check "($name) no gap paged and then resolved within 60 s" \
    gap_checks paged "$work/$name-gaps.json" /dev/null
  local withdrawn
  withdrawn="$(metric ordertrace_gaps_withdrawn_total)"
  check "($name) ordertrace_gaps_withdrawn_total is 0 or absent (${withdrawn:-absent})" \
    test "${withdrawn:-0}" = 0
  gap_checks outcomes "$work/$name-gaps.json" "$work/$name-outcomes.txt"

  local stop_rc=0
  stop_run || stop_rc=$?
  check "($name) ordertrace stopped cleanly (exit 0 on SIGTERM)" test "$stop_rc" -eq 0
}

echo "gap_replay: seed $seed (REPLAY_E2E_SEED=$seed repeats it), $kOrders orders, day ending $(date -u -d "@$day_end" +%FT%TZ)"
deliver in-order --order in-order
deliver shuffled --order shuffled --window 5000

# Both deliveries: the same gaps, whatever the arrival order.
differ="$(diff "$work/in-order-outcomes.txt" "$work/shuffled-outcomes.txt" | grep -c '^[<>]' || true)"
echo "gap_replay: gaps: in-order $(wc -l < "$work/in-order-outcomes.txt"), shuffled $(wc -l < "$work/shuffled-outcomes.txt"), lines that differ: $differ"
diff "$work/in-order-outcomes.txt" "$work/shuffled-outcomes.txt" | grep '^[<>]' | head -n 6 | sed 's/^/    /' || true
check "both deliveries end with the same gaps (id, kind, stage, since, deadline, state, resolved_at, resolved_by)" \
  test "$differ" -eq 0
leftovers="$(pgrep -af -- "$work/" || true)"
check "nothing left running from $work" test -z "$leftovers"

echo "gap_replay: $passed passed, $failed failed (in $SECONDS s)"
((failed == 0))
