# shellcheck shell=bash
# What the end-to-end test scripts share: result counting, the time budget, bounded commands
# that a signal interrupts at once, and the logs shown after a failure. Source it after setting
# `e2e_name` (the prefix of every line, e.g. sim_e2e) and `kBudgetSeconds` (the script's budget).
passed=0
failed=0

# fail MESSAGE: prints the failure and the count so far, and ends the script.
fail() {
  echo "$e2e_name: FAILED: $*" >&2
  echo "$e2e_name: $passed passed, $((failed + 1)) failed"
  exit 1
}

check() { # check DESCRIPTION COMMAND...: counts and prints one result line
  if "${@:2}"; then
    passed=$((passed + 1))
    echo "$e2e_name: ok: $1"
  else
    failed=$((failed + 1))
    echo "$e2e_name: FAILED: $1"
  fi
}

# Prints the seconds left of the budget, at most $1 (a step's own bound); non-zero when spent.
budget() {
  local left=$((kBudgetSeconds - SECONDS))
  ((left > 5)) || return 1
  echo $((left < $1 ? left : $1))
}

child="" # the command e2e_bounded is running, if any

# e2e_bounded SECONDS OUTFILE ERRFILE COMMAND...: runs COMMAND for at most SECONDS, its output to
# OUTFILE and its errors to ERRFILE (the same file: both there; "-": left on the terminal);
# returns its exit code (124 or 137 when it ran out of time). In the background, with `wait`, so
# that a signal to the script runs its trap at once instead of after COMMAND.
e2e_bounded() {
  local seconds=$1 out=$2 err=$3 rc=0
  shift 3
  if [[ $out == - ]]; then
    timeout --kill-after=5 "$seconds" "$@" &
  elif [[ $out == "$err" ]]; then
    timeout --kill-after=5 "$seconds" "$@" > "$out" 2>&1 &
  else
    timeout --kill-after=5 "$seconds" "$@" > "$out" 2> "$err" &
  fi
  child=$!
  wait "$child" || rc=$?
  child=""
  return $rc
}

# e2e_stop_child: stops what e2e_bounded still runs (for the EXIT trap; timeout passes it on).
e2e_stop_child() {
  if [[ -n $child ]]; then
    kill -TERM "$child" 2> /dev/null || true
    wait "$child" 2> /dev/null || true
  fi
}

# e2e_show_logs DIR: the last lines of each log in DIR that is not empty (after a failure).
e2e_show_logs() {
  [[ -n ${1:-} && -d $1 ]] || return 0
  local log
  for log in "$1"/*.log; do
    [[ -s $log ]] || continue
    echo "--- last lines of $log ---" >&2
    tail -n 8 "$log" >&2
  done
}
