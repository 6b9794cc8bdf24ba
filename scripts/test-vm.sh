#!/usr/bin/env bash
# The real VM tests (run as root; software emulation on 2 cores):
#   scripts/test-vm.sh [all|qemu|vagrant]      default: all (~15 min with images cached)
#
# qemu (~10 min):
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
#   4. the same through the command line (`golab up`, `golab run startup-trace --provider
#      qemu`), whose verdict must be the host's for the same Go.
# vagrant (~5 min):
#   1. a vagrant-libvirt box from the same image (scripts/vagrant-box.sh, cached);
#   2. a libvirt of its own in a network namespace the test makes (scripts/libvirt-netns.sh):
#      vagrant-libvirt's management network (192.168.121.0/24) exists only inside it, and
#      vagrant, golab and the guest talk only there and on that namespace's 127.0.0.1;
#   3. the Go tarball served over HTTP inside the namespace, so the Vagrantfile's
#      provisioner takes the real download path (GOLAB_GO_BASE_URL, SHA-256 check);
#   4. `golab up --provider vagrant` (libvirt, software emulation, direct kernel boot),
#      `up` again (already running), `golab run startup-trace --provider vagrant` (the
#      host's verdict again), status, ssh, down, up (resumed, not provisioned again),
#      destroy, and nothing left running.
# Machines live in a temporary GOLAB_STATE, removed at the end with any QEMU left in it.
set -euo pipefail
cd "$(dirname "$0")/.."
which=${1:-all}
case $which in all | qemu | vagrant) ;; *) echo "usage: $0 [all|qemu|vagrant]" >&2; exit 2 ;; esac
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
  if [ -n "${ns:-}" ]; then bash scripts/libvirt-netns.sh stop "$ns" "$state/libvirt" || true; fi
  rm -rf "$state"
}
trap cleanup EXIT
# libvirt's QEMU (user libvirt-qemu) opens the pool's disks and the kernel below here.
chmod 755 "$state"

cargo build --release --quiet
golab=$PWD/target/release/golab
export GOLAB_STATE=$state
stamp "golab run startup-trace (host, the verdict the VMs must give)"
"$golab" run startup-trace -q --json-file "$state/host.json" > "$state/host.txt" || { cat "$state/host.txt"; exit 1; }
same_verdict() { # VM_JSON LABEL
  python3 - "$1" "$state/host.json" "$2" <<'PY'
import json, sys
vm, host = (json.load(open(p))["verdict"] for p in sys.argv[1:3])
pairs = lambda v: [(c["id"], c["passed"]) for c in v["checks"]]
assert vm["go_version"] == host["go_version"], (vm["go_version"], host["go_version"])
assert pairs(vm) == pairs(host), (pairs(vm), pairs(host))
print(f"test-vm: {sys.argv[3]}: the VM's verdict is the host's: {vm['earned']}/{vm['possible']} on {vm['go_version']}", file=sys.stderr)
PY
}

qemu_suite() {
  stamp "cargo test (ignored VM test)"
  GOLAB_STATE=$state GOLAB_VM_IMAGE=$image GOLAB_VM_GO_TARBALL=$tarball GOLAB_VM_GO_VERSION=$gover \
  GOLAB_VM_GO_SHA256=$sha GOLAB_VM_SEED=$PWD/labs/startup-trace/main.go \
    cargo test --quiet --lib machine::qemu::tests::a_lab_vm -- --ignored --nocapture --test-threads=1
  # The same through the command line, as a student runs it: up, then the seed's lab
  # inside the VM, whose verdict must be the host's for the same Go version.
  stamp "golab up --provider qemu --name cli"
  "$golab" up --provider qemu --name cli --image "$image" --go "$gover" --go-tarball "$tarball" --go-sha256 "$sha" --dlv apt --apt-mirror host
  stamp "golab run startup-trace --provider qemu"
  "$golab" run startup-trace --provider qemu --name cli -q --json-file "$state/vm.json" > "$state/vm.txt" || { cat "$state/vm.txt"; exit 1; }
  same_verdict "$state/vm.json" qemu
  "$golab" status --name cli
  test "$("$golab" ssh --name cli -- go version | awk '{print $3}')" = "go$gover"
  "$golab" down --name cli
  "$golab" destroy --name cli
}

