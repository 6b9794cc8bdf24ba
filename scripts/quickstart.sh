#!/usr/bin/env bash
# Quick start: installs what is needed, installs golab on PATH (/usr/local/bin as root,
# else ~/.cargo/bin), builds the course's pinned Go 1.17.1 + dlv 1.9.1 into the toolchains
# folder (scripts/fetch-toolchains.sh pinned: offline from ../shared/toolchains, else the
# official downloads; about 5 minutes once, then skipped), and runs the seed's lab with
# them on this machine (the host provider): `golab run startup-trace --go pinned`.
# Extra arguments go to golab run (`--go 1.19`, `--goroot DIR` or `--dlv PATH` replace the
# pinned pair). The labs are inside the binary: the installed golab
# works from any folder.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
. scripts/env.sh
if [ "$(id -u)" = 0 ]; then
  cargo install --quiet --locked --force --path . --root /usr/local
else
  cargo install --quiet --locked --force --path .
fi
if ! command -v golab >/dev/null 2>&1; then
  echo "quickstart: golab is in ~/.cargo/bin, which is not on PATH: add it (export PATH=\"\$HOME/.cargo/bin:\$PATH\")" >&2
  export PATH="$HOME/.cargo/bin:$PATH"
fi
bash scripts/fetch-toolchains.sh pinned >/dev/null
case " $* " in *" --go"*|*" --goroot"*|*" --dlv"*) ;; *) set -- --go pinned "$@" ;; esac
echo "quickstart: $(command -v golab) installed; running golab run startup-trace $*" >&2
cd /
exec golab run startup-trace "$@"
