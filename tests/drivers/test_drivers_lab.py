"""The drivers against the virtual rack, judged by what the board answers: the partition table and
otadata as esptool reads them, eFuses as espefuse reads them, probe registers and console lines.
(Flash write/read-back per flasher is the HIL suite's test_flash.py, run by test_hil_suite.py.)"""

import os

import pytest

from rig.errors import RigError
from rig.image import esp_app, esp_partitions, factory, otadata


def test_esptool_reads_partition_table_and_otadata_it_wrote(drivers_of):
    board = drivers_of("esp32-1")
    regions = factory.esp32_regions(esp_app.app_image("1.0.0"))
    # Stay in the ROM loader between operations (no stub: leaving the stub restarts the chip): a
    # booted app would mark its otadata entry VALID before we read it.
    board.esptool.after, board.esptool.stub = "no-reset", False
    try:
        board.write_regions([(r.offset, r.data) for r in regions])
        table = board.esptool.read_partition_table()
        ota = board.esptool.read_otadata()
    finally:
        board.esptool.after, board.esptool.stub = "hard-reset", True
    assert table == esp_partitions.from_layout(board.board.flash_layout)
    assert ota == otadata.parse(next(r.data for r in regions if r.name == "otadata"))


@pytest.mark.nightly  # esptool's erase-region is esptool's own; here only the range checks are rig's
def test_esptool_erase_region_leaves_erased_bytes(drivers_of):
    board = drivers_of("esp32-1")
    board.target.activate(board.esptool)
    board.esptool.write(os.urandom(4096), 0x3C0000)
    board.esptool.erase(0x3C0000, 0x1000)
    assert board.esptool.read(0x3C0000, 4096) == b"\xff" * 4096
    with pytest.raises(RigError, match="multiples of the 0x1000-byte sector"):
        board.esptool.erase(0x3C0010, 0x1000)


def test_efuses_read_and_burned_through_espefuse(drivers_of):
    board = drivers_of("esp32-1")
    board.target.activate(board.esptool)
    efuses = board.esptool.read_efuses()
    assert "MAC" in efuses and efuses["JTAG_DISABLE"] is False
    board.esptool.burn_efuses({"JTAG_DISABLE": 1})  # this private lab's chip only
    assert board.esptool.read_efuses()["JTAG_DISABLE"] is True


def test_strategy_rom_and_debug_states_reach_the_flashers(drivers_of):
    esp = drivers_of("esp32-1")
    esp.ensure([(esp_partitions.OFFSET, esp_partitions.build(esp.board.flash_layout))])
    esp.strategy.transition("off")
    esp.strategy.transition("rom")
    assert esp.esptool.read(esp_partitions.OFFSET, 2) == esp_partitions.MAGIC
    stm = drivers_of("stm32l0-1")
    stm.strategy.transition("off")
    stm.strategy.transition("debug")
    assert len(stm.swd.read(0, 16)) == 16
    with pytest.raises(RigError, match="no ROM loader state"):
        stm.strategy.transition("rom")


@pytest.mark.parametrize("board_id", ["stm32h7-1", "stm32l0-1"])
def test_probe_reads_rdp_level_and_refuses_level_2_without_consent(drivers_of, board_id):
    board = drivers_of(board_id)
    board.target.activate(board.swd)
    assert board.swd.read_rdp_level() == 0
    with pytest.raises(RigError, match="disables debug for good"):
        board.swd.set_rdp_level(2)


def test_strategy_opens_console_before_power_on(drivers_of):
    board = drivers_of("esp32-1")
    regions = factory.esp32_regions(esp_app.app_image("1.0.0"))
    board.ensure([(r.offset, r.data) for r in regions])
    board.strategy.transition("off")
    mark = board.console.mark()
    board.strategy.transition("app")
    text = board.console.text_since(mark)
    # The ROM's first line comes before the app's boot line: nothing was lost at power-on.
    assert text.index("rst:0x1 (POWERON_RESET)") < text.index("rig: boot variant=esp32")
    assert board.strategy.boot["reset"] == "power-on"
    with pytest.raises(RigError, match="no debug probe"):
        board.strategy.transition("debug")
