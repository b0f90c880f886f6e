# shellcheck shell=bash
# Result counting for the end-to-end test scripts: source it after setting `e2e_name` (the
# prefix of every line, e.g. sim_e2e) and `kBudgetSeconds` (the script's time budget).
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
