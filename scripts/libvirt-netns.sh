#!/usr/bin/env bash
# A libvirt for vagrant-libvirt that lives in a network namespace of its own, on a
# machine without systemd (CI containers):
#
#   scripts/libvirt-netns.sh start NS STATE_DIR
#   scripts/libvirt-netns.sh stop NS STATE_DIR
#
# start: installs what is missing (libvirt-daemon-system with its sysv flavour, not the
#   systemd one, libvirt-clients, dnsmasq-base, iptables; QEMU through vm-image.sh --deps,
#   which takes it from bookworm-backports), creates netns NS (lo up), starts virtlogd
#   and libvirtd in it (-d, pid files in STATE_DIR), waits for
#   `virsh -c qemu:///system version`, and defines and starts the storage pool "default"
#   in STATE_DIR/pool. Everything a daemon starts (QEMU, dnsmasq, the NAT rules of
#   vagrant-libvirt's 192.168.121.0/24 management network) is inside NS, so run vagrant,
#   virsh, ssh and anything else that talks to a guest under `ip netns exec NS`.
# stop: destroys and undefines the domains, networks, pool and volumes that were not
#   defined before `start` (STATE_DIR/baseline.*), stops the ones that were, stops the
#   daemons, ends whatever else still runs in NS (vagrant's ssh port forwards), deletes
#   NS. Both are idempotent: start on a running setup only checks it, stop on a stopped
#   one does nothing.
#
# libvirt's paths are fixed for a system daemon (/etc/libvirt, /var/lib/libvirt, and its
# sockets in /run/libvirt, which every namespace sees): only one libvirtd per machine, so
# start refuses when a libvirtd it did not start is running. STATE_DIR and its parents
# must be traversable by the libvirt-qemu user (QEMU opens the disks in the pool).
# Run as root.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=scripts/apt-lib.sh
. "$here/apt-lib.sh"
cache=${GOLAB_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/golab}
SUITE=bookworm
POOL=default
URI=qemu:///system
say() { echo "libvirt-netns: $*" >&2; }
die() { say "error: $*"; exit 1; }
usage() { echo "usage: $0 start|stop NS STATE_DIR" >&2; exit 2; }

(($# == 3)) || usage
action=$1 ns=$2 state=$3
case $action in start | stop) ;; *) usage ;; esac
[[ $ns =~ ^[A-Za-z0-9_.-]+$ ]] || die "bad namespace name: $ns"
[ "$(id -u)" = 0 ] || die "run as root"
mkdir -p "$state"
state=$(cd "$state" && pwd)

in_ns() { ip netns exec "$ns" "$@"; }
virsh_ns() { in_ns virsh -q -c "$URI" "$@"; }
ns_exists() { [ -e "/run/netns/$ns" ]; }
pid_alive() { [ -n "${1:-}" ] && kill -0 "$1" 2>/dev/null; }
# The pid in STATE_DIR/NAME.pid when that process still runs and is NAME.
our_pid() {
  local f=$state/$1.pid pid
  [ -f "$f" ] || return 1
  pid=$(cat "$f" 2>/dev/null) || return 1
  [[ $pid =~ ^[0-9]+$ ]] && pid_alive "$pid" && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$1" ] || return 1
  echo "$pid"
}
# True when the process runs in NS's network namespace.
in_our_ns() {
  [ "$(stat -L -c %i "/proc/$1/ns/net" 2>/dev/null)" = "$(stat -L -c %i "/run/netns/$ns" 2>/dev/null)" ]
}

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }

