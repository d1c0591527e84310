"""pyocd, unchanged, against the virtual STM32 boards: list, load, erase, cmd, flash rules, RDP."""

import os
import re
import struct

import pytest
from pyocd.core import exceptions
from pyocd.core.helpers import ConnectHelper

from tests.sim.stm32.conftest import VARIANTS, variants


@pytest.fixture(params=VARIANTS)
def vb(request, virtual_stm32):
    return virtual_stm32(request.param)


def test_pyocd_list_shows_the_virtual_probes_and_their_targets(virtual_stm32):
    boards = [virtual_stm32(v) for v in VARIANTS]
    out = boards[0].pyocd("list").stdout
    for vb in boards:
        assert vb.uid in out
        assert vb.target in out


def test_load_read_back_and_sector_erase(vb):
    g = vb.geometry
    path = vb.root / "fill.bin"
    data = os.urandom(2 * g.sector_size)
    path.write_bytes(data)
    start = vb.addr("slot1")  # H7: slot1 is 3 sectors, so both fit
    vb.pyocd("load", "-u", vb.uid, "-t", vb.target, "--base-address", hex(start), path)
    assert vb.read_back(start, len(data)) == data
    vb.pyocd("erase", "-u", vb.uid, "-t", vb.target, "-s", f"0x{start:x}+0x{g.sector_size:x}")
    # The erased sector reads as the part's erased value (0x00 on the L0); the next one is intact.
    assert vb.read_back(start, len(data)) == bytes([g.erased]) * g.sector_size + data[g.sector_size :]


@pytest.mark.nightly
def test_chip_erase(vb):
    """`pyocd erase --chip`: on the H7 through its flash controller's bank erase, on the L0 sector by
    sector; either way the flash reads the part's erased value (0x00 on the L0)."""
    path = vb.root / "fill.bin"
    path.write_bytes(os.urandom(1024))
    vb.pyocd("load", "-u", vb.uid, "-t", vb.target, "--base-address", hex(vb.addr("slot0")), path)
    vb.pyocd("erase", "-u", vb.uid, "-t", vb.target, "--chip")
    assert vb.read_back(vb.addr("slot0"), 1024) == bytes([vb.geometry.erased]) * 1024


@pytest.mark.parametrize("variant", variants("stm32h7"))
def test_cmd_memory_reset_and_halt(virtual_stm32, variant):
    vb = virtual_stm32(variant)
    # A vector table whose reset handler pyocd must find in pc after `reset halt`.
    ram = 0x2000_0000
    sp, handler = ram + 0x1000, vb.geometry.base + 0x101
    path = vb.root / "vectors.bin"
    path.write_bytes(struct.pack("<II", sp, handler))
    vb.pyocd("load", "-u", vb.uid, "-t", vb.target, "--base-address", hex(vb.geometry.base), path)
    out = vb.cmd("reset halt", "reg pc", "reg sp", f"write32 0x{ram + 0x800:x} 0xdeadbeef",
                 f"read32 0x{ram + 0x800:x}").stdout
    assert f"pc = 0x{handler & ~1:08x}" in out
    assert f"sp = 0x{sp:08x}" in out
    assert "deadbeef" in out
    # Letting the core run boots the chip: no bootloader in the mcuboot partition here, so the
    # vector table is all there is; the halt after a reset shows the core stopped again.
    out = vb.cmd("reset", "halt", "status").stdout
    assert "Halted" in out


