# shellcheck shell=bash
# Sourced by scripts/test-vm.sh and scripts/bench-vm.sh (from the repository root, with
# `cache` and `stamp` set): the course's pins, as a student's VM gets them, from nothing
# but local files. Sets goroot, gover, tarball, sha, dlvver, dlvsrc, dlvsha, hostdlv.
#
# The pinned Go (toolchains.txt's `pin` row) packed exactly as go.dev packs its
# linux-amd64 tarball (top folder go/) from the GOROOT built from the official source
# (scripts/toolchains.sh's cache), and the pinned dlv's source with its vendored modules, which the provisioner builds in the guest
# with -mod=vendor. The Go tarball's SHA-256 is this pack's own (the official one stays
# the default pin); the delve tarball's is checked against ../shared/toolchains/README.md.
read -r goname dlvver < <(awk '$1 == "pin" {print $2, $3}' toolchains.txt)
gover=$(awk -v n="$goname" '$1 == "go" && $2 == n {print $3}' toolchains.txt)
goroot=${GOLAB_VM_GOROOT:-${GOLAB_TOOLCHAINS:-$cache/toolchains}/$goname}
[ "$(GOTOOLCHAIN=local "$goroot/bin/go" version 2>/dev/null | awk '{print $3}')" = "go$gover" ] ||
  { echo "test-vm: no Go $gover GOROOT at $goroot (build it from ../shared/toolchains/, or set GOLAB_VM_GOROOT)" >&2; exit 1; }
goroot=$(readlink -f "$goroot")
tarball=$cache/tarballs/go$gover.linux-amd64.tar.gz
if [ ! -s "$tarball" ] || [ "$goroot/bin/go" -nt "$tarball" ]; then
  stamp "packing $goroot as $(basename "$tarball") (top folder go/)"
  mkdir -p "$(dirname "$tarball")"
  tar -C "$(dirname "$goroot")" -chf - --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 \
    --exclude="$(basename "$goroot")/pkg/obj" \
    --transform "s,^$(basename "$goroot"),go," "$(basename "$goroot")" | gzip -n -6 >"$tarball.tmp"
  mv "$tarball.tmp" "$tarball"
fi
[ "$(tar -tzf "$tarball" | awk -F/ '{print $1}' | sort -u)" = go ] || { echo "test-vm: $tarball has more than go/ at its top" >&2; exit 1; }
sha=$(sha256sum "$tarball" | cut -d' ' -f1)
stamp "go$gover tarball: $(du -h "$tarball" | cut -f1), sha256 $sha"

dlvsrc=${GOLAB_VM_DLV_SRC:-../shared/toolchains/delve-$dlvver.src.tar.xz}
[ -f "$dlvsrc" ] || { echo "test-vm: no dlv source tarball at $dlvsrc (set GOLAB_VM_DLV_SRC)" >&2; exit 1; }
dlvsrc=$(readlink -f "$dlvsrc")
dlvsha=$(sha256sum "$dlvsrc" | cut -d' ' -f1)
readme=$(dirname "$dlvsrc")/README.md
if [ -f "$readme" ]; then
  pinned=$(grep -F "$(basename "$dlvsrc")" "$readme" | grep -oE '[0-9a-f]{64}' | tail -n 1)
  [ "$pinned" = "$dlvsha" ] || { echo "test-vm: $dlvsrc has SHA-256 $dlvsha, its README says ${pinned:-nothing}" >&2; exit 1; }
fi
stamp "dlv v$dlvver source: $(basename "$dlvsrc"), sha256 $dlvsha"
# The host's dlv for the host's verdict: the same source, built by the same Go.
hostdlv=$cache/vm-test/dlv-$dlvver-${dlvsha:0:12}/dlv
if [ ! -x "$hostdlv" ]; then
  stamp "building the host's dlv v$dlvver from the same source"
  b=$(mktemp -d)
  tar -C "$b" -xJf "$dlvsrc"
  (cd "$b"/*/ && GOROOT=$goroot GOFLAGS=-mod=vendor GOPROXY=off GOTOOLCHAIN=local CGO_ENABLED=0 \
    nice -n 10 "$goroot/bin/go" build -o "$b/dlv" ./cmd/dlv)
  mkdir -p "$(dirname "$hostdlv")"
  mv "$b/dlv" "$hostdlv"
  rm -rf "$b"
fi

