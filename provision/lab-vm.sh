#!/usr/bin/env bash
# golab's lab VM provisioner: installs the pinned toolchain the labs are written for on
# an x86_64 Ubuntu/Debian guest (run as root; Vagrant's shell provisioner does).
#   apt: gdb, binutils, vim, ca-certificates, rsync (and git for `go install`, which needs it
#     when GOPROXY says direct; under emulation git's perl is minutes of dpkg)
#   Go (the course's pin) from the official tarball, SHA-256 checked, into /usr/local/go
#   dlv (the course's pin) into /usr/local/bin: `go install`,
#     Debian's delve, or built offline from a source tarball with its vendored modules
#   PATH for login shells in /etc/profile.d/golab.sh
#   every regular user's Go build cache warmed with the labs' -gcflags "all=-l -N"
#     (GOLAB_WARM_BUILD_CACHE=0 skips it; GOLAB_WARM_PACKAGES: what besides the runtime)
# Idempotent: what is already in place is left alone, and a second run changes nothing.
#
# Environment:
#   GOLAB_GO_BASE_URL  where the Go tarball is downloaded from (default: Go's download page)
#   GOPROXY            honoured by `go install` for dlv, as Go always does
#   GOLAB_ROOT         a folder to install into instead of / (for tests; apt is unaffected)
#   GOLAB_GO_VERSION, GOLAB_GO_SHA256, GOLAB_DLV_VERSION   the pins, required (golab's
#                      toolchains.txt is their one place: the qemu provider, the Vagrantfile
#                      and the Gradescope setup pass them; GOLAB_DLV_VERSION not for apt)
#   GOLAB_DLV_SOURCE   go-install (default), apt (Debian's delve, in /usr/bin), or source:
#                      GOLAB_DLV_SRC_URL names a tarball of delve's tree with vendor/ (the
#                      top folder holds cmd/dlv), GOLAB_DLV_SRC_SHA256 its SHA-256; it is
#                      built with -mod=vendor and no network (GOPROXY=off, CGO_ENABLED=0)
# A tarball already at /var/cache/golab/goVERSION.linux-amd64.tar.gz (or the dlv source
# tarball under its URL's file name) is used without a download when its checksum matches
# (that is how machines without internet provide it). `tarball`, with GOLAB_DLV_TARBALL_URL
# and GOLAB_DLV_TARBALL_SHA256, is another name for `source` (the Gradescope setup uses it).
set -euo pipefail

GO_VERSION="${GOLAB_GO_VERSION:?the Go version to install (golab passes the pin of toolchains.txt)}"
GO_TARBALL="go${GO_VERSION}.linux-amd64.tar.gz"
GO_SHA256="${GOLAB_GO_SHA256:?the SHA-256 of ${GO_TARBALL} (golab passes it from toolchains.txt)}"
DLV_SOURCE="${GOLAB_DLV_SOURCE:-go-install}"
if [[ "$DLV_SOURCE" == apt ]]; then
  DLV_VERSION="${GOLAB_DLV_VERSION:-}"
else
  DLV_VERSION="${GOLAB_DLV_VERSION:?the dlv version to install (golab passes the pin of toolchains.txt)}"
fi
DLV_SRC_URL="${GOLAB_DLV_SRC_URL:-}"
DLV_SRC_SHA256="${GOLAB_DLV_SRC_SHA256:-}"
if [[ "$DLV_SOURCE" == tarball ]]; then
  DLV_SOURCE=source
  DLV_SRC_URL="${GOLAB_DLV_TARBALL_URL:-$DLV_SRC_URL}"
  DLV_SRC_SHA256="${GOLAB_DLV_TARBALL_SHA256:-$DLV_SRC_SHA256}"
fi
# rsync: Vagrant's rsync synced folders (vagrant-libvirt, vagrant-qemu) need it in the
# guest, and a box baked from this machine has no route to a mirror to fetch it later.
APT_PACKAGES=(gdb binutils vim ca-certificates rsync)
[[ "$DLV_SOURCE" != go-install ]] || APT_PACKAGES+=(git)
[[ "$DLV_SOURCE" != apt ]] || APT_PACKAGES+=(delve)
# tar -J needs xz.
[[ "$DLV_SOURCE" != source || "$DLV_SRC_URL" != *.xz ]] || APT_PACKAGES+=(xz-utils)

