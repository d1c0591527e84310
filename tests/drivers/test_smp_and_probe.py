"""STM32 boards through their probe and SMP: program MCUboot and an image over SWD, boot it, then
update it over MCUmgr (upload, test, reset) and see the new version boot and confirm itself."""

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from rig.errors import RigError
from rig.image.keys import load_signer
from rig.image.layouts import LAYOUTS
from rig.image.trailer import Trailer
from rig.ota import releases
from rig.sim.stm32 import vmcuboot  # the virtual rack's bootloader binary; a real rack flashes MCUboot's

BOARDS = ["stm32h7-1", "stm32l0-1"]


@pytest.fixture(scope="module")
def signer(tmp_path_factory):
    path = tmp_path_factory.mktemp("key") / "ec.pem"
    path.write_bytes(ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return load_signer(path)


def signed_app(signer, variant: str, version: str) -> bytes:
    """rig's reference firmware at `version`, signed: what the board executes."""
    return releases.stm32_image(variant, version, signer)


@pytest.fixture
def booted(drivers_of, signer):
    """drivers_of(board) with MCUboot and app 1.0.0 programmed over SWD, booted from power-on."""

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
                             (slot0.offset, signed_app(signer, board.board.variant, "1.0.0"))])
        assert board.strategy.power_on_to_app()["version"] == "1.0.0+0"
        return board

    return boot


@pytest.mark.parametrize("board_id", BOARDS)
def test_update_over_smp_boots_the_new_image(booted, signer, board_id):
    board = booted(board_id)
    board.target.activate(board.smp)
    assert [(s.slot, s.version, s.active) for s in board.smp.image_list()] == [(0, "1.0.0", True)]
    image = signed_app(signer, board.board.variant, "1.1.0")
    progress = []
    image_hash = board.smp.upload(image, progress=lambda done, total: progress.append((done, total)))
    assert progress[-1] == (len(image), len(image))
    slots = board.smp.image_list()
    assert [(s.slot, s.version, s.hash) for s in slots][1] == (1, "1.1.0", image_hash)
    board.smp.test(image_hash)
    board.smp.reset()
    board.console.expect_line(r"rig: boot variant=\w+ version=1\.1\.0\+0 slot=0 reset=software", timeout=20)
    board.console.expect_line("rig: confirmed", timeout=10)
    assert [(s.slot, s.version, s.confirmed) for s in board.smp.image_list()][0] == (0, "1.1.0", True)


@pytest.mark.parametrize("board_id", BOARDS)
def test_probe_reset_and_readout_protection(booted, board_id):
    board = booted(board_id)
    board.swd.reset()
    board.console.expect_line(f"rig: boot variant={board.board.variant}", timeout=10)
    layout = LAYOUTS[board.board.flash_layout]
    slot0 = layout.part("slot0")
    board.swd.set_rdp_level(1)
    assert board.swd.read_rdp_level() == 1
    with pytest.raises(RigError):  # level 1: the debug port may not read flash any more
        board.swd.read(slot0.offset, 32)
    # Back to level 0: the part mass-erases its flash on the way, as silicon does.
    board.swd.set_rdp_level(0)
    assert board.swd.read_rdp_level() == 0
    assert board.swd.read(slot0.offset, 32) == bytes([layout.geometry.erased]) * 32
