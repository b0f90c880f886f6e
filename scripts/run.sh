#!/usr/bin/env bash
# The main job: installs what is missing, builds, starts the whole system on loopback (RabbitMQ,
# ordertrace, shop-api, crm-api, mes-api, Alertmanager, Prometheus; scripts/system.sh), drives
# simulated orders through it with faults made on purpose (order-sim), prints where to look and
# how well ordertrace found the faults, and keeps the system up until Ctrl-C. Ctrl-C at any point
# stops everything it started.
# State and logs: ./run-state (wiped at each start). `bash scripts/run.sh --help` for the options.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

readonly kTimeScale=600     # ten simulated minutes per real second (services and order-sim alike)
readonly kFaultRate=0.25
readonly kState=run-state

usage() {
  cat << 'EOF'
usage: bash scripts/run.sh [--short] [--keep-running | --no-keep-running] [--orders N]

Installs missing Debian packages, builds ordertrace, the services and order-sim, and starts on
loopback, with state and logs in ./run-state:
  RabbitMQ 127.0.0.1:5672, ordertrace (OTLP/gRPC :4317, OTLP/HTTP :4318, API :8686),
  shop-api :8081, crm-api :8082, mes-api :8083, Alertmanager :9093, and Prometheus :9090
  (scraping ordertrace every 5 s, with exemplars, and deploy/prometheus's alert rules).
Then order-sim drives orders through the services, a quarter of them with one of each kind of
fault (--faults all), and scores what ordertrace reports against its ground truth
(run-state/truth.jsonl). It prints where to look, an example faulted order, and the score.

  --keep-running      keep the system up after the score until Ctrl-C (the default)
  --no-keep-running   stop everything after the score
  --short             about 20 orders, then stop after the score
  --orders N          simulate N orders (default 60)
  -h, --help          this text

Ctrl-C at any point stops everything that was started. A default port already in use is named,
and nothing starts.
EOF
}

orders=60
keep_running=1
while (($#)); do
  case $1 in
    --keep-running) keep_running=1 ;;
    --no-keep-running) keep_running=0 ;;
    --short) orders=20 keep_running=0 ;;
    --orders)
      [[ ${2:-} =~ ^[1-9][0-9]*$ ]] || { echo "run: --orders needs a positive number" >&2; exit 2; }
      orders=$2
      shift
      ;;
    -h | --help) usage; exit 0 ;;
    *) echo "run: unknown option '$1' (see --help)" >&2; exit 2 ;;
  esac
  shift
done

step() { printf '\n== %s\n' "$*"; }
fail() { printf 'run: %s\n' "$*" >&2; exit 1; }

# shellcheck source=scripts/system.sh
source scripts/system.sh
stopping=0
started=0 # system_start ran
child="" # order-sim, while it runs
stop_all() {
  ((stopping)) && return
  stopping=1
  trap '' INT TERM # a second Ctrl-C must not cut the clean-up short
  if [[ -n $child ]]; then
    kill -TERM "$child" 2> /dev/null || true
    wait "$child" 2> /dev/null || true
  fi
  if ((started)); then
    step "Stopping everything"
    if system_stop; then echo "  stopped; state and logs stay in $SYSTEM_STATE"; fi
  fi
}
trap stop_all EXIT
trap 'exit 130' INT TERM

# Runs order-sim in the background and waits for it, so that Ctrl-C runs the trap at once even
# if order-sim survives the signal (bash drops a SIGINT that its foreground child survives).
# sim_cmd LOG ARGS...: order-sim's output goes to LOG and, indented, to the terminal. Returns
# order-sim's exit code.
sim_cmd() {
  local log=$1 rc=0 shower
  shift
  : > "$log"
  "$sim" "$@" > "$log" 2>&1 < /dev/null &
  child=$!
  tail -s 0.2 -n +1 -f --pid="$child" "$log" | sed 's/^/  /' &
  shower=$!
  wait "$child" || rc=$?
  child=""
  wait "$shower" || true
  return $rc
}

rc=0
step "Installing missing packages (Debian)"
bash scripts/install-deps.sh || rc=$?
((rc != 130)) || exit 130
((rc == 0)) || fail "installing packages failed (apt-get needs root and the Debian mirrors)"

