#!/usr/bin/env bash
# Builds the lab VM's base image from Debian's packages (debootstrap), for golab's qemu
# provider: OUT_DIR/debian-12-golab.img (qcow2) plus the kernel and initrd beside it
# (.vmlinuz, .initrd) for direct kernel boot, and .sha256 over the three.
#
#   scripts/vm-image.sh [OUT_DIR]      default: ${GOLAB_CACHE:-~/.cache/golab}/images
#   scripts/vm-image.sh --deps         only the host packages `golab up --provider qemu` needs
#   scripts/vm-image.sh --with-tools [OUT_DIR]
#                                      the same image with the provisioner's apt packages
#                                      (gdb binutils vim rsync xz-utils) already installed,
#                                      by apt in the chroot at the host's native speed:
#                                      OUT_DIR/debian-12-golab-tools.*
#
# The plain image stands in for the cloud image a user downloads: `golab up` and `golab
# image build` install the apt packages inside the guest (scripts/test-vm.sh does that
# once). Under software emulation on a busy 2-core host that apt run took 20-45+ min
# (dpkg's unpack of gdb, vim-runtime and python3.11's libraries), so the benchmark
# (scripts/bench-vm.sh) bakes from the --with-tools image and says so: the provisioner
# finds the packages installed and runs no apt at all.
#
# Cached: when the three files match their .sha256 and were built by this recipe, it
# prints their paths and exits (cold: ~4-5 min on 2 cores). Run as root (debootstrap).
# Installs what it needs on the host (debootstrap, qemu-system-x86 and qemu-utils from
# bookworm-backports, genisoimage, openssh-client) through a private apt configuration:
# the system's apt sources and lists are left as they were.
#
# Why qcow2 for the base: each machine's disk is a qcow2 overlay on it anyway; a qcow2
# holds only the blocks in use (~0.6 GiB of an 8 GiB disk) as a plain file, so a CI
# cache, cp or tar moves it without needing sparse-file support, its virtual size is in
# its header, and `qemu-img check` can verify it. The file system inside is a bare ext4
# (mkfs.ext4 -d, no partition table, no boot loader: the kernel is booted directly
# with root=/dev/vda), so no loop device or grub is needed to build it.
set -euo pipefail

RECIPE="golab-debian-12 v2"
NAME=debian-12-golab
SUITE=bookworm
DISK_SIZE=8G
# debootstrap does not resolve virtual packages: python3-cffi-backend provides the
# python3-cffi-backend-api-* that cloud-init's python3-cryptography needs.
INCLUDE=systemd-sysv,udev,dbus,linux-image-amd64,openssh-server,iproute2,ca-certificates,sudo,netbase,procps,cloud-init,python3-cffi-backend,kmod

deps_only=false with_tools=false
if [ "${1:-}" = --deps ]; then deps_only=true; shift; fi
if [ "${1:-}" = --with-tools ]; then with_tools=true; shift; fi
# The provisioner's APT_PACKAGES for a dlv built from an .xz source tarball
# (provision/lab-vm.sh); ca-certificates is in INCLUDE already.
TOOLS="gdb binutils vim rsync xz-utils"
if $with_tools; then
  NAME=$NAME-tools
  RECIPE="$RECIPE + $TOOLS"
fi
cache=${GOLAB_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/golab}
out=${1:-$cache/images}
say() { echo "vm-image: $*" >&2; }

mkdir -p "$out"
out=$(cd "$out" && pwd)
img=$out/$NAME.img kernel=$out/$NAME.vmlinuz initrd=$out/$NAME.initrd
sums=$out/$NAME.sha256 recipe=$out/$NAME.recipe

cached() {
  [ -f "$img" ] && [ -f "$kernel" ] && [ -f "$initrd" ] && [ -f "$sums" ] && [ -f "$recipe" ] || return 1
  [ "$(cat "$recipe")" = "$RECIPE" ] || return 1
  (cd "$out" && sha256sum --quiet -c "$NAME.sha256" >/dev/null 2>&1)
}

if ! $deps_only && cached; then
  say "cached: $img"
  printf '%s\n' "$img" "$kernel" "$initrd"
  exit 0
fi
[ "$(id -u)" = 0 ] || { say "debootstrap needs root: run as root (or use a cached image)"; exit 1; }

# The mirror is read at run time from the system's apt configuration, never written here.
# shellcheck source=scripts/apt-lib.sh
. "$(dirname "$0")/apt-lib.sh"
mirror=$(debian_mirror) || exit 1

