#!/usr/bin/env bash
# `golab tour startup-trace --all` on every Go x dlv pair of the matrix, from the
# toolchains folder (GOLAB_TOOLCHAINS or ~/.cache/golab/toolchains; see
# scripts/fetch-toolchains.sh) plus the system's go + dlv. Prints a table: pair, exit
# code, checks passed, sections. Exit 1 if any pair fails.
set -uo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh
cargo build --quiet
golab=$PWD/target/debug/golab
T=${GOLAB_TOOLCHAINS:-$HOME/.cache/golab/toolchains}
# shellcheck source=scripts/pins.sh
. scripts/pins.sh
pairs=("system system"
  "go1.15 dlv-1.7.3" "$pin_go dlv-$pin_dlv" "go1.17 dlv-1.20.2"
  "go1.21 dlv-1.24.0" "go1.22 dlv-1.24.0" "go1.23 dlv-1.24.0" "go1.24 dlv-1.24.0"
  "go1.25 dlv-1.27.1" "go1.27 dlv-1.27.1")
out=$(mktemp -d); trap 'rm -rf "$out"' EXIT
fail=0
printf '%-10s %-11s %-4s %-8s %s\n' go dlv rc checks sections
for p in "${pairs[@]}"; do
  set -- $p
  args=()
  if [ "$1" != system ]; then
    if [ ! -x "$T/$1/bin/go" ] || [ ! -x "$T/$2/dlv" ]; then
      printf '%-10s %-11s MISSING (not in %s)\n' "$1" "$2" "$T"; fail=1; continue
    fi
    args=(--goroot "$T/$1" --dlv "$T/$2/dlv")
  fi
  "$golab" tour startup-trace --all "${args[@]}" >"$out/t.txt" 2>&1 </dev/null; rc=$?
  checks=$(grep -o '^[0-9]* of [0-9]* values' "$out/t.txt" | head -1 | sed 's/ values//')
  secs=$(grep -c '^=== ' "$out/t.txt")
  printf '%-10s %-11s %-4s %-8s %s\n' "$1" "$2" "$rc" "${checks:--}" "$secs"
  [ "$rc" = 0 ] || { fail=1; grep -m3 'CHECK FAIL\|^error' "$out/t.txt" | sed 's/^/    /'; }
done
exit $fail