# Ports first, so that a taken one is named before a long build.
SYSTEM_TIME_SCALE=$kTimeScale
system_init "$kState" default || fail "nothing was started (see the line above)"
system_add_component alertmanager
system_add_component prometheus

step "Building ordertrace, shop-api, crm-api, mes-api, order-sim"
bash scripts/build.sh ordertrace shop-api crm-api mes-api order-sim || rc=$?
((rc != 130)) || exit 130
((rc == 0)) || fail "the build failed; see the compiler output above"

step "Starting RabbitMQ, ordertrace, the services, Alertmanager and Prometheus (state in ./$kState)"
started=1
system_start || fail "starting the system failed (see the line above); everything started is being stopped"
echo
echo "  Console: $SYSTEM_API_URL/   (open it now: orders appear as order-sim drives them)"

sim=build/services/order-sim
truth="$SYSTEM_STATE/truth.jsonl"
sim_log="$SYSTEM_LOGS/order-sim.log"
step "Simulating $orders orders; a quarter of them, and at least one of each kind, get a fault"
echo "  $sim run --orders $orders --faults all --fault-rate $kFaultRate --time-scale $kTimeScale --max-polygons 200000 ..."
sim_rc=0
# Models up to 200,000 triangles (10 MB): bigger uploads take longer on a small machine than
# the INITIATED stage's SLA allows at this time scale.
sim_cmd "$sim_log" run --orders "$orders" --faults all --fault-rate "$kFaultRate" \
  --time-scale "$kTimeScale" --max-polygons 200000 --truth "$truth" \
  --shop "$SYSTEM_SHOP_URL" --crm "$SYSTEM_CRM_URL" --mes "$SYSTEM_MES_URL" || sim_rc=$?
case $sim_rc in
  0) ;;
  3) echo "run: some orders could not be driven (see the notes in $truth); scoring the rest" >&2 ;;
  *) fail "the simulation failed (exit code $sim_rc); read $sim_log and the logs in $SYSTEM_LOGS" ;;
esac
[[ -s $truth ]] || fail "the simulation wrote no ground truth ($truth); read $sim_log"

step "Where to look"
echo "  Console: $SYSTEM_API_URL/   (search an order, stuck orders at /gaps, charts at /charts)"
echo
system_describe
# A real faulted order that stopped where its fault left it, preferring the kinds that stop an
# order between services (else any faulted order).
example="$(jq -rs '
  ["lost_price_request", "calculator_hang", "lost_status_event", "operator_no_show",
   "missed_status_write", "partner_order_dropped"] as $preferred
  | map(select(.fault != null))
  | sort_by((if .outcome == "stopped" then 0 else 1 end),
            (.fault.kind as $k | ($preferred | index($k)) // 99))
  | first | select(. != null) | "\(.order_id) \(.fault.kind)"' "$truth" 2> /dev/null || true)"
if [[ -n $example ]]; then
  read -r example_id example_kind <<< "$example"
  echo
  echo "  An order that order-sim broke on purpose ($example_kind):"
  echo "    $SYSTEM_API_URL/orders/$(jq -rn --arg id "$example_id" '$id | @uri')"
  echo "    as JSON: curl -s $SYSTEM_API_URL/api/v1/orders/$example_id | jq"
  curl -fsS --max-time 5 "$SYSTEM_API_URL/api/v1/orders/$example_id" 2> /dev/null |
    jq -r '"    -> status \(.current_status); last success \(.last_success.span_name // "none") in \(.last_success.service // "?"); stopped in \(.where.service // "?")\(if .where.queue then ", queue " + .where.queue else "" end)"' \
      2> /dev/null || echo "    (ordertrace does not know it yet)"
fi
echo "  Ground truth (what order-sim did to each order): $truth"

step "Score: what ordertrace found (order-sim score)"
score_rc=0
sim_cmd "$SYSTEM_LOGS/score.txt" score --truth "$truth" --ordertrace "$SYSTEM_API_URL" || score_rc=$?
((score_rc == 0)) || fail "scoring failed; read $SYSTEM_LOGS/score.txt"

if ((!keep_running)); then
  exit 0
fi
step "The system keeps running; Ctrl-C stops everything"
while system_check_alive; do
  sleep 2
done
fail "a part of the system stopped on its own (see the line above); stopping the rest"
