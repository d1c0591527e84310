"""The board runner's power semantics, seen in the flash file as a probe would read the part."""

import time

from rig.image.layouts import LAYOUTS
from rig.sim.board import Board

LAYOUT = LAYOUTS["stm32l073-192k"]  # erased 0x00, 4-byte words


def write_forever(ctx):
    """A firmware that programs word after word and never looks at the clock or the console."""
    for offset in range(0, LAYOUT.geometry.size, 4):
        ctx.flash.write(offset, b"\xa5\xa5\xa5\xa5")


def test_power_off_stops_a_flash_write_loop_at_once(tmp_path):
    board = Board("l0", "stm32l0", LAYOUT, tmp_path, write_forever)
    flash_file = tmp_path / "flash.bin"
    try:
        board.set_power(True)
        while flash_file.read_bytes()[:4] != b"\xa5" * 4:
            time.sleep(0.001)
        board.set_power(False)
        after_cut = flash_file.read_bytes()
        time.sleep(0.2)
        assert flash_file.read_bytes() == after_cut  # nothing programmed once the power was gone
        assert after_cut.endswith(b"\x00" * 4)  # and the loop was cut short, not finished
    finally:
        board.close()