# --- host packages -------------------------------------------------------------------
# qemu-utils on these machines comes from bookworm-backports, so qemu-system-x86 must
# too (same version); qemu-block-extra is left out (it pins an older QEMU).
need_host_packages() {
  local missing=() p
  for p in debootstrap qemu-system-x86 qemu-utils genisoimage openssh-client e2fsprogs grub-pc-bin; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  ((${#missing[@]})) || return 0
  say "installing host packages: ${missing[*]}"
  apt_private "$cache/apt" "$SUITE-backports" -- update -qq
  apt_private "$cache/apt" "$SUITE-backports" -- install -y -qq --no-install-recommends \
    -t "$SUITE-backports" qemu-system-x86 qemu-utils debootstrap genisoimage openssh-client e2fsprogs grub-pc-bin >/dev/null
}
need_host_packages
if $deps_only; then exit 0; fi

# --- build -----------------------------------------------------------------------------
work=$(mktemp -d "$out/.build.XXXXXX")
root=$work/root
cleanup() {
  # debootstrap mounts proc/sys (and may bind /dev) inside the root: unmount everything
  # below it, deepest first, before removing anything.
  if [ -d "$root" ]; then
    findmnt -R -n -l -o TARGET --target "$root" 2>/dev/null | grep "^$root" | sort -r |
      while read -r m; do umount -l "$m" 2>/dev/null || true; done || true
  fi
  rm -rf --one-file-system "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

t0=$(date +%s)
say "debootstrap $SUITE (minbase + $INCLUDE); takes ~4 min"
debootstrap --variant=minbase --include="$INCLUDE" "$SUITE" "$root" "$mirror" >"$work/debootstrap.log" 2>&1 || {
  tail -n 30 "$work/debootstrap.log" >&2
  [ -f "$root/debootstrap/debootstrap.log" ] && tail -n 30 "$root/debootstrap/debootstrap.log" >&2
  say "debootstrap failed"
  exit 1
}
say "debootstrap done in $(($(date +%s) - t0))s; configuring"
if $with_tools; then
  # apt in the chroot needs the mirror (debootstrap wrote sources for it) and the host's
  # resolv.conf (copied by debootstrap; emptied below). proc for the maintainer scripts.
  printf 'deb %s %s main\n' "$mirror" "$SUITE" >"$root/etc/apt/sources.list"
  mount -t proc proc "$root/proc"
  t1=$(date +%s)
  # shellcheck disable=SC2086  # TOOLS is a word list
  if ! chroot "$root" env DEBIAN_FRONTEND=noninteractive sh -c \
    "apt-get update -qq && apt-get install -y -qq --no-install-recommends $TOOLS" >"$work/tools.log" 2>&1; then
    umount "$root/proc"
    tail -n 30 "$work/tools.log" >&2
    say "apt-get install $TOOLS in the chroot failed"
    exit 1
  fi
  umount "$root/proc"
  say "installed $TOOLS in the chroot in $(($(date +%s) - t1))s"
fi

# Names resolve from /etc/hosts only: the guest gets the mirror's address from cloud-init
# (user-data) and has no name server, so it never asks anyone else.
: >"$root/etc/resolv.conf"
printf '127.0.0.1\tlocalhost\n127.0.1.1\tgolab\n::1\tlocalhost ip6-localhost ip6-loopback\n' >"$root/etc/hosts"
echo golab >"$root/etc/hostname"
echo '/dev/vda / ext4 rw,errors=remount-ro 0 1' >"$root/etc/fstab"
printf 'deb %s %s main\n' "$mirror" "$SUITE" >"$root/etc/apt/sources.list"
echo 'APT::Install-Recommends "false";' >"$root/etc/apt/apt.conf.d/90golab"

# QEMU user networking's fixed addresses, set by systemd-networkd (not cloud-init's
# renderer: Debian's picks ifupdown, which minbase lacks). Static rather than DHCP, so
# the guest never sends a packet to 10.0.2.2 itself (the gateway is only a route), and
# 10.0.2.15 is where QEMU's hostfwd delivers ssh and dlv.
mkdir -p "$root/etc/systemd/network"
printf '[Match]\nName=en* eth*\n\n[Network]\nAddress=10.0.2.15/24\nGateway=10.0.2.2\nIPv6AcceptRA=no\nLinkLocalAddressing=no\n' >"$root/etc/systemd/network/20-wired.network"
chroot "$root" systemctl enable systemd-networkd.service >/dev/null 2>&1
# No background apt runs that would hold the lock the provisioner needs, and no clock
# sync to servers other than the mirror.
for u in apt-daily.timer apt-daily-upgrade.timer systemd-timesyncd.service systemd-networkd-wait-online.service; do
  chroot "$root" systemctl mask "$u" >/dev/null 2>&1 || true
done

mkdir -p "$root/etc/cloud/cloud.cfg.d"
cat >"$root/etc/cloud/cloud.cfg.d/90-golab.cfg" <<'EOF'
# golab: only the NoCloud seed (no metadata server is ever probed); networking comes
# from systemd-networkd; apt sources and /etc/hosts' other lines are left alone.
datasource_list: [ NoCloud, None ]
network: {config: disabled}
apt_preserve_sources_list: true
manage_etc_hosts: localhost
EOF

# Each VM gets its own machine-id; nothing cached that the image does not need.
: >"$root/etc/machine-id"
rm -f "$root/var/lib/dbus/machine-id"
chroot "$root" apt-get clean
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/log/*.log "$root/var/cache/debconf/"*-old

kernels=("$root"/boot/vmlinuz-*)   # linux-image-amd64 installs one
kver=${kernels[-1]##*/vmlinuz-}
cp "$root/boot/vmlinuz-$kver" "$work/$NAME.vmlinuz"
cp "$root/boot/initrd.img-$kver" "$work/$NAME.initrd"
chmod 644 "$work/$NAME.vmlinuz" "$work/$NAME.initrd"

# proc/sys are unmounted by debootstrap at its end; make sure before packing.
if findmnt -R -n -l -o TARGET --target "$root" | grep -q "^$root/"; then say "still mounted inside the root"; exit 1; fi
say "mkfs.ext4 -d ($DISK_SIZE) and qemu-img convert to qcow2"
mkfs.ext4 -q -F -L golab-root -d "$root" "$work/root.ext4" "$DISK_SIZE"
qemu-img convert -f raw -O qcow2 "$work/root.ext4" "$work/$NAME.img"
rm -f "$work/root.ext4"

(cd "$work" && sha256sum "$NAME.img" "$NAME.vmlinuz" "$NAME.initrd" >"$NAME.sha256")
echo "$RECIPE" >"$work/$NAME.recipe"
for f in "$NAME.img" "$NAME.vmlinuz" "$NAME.initrd" "$NAME.sha256" "$NAME.recipe"; do
  mv -f "$work/$f" "$out/$f"
done
say "built in $(($(date +%s) - t0))s: $img (kernel $kver)"
printf '%s\n' "$img" "$kernel" "$initrd"
