# shellcheck shell=bash
# Starts and stops the whole ordertrace system on loopback, with everything under one state
# folder: a private RabbitMQ node (scripts/rabbitmq.sh), ordertrace, and the Alexandrite services
# shop-api, crm-api and mes-api (docs/services.md). A library: source it, do not run it.
#
#   source scripts/system.sh
#   system_init STATE_DIR default|free  # ports (the documented defaults, or free ones), state
#                                       # folder; starts nothing, needs no binaries yet
#   system_start                        # RabbitMQ, ordertrace, the services, then the components
#   system_describe                     # where to look: URLs and logs
#   system_check_alive                  # non-zero (naming it) when a started process has died
#   system_stop                         # stops everything started; safe to call twice
#
# After system_init: SYSTEM_STATE, SYSTEM_LOGS, SYSTEM_PORT_{AMQP,OTLP_GRPC,OTLP_HTTP,API,SHOP,
# CRM,MES}, SYSTEM_AMQP_URL, SYSTEM_OTLP_HTTP_URL (…/v1/traces), SYSTEM_API_URL, SYSTEM_SHOP_URL,
# SYSTEM_CRM_URL, SYSTEM_MES_URL. Settings, read by system_init from the environment:
#   SYSTEM_BUILD_DIR (build/), SYSTEM_TIME_SCALE (600), SYSTEM_GRACE (3s), SYSTEM_DEMO_FAULTS (on),
#   SYSTEM_ORDERTRACE_READY_SECONDS (30), SYSTEM_SERVICES_READY_SECONDS (60),
#   SYSTEM_STOP_SECONDS (20), RABBITMQ_START_TIMEOUT (60, read by scripts/rabbitmq.sh).
#
# The state folder holds logs/ (one log per process), pids/, rabbitmq/ (the node's data and logs),
# ordertrace-data/ and the services' SQLite files. It is wiped by system_init, which refuses a
# non-empty folder that it did not create itself. Every failing step prints one line naming the
# step and the log to read, and returns non-zero; no function exits the caller's shell. Processes
# run in their own sessions (setsid), so a Ctrl-C in the terminal reaches only the caller, whose
# trap then stops them in order: services (SIGTERM, wait), ordertrace, RabbitMQ. Callers:
#   trap system_stop EXIT; trap 'exit 130' INT TERM
# and run long steps in the background followed by `wait PID` (bash drops a SIGINT that a
# foreground child survives, and runs a trap only after the foreground child ends).
#
# Extension point, for optional parts (the alertmanager and prometheus components at the end of
# this file are two; after system_start they set SYSTEM_ALERTMANAGER_URL and
# SYSTEM_PROMETHEUS_URL): a component NAME joins the system by defining
#   NAME_start     start it (system_port, system_spawn and system_wait_http help); on failure
#                  print one line naming the step and the log, and return non-zero
#   NAME_stop      stop it (system_stop_process NAME, for what system_spawn started); safe to
#                  call twice, and when NAME_start never ran or failed
#   NAME_configure optional: runs first in system_start, before anything starts; may choose
#                  ports (system_port) and add ordertrace flags to SYSTEM_ORDERTRACE_ARGS
#                  (e.g. --alertmanager-url for an Alertmanager started later)
#   NAME_describe  optional: print "where to look" lines, like system_describe's
# and calling `system_add_component NAME` before system_start. Components start in
# registration order after the core, and stop in reverse order before it.

SYSTEM_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SYSTEM_HOST=127.0.0.1
SYSTEM__MARKER=.ordertrace-system-state
SYSTEM_SERVICES=(shop-api crm-api mes-api)

SYSTEM_STATE=""
SYSTEM_LOGS=""
SYSTEM_COMPONENTS=()          # registered by system_add_component
SYSTEM_ORDERTRACE_ARGS=()     # more ordertrace flags, e.g. from a component's NAME_configure
SYSTEM__STARTED_COMPONENTS=() # those whose NAME_start ran (their NAME_stop runs on stop)
SYSTEM__PORT_MODE=""
SYSTEM__USED_PORTS=()
SYSTEM__RABBITMQ_STARTED=0
SYSTEM__RABBITMQ_STARTER=""  # pid of a `rabbitmq.sh start` still running
declare -gA SYSTEM__PIDS=()   # process name -> pid, for processes started by system_spawn

