#!/usr/bin/env bash
# Benchmark of `golab grade`: COUNT generated submissions (default 200) of the
# startup-trace lab, each its own variant: 60% right, 20% partly wrong, 10% broken
# answers.yaml, 10% a program that does not compile. Prints the total time, the time
# per submission, and the ratio to one bare `golab run startup-trace`, measured in the
# same run. Usage: scripts/bench-grade.sh [COUNT] [JOBS]   (GOLAB_GRADE_FLAGS adds flags;
# GOLAB_BIN measures another golab binary)
#
# Side by side with a baseline: BASELINE=DIR (a checkout of another commit, e.g. a git
# worktree of the one to compare with) builds that tree's golab too and grades the same
# submissions with both, ROUNDS times each (default 2), alternating which goes first, each
# into a fresh output folder; prints each one's median time per submission and the ratio
# this tree / baseline. The baseline grades with its own labs (DIR/labs).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh
count=${1:-200}
jobs=${2:-2}
# GOLAB_BIN: a golab binary to measure instead of building this tree's (an older
# commit's, to compare: run the script once with each).
if [ -n "${GOLAB_BIN:-}" ]; then golab=$GOLAB_BIN; built_from="GOLAB_BIN"; else
  cargo build --release --quiet
  golab=$PWD/target/release/golab
  built_from=$(git rev-parse --short HEAD)$(git diff --quiet HEAD -- src Cargo.toml || echo "+changes")
fi
export GOLAB_LABS=$PWD/labs
dir=$(mktemp -d)
chmod 755 "$dir"   # the sandbox's unprivileged uids must be able to enter it
trap '[ -n "${KEEP:-}" ] || rm -rf "$dir"' EXIT

seq -f "s%03g" 0 $((count - 1)) | { echo student; cat; } > "$dir/roster.csv"
"$golab" assign --lab startup-trace --roster "$dir/roster.csv" --seed bench -o "$dir/handouts" >/dev/null
gover=$(GOTOOLCHAIN=local go version | awk '{print $3}' | sed 's/^go//')
chain="[_rt0_amd64_linux, _rt0_amd64, runtime.rt0_go, runtime.check, runtime.args, runtime.osinit, runtime.schedinit, runtime.newproc, runtime.newproc1, runtime.runqput, runtime.mstart, runtime.mstart0, runtime.mstart1, runtime.schedule, runtime.findRunnable, runtime.runqget, runtime.execute, runtime.gogo, runtime.main, main.main]"
mkdir "$dir/subs"
i=0
echo "bench-grade: writing $count submissions" >&2
for h in "$dir"/handouts/s*; do
  s=$(basename "$h")
  mkdir "$dir/subs/$s"
  cp "$h/main.go" "$h/go.mod" "$dir/subs/$s/"
  case $((i % 10)) in
    0|1|2|3|4|5)
      (cd "$h" && GOTOOLCHAIN=local go build -gcflags "all=-l -N" -o main . )
      entry=$(readelf -h "$h/main" | awk '/Entry point/{print $4}')
      printf 'lab: startup-trace\ngo: %s\nanswers:\n  entry-point: {address: %s, symbol: _rt0_amd64_linux}\n  startup-chain: %s\n  why-runnext: locality\n  why-inherit: fairness\n' "$gover" "$entry" "$chain" > "$dir/subs/$s/answers.yaml" ;;
    6|7)
      printf 'lab: startup-trace\ngo: %s\nanswers:\n  entry-point: {address: 0x401000, symbol: main.main}\n  startup-chain: [_rt0_amd64_linux, runtime.rt0_go, runtime.schedinit, runtime.mstart, main.main]\n' "$gover" > "$dir/subs/$s/answers.yaml" ;;
    8)
      printf 'lab: startup-trace\nanswers:\n  entry-point: [oops\n' > "$dir/subs/$s/answers.yaml" ;;
    9)
      printf 'lab: startup-trace\nanswers:\n  why-runnext: x\n' > "$dir/subs/$s/answers.yaml"
      printf 'package main\nfunc main() { undefined() }\n' > "$dir/subs/$s/main.go" ;;
  esac
  i=$((i + 1))
done

