#!/usr/bin/env bash
# The whole default test suite: installs what is needed, then runs every unit and
# integration test with the real go, dlv, gdb and readelf. Heavier suites have their
# own scripts (see README: scripts/matrix.sh, scripts/bench-startup.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
. scripts/env.sh
# Style and lints first: a tree that is not rustfmt-clean or has a clippy warning fails
# here, before the long tests.
cargo fmt --check
cargo clippy --quiet --all-targets -- -D warnings
cargo build --quiet --all-targets
cargo test --quiet 2>&1
