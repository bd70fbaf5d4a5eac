#!/usr/bin/env bash
# Create ./.venv with the Python peers the tests use (h5py writes HDF5 conformance
# fixtures, healpy/mortie give golden HEALPix vectors, zarr/xarray/xdggs open our stores,
# pyarrow/duckdb read our Parquet). Idempotent: a stamp of the requirements file skips
# the install when nothing changed.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
venv="$root/.venv"
req="$root/tests/python/requirements.txt"
stamp="$venv/.requirements.sha"
want=$(sha256sum "$req" | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi
python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --upgrade pip
"$venv/bin/pip" install --quiet -r "$req"
echo "$want" > "$stamp"
