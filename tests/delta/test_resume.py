"""The C applier streaming old slot -> new slot on the flash model, cut and resumed at a page offset."""

import pytest

from rig.delta import native
from rig.errors import RigError
from rig.image.layouts import LAYOUTS
from rig.sim.flash import Flash, PowerCut

# (layout, profile): each profile on a part that ships it; the page is the erase sector.
TARGETS = [("stm32l073-192k", "p1"), ("esp32-4mb-ota", "p2")]
SLOTS = {"stm32l073-192k": ("slot0", "slot1"), "esp32-4mb-ota": ("ota_0", "ota_1")}


class Board:
    """Two slots of one flash; records how far the new slot is written, as an OTA agent would."""

    def __init__(self, path, layout_name, old):
        layout = LAYOUTS[layout_name]
        self.g = layout.geometry
        self.flash = Flash(path, self.g)
        running, other = (layout.part(name) for name in SLOTS[layout_name])
        self.old_at, self.new_at = running.offset, other.offset
        self.flash.write(self.old_at, self._padded(old))
        self.committed = 0  # first byte of the new image not yet safely in flash
        self.writes = []

    def _padded(self, data):
        tail = -len(data) % self.g.write_size
        return data + bytes([self.g.erased]) * tail

    def read_old(self, offset, length):
        return self.flash.read(self.old_at + offset, length)

    def write_new(self, offset, data):
        self.writes.append(offset)
        self.flash.erase(self.new_at + offset, self.g.sector_size)
        self.flash.write(self.new_at + offset, self._padded(data))
        self.committed = offset + len(data)

    def apply(self, patch, resume_at=0):
        native.apply_stream(patch, self.read_old, self.write_new, self.g.sector_size, resume_at)


@pytest.mark.parametrize("tear", [False, True])
@pytest.mark.parametrize("cut_at", [0.0, 0.5, 0.99])  # fraction of the update's flash operations
@pytest.mark.parametrize("layout, profile", TARGETS)
def test_power_cut_then_resume_rebuilds_the_image(tmp_path, layout, profile, cut_at, tear, blinky_p1, blinky_p2):
    old, new, d = blinky_p1 if profile == "p1" else blinky_p2
    board = Board(tmp_path / "flash.bin", layout, old)
    ops = 2 * -(-len(new) // board.g.sector_size)  # an erase and a write per page
    board.flash.arm_cut(int(cut_at * ops), tear=tear)
    with pytest.raises(PowerCut):
        board.apply(d.data)
    resume_at = board.committed
    board.writes.clear()
    board.apply(d.data, resume_at)
    assert board.flash.read(board.new_at, len(new)) == new
    assert min(board.writes) == resume_at  # nothing below the resume offset is programmed again


def test_wrong_source_is_refused_before_the_first_write(tmp_path, blinky_p2):
    old, new, d = blinky_p2
    board = Board(tmp_path / "flash.bin", "esp32-4mb-ota", new)
    with pytest.raises(RigError, match="wrong source"):
        board.apply(d.data)
    assert board.writes == []
    assert board.flash.is_erased(board.new_at, board.g.sector_size)


def test_resume_offset_must_be_a_page_boundary(tmp_path, blinky_p2):
    old, _, d = blinky_p2
    board = Board(tmp_path / "flash.bin", "esp32-4mb-ota", old)
    with pytest.raises(RigError, match="resume offset"):
        board.apply(d.data, resume_at=100)
    assert board.writes == []


def test_a_result_too_big_for_the_slot_is_refused_up_front(blinky_p2):
    old, new, d = blinky_p2
    writes = []
    with pytest.raises(RigError, match="slot capacity"):
        native.apply_stream(d.data, lambda o, n: old[o : o + n], lambda o, b: writes.append(o), 4096,
                            new_capacity=len(new) - 1)
    assert writes == []
