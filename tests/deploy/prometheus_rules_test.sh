#!/usr/bin/env bash
# deploy/prometheus, checked with Prometheus 2.42's promtool: the config and the rules load,
# every rule unit test passes, and every alert has a test case that expects it to fire.
# Usage: tests/deploy/prometheus_rules_test.sh   (PROMTOOL overrides the binary; default promtool)
set -euo pipefail

dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/../../deploy/prometheus" && pwd)"
promtool="${PROMTOOL:-promtool}"
command -v "$promtool" > /dev/null ||
  { echo "prometheus_rules: $promtool not found (apt-get install prometheus)" >&2; exit 2; }

"$promtool" check config "$dir/prometheus.yml"
"$promtool" check rules "$dir/ordertrace-rules.yml"
"$promtool" test rules "$dir/ordertrace-rules.test.yml"

# An alert without a firing case could be one that never fires.
alerts="$(sed -n 's/^ *- alert: *\([A-Za-z0-9_]*\).*/\1/p' "$dir/ordertrace-rules.yml")"
firing="$(awk '/^ *(- )?alertname:/ { name = $NF }
               /^ *- exp_labels:/ && name != "" { print name }' "$dir/ordertrace-rules.test.yml" |
  sort -u)"
[[ -n $alerts ]] || { echo "prometheus_rules: no alert found in ordertrace-rules.yml" >&2; exit 1; }
missing=0
for alert in $alerts; do
  if ! grep -qx -- "$alert" <<< "$firing"; then
    echo "prometheus_rules: alert $alert has no test case where it fires" >&2
    missing=1
  fi
done
((missing == 0))
echo "prometheus_rules: $(wc -w <<< "$alerts") alerts, each fires in a test"
