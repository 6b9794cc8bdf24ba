#!/usr/bin/env bash
# Runs `golab run startup-trace` on every Go version it can fetch (see
# scripts/fetch-toolchains.sh) plus the system's golang-go, each with the dlv that
# supports it best (delve 1.20 for 1.19, delve 1.24 otherwise), and prints a table.
# Exit 0 only when every version passes. Usage: scripts/matrix.sh [LAB]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
. scripts/env.sh
lab=${1:-startup-trace}
cargo build --release --quiet
golab=$PWD/target/release/golab
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

. scripts/toolchains.sh

printf '%-8s %-10s %-8s %-6s %-8s %s\n' "go" "version" "dlv" "result" "score" "notes"
fail=0
for name in $(printf '%s\n' "${!root[@]}" | sort -V); do
  r=${root[$name]}
  dlv=$(dlv_for "$r")
  [ -n "$dlv" ] || { echo "no dlv for $name" >&2; fail=1; continue; }
  set +e
  "$golab" run "$lab" -q --goroot "$r" --dlv "$dlv" --json-file "$out/$name.json" >"$out/$name.txt" 2>"$out/$name.err"
  rc=$?
  set -e
  ver=$(GOTOOLCHAIN=local GOROOT=$r "$r/bin/go" version | awk '{print $3}')
  dv=$("$dlv" version | awk '/Version:/{print $2}')
  score=$(tail -1 "$out/$name.txt" | sed -n 's/^Score: //p')
  notes=$(grep -c '^warning:' "$out/$name.txt" || true)
  case $rc in
    0) res=PASS ;;
    1) res=FAIL; fail=1 ;;
    *) res=ERROR; fail=1; score="-" ;;
  esac
  printf '%-8s %-10s %-8s %-6s %-8s %s\n' "$name" "$ver" "$dv" "$res" "${score:--}" "$notes warning(s)"
  if [ $rc -ne 0 ]; then
    grep -E '^(FAIL|     (BAD|MISSING))' "$out/$name.txt" | sed 's/^/    /' || true
    sed 's/^/    /' "$out/$name.err" | tail -5
  fi
done
exit $fail