GO_BASE_URL="${GOLAB_GO_BASE_URL:-https://go.dev/dl/}"
ROOT="${GOLAB_ROOT:-}"
ROOT="${ROOT%/}"
GOROOT_DIR="$ROOT/usr/local/go"
BIN_DIR="$ROOT/usr/local/bin"
CACHE_DIR="$ROOT/var/cache/golab"
PROFILE_FILE="$ROOT/etc/profile.d/golab.sh"

CLEANUP=()
trap 'rm -rf "${CLEANUP[@]}"' EXIT
say() { printf 'golab-provision: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

install_apt_packages() {
  local missing=() p
  for p in "${APT_PACKAGES[@]}"; do
    [[ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)" == "install ok installed" ]] || missing+=("$p")
  done
  if ((${#missing[@]} == 0)); then
    say "apt packages present: ${APT_PACKAGES[*]}"
    return
  fi
  say "installing apt packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # Measured in a TCG guest (2 cores, host load ~6): update 75 s, of which 40 s were the
  # 32 MB Translation-en nobody reads (Languages none: 35 s); dpkg's unpack 90 s, 81 s
  # without its fsync per file (unsafe-io: a half-unpacked package after a power cut is
  # reinstalled by the next run anyway, and a busy host's disk makes each fsync slower).
  local apt=(-o Acquire::Languages=none -o Dpkg::Options::=--force-unsafe-io -o Dpkg::Use-Pty=0)
  local t
  t=$SECONDS
  apt-get "${apt[@]}" update -qq
  say "apt-get update: $((SECONDS - t))s"
  t=$SECONDS
  apt-get "${apt[@]}" install -y -qq --no-install-recommends "${missing[@]}"
  say "apt-get install: $((SECONDS - t))s"
}

# True when the file exists and has the checksum SHA.
checksum_ok() { # FILE SHA
  [[ -f "$1" ]] && [[ "$(sha256sum "$1" | cut -d' ' -f1)" == "${2,,}" ]]
}

download() { # URL DEST
  if command -v curl >/dev/null 2>&1; then
    curl -fsSL --retry 3 -o "$2" "$1"
  elif command -v wget >/dev/null 2>&1; then
    wget -q -O "$2" "$1"
  else
    die "neither curl nor wget is installed: cannot download $1"
  fi
}

# Prints the path of CACHE_DIR/NAME with checksum SHA, downloading it from URL when the
# cache does not already hold it. HINT says what to set when the download fails.
fetch_pinned() { # NAME URL SHA HINT
  local name=$1 url=$2 sha=$3 hint=$4 cached="$CACHE_DIR/$1" part
  mkdir -p "$CACHE_DIR"
  if checksum_ok "$cached" "$sha"; then
    say "using the cached $name (checksum matches)"
    printf '%s\n' "$cached"
    return
  fi
  if [[ -e "$cached" ]]; then
    say "the cached $cached does not have the pinned SHA-256: downloading it again"
  fi
  part="$cached.part"
  say "downloading $url"
  download "$url" "$part" || { rm -f "$part"; die "download failed: $url ($hint or place the file at $cached)"; }
  if ! checksum_ok "$part" "$sha"; then
    local got
    got="$(sha256sum "$part" | cut -d' ' -f1)"
    rm -f "$part"
    die "$url has SHA-256 $got, expected $sha"
  fi
  mv -f "$part" "$cached"
  printf '%s\n' "$cached"
}

fetch_go_tarball() {
  fetch_pinned "$GO_TARBALL" "${GO_BASE_URL%/}/$GO_TARBALL" "$GO_SHA256" "set GOLAB_GO_BASE_URL"
}

# Outputs are read whole before matching: `grep -q` in a pipe could close it early, and
# with pipefail a writer killed by SIGPIPE would read as "not installed".
go_is_pinned() {
  local out
  [[ -x "$GOROOT_DIR/bin/go" ]] && out="$("$GOROOT_DIR/bin/go" version 2>/dev/null)" &&
    [[ "$out" == "go version go${GO_VERSION} "* ]]
}

install_go() {
  if go_is_pinned; then
    say "Go $GO_VERSION present in $GOROOT_DIR"
    return
  fi
  local tarball staging
  tarball="$(fetch_go_tarball)"
  say "installing Go $GO_VERSION into $GOROOT_DIR"
  mkdir -p "$(dirname "$GOROOT_DIR")"
  # Unpack beside the destination, then swap: an interrupted run never leaves half a Go.
  staging="$(mktemp -d "$(dirname "$GOROOT_DIR")/.golab-go.XXXXXX")"
  if ! tar -C "$staging" -xzf "$tarball"; then
    rm -rf "$staging"
    die "cannot unpack $tarball"
  fi
  [[ -x "$staging/go/bin/go" ]] || { rm -rf "$staging"; die "$tarball has no go/bin/go"; }
  rm -rf "$GOROOT_DIR"
  mv "$staging/go" "$GOROOT_DIR"
  rmdir "$staging"
  go_is_pinned || die "$GOROOT_DIR/bin/go does not report go$GO_VERSION: $("$GOROOT_DIR/bin/go" version 2>&1 || true)"
}

dlv_is_pinned() {
  local out
  [[ -x "$BIN_DIR/dlv" ]] && out="$("$BIN_DIR/dlv" version 2>/dev/null)" &&
    [[ $'\n'"$out"$'\n' == *$'\n'"Version: ${DLV_VERSION}"$'\n'* ]]
}

install_dlv() {
  if dlv_is_pinned; then
    say "dlv $DLV_VERSION present in $BIN_DIR"
    return
  fi
  if [[ "$DLV_SOURCE" == source ]]; then
    build_dlv_from_source
    return
  fi
  say "installing dlv v$DLV_VERSION into $BIN_DIR${GOPROXY:+ (GOPROXY=$GOPROXY)}"
  mkdir -p "$BIN_DIR" "$CACHE_DIR"
  # Module and build caches go to golab's cache folder: the provisioner may run without HOME.
  GOBIN="$BIN_DIR" GOPATH="$CACHE_DIR/gopath" GOCACHE="$CACHE_DIR/gocache" GOFLAGS=-modcacherw \
    "$GOROOT_DIR/bin/go" install "github.com/go-delve/delve/cmd/dlv@v${DLV_VERSION}" ||
    die "go install of dlv v$DLV_VERSION failed (is the Go module proxy reachable? GOPROXY=${GOPROXY:-unset})"
  dlv_is_pinned || die "$BIN_DIR/dlv does not report version $DLV_VERSION"
}

# dlv from a source tarball with its vendored modules: nothing is downloaded but the
# tarball itself (or it is already in the cache).
build_dlv_from_source() {
  local name tarball work top
  name="${DLV_SRC_URL##*/}"
  name="${name%%\?*}"
  [[ -n "$name" ]] || die "GOLAB_DLV_SRC_URL has no file name: $DLV_SRC_URL"
  tarball="$(fetch_pinned "$name" "$DLV_SRC_URL" "$DLV_SRC_SHA256" "set GOLAB_DLV_SRC_URL")"
  work="$(mktemp -d "$CACHE_DIR/.dlv-src.XXXXXX")"
  CLEANUP+=("$work")
  tar -C "$work" -xf "$tarball" || die "cannot unpack $tarball"
  top="$(find "$work" -mindepth 3 -maxdepth 3 -type d -path '*/cmd/dlv' | head -n 1)"
  [[ -n "$top" ]] || die "$tarball has no cmd/dlv folder"
  top="${top%/cmd/dlv}"
  [[ -d "$top/vendor" ]] || die "$tarball has no vendor/ folder: it cannot be built without a network"
  say "building dlv v$DLV_VERSION from $name (-mod=vendor, no network) into $BIN_DIR"
  mkdir -p "$BIN_DIR"
  (cd "$top" && GOFLAGS=-mod=vendor GOPROXY=off GOTOOLCHAIN=local CGO_ENABLED=0 \
    GOPATH="$CACHE_DIR/gopath" GOCACHE="$CACHE_DIR/gocache" \
    "$GOROOT_DIR/bin/go" build -o "$BIN_DIR/.dlv.tmp" ./cmd/dlv) || die "building dlv from $name failed"
  mv -f "$BIN_DIR/.dlv.tmp" "$BIN_DIR/dlv"
  rm -rf "$work"
  dlv_is_pinned || die "$BIN_DIR/dlv built from $name does not report version $DLV_VERSION: $("$BIN_DIR/dlv" version 2>&1 | tr '\n' ' ')"
}

# Go's build cache of every regular user, warmed with the flags the labs build with: the
# runtime (and a few packages programs commonly import) compiled with -N -l is most of a
# lab's build, and under software emulation it takes a minute or more the first time.
warm_build_caches() {
  [[ "${GOLAB_WARM_BUILD_CACHE:-1}" == 1 && -z "$ROOT" ]] || return 0
  local pkgs="${GOLAB_WARM_PACKAGES-fmt os strings sync time}" user home p src
  src="package main

import ("
  for p in $pkgs; do src+=$'\n\t_ "'"$p"'"'; done
  src+=$'\n)\n\nfunc main() {}\n'
  while IFS=: read -r user _ uid _ _ home _; do
    if ((uid < 1000 || uid >= 60000)) || [[ ! -d "$home" ]]; then continue; fi
    say "warming $user's Go build cache: runtime${pkgs:+ $pkgs} with -gcflags \"all=-l -N\""
    # shellcheck disable=SC2016  # expanded by the user's shell
    runuser -u "$user" -- env -i HOME="$home" PATH="$GOROOT_DIR/bin:/usr/bin:/bin" \
      GOTOOLCHAIN=local GOFLAGS=-mod=mod SRC="$src" bash -c \
      'd=$(mktemp -d) && printf "%s" "$SRC" >"$d/main.go" && cd "$d" && go build -gcflags "all=-l -N" -o /dev/null main.go; rc=$?; rm -rf "$d"; exit $rc' ||
      die "warming $user's build cache failed"
  done </etc/passwd
}

install_profile() {
  local want
  want="$(cat <<'EOF'
# Written by golab's lab-vm.sh: the lab's pinned Go on PATH for login shells.
case ":$PATH:" in *":/usr/local/go/bin:"*) ;; *) PATH="/usr/local/go/bin:$PATH" ;; esac
export PATH
EOF
)"
  if [[ -f "$PROFILE_FILE" ]] && [[ "$(cat "$PROFILE_FILE")" == "$want" ]]; then
    say "$PROFILE_FILE present"
    return
  fi
  say "writing $PROFILE_FILE"
  mkdir -p "$(dirname "$PROFILE_FILE")"
  printf '%s\n' "$want" >"$PROFILE_FILE.tmp"
  chmod 0644 "$PROFILE_FILE.tmp"
  mv -f "$PROFILE_FILE.tmp" "$PROFILE_FILE"
}

main() {
  [[ "$(uname -m)" == "x86_64" ]] ||
    die "the lab VM must be x86_64 (the labs follow the amd64 startup path); this is $(uname -m)"
  [[ -n "$ROOT" || "$(id -u)" == 0 ]] || die "run as root"
  case "$DLV_SOURCE" in
    go-install | apt) ;;
    source)
      [[ -n "$DLV_SRC_URL" ]] || die "GOLAB_DLV_SOURCE=source needs GOLAB_DLV_SRC_URL (a delve source tarball with vendor/)"
      [[ "$DLV_SRC_SHA256" =~ ^[0-9a-fA-F]{64}$ ]] || die "GOLAB_DLV_SRC_SHA256 must be the source tarball's SHA-256 (64 hex digits), not '$DLV_SRC_SHA256'"
      ;;
    *) die "GOLAB_DLV_SOURCE must be go-install, apt or source, not $DLV_SOURCE" ;;
  esac
  install_apt_packages
  install_go
  if [[ "$DLV_SOURCE" == apt ]]; then say "dlv from Debian's delve package"; else install_dlv; fi
  install_profile
  warm_build_caches
  say "done: $("$GOROOT_DIR/bin/go" version), dlv $([[ "$DLV_SOURCE" == apt ]] && echo "from apt" || echo "$DLV_VERSION")"
}

main "$@"
