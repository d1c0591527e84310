"""STM32 boards through their probe and SMP: program MCUboot and an image over SWD, boot it, then
update it over MCUmgr (upload, test, reset) and see the new version boot and confirm itself; an
image the board refuses is named as smpmgr names the error."""

import cbor2
import pytest
from smp.header import OP, Header, Version
from smp.image_management import ImageManagementErrorV1, ImageManagementErrorV2

from rig.drivers.smp import error_text
from rig.errors import HandoverRefused, RigError
from rig.image.layouts import LAYOUTS
from rig.ota import releases
from rig.ota.instruments import LabInstruments
from rig.ota.targets import McubootTarget, Plan

BOARDS = ["stm32h7-1", "stm32l0-1"]


@pytest.mark.parametrize("board_id", BOARDS)
def test_update_over_smp_boots_the_new_image(booted, signer, board_id):
    board = booted(board_id)
    board.target.activate(board.smp)
    assert [(s.slot, s.version, s.active) for s in board.smp.image_list()] == [(0, "1.0.0", True)]
    image = releases.stm32_image(board.board.variant, "1.1.0", signer)
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


def test_a_refused_image_names_the_group_and_the_error(booted, signer, tmp_path):
    # The corrupt image of `rig demo`: one flipped bit of its code, so the firmware's image hash
    # check refuses to mark it for test (docs/firmware.md). Its faults column reads
    # 'hand-over refused: <the hand-over's reason>'; the log has the request too.
    board = booted("stm32l0-1")
    image = bytearray(releases.stm32_image(board.board.variant, "1.1.0", signer))
    image[len(image) // 2] ^= 0x01
    with pytest.raises(HandoverRefused) as refused:
        McubootTarget(board, b"", tmp_path).start(bytes(image), Plan())
    assert str(refused.value) == "IMG_MGMT INVALID_HASH"
    assert str(refused.value.__cause__) == "SMP: ImageStatesWrite refused by the board: IMG_MGMT INVALID_HASH"


def test_an_image_changed_on_its_way_to_flash_is_named_by_the_board_s_match(booted, signer, lab, tmp_path):
    # 'a bit lost on its way to flash': the board takes every chunk, then its last reply's match is
    # false. The faults column read smpclient's complaint with the whole reply's repr.
    board = booted("stm32l0-1")
    slot1 = LAYOUTS[board.board.flash_layout].part("slot1")
    LabInstruments(lab.rack).arm_flip("stm32l0-1", 20, (slot1.offset, slot1.size))
    image = releases.stm32_image(board.board.variant, "1.1.0", signer)
    with pytest.raises(HandoverRefused) as refused:
        McubootTarget(board, b"", tmp_path).start(image, Plan())
    assert str(refused.value) == "upload match=false: the image the board wrote has another SHA-256"


def _reply(cls, version, body: dict):
    data = cbor2.dumps(body)
    return cls.loads(bytes(Header(op=OP.WRITE_RSP, version=version, flags=0, length=len(data), group_id=1,
                                  sequence=0, command_id=0)) + data)


def test_smp_error_text_v1_with_its_reason_and_other_complaints_as_they_are():
    assert error_text(_reply(ImageManagementErrorV2, Version.V2, {"err": {"group": 1, "rc": 9}})) == \
        "IMG_MGMT NO_FREE_SLOT"
    assert error_text(_reply(ImageManagementErrorV1, Version.V1, {"rc": 3, "rsn": "off past the slot"})) == \
        "MGMT EINVAL: off past the slot"
    assert error_text("Upload failed, server reported mismatched SHA256") == \
        "Upload failed, server reported mismatched SHA256"
