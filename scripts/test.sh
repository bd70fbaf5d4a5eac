#!/usr/bin/env bash
# The whole test suite: what the README's test command and CI run.
#
# 1. a local Python venv with the peers the tests compare against (h5py, healpy, mortie,
#    zarr, xarray, xdggs, pyarrow, duckdb, moto's S3 server);
# 2. every Rust test of the workspace (unit tests beside the code, integration tests in
#    tests/), through cargo-nextest when it is installed, then the doc tests.
# Tests start the servers they need (an S3-compatible server on 127.0.0.1) themselves.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
# One target dir outside the clone, so a fresh clone reuses earlier builds.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/magg-target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

echo "== python peers (.venv)"
bash scripts/setup-venv.sh

echo "== rust tests"
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --no-fail-fast
else
  cargo test --workspace --no-fail-fast
fi

echo "== doc tests"
cargo test --workspace --doc
