#!/usr/bin/env bash
# Fidelity of the scheduler model: every runq-order scenario RUNS times (default 100)
# on every Go version scripts/fetch-toolchains.sh provides plus the system's golang-go,
# each run a real dlv session reading the live state at main.main. Prints
# matches/runs per scenario and version, and for a mismatch its first divergence.
# Targets: >= 99% on go1.19 and on the newest version, no version below 95%.
#
# Then the co-simulation (`kind: cosim`): every program of tests/fixtures/sched-programs
# on 1, 2 and 4 Ps, COSIM_RUNS times each (default 3), per Go version with its dlv
# (go1.15: dlv 1.7.3, go1.17: dlv 1.9.1 when cached; the system's Go: its dlv; else
# dlv 1.24, or dlv 1.27 for Go >= 1.25 when cached): transitions that agreed / judged,
# raced and not judged, and every disagreement. Target: >= 99.5% of judged transitions.
# Then whole-order prediction on new programs of every shape (scripts/fidelity-order.sh,
# ORDER_RUNS runs per scenario, default 5): target 100% of the runs not disturbed.
# Usage: scripts/fidelity.sh [RUNS] [COSIM_RUNS]   (RUNS=0 skips runq-order)
#        scripts/fidelity.sh cosim [COSIM_RUNS]     (the co-simulation only, the
#        toolchains already in ~/.cache/golab/toolchains, nothing fetched)
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = cosim ]; then
  exec bash scripts/fidelity-cosim.sh "${2:-3}"
fi
bash scripts/install-deps.sh
. scripts/env.sh
runs=${1:-100}
cosim_runs=${2:-3}
cargo build --release --quiet
golab=$PWD/target/release/golab
out=${GOLAB_FIDELITY_OUT:-$(mktemp -d)}
mkdir -p "$out"

. scripts/toolchains.sh

versions=$(printf '%s\n' "${!root[@]}" | sort -V)
[ "$runs" = 0 ] && versions=""
for name in $versions; do
  r=${root[$name]}
  dlv=$(dlv_for "$r")
  echo "fidelity: $name, $runs runs per scenario" >&2
  "$golab" run runq-order -q --repeat "$runs" --goroot "$r" --dlv "$dlv" --json-file "$out/$name.json" >"$out/$name.txt" 2>"$out/$name.err" || true
done

python3 - "$out" $versions <<'PY'
import json, os, re, sys
out, versions = sys.argv[1], sys.argv[2:]
newest = versions[-1]
table, ids, notes, rates = {}, [], [], {}
for v in versions:
    path = f"{out}/{v}.json"
    if not os.path.exists(path):
        notes.append(f"{v}: no result: " + open(f"{out}/{v}.err").read().strip()[-300:])
        continue
    check = next(c for c in json.load(open(path))["verdict"]["checks"] if c["kind"] == "run-order")
    m_all = n_all = 0
    for l in check["lines"]:
        m = re.match(r"^(\S+) \(.*?\) \[(\d+)/(\d+)\]: (.*)$", l["text"])
        if not m:
            continue
        sid, ok, n, rest = m.group(1), int(m.group(2)), int(m.group(3)), m.group(4)
        if sid not in ids:
            ids.append(sid)
        table[(sid, v)] = f"{ok}/{n}"
        m_all += ok
        n_all += n
        if ok < n:
            notes.append(f"{v} {sid}: {rest}")
    rates[v] = (m_all, n_all)
print("runq-order: runs in the order the model predicted / runs")
print("%-18s" % "scenario" + "".join("%-10s" % v for v in versions))
for sid in ids:
    print("%-18s" % sid + "".join("%-10s" % table.get((sid, v), "-") for v in versions))
print("%-18s" % "all" + "".join("%-10s" % ("%.1f%%" % (100 * rates[v][0] / rates[v][1]) if v in rates and rates[v][1] else "-") for v in versions))
for n in notes:
    print("  " + n)
bad = [v for v in versions if v not in rates or rates[v][1] == 0 or rates[v][0] / rates[v][1] < (0.99 if v in ("go1.19", newest) else 0.95)]
print("targets (>= 99% on go1.19 and " + newest + ", >= 95% elsewhere): " + ("met" if not bad else "missed on " + ", ".join(bad)))
sys.exit(1 if bad else 0)
PY
[ -n "$versions" ] && runq_rc=$? || runq_rc=0
GOLAB_BIN=$golab bash scripts/fidelity-order.sh "${ORDER_RUNS:-5}" || runq_rc=1
GOLAB_BIN=$golab bash scripts/fidelity-cosim.sh "$cosim_runs" || exit 1
exit $runq_rc
