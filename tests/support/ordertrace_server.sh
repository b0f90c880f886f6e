# shellcheck shell=bash
# Starting and stopping a real ordertrace on free loopback ports, for the process-level test
# scripts. Source it after setting `bin` (the ordertrace binary) and `work` (a folder holding
# ordertrace.yaml; server.log is appended there).

# free_ports, free_port: free loopback TCP ports.
# shellcheck source=../../scripts/lib/free_ports.sh
source "$(dirname "${BASH_SOURCE[0]}")/../../scripts/lib/free_ports.sh"

# start_server: starts ordertrace with $work/ordertrace.yaml on free ports (or on
# $server_ports, "GRPC HTTP API", when set: a restart on the same ports) and waits (20 s at
# most) for /readyz. Sets server_pid, otlp_url (…/v1/traces) and api_url.
# With $server_cacert set (a PEM CA file) the server is taken to serve TLS: https:// URLs, and
# /readyz asked over TLS trusting that CA. Returns 1, with the log's tail on stderr, when it
# exits or does not answer in time.
start_server() {
  local grpc http api deadline scheme=http
  local tls=()
  if [[ -n "${server_cacert:-}" ]]; then
    scheme=https
    tls=(--cacert "$server_cacert")
  fi
  read -r grpc http api <<< "${server_ports:-$(free_ports)}"
  "$bin" --config "$work/ordertrace.yaml" --otlp-grpc-listen "127.0.0.1:$grpc" \
    --otlp-http-listen "127.0.0.1:$http" --http-listen "127.0.0.1:$api" >> "$work/server.log" 2>&1 &
  server_pid=$!
  otlp_url="$scheme://127.0.0.1:$http/v1/traces"
  api_url="$scheme://127.0.0.1:$api"
  deadline=$((SECONDS + 20))
  while ((SECONDS < deadline)); do
    kill -0 "$server_pid" 2> /dev/null || { tail -5 "$work/server.log" >&2; return 1; }
    curl -fsS --max-time 1 "${tls[@]}" -o /dev/null "$api_url/readyz" 2> /dev/null && return 0
    sleep 0.1
  done
  tail -5 "$work/server.log" >&2
  return 1
}
