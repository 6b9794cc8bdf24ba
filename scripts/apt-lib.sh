# shellcheck shell=bash
# Sourced by golab's scripts that install Debian packages (not run on its own).
#
# debian_mirror: prints the mirror URI this machine's apt uses, read at run time from
#   /etc/apt (deb822 sources first, then sources.list); GOLAB_DEBIAN_MIRROR overrides.
#   golab never writes a mirror's address into its files.
# apt_private DIR SUITES... -- APT-GET-ARGS...: apt-get with the system's sources plus
#   the given suites of its mirror (e.g. bookworm-backports), lists kept in DIR: the
#   system's sources and package lists stay as they were.
#
# Backports matter here: the machine images carry qemu-utils and openssh-client from
# bookworm-backports, so qemu-system-x86 and openssh-server must come from there too.

debian_mirror() {
  local mirror=${GOLAB_DEBIAN_MIRROR:-}
  if [ -z "$mirror" ] && [ -f /etc/apt/sources.list.d/debian.sources ]; then
    mirror=$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources)
  fi
  if [ -z "$mirror" ] && [ -f /etc/apt/sources.list ]; then
    mirror=$(awk '$1=="deb"{for(i=2;i<=NF;i++) if ($i ~ /^[a-z]+:\/\//) {print $i; exit}}' /etc/apt/sources.list)
  fi
  if [ -z "$mirror" ]; then
    echo "cannot find Debian's mirror in /etc/apt (set GOLAB_DEBIAN_MIRROR)" >&2
    return 1
  fi
  printf '%s\n' "$mirror"
}

apt_private() {
  local dir=$1 extra=() mirror f
  shift
  while (($#)) && [ "$1" != -- ]; do extra+=("$1"); shift; done
  [ "${1:-}" = -- ] && shift
  ((${#extra[@]})) || { echo "apt_private: no suites given" >&2; return 2; }
  mirror=$(debian_mirror) || return 1
  # The system's sources, copied, plus one file for the extra suites.
  rm -rf "$dir/parts"
  mkdir -p "$dir/lists/partial" "$dir/parts"
  for f in /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] && cp "$f" "$dir/parts/"
  done
  printf 'Types: deb\nURIs: %s\nSuites: %s\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
    "$mirror" "${extra[*]}" >"$dir/parts/golab-extra.sources"
  local list=/dev/null
  [ -f /etc/apt/sources.list ] && list=/etc/apt/sources.list
  DEBIAN_FRONTEND=noninteractive apt-get -o "Dir::Etc::sourcelist=$list" -o "Dir::Etc::sourceparts=$dir/parts" \
    -o "Dir::State::Lists=$dir/lists" -o APT::Sandbox::User=root "$@"
}
