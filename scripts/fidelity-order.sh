#!/usr/bin/env bash
# Whole-order fidelity on programs the bundled lab never saw: every program of
# tests/fixtures/order-programs (nested spawns, yields after and around the work,
# Gosched in main, channel handoff to parked receivers, WaitGroup vs channel waits,
# close and full-buffer wakeups), each scenario of its scenarios.txt RUNS times on one
# P, per cached Go version with its dlv. The shape each run is predicted from is read
# from the program by tools/goshape. Prints predicted-and-observed / comparable runs
# (a run still disturbed by preemption or a GC after golab's reruns is not comparable)
# and every miss. Target: 100% of comparable runs.
# Usage: scripts/fidelity-order.sh [RUNS]   env: ORDER_VERSIONS="go1.17 go1.27",
# GOLAB_BIN=golab binary, GOLAB_FIDELITY_OUT=DIR to keep the JSON results.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-5}
if [ -n "${GOLAB_BIN:-}" ]; then
  golab=$GOLAB_BIN
else
  cargo build --release --quiet
  golab=$PWD/target/release/golab
fi
out=${GOLAB_FIDELITY_OUT:-$(mktemp -d)}
mkdir -p "$out"
# The GOROOTs (root[go1.X], the system's among them) and dlv_for GOROOT: the dlv
# toolchains.txt says serves it natively.
. scripts/toolchains.sh
versions=${ORDER_VERSIONS:-$(printf '%s\n' "${!root[@]}" | sort -V)}
programs=$(ls -d tests/fixtures/order-programs/*/ | xargs -n1 basename)
for prog in $programs; do
  bash scripts/order-lab.sh "tests/fixtures/order-programs/$prog" "$out/labs/$prog"
done
for name in $versions; do
  r=${root[$name]:?no GOROOT for $name}
  dlv=$(dlv_for "$r")
  [ -n "$dlv" ] || { echo "no dlv in the toolchains folder serves $name (scripts/fetch-toolchains.sh)" >&2; exit 1; }
  for prog in $programs; do
    echo "order: $name ($(basename "$(dirname "$dlv")")) $prog x$runs" >&2
    nice -n 10 "$golab" run "$out/labs/$prog" -q --repeat "$runs" --goroot "$r" --dlv "$dlv" \
      --json-file "$out/$name-$prog.json" >"$out/$name-$prog.txt" 2>&1 || true
  done
done
python3 - "$out" $versions <<'PY'
import json, os, re, sys, glob, collections
out, versions = sys.argv[1], sys.argv[2:]
progs = sorted(os.path.basename(p) for p in glob.glob(f"{out}/labs/*"))
tot = collections.defaultdict(lambda: [0, 0, 0])  # version: matched comparable disturbed
notes = []
for v in versions:
    for prog in progs:
        path = f"{out}/{v}-{prog}.json"
        if not os.path.exists(path):
            txt = open(f"{out}/{v}-{prog}.txt").read().strip().splitlines()
            notes.append(f"{v} {prog}: no result: {txt[-1] if txt else ''}")
            continue
        d = json.load(open(path))
        if "verdict" not in d:
            # golab's error document: the run gave no verdict (a timeout, ...).
            notes.append(f"{v} {prog}: no result: {d.get('error', {}).get('message', '')}")
            continue
        c = next(c for c in d["verdict"]["checks"] if c["kind"] == "run-order")
        disturbed = collections.Counter(s["id"] for s in d["observation"]["scenarios"] if s["disturbances"])
        for l in c["lines"]:
            m = re.match(r"^(\S+) \(.*?\) \[(\d+)/(\d+)\]: (.*)$", l["text"])
            if not m:
                continue
            sid, ok, n, rest = m.group(1), int(m.group(2)), int(m.group(3)), m.group(4)
            t = tot[v]
            t[0] += ok
            t[1] += n - disturbed[sid]
            t[2] += disturbed[sid]
            if ok < n - disturbed[sid]:
                notes.append(f"{v} {prog} {sid}: {rest}")
print("whole-order: runs as predicted / comparable runs (still disturbed after reruns), all programs")
bad = []
for v in versions:
    m, j, dist = tot[v]
    print("%-8s %d/%d %s (%d disturbed)" % (v, m, j, "%.2f%%" % (100.0 * m / j) if j else "-", dist))
    if not j or m != j:
        bad.append(v)
for n in notes:
    print("  " + n)
print("target (100% of comparable runs): " + ("met" if not bad else "missed on " + ", ".join(bad)))
sys.exit(1 if bad else 0)
PY
