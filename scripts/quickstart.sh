#!/usr/bin/env bash
# Quick start: installs what is needed, builds golab, and runs the seed's lab on this
# machine (the host provider). Extra arguments go to `golab run startup-trace`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
. scripts/env.sh
cargo build --release --quiet
exec ./target/release/golab run startup-trace "$@"
