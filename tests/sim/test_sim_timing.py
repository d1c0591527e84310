"""The virtual lab's timing model (rig.sim.timing): with `rig lab up --timing datasheet` an erase takes at
least the datasheet's typical time per sector, console bytes take their time at the client's baud; with
the default model nothing is charged. Observed as a user would: the tools' own run time, and the
lab's counters (`rig lab status --json`, charged_seconds per board).
"""

import subprocess
import sys
import time
from pathlib import Path

import pytest
import serial

from rig.sim.timing import STM32H743, STM32L073, W25Q32JV
from rig.variants import facts
from tests.sim.stm32.conftest import PYOCD

ESPTOOL = str(Path(sys.executable).parent / "esptool")
ESP_SECTORS = 8  # 32 KiB at 0x40000: less than a block, so eight 4 KiB sector erases
L0_PAGES = 16
EPSILON = 1e-9  # the counters add up floats


def at_least(seconds: float, floor: float) -> bool:
    return seconds >= floor - EPSILON


def timed(*command, env=None) -> float:
    started = time.monotonic()
    proc = subprocess.run(list(map(str, command)), env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return time.monotonic() - started


def esptool_erase(lab, sectors: int) -> float:
    console = lab.board("esp32-1")["console"]
    return timed(ESPTOOL, "--port", console, "erase-region", "0x40000", hex(sectors * W25Q32JV.sector), env=lab.env)


def up(lab, *timing) -> None:
    lab.rig("lab", "up", "--rack", lab.rack, "--state", lab.state, *timing)


def test_datasheet_timing_charges_every_esp32_sector_erase(lab_factory):
    lab = lab_factory(boards=("esp32-1",))
    up(lab, "--timing", "datasheet")
    assert lab.status()["timing"] == "datasheet"

    took = esptool_erase(lab, ESP_SECTORS)

    floor = ESP_SECTORS * W25Q32JV.sector_erase
    assert took >= floor
    charged = lab.board("esp32-1")["charged_seconds"]
    assert at_least(charged["erase"], floor)
    assert charged["uart"] > 0  # esptool's SLIP traffic crossed the 115200 baud line


def test_esptool_writes_a_large_erased_region_within_its_block_timeouts(lab_factory, tmp_path):
    """1 MiB that compresses into one block: the stub acks it on receipt and spends seconds erasing and
    programming it while esptool waits with the timeout it gives the next reply, as on a real chip."""
    lab = lab_factory(boards=("esp32-1",))
    up(lab, "--timing", "datasheet")
    blob = tmp_path / "blank.bin"
    blob.write_bytes(b"rig" + b"\xff" * ((1 << 20) - 3))
    console = lab.board("esp32-1")["console"]

    took = timed(ESPTOOL, "--port", console, "write-flash", "0x100000", blob, env=lab.env)

    floor = 16 * W25Q32JV.block_erase + 4096 * W25Q32JV.page_program  # 16 blocks, 4096 pages
    assert took >= floor
    assert at_least(lab.board("esp32-1")["charged_seconds"]["erase"], 16 * W25Q32JV.block_erase)


def test_datasheet_timing_charges_every_stm32l0_page_erase(lab_factory):
    lab = lab_factory(boards=("stm32l0-1",))
    up(lab, "--timing", "datasheet")
    board = lab.board("stm32l0-1")
    layout = facts("stm32l0").layout
    start = layout.geometry.base + layout.part("slot1").offset
    end = start + L0_PAGES * layout.geometry.sector_size
    before = board["charged_seconds"]["erase"]

    took = timed(PYOCD, "erase", "--sector", "-u", board["probe"], "-t", board["target"], f"0x{start:x}-0x{end:x}",
                 env=lab.env)

    floor = L0_PAGES * STM32L073.sector_erase
    assert took >= floor
    charged = lab.board("stm32l0-1")["charged_seconds"]
    assert at_least(charged["erase"] - before, floor)
    assert charged["swd"] > 0  # pyocd's requests crossed the probe's link


def test_console_bytes_take_their_time_at_the_baud_the_client_set(lab_factory):
    lab = lab_factory(boards=("esp32-1",))
    up(lab, "--timing", "datasheet")
    board = lab.board("esp32-1")
    data = b"x" * 480
    with serial.serial_for_url(board["console"], baudrate=9600, timeout=0.1) as port:
        port.write(data)
        floor = len(data) * 10 / 9600  # 8N1: ten bit times a byte
        deadline = time.monotonic() + 10
        while not at_least(lab.board("esp32-1")["charged_seconds"]["uart"], floor):
            assert time.monotonic() < deadline, "the lab never charged the bytes' time at 9600 baud"
            time.sleep(0.1)


def test_default_timing_charges_nothing(lab_factory):
    lab = lab_factory(boards=("esp32-1",))
    up(lab)
    ops = lab.board("esp32-1")["flash_ops"]

    esptool_erase(lab, ESP_SECTORS)

    board = lab.board("esp32-1")
    assert lab.status()["timing"] == "none"
    assert board["flash_ops"] > ops  # the erase happened
    assert board["charged_seconds"] == {"erase": 0.0, "program": 0.0, "uart": 0.0, "swd": 0.0}
    again = lab.rig("lab", "up", "--rack", lab.rack, "--timing", "datasheet", check=False)
    assert again.returncode == 2 and again.stderr.count("\n") == 1
    assert "is up with --timing none" in again.stderr and "rig lab down" in again.stderr


@pytest.mark.parametrize("part, offset, length, seconds", [
    (W25Q32JV, 0x10000, 0x10000, 0.150),  # one aligned 64 KiB block: one block erase, not 16 sectors
    (W25Q32JV, 0x11000, 0x10000, 16 * 0.045),  # not aligned: sectors
    (W25Q32JV, 0, 4 << 20, 10.0),  # the whole chip: chip erase
    (STM32H743, 0x100000, 0x100000, 5.0),  # a bank
    (STM32H743, 0x20000, 0x40000, 2 * 1.0),
])
def test_erase_figures_follow_the_command_the_part_gets(part, offset, length, seconds):
    assert part.erase_seconds(offset, length) == pytest.approx(seconds)


@pytest.mark.parametrize("part, offset, length, seconds", [
    (W25Q32JV, 0x1000, 4096, 16 * 0.0004),  # sixteen 256-byte pages
    (W25Q32JV, 0x10FC, 8, 2 * 0.0004),  # straddles two pages: two page programs
    (STM32H743, 0, 128, 4 * 0.0001),  # four 256-bit flash words
    (STM32L073, 0, 128, 2 * 0.00328),  # two half-pages
    (STM32L073, 4, 64, 16 * 0.00328),  # no whole half-page: sixteen word programs
])
def test_program_figures_follow_the_part_program_unit(part, offset, length, seconds):
    assert part.program_seconds(offset, length) == pytest.approx(seconds)
