#!/usr/bin/env bash
# The console's browser tests, in Debian's headless chromium driven by playwright-core.
#
# Starts the whole system on free loopback ports (scripts/system.sh: RabbitMQ, ordertrace,
# shop-api, crm-api, mes-api), drives a few orders through it with order-sim, some given a fault
# that leaves them stuck (lost_price_request: the price request is published and never delivered),
# waits until ordertrace has opened their gaps, then runs tests/console/browser_*.test.mjs against
# that ordertrace's console (node --test, one file at a time). The tests with tokens start a
# second ordertrace of their own (browser_auth.test.mjs). Everything started is stopped by a trap,
# also on failure or Ctrl-C. Screenshots of every page are kept in BUILD_DIR/test-artifacts/console/
# (printed at the end).
#
# Usage: tests/console/run.sh [BUILD_DIR]   (default: $ORDERTRACE_BUILD_DIR, else build/)
#   CONSOLE_E2E_SECONDS   budget until the system is stopped (default 220)
#   CONSOLE_E2E_SEED      order-sim --seed (printed at the start)
#   CONSOLE_E2E_KEEP=1    keep the temporary folder (logs, truth file)
#   ORDERTRACE_CONSOLE_DIR  serve the console from this folder (--console-dir) instead of the copy
#                         built into ordertrace (for working on web/ without a rebuild)
#   CONSOLE_TESTS         test files to run (default: every browser_*.test.mjs)
# Needs root (RabbitMQ runs as the rabbitmq user), curl, jq, python3, node, /usr/bin/chromium.
set -euo pipefail

readonly kTimeScale=600
readonly kBudgetSeconds="${CONSOLE_E2E_SECONDS:-220}"
readonly kChromium=/usr/bin/chromium

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
build="$(cd "${1:-${ORDERTRACE_BUILD_DIR:-$root/build}}" 2> /dev/null && pwd)" || {
  echo "console_e2e: no build folder ${1:-${ORDERTRACE_BUILD_DIR:-$root/build}}" >&2
  exit 2
}
for bin in src/ordertrace services/shop-api services/crm-api services/mes-api services/order-sim; do
  if [[ ! -x $build/$bin ]]; then
    echo "console_e2e: no executable $build/$bin (bash scripts/build.sh ordertrace shop-api crm-api mes-api order-sim)" >&2
    exit 2
  fi
done
for tool in curl jq python3 node timeout; do
  command -v "$tool" > /dev/null || { echo "console_e2e: $tool is required" >&2; exit 2; }
done
[[ -x $kChromium ]] || {
  echo "console_e2e: no $kChromium (bash scripts/install-deps.sh installs Debian's chromium)" >&2
  exit 2
}
[[ $(id -u) -eq 0 ]] || { echo "console_e2e: must run as root (RabbitMQ runs as user rabbitmq)" >&2; exit 2; }
if [[ ! -d $here/node_modules/playwright-core ]]; then
  (cd "$here" && npm ci --no-audit --no-fund --loglevel=error) ||
    { echo "console_e2e: npm ci in $here failed" >&2; exit 2; }
fi

# shellcheck source=scripts/system.sh
source "$root/scripts/system.sh"

