#!/usr/bin/env bash
# Benchmark: `golab tour startup-trace --all` (the seed's program, warm build cache)
# beside a plain baseline doing the same session by hand: the same go build, then real
# `dlv exec` typed the very commands the tour typed (read from its --json), run in
# alternation. Target: the tour <= 3 s. Usage: scripts/bench-tour.sh [ROUNDS] (default 5).
# Prints the medians and the ratio tour/baseline.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh
rounds=${1:-5}
shift || true
cargo build --release --quiet
golab=$PWD/target/release/golab
lab=$PWD/labs/startup-trace
scratch=$(mktemp -d)
trap '[ -n "${KEEP:-}" ] || rm -rf "$scratch"' EXIT
"$golab" tour startup-trace --all --json-file "$scratch/tour.json" "$@" >/dev/null </dev/null || true
python3 - "$scratch" <<'PY'
import json, sys
d = sys.argv[1]
t = json.load(open(f"{d}/tour.json"))
with open(f"{d}/commands.txt", "w") as f:
    for s in t["sections"]:
        for e in s["entries"]:
            f.write(e["command"] + "\n")
    f.write("exit\n")
PY
mkdir -p "$scratch/work"
cp "$lab/main.go" "$lab/go.mod" "$scratch/work/"
now() { date +%s.%N; }
tour_t=(); base_t=()
for i in $(seq "$rounds"); do
  a=$(now); "$golab" tour startup-trace --all >/dev/null </dev/null; b=$(now)
  tour_t+=("$(echo "$b - $a" | bc)")
  a=$(now)
  (cd "$scratch/work" && GOTOOLCHAIN=local go build -gcflags "all=-l -N" -o main . &&
    GOMAXPROCS=1 dlv exec --allow-non-terminal-interactive=true --check-go-version=false ./main -- golab startup trace \
      <"$scratch/commands.txt" >/dev/null 2>&1)
  b=$(now)
  base_t+=("$(echo "$b - $a" | bc)")
done
median() { printf '%s\n' "$@" | sort -n | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }
mt=$(median "${tour_t[@]}"); mb=$(median "${base_t[@]}")
echo "golab tour startup-trace --all: median ${mt}s over $rounds rounds (target <= 3 s)"
echo "baseline (go build + real dlv typed the same $(wc -l <"$scratch/commands.txt") commands): median ${mb}s"
echo "ratio tour/baseline: $(echo "scale=2; $mt / $mb" | bc)"
awk -v t="$mt" 'BEGIN { exit !(t <= 3.0) }' || { echo "over the 3 s target"; exit 1; }
