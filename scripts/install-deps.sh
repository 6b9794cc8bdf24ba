#!/usr/bin/env bash
# Installs what golab and its tests need on Debian 12 / Ubuntu (run as root):
# Go (golang-go), dlv (delve), gdb, binutils (readelf, objdump), a C linker, and a Rust
# toolchain when none is on the machine. Idempotent: what is installed is skipped.
set -euo pipefail

# chromium: the grading HTML report is checked in headless Chromium (tests/grade_instructor.rs).
# grub-pc-bin: the boot code of the VirtualBox and vagrant-qemu boxes (src/machine/bootdisk.rs).
pkgs=(golang-go delve gdb binutils gcc libc6-dev ca-certificates bubblewrap strace openssh-client man-db dosfstools mtools bc ruby shellcheck vagrant vagrant-libvirt chromium grub-pc-bin)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "install-deps: apt-get install ${missing[*]}" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# sshd for the ssh machine's test (a lab run through ssh to 127.0.0.1). Where the
# image carries openssh-client from bookworm-backports, the server must come from
# there too: read that suite with a private apt configuration, leaving the system's
# sources as they are.
if [ ! -x /usr/sbin/sshd ]; then
  if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends openssh-server >/dev/null 2>&1; then
    bp=$(mktemp -d)
    # shellcheck source=scripts/apt-lib.sh
    . "$(dirname "$0")/apt-lib.sh"
    apt_private "$bp" bookworm-backports -- update -qq
    apt_private "$bp" bookworm-backports -- install -y -qq --no-install-recommends -t bookworm-backports openssh-server >/dev/null
    rm -rf "$bp"
  fi
fi

if ! command -v cargo >/dev/null 2>&1; then
  if [ -x "$HOME/.cargo/bin/cargo" ]; then
    :
  else
    # Debian 12's rustc (1.63) is older than golab's dependencies need: use rustup.
    echo "install-deps: installing a Rust toolchain with rustup" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends curl >/dev/null
    curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal -c rustfmt -c clippy >/dev/null
  fi
fi
# scripts/test.sh runs cargo fmt --check and cargo clippy: a rustup toolchain without them
# gets them here.
. "$(dirname "$0")/env.sh"
if command -v rustup >/dev/null 2>&1; then
  for c in rustfmt clippy; do
    cargo "${c/rustfmt/fmt}" --version >/dev/null 2>&1 || rustup component add "$c" >&2
  done
fi
