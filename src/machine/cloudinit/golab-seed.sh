#!/bin/sh
# golab-seed: what cloud-init did at each boot of a baked lab VM, in shell (cloud-init is
# off in baked images: its Python took ~40 s of each boot under software emulation).
# Run by golab-seed.service before sshd. Reads `golab.env` from the NoCloud seed (the FAT
# disk labelled cidata that golab writes beside user-data; see src/machine/qemu/cidata.rs),
# one KEY=VALUE a line, never evaluated:
#   instance_id  a new one makes new ssh host keys (a machine's first boot)
#   hostname     the guest's host name
#   user         the lab user (made at bake time), and ssh_key its one authorized key
#   mirror_ip, mirror_host, mirror_uri   optional: the apt mirror, as user-data's bootcmd
# No seed (a Vagrant box: Vagrant brings its own key): nothing to do.
set -eu
say() { echo "golab-seed: $*"; }

dev=$(blkid -c /dev/null -o device -t LABEL=cidata 2>/dev/null | head -n 1 || true)
[ -n "$dev" ] || dev=$(blkid -c /dev/null -o device -t LABEL=CIDATA 2>/dev/null | head -n 1 || true)
if [ -z "$dev" ]; then
  say "no cidata seed: leaving keys and host name as they are"
  exit 0
fi
mnt=/run/golab-seed
mkdir -p "$mnt"
mountpoint -q "$mnt" || mount -t vfat -o ro,nodev,nosuid,noexec "$dev" "$mnt"
env_file=$mnt/golab.env
if [ ! -f "$env_file" ]; then
  say "the seed on $dev has no golab.env (made by an older golab?): nothing to do"
  exit 0
fi

instance_id='' hostname='' user='' ssh_key='' mirror_ip='' mirror_host='' mirror_uri=''
while IFS= read -r line || [ -n "$line" ]; do
  key=${line%%=*}
  value=${line#*=}
  case $key in
    instance_id) instance_id=$value ;;
    hostname) hostname=$value ;;
    user) user=$value ;;
    ssh_key) ssh_key=$value ;;
    mirror_ip) mirror_ip=$value ;;
    mirror_host) mirror_host=$value ;;
    mirror_uri) mirror_uri=$value ;;
  esac
done <"$env_file"

case $hostname in
  '' | *[!a-z0-9-]*) say "host name ${hostname:-(none)} is not a plain one: not set" ;;
  *)
    echo "$hostname" >/etc/hostname
    hostname "$hostname"
    sed -i '/# golab-hostname$/d' /etc/hosts
    echo "127.0.1.1 $hostname # golab-hostname" >>/etc/hosts
    ;;
esac

# A new instance: its own host keys (ed25519 only, as user-data asks of cloud-init).
state=/var/lib/golab/instance-id
if [ "$(cat "$state" 2>/dev/null || true)" != "$instance_id" ] || ! [ -s /etc/ssh/ssh_host_ed25519_key ]; then
  rm -f /etc/ssh/ssh_host_*
  ssh-keygen -q -t ed25519 -N '' -C "root@$hostname" -f /etc/ssh/ssh_host_ed25519_key
  mkdir -p /var/lib/golab
  printf '%s\n' "$instance_id" >"$state"
  say "new instance $instance_id: new ssh host key"
fi

# The lab user's key, every boot (a machine keeps its folder's key; the image has none).
if [ -n "$user" ] && home=$(getent passwd "$user" | cut -d: -f6) && [ -n "$home" ]; then
  install -d -m 700 -o "$user" -g "$user" "$home/.ssh"
  tmp=$(mktemp "$home/.ssh/.authorized_keys.XXXXXX")
  printf '%s\n' "$ssh_key" >"$tmp"
  chown "$user:$user" "$tmp"
  chmod 600 "$tmp"
  mv -f "$tmp" "$home/.ssh/authorized_keys"
else
  say "no user ${user:-(none)} in the image: no key installed"
fi

# The apt mirror by the address the host resolved (the guest asks no name server).
sed -i '/# golab-mirror$/d' /etc/hosts
if [ -n "$mirror_ip" ] && [ -n "$mirror_host" ]; then
  echo "$mirror_ip $mirror_host # golab-mirror" >>/etc/hosts
fi
if [ -n "$mirror_uri" ] && [ -f /etc/apt/sources.list ]; then
  sed -i "s|^deb [^ ]* |deb $mirror_uri |" /etc/apt/sources.list
fi

# The host's shared tarballs (read-only virtio-9p), linked where the provisioner looks.
mkdir -p /mnt/golabcache /var/cache/golab
if mountpoint -q /mnt/golabcache || mount -t 9p -o trans=virtio,version=9p2000.L,ro golabcache /mnt/golabcache 2>/dev/null; then
  for f in /mnt/golabcache/*; do
    if [ -f "$f" ]; then ln -sfn "$f" /var/cache/golab/; fi
  done
fi
umount "$mnt" 2>/dev/null || true
say "done: ${user:-no user}'s key, host name ${hostname:-unchanged}"
