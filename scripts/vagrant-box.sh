#!/usr/bin/env bash
# Builds golab's Vagrant box for the libvirt provider from golab's base image
# (scripts/vm-image.sh): OUT_DIR/debian-12-golab.box plus the kernel and initrd beside it
# (.vmlinuz, .initrd), and .sha256 over the three.
#
#   scripts/vagrant-box.sh [OUT_DIR]    default: ${GOLAB_CACHE:-~/.cache/golab}/boxes
#
# Prints the box, kernel and initrd paths, one per line, on stdout; progress goes to stderr.
# Cached: when the three files match their .sha256 and were built by this recipe from the
# same base image, it prints their paths and exits (cold: 14-16 s measured on 2 cores, plus the
# base image's own build when that is not cached). Run as root (loop mount, chroot).
#
# The box's disk is the base image's bare ext4 (no partition table, no boot loader), so a
# machine boots with vagrant-libvirt's direct kernel boot:
#   libvirt.kernel = ".../debian-12-golab.vmlinuz"
#   libvirt.initrd = ".../debian-12-golab.initrd"
#   libvirt.cmd_line = "root=/dev/vda console=ttyS0"
# libvirt's QEMU runs as the libvirt-qemu user: the kernel and initrd (and every folder
# above them) must be readable/traversable by it. A folder under /root (mode 700) is not:
# put OUT_DIR somewhere world-traversable (the script warns when it is not).
#
# How: a copy of the base image is converted to raw, loop-mounted, changed in a chroot
# (apt-get install from the mirror the host's /etc/apt names), trimmed and converted
# back to qcow2. Why not a fresh debootstrap: the base image already is the right system
# (same kernel as the one booted beside it, same masked timers, same apt settings) and is
# cached; a chroot apt-get of the few missing packages took ~15 s here where debootstrap
# takes ~4-5 min, and the box stays the base image plus a reviewable list of changes:
#   - networking by DHCP on en*/eth* (systemd-networkd) instead of QEMU user-net's static
#     10.0.2.15: vagrant-libvirt's management network hands out addresses by DHCP;
#   - cloud-init disabled (/etc/cloud/cloud-init.disabled): there is no seed, and Vagrant
#     does users and keys itself;
#   - user vagrant (uid 1000, no password) with Vagrant's insecure public key, which
#     Vagrant swaps for a fresh key at the first `vagrant up`, and passwordless sudo;
#   - sshd: UseDNS no, host keys generated at the first boot (each machine its own);
#   - gdb binutils vim git ca-certificates xz-utils rsync curl preinstalled: a guest on
#     the management network has no route to a mirror, and provision/lab-vm.sh skips apt
#     when its packages are there (xz-utils unpacks a dlv source tarball, .tar.xz); rsync
#     is what Vagrant's rsync synced folders need in the guest.
set -euo pipefail

RECIPE="golab-debian-12-box v1"
NAME=debian-12-golab
SUITE=bookworm
PACKAGES=(gdb binutils vim git ca-certificates xz-utils rsync curl)

here=$(cd "$(dirname "$0")" && pwd)
cache=${GOLAB_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/golab}
out=${1:-$cache/boxes}
say() { echo "vagrant-box: $*" >&2; }
die() { say "error: $*"; exit 1; }

