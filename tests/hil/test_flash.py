"""Every board's flasher writes what it is given and reads the same bytes back."""

import os

import pytest

from rig.errors import RigError
from rig.image.layouts import LAYOUTS


def test_flash_read_back(board, scratch):
    offset, _ = scratch
    data = os.urandom(6 * 1024 + 100)  # not a whole number of sectors: the tail must survive too
    board.flash(data, offset)
    assert board.read_flash(offset, len(data)) == data
    assert board.firmware_sha256 is not None


def test_verify_names_the_first_wrong_byte(board, scratch):
    offset, _ = scratch
    data = os.urandom(4096)
    board.flash(data, offset)
    changed = bytearray(data)
    changed[1000] ^= 0xFF
    board.target.activate(board.flasher)
    with pytest.raises(RigError) as exc:
        board.flasher.verify(bytes(changed), offset)
    assert "verify failed" in str(exc.value)


def test_a_verify_error_in_a_key_area_quotes_no_flash_bytes(board):
    """A wrong byte in the identity partition (a device's keys) is reported by its offset only: the
    message ends up in logs and provisioning records, so neither the byte found nor the one
    expected may be in it."""
    layout = LAYOUTS[board.board.flash_layout]
    part = layout.part("identity")
    assert layout.secret_at(part.offset) == part
    data = bytes([0x5A]) * 4096
    board.flash(data, part.offset)
    changed = bytearray(data)
    changed[1000] = 0xA5
    try:
        board.target.activate(board.flasher)
        with pytest.raises(RigError) as exc:
            board.flasher.verify(bytes(changed), part.offset)
        message = str(exc.value)
        assert "verify failed" in message and "5a" not in message.lower() and "a5" not in message.lower()
    finally:
        board.flash(bytes([layout.geometry.erased]) * len(data), part.offset)  # as a fresh board's


def test_unchanged_image_is_not_written_again(board, scratch):
    offset, _ = scratch
    regions = [(offset, os.urandom(2048)), (offset + 0x4000, os.urandom(100))]
    assert board.ensure(regions) is True
    assert board.ensure(regions) is False
    assert board.read_flash(offset + 0x4000, 100) == regions[1][1]