system__say() { echo "system: $*" >&2; }

# shellcheck source=lib/free_ports.sh
source "$SYSTEM_ROOT/scripts/lib/free_ports.sh"

# Debian's python3 (install-deps.sh) starts in a fraction of the time of a version-manager shim.
SYSTEM__PYTHON=python3
[[ -x /usr/bin/python3 ]] && SYSTEM__PYTHON=/usr/bin/python3

# True while process $1 exists and is not a zombie.
system__alive() {
  local pid=$1 stat
  [[ -r /proc/$pid/stat ]] || return 1
  stat="$(sed 's/^.*) //' "/proc/$pid/stat" 2> /dev/null)" || return 1
  [[ -n $stat && ${stat:0:1} != Z ]]
}

# Prints the process listening on 127.0.0.1 (or any address) port $1, when ss can tell.
system__port_owner() {
  ss -Hltnp "sport = :$1" 2> /dev/null | grep -o 'users:(("[^"]*",pid=[0-9]*' |
    head -n 1 | sed 's/users:(("\([^"]*\)",pid=\([0-9]*\)/\1 (pid \2)/'
}

# True when a TCP listener can bind 127.0.0.1:$1 (nothing listens there, on any address).
system__port_free() {
  "$SYSTEM__PYTHON" - "$1" << 'EOF' 2> /dev/null
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
try:
    s.bind(("127.0.0.1", int(sys.argv[1])))
    s.listen(1)
except OSError:
    sys.exit(1)
EOF
}

# Prints one free loopback port not handed out before by this library.
system__free_port() {
  local port
  for _ in {1..10}; do
    port="$(free_port)" ||
      return 1
    [[ " ${SYSTEM__USED_PORTS[*]} " == *" $port "* ]] && continue
    # RabbitMQ puts Erlang distribution on port+20000 when free: keep clear of our own ports.
    ((port + 20000 <= 65535)) && [[ " ${SYSTEM__USED_PORTS[*]} " == *" $((port + 20000)) "* ]] && continue
    echo "$port"
    return 0
  done
  return 1
}

# system_port VAR WHAT DEFAULT: sets VAR to the port for WHAT (a label for messages): DEFAULT in
# the default mode (non-zero with one line when it is taken), a free port in the free mode.
system_port() {
  local var=$1 what=$2 default=$3 port owner
  if [[ $SYSTEM__PORT_MODE == free ]]; then
    port="$(system__free_port)" || { system__say "choosing a free port for $what failed"; return 1; }
  else
    port=$default
    if ! system__port_free "$port"; then
      owner="$(system__port_owner "$port")"
      system__say "port $SYSTEM_HOST:$port ($what) is already in use${owner:+ by $owner}; stop it or use free ports"
      return 1
    fi
  fi
  SYSTEM__USED_PORTS+=("$port")
  printf -v "$var" '%s' "$port"
}

system_add_component() {
  local name=$1
  if ! declare -F "${name}_start" > /dev/null || ! declare -F "${name}_stop" > /dev/null; then
    system__say "component '$name' needs functions ${name}_start and ${name}_stop"
    return 1
  fi
  SYSTEM_COMPONENTS+=("$name")
}

