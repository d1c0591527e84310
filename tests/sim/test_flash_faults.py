"""The lab's flash-fault instruments: a cut counted on one region's operations, a bit lost in a write.

These place faults where a bench would need a logic analyser with an address filter (rig.sim.flash);
the campaign uses them through the control endpoint (rig.sim.control, rig.ota.instruments).
"""

import pytest

from rig.image.layouts import ESP32, STM32H7
from rig.sim.flash import Flash, PowerCut


def test_a_region_cut_counts_only_the_operations_that_touch_the_region(tmp_path):
    flash = Flash(tmp_path / "f.bin", ESP32)
    flash.arm_cut(1, region=(0xD000, 0x2000))
    flash.erase(0x10000, 0x1000)  # elsewhere: not counted
    flash.erase(0xD000, 0x1000)  # the region's first operation completes
    flash.write(0x20000, b"\x00" * 4)
    with pytest.raises(PowerCut):
        flash.write(0xD000, b"\x01\x02\x03\x04")  # its second is cut before it reaches the cells
    assert flash.read(0xD000, 4) == b"\xff" * 4


def test_a_torn_region_cut_leaves_half_of_the_operation(tmp_path):
    flash = Flash(tmp_path / "f.bin", ESP32)
    flash.arm_cut(0, tear=True, region=(0xD000, 0x2000))
    with pytest.raises(PowerCut):
        flash.write(0xD000, bytes(range(32)))
    assert flash.read(0xD000, 32) == bytes(range(16)) + b"\xff" * 16


def test_a_flip_changes_one_bit_of_the_armed_write_in_the_region(tmp_path):
    flash = Flash(tmp_path / "f.bin", STM32H7)
    flash.arm_flip(1, region=(0x100000, 0x60000))
    data = b"\x5a" * 64
    flash.write(0x0, data)  # outside the region
    flash.write(0x100000, data)  # the region's write 0 passes
    flash.write(0x100040, data)  # write 1 has a bit flipped
    flash.write(0x100080, data)  # and only that one
    assert flash.read(0x0, 64) == data and flash.read(0x100000, 64) == data and flash.read(0x100080, 64) == data
    damaged = flash.read(0x100040, 64)
    assert sum(bin(a ^ b).count("1") for a, b in zip(damaged, data, strict=True)) == 1


def test_a_flip_on_nor_flash_is_anded_into_the_cells_like_any_data(tmp_path):
    flash = Flash(tmp_path / "f.bin", ESP32)
    flash.arm_flip(0)
    flash.write(0x1000, b"\x00" * 8)
    assert flash.read(0x1000, 8) == b"\x00" * 4 + b"\x01" + b"\x00" * 3
