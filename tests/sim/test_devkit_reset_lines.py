"""DTR/RTS over RFC2217 reach the ESP32's EN and GPIO0 through the DevKit circuit: esptool's own
reset sequences (esp_pylib, which esptool calls) put the chip in download mode or run it.

The board's boot flow here is a one-line probe firmware that reports how the chip came out of
reset, so the test reads the strapping result on the console, as a ROM banner would show it.
"""

import time

import pytest
from esp_pylib.serial_reset import classic_bootloader_reset, hard_reset

from rig.sim.board import Board
from rig.sim.rfc2217_server import Rfc2217Server
from rig.variants import facts


def report_boot(ctx):
    ctx.log(f"boot mode={ctx.boot_mode} reset={ctx.reset_cause}")
    while True:
        ctx.sleep(1)


@pytest.fixture
def devkit(tmp_path, open_console):
    def make(variant="esp32"):
        layout = facts(variant).layout
        board = Board("devkit", variant, layout, tmp_path, report_boot)
        server = Rfc2217Server(board, "127.0.0.1", 0)
        console = open_console(f"rfc2217://127.0.0.1:{server.port}")
        board.set_power(True)
        console.expect(r"boot mode=spi reset=power-on\r\n")
        made.append((server, board))
        return console

    made = []
    yield make
    for server, board in made:
        server.close()
        board.close()


def test_opening_and_closing_the_port_does_not_reset(devkit, open_console):
    console = devkit()
    console.port.close()
    console.port.open()
    assert console.lines_for(0.3) == []


def test_classic_reset_enters_download_mode_and_hard_reset_runs_the_flash(devkit):
    console = devkit()
    classic_bootloader_reset(console.port)
    console.expect(r"boot mode=download reset=power-on\r\n")
    hard_reset(console.port)
    console.expect(r"boot mode=spi reset=power-on\r\n")


def test_en_held_low_keeps_the_chip_in_reset(devkit):
    console = devkit()
    console.port.dtr = False
    console.port.rts = True  # EN low
    time.sleep(0.2)
    assert console.lines_for(0.2) == []
    console.port.rts = False
    console.expect(r"boot mode=spi reset=power-on\r\n")


def test_stm32_console_lines_are_not_wired_to_reset(devkit):
    console = devkit("stm32h7")
    classic_bootloader_reset(console.port)
    assert console.lines_for(0.3) == []
