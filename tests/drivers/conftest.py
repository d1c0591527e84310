"""A private virtual lab for driver and bench-verb tests: the shipped virtual rack, ports chosen by the lab.

Each lab gets its own runtime dir (registry, leases) so labs of parallel test runs never meet, and
it is started and stopped with `rig lab up|down`, as a user does.
"""

from pathlib import Path

import pytest

from tests.labs import PrivateLab

REPO = Path(__file__).resolve().parents[2]


class Lab(PrivateLab):
    """The whole virtual rack in a lab of its own."""

    def __init__(self, root: Path):
        super().__init__(root, name="rack", board_ids=False)


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
    with lab.running(seen_here=True):
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
