#!/usr/bin/env bash
# PII never stored, served or counted (docs/security.md), against the real process: spans with
# e-mail addresses and phone numbers in every place (span, event, link, resource and scope
# attributes, nested arrays and kvlists, span and event names, status messages, attribute keys)
# sent over OTLP/HTTP protobuf and JSON (tests/pii/make_pii_export.py). Then:
#  1. the API (order, trace, search, tag names, customer.email's values) and /metrics hold none
#     of them, and ordertrace_pii_removed_total{rule} counts every one;
#  2. the non-PII parts (order id, markers beside the PII) are stored and served;
#  3. operator_id gained operator_id.hash, and <data_dir>/operator_id.key is 0600;
#  4. after a clean stop, a byte scan of the whole work folder (RocksDB files, WAL, log) finds
#     none of them, and finds the markers (the scan does see what is stored);
#  5. a search by each PII string is answered, and the audit log (in the data folder) keeps none;
#  6. started again (the same hash for the same operator), more spans, kill -9, scan again.
# Levels past 1 of the store are LZ4-compressed, where a byte scan would see little: each scan
# runs while the spans it looks for are in the WAL or level 0 (uncompressed), and the markers
# sent beside the PII must be found by the same scan, so that finding no PII means something.
#
# Usage: tests/pii/pii_scrub_test.sh [path/to/ordertrace]
# Needs bash, curl, jq, python3. Loopback only; about 10 s.
set -euo pipefail

e2e_name=pii_scrub
kBudgetSeconds=120

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=../support/e2e_checks.sh
source "$here/../support/e2e_checks.sh"
bin="${1:-${ORDERTRACE_BIN:-$here/../../build/src/ordertrace}}"
[[ -x "$bin" ]] || { echo "pii_scrub: no executable ordertrace at $bin" >&2; exit 2; }
for tool in curl jq python3 grep; do
  command -v "$tool" > /dev/null || { echo "pii_scrub: $tool is required" >&2; exit 2; }
done

