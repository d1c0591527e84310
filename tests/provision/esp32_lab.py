"""A private virtual lab of ESP32 boards for the ESP32 provisioning tests.

Provisioning burns eFuses (one-way), so these boards are never the shared rack's: the lab has
its own rack file (ports chosen by the lab), state folder (fresh eFuses every session) and runtime folder, and is
started and stopped with `rig lab up|down` as a user does (fixture `esp32_lab`, one lab per test
module, in tests/provision/conftest.py).
"""

import sys
from pathlib import Path

import yaml

RIG = str(Path(sys.executable).parent / "rig")
BOARDS = ("fresh", "garbage", "conflict", "nodl", "crypt")


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
