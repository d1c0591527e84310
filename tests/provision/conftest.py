"""The provisioning tests' private labs, one per test module: the station's copy of the virtual rack
(tests/provision/station_lab.py) and a rack of ESP32 boards (tests/provision/esp32_lab.py)."""

import contextlib
import os
import subprocess

import pytest

from tests.labs import bound_rack, running_lab
from tests.provision.esp32_lab import RIG, esp32_rack
from tests.provision.station_lab import StationLab


@pytest.fixture(scope="module")
def station_lab(tmp_path_factory):
    lab = StationLab(tmp_path_factory.mktemp("station-lab"))
    with lab.running():
        yield lab


@contextlib.contextmanager
def esp32_lab_up(root, env: dict[str, str] | None = None):
    """A private lab of ESP32 boards in folder `root` (the daemon inherits `env`, e.g. a defect
    switch of rig/sim/broken.py); yields its rack (rig.lab.Rack) as the lab bound it."""
    root.mkdir(parents=True, exist_ok=True)
    rack = esp32_rack(root / "esp32-lab.yaml")
    env = dict(os.environ, **(env or {}), RIG_RUNTIME_DIR=str(root / "runtime"))

    def rig(*args):
        return subprocess.run([RIG, *map(str, args)], cwd=root, env=env, capture_output=True, text=True, timeout=120)

    with running_lab(rig, rack, root / "state"):
        yield bound_rack(rack, env["RIG_RUNTIME_DIR"])


@pytest.fixture(scope="module")
def esp32_lab(tmp_path_factory):
    """The running private lab's rack (rig.lab.Rack), as the lab bound it."""
    with esp32_lab_up(tmp_path_factory.mktemp("esp32-lab")) as rack:
        yield rack