vagrant_suite() {
  stamp "vagrant box (scripts/vagrant-box.sh)"
  mapfile -t box < <(bash scripts/vagrant-box.sh "$cache/boxes")
  # The box stays in the cache (under a folder libvirt's QEMU cannot enter); the kernel
  # it boots is copied where it can.
  mkdir -p "$state/boot"
  cp "${box[1]}" "$state/boot/vmlinuz"
  cp "${box[2]}" "$state/boot/initrd"
  chmod -R a+rX "$state/boot"
  ns=golab-vt-$$
  stamp "libvirt in the network namespace $ns"
  bash scripts/libvirt-netns.sh start "$ns" "$state/libvirt"
  in_ns() { ip netns exec "$ns" env VAGRANT_HOME="$state/vagrant.d" "$@"; }
  # The Go tarball over HTTP on the namespace's addresses. vagrant-libvirt's management
  # network is 192.168.121.0/24 with the host side at .1, inside this namespace only.
  # (ip netns exec execs the server, so $! is the server itself.)
  ip netns exec "$ns" python3 -m http.server --bind 0.0.0.0 --directory "$(dirname "$tarball")" 8642 >"$state/http.log" 2>&1 &
  local http_pid=$! name=vt
  # No --vagrant-provider: auto picks libvirt here (no VirtualBox, vagrant-libvirt installed).
  local up=(up --provider vagrant --name "$name" --libvirt-driver qemu
    --box "${box[0]}" --kernel "$state/boot/vmlinuz" --initrd "$state/boot/initrd"
    --go "$gover" --go-sha256 "$sha" --dlv apt --go-base-url "http://192.168.121.1:8642/")
  local m=(--provider vagrant --name "$name")

  stamp "golab up --provider vagrant (box add, boot, provisioning)"
  in_ns "$golab" "${up[@]}" | tee "$state/up1.txt"
  grep -q "(vagrant, libvirt)" "$state/up1.txt"
  grep -q "GET /go$gover.linux-amd64.tar.gz" "$state/http.log" || { echo "test-vm: the provisioner did not download the tarball" >&2; cat "$state/http.log" >&2; exit 1; }
  stamp "golab up again (running: nothing to do)"
  in_ns "$golab" "${up[@]}" | tee "$state/up2.txt"
  grep -q "already running" "$state/up2.txt"
  stamp "golab run startup-trace --provider vagrant"
  in_ns "$golab" run startup-trace "${m[@]}" -q --json-file "$state/vt.json" > "$state/vt.txt" || { cat "$state/vt.txt"; exit 1; }
  same_verdict "$state/vt.json" vagrant
  in_ns "$golab" status "${m[@]}"
  test "$(in_ns "$golab" ssh "${m[@]}" -- go version | awk '{print $3}')" = "go$gover"
  stamp "golab down"
  in_ns "$golab" down "${m[@]}"
  if in_ns "$golab" status "${m[@]}"; then echo "test-vm: status says running after down" >&2; exit 1; fi
  stamp "golab up (resumed)"
  in_ns "$golab" "${up[@]}" | tee "$state/up3.txt"
  grep -q "up again (provisioned before)" "$state/up3.txt"
  stamp "golab destroy"
  in_ns "$golab" destroy "${m[@]}"
  test ! -e "$state/vagrant/$name"
  # Nothing of the machine's is left: no QEMU, no ssh port forward.
  local left
  left=$(ip netns pids "$ns" | xargs -r ps -o comm= -p | grep -E "qemu|^ssh$" || true)
  [ -z "$left" ] || { echo "test-vm: left running after destroy: $left" >&2; exit 1; }
  kill "$http_pid"
  wait "$http_pid" 2>/dev/null || true
  stamp "stopping libvirt"
  bash scripts/libvirt-netns.sh stop "$ns" "$state/libvirt"
  ns=
}

case $which in
  qemu) qemu_suite ;;
  vagrant) vagrant_suite ;;
  all) qemu_suite; vagrant_suite ;;
esac
stamp "done in $(($(date +%s) - t0))s ($which)"
