"""The station killed in the middle of a unit - while flashing, between identity and writing it,
while locking - leaves a consistent database (nothing of the unit at all: no unit row, no attempt,
no audit line), and the next run provisions the unit from whatever state the board was left in.
Killing the station alone (not its process group) ends its fixture processes too."""

import os
import signal
import time

import pytest

from tests.provision.station_lab import (
    SUFFIX,
    check_consistent,
    kill_group,
    processes_in_group,
    wait_for_line,
)

POINTS = [
    ("esp32-1", "flash 25%"),  # a quarter of the factory image written
    ("stm32h7-1", "write_identity ..."),  # the key pair and certificate made, not yet in the device
    ("stm32l0-1", "lock ..."),  # readout protection being programmed
    pytest.param("esp32-1", "lock ...", marks=pytest.mark.nightly),  # eFuses being burnt (the ESP32 is slow)
]


@pytest.mark.parametrize("which,point", POINTS)
def test_killed_mid_unit_leaves_nothing_half_and_the_unit_finishes_next_run(station_lab, tmp_path,
                                                                            which, point):
    board = which + SUFFIX
    if which.startswith("esp32"):
        # The module's earlier ESP32 case ends with a whole unit, flash encryption on: such a unit
        # takes no image over serial again (the station says put it aside), so this one takes a new board.
        station_lab.fit_new_boards()
    workdir = tmp_path / "station"
    station = station_lab.start(workdir, "--board", board)
    seen = wait_for_line(station, f"{board}: {point}")
    assert not any(": provisioned" in line for line in seen)
    kill_group(station)
    rows = check_consistent(workdir / "provisioning.db")
    assert rows == {"units": [], "attempts": [], "audit": []}

    again = station_lab.provision(workdir, "--board", board)
    assert again.returncode == 0, again.stdout + again.stderr
    rows = check_consistent(workdir / "provisioning.db")
    assert len(rows["units"]) == 1
    assert [(a["outcome"], a["forced"]) for a in rows["attempts"]] == [("provisioned", 0)]


def test_fixtures_end_with_the_station(station_lab, tmp_path):
    board = f"stm32h7-1{SUFFIX}"
    station = station_lab.start(tmp_path / "station", "--board", board)
    wait_for_line(station, f"{board}: flash 25%")
    station.send_signal(signal.SIGKILL)  # the station only: its fixture process is not told
    station.wait()
    deadline = time.monotonic() + 30  # a guard against a hang, not a speed requirement
    while processes_in_group(station.pid) and time.monotonic() < deadline:
        time.sleep(0.05)  # the fixture and the fork server notice the station's end and exit
    assert not processes_in_group(station.pid)
    again = station_lab.provision(tmp_path / "station", "--board", board)  # the board's lease is free again
    assert again.returncode == 0, again.stdout + again.stderr
    assert os.path.getsize(tmp_path / "station" / "provisioning.db") > 0
