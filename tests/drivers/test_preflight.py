"""A locked rack stops `rig flash`, `rig ota` and a pytest HIL run before they start, one line per
board naming the lock and the way out (rig.drivers.preflight).

The boards are locked as provisioning locks them, through their own flashers: readout protection
level 1 over the probe, Secure Boot V2 (ABS_DONE_1) burnt through the ROM loader. The lock is
then read back as the tools see it; nothing here looks inside the virtual boards.
"""

import subprocess
import sys

import pytest

from rig.drivers import open_board
from rig.lab import load_rack
from tests.drivers.conftest import REPO, Lab


@pytest.fixture
def locked_lab(tmp_path):
    """A private lab whose esp32-1 has Secure Boot V2 on and whose stm32h7-1 is at RDP level 1."""
    lab = Lab(tmp_path)
    with lab.running(seen_here=True):
        rack = load_rack(lab.rack)
        esp, stm = open_board(rack.board("esp32-1")), open_board(rack.board("stm32h7-1"))
        try:
            assert esp.preflight() is None and stm.preflight() is None  # factory-fresh boards are open
            esp.powered_rom_loader().burn_efuses({"ABS_DONE_1": 1})
            stm.powered_probe().set_rdp_level(1)
        finally:
            esp.close()
            stm.close()
        yield lab


def lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.strip()]


def test_a_locked_rack_stops_flash_ota_and_pytest_with_one_line_per_board(locked_lab, tmp_path):
    lab = locked_lab
    reset = f"way out: `rig lab reset --rack {lab.rack}` fits factory-fresh virtual boards"
    image = tmp_path / "app.bin"
    image.write_bytes(b"\x5a" * 1024)

    flash = lab.rig("flash", "--rack", lab.rack, "--board", "stm32h7-1", image)
    assert flash.returncode == 2
    assert lines(flash.stderr) == [f"rig: error: stm32h7-1 is locked: readout protection level 1 (the probe can "
                                   f"neither read nor write the flash); {reset}"]

    ota = lab.rig("ota", "--rack", lab.rack, "--work", tmp_path / "ota")
    assert ota.returncode == 2
    said = lines(ota.stderr)
    assert len(said) == 3, ota.stderr
    assert said[0].startswith("rig: error: esp32-1 is locked: Secure Boot V2 enabled in eFuse (ABS_DONE_1") \
        and said[0].endswith(reset.replace("way out: ", "way out: give --firmware-key the key its station signed "
                                                        "with, or "))
    assert said[1].startswith("rig: error: stm32h7-1 is locked: readout protection level 1")
    assert said[2] == "rig: error: rig ota stopped before it started: 2 of 3 boards locked"
    assert "baseline" not in ota.stdout

    run = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-n", "2",
                          str(REPO / "tests" / "hil" / "test_flash.py"), "--rig-rack", lab.rack,
                          "--rig-results", "off"], cwd=lab.root, env=lab.env, capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == pytest.ExitCode.USAGE_ERROR, run.stdout[-2000:] + run.stderr[-2000:]
    said = [line for line in run.stderr.splitlines() if line.strip()]
    assert said[0] == f"ERROR: rig: 2 of 3 boards of {lab.rack} are locked; no test ran:", run.stderr
    assert said[1].startswith("esp32-1 is locked: Secure Boot V2") and said[2].startswith("stm32h7-1 is locked:")
    assert "passed" not in run.stdout and "failed" not in run.stdout


def test_the_way_out_opens_the_boards_again(locked_lab, tmp_path):
    lab = locked_lab
    assert lab.rig("lab", "reset", "--rack", lab.rack, "--state", tmp_path / "state").returncode == 0
    assert lab.rig("lab", "up", "--rack", lab.rack, "--state", tmp_path / "state").returncode == 0
    image = tmp_path / "app.bin"
    image.write_bytes(b"\x5a" * 1024)
    flash = lab.rig("flash", "--rack", lab.rack, "--board", "stm32h7-1", image)
    assert flash.returncode == 0, flash.stderr
    rack = load_rack(lab.rack)
    for board in ("esp32-1", "stm32h7-1", "stm32l0-1"):
        drivers = open_board(rack.board(board))
        try:
            assert drivers.preflight() is None
        finally:
            drivers.close()
