#!/usr/bin/env bash
# Starts and stops a private RabbitMQ node (Debian rabbitmq-server 3.10) on loopback, with its
# data, logs, Erlang cookie and plugin list under one folder, for tests and local runs.
#
#   scripts/rabbitmq.sh start DIR PORT   # prints amqp://guest:guest@127.0.0.1:PORT/ when ready
#   scripts/rabbitmq.sh stop DIR         # stops the node and everything it started
#
# The node runs as the `rabbitmq` user (DIR is chowned to it). Its settings are kept in
# DIR/node.env so that `stop` needs only DIR. Start waits at most RABBITMQ_START_TIMEOUT seconds
# (default 60); every failing step prints one clear line to stderr and exits non-zero.
set -euo pipefail

# shellcheck source=lib/free_ports.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/free_ports.sh"

readonly RABBITMQ_BIN=/usr/lib/rabbitmq/bin
readonly RUN_USER=rabbitmq

die() {
  echo "rabbitmq.sh: $*" >&2
  exit 1
}

usage() {
  echo "usage: $0 start DIR PORT | stop DIR" >&2
  exit 2
}

port_accepts() {  # port_accepts PORT -> 0 when 127.0.0.1:PORT accepts a TCP connection
  timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null
}

port_free() {
  ! port_accepts "$1"
}

# Runs a RabbitMQ tool as the rabbitmq user with exactly the node's environment.
as_node() {
  local tool=$1
  shift
  # shellcheck disable=SC2046
  setpriv --reuid="$RUN_USER" --regid="$RUN_USER" --init-groups \
    env -i PATH=/usr/bin:/bin:/usr/sbin:/sbin LANG=C.UTF-8 LC_ALL=C.UTF-8 \
    $(cat "$DIR/node.env") "$RABBITMQ_BIN/$tool" "$@"
}