# Stops what a previous run left behind in state folder $1 (its caller was killed with -9).
system__stop_leftovers() {
  local state=$1 file pid name
  # Services first, then ordertrace, then anything else (components).
  for file in "${SYSTEM_SERVICES[@]/#/$state/pids/}" "$state/pids/ordertrace" "$state"/pids/*.pid; do
    [[ $file == *.pid ]] || file=$file.pid
    [[ -f $file ]] || continue
    pid="$(cat "$file")"
    name="$(basename "$file" .pid)"
    # Only a process whose command line names this state folder (pids get reused).
    if [[ $pid =~ ^[0-9]+$ ]] && system__alive "$pid" &&
      tr '\0' ' ' < "/proc/$pid/cmdline" 2> /dev/null | grep -qF -- "$state/"; then
      system__say "a previous run left $name (pid $pid) running from $state; stopping it"
      kill -TERM "$pid" 2> /dev/null || true
      local deadline=$((SECONDS + 15))
      while system__alive "$pid" && ((SECONDS < deadline)); do sleep 0.2; done
      kill -KILL "$pid" 2> /dev/null || true
    fi
    rm -f "$file"
  done
  if [[ -f $state/rabbitmq/server.pid ]]; then
    system__say "a previous run left RabbitMQ running from $state/rabbitmq; stopping it"
    bash "$SYSTEM_ROOT/scripts/rabbitmq.sh" stop "$state/rabbitmq" > /dev/null 2>&1 || true
  fi
}

# system_init STATE_DIR default|free
system_init() {
  if [[ $# -ne 2 || ($2 != default && $2 != free) ]]; then
    system__say "usage: system_init STATE_DIR default|free"
    return 2
  fi
  local state=$1
  SYSTEM__PORT_MODE=$2
  SYSTEM__USED_PORTS=()
  SYSTEM__PIDS=()
  SYSTEM__STARTED_COMPONENTS=()
  SYSTEM__RABBITMQ_STARTED=0
  SYSTEM__RABBITMQ_STARTER=""

  : "${SYSTEM_BUILD_DIR:=$SYSTEM_ROOT/build}"
  : "${SYSTEM_TIME_SCALE:=600}"
  : "${SYSTEM_GRACE:=3s}"
  : "${SYSTEM_DEMO_FAULTS:=on}"
  : "${SYSTEM_ORDERTRACE_READY_SECONDS:=30}"
  : "${SYSTEM_SERVICES_READY_SECONDS:=60}"
  : "${SYSTEM_STOP_SECONDS:=20}"
  SYSTEM_ORDERTRACE_BIN="$SYSTEM_BUILD_DIR/src/ordertrace"
  local tool
  for tool in curl python3 setsid; do
    command -v "$tool" > /dev/null || { system__say "checking tools failed: $tool is required"; return 1; }
  done

  # The state folder: created, or reused when an earlier system_init made it; then emptied.
  if [[ $state != *[[:space:]]* ]] && mkdir -p "$state" 2> /dev/null; then
    state="$(cd "$state" && pwd)"
  else
    system__say "creating the state folder '$state' failed (it must be creatable and have no spaces)"
    return 1
  fi
  if [[ ! -f $state/$SYSTEM__MARKER ]] && [[ -n "$(ls -A "$state")" ]]; then
    system__say "state folder $state is not empty and was not made by scripts/system.sh; choose another"
    return 1
  fi
  local owner
  owner="$(cat "$state/owner.pid" 2> /dev/null || true)"
  if [[ $owner =~ ^[0-9]+$ && $owner != "$$" ]] && system__alive "$owner"; then
    system__say "state folder $state is in use by process $owner ($(tr '\0' ' ' < "/proc/$owner/cmdline" 2> /dev/null | cut -c1-80)); stop it first"
    return 1
  fi
  system__stop_leftovers "$state"

  # Ports, before anything is wiped or started; in the default mode every taken port is named.
  local bad=0
  system_port SYSTEM_PORT_AMQP "RabbitMQ AMQP" 5672 || bad=1
  system_port SYSTEM_PORT_OTLP_GRPC "ordertrace OTLP/gRPC" 4317 || bad=1
  system_port SYSTEM_PORT_OTLP_HTTP "ordertrace OTLP/HTTP" 4318 || bad=1
  system_port SYSTEM_PORT_API "ordertrace HTTP API" 8686 || bad=1
  system_port SYSTEM_PORT_SHOP "shop-api" 8081 || bad=1
  system_port SYSTEM_PORT_CRM "crm-api" 8082 || bad=1
  system_port SYSTEM_PORT_MES "mes-api" 8083 || bad=1
  ((bad == 0)) || return 1

  find "$state" -mindepth 1 -delete 2> /dev/null || rm -rf "${state:?}"/* "${state:?}"/.[!.]* 2> /dev/null
  if ! mkdir -p "$state/logs" "$state/pids" "$state/ordertrace-data"; then
    system__say "creating folders under $state failed"
    return 1
  fi
  touch "$state/$SYSTEM__MARKER"
  echo "$$" > "$state/owner.pid"
  # RabbitMQ runs as the rabbitmq user, which must reach $state/rabbitmq.
  chmod 755 "$state"
  SYSTEM_STATE=$state
  SYSTEM_LOGS=$state/logs

  SYSTEM_AMQP_URL="amqp://guest:guest@$SYSTEM_HOST:$SYSTEM_PORT_AMQP/"
  SYSTEM_OTLP_HTTP_URL="http://$SYSTEM_HOST:$SYSTEM_PORT_OTLP_HTTP/v1/traces"
  SYSTEM_API_URL="http://$SYSTEM_HOST:$SYSTEM_PORT_API"
  SYSTEM_SHOP_URL="http://$SYSTEM_HOST:$SYSTEM_PORT_SHOP"
  SYSTEM_CRM_URL="http://$SYSTEM_HOST:$SYSTEM_PORT_CRM"
  SYSTEM_MES_URL="http://$SYSTEM_HOST:$SYSTEM_PORT_MES"
}

# system_spawn NAME COMMAND...: runs COMMAND in its own session, output to $SYSTEM_LOGS/NAME.log.
system_spawn() {
  local name=$1
  shift
  setsid "$@" >> "$SYSTEM_LOGS/$name.log" 2>&1 < /dev/null &
  SYSTEM__PIDS[$name]=$!
  echo "$!" > "$SYSTEM_STATE/pids/$name.pid"
}

# system_wait_http NAME URL SECONDS: waits until URL answers 2xx while process NAME (started by
# system_spawn) runs; otherwise prints one line naming NAME and its log, and returns non-zero.
system_wait_http() {
  local name=$1 url=$2 seconds=$3 pid=${SYSTEM__PIDS[$1]:-} started=$SECONDS
  local deadline=$((SECONDS + seconds))
  while ((SECONDS < deadline)); do
    if [[ -n $pid ]] && ! system__alive "$pid"; then
      local code=""
      wait "$pid" 2> /dev/null && code=0 || code=$?
      unset "SYSTEM__PIDS[$name]"
      rm -f "$SYSTEM_STATE/pids/$name.pid"
      system__say "starting $name failed: it exited with code $code before $url answered; read $SYSTEM_LOGS/$name.log"
      return 1
    fi
    curl -fsS --max-time 1 -o /dev/null "$url" 2> /dev/null && return 0
    sleep 0.2
  done
  system__say "starting $name failed: $url did not answer 2xx within ${seconds}s; read $SYSTEM_LOGS/$name.log"
  return 1
}

system__start_rabbitmq() {
  local log="$SYSTEM_LOGS/rabbitmq-start.log" url_file="$SYSTEM_STATE/rabbitmq.url" rc=0
  SYSTEM__RABBITMQ_STARTED=1 # even a failed start may leave pieces for rabbitmq.sh stop
  # In the background with `wait`, so that the caller's INT/TERM trap runs at once (a foreground
  # child that survives a Ctrl-C makes bash drop the signal); system_stop ends it.
  bash "$SYSTEM_ROOT/scripts/rabbitmq.sh" start "$SYSTEM_STATE/rabbitmq" "$SYSTEM_PORT_AMQP" \
    > "$url_file" 2> "$log" < /dev/null &
  SYSTEM__RABBITMQ_STARTER=$!
  wait "$SYSTEM__RABBITMQ_STARTER" || rc=$?
  SYSTEM__RABBITMQ_STARTER=""
  if ((rc != 0)); then
    local why
    why="$(grep -m 1 '^rabbitmq.sh: ' "$log" | sed 's/^rabbitmq.sh: //')"
    system__say "starting RabbitMQ failed${why:+: $why}; read $log and $SYSTEM_STATE/rabbitmq/log/"
    return 1
  fi
  local url
  url="$(cat "$url_file")"
  [[ $url == "$SYSTEM_AMQP_URL" ]] || system__say "note: RabbitMQ answered '$url' (expected $SYSTEM_AMQP_URL)"
}

system__start_ordertrace() {
  # The services' business time runs SYSTEM_TIME_SCALE times faster than real time; so must
  # ordertrace's stage deadlines (SLAs), which only its config file sets.
  local config="$SYSTEM_STATE/ordertrace.yaml"
  cat > "$config" << EOF
# Written by scripts/system.sh for this run; see ordertrace.yaml in the repository for the rest.
# Business time runs SYSTEM_TIME_SCALE times faster, so the SLAs are compressed alike; the grace
# is real time and covers the machine's own latency (model uploads, export batching), which
# compression does not shrink.
lifecycle:
  time_scale: $SYSTEM_TIME_SCALE
  grace: $SYSTEM_GRACE
# Alerts link to the console's order page on this run's API port.
alertmanager:
  external_url: $SYSTEM_API_URL
EOF
  system_spawn ordertrace "$SYSTEM_ORDERTRACE_BIN" --config "$config" \
    --data-dir "$SYSTEM_STATE/ordertrace-data" \
    --otlp-grpc-listen "$SYSTEM_HOST:$SYSTEM_PORT_OTLP_GRPC" \
    --otlp-http-listen "$SYSTEM_HOST:$SYSTEM_PORT_OTLP_HTTP" \
    --http-listen "$SYSTEM_HOST:$SYSTEM_PORT_API" "${SYSTEM_ORDERTRACE_ARGS[@]}"
  system_wait_http ordertrace "$SYSTEM_API_URL/readyz" "$SYSTEM_ORDERTRACE_READY_SECONDS"
}

system__start_services() {
  local name port
  for name in "${SYSTEM_SERVICES[@]}"; do
    case $name in
      shop-api) port=$SYSTEM_PORT_SHOP ;;
      crm-api) port=$SYSTEM_PORT_CRM ;;
      mes-api) port=$SYSTEM_PORT_MES ;;
    esac
    system_spawn "$name" "$SYSTEM_BUILD_DIR/services/$name" --http-listen "$SYSTEM_HOST:$port" \
      --amqp-url "$SYSTEM_AMQP_URL" --otlp-endpoint "$SYSTEM_OTLP_HTTP_URL" \
      --db "$SYSTEM_STATE/$name.db" --time-scale "$SYSTEM_TIME_SCALE" \
      --demo-faults "$SYSTEM_DEMO_FAULTS"
  done
  # They start together; /readyz answers 200 once each consumes from RabbitMQ.
  for name in "${SYSTEM_SERVICES[@]}"; do
    case $name in
      shop-api) port=$SYSTEM_PORT_SHOP ;;
      crm-api) port=$SYSTEM_PORT_CRM ;;
      mes-api) port=$SYSTEM_PORT_MES ;;
    esac
    system_wait_http "$name" "http://$SYSTEM_HOST:$port/readyz" "$SYSTEM_SERVICES_READY_SECONDS" || return 1
  done
}

# Starts everything, in order, each step waiting for the one before it to be ready.
system_start() {
  if [[ -z $SYSTEM_STATE ]]; then
    system__say "system_start needs system_init first"
    return 2
  fi
  local started=$SECONDS name bin
  for name in "${SYSTEM_COMPONENTS[@]}"; do
    if declare -F "${name}_configure" > /dev/null; then "${name}_configure" || return 1; fi
  done
  for bin in "$SYSTEM_ORDERTRACE_BIN" "${SYSTEM_SERVICES[@]/#/$SYSTEM_BUILD_DIR/services/}"; do
    if [[ ! -x $bin ]]; then
      system__say "checking the binaries failed: $bin is missing (bash scripts/build.sh ordertrace shop-api crm-api mes-api)"
      return 1
    fi
  done
  system__start_rabbitmq || return 1
  system__start_ordertrace || return 1
  system__start_services || return 1
  for name in "${SYSTEM_COMPONENTS[@]}"; do
    SYSTEM__STARTED_COMPONENTS+=("$name")
    "${name}_start" || return 1
  done
  echo "system: up in $((SECONDS - started)) s (state and logs in $SYSTEM_STATE)"
}

# system_stop_process NAME...: SIGTERM to each process NAME still running, then waits up to
# SYSTEM_STOP_SECONDS for all of them, then SIGKILL. Prints a line for each that did not stop
# cleanly (killed, non-zero exit on SIGTERM, or already dead); returns non-zero if any.
system_stop_process() {
  local name pid rc=0 code
  local -a names=()
  local -A was_running=() killed=()
  for name in "$@"; do
    pid=${SYSTEM__PIDS[$name]:-}
    [[ -n $pid ]] || continue
    names+=("$name")
    if system__alive "$pid"; then
      was_running[$name]=1
      kill -TERM "$pid" 2> /dev/null || true
    fi
  done
  local deadline=$((SECONDS + ${SYSTEM_STOP_SECONDS:-20})) any
  while ((SECONDS < deadline)); do
    any=0
    for name in "${names[@]}"; do system__alive "${SYSTEM__PIDS[$name]}" && any=1; done
    ((any)) || break
    sleep 0.1
  done
  for name in "${names[@]}"; do
    pid=${SYSTEM__PIDS[$name]}
    if system__alive "$pid"; then
      kill -KILL "$pid" 2> /dev/null || true
      killed[$name]=1
      system__say "stopping $name: still running ${SYSTEM_STOP_SECONDS:-20}s after SIGTERM, killed; read $SYSTEM_LOGS/$name.log"
      rc=1
    fi
    code=""
    if wait "$pid" 2> /dev/null; then code=0; else code=$?; fi
    # 127: not a child of this shell, so its exit code is unknown.
    if [[ -z ${was_running[$name]:-} ]]; then
      system__say "stopping $name: it had already exited${code:+ (code $code)}; read $SYSTEM_LOGS/$name.log"
      rc=1
    elif [[ -z ${killed[$name]:-} && $code != 0 && $code != 127 ]]; then
      system__say "stopping $name: exit code $code after SIGTERM; read $SYSTEM_LOGS/$name.log"
      rc=1
    fi
    unset "SYSTEM__PIDS[$name]"
    rm -f "$SYSTEM_STATE/pids/$name.pid"
  done
  return $rc
}

# Stops everything this library started: components (reverse order), services, ordertrace,
# RabbitMQ. Safe to call twice, and after a failed or partial start. Returns non-zero when
# something did not stop cleanly (each such thing is named on its own line).
system_stop() {
  [[ -n $SYSTEM_STATE ]] || return 0
  local rc=0 i
  for ((i = ${#SYSTEM__STARTED_COMPONENTS[@]} - 1; i >= 0; i--)); do
    "${SYSTEM__STARTED_COMPONENTS[i]}_stop" || rc=1
  done
  SYSTEM__STARTED_COMPONENTS=()
  system_stop_process "${SYSTEM_SERVICES[@]}" || rc=1
  system_stop_process ordertrace || rc=1
  if ((SYSTEM__RABBITMQ_STARTED)); then
    SYSTEM__RABBITMQ_STARTED=0
    if [[ -n $SYSTEM__RABBITMQ_STARTER ]]; then # interrupted during the start
      kill -TERM "$SYSTEM__RABBITMQ_STARTER" 2> /dev/null || true
      wait "$SYSTEM__RABBITMQ_STARTER" 2> /dev/null || true
      SYSTEM__RABBITMQ_STARTER=""
    fi
    if [[ -f $SYSTEM_STATE/rabbitmq/node.env ]] &&
      ! bash "$SYSTEM_ROOT/scripts/rabbitmq.sh" stop "$SYSTEM_STATE/rabbitmq" 2>> "$SYSTEM_LOGS/rabbitmq-stop.log"; then
      system__say "stopping RabbitMQ failed; read $SYSTEM_LOGS/rabbitmq-stop.log"
      rc=1
    fi
  fi
  rm -f "$SYSTEM_STATE/owner.pid"
  return $rc
}

# Non-zero, with one line naming it, when a process started by system_spawn is no longer running.
system_check_alive() {
  local name
  for name in "${!SYSTEM__PIDS[@]}"; do
    if ! system__alive "${SYSTEM__PIDS[$name]}"; then
      system__say "$name is no longer running; read $SYSTEM_LOGS/$name.log"
      return 1
    fi
  done
  if ((SYSTEM__RABBITMQ_STARTED)) && [[ -f $SYSTEM_STATE/rabbitmq/server.pid ]] &&
    ! kill -0 "$(cat "$SYSTEM_STATE/rabbitmq/server.pid")" 2> /dev/null; then
    system__say "RabbitMQ is no longer running; read $SYSTEM_STATE/rabbitmq/log/"
    return 1
  fi
}

# Prints where to look.
system_describe() {
  cat << EOF
  ordertrace console $SYSTEM_API_URL/   (an order: $SYSTEM_API_URL/orders/ORDER_ID)
  ordertrace API    $SYSTEM_API_URL/api/v1/orders?limit=10   (an order: $SYSTEM_API_URL/api/v1/orders/ORDER_ID)
  ordertrace OTLP   gRPC $SYSTEM_HOST:$SYSTEM_PORT_OTLP_GRPC, HTTP $SYSTEM_OTLP_HTTP_URL
  shop-api          $SYSTEM_SHOP_URL/api/orders/ORDER_ID
  crm-api           $SYSTEM_CRM_URL/api/orders/ORDER_ID
  mes-api           $SYSTEM_MES_URL/api/orders/ORDER_ID, dashboard $SYSTEM_MES_URL/api/dashboard/new-orders
  RabbitMQ          $SYSTEM_AMQP_URL
EOF
  local name
  for name in "${SYSTEM__STARTED_COMPONENTS[@]}"; do
    if declare -F "${name}_describe" > /dev/null; then "${name}_describe"; fi
  done
  cat << EOF
  logs              $SYSTEM_LOGS/ (RabbitMQ: $SYSTEM_STATE/rabbitmq/log/)
EOF
}

# Alertmanager (Debian's prometheus-alertmanager 0.25) with deploy/alertmanager's routing: a
# component, added by callers that want gap alerts (system_add_component alertmanager).
alertmanager_configure() {
  system_port SYSTEM_PORT_ALERTMANAGER "Alertmanager" 9093 || return 1
  SYSTEM_ALERTMANAGER_URL="http://$SYSTEM_HOST:$SYSTEM_PORT_ALERTMANAGER"
  SYSTEM_ORDERTRACE_ARGS+=(--alertmanager-url "$SYSTEM_ALERTMANAGER_URL")
}

alertmanager_start() {
  command -v prometheus-alertmanager > /dev/null ||
    { system__say "prometheus-alertmanager not found (apt-get install prometheus-alertmanager)"; return 1; }
  mkdir -p "$SYSTEM_STATE/alertmanager"
  system_spawn alertmanager prometheus-alertmanager \
    --config.file="$SYSTEM_ROOT/deploy/alertmanager/alertmanager.yml" \
    --storage.path="$SYSTEM_STATE/alertmanager" \
    --web.listen-address="$SYSTEM_HOST:$SYSTEM_PORT_ALERTMANAGER" \
    --cluster.listen-address=
  system_wait_http alertmanager "$SYSTEM_ALERTMANAGER_URL/-/ready" 30
}

alertmanager_stop() {
  system_stop_process alertmanager
}

alertmanager_describe() {
  echo "  Alertmanager      $SYSTEM_ALERTMANAGER_URL/#/alerts   (API: $SYSTEM_ALERTMANAGER_URL/api/v2/alerts)"
}

# Prometheus (Debian's prometheus 2.42) with exemplar storage, scraping ordertrace every 5 s and
# evaluating deploy/prometheus's rules; it alerts to the alertmanager component when that one is
# registered too (either order). A component: system_add_component prometheus.
prometheus_configure() {
  system_port SYSTEM_PORT_PROMETHEUS "Prometheus" 9090 || return 1
  SYSTEM_PROMETHEUS_URL="http://$SYSTEM_HOST:$SYSTEM_PORT_PROMETHEUS"
}

# Writes $SYSTEM_STATE/prometheus.yml from deploy/prometheus/prometheus.yml: this run's addresses
# of ordertrace and Alertmanager (no alerting without the alertmanager component), 5 s intervals
# for the demo, the rule file by its absolute path.
prometheus__write_config() {
  local source="$SYSTEM_ROOT/deploy/prometheus/prometheus.yml" out="$SYSTEM_STATE/prometheus.yml"
  local rules="$SYSTEM_ROOT/deploy/prometheus/ordertrace-rules.yml" alerting=0
  [[ " ${SYSTEM_COMPONENTS[*]} " == *" alertmanager "* ]] && alerting=1
  # `t` ends a line's edits at its first substitution, so that a port already rewritten is not
  # rewritten again (a free port may be 8686 or 9093).
  local -a edits=(
    -e "s#'127\.0\.0\.1:8686'#'$SYSTEM_HOST:$SYSTEM_PORT_API'#;t"
    -e 's#^\( *\)\(scrape_interval\|evaluation_interval\): 15s#\1\2: 5s#;t'
    -e "s#^\( *- \)ordertrace-rules\.yml *\$#\1$rules#;t"
  )
  if ((alerting)); then
    edits+=(-e "s#'127\.0\.0\.1:9093'#'$SYSTEM_HOST:$SYSTEM_PORT_ALERTMANAGER'#;t")
  else
    # shellcheck disable=SC2016 # sed's $: from `alerting:` to the last line
    edits+=(-e '/^alerting:/,$d')
  fi
  {
    echo "# Written by scripts/system.sh for this run, from deploy/prometheus/prometheus.yml."
    sed "${edits[@]}" "$source"
  } > "$out" || { system__say "writing $out failed"; return 1; }
  # The edits rely on the shape of the deploy file's lines; a changed shape must not go unseen.
  if ! grep -qF "'$SYSTEM_HOST:$SYSTEM_PORT_API'" "$out" || ! grep -qF -- "- $rules" "$out" ||
    [[ $(grep -c '_interval: 5s$' "$out") -lt 3 ]] ||
    { ((alerting)) && ! grep -qF "'$SYSTEM_HOST:$SYSTEM_PORT_ALERTMANAGER'" "$out"; }; then
    system__say "writing $out failed: $source no longer has the lines scripts/system.sh rewrites (addresses, intervals, rule file)"
    return 1
  fi
}

prometheus_start() {
  command -v prometheus > /dev/null ||
    { system__say "prometheus not found (apt-get install prometheus)"; return 1; }
  prometheus__write_config || return 1
  mkdir -p "$SYSTEM_STATE/prometheus"
  system_spawn prometheus prometheus \
    --config.file="$SYSTEM_STATE/prometheus.yml" \
    --storage.tsdb.path="$SYSTEM_STATE/prometheus" \
    --web.listen-address="$SYSTEM_HOST:$SYSTEM_PORT_PROMETHEUS" \
    --web.external-url="$SYSTEM_PROMETHEUS_URL/" \
    --enable-feature=exemplar-storage
  system_wait_http prometheus "$SYSTEM_PROMETHEUS_URL/-/ready" 30
}

prometheus_stop() {
  system_stop_process prometheus
}

prometheus_describe() {
  echo "  Prometheus        $SYSTEM_PROMETHEUS_URL/graph   (alerts: $SYSTEM_PROMETHEUS_URL/alerts)"
  echo "                    try: histogram_quantile(0.95, sum by (le, from_status, to_status) (rate(stage_duration_seconds_bucket[5m])))"
}
