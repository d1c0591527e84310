"""The app model and the board runner, seen the way a user sees a board: its console (the pty, which
opens instantly; RFC2217 is covered by the rack tests), its flash read back.

The bootloader models are other modules' business; here a board's boot flow hands a built image
straight to rig.sim.app, as a bootloader that accepted it would.
"""

import json
import urllib.request

import pytest

from rig.image import appdesc, otadata
from rig.image.layouts import LAYOUTS
from rig.image.trailer import Flag, Magic, Trailer
from rig.sim import app
from rig.sim.board import Board, BootedImage
from rig.sim.control import ControlEndpoint
from rig.sim.pty_console import PtyConsole
from rig.variants import facts

HEADER = {"stm32h7": 0x200, "stm32l0": 0x200, "esp32": 0}
LAYOUT = {"stm32h7": "stm32h743-2x1m", "stm32l0": "stm32l073-192k", "esp32": "esp32-4mb-ota"}


def image(variant: str, fault: str = "none", version=(1, 2, 0, 0)) -> bytes:
    desc = appdesc.AppDescriptor(variant, version, fault).pack()
    body = bytearray(b"\x5a" * 0x800)
    off = HEADER[variant] + facts(variant).appdesc_offset
    body[off : off + len(desc)] = desc
    return bytes(body)


def read_back(board_dir, part) -> bytes:
    """A partition's bytes from the board's flash file, as a probe would read the part."""
    with open(board_dir / "flash.bin", "rb") as f:
        f.seek(part.offset)
        return f.read(part.size)


@pytest.fixture
def board_dir(tmp_path):
    return tmp_path / "board"


@pytest.fixture
def board_with(board_dir, open_console):
    """board_with(variant, image_bytes, prepare=None) -> (Board, Console): powered, console open."""
    made = []

    def make(variant: str, img: bytes, prepare=None, power=True):
        layout = LAYOUTS[LAYOUT[variant]]
        booted = BootedImage(slot=0, offset=0, header_size=HEADER[variant], image=img)
        board = Board(f"{variant}-t", variant, layout, board_dir, lambda ctx: app.run(ctx, booted),
                      watchdog_timeout=0.5)
        if prepare:
            prepare(board.flash, layout)
        pty = PtyConsole(board)
        made.append((board, pty))
        console = open_console(pty.path)
        board.set_power(power)
        return board, console

    yield make
    for board, pty in made:
        pty.close()
        board.close()


@pytest.mark.parametrize("variant", ["stm32h7", "stm32l0", "esp32"])
def test_banner_health_and_confirm(board_with, variant):
    _, console = board_with(variant, image(variant))
    console.expect(rf"rig: boot variant={variant} version=1\.2\.0\+0 slot=0 reset=power-on boots=1 fault=none\r\n")
    console.expect(r"rig: health ok\r\n")
    console.expect(r"rig: confirmed\r\n")


def test_heartbeat_once_a_second(board_with):
    _, console = board_with("esp32", image("esp32"))
    console.expect(r"rig: confirmed\r\nrig: alive uptime=1\r\nrig: alive uptime=2\r\n")


def test_crash_on_boot_faults_and_resets_by_software(board_with):
    _, console = board_with("stm32h7", image("stm32h7", "crash-on-boot"))
    console.expect(r"boots=1 fault=crash-on-boot\r\nrig: hardfault\r\n")
    console.expect(r"rig: boot variant=stm32h7 version=\S+ slot=0 reset=software boots=2 fault=crash-on-boot")


def test_hang_is_reset_by_the_watchdog(board_with):
    _, console = board_with("stm32l0", image("stm32l0", "hang"))
    console.expect(r"reset=power-on boots=1 fault=hang\r\n")
    console.expect(r"rig: boot .* reset=watchdog boots=2 fault=hang\r\n")
    assert console.before == b""  # no health check, no heartbeat: it hung right after the banner


def test_boot_counter_survives_resets_but_not_power_loss(board_with):
    board, console = board_with("stm32h7", image("stm32h7", "crash-on-boot"))
    console.expect(r"boots=3 ")
    board.set_power(False)
    board.set_power(True)
    console.expect(r"reset=power-on boots=1 ")


@pytest.mark.parametrize("fault, lines", [
    ("no-confirm", ["rig: health ok", "rig: alive uptime=1"]),
    ("fail-health", ["rig: health fail", "rig: alive uptime=1"]),
])
def test_faults_that_never_confirm(board_with, board_dir, fault, lines):
    _, console = board_with("stm32l0", image("stm32l0", fault), _pending_swap_trailer)
    console.expect(rf"fault={fault}\r\n")
    assert console.lines_for(1.3) == lines
    layout = LAYOUTS[LAYOUT["stm32l0"]]
    state = Trailer.for_layout(layout, "slot0").read(read_back(board_dir, layout.part("slot0")))
    assert state.image_ok is Flag.UNSET  # MCUboot reverts it at the next reset


def test_not_rig_firmware_prints_nothing_and_keeps_resetting(board_with):
    _, console = board_with("stm32h7", b"\xff" * 0x800)
    assert not [line for line in console.lines_for(0.5) if line.startswith("rig:")]


def test_wrong_variant_is_not_rig_firmware_for_this_chip(board_with):
    _, console = board_with("stm32h7", image("stm32l0"))
    assert not [line for line in console.lines_for(0.5) if line.startswith("rig:")]


def _pending_swap_trailer(flash, layout):
    """slot0 as MCUboot leaves it after a test swap: magic good, copy_done set, image_ok unset."""
    slot = layout.part("slot0")
    t = Trailer.for_layout(layout, "slot0")
    for off, data in (t.write_copy_done(), t.write_magic()):
        flash.write(slot.offset + off, data)


@pytest.mark.parametrize("variant", ["stm32h7", "stm32l0"])
def test_confirm_sets_image_ok_in_the_primary_trailer(board_with, board_dir, variant):
    _, console = board_with(variant, image(variant), _pending_swap_trailer)
    console.expect(r"rig: confirmed\r\n")
    layout = LAYOUTS[LAYOUT[variant]]
    state = Trailer.for_layout(layout, "slot0").read(read_back(board_dir, layout.part("slot0")))
    assert (state.magic, state.image_ok, state.copy_done) == (Magic.GOOD, Flag.SET, Flag.SET)


def _pending_verify_otadata(flash, layout):
    """otadata after an OTA to ota_0 and the bootloader's first boot of it: PENDING_VERIFY."""
    part = layout.part("otadata")
    table = otadata.Otadata.initial()._write(0, 1, otadata.State.PENDING_VERIFY)
    flash.write(part.offset, table.pack())


def test_esp32_confirm_marks_its_otadata_entry_valid(board_with, board_dir):
    _, console = board_with("esp32", image("esp32"), _pending_verify_otadata)
    console.expect(r"rig: confirmed\r\n")
    table = otadata.parse(read_back(board_dir, LAYOUTS[LAYOUT["esp32"]].part("otadata")))
    assert table.entries[table.active()].state == otadata.State.VALID
    assert table.active_slot(2) == 0


def test_power_cut_armed_at_the_confirm_write(board_with):
    """The control endpoint's cut lands on the app's first flash write: power drops before image_ok
    is written, the board comes back by itself (power-on, RAM lost) and confirms on the next boot."""
    board, console = board_with("stm32h7", image("stm32h7"), _pending_swap_trailer, power=False)
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