# The base image (built or cached by vm-image.sh); its checksum is part of the recipe, so
# a rebuilt base image means a rebuilt box.
mapfile -t base < <(bash "$here/vm-image.sh")
((${#base[@]} == 3)) || die "scripts/vm-image.sh did not print the image, kernel and initrd"
base_img=${base[0]} base_kernel=${base[1]} base_initrd=${base[2]}
base_sum=$(awk -v f="$(basename "$base_img")" '$2==f || $2=="*"f {print $1}' "${base_img%.img}.sha256")
[ -n "$base_sum" ] || die "no checksum for $base_img in ${base_img%.img}.sha256"
recipe_text="$RECIPE base=$base_sum packages=${PACKAGES[*]}"

mkdir -p "$out"
out=$(cd "$out" && pwd)
box=$out/$NAME.box kernel=$out/$NAME.vmlinuz initrd=$out/$NAME.initrd
sums=$out/$NAME.sha256 recipe=$out/$NAME.recipe

# Warns when libvirt's QEMU user (libvirt-qemu, or any non-root user) cannot reach the
# kernel and initrd: `virsh start` would then fail with "Permission denied".
check_traversable() {
  local d=$out
  while [ "$d" != / ]; do
    if (( (8#$(stat -c %a "$d") & 1) == 0 )); then
      say "warning: $d is not traversable by other users: libvirt's QEMU (user libvirt-qemu) cannot read the kernel and initrd in $out; use an OUT_DIR outside it"
      return
    fi
    d=$(dirname "$d")
  done
}

cached() {
  [ -f "$box" ] && [ -f "$kernel" ] && [ -f "$initrd" ] && [ -f "$sums" ] && [ -f "$recipe" ] || return 1
  [ "$(cat "$recipe")" = "$recipe_text" ] || return 1
  (cd "$out" && sha256sum --quiet -c "$NAME.sha256" >/dev/null 2>&1)
}

if cached; then
  say "cached: $box"
  check_traversable
  printf '%s\n' "$box" "$kernel" "$initrd"
  exit 0
fi
[ "$(id -u)" = 0 ] || die "building the box needs root (loop mount, chroot): run as root (or use a cached box)"
for t in losetup qemu-img chroot fstrim e2fsck tar; do
  command -v "$t" >/dev/null || die "$t is not installed (qemu-img: scripts/vm-image.sh --deps)"
done

# The mirror is read at run time from the system's apt configuration, never written here.
# shellcheck source=scripts/apt-lib.sh
. "$(dirname "$0")/apt-lib.sh"
mirror=$(debian_mirror) || die "no mirror"

# Vagrant's insecure public key(s), from the installed vagrant (Debian's package keeps
# them in the gem's keys/ folder; upstream packages in /opt/vagrant).
pubkeys=()
for k in ${GOLAB_VAGRANT_PUBKEY:-} /usr/share/vagrant/keys/vagrant.pub* \
  /usr/share/rubygems-integration/all/gems/vagrant-*/keys/vagrant.pub* \
  /usr/lib/ruby/vendor_ruby/vagrant/keys/vagrant.pub* \
  /opt/vagrant/embedded/gems/gems/vagrant-*/keys/vagrant.pub* \
  /opt/vagrant/embedded/gems/*/gems/vagrant-*/keys/vagrant.pub*; do
  [ -f "$k" ] && pubkeys+=("$k")
done
((${#pubkeys[@]})) || die "cannot find Vagrant's insecure public key (keys/vagrant.pub of the vagrant gem); install vagrant or set GOLAB_VAGRANT_PUBKEY"

# --- build -----------------------------------------------------------------------------
work=$(mktemp -d "$out/.build.XXXXXX")
mnt=$work/root
loop=
cleanup() {
  # Everything mounted below the root (proc, sys, dev, resolv.conf), deepest first, then
  # the root itself, then the loop device; only then the files.
  if [ -d "$mnt" ]; then
    findmnt -R -n -l -o TARGET --target "$mnt" 2>/dev/null | grep "^$mnt" | sort -r |
      while read -r m; do umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true; done || true
  fi
  if [ -n "$loop" ]; then losetup -d "$loop" 2>/dev/null || true; fi
  rm -rf --one-file-system "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

t0=$(date +%s)
say "copying the base image ($base_img) to a raw disk"
qemu-img convert -f qcow2 -O raw "$base_img" "$work/root.raw"
virtual_bytes=$(stat -c %s "$work/root.raw")
loop=$(losetup -f --show "$work/root.raw")
mkdir -p "$mnt"
mount -t ext4 "$loop" "$mnt"
mount -t proc proc "$mnt/proc"
mount -t sysfs sysfs "$mnt/sys"
mount --bind /dev "$mnt/dev"
mount --bind /dev/pts "$mnt/dev/pts"
# Name resolution for the chroot's apt only: the guest keeps its empty resolv.conf.
if [ -s /etc/resolv.conf ]; then mount --bind /etc/resolv.conf "$mnt/etc/resolv.conf"; fi
# No service starts inside the chroot (ssh's postinst would restart sshd, ...).
printf '#!/bin/sh\nexit 101\n' >"$mnt/usr/sbin/policy-rc.d"
chmod 755 "$mnt/usr/sbin/policy-rc.d"
printf 'deb %s %s main\n' "$mirror" "$SUITE" >"$mnt/etc/apt/sources.list"

say "apt-get install ${PACKAGES[*]} in the image"
in_root() { chroot "$mnt" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive LANG=C.UTF-8 "$@"; }
in_root apt-get update -qq >"$work/apt.log" 2>&1 || { tail -n 20 "$work/apt.log" >&2; die "apt-get update in the image failed"; }
in_root apt-get install -y -qq --no-install-recommends "${PACKAGES[@]}" >>"$work/apt.log" 2>&1 ||
  { tail -n 30 "$work/apt.log" >&2; die "apt-get install in the image failed"; }
in_root apt-get clean
rm -rf "$mnt"/var/lib/apt/lists/* "$mnt"/var/log/*.log "$mnt"/var/log/apt/* "$mnt/var/cache/debconf/"*-old
rm -f "$mnt/usr/sbin/policy-rc.d"

say "configuring: DHCP, cloud-init off, user vagrant, sshd"
# DHCP from vagrant-libvirt's management network, on whatever the NIC is called.
printf '[Match]\nName=en* eth*\n\n[Network]\nDHCP=ipv4\nIPv6AcceptRA=no\nLinkLocalAddressing=no\n' \
  >"$mnt/etc/systemd/network/20-wired.network"
touch "$mnt/etc/cloud/cloud-init.disabled"

if in_root getent passwd 1000 >/dev/null; then
  [ "$(in_root getent passwd 1000 | cut -d: -f1)" = vagrant ] || die "uid 1000 is taken in the base image"
else
  in_root useradd -m -u 1000 -U -s /bin/bash vagrant
fi
in_root usermod -p '*' vagrant   # no password; ssh keys only (sshd uses PAM, so '*' is not "locked")
install -d -m 700 -o 1000 -g 1000 "$mnt/home/vagrant/.ssh"
cat "${pubkeys[@]}" >"$mnt/home/vagrant/.ssh/authorized_keys"
chown 1000:1000 "$mnt/home/vagrant/.ssh/authorized_keys"
chmod 600 "$mnt/home/vagrant/.ssh/authorized_keys"
printf 'vagrant ALL=(ALL) NOPASSWD:ALL\nDefaults:vagrant !requiretty\n' >"$mnt/etc/sudoers.d/vagrant"
chmod 440 "$mnt/etc/sudoers.d/vagrant"
in_root visudo -c -q -f /etc/sudoers.d/vagrant || die "the sudoers line for vagrant does not parse"

mkdir -p "$mnt/etc/ssh/sshd_config.d"
printf '# golab box: no reverse lookup of the client (the guest has no name server)\nUseDNS no\n' \
  >"$mnt/etc/ssh/sshd_config.d/90-vagrant-box.conf"
# Each machine its own host keys: generated before sshd's config test at the first boot.
rm -f "$mnt"/etc/ssh/ssh_host_*
mkdir -p "$mnt/etc/systemd/system/ssh.service.d"
printf '[Service]\nExecStartPre=\nExecStartPre=/usr/bin/ssh-keygen -A\nExecStartPre=/usr/sbin/sshd -t\n' \
  >"$mnt/etc/systemd/system/ssh.service.d/golab-host-keys.conf"

: >"$mnt/etc/machine-id"
rm -f "$mnt/var/lib/dbus/machine-id"

# Freed blocks (apt's downloads) become holes in the raw file, so the qcow2 stays small.
fstrim "$mnt" >/dev/null 2>&1 || say "fstrim failed (the box is just larger)"
findmnt -R -n -l -o TARGET --target "$mnt" | grep "^$mnt/" | sort -r | while read -r m; do umount "$m"; done
umount "$mnt"
losetup -d "$loop"
loop=
e2fsck -f -p "$work/root.raw" >/dev/null 2>&1 || { e2fsck -f -n "$work/root.raw" >&2 || true; die "e2fsck found errors in the box's file system"; }

say "packing the box"
mkdir -p "$work/box"
qemu-img convert -f raw -O qcow2 "$work/root.raw" "$work/box/box.img"
rm -f "$work/root.raw"
gib=$(( (virtual_bytes + (1 << 30) - 1) >> 30 ))
printf '{"provider":"libvirt","format":"qcow2","virtual_size":%d}\n' "$gib" >"$work/box/metadata.json"
cat >"$work/box/Vagrantfile" <<'EOF'
# golab's Debian 12 box (scripts/vagrant-box.sh). Its disk has no boot loader: boot it
# with libvirt.kernel, libvirt.initrd and libvirt.cmd_line = "root=/dev/vda console=ttyS0"
# (the kernel and initrd are published beside the .box file).
Vagrant.configure("2") do |config|
  config.vm.provider :libvirt do |libvirt|
    libvirt.disk_bus = "virtio"
  end
  config.vm.synced_folder ".", "/vagrant", type: "rsync"
end
EOF
tar -C "$work/box" -cf "$work/$NAME.box" metadata.json Vagrantfile box.img
cp "$base_kernel" "$work/$NAME.vmlinuz"
cp "$base_initrd" "$work/$NAME.initrd"
chmod 644 "$work/$NAME.box" "$work/$NAME.vmlinuz" "$work/$NAME.initrd"
(cd "$work" && sha256sum "$NAME.box" "$NAME.vmlinuz" "$NAME.initrd" >"$NAME.sha256")
echo "$recipe_text" >"$work/$NAME.recipe"
for f in "$NAME.box" "$NAME.vmlinuz" "$NAME.initrd" "$NAME.sha256" "$NAME.recipe"; do
  mv -f "$work/$f" "$out/$f"
done
say "built in $(($(date +%s) - t0))s: $box ($(du -h "$box" | cut -f1))"
check_traversable
printf '%s\n' "$box" "$kernel" "$initrd"
