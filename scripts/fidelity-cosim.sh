#!/usr/bin/env bash
# The co-simulation's fidelity (see scripts/fidelity.sh): every program of
# tests/fixtures/sched-programs and of tests/fixtures/order-programs (these with the
# arguments of their second scenario) on 1, 2 and 4 Ps, RUNS times, per cached Go
# version.
# Usage: scripts/fidelity-cosim.sh [RUNS]   env: COSIM_VERSIONS="go1.17 go1.19" to pick,
# COSIM_PROCS="1 2 4", COSIM_PROGRAMS="nested steal" to pick programs,
# GOLAB_FIDELITY_OUT=DIR to keep the JSON results.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-3}
# GOLAB_BIN: a golab binary to use instead of building one.
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
versions=${COSIM_VERSIONS:-$(printf '%s\n' "${!root[@]}" | sort -V)}
procs=${COSIM_PROCS:-1 2 4}
programs=${COSIM_PROGRAMS:-$(ls -d tests/fixtures/sched-programs/*/ tests/fixtures/order-programs/*/ | xargs -n1 basename | sort -u)}
src_of() { if [ -d "tests/fixtures/sched-programs/$1" ]; then echo "tests/fixtures/sched-programs/$1"; else echo "tests/fixtures/order-programs/$1"; fi; }
for name in $versions; do
  r=${root[$name]:?no GOROOT for $name}
  dlv=$(dlv_for "$r")
  [ -n "$dlv" ] || { echo "no dlv in the toolchains folder serves $name (scripts/fetch-toolchains.sh)" >&2; exit 1; }
  for prog in $programs; do
    for p in $procs; do
      lab=$out/labs/$prog-p$p
      mkdir -p "$lab"
      src=$(src_of "$prog")
      cp "$src"/*.go "$src/go.mod" "$lab/"
      args=""
      if [ -f "$src/scenarios.txt" ]; then
        args=$(sed -n 2p "$src/scenarios.txt" | cut -d' ' -f2- | sed -E 's/([^ ]+)/"\1"/g; s/ /, /g')
      fi
      cat >"$lab/lab.yaml" <<YAML
name: $prog-p$p
title: "co-simulation of $prog on $p P(s)"
program:
  args: [$args]
  env: {GOMAXPROCS: "$p"}
  timeout_secs: 300
dlv:
  breakpoints: []
checks:
  - {id: cosim, kind: cosim}
YAML
      for k in $(seq 1 "$runs"); do
        echo "cosim: $name ($(basename "$(dirname "$dlv")")) $prog P=$p run $k" >&2
        nice -n 10 "$golab" run "$lab" -q --goroot "$r" --dlv "$dlv" --json-file "$out/$name-$prog-p$p-$k.json" \
          >"$out/$name-$prog-p$p-$k.txt" 2>&1 || true
      done
    done
  done
done
python3 - "$out" "$runs" "$procs" $versions <<'PY'
import json, os, re, sys, glob, collections
out, runs, procs, versions = sys.argv[1], int(sys.argv[2]), sys.argv[3].split(), sys.argv[4:]
progs = sorted({os.path.basename(p).rsplit("-p", 1)[0] for p in glob.glob(f"{out}/labs/*")})
tot = collections.defaultdict(lambda: [0, 0, 0, 0, 0])  # (version, P): matched judged observed raced unjudged
notes = []
for v in versions:
    for prog in progs:
        for p in procs:
            for k in range(1, runs + 1):
                path = f"{out}/{v}-{prog}-p{p}-{k}.json"
                if not os.path.exists(path):
                    txt = open(f"{out}/{v}-{prog}-p{p}-{k}.txt").read().strip().splitlines()
                    notes.append(f"{v} {prog} P={p} run {k}: no result: {txt[-1] if txt else ''}")
                    continue
                doc = json.load(open(path))
                if "verdict" not in doc:
                    # golab's error document: the run gave no verdict (a timeout, ...).
                    notes.append(f"{v} {prog} P={p} run {k}: no result: {doc.get('error', {}).get('message', '')}")
                    continue
                c = next(c for c in doc["verdict"]["checks"] if c["kind"] == "cosim")
                m = re.match(r"(\d+) of (\d+) transitions .*\((\d+) observed, (\d+) raced, (\d+) not judged", c["summary"])
                if not m:
                    notes.append(f"{v} {prog} P={p} run {k}: {c['summary']}")
                    continue
                t = tot[(v, p)]
                for i in range(5):
                    t[i] += int(m.group(i + 1))
                for l in c["lines"]:
                    if l["mark"] == "BAD" and "as the model predicted" not in l["text"]:
                        notes.append(f"{v} {prog} P={p} run {k}: {l['text']}")
print("cosim: transitions that agreed / judged (raced, not judged), all programs, per P count")
print("%-8s" % "Ps" + "".join("%-34s" % v for v in versions))
bad = []
for p in procs:
    row = "%-8s" % p
    for v in versions:
        m, j, o, r, u = tot[(v, p)]
        rate = 100.0 * m / j if j else 0.0
        row += "%-34s" % (f"{m}/{j} {rate:.2f}% ({r} raced, {u} n/j)")
        if not j or rate < 99.5:
            bad.append(f"{v} P={p}")
    print(row)
for n in notes:
    print("  " + n)
print("target (>= 99.5% of judged transitions): " + ("met" if not bad else "missed on " + ", ".join(bad)))
sys.exit(1 if bad else 0)
PY
