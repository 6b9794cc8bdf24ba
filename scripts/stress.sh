#!/usr/bin/env bash
# A lab's verdict must not depend on the machine's load: runs each lab N times (default
# 30) with two CPU burners beside it and counts the distinct verdicts (the PASS/FAIL
# line of every check and the score). Exit 0 only when every lab gave one verdict, all
# runs full. Disturbed runs are run again inside golab (at most 3 times; the count is
# printed here).
#   usage: scripts/stress.sh [N] [debian|pinned] [LAB...]
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh
n=${1:-30}
pair=${2:-pinned}
shift 2 || shift $#
# GOLAB_BIN: a golab binary to use instead of building this tree's.
if [ -n "${GOLAB_BIN:-}" ]; then golab=$GOLAB_BIN; else cargo build --release --quiet; golab=$PWD/target/release/golab; fi
tools=()
if [ "$pair" = pinned ]; then
  while read -r name path; do
    case "$name" in go1.*) tools+=(--goroot "$path") ;; dlv-*) tools+=(--dlv "$path") ;; esac
  done < <(bash scripts/fetch-toolchains.sh pinned 2>/dev/null)
fi
if [ $# -gt 0 ]; then labs=("$@"); else mapfile -t labs < <("$golab" labs | awk '{print $1}'); fi
out=$(mktemp -d)
burners=()
cleanup() { for b in "${burners[@]}"; do kill "$b" 2>/dev/null || true; done; rm -rf "$out"; }
trap cleanup EXIT
for _ in 1 2; do (while :; do :; done) & burners+=($!); done
echo "pair: $pair; $n runs per lab beside 2 CPU burners; load $(cut -d' ' -f1-3 /proc/loadavg)"
fail=0
for lab in "${labs[@]}"; do
  : >"$out/verdicts"
  reruns=0
  for ((i = 1; i <= n; i++)); do
    set +e
    "$golab" run "$lab" -q -v "${tools[@]}" >"$out/run.txt" 2>&1
    set -e
    grep -E '^(PASS|FAIL) |^Score:' "$out/run.txt" | awk '{print $1, $2, $3}' | tr '\n' ';' >>"$out/verdicts"
    echo >>"$out/verdicts"
    r=$(grep -c 'run again' "$out/run.txt" || true)
    reruns=$((reruns + r))
    if grep -q '^FAIL' "$out/run.txt"; then cp "$out/run.txt" "$out/fail-$lab-$i.txt"; fi
  done
  distinct=$(sort -u "$out/verdicts" | wc -l)
  fulls=$(grep -c 'Score: \([0-9]*\)/\1 *;' "$out/verdicts" || true)
  printf '%-18s %d runs, %d distinct verdict(s), %d full, %d disturbed run(s) run again\n' "$lab" "$n" "$distinct" "$fulls" "$reruns"
  if [ "$distinct" -ne 1 ] || [ "$fulls" -ne "$n" ]; then
    fail=1
    sort "$out/verdicts" | uniq -c | sed 's/^/    /'
    for f in "$out"/fail-"$lab"-*.txt; do [ -f "$f" ] && grep -E '^FAIL|BAD|MISSING' "$f" | sed 's/^/    /' | head -8; done
  fi
done
exit $fail
