#!/usr/bin/env bash
# golab's lab VM provisioner: installs the pinned toolchain the labs are written for on
# an x86_64 Ubuntu/Debian guest (run as root; Vagrant's shell provisioner does).
#   apt: gdb, binutils, vim, git, ca-certificates
#   Go 1.17.1 from the official tarball, SHA-256 checked, into /usr/local/go
#   dlv v1.9.1 (the newest delve that supports Go 1.17) into /usr/local/bin
#   PATH for login shells in /etc/profile.d/golab.sh
# Idempotent: what is already in place is left alone, and a second run changes nothing.
#
# Environment:
#   GOLAB_GO_BASE_URL  where the Go tarball is downloaded from (default: Go's download page)
#   GOPROXY            honoured by `go install` for dlv, as Go always does
#   GOLAB_ROOT         a folder to install into instead of / (for tests; apt is unaffected)
#   GOLAB_GO_VERSION, GOLAB_GO_SHA256, GOLAB_DLV_VERSION   other pins (golab's qemu provider)
#   GOLAB_DLV_SOURCE   go-install (default), apt (Debian's delve, in /usr/bin), or tarball:
#                      delve's source with its vendor/ folder (GitHub's release archive) at
#                      GOLAB_DLV_TARBALL_URL, checked against GOLAB_DLV_TARBALL_SHA256, built
#                      with -mod=vendor (no module proxy needed)
# A tarball already at /var/cache/golab/go1.17.1.linux-amd64.tar.gz is used without a
# download when its checksum matches (that is how machines without internet provide it).
set -euo pipefail

GO_VERSION="${GOLAB_GO_VERSION:-1.17.1}"
GO_TARBALL="go${GO_VERSION}.linux-amd64.tar.gz"
GO_SHA256="${GOLAB_GO_SHA256:-dab7d9c34361dc21ec237d584590d72500652e7c909bf082758fb63064fca0ef}"
DLV_VERSION="${GOLAB_DLV_VERSION:-1.9.1}"
DLV_SOURCE="${GOLAB_DLV_SOURCE:-go-install}"
APT_PACKAGES=(gdb binutils vim git ca-certificates)
[[ "$DLV_SOURCE" != apt ]] || APT_PACKAGES+=(delve)

GO_BASE_URL="${GOLAB_GO_BASE_URL:-https://go.dev/dl/}"
ROOT="${GOLAB_ROOT:-}"
ROOT="${ROOT%/}"
GOROOT_DIR="$ROOT/usr/local/go"
BIN_DIR="$ROOT/usr/local/bin"
CACHE_DIR="$ROOT/var/cache/golab"
PROFILE_FILE="$ROOT/etc/profile.d/golab.sh"

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
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

# True when the file exists and has the pinned checksum.
checksum_ok() {
  [[ -f "$1" ]] && [[ "$(sha256sum "$1" | cut -d' ' -f1)" == "$GO_SHA256" ]]
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

# Prints the path of a tarball with the pinned checksum, downloading it when the cache
# does not already hold one.
fetch_go_tarball() {
  local cached="$CACHE_DIR/$GO_TARBALL" url part
  mkdir -p "$CACHE_DIR"
  if checksum_ok "$cached"; then
    say "using the cached $GO_TARBALL (checksum matches)"
    printf '%s\n' "$cached"
    return
  fi
  if [[ -e "$cached" ]]; then
    say "the cached $cached does not have the pinned SHA-256: downloading it again"
  fi
  url="${GO_BASE_URL%/}/$GO_TARBALL"
  part="$cached.part"
  say "downloading $url"
  download "$url" "$part" || { rm -f "$part"; die "download failed: $url (set GOLAB_GO_BASE_URL or place the tarball at $cached)"; }
  if ! checksum_ok "$part"; then
    local got
    got="$(sha256sum "$part" | cut -d' ' -f1)"
    rm -f "$part"
    die "$url has SHA-256 $got, expected $GO_SHA256"
  fi
  mv -f "$part" "$cached"
  printf '%s\n' "$cached"
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

install_dlv_from_tarball() {
  local url="${GOLAB_DLV_TARBALL_URL:?GOLAB_DLV_SOURCE=tarball needs GOLAB_DLV_TARBALL_URL}"
  local want="${GOLAB_DLV_TARBALL_SHA256:?GOLAB_DLV_SOURCE=tarball needs GOLAB_DLV_TARBALL_SHA256}"
  local src got
  mkdir -p "$BIN_DIR" "$CACHE_DIR"
  src="$(mktemp -d "$CACHE_DIR/.delve.XXXXXX")"
  say "downloading delve's source $url"
  download "$url" "$src/delve.tar.gz" || { rm -rf "$src"; die "download failed: $url"; }
  got="$(sha256sum "$src/delve.tar.gz" | cut -d' ' -f1)"
  [[ "$got" == "$want" ]] || { rm -rf "$src"; die "$url has SHA-256 $got, expected $want"; }
  tar -C "$src" -xzf "$src/delve.tar.gz" || { rm -rf "$src"; die "cannot unpack $url"; }
  local top=("$src"/delve-*/)
  [[ -d "${top[0]}cmd/dlv" && -d "${top[0]}vendor" ]] || { rm -rf "$src"; die "$url is not delve's source with vendor/"; }
  say "building dlv v$DLV_VERSION from source (-mod=vendor)"
  (cd "${top[0]}" && GOPATH="$CACHE_DIR/gopath" GOCACHE="$CACHE_DIR/gocache" GOFLAGS=-mod=vendor GOTOOLCHAIN=local GOPROXY=off \
    "$GOROOT_DIR/bin/go" build -o "$BIN_DIR/dlv" ./cmd/dlv) || { rm -rf "$src"; die "building dlv from $url failed"; }
  rm -rf "$src"
  dlv_is_pinned || die "$BIN_DIR/dlv does not report version $DLV_VERSION"
}

install_dlv() {
  if dlv_is_pinned; then
    say "dlv $DLV_VERSION present in $BIN_DIR"
    return
  fi
  if [[ "$DLV_SOURCE" == tarball ]]; then
    install_dlv_from_tarball
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
  [[ "$DLV_SOURCE" == go-install || "$DLV_SOURCE" == apt || "$DLV_SOURCE" == tarball ]] || die "GOLAB_DLV_SOURCE must be go-install, apt or tarball, not $DLV_SOURCE"
  install_apt_packages
  install_go
  if [[ "$DLV_SOURCE" == apt ]]; then say "dlv from Debian's delve package"; else install_dlv; fi
  install_profile
  say "done: $("$GOROOT_DIR/bin/go" version), dlv $([[ "$DLV_SOURCE" == apt ]] && echo "from apt" || echo "$DLV_VERSION")"
}

main "$@"
