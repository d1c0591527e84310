"""`rig boards` as a user runs it."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[2]


def rig(*args):
    return subprocess.run([sys.executable, "-m", "rig", *args], capture_output=True, text=True, cwd=ROOT)


def test_lists_the_three_virtual_boards():
    result = rig("boards", "--rack", "targets/virtual-rack.yaml")
    assert result.returncode == 0, result.stderr
    for board, variant, console in (
        ("esp32-1", "esp32", "rfc2217://127.0.0.1:0"),
        ("stm32h7-1", "stm32h7", "rfc2217://127.0.0.1:0"),
        ("stm32l0-1", "stm32l0", "rfc2217://127.0.0.1:0"),
    ):
        row = next(line for line in result.stdout.splitlines() if f" {board} " in line)
        assert variant in row and console in row


def test_filters_by_tag():
    result = rig("boards", "--rack", "targets/virtual-rack.yaml", "--tag", "low-power")
    assert "stm32l0-1" in result.stdout
    assert "esp32-1" not in result.stdout and "stm32h7-1" not in result.stdout


def test_help_teaches():
    result = rig("--help")
    assert result.returncode == 0
    assert "rig boards --rack targets/virtual-rack.yaml" in result.stdout
    assert "boards" in rig("boards", "--help").stdout