root="$(mktemp -d "${TMPDIR:-/tmp}/ordertrace-pii.XXXXXX")"
work="$root/work"     # what ordertrace writes: scanned
bodies="$root/bodies" # what the test sends and reads back: not scanned
mkdir -p "$work" "$bodies"
server_pid=""
cleanup() {
  if [[ -n "$server_pid" ]]; then
    kill -9 "$server_pid" 2> /dev/null || true
    wait "$server_pid" 2> /dev/null || true
  fi
  if ((failed > 0)); then tail -20 "$work/server.log" >&2 || true; fi
  rm -rf "$root"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Every span stored (no sampling), so that every marker must be found.
cat > "$work/ordertrace.yaml" << YAML
data_dir: $work/data
store:
  min_free_mb: 0
sampling:
  enabled: false
YAML

# shellcheck source=../support/ordertrace_server.sh
source "$here/../support/ordertrace_server.sh"

# send TAG FORMAT: makes and posts one export; prints the HTTP code.
send() {
  local type=application/x-protobuf
  [[ $2 == json ]] && type=application/json
  python3 "$here/make_pii_export.py" "$2" "$1" "$bodies"
  curl -sS -o "$bodies/$1.answer" -w '%{http_code}' --max-time 5 -H "Content-Type: $type" \
    --data-binary "@$bodies/$1.body" "$otlp_url" 2> /dev/null || echo 000
}

# collect_answers TAG...: everything the API and /metrics answer about the tags sent so far,
# in one file; prints its path.
collect_answers() {
  local out="$bodies/answers" tag
  : > "$out"
  for tag in "$@"; do
    {
      curl -sS --max-time 5 "$api_url/api/v1/orders/$(cat "$bodies/$tag.order")"
      curl -sS --max-time 5 "$api_url/api/traces/$(cat "$bodies/$tag.trace")"
      curl -sS --max-time 5 "$api_url/api/v2/traces/$(cat "$bodies/$tag.trace")"
      # A search for each PII string: its answer finds nothing, and the audit log (in the data
      # folder, byte-scanned below) must not keep the query in clear.
      while IFS= read -r line; do
        [[ -n "$line" ]] || continue
        curl -sS --max-time 5 -G "$api_url/api/search" \
          --data-urlencode "tags=customer.email=\"${line//\"/}\""
      done < "$bodies/$tag.pii"
    } >> "$out"
  done
  {
    curl -sS --max-time 5 "$api_url/api/v1/orders"
    curl -sS --max-time 5 "$api_url/api/search?tags=service.name%3Dpii-test&limit=100"
    curl -sS --max-time 5 "$api_url/api/search/tags"
    curl -sS --max-time 5 "$api_url/api/search/tag/customer.email/values"
    curl -sS --max-time 5 "$api_url/api/search/tag/note/values"
    curl -sS --max-time 5 "$api_url/api/search/tag/owner/values"
    curl -sS --max-time 5 "$api_url/metrics"
  } >> "$out"
  echo "$out"
}

# no_pii_in FILE_OR_DIR TAG...: no PII string of the tags in the file, or anywhere under the dir.
no_pii_in() {
  local where=$1 tag line hits=0
  shift
  for tag in "$@"; do
    while IFS= read -r line; do
      [[ -n "$line" ]] || continue
      if grep -r -a -q -F -- "$line" "$where"; then
        echo "pii_scrub: '$line' found in $(grep -r -a -l -F -- "$line" "$where" | head -3)" >&2
        hits=$((hits + 1))
      fi
    done < "$bodies/$tag.pii"
  done
  ((hits == 0))
}

# all_kept_in FILE_OR_DIR TAG...: every marker of the tags is there.
all_kept_in() {
  local where=$1 tag line missing=0
  shift
  for tag in "$@"; do
    while IFS= read -r line; do
      [[ -n "$line" ]] || continue
      grep -r -a -q -F -- "$line" "$where" || {
        echo "pii_scrub: '$line' missing from $where" >&2
        missing=$((missing + 1))
      }
    done < "$bodies/$tag.keep"
  done
  ((missing == 0))
}

metric() { # metric SERIES: its value at /metrics
  curl -fsS --max-time 5 "$api_url/metrics" 2> /dev/null | awk -v m="$1" '$1 == m { print $2 }'
}

span_of() { # span_of TAG: the stored span as JSON
  curl -sS --max-time 5 "$api_url/api/traces/$(cat "$bodies/$1.trace")" |
    jq -c '[.batches[].scopeSpans[].spans[]][0]'
}
attribute() { # attribute SPAN_JSON KEY: its string value
  jq -r --arg k "$2" '.attributes[] | select(.key == $k) | .value.stringValue' <<< "$1"
}

# Each export holds 10 e-mail addresses and 6 phone numbers (make_pii_export.py).
readonly kEmails=10 kPhones=6

start_server || fail "ordertrace did not start"
check "protobuf export with PII accepted" [ "$(send p1 protobuf)" = 200 ]
check "JSON export with PII accepted" [ "$(send j1 json)" = 200 ]
answers="$(collect_answers p1 j1)"
check "API answers and /metrics hold no PII" no_pii_in "$answers" p1 j1
check "the order, markers and nested values beside the PII are served" \
  all_kept_in "$answers" p1 j1
check "ordertrace_pii_removed_total{rule=\"email\"} counts every address" \
  [ "$(metric 'ordertrace_pii_removed_total{rule="email"}')" = $((2 * kEmails)) ]
check "ordertrace_pii_removed_total{rule=\"phone\"} counts every number" \
  [ "$(metric 'ordertrace_pii_removed_total{rule="phone"}')" = $((2 * kPhones)) ]
check "customer.email has no values to list" \
  [ "$(curl -sS "$api_url/api/search/tag/customer.email/values" | jq -c '.tagValues // []')" = "[]" ]
span="$(span_of p1)"
check "the span name is masked, the rest readable" \
  [ "$(jq -r .name <<< "$span")" = "notify [email]" ]
check "a number inside a longer value is masked" \
  [ "$(attribute "$span" note)" = "ring [phone] after 5" ]
check "span metrics are labelled with the masked name" \
  grep -q -F 'span_name="notify [email]"' "$answers"
hash_p1="$(attribute "$span" operator_id.hash)"
check "operator_id gained operator_id.hash" grep -qxE 'hmac:[0-9a-f]{32}' <<< "$hash_p1"
check "the clear operator_id stays for ops" \
  [ "$(attribute "$span" operator_id)" = "op-$(sed -n 's/^ord-//p' "$bodies/p1.order")" ]
check "the operator id key file is 0600" [ "$(stat -c %a "$work/data/operator_id.key")" = 600 ]

kill -TERM "$server_pid"
wait "$server_pid" 2> /dev/null || true
server_pid=""
check "after a clean stop, no PII byte in the data folder (RocksDB, WAL) or the log" \
  no_pii_in "$work" p1 j1
check "...while the scan finds the markers stored beside them" all_kept_in "$work/data" p1 j1

start_server || fail "ordertrace did not start again"
check "after the restart the same operator has the same hash" \
  [ "$(attribute "$(span_of p1)" operator_id.hash)" = "$hash_p1" ]
check "protobuf export with PII accepted after the restart" [ "$(send p2 protobuf)" = 200 ]
check "JSON export with PII accepted after the restart" [ "$(send j2 json)" = 200 ]
answers="$(collect_answers p1 j1 p2 j2)"
check "API answers and /metrics hold no PII after the restart" no_pii_in "$answers" p1 j1 p2 j2
check "the new process counts what it removed" \
  [ "$(metric 'ordertrace_pii_removed_total{rule="email"}')" = $((2 * kEmails)) ]
kill -9 "$server_pid"
wait "$server_pid" 2> /dev/null || true
server_pid=""
check "after kill -9, no PII byte in the data folder (WAL included) or the log" \
  no_pii_in "$work" p1 j1 p2 j2
# The first run's spans may have been compacted into LZ4-compressed levels by now, where a byte
# scan sees little (they were scanned uncompressed above); the second run's are in the WAL.
check "...while the scan finds the markers of the second run" all_kept_in "$work/data" p2 j2

echo "pii_scrub: $passed passed, $failed failed"
((failed == 0))
