#!/usr/bin/env bash
# Side by side: two golab binaries (an older commit's and this tree's, say) running
# `golab run LAB` (default startup-trace) on the course's pinned pair, alternating every
# round so both see the same load. Prints each one's median, its runs with the dlv reruns
# they took, and the ratio NEW/BASE (nothing may get slower: <= 1.0 within noise).
# Usage: scripts/bench-ab.sh BASE_GOLAB NEW_GOLAB [ROUNDS] [LAB]   (default 8 rounds)
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh
[ $# -ge 2 ] || { echo "usage: $0 BASE_GOLAB NEW_GOLAB [ROUNDS] [LAB]" >&2; exit 2; }
base=$1 new=$2 rounds=${3:-8} lab=${4:-startup-trace}
echo "bench-ab: golab run $lab, $rounds rounds" >&2
while read -r name path; do
  case "$name" in go1.*) gr=$path ;; dlv-*) dl=$path ;; esac  # the pin: its only pair
done < <(bash scripts/fetch-toolchains.sh pinned 2>/dev/null)
d=$(mktemp -d)
trap 'rm -rf "$d"' EXIT
for ((i = 0; i < rounds; i++)); do
  for side in base new; do
    bin=$base; [ "$side" = new ] && bin=$new
    t=$(date +%s.%N)
    rc=0
    "$bin" run "$lab" -q --goroot "$gr" --dlv "$dl" --json-file "$d/$side.json" >/dev/null || rc=$?
    e=$(echo "$(date +%s.%N) - $t" | bc)
    rr=$(python3 -c "import json,sys; print(len(json.load(open(sys.argv[1]))['observation']['dlv_reruns']))" "$d/$side.json" 2>/dev/null || echo "?")
    echo "$side $e exit=$rc reruns=$rr" >>"$d/times"
  done
done
python3 - "$d/times" <<'PY'
import sys, statistics, collections
t, notes = collections.defaultdict(list), collections.defaultdict(list)
for l in open(sys.argv[1]):
    s, e, *rest = l.split(); t[s].append(float(e)); notes[s].append(" ".join(rest))
for s in ("base", "new"):
    print(f"{s}: median {statistics.median(t[s]):.2f}s  runs {' '.join(f'{x:.2f}' for x in t[s])}")
    print(f"      {'; '.join(sorted(set(notes[s])))}")
print(f"ratio new/base: {statistics.median(t['new']) / statistics.median(t['base']):.2f}")
PY
