#!/usr/bin/env bash
# Builds and installs the Python package into its own virtual environment and runs its tests
# against the release CLI (which some tests run side by side). Run from anywhere:
#   bash python/run-tests.sh
# Needs python3 (3.9 or newer, with venv) and the release CLI (`cargo build --release --workspace`).
set -euo pipefail
cd "$(dirname "$0")/.."

venv=target/python-venv
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --upgrade pip
# The package (built from source by maturin with the local Rust toolchain) and what its tests use.
"$venv/bin/python" -m pip install --quiet "./python[test]"
BOOTFLOW_CLI="$PWD/target/release/bootflow" "$venv/bin/python" -m pytest -q python/tests
