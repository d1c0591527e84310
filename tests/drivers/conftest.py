"""A private virtual lab for driver and bench-verb tests: the shipped virtual rack, ports chosen by the lab.

Each lab gets its own runtime dir (registry, leases) so labs of parallel test runs never meet, and
it is started and stopped with `rig lab up|down`, as a user does.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.labs import lab_rack, running_lab

REPO = Path(__file__).resolve().parents[2]
RIG = str(Path(sys.executable).parent / "rig")


class Lab:
    def __init__(self, root: Path):
        self.root = root
        self.rack = lab_rack(root, name="rack", board_ids=False)
        self.env = dict(os.environ, RIG_RUNTIME_DIR=str(root / "runtime"))

    def rig(self, *args, timeout: float = 120) -> subprocess.CompletedProcess:
        return subprocess.run([RIG, *map(str, args)], cwd=self.root, env=self.env, capture_output=True,
                              text=True, timeout=timeout)


@pytest.fixture
def idle_lab(tmp_path):
    """A private rack file whose lab is not running (for code that must start it itself)."""
    lab = Lab(tmp_path)
    yield lab
    if lab.rig("lab", "status", "--json", "--rack", lab.rack).stdout.count('"running": true'):
        lab.rig("lab", "down", "--rack", lab.rack)  # only if the code under test failed to stop it


@pytest.fixture(scope="session")
def lab(tmp_path_factory):
    """A running private lab; this process sees it (pyocd's probe plugin reads its registry)."""
    lab = Lab(tmp_path_factory.mktemp("lab"))
    with running_lab(lab.rig, lab.rack, lab.root / "state", runtime_dir=lab.env["RIG_RUNTIME_DIR"]):
        yield lab


@pytest.fixture(scope="session")
def rack(lab):
    """The lab's rack as it bound it (real ports): boards' consoles are what leases name."""
    from rig.sim.registry import load_live_rack

    return load_live_rack(lab.rack)


@pytest.fixture
def drivers_of(rack):
    """drivers_of(board_id): the board's bound drivers; connections closed after the test."""
    from rig.drivers import open_board

    opened = []

    def get(board_id):
        opened.append(open_board(rack.board(board_id)))
        return opened[-1]

    yield get
    for drivers in opened:
        drivers.close()
