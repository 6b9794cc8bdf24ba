#!/usr/bin/env bash
# Writes a run-order lab for one program of tests/fixtures/order-programs into a
# folder: the program, and a lab.yaml whose scenarios are the program's
# scenarios.txt lines ("ID ARGS..."; without the file, one run without arguments), one P, and the breakpoints that catch what the
# model does not predict (sysmon's preemption, asynchronous preemption, a GC).
# Usage: scripts/order-lab.sh PROGRAM_DIR OUT_DIR
set -euo pipefail
src=$1 out=$2
name=$(basename "$src")
mkdir -p "$out"
cp "$src"/*.go "$src"/go.mod "$out/"
{
  cat <<YAML
name: order-$name
title: "whole-order prediction of $name on one P"
program:
  env: {GOMAXPROCS: "1", GOGC: "off", GODEBUG: "asyncpreemptoff=1"}
  timeout_secs: 300
scenarios:
YAML
  while read -r id args; do
    [ -z "$id" ] && continue
    printf '  - {id: %s, args: [%s]}\n' "$id" "$(echo "$args" | sed -E 's/([^ ]+)/"\1"/g; s/ /, /g')"
  done < <(if [ -f "$src/scenarios.txt" ]; then cat "$src/scenarios.txt"; else echo run; fi)
  cat <<YAML
dlv:
  breakpoints:
    - {function: main.main, max_hits: 1}
    - {function: runtime.gopreempt_m, max_hits: 0, means: "sysmon asked a goroutine to yield (it ran over 10ms)"}
    - {function: runtime.asyncPreempt, max_hits: 0, means: "asynchronous preemption by signal"}
    - {function: runtime.gcStart, max_hits: 0, means: "a GC cycle started"}
checks:
  - {id: run-order, kind: run-order, points: 10}
YAML
} >"$out/lab.yaml"