now() { date +%s.%N; }
if [ -n "${BASELINE:-}" ]; then
  base_golab=$(cd "$BASELINE" && cargo build --release --quiet && echo "$PWD/target/release/golab")
  base_labs=$(cd "$BASELINE" && echo "$PWD/labs")
  rounds=${ROUNDS:-2}
  grade_with() { # NAME BINARY LABS OUT -> seconds
    local t; t=$(now)
    GOLAB_LABS=$3 "$2" grade "$dir/subs" --lab startup-trace --seed bench -j "$jobs" -q -o "$4" ${GOLAB_GRADE_FLAGS:-} > "$4.table" 2>"$4.err" || { echo "bench-grade: $1 failed:" >&2; tail -5 "$4.err" >&2; exit 1; }
    echo "$(now) - $t" | bc
  }
  new_t=(); base_t=()
  for r in $(seq 1 "$rounds"); do
    if [ $((r % 2)) = 1 ]; then
      base_t+=("$(grade_with baseline "$base_golab" "$base_labs" "$dir/out-base-$r")")
      new_t+=("$(grade_with this "$golab" "$GOLAB_LABS" "$dir/out-new-$r")")
    else
      new_t+=("$(grade_with this "$golab" "$GOLAB_LABS" "$dir/out-new-$r")")
      base_t+=("$(grade_with baseline "$base_golab" "$base_labs" "$dir/out-base-$r")")
    fi
    echo "bench-grade: round $r: baseline ${base_t[-1]}s, this tree ${new_t[-1]}s" >&2
  done
  python3 - "$count" "$jobs" "${base_t[*]}" "${new_t[*]}" "$(cd "$BASELINE" && git rev-parse --short HEAD)" "$built_from" "$dir/out-new-1/results" "$dir/out-base-1/results" <<'PY'
import sys, statistics, json, os, collections
count, jobs = int(sys.argv[1]), int(sys.argv[2])
base = [float(x) for x in sys.argv[3].split()]
new = [float(x) for x in sys.argv[4].split()]
def outcomes(d):
    return dict(collections.Counter(json.load(open(os.path.join(d, f)))["outcome"] for f in os.listdir(d)))
print(f"submissions: {count}, jobs: {jobs}, rounds: {len(new)} each, alternating")
print(f"baseline {sys.argv[5]}: outcomes {outcomes(sys.argv[8])}")
print(f"this tree {sys.argv[6]}: outcomes {outcomes(sys.argv[7])}")
b, n = statistics.median(base), statistics.median(new)
print(f"baseline {sys.argv[5]}: {b / count:.3f}s per submission (median of {base})")
print(f"this tree {sys.argv[6]}: {n / count:.3f}s per submission (median of {new})")
print(f"ratio, this tree / baseline, per submission: {n / b:.2f}")
PY
  exit 0
fi
# One bare lab run for scale (warm build cache), three times, median.
"$golab" run startup-trace -q >/dev/null || true
bare=()
for _ in 1 2 3; do t=$(now); "$golab" run startup-trace -q >/dev/null || true; bare+=("$(echo "$(now) - $t" | bc)"); done
t=$(now)
"$golab" grade "$dir/subs" --lab startup-trace --seed bench -j "$jobs" -q -o "$dir/out" ${GOLAB_GRADE_FLAGS:-} > "$dir/table.txt"
total=$(echo "$(now) - $t" | bc)
tail -1 "$dir/table.txt"
python3 - "$total" "$count" "$jobs" "${bare[*]}" "$dir/out/results" <<'PY'
import sys, statistics, json, os, collections
total, count, jobs = float(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
bare = statistics.median(float(x) for x in sys.argv[4].split())
outcomes = collections.Counter(json.load(open(os.path.join(sys.argv[5], f)))["outcome"] for f in os.listdir(sys.argv[5]))
print(f"submissions: {count}, jobs: {jobs}, outcomes: {dict(outcomes)}")
print(f"total: {total:.1f}s; per submission: {total / count:.3f}s wall ({total * jobs / count:.3f}s of a job slot)")
print(f"one bare golab run startup-trace: {bare:.3f}s (median of 3)")
print(f"ratio, per-submission wall time / bare run: {total / count / bare:.2f}")
PY
