"""Conformance: a power cut at every flash operation from the first boot of a new ESP32 image until it
has marked itself valid - the bootloader's NEW -> PENDING_VERIFY rewrite and the app's
esp_ota_mark_app_valid_cancel_rollback (erase the otadata sector, write the entry) - before the
operation or torn halfway, never bricks the board: when power returns it boots a confirmed image,
and the otadata read back from flash selects the slot it printed.

The board runs the whole boot flow (rig.sim.boot: the ESP-IDF bootloader model, then the app
model). Verdicts come from its console and its flash file only.
"""

import pytest

from rig.image import esp_app, esp_partitions, otadata
from rig.image.layouts import LAYOUTS
from rig.sim import boot
from rig.sim.board import Board
from rig.sim.pty_console import PtyConsole

LAYOUT = LAYOUTS["esp32-4mb-ota"]
BANNER = r"rig: boot variant=esp32 version=(?P<version>\S+) slot=(?P<slot>\d) reset=power-on boots=1 fault=none\r\n"


def updated_flash() -> bytes:
    """ota_0 runs 1.0.0 (VALID); 2.0.0 was just downloaded into ota_1 and selected (NEW)."""
    flash = bytearray(b"\xff" * LAYOUT.geometry.size)
    table, _ = otadata.Otadata.initial().boot_next(0, apps=2)
    table, _ = table.with_state(0, otadata.State.VALID).boot_next(1, apps=2)
    for offset, data in (
        (LAYOUT.part("bootloader").offset, esp_app.bootloader_image()),
        (esp_partitions.OFFSET, esp_partitions.build(LAYOUT)),
        (LAYOUT.part("otadata").offset, table.pack()),
        (LAYOUT.part("ota_0").offset, esp_app.app_image("1.0.0")),
        (LAYOUT.part("ota_1").offset, esp_app.app_image("2.0.0")),
    ):
        flash[offset : offset + len(data)] = data
    return bytes(flash)


def test_no_fifth_flash_operation_before_the_update_is_confirmed(tmp_path, open_console):
    """A cut armed at operation 4 never fires before `rig: confirmed`: with the sweep below, where each
    of operations 0-3 does cut, this shows the sweep covers every operation up to mark-valid."""
    (tmp_path / "flash.bin").write_bytes(updated_flash())
    board = Board("esp32-dry", "esp32", LAYOUT, tmp_path, boot.run)
    pty = PtyConsole(board)
    try:
        console = open_console(pty.path)
        board.arm_cut(4, off_time=0.05)
        board.set_power(True)
        console.expect(BANNER.replace(r"(?P<version>\S+)", r"2\.0\.0\+0") + r"rig: health ok\r\nrig: confirmed\r\n")
        assert console.before.count(b"2nd stage bootloader") == 1
    finally:
        pty.close()
        board.close()


@pytest.mark.parametrize("tear", [False, True], ids=["before", "torn"])
@pytest.mark.parametrize("op", range(4), ids=["trial-erase", "trial-write", "valid-erase", "valid-write"])
def test_power_cut_until_mark_valid_never_bricks(tmp_path, open_console, op, tear):
    (tmp_path / "flash.bin").write_bytes(updated_flash())
    board = Board("esp32-cut", "esp32", LAYOUT, tmp_path, boot.run)
    pty = PtyConsole(board)
    try:
        console = open_console(pty.path)
        board.arm_cut(op, tear, off_time=0.05)
        board.set_power(True)
        # The cut boot may or may not reach the app; the boot after power returns must confirm.
        console.expect(r"2nd stage bootloader")
        console.expect(r"2nd stage bootloader")
        booted = console.expect(BANNER)
        console.expect(r"rig: health ok\r\nrig: confirmed\r\n")
    finally:
        pty.close()
        board.close()
    with open(tmp_path / "flash.bin", "rb") as f:
        f.seek(LAYOUT.part("otadata").offset)
        table = otadata.parse(f.read(otadata.SIZE))
    active = table.active()
    assert active is not None and table.entries[active].state == otadata.State.VALID
    assert table.active_slot(2) == int(booted["slot"])
    # Only a cut before the trial began leaves the update to run; every later cut rolls it back.
    assert booted["version"] == (b"2.0.0+0" if (op == 0 and not tear) else b"1.0.0+0")