install_packages() {
  # QEMU first, from where vm-image.sh takes it (bookworm-backports, same version as
  # qemu-utils; never qemu-block-extra, which would pull the older QEMU back in).
  if ! installed qemu-system-x86 || ! installed qemu-utils; then bash "$here/vm-image.sh" --deps; fi
  local want=(libvirt-daemon-system libvirt-daemon-system-sysv libvirt-clients dnsmasq-base iptables) missing=() p
  for p in "${want[@]}"; do installed "$p" || missing+=("$p"); done
  ((${#missing[@]})) || return 0
  say "installing host packages: ${missing[*]}"
  # The same private apt configuration as vm-image.sh (scripts/apt-lib.sh); libvirt
  # itself comes from bookworm (priority 500), QEMU stays at its backports version.
  # The packages' maintainer scripts must not start libvirtd/virtlogd here, in the root
  # namespace: a policy-rc.d that says no, unless the machine already has one.
  local policy=/usr/sbin/policy-rc.d ours=false
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\n# golab libvirt-netns.sh: no service starts during its apt-get\nexit 101\n' >"$policy"
    chmod 755 "$policy"
    ours=true
  fi
  local rc=0
  { apt_private "$cache/apt" "$SUITE-backports" -- update -qq &&
    apt_private "$cache/apt" "$SUITE-backports" -- install -y -qq --no-install-recommends "${want[@]}" >/dev/null; } || rc=$?
  if $ours; then rm -f "$policy"; fi
  ((rc == 0)) || die "apt-get install ${missing[*]} failed"
  # A daemon started anyway by a maintainer script would be in the root namespace.
  local p2
  for p2 in $(pgrep -x libvirtd || true) $(pgrep -x virtlogd || true); do
    say "warning: the package installation started $(cat "/proc/$p2/comm") (pid $p2) in the root namespace: stopping it"
    kill "$p2" 2>/dev/null || true
  done
}

# Names of the defined domains, networks, pools (all, active or not).
list_domains() { virsh_ns list --all --name | sed '/^$/d'; }
list_networks() { virsh_ns net-list --all --name | sed '/^$/d'; }
list_pools() { virsh_ns pool-list --all --name | sed '/^$/d'; }

wait_virsh() {
  for _ in $(seq 1 60); do
    if in_ns virsh -c "$URI" version >/dev/null 2>&1; then return 0; fi
    if ! our_pid libvirtd >/dev/null; then
      tail -n 20 "$state/libvirtd.log" >&2 2>/dev/null || true
      die "libvirtd exited at start (log: $state/libvirtd.log)"
    fi
    sleep 0.5
  done
  tail -n 20 "$state/libvirtd.log" >&2 2>/dev/null || true
  die "libvirtd does not answer on $URI after 30 s (log: $state/libvirtd.log)"
}

# Every folder from / down to $1 must be searchable by libvirt-qemu.
check_traversable() {
  local d=$1 u=libvirt-qemu
  id "$u" >/dev/null 2>&1 || return 0
  runuser -u "$u" -- test -x "$d" -a -r "$d" && return 0
  while [ "$d" != / ]; do
    runuser -u "$u" -- test -x "$d" || die "$d is not traversable by $u (QEMU's user): choose a STATE_DIR outside it (e.g. under /tmp or /var/tmp)"
    d=$(dirname "$d")
  done
}

start() {
  install_packages
  local lp vp
  lp=$(our_pid libvirtd || true)
  vp=$(our_pid virtlogd || true)
  # One libvirtd per machine (its sockets are in /run/libvirt, whatever the namespace).
  local p
  for p in $(pgrep -x libvirtd || true); do
    [ "$p" = "$lp" ] || die "a libvirtd (pid $p) that this script did not start (with $state) is running; stop it first (libvirt's sockets in /run/libvirt are shared by all namespaces)"
  done
  for p in $(pgrep -x virtlogd || true); do
    [ "$p" = "$vp" ] || die "a virtlogd (pid $p) that this script did not start (with $state) is running; stop it first"
  done
  if [ -n "$lp" ] && ! in_our_ns "$lp"; then die "libvirtd $lp (from $state) is not in namespace $ns"; fi

  if ! ns_exists; then
    say "creating network namespace $ns"
    ip netns add "$ns"
  fi
  ip -n "$ns" link set lo up

  if [ -z "$vp" ]; then
    say "starting virtlogd in $ns"
    in_ns virtlogd -d -p "$state/virtlogd.pid"
    for _ in $(seq 1 20); do our_pid virtlogd >/dev/null && break; sleep 0.25; done
    our_pid virtlogd >/dev/null || die "virtlogd did not start"
  fi
  if [ -z "$lp" ]; then
    say "starting libvirtd in $ns"
    # libvirtd's own log to STATE_DIR (no journald here).
    in_ns env LIBVIRT_LOG_OUTPUTS="3:file:$state/libvirtd.log" libvirtd -d -p "$state/libvirtd.pid"
    for _ in $(seq 1 20); do our_pid libvirtd >/dev/null && break; sleep 0.25; done
  fi
  wait_virsh

  # What was defined before this setup: stop leaves it defined.
  if [ ! -f "$state/baseline.domains" ]; then
    list_domains >"$state/baseline.domains"
    list_networks >"$state/baseline.networks"
    list_pools >"$state/baseline.pools"
  fi

  # The storage pool vagrant-libvirt uses.
  mkdir -p "$state/pool"
  chmod 755 "$state" "$state/pool"
  check_traversable "$state/pool"
  local target=
  if virsh_ns pool-info "$POOL" >/dev/null 2>&1; then
    target=$(virsh_ns pool-dumpxml "$POOL" | sed -n 's:.*<path>\(.*\)</path>.*:\1:p' | head -n 1)
    if [ "$target" != "$state/pool" ]; then
      say "storage pool $POOL points at $target: redefining it at $state/pool"
      virsh_ns pool-destroy "$POOL" >/dev/null 2>&1 || true
      virsh_ns pool-undefine "$POOL" >/dev/null
      target=
    fi
  fi
  if [ -z "$target" ]; then
    virsh_ns pool-define-as "$POOL" dir --target "$state/pool" >/dev/null
  fi
  if [ "$(virsh_ns pool-info "$POOL" | awk '/^State:/{print $2}')" != running ]; then
    virsh_ns pool-start "$POOL" >/dev/null
  fi
  say "libvirtd $(our_pid libvirtd) and virtlogd $(our_pid virtlogd) in $ns; pool $POOL at $state/pool"
}

in_baseline() { [ -f "$state/baseline.$1" ] && grep -qxF -- "$2" "$state/baseline.$1"; }

stop_daemon() { # NAME
  local pid
  pid=$(our_pid "$1") || { rm -f "$state/$1.pid"; return 0; }
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 1 40); do pid_alive "$pid" || break; sleep 0.25; done
  if pid_alive "$pid"; then say "$1 $pid did not stop on SIGTERM: SIGKILL"; kill -9 "$pid" 2>/dev/null || true; sleep 0.5; fi
  rm -f "$state/$1.pid"
}

stop() {
  local lp
  lp=$(our_pid libvirtd || true)
  if [ -n "$lp" ] && ns_exists && in_ns virsh -c "$URI" version >/dev/null 2>&1; then
    local d n v
    while read -r d; do
      [ -n "$d" ] || continue
      virsh_ns destroy "$d" >/dev/null 2>&1 || true
      in_baseline domains "$d" && continue
      say "undefining domain $d"
      virsh_ns undefine "$d" --managed-save --snapshots-metadata --nvram >/dev/null 2>&1 ||
        virsh_ns undefine "$d" >/dev/null 2>&1 || say "warning: cannot undefine domain $d"
    done < <(list_domains)
    while read -r n; do
      [ -n "$n" ] || continue
      virsh_ns net-destroy "$n" >/dev/null 2>&1 || true
      in_baseline networks "$n" && continue
      say "undefining network $n"
      virsh_ns net-undefine "$n" >/dev/null 2>&1 || say "warning: cannot undefine network $n"
    done < <(list_networks)
    if virsh_ns pool-info "$POOL" >/dev/null 2>&1; then
      virsh_ns pool-refresh "$POOL" >/dev/null 2>&1 || true
      while read -r v; do
        [ -n "$v" ] || continue
        virsh_ns vol-delete --pool "$POOL" "$v" >/dev/null 2>&1 || say "warning: cannot delete volume $v"
      done < <(virsh_ns vol-list "$POOL" 2>/dev/null | awk '{print $1}')
      virsh_ns pool-destroy "$POOL" >/dev/null 2>&1 || true
      in_baseline pools "$POOL" || virsh_ns pool-undefine "$POOL" >/dev/null 2>&1 || true
    fi
  elif [ -n "$lp" ]; then
    say "warning: libvirtd $lp does not answer: stopping it without undefining anything"
  fi
  stop_daemon libvirtd
  stop_daemon virtlogd
  # What is left in the namespace (dnsmasq, QEMU after a libvirtd crash, vagrant's
  # `ssh -L` port forwards) ends with it.
  if ns_exists; then
    local pids
    pids=$(ip netns pids "$ns" 2>/dev/null | tr '\n' ' ')
    if [ -n "${pids// /}" ]; then
      say "ending what still runs in $ns: $(for p in $pids; do printf '%s(%s) ' "$(cat "/proc/$p/comm" 2>/dev/null)" "$p"; done)"
      # shellcheck disable=SC2086
      kill $pids 2>/dev/null || true
      for _ in $(seq 1 20); do [ -z "$(ip netns pids "$ns" 2>/dev/null)" ] && break; sleep 0.25; done
      pids=$(ip netns pids "$ns" 2>/dev/null | tr '\n' ' ')
      # shellcheck disable=SC2086
      [ -z "${pids// /}" ] || kill -9 $pids 2>/dev/null || true
      sleep 0.5
    fi
    say "deleting network namespace $ns"
    ip netns del "$ns"
  fi
  rm -rf --one-file-system "$state/pool" "$state"/baseline.*
  say "stopped"
}

"$action"
