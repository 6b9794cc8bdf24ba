#!/usr/bin/env bash
# The whole default test suite: installs what is needed, then runs every unit and
# integration test with the real go, dlv, gdb and readelf. Heavier suites have their
# own scripts (see README: scripts/matrix.sh, scripts/bench-startup.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
# The course's pair, Go 1.17.1 + dlv 1.9.1, built once into the toolchains cache (cold:
# ~5 min on 2 cores for Go's make.bash; then skipped): tests/pinned.rs runs every lab on it.
bash scripts/fetch-toolchains.sh pinned >/dev/null
. scripts/env.sh
# Style and lints first: a tree that is not rustfmt-clean or has a clippy warning fails
# here, before the long tests.
cargo fmt --check
cargo clippy --quiet --all-targets -- -D warnings
cargo build --quiet --all-targets
cargo test --quiet 2>&1
