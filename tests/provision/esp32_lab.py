"""A private virtual lab of ESP32 boards for the ESP32 provisioning tests.

Provisioning burns eFuses (one-way), so these boards are never the shared rack's: the lab has
its own rack file (ports chosen by the lab), state folder (fresh eFuses every session) and runtime folder, and is
started and stopped with `rig lab up|down` as a user does. Fixtures live here and are imported by
the test module (pytest collects them by import).
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.labs import bound_rack

RIG = str(Path(sys.executable).parent / "rig")
BOARDS = ("fresh", "garbage", "conflict", "nodl")


def esp32_rack(path: Path) -> Path:
    """A rack file of len(BOARDS) virtual ESP32 boards on one power switch."""
    targets = {}
    for i, name in enumerate(BOARDS):
        targets[f"esp32-{name}"] = {"resources": {
            "RigBoard": {"variant": "esp32", "virtual": True},
            "NetworkSerialPort": {"host": "127.0.0.1", "port": 0, "speed": 115200},
            "NetworkPowerPort": {"model": "simplerest", "index": i,
                                 "host": "http://127.0.0.1:0/outlet/{index}/{value}"},
        }}
    path.write_text(yaml.safe_dump({"imports": ["rig.lab.resources"], "targets": targets}, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def esp32_lab(tmp_path_factory):
    """The running private lab's rack (rig.lab.Rack), as the lab bound it."""
    root = tmp_path_factory.mktemp("esp32-lab")
    rack = esp32_rack(root / "esp32-lab.yaml")
    env = dict(os.environ, RIG_RUNTIME_DIR=str(root / "runtime"))

    def rig(*args):
        return subprocess.run([RIG, *map(str, args)], cwd=root, env=env, capture_output=True, text=True, timeout=120)

    up = rig("lab", "up", "--rack", rack, "--state", root / "state")
    assert up.returncode == 0, up.stderr
    try:
        yield bound_rack(rack, env["RIG_RUNTIME_DIR"])
    finally:
        rig("lab", "down", "--rack", rack)
