#!/usr/bin/env bash
# Benchmark: `golab run startup-trace` (warm build cache) beside a plain shell baseline
# that does the same work by hand: the same go build, readelf -h, a gdb batch session
# with the lab's gdb breakpoints and hit limits (bt at every stop), and a dlv session
# with the same dlv breakpoints and hit limits (bt at every stop), run in alternation.
# Usage: scripts/bench-startup.sh [ROUNDS] [debian|pinned]   (default 5 debian; GOLAB_BIN).
#   debian: the system's golang-go and delve; pinned: the course's pair (toolchains.txt's pin)
#   from scripts/fetch-toolchains.sh. Both sides use the same go and dlv.
# Prints medians and the ratio.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh
rounds=${1:-5}
pair=${2:-debian}
golab_tools=()
case "$pair" in
  debian) ;;
  pinned)
    while read -r name path; do
      case "$name" in go1.*) gr=$path ;; dlv-*) dl=$path ;; esac  # the pin: its only pair
    done < <(bash scripts/fetch-toolchains.sh pinned 2>/dev/null)
    export GOROOT="$gr" PATH="$gr/bin:$(dirname "$dl"):$PATH"
    golab_tools=(--goroot "$gr" --dlv "$dl")
    ;;
  *) echo "usage: $0 [ROUNDS] [debian|pinned]" >&2; exit 2 ;;
esac
echo "pair: $pair ($(GOTOOLCHAIN=local go version | awk '{print $3}'), dlv $(dlv version | awk '/Version/{print $2}'))"
# GOLAB_BIN: a golab binary to measure instead of building this tree's (an older
# commit's, to compare: run the script once with each).
if [ -n "${GOLAB_BIN:-}" ]; then golab=$GOLAB_BIN; else cargo build --release --quiet; golab=$PWD/target/release/golab; fi
lab=$PWD/labs/startup-trace
scratch=$(mktemp -d)
trap '[ -n "${KEEP:-}" ] || rm -rf "$scratch"' EXIT

# The breakpoints golab sets for this Go version (the lab's "@chain" expanded), with limits.
"$golab" run startup-trace -q "${golab_tools[@]}" --json-file "$scratch/setup.json" >/dev/null
python3 - "$scratch" "$lab/lab.yaml" <<'PY'
import json, sys, re
scratch, labfile = sys.argv[1], sys.argv[2]
obs = json.load(open(f"{scratch}/setup.json"))["observation"]
text = open(labfile).read()
def limits(section):
    out = {}
    block = text.split(section + ":", 1)[1]
    for m in re.finditer(r'\{function: "?([^",}]+)"?, max_hits: (\d+)\}', block.split("\n\n")[0] if section == "gdb" else block.split("checks:")[0]):
        out[m.group(1)] = int(m.group(2))
    return out
dl, gl = limits("dlv"), limits("gdb")
args = "golab startup trace"
with open(f"{scratch}/dlv.init", "w") as f:
    for i, b in enumerate(obs["dlv"]["breakpoints"], 1):
        fn = b["function"]
        loc = f"{scratch}/work/{fn}" if fn.endswith(".go:6") else fn
        f.write(f"b {loc}\non {i} bt\n")
        m = dl.get(fn, 5)
        if m > 0:
            f.write(f"cond -hitcount {i} <= {m}\n")
    f.write("continue\n" * 800 + "exit -c\n")
with open(f"{scratch}/gdb.cmds", "w") as f:
    f.write("set confirm off\nset pagination off\nset backtrace past-main on\nhandle SIGURG nostop noprint pass\ninfo file\n")
    for i, b in enumerate(obs["gdb"]["breakpoints"], 1):
        fn, m = b["function"], gl.get(b["function"], 5)
        f.write(f"set $hits{i} = 0\nbreak {fn}\ncommands\nsilent\nbt\nset $hits{i} = $hits{i} + 1\nif $hits{i} >= {m}\ndelete {i}\nend\ncontinue\nend\n")
    f.write(f"run {args}\n")
PY

baseline() {
  rm -rf "$scratch/work" && mkdir -p "$scratch/work" && cp "$lab"/*.go "$lab"/go.mod "$scratch/work/"
  (cd "$scratch/work" && GOTOOLCHAIN=local go build -gcflags "all=-l -N" -o main . \
    && readelf -h main >/dev/null \
    && { GOMAXPROCS=1 timeout 120 gdb -nx -batch -x "$scratch/gdb.cmds" ./main >"$scratch/gdb.out" 2>&1 || true; } \
    && GOMAXPROCS=1 timeout 120 dlv exec ./main --allow-non-terminal-interactive=true --init "$scratch/dlv.init" -- golab startup trace </dev/null >"$scratch/dlv.out" 2>&1)
  # gdb's exit status is 1 whenever a breakpoint's `continue` meets the exit, so look
  # for the last stop instead.
  grep -q "^#0 .*main.main" "$scratch/gdb.out" || { echo "baseline gdb session did not reach main.main" >&2; exit 1; }
  grep -q "has exited with status 0" "$scratch/dlv.out" || { echo "baseline dlv session did not run to the end" >&2; exit 1; }
}
run_golab() { "$golab" run startup-trace -q "${golab_tools[@]}" >/dev/null; }

now() { date +%s.%N; }
declare -a G B
baseline; run_golab   # warm the build cache and the page cache
for ((i = 0; i < rounds; i++)); do
  t=$(now); run_golab; G+=("$(echo "$(now) - $t" | bc)")
  t=$(now); baseline; B+=("$(echo "$(now) - $t" | bc)")
done
python3 - "${G[*]}" "${B[*]}" <<'PY'
import sys, statistics
g = [float(x) for x in sys.argv[1].split()]
b = [float(x) for x in sys.argv[2].split()]
mg, mb = statistics.median(g), statistics.median(b)
print(f"rounds: {len(g)} (alternating)")
print(f"golab run startup-trace : median {mg:.2f}s  runs {' '.join(f'{x:.2f}' for x in g)}")
print(f"shell baseline          : median {mb:.2f}s  runs {' '.join(f'{x:.2f}' for x in b)}")
print(f"ratio golab/baseline    : {mg/mb:.2f}  (target <= 1.15)")
PY
