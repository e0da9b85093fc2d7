#!/usr/bin/env bash
# The "no flaky verdicts" loop (issue 7): run the suite's own tests N times in a row while another
# process keeps one core busy, and log every failing test id per run.
#   scripts/stress.sh [RUNS] [LOG_DIR]      (defaults: 20, stress-logs/)
# Prints one line per run and a summary; exits 1 if any run failed.
set -uo pipefail
cd "$(dirname "$0")/.."
runs=${1:-20}
logs=${2:-stress-logs}
mkdir -p "$logs"
python3 -c "while True: pass" &
burner=$!
suite=
# Stopping the loop stops the run in progress too (its servers go with it) and the burner.
trap 'kill $burner $suite 2>/dev/null' EXIT
trap 'exit 130' INT TERM
failed=0
for i in $(seq 1 "$runs"); do
    start=$(date +%s)
    .venv/bin/python -m pytest tests -q -p no:cacheprovider -rfE >"$logs/run-$i.log" 2>&1 &
    suite=$!
    wait $suite
    rc=$?
    load=$(cut -d' ' -f1 /proc/loadavg)
    summary=$(tail -n 1 "$logs/run-$i.log")
    echo "run $i: exit $rc in $(( $(date +%s) - start )) s, load $load: $summary"
    if [ $rc -ne 0 ]; then
        failed=$((failed + 1))
        grep -E '^(FAILED|ERROR) ' "$logs/run-$i.log" | sed 's/^/    /'
    fi
done
echo "$((runs - failed)) of $runs runs green"
[ $failed -eq 0 ]
