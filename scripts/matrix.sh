#!/usr/bin/env bash
# Runs every lab (or the ones named) on every Go x dlv pair of toolchains.txt (each Go
# with the dlv that serves it natively, plus the cross pairs), fetching or building the
# toolchains first (scripts/fetch-toolchains.sh), and prints one Go x dlv table with a
# score column per lab. Exit 0 only when every cell scores full.
#   usage: scripts/matrix.sh [LAB...]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
. scripts/env.sh
cargo build --release --quiet
golab=$PWD/target/release/golab
if [ $# -gt 0 ]; then labs=("$@"); else mapfile -t labs < <("$golab" labs | awk '{print $1}'); fi
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

. scripts/toolchains.sh

printf '| %-8s | %-6s |' "Go" "dlv"
for l in "${labs[@]}"; do printf ' %-17s |' "$l"; done
printf '\n|%s|%s|' "----------" "--------"
for l in "${labs[@]}"; do printf '%s|' "-------------------"; done
echo
fail=0
while read -r name dv; do
  r=${root[$name]:-}
  dlv=${dlvbin[$dv]:-}
  if [ -z "$r" ] || [ -z "$dlv" ]; then
    echo "| $name | $dv | not available: GOROOT '${r}' dlv '${dlv}' |"
    fail=1
    continue
  fi
  ver=$(GOTOOLCHAIN=local GOROOT=$r "$r/bin/go" version | awk '{print $3}')
  printf '| %-8s | %-6s |' "${ver#go}" "$dv"
  for l in "${labs[@]}"; do
    f="$out/$name-$dv-$l"
    set +e
    "$golab" run "$l" -q --goroot "$r" --dlv "$dlv" >"$f.txt" 2>"$f.err"
    rc=$?
    set -e
    score=$(sed -n 's/^Score: //p' "$f.txt" | tail -1)
    reruns=$(grep -o '[0-9]* disturbed run(s) run again' "$f.txt" | awk '{s += $1} END {if (s) print s " rerun"}' || true)
    case $rc in
      0) cell="$score${reruns:+ ($reruns)}" ;;
      1) cell="FAIL $score"; fail=1 ;;
      *) cell="ERROR"; fail=1 ;;
    esac
    printf ' %-17s |' "$cell"
    if [ $rc -ne 0 ]; then
      { echo "== $ver + dlv $dv, $l (exit $rc)"; grep -E '^(FAIL|     (BAD|MISSING))' "$f.txt" || true; tail -5 "$f.err"; } >>"$out/failures"
    fi
  done
  echo
done <<<"$pairs"
[ -f "$out/failures" ] && sed 's/^/    /' "$out/failures"
exit $fail
