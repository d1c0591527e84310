"""A board's off time in a power cycle: the rack's own when it sets one, else rig's default for it.

(No lab is needed: binding drivers to a rack's target connects to nothing.)
"""

import ast
from pathlib import Path

import pytest

from rig.drivers import open_board
from rig.lab import load_rack
from rig.ota import campaign
from rig.variants import REAL_POWER_OFF_S, VIRTUAL_POWER_OFF_S

OUTLET = 'NetworkPowerPort: {model: simplerest, host: "http://127.0.0.1:9/{index}/{value}", index: 0}'


def _rack(tmp_path: Path, virtual: bool, drivers: str = "") -> Path:
    f = tmp_path / "rack.yaml"
    f.write_text("imports: [rig.lab.resources]\ntargets:\n  b1:\n    resources:\n"
                 f"      RigBoard: {{variant: esp32, virtual: {str(virtual).lower()}}}\n"
                 "      NetworkSerialPort: {host: 127.0.0.1, port: 9}\n"
                 f"      {OUTLET}\n" + drivers)
    return f


@pytest.mark.parametrize(("virtual", "expected"), [(True, VIRTUAL_POWER_OFF_S), (False, REAL_POWER_OFF_S)])
def test_default_off_time(tmp_path, virtual, expected):
    board = open_board(load_rack(_rack(tmp_path, virtual)).board("b1"))
    assert board.off_s == expected
    assert board.power.delay == expected  # labgrid's own cycle() and the strategy wait as long


def test_the_racks_off_time_wins(tmp_path):
    rack = _rack(tmp_path, virtual=False, drivers="    drivers:\n      NetworkPowerDriver: {delay: 4.5}\n")
    board = open_board(load_rack(rack).board("b1"))
    assert board.off_s == 4.5


def test_the_campaign_switches_power_only_through_the_boards_helpers():
    # every power transition of a run goes through BoardDrivers.power_on/off/cycle and off_s
    tree = ast.parse(Path(campaign.__file__).read_text())
    direct = [n.lineno for n in ast.walk(tree)
              if isinstance(n, ast.Attribute) and n.attr == "power" and isinstance(n.value, ast.Attribute)
              and n.value.attr == "d"]
    assert direct == []
    assert "OFF_S" not in vars(campaign)
