"""The built STM32 binaries, signed as MCUboot images and executed from slot0 on the virtual lab's
emulated core (tests/build/firmware_board.py): console lines per docs/console.md, reset causes,
the boot counter, fault modes, the watchdog, and image_ok programmed through the real flash
controller sequence - read back from flash. `imgtool verify` accepts the signed builds."""

import re
import subprocess
import sys
import time

import pytest
from firmware_board import FirmwareBoard, flash_with  # tests/build/firmware_board.py, beside this file

from rig.image import appdesc, mcuboot
from rig.image.trailer import Trailer
from rig.sim.stm32.cpu import Cpu
from rig.sim.stm32.machine import SLICE
from rig.variants import facts

HEADER = 0x200
BOOT = re.compile(r"rig: boot variant=(\S+) version=(\S+) slot=0 reset=(\S+) boots=(\d+) fault=(\S+)$")


def make_board(built, signer, variant, fault, tmp_path, trailer_magic=True):
    out, _, _ = built
    image = mcuboot.sign((out / f"rig-{variant}-{fault}.bin").read_bytes(), signer, "1.2.3+4", header_size=HEADER)
    board = FirmwareBoard(variant, flash_with(variant, image, on_trial=trailer_magic), state_dir=tmp_path / "board")
    slot0 = facts(variant).layout.part("slot0")
    trailer = Trailer.for_layout(facts(variant).layout, "slot0")
    return board, slot0.offset + trailer.image_ok_off, trailer.write_image_ok()[1]


def changes(before: bytes, after: bytes) -> list[tuple[int, bytes]]:
    """The flash offsets (in 4-byte words) that read back differently, and what they hold now."""
    return [(i, after[i : i + 4]) for i in range(0, len(after), 4) if before[i : i + 4] != after[i : i + 4]]


def units(changed: list[tuple[int, bytes]]) -> list[tuple[int, bytes]]:
    """Changed words joined into runs: (first offset, bytes)."""
    runs: list[tuple[int, bytes]] = []
    for off, data in changed:
        if runs and runs[-1][0] + len(runs[-1][1]) == off:
            runs[-1] = (runs[-1][0], runs[-1][1] + data)
        else:
            runs.append((off, data))
    return runs


@pytest.mark.parametrize("variant", ["stm32h7", "stm32l0"])
def test_good_image_boots_confirms_and_counts_boots(built, signer, variant, tmp_path):
    board, image_ok_off, image_ok_unit = make_board(built, signer, variant, "none", tmp_path)
    before = board.read_flash()
    assert board.boot("power-on") == "running"
    lines = board.lines()
    assert BOOT.match(lines[0]).groups() == (variant, "1.2.3+4", "power-on", "1", "none")
    assert lines[1:4] == ["rig: health ok", "rig: confirmed", "rig: alive uptime=1"]
    # image_ok is the one unit that changed (a word on the L0 whose other bytes stay erased).
    after = board.read_flash()
    assert after[image_ok_off : image_ok_off + len(image_ok_unit)] == image_ok_unit
    assert [off for off, _ in units(changes(before, after))] == [image_ok_off]
    # The flash controller relocked, as a probe reading FLASH_CR1 / FLASH_PECR sees it.
    lock = {"stm32h7": (0x5200_200C, 1), "stm32l0": (0x4002_2004, 1)}[variant]
    assert board.read_register(lock[0]) & lock[1]

    # A software reset: RAM kept, so the counter goes on; image_ok is already set, nothing written.
    board.clear_console()
    assert board.boot("software") == "running"
    assert BOOT.match(board.lines()[0]).group(3, 4) == ("software", "2")
    assert "rig: confirmed" in board.lines() and board.read_flash() == after

    board.clear_console()
    board.boot("power-on")  # a power cycle loses RAM: counting starts again
    assert BOOT.match(board.lines()[0]).group(3, 4) == ("power-on", "1")


@pytest.mark.parametrize("variant", ["stm32h7", "stm32l0"])
def test_directly_flashed_image_needs_no_confirm_write(built, signer, variant, tmp_path):
    board, _, _ = make_board(built, signer, variant, "none", tmp_path, trailer_magic=False)
    before = board.read_flash()
    board.boot("pin")
    assert BOOT.match(board.lines()[0]).group(3) == "pin"
    assert "rig: confirmed" in board.lines()
    assert board.read_flash() == before


