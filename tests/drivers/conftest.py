"""A private virtual lab for driver and bench-verb tests: the shipped virtual rack, ports chosen by the lab.

Each lab gets its own runtime dir (registry, leases) so labs of parallel test runs never meet, and
it is started and stopped with `rig lab up|down`, as a user does.
"""

from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from rig.image.keys import load_signer
from rig.image.layouts import LAYOUTS
from rig.image.trailer import Trailer
from rig.ota import releases
from rig.sim.stm32 import vmcuboot  # the virtual rack's bootloader binary; a real rack flashes MCUboot's
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


@pytest.fixture(scope="session")
def signer(tmp_path_factory):
    path = tmp_path_factory.mktemp("key") / "ec.pem"
    path.write_bytes(ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return load_signer(path)


@pytest.fixture
def booted(drivers_of, signer):
    """drivers_of(board) with MCUboot and rig's reference firmware 1.0.0, signed, programmed over SWD,
    booted from power-on."""

    def boot(board_id):
        board = drivers_of(board_id)
        layout = LAYOUTS[board.board.flash_layout]
        slot0 = layout.part("slot0")
        # Erase both slots' trailers (status area to the end), so no swap of an earlier test resumes.
        board.target.activate(board.swd)
        for name in ("slot0", "slot1"):
            part, trailer = layout.part(name), Trailer.for_layout(layout, name)
            start = trailer.erase_start(layout.geometry.sector_size)
            board.swd.erase(part.offset + start, part.size - start)
        board.write_regions([(layout.part("mcuboot").offset, vmcuboot.build(layout, [signer.public])),
                             (slot0.offset, releases.stm32_image(board.board.variant, "1.0.0", signer))])
        assert board.strategy.power_on_to_app()["version"] == "1.0.0+0"
        return board

    return boot
