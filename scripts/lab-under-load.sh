#!/usr/bin/env bash
# A lab N times (default 30) with two CPU burners beside it: how often does it score in
# full under load? Prints passes/runs and each failing run's result lines.
# Usage: scripts/lab-under-load.sh LAB [N] [golab run options, e.g. --goroot DIR --dlv PATH]
set -euo pipefail
cd "$(dirname "$0")/.."
lab=${1:?usage: scripts/lab-under-load.sh LAB [N] [options]}
n=${2:-30}
shift $(( $# >= 2 ? 2 : 1 ))
# GOLAB_BIN: a golab binary to use instead of building one.
if [ -n "${GOLAB_BIN:-}" ]; then
  golab=$GOLAB_BIN
else
  cargo build --release --quiet
  golab=$PWD/target/release/golab
fi
burners=()
for _ in 1 2; do
  ( while :; do :; done ) &
  burners+=($!)
done
trap 'kill "${burners[@]}" 2>/dev/null || true' EXIT
pass=0
for k in $(seq 1 "$n"); do
  if out=$("$golab" run "$lab" -q "$@" 2>&1); then
    pass=$((pass + 1))
  else
    echo "run $k:"; echo "$out" | grep -E "^(FAIL|Score)|BAD|MISSING" | head -8
  fi
done
echo "$lab under two CPU burners: $pass/$n runs in full score"
[ "$pass" = "$n" ]