@pytest.mark.parametrize("variant", ["stm32h7", "stm32l0"])
def test_crash_on_boot_prints_hardfault_and_resets(built, signer, variant, tmp_path):
    board, _, _ = make_board(built, signer, variant, "crash-on-boot", tmp_path)
    before = board.read_flash()
    assert board.boot("power-on") == "software"
    lines = board.lines()
    assert BOOT.match(lines[0]).group(5) == "crash-on-boot"
    assert lines[1:] == ["rig: hardfault"]
    assert board.read_flash() == before


@pytest.mark.parametrize("variant", ["stm32h7", "stm32l0"])
def test_hang_lets_the_watchdog_reset_the_part(built, signer, variant, tmp_path):
    board, _, _ = make_board(built, signer, variant, "hang", tmp_path)
    assert board.boot("power-on") == "watchdog"
    assert len(board.lines()) == 1 and BOOT.match(board.lines()[0]).group(5) == "hang"
    board.clear_console()
    board.boot("watchdog")
    assert BOOT.match(board.lines()[0]).group(3, 4) == ("watchdog", "2")


def test_a_hung_image_on_a_starved_core_is_reset_by_its_watchdog_on_the_walls_time(built, signer, tmp_path,
                                                                                     monkeypatch):
    """A loaded host runs the emulated core a slice now and then (20 ms before each, less than a
    wait must be late to count, rig.sim.stm32.machine.STARVED). A busy slice's lateness is skipped,
    so the part's time follows its instructions; but a hung image spins on `b .` doing nothing while
    its IWDG counts the wall's time, as on silicon: it is reset after its 2 s, not after 2 s of
    executed slices (half a minute here - long enough for the campaign's 3 s health gate to
    power-cycle it first, and a watchdog proof to miss its reset cause). Counted in the slices the
    host gave the core, not in wall seconds, which a loaded host stretches: the spin costs a
    SysTick's slices (two per 10 ms tick: its handler, then the `b .` it returns to; ~400), not the
    1280 slices of 100k instructions at the H7's 64 MHz HSI that 2 s of executed spinning take
    (~1300 with the spin not seen as waiting, the 10 s guard this test had was at 9.6 s even alone)."""
    run = Cpu.run
    slices = 0

    def starved(self, count):
        nonlocal slices
        slices += 1
        time.sleep(0.02)  # the host runs other work meanwhile
        return run(self, count)

    monkeypatch.setattr(Cpu, "run", starved)
    board, _, _ = make_board(built, signer, "stm32h7", "hang", tmp_path)
    board.start("power-on")
    try:
        assert board.run_until(ms=10_000, timeout=120.0) == "watchdog"
    finally:
        board.halt()
    executed_spin = 2 * 64_000_000 // SLICE
    assert slices < executed_spin // 2, f"{slices} slices to the reset; 2 s of executed spinning is {executed_spin}"


@pytest.mark.parametrize("variant", ["stm32h7", "stm32l0"])
@pytest.mark.parametrize("fault, health", [("no-confirm", "rig: health ok"), ("fail-health", "rig: health fail")])
def test_unconfirmed_faults_leave_image_ok_unset(built, signer, variant, fault, health, tmp_path):
    board, _, _ = make_board(built, signer, variant, fault, tmp_path)
    before = board.read_flash()
    assert board.boot("power-on") == "running"
    lines = board.lines()
    assert lines[1] == health
    assert "rig: confirmed" not in lines and "rig: alive uptime=1" in lines
    assert board.read_flash() == before


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


@pytest.mark.parametrize("variant", ["stm32h7", "stm32l0"])
def test_board_runs_on_the_wall_clock_until_halted(built, signer, variant, tmp_path):
    board, _, _ = make_board(built, signer, variant, "none", tmp_path)
    board.start("power-on")
    try:
        board.wait_for(b"rig: alive uptime=1\r\n", timeout=10)
        assert board.stop_reason is None
    finally:
        board.halt()
    assert board.stop_reason == "halted"
    assert BOOT.match(board.lines()[0]).group(3, 4) == ("power-on", "1")
    board.close()
