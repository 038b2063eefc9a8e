import os
import pathlib
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(pathlib.Path(__file__).parent))


@pytest.fixture(scope="session")
def root() -> pathlib.Path:
    return ROOT


@pytest.fixture(scope="session")
def cli() -> pathlib.Path:
    """The release CLI built beside this package (`cargo build --release --workspace`)."""
    path = pathlib.Path(os.environ.get("BOOTFLOW_CLI", ROOT / "target" / "release" / "bootflow"))
    assert path.exists(), f"{path} missing: run `cargo build --release --workspace` first (or set BOOTFLOW_CLI)"
    return path
