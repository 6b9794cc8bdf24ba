# Sourced: the course's pair, read from toolchains.txt (its `pin` row and that Go's
# `go` row; src/pins.rs reads the same table, tests/pins.rs fails on a copy):
#   pin_go          the Go's name in the toolchains folder (go1.17)
#   pin_go_version  its release (1.17.1)
#   pin_go_sha256   the SHA-256 of its official linux-amd64 tarball
#   pin_dlv         the dlv release (1.9.1)
_pins_table="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)/toolchains.txt"
read -r pin_go pin_dlv < <(awk '$1 == "pin" {print $2, $3}' "$_pins_table")
read -r pin_go_version pin_go_sha256 < <(awk -v n="$pin_go" '$1 == "go" && $2 == n {print $3, $7}' "$_pins_table")
[ -n "$pin_go" ] && [ -n "$pin_dlv" ] && [ -n "$pin_go_version" ] && [ -n "$pin_go_sha256" ] ||
  { echo "scripts/pins.sh: no pin row, or no go row for it, in $_pins_table" >&2; exit 2; }
