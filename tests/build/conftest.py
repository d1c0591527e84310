"""One full `rig build` per test session, shared by the build tests (it takes a few seconds)."""

import json
import subprocess
import sys

import pytest


@pytest.fixture(scope="session")
def built(tmp_path_factory):
    """The output directory of `rig build --version 1.2.3+4`, run as a user runs it."""
    out = tmp_path_factory.mktemp("firmware")
    proc = subprocess.run([sys.executable, "-m", "rig", "build", "--out", str(out), "--version", "1.2.3+4"],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return out, json.loads((out / "manifest.json").read_text()), proc.stdout