start() {
  [[ $# -eq 2 ]] || usage
  DIR=$1
  local port=$2
  if [[ ! $port =~ ^[0-9]+$ ]] || ((port < 1 || port > 65535)); then
    die "bad port '$port'"
  fi
  id -u "$RUN_USER" >/dev/null 2>&1 || die "user '$RUN_USER' missing (is rabbitmq-server installed?)"
  [[ -x $RABBITMQ_BIN/rabbitmq-server ]] || die "$RABBITMQ_BIN/rabbitmq-server not found (apt-get install rabbitmq-server)"
  [[ $(id -u) -eq 0 ]] || die "must run as root to start the node as user '$RUN_USER'"
  port_free "$port" || die "port 127.0.0.1:$port is already in use"

  [[ $DIR != *[[:space:]]* ]] || die "DIR must not contain spaces: '$DIR'"
  mkdir -p "$DIR" || die "cannot create $DIR"
  DIR=$(cd "$DIR" && pwd)
  if [[ -f $DIR/server.pid ]] && kill -0 "$(cat "$DIR/server.pid")" 2>/dev/null; then
    die "a node is already running from $DIR (pid $(cat "$DIR/server.pid")); stop it first"
  fi

  local dist_port=$((port + 20000))
  if ((dist_port > 65535)) || ! port_free "$dist_port"; then
    dist_port=$(free_port) ||
      die "cannot find a free port for Erlang distribution"
  fi
  # The node's epmd: reuse one already on 4369, otherwise the node starts its own, which
  # `stop` must then end too.
  local epmd_preexisting=0
  port_accepts 4369 && epmd_preexisting=1

  mkdir -p "$DIR/mnesia" "$DIR/log"
  : >"$DIR/enabled_plugins"
  echo "[]." >"$DIR/enabled_plugins"
  cat >"$DIR/node.env" <<EOF
HOME=$DIR
RABBITMQ_NODENAME=ot-$port@localhost
RABBITMQ_NODE_IP_ADDRESS=127.0.0.1
RABBITMQ_NODE_PORT=$port
RABBITMQ_DIST_PORT=$dist_port
RABBITMQ_MNESIA_BASE=$DIR/mnesia
RABBITMQ_LOG_BASE=$DIR/log
RABBITMQ_ENABLED_PLUGINS_FILE=$DIR/enabled_plugins
RABBITMQ_FEATURE_FLAGS_FILE=$DIR/feature_flags
RABBITMQ_PID_FILE=$DIR/rabbitmq.pid
RABBITMQ_CONFIG_FILE=$DIR/rabbitmq
RABBITMQ_ADVANCED_CONFIG_FILE=$DIR/advanced.config
RABBITMQ_CONF_ENV_FILE=$DIR/rabbitmq-env.conf
ERL_EPMD_ADDRESS=127.0.0.1
EOF
  : >"$DIR/rabbitmq-env.conf"
  echo "$epmd_preexisting" >"$DIR/epmd_preexisting"
  chown -R "$RUN_USER:$RUN_USER" "$DIR" || die "cannot chown $DIR to $RUN_USER"
  # The rabbitmq user must be able to reach DIR through its parents.
  setpriv --reuid="$RUN_USER" --regid="$RUN_USER" --init-groups test -w "$DIR" ||
    die "user $RUN_USER cannot write $DIR (check the permissions of its parent folders)"

  local started=$SECONDS
  # setsid gives the node its own process group, so `stop` can end everything it spawned.
  setsid bash -c "$(declare -f as_node); RABBITMQ_BIN=$RABBITMQ_BIN RUN_USER=$RUN_USER DIR='$DIR' \
    as_node rabbitmq-server" >"$DIR/log/startup_stdout.log" 2>"$DIR/log/startup_stderr.log" </dev/null &
  echo $! >"$DIR/server.pid"

  local deadline=$((SECONDS + ${RABBITMQ_START_TIMEOUT:-60}))
  local pinged=0
  while ((SECONDS < deadline)); do
    if ! kill -0 "$(cat "$DIR/server.pid")" 2>/dev/null; then
      echo "rabbitmq.sh: rabbitmq-server exited during start-up; last lines of its output:" >&2
      tail -n 20 "$DIR/log/startup_stdout.log" "$DIR/log/startup_stderr.log" >&2 || true
      stop_quietly
      exit 1
    fi
    if ((!pinged)) && as_node rabbitmq-diagnostics -q ping >/dev/null 2>&1; then
      pinged=1
    fi
    if ((pinged)) && port_accepts "$port"; then
      echo "rabbitmq.sh: node ot-$port@localhost ready in $((SECONDS - started)) s" >&2
      echo "amqp://guest:guest@127.0.0.1:$port/"
      return 0
    fi
    sleep 0.5
  done
  if ((!pinged)); then
    echo "rabbitmq.sh: 'rabbitmq-diagnostics ping' did not succeed within ${RABBITMQ_START_TIMEOUT:-60} s; last log lines:" >&2
  else
    echo "rabbitmq.sh: node answers ping but AMQP port $port is not accepting connections after ${RABBITMQ_START_TIMEOUT:-60} s" >&2
  fi
  tail -n 20 "$DIR/log/startup_stdout.log" "$DIR/log/startup_stderr.log" >&2 || true
  stop_quietly
  exit 1
}

# Stops the node in DIR: rabbitmqctl stop, then SIGTERM/SIGKILL on what remains of its process
# group, then the epmd it started (if it started one).
stop_quietly() {
  [[ -f $DIR/node.env ]] || return 0
  local pid=""
  [[ -f $DIR/server.pid ]] && pid=$(cat "$DIR/server.pid")
  if [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null; then
    timeout 30 bash -c "$(declare -f as_node); RABBITMQ_BIN=$RABBITMQ_BIN RUN_USER=$RUN_USER \
      DIR='$DIR' as_node rabbitmqctl -q stop" >/dev/null 2>&1 || true
  fi
  if [[ -n $pid ]]; then
    local i
    for i in $(seq 1 20); do
      kill -0 -- "-$pid" 2>/dev/null || break
      ((i == 10)) && kill -TERM -- "-$pid" 2>/dev/null
      sleep 0.5
    done
    kill -KILL -- "-$pid" 2>/dev/null || true
  fi
  # Any beam process still using this DIR (e.g. one that left the process group).
  local stray
  for stray in $(pgrep -u "$RUN_USER" -f -- "$DIR/mnesia" || true); do
    kill -KILL "$stray" 2>/dev/null || true
  done
  if [[ $(cat "$DIR/epmd_preexisting" 2>/dev/null || echo 1) == 0 ]]; then
    # epmd daemonizes out of the process group; end the one this node started, if it now
    # serves no other node.
    local epmd_pid
    for epmd_pid in $(pgrep -u "$RUN_USER" -x epmd || true); do
      if ! epmd -names 2>/dev/null | grep -q '^name '; then
        kill -TERM "$epmd_pid" 2>/dev/null || true
      fi
    done
  fi
  rm -f "$DIR/server.pid"
}

stop() {
  [[ $# -eq 1 ]] || usage
  DIR=$1
  [[ -d $DIR ]] || die "no such folder $DIR"
  DIR=$(cd "$DIR" && pwd)
  [[ -f $DIR/node.env ]] || die "$DIR holds no node started by this script (no node.env)"
  stop_quietly
  if [[ -f $DIR/rabbitmq.pid ]] && kill -0 "$(cat "$DIR/rabbitmq.pid")" 2>/dev/null; then
    die "node process $(cat "$DIR/rabbitmq.pid") is still running after stop"
  fi
  echo "rabbitmq.sh: stopped node in $DIR" >&2
}

case "${1:-}" in
  start) shift; start "$@" ;;
  stop) shift; stop "$@" ;;
  *) usage ;;
esac
