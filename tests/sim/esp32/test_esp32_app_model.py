"""The ESP32 app model and the board runner, seen the way a user sees a board: its console (the pty,
which opens instantly; RFC2217 is covered by the rack tests), its flash read back.

The bootloader model is other modules' business; here a board's boot flow hands a built image
straight to rig.sim.esp32.app, as a bootloader that accepted it would. (The STM32 boards execute
rig's firmware itself: tests/build/test_firmware_*.)
"""

import json
import urllib.request

import pytest

from rig.image import appdesc, otadata
from rig.image.layouts import LAYOUTS
from rig.sim.board import Board, BootedImage
from rig.sim.control import ControlEndpoint
from rig.sim.esp32 import app
from rig.sim.pty_console import PtyConsole
from rig.variants import facts

LAYOUT = LAYOUTS["esp32-4mb-ota"]


def image(fault: str = "none", version=(1, 2, 0, 0), variant: str = "esp32") -> bytes:
    """An app whose descriptor, at the ESP32's offset, names `variant`."""
    desc = appdesc.AppDescriptor(variant, version, fault).pack()
    body = bytearray(b"\x5a" * 0x800)
    off = facts("esp32").appdesc_offset
    body[off : off + len(desc)] = desc
    return bytes(body)


def read_back(board_dir, part) -> bytes:
    """A partition's bytes from the board's flash file, as esptool would read them."""
    with open(board_dir / "flash.bin", "rb") as f:
        f.seek(part.offset)
        return f.read(part.size)


@pytest.fixture
def board_dir(tmp_path):
    return tmp_path / "board"


@pytest.fixture
def board_with(board_dir, open_console):
    """board_with(image_bytes, prepare=None) -> (Board, Console): powered, console open."""
    made = []

    def make(img: bytes, prepare=None, power=True):
        booted = BootedImage(slot=0, offset=0, header_size=0, image=img)
        board = Board("esp32-t", "esp32", LAYOUT, board_dir, lambda ctx: app.run(ctx, booted),
                      watchdog_timeout=0.5)
        if prepare:
            prepare(board.flash, LAYOUT)
        pty = PtyConsole(board)
        made.append((board, pty))
        console = open_console(pty.path)
        board.set_power(power)
        return board, console

    yield make
    for board, pty in made:
        pty.close()
        board.close()


def _pending_verify_otadata(flash, layout):
    """otadata after an OTA to ota_0 and the bootloader's first boot of it: PENDING_VERIFY."""
    part = layout.part("otadata")
    table = otadata.Otadata.initial()._write(0, 1, otadata.State.PENDING_VERIFY)
    flash.write(part.offset, table.pack())


def _otadata_state(board_dir) -> otadata.State:
    table = otadata.parse(read_back(board_dir, LAYOUT.part("otadata")))
    assert table.active_slot(2) == 0
    return table.entries[table.active()].state


def test_banner_health_confirm_and_heartbeat(board_with):
    _, console = board_with(image())
    console.expect(r"rig: boot variant=esp32 version=1\.2\.0\+0 slot=0 reset=power-on boots=1 fault=none\r\n")
    console.expect(r"rig: health ok\r\n")
    console.expect(r"rig: confirmed\r\nrig: alive uptime=1\r\nrig: alive uptime=2\r\n")


def test_confirm_marks_its_otadata_entry_valid(board_with, board_dir):
    _, console = board_with(image(), _pending_verify_otadata)
    console.expect(r"rig: confirmed\r\n")
    assert _otadata_state(board_dir) == otadata.State.VALID


def test_crash_on_boot_faults_and_resets_by_software(board_with):
    _, console = board_with(image("crash-on-boot"))
    console.expect(r"boots=1 fault=crash-on-boot\r\nrig: hardfault\r\n")
    console.expect(r"rig: boot variant=esp32 version=\S+ slot=0 reset=software boots=2 fault=crash-on-boot")


def test_hang_is_reset_by_the_watchdog(board_with):
    _, console = board_with(image("hang"))
    console.expect(r"reset=power-on boots=1 fault=hang\r\n")
    console.expect(r"rig: boot .* reset=watchdog boots=2 fault=hang\r\n")
    assert console.before == b""  # no health check, no heartbeat: it hung right after the banner


def test_boot_counter_survives_resets_but_not_power_loss(board_with):
    board, console = board_with(image("crash-on-boot"))
    console.expect(r"boots=3 ")
    board.set_power(False)
    board.set_power(True)
    console.expect(r"reset=power-on boots=1 ")


@pytest.mark.parametrize("fault, lines", [
    ("no-confirm", ["rig: health ok", "rig: alive uptime=1"]),
    ("fail-health", ["rig: health fail", "rig: alive uptime=1"]),
])
def test_faults_that_never_confirm(board_with, board_dir, fault, lines):
    _, console = board_with(image(fault), _pending_verify_otadata)
    console.expect(rf"fault={fault}\r\n")
    assert console.lines_for(1.3) == lines
    assert _otadata_state(board_dir) == otadata.State.PENDING_VERIFY  # the bootloader aborts it next


@pytest.mark.parametrize("img", [b"\xff" * 0x800, image(variant="stm32h7")], ids=["blank", "another part's"])
def test_not_rig_firmware_for_this_chip_prints_nothing_and_keeps_resetting(board_with, img):
    _, console = board_with(img)
    assert not [line for line in console.lines_for(0.5) if line.startswith("rig:")]


def test_power_cut_armed_at_the_confirm_write(board_with):
    """The control endpoint's cut lands on the app's first flash operation (the otadata sector's
    erase): power drops before the entry is rewritten, the board comes back by itself (power-on,
    RAM lost) and confirms on the next boot."""
    board, console = board_with(image(), _pending_verify_otadata, power=False)
    control = ControlEndpoint({board.id: board})
    try:
        url = f"http://127.0.0.1:{control.port}/boards/{board.id}"
        with urllib.request.urlopen(urllib.request.Request(f"{url}/cut?op=0&off=0.1", method="POST")) as r:
            assert json.load(r)["armed"] == {"op": 0, "tear": False, "off": 0.1}
        board.set_power(True)
        console.expect(r"reset=power-on boots=1 fault=none\r\nrig: health ok\r\n")
        console.expect(r"rig: boot .* reset=power-on boots=1 fault=none\r\nrig: health ok\r\nrig: confirmed\r\n")
        assert b"confirmed" not in console.before
        with urllib.request.urlopen(url) as r:
            assert json.load(r)["power_cycles"] == 2
    finally:
        control.close()
