"""Shared fixtures: the loaded default model, and the CLI binary to compare with."""

import os
import subprocess
from pathlib import Path

import pytest

import plugen

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def model():
    """The bundled default model on the CPU (the CLI's device in these tests)."""
    return plugen.Model(device="cpu")


@pytest.fixture(scope="session")
def cli():
    """Runs the `plugen` binary (``$PLUGEN_BIN``, else target/release/plugen) on the CPU."""
    binary = Path(os.environ.get("PLUGEN_BIN", REPO / "target" / "release" / "plugen"))
    if not binary.is_file():
        pytest.fail(f"{binary}: no plugen binary (cargo build --release, or set PLUGEN_BIN)")

    def run(*args):
        out = subprocess.run(
            [str(binary), *map(str, args)], capture_output=True, text=True, check=False
        )
        assert out.returncode == 0, f"plugen {' '.join(map(str, args))}:\n{out.stderr}"
        return out.stdout

    return run
