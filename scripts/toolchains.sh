# Sourced by scripts that run a lab on every Go version: fills `root` (go1.X -> GOROOT),
# `dlv124` (delve 1.24 for the fetched versions), `sys_root` (the system golang-go).
declare -A root
dlv124=""
while read -r name path; do
  case "$name" in
    go1.*) root[$name]=$path ;;
    dlv-1.24) dlv124=$path ;;
  esac
done < <(bash scripts/fetch-toolchains.sh)
sys_root=$(GOTOOLCHAIN=local go env GOROOT)
root[go$(GOTOOLCHAIN=local go env GOVERSION | sed -E 's/^go([0-9]+\.[0-9]+).*/\1/')]=$sys_root

# The dlv for a GOROOT: the system's delve for the system's Go, delve 1.24 otherwise.
dlv_for() {
  if [ "$1" = "$sys_root" ]; then command -v dlv; else echo "$dlv124"; fi
}
