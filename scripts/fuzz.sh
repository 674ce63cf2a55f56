#!/usr/bin/env bash
# Coverage-guided fuzzing of every decoder (atheris/libFuzzer; targets in tests/fuzz/targets/).
#
#   scripts/fuzz.sh [--seconds N | --runs N] [--merge] [--jobs J] [TARGET...]
#
# Default: a full run, 1,000,000 inputs per target (--runs 1000000). --seconds N runs each target
# for N seconds instead. --merge folds new coverage into the committed corpora
# (tests/fuzz/corpus/TARGET/). --jobs J runs J targets at once. A crash leaves its input in
# tests/fuzz/crashes/TARGET/ (commit it: the test suite replays it as a regression test) and
# makes the script exit 1. Prints a table: inputs run, inputs/s, new corpus units, findings.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
limit=(--runs 1000000)
merge=()
jobs=1
targets=()
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds) limit=(--seconds "$2"); shift 2 ;;
    --runs) limit=(--runs "$2"); shift 2 ;;
    --merge) merge=(--merge); shift ;;
    --jobs) jobs="$2"; shift 2 ;;
    -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
    -*) echo "error: unknown option $1 (see --help)" >&2; exit 2 ;;
    *) targets+=("$1"); shift ;;
  esac
done
if [ ${#targets[@]} -eq 0 ]; then
  mapfile -t targets < <("$PY" -c 'from tests.fuzz.targets import TARGETS; print("\n".join(TARGETS))')
fi
logs=$(mktemp -d)
run_one() {
  local t=$1 start end
  start=$(date +%s)
  set +e
  "$PY" -m tests.fuzz.run "$t" "${limit[@]}" "${merge[@]}" >"$logs/$t.log" 2>&1
  echo $? >"$logs/$t.rc"
  end=$(date +%s)
  echo $((end - start)) >"$logs/$t.secs"
  echo "[fuzz] $t done ($(cat "$logs/$t.rc"))" >&2
}
running=0
for t in "${targets[@]}"; do
  run_one "$t" &
  running=$((running + 1))
  if [ "$running" -ge "$jobs" ]; then wait -n; running=$((running - 1)); fi
done
wait
status=0
printf '%-16s %12s %9s %8s %9s  %s\n' target inputs "inputs/s" new seconds finding
for t in "${targets[@]}"; do
  log="$logs/$t.log"
  runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo 0)
  rate=$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo 0)
  new=$(grep -o 'stat::new_units_added: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo 0)
  finding=none
  if [ "$(cat "$logs/$t.rc")" != 0 ]; then
    finding=$(grep -m1 -o 'Test unit written to .*' "$log" || tail -n 1 "$log")
    status=1
  fi
  printf '%-16s %12s %9s %8s %9s  %s\n' "$t" "$runs" "$rate" "$new" "$(cat "$logs/$t.secs")" "$finding"
done
echo "logs: $logs" >&2
exit $status
