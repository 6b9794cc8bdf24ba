#!/usr/bin/env bash
# Quick start: installs what is needed, installs golab on PATH (/usr/local/bin as root,
# else ~/.cargo/bin), and runs the seed's lab on this machine (the host provider).
# Extra arguments go to `golab run startup-trace`. The labs are inside the binary: the
# installed golab works from any folder.
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
echo "quickstart: $(command -v golab) installed; running golab run startup-trace" >&2
cd /
exec golab run startup-trace "$@"
