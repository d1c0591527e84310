"""Board leases across real processes: exclusive, named holder, freed when the holder is killed."""

import os
import signal
import subprocess
import sys

import pytest

from rig.errors import RigError
from rig.lab import leases

HOLD = """
import sys, time
from rig.lab import leases
lease = leases.acquire(sys.argv[1], holder="holder-script")
print("held", flush=True)
time.sleep(60)
"""


@pytest.fixture(autouse=True)
def own_runtime_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("RIG_RUNTIME_DIR", str(tmp_path))


def hold_in_child(board_id):
    child = subprocess.Popen([sys.executable, "-c", HOLD, board_id], stdout=subprocess.PIPE, text=True,
                             env=os.environ.copy())
    assert child.stdout.readline().strip() == "held"
    return child


def test_second_holder_is_refused_with_the_holder_named():
    child = hold_in_child("b1")
    try:
        with pytest.raises(RigError) as exc:
            leases.acquire("b1", timeout=0.2)
        message = str(exc.value)
        assert "board b1 is in use by holder-script" in message
        assert f"pid {child.pid}" in message
        assert "\n" not in message
        assert leases.holder_of("b1")["pid"] == child.pid
    finally:
        child.kill()
        child.wait()


def test_killing_the_holder_frees_the_board():
    child = hold_in_child("b2")
    child.send_signal(signal.SIGKILL)
    child.wait()
    assert leases.holder_of("b2") is None
    with leases.acquire("b2", timeout=1.0) as lease:
        assert lease.held


def test_release_lets_the_next_holder_in_and_other_boards_are_independent():
    first = leases.acquire("b3")
    other = leases.acquire("b4")  # a different board is not blocked
    first.release()
    again = leases.acquire("b3")
    assert again.held and other.held
    again.release()
    other.release()
    assert leases.holder_of("b3") is None


def test_one_id_in_two_racks_is_two_boards():
    # `where` is the board's console as the inventory describes it (rig.lab.Board.console): here two
    # USB adapters of two benches, told apart by their serial numbers.
    with leases.acquire("esp32-1", where="udev ID_SERIAL_SHORT=A1"):
        with leases.acquire("esp32-1", where="udev ID_SERIAL_SHORT=B2") as other:
            assert other.held
        with pytest.raises(RigError):
            leases.acquire("esp32-1", where="udev ID_SERIAL_SHORT=A1")


def test_board_ids_cannot_escape_the_lease_folder(tmp_path):
    with leases.acquire("../../etc/passwd") as lease:
        assert lease.path.parent == tmp_path / "leases"