def test_misaligned_and_rewritten_units_are_flash_errors(vb):
    """pyocd's own flash API - the flash algorithm's ProgramPage, as `pyocd load` drives it."""
    unit = vb.geometry.write_size
    data = os.urandom(unit)
    with ConnectHelper.session_with_chosen_probe(unique_id=vb.uid, target_override=vb.target,
                                                 connect_mode="halt") as session:
        flash = session.target.memory_map.get_region_for_address(vb.addr("slot1")).flash
        flash.init(flash.Operation.PROGRAM)
        with pytest.raises(exceptions.FlashProgramFailure):
            flash.program_page(vb.addr("slot1", unit // 2), list(os.urandom(unit)))
        flash.program_page(vb.addr("slot1"), list(data))
        with pytest.raises(exceptions.FlashProgramFailure):
            flash.program_page(vb.addr("slot1"), list(os.urandom(unit)))
        flash.cleanup()
    assert vb.read_back(vb.addr("slot1"), unit) == data


H7_FLASH = 0x5200_2000
H7_OPT_UNLOCK = (f"write32 0x{H7_FLASH + 0x08:x} 0x08192a3b", f"write32 0x{H7_FLASH + 0x08:x} 0x4c5d6e7f")


def _h7_set_rdp(vb, rdp: int) -> None:
    """RDP through the option bytes, as RM0433 describes: unlock, OPTSR_PRG, OPTSTART."""
    optsr = int(re.search(r"[0-9a-f]{8}:\s+([0-9a-f]{8})", vb.cmd(f"read32 0x{H7_FLASH + 0x20:x}").stdout)[1], 16)
    vb.cmd(*H7_OPT_UNLOCK, f"write32 0x{H7_FLASH + 0x20:x} 0x{optsr & ~0xFF00 | rdp << 8:x}",
           f"write32 0x{H7_FLASH + 0x18:x} 0x2")


def test_h7_rdp1_blocks_flash_reads_and_regression_erases(virtual_stm32):
    vb = virtual_stm32("stm32h7")
    path = vb.root / "secret.bin"
    path.write_bytes(os.urandom(256))
    vb.pyocd("load", "-u", vb.uid, "-t", vb.target, "--base-address", hex(vb.addr("slot0")), path)
    _h7_set_rdp(vb, 0xBB)
    failed = vb.cmd(f"read32 0x{vb.addr('slot0'):x}", check=False).stdout
    assert "Target is locked" in failed  # pyocd's stm32h743xx reads RDP from FLASH_OPTSR_PRG
    assert "memory transfer failed" in failed
    _h7_set_rdp(vb, 0xAA)  # back to level 0: the part mass-erases the flash first
    assert vb.read_back(vb.addr("slot0"), 256) == b"\xff" * 256


L0_FLASH = 0x4002_2000
L0_OPTION_BYTES = 0x1FF8_0000


def _l0_set_rdp(vb, rdp: int) -> None:
    """RDP through the option bytes, as RM0367 describes: PEKEYR, OPTKEYR, the RDP word, OBL_LAUNCH."""
    vb.cmd(f"write32 0x{L0_FLASH + 0x0C:x} 0x89abcdef", f"write32 0x{L0_FLASH + 0x0C:x} 0x02030405",
           f"write32 0x{L0_FLASH + 0x14:x} 0xfbead9c8", f"write32 0x{L0_FLASH + 0x14:x} 0x24252627",
           f"write32 0x{L0_OPTION_BYTES:x} 0x{(rdp ^ 0xFF) << 16 | rdp:08x}",
           f"write32 0x{L0_FLASH + 0x04:x} 0x40000")


@pytest.mark.nightly  # the H7 one runs by default; both drive the same OptionBytes model
def test_l0_rdp1_blocks_flash_reads_and_regression_erases(virtual_stm32):
    vb = virtual_stm32("stm32l0")
    path = vb.root / "secret.bin"
    path.write_bytes(os.urandom(256))
    vb.pyocd("load", "-u", vb.uid, "-t", vb.target, "--base-address", hex(vb.addr("slot0")), path)
    _l0_set_rdp(vb, 0xBB)
    out = vb.cmd(f"read32 0x{L0_FLASH + 0x1C:x}", f"read32 0x{vb.addr('slot0'):x}", check=False).stdout
    assert re.search(r"4002201c:\s+[0-9a-f]{6}bb", out)  # FLASH_OPTR shows the loaded RDP byte
    assert "memory transfer failed" in out
    _l0_set_rdp(vb, 0xAA)
    assert vb.read_back(vb.addr("slot0"), 256) == bytes(256)  # mass-erased to the L0's 0x00
