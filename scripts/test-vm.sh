#!/usr/bin/env bash
# The real VM test of golab's qemu provider (run as root; ~25-35 min on 2 cores under TCG):
#   1. builds or reuses the base image (scripts/vm-image.sh);
#   2. packs Debian's Go (`go env GOROOT` of /usr/bin/go, symlinks followed) the way
#      go.dev packs its tarballs (top folder go/) as go$V.linux-amd64.tar.gz, with its
#      SHA-256: Go 1.17.1 cannot be had here, so the test provisions the Go it can get
#      through the same pinned-tarball path;
#   3. runs the ignored test in src/machine/qemu.rs: up (dlv from apt), go version, the
#      seed program built with -gcflags "all=-l -N", readelf -h, gdb -batch at
#      runtime.schedinit, dlv --headless answered from the host through the forwarded
#      port, up again (already running), down, up (resumed, no provisioning), a second
#      machine alongside (its first up killed half-way, then started over), destroy.
# Machines live in a temporary GOLAB_STATE, removed at the end with any QEMU left in it.
set -euo pipefail
cd "$(dirname "$0")/.."
t0=$(date +%s)
stamp() { echo "test-vm: [$(($(date +%s) - t0))s] $*" >&2; }

bash scripts/install-deps.sh   # golang-go (the Go packed below), cargo
# shellcheck source=scripts/env.sh
. scripts/env.sh
cache=${GOLAB_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/golab}

stamp "base image (scripts/vm-image.sh)"
mapfile -t built < <(bash scripts/vm-image.sh "$cache/images")
image=${built[0]}
stamp "image: $image"

# Debian's Go as a go.dev-style tarball.
command -v go >/dev/null || { echo "test-vm: no go on PATH (scripts/install-deps.sh installs golang-go)" >&2; exit 1; }
goroot=$(readlink -f "$(/usr/bin/go env GOROOT)")
gover=$(/usr/bin/go env GOVERSION)
gover=${gover#go}
tarball=$cache/tarballs/go$gover.linux-amd64.tar.gz
if [ ! -s "$tarball" ]; then
  stamp "packing $goroot as $(basename "$tarball")"
  mkdir -p "$(dirname "$tarball")"
  tar -C "$(dirname "$goroot")" -chf - --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 \
    --transform "s,^$(basename "$goroot"),go," "$(basename "$goroot")" | gzip -n -6 >"$tarball.tmp"
  mv "$tarball.tmp" "$tarball"
fi
sha=$(sha256sum "$tarball" | cut -d' ' -f1)
stamp "go$gover tarball: $(du -h "$tarball" | cut -f1), sha256 $sha"

state=$(mktemp -d /tmp/golab-vm-test.XXXXXX)
cleanup() {
  # Any QEMU the test left (a crash of the test binary itself) dies with the folder.
  for pidfile in "$state"/machines/*/qemu.pid; do
    [ -f "$pidfile" ] || continue
    pid=$(cat "$pidfile")
    if grep -qa "$state" "/proc/$pid/cmdline" 2>/dev/null; then kill -9 "$pid" 2>/dev/null || true; fi
  done
  rm -rf "$state"
}
trap cleanup EXIT

stamp "cargo test (ignored VM test)"
GOLAB_STATE=$state GOLAB_VM_IMAGE=$image GOLAB_VM_GO_TARBALL=$tarball GOLAB_VM_GO_VERSION=$gover \
GOLAB_VM_GO_SHA256=$sha GOLAB_VM_SEED=$PWD/labs/startup-trace/main.go \
  cargo test --quiet --lib machine::qemu::tests::a_lab_vm -- --ignored --nocapture --test-threads=1
# The same through the command line, as a student runs it: up, then the seed's lab
# inside the VM, whose verdict must be the host's for the same Go version.
cargo build --release --quiet
golab=$PWD/target/release/golab
export GOLAB_STATE=$state
stamp "golab up --provider qemu --name cli"
"$golab" up --provider qemu --name cli --image "$image" --go "$gover" --go-tarball "$tarball" --go-sha256 "$sha" --dlv apt
stamp "golab run startup-trace --provider qemu"
"$golab" run startup-trace --provider qemu --name cli -q --json "$state/vm.json" > "$state/vm.txt" || { cat "$state/vm.txt"; exit 1; }
stamp "golab run startup-trace (host)"
"$golab" run startup-trace -q --json "$state/host.json" > "$state/host.txt" || { cat "$state/host.txt"; exit 1; }
python3 - "$state/vm.json" "$state/host.json" <<'PY'
import json, sys
vm, host = (json.load(open(p))["verdict"] for p in sys.argv[1:3])
pairs = lambda v: [(c["id"], c["passed"]) for c in v["checks"]]
assert vm["go_version"] == host["go_version"], (vm["go_version"], host["go_version"])
assert pairs(vm) == pairs(host), (pairs(vm), pairs(host))
print(f"test-vm: the VM's verdict is the host's: {vm['earned']}/{vm['possible']} on {vm['go_version']}", file=sys.stderr)
PY
"$golab" status --name cli
test "$("$golab" ssh --name cli -- go version | awk '{print $3}')" = "go$gover"
"$golab" down --name cli
"$golab" destroy --name cli
stamp "done in $(($(date +%s) - t0))s"