work="$(mktemp -d "${TMPDIR:-/tmp}/ordertrace-console.XXXXXX")"
chmod 755 "$work" # the rabbitmq user must reach $work/state/rabbitmq
artifacts="$build/test-artifacts/console"
mkdir -p "$artifacts"
rm -f "$artifacts"/*.png "$artifacts"/*.txt
e2e_name=console_e2e
# shellcheck source=tests/support/e2e_checks.sh
source "$root/tests/support/e2e_checks.sh" # passed, failed, fail, check, budget, e2e_bounded...
seed="${CONSOLE_E2E_SEED:-$RANDOM}"

cleanup() {
  local rc=$?
  trap '' INT TERM
  e2e_stop_child
  system_stop || true
  if ((rc != 0)); then e2e_show_logs "$SYSTEM_LOGS"; fi
  echo "console_e2e: screenshots in $artifacts/"
  if [[ ${CONSOLE_E2E_KEEP:-0} == 1 ]]; then
    echo "console_e2e: kept $work" >&2
  else
    rm -rf "$work"
  fi
  return $rc
}
trap cleanup EXIT
trap 'echo "console_e2e: interrupted" >&2; exit 130' INT TERM

echo "console_e2e: seed $seed (CONSOLE_E2E_SEED=$seed repeats it)"
export RABBITMQ_START_TIMEOUT=45
SYSTEM_BUILD_DIR=$build
SYSTEM_TIME_SCALE=$kTimeScale
SYSTEM_SERVICES_READY_SECONDS=30
system_init "$work/state" free || fail "system_init (see the line above)"
if [[ -n ${ORDERTRACE_CONSOLE_DIR:-} ]]; then
  SYSTEM_ORDERTRACE_ARGS+=(--console-dir "$(cd "$ORDERTRACE_CONSOLE_DIR" && pwd)")
fi
system_start || fail "starting the system (see the line above)"

# A few orders, a third of them with a lost price request: each stops at SUBMITTED with its
# price request in mes.price.requests, never consumed. Small models so uploads stay quick.
truth="$work/truth.jsonl"
seconds="$(budget 90)" || fail "out of time before order-sim run"
started=$SECONDS
rc=0
e2e_bounded "$seconds" "$work/sim-run.log" "$work/sim-run.log" "$build/services/order-sim" run --orders 9 \
  --faults lost_price_request:0.34 --partner-share 0.6 --time-scale "$kTimeScale" \
  --truth "$truth" --shop "$SYSTEM_SHOP_URL" --crm "$SYSTEM_CRM_URL" --mes "$SYSTEM_MES_URL" \
  --seed "$seed" --max-polygons 100000 || rc=$?
sed 's/^/    /' "$work/sim-run.log" | tail -n 5
((rc == 0)) || fail "order-sim run exited with code $rc after $((SECONDS - started))s"
echo "console_e2e: order-sim ran in $((SECONDS - started))s"

# The stuck orders, from the truth file: every order given the fault.
mapfile -t stuck < <(jq -r 'select((.fault // .fault_kind // "") | tostring | test("lost_price_request")) | .order_id' "$truth")
((${#stuck[@]} >= 1)) || fail "order-sim's truth names no order with lost_price_request: $(head -c 400 "$truth")"
echo "console_e2e: stuck orders (lost_price_request): ${stuck[*]}"

# Until ordertrace has opened a gap on each (the SUBMITTED stage's 10 min SLA is 1 s here, plus
# the grace), at most 40 s.
open_on_all() {
  local gaps id
  gaps="$(curl -fsS --max-time 5 "$SYSTEM_API_URL/api/v1/gaps?state=open&limit=1000")" || return 1
  for id in "${stuck[@]}"; do
    jq -e --arg id "$id" '[.gaps[] | select(.order_id == $id)] | length >= 1' <<< "$gaps" \
      > /dev/null || return 1
  done
}
deadline=$((SECONDS + 40))
until open_on_all; do
  ((SECONDS < deadline)) || fail "no open gap on every stuck order within 40 s: $(curl -fsS "$SYSTEM_API_URL/api/v1/gaps?state=open" | head -c 600)"
  sleep 1
done
# Then until the open gaps stay as they are for 6 s (a stuck order's second gap, the price request
# not consumed, may open a moment after the first), so that the tests and the console read the same.
gap_ids() { curl -fsS --max-time 5 "$SYSTEM_API_URL/api/v1/gaps?state=open&limit=1000" | jq -c '[.gaps[].id] | sort'; }
last="$(gap_ids)" || fail "reading the open gaps"
stable_since=$SECONDS
deadline=$((SECONDS + 30))
while ((SECONDS - stable_since < 6)); do
  ((SECONDS < deadline)) || fail "the open gaps kept changing for 30 s"
  sleep 1
  now="$(gap_ids)" || fail "reading the open gaps"
  if [[ $now != "$last" ]]; then
    last=$now
    stable_since=$SECONDS
  fi
done
echo "console_e2e: ordertrace reports the stuck orders' gaps ($(jq length <<< "$last") open)"

# What the tests read: the system's addresses and the truth.
jq -n --arg api "$SYSTEM_API_URL" --arg otlp "$SYSTEM_OTLP_HTTP_URL" --arg truth "$truth" \
  --arg artifacts "$artifacts" --arg bin "$build/src/ordertrace" \
  --arg console_dir "${ORDERTRACE_CONSOLE_DIR:+$(cd "$ORDERTRACE_CONSOLE_DIR" && pwd)}" \
  --argjson stuck "$(printf '%s\n' "${stuck[@]}" | jq -R . | jq -s .)" \
  '{api_url: $api, otlp_http_url: $otlp, truth: $truth, artifacts: $artifacts,
    ordertrace_bin: $bin, console_dir: $console_dir, stuck_orders: $stuck}' > "$work/system.json"

shopt -s nullglob
cd "$here"
if [[ -n ${CONSOLE_TESTS:-} ]]; then
  read -r -a tests <<< "$CONSOLE_TESTS"
else
  tests=(./browser_*.test.mjs)
fi
((${#tests[@]} > 0)) || fail "no browser_*.test.mjs in $here"
seconds="$(budget 150)" || fail "out of time before the browser tests"
echo "console_e2e: node --test ${tests[*]} (at most ${seconds}s)"
rc=0
export CONSOLE_SYSTEM="$work/system.json"
# Foreground output matters here (the TAP lines); still bounded and in the background.
e2e_bounded "$seconds" - - node --test --test-concurrency=1 --test-timeout=90000 \
  --test-reporter=spec "${tests[@]}" || rc=$?
case $rc in
  0) passed=$((passed + 1)) ;;
  124 | 137) fail "the browser tests did not finish within ${seconds}s" ;;
  *) fail "browser tests failed (exit code $rc; screenshots in $artifacts/)" ;;
esac
stop_rc=0
system_stop || stop_rc=$?
check "the system stopped cleanly" test "$stop_rc" -eq 0
echo "$e2e_name: $passed passed, $failed failed"
((failed == 0))
