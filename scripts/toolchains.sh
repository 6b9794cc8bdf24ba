# Sourced by scripts that run a lab on every Go version. Fills, from
# scripts/fetch-toolchains.sh and toolchains.txt (the one table of which dlv serves
# which Go):
#   root[go1.X]   a GOROOT (the system's golang-go among them)
#   dlvbin[V]     the dlv binary of release V (dlv-1.9.1/dlv ...)
#   pairs         "go1.X V" lines: the matrix's Go x dlv pairs, from toolchains.txt
# and the function `dlv_for GOROOT`: the dlv that serves that Go natively.
declare -A root dlvbin
_tc_repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
while read -r name path; do
  case "$name" in
    go1.*) root[$name]=$path ;;
    dlv-*.*.*) dlvbin[${name#dlv-}]=$path ;;
  esac
done < <(bash "$_tc_repo/scripts/fetch-toolchains.sh" "${GOLAB_TOOLCHAIN_SET:-all}")
sys_root=$(GOTOOLCHAIN=local go env GOROOT)
root[go$(GOTOOLCHAIN=local go env GOVERSION | sed -E 's/^go([0-9]+\.[0-9]+).*/\1/')]=$sys_root
pairs=$(awk '$1 == "pair" {print $2, $3}' "$_tc_repo/toolchains.txt")

# The minor version of the Go in GOROOT: 17 for go1.17.1.
_go_minor() { GOTOOLCHAIN=local GOROOT=$1 "$1/bin/go" version | sed -E 's/^go version go1\.([0-9]+).*/\1/'; }

# dlv_for GOROOT: the newest dlv of toolchains.txt whose native range covers that Go.
dlv_for() {
  local m best="" v lo hi
  m=$(_go_minor "$1")
  while read -r v lo hi; do
    if [ "$m" -ge "$lo" ] && [ "$m" -le "$hi" ] && [ -n "${dlvbin[$v]:-}" ]; then best=${dlvbin[$v]}; fi
  done < <(awk '$1 == "dlv" && $4 != "-" {split($3, r, "-"); split(r[1], a, "."); split(r[2], b, "."); print $2, a[2], b[2]}' "$_tc_repo/toolchains.txt")
  echo "$best"
}
