"""The built STM32 binaries, signed as MCUboot images and executed from slot0 on an emulated core
(tests/build/cortexm.py): console lines per docs/console.md, reset causes, the boot counter, fault
modes, the watchdog, and image_ok programmed through the real flash controller sequence - read
back from flash. `imgtool verify` accepts the signed builds."""

import re
import subprocess
import sys

import cortexm  # tests/build/cortexm.py, beside this file
import pytest

from rig.image import appdesc, mcuboot
from rig.image.trailer import Trailer, apply
from rig.variants import facts

HEADER = 0x200
BOOT = re.compile(r"rig: boot variant=(\S+) version=(\S+) slot=0 reset=(\S+) boots=(\d+) fault=(\S+)$")


def make_board(built, signer, variant, fault, trailer_magic=True):
    out, _, _ = built
    layout = facts(variant).layout
    g = layout.geometry
    slot0 = layout.part("slot0")
    trailer = Trailer.for_layout(layout, "slot0")
    flash = bytearray([g.erased]) * g.size
    image = mcuboot.sign((out / f"rig-{variant}-{fault}.bin").read_bytes(), signer, "1.2.3+4", header_size=HEADER)
    flash[slot0.offset : slot0.offset + len(image)] = image
    if trailer_magic:  # as MCUboot leaves a test upgrade it just swapped in: magic set, image_ok unset
        slot = bytearray(flash[slot0.offset : slot0.offset + slot0.size])
        flash[slot0.offset : slot0.offset + slot0.size] = apply(slot, [trailer.write_magic()])
    board = cortexm.Board(variant, flash, str(out / f"rig-{variant}-{fault}.elf"),
                          g.base + slot0.offset + HEADER)
    return board, g.base + slot0.offset + trailer.image_ok_off, trailer.write_image_ok()[1]


@pytest.mark.parametrize("variant", ["stm32h7", "stm32l0"])
def test_good_image_boots_confirms_and_counts_boots(built, signer, variant):
    board, image_ok_addr, image_ok_unit = make_board(built, signer, variant, "none")
    assert board.boot("power-on") == "running"
    lines = board.lines()
    assert BOOT.match(lines[0]).groups() == (variant, "1.2.3+4", "power-on", "1", "none")
    assert lines[1:4] == ["rig: health ok", "rig: confirmed", "rig: alive uptime=1"]
    assert board.refused == []
    assert board.programmed == [(image_ok_addr, image_ok_unit)]
    offset = image_ok_addr - facts(variant).layout.geometry.base
    assert bytes(board.flash[offset : offset + len(image_ok_unit)]) == image_ok_unit
    assert board.locked  # the flash controller relocked, as a probe reading FLASH_CR/PECR would see

    # A software reset: RAM kept, so the counter goes on; image_ok is already set, nothing written.
    board.console = ""
    board.programmed.clear()
    assert board.boot("software") == "running"
    assert BOOT.match(board.lines()[0]).group(3, 4) == ("software", "2")
    assert "rig: confirmed" in board.lines() and board.programmed == []

    board.console = ""
    board.boot("power-on")  # a power cycle loses RAM: counting starts again
    assert BOOT.match(board.lines()[0]).group(3, 4) == ("power-on", "1")


@pytest.mark.parametrize("variant", ["stm32h7", "stm32l0"])
def test_directly_flashed_image_needs_no_confirm_write(built, signer, variant):
    board, _, _ = make_board(built, signer, variant, "none", trailer_magic=False)
    board.boot("pin")
    assert BOOT.match(board.lines()[0]).group(3) == "pin"
    assert "rig: confirmed" in board.lines()
    assert board.programmed == [] and board.refused == []


@pytest.mark.parametrize("variant", ["stm32h7", "stm32l0"])
def test_crash_on_boot_prints_hardfault_and_resets(built, signer, variant):
    board, _, _ = make_board(built, signer, variant, "crash-on-boot")
    assert board.boot("power-on") == "software"
    lines = board.lines()
    assert BOOT.match(lines[0]).group(5) == "crash-on-boot"
    assert lines[1:] == ["rig: hardfault"]
    assert board.programmed == []


@pytest.mark.parametrize("variant", ["stm32h7", "stm32l0"])
def test_hang_lets_the_watchdog_reset_the_part(built, signer, variant):
    board, _, _ = make_board(built, signer, variant, "hang")
    assert board.boot("power-on") == "watchdog"
    assert len(board.lines()) == 1 and BOOT.match(board.lines()[0]).group(5) == "hang"
    board.console = ""
    board.boot("watchdog")
    assert BOOT.match(board.lines()[0]).group(3, 4) == ("watchdog", "2")


@pytest.mark.parametrize("variant", ["stm32h7", "stm32l0"])
@pytest.mark.parametrize("fault, health", [("no-confirm", "rig: health ok"), ("fail-health", "rig: health fail")])
def test_unconfirmed_faults_leave_image_ok_unset(built, signer, variant, fault, health):
    board, _, _ = make_board(built, signer, variant, fault)
    assert board.boot("power-on") == "running"
    lines = board.lines()
    assert lines[1] == health
    assert "rig: confirmed" not in lines and "rig: alive uptime=1" in lines
    assert board.programmed == [] and board.refused == []


@pytest.mark.parametrize("variant", ["stm32h7", "stm32l0"])
def test_imgtool_verifies_the_signed_build(built, key_pem, signer, tmp_path, variant):
    out, _, _ = built
    signed = tmp_path / "app.img"
    signed.write_bytes(mcuboot.sign((out / f"rig-{variant}-none.bin").read_bytes(), signer, "1.2.3+4",
                                    header_size=HEADER))
    proc = subprocess.run([sys.executable, "-m", "imgtool.main", "verify", "-k", str(key_pem), str(signed)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Image was correctly validated" in proc.stdout
    assert appdesc.find(signed.read_bytes(), variant, header_size=HEADER).version == (1, 2, 3, 4)
