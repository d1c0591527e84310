"""Under pytest-xdist, no two workers ever hold one board, and a killed worker's board is freed."""

import collections

# Each test logs when it gets its board and when it is done with it; the sleep widens the window
# in which a second holder would show up, it is not a timing assertion.
INNER = """
import os, time
import pytest

LOG = os.environ["HOLD_LOG"]

def log(event, board):
    with open(LOG, "a") as f:
        f.write(f"{event} {board.board.id} {os.environ.get('PYTEST_XDIST_WORKER', 'main')}\\n")

@pytest.mark.parametrize("n", range(4))
def test_hold(board, n):
    log("enter", board)
    time.sleep(0.05)
    log("exit", board)
"""

CRASH = """
import os, signal
import pytest

def test_a_crash(board):
    if board.board.id == "b1":
        os.kill(os.getpid(), signal.SIGKILL)  # the worker dies holding b1's lease

@pytest.mark.parametrize("n", range(3))
def test_b_after(board, n):
    assert board.board.id
"""


def boards(run, count):
    return run.rack(*(run.board(f"b{i}", "esp32") for i in range(1, count + 1)))


def test_no_two_workers_hold_one_board(run):
    log = run.dir / "hold.log"
    run.setenv("HOLD_LOG", str(log))
    result = run.pytest(run.module(INNER), "--rig-rack", boards(run, 2), "-n", "3", "-p", "xdist")
    result.assert_outcomes(passed=8)
    holder = {}
    seen_workers = collections.defaultdict(set)
    for line in log.read_text().splitlines():
        event, board, worker = line.split()
        if event == "enter":
            assert board not in holder, f"{worker} got {board} while {holder.get(board)} held it"
            holder[board] = worker
        else:
            assert holder.pop(board) == worker
        seen_workers[board].add(worker)
    assert not holder
    assert len(set().union(*seen_workers.values())) >= 2  # shared out, not all run by one worker


def test_killing_a_worker_frees_its_board(run):
    result = run.pytest(run.module(CRASH), "--rig-rack", boards(run, 2), "-n", "2", "-p", "xdist",
                        "--rig-lease-timeout", "30", "-rA")
    out = result.stdout.str()
    assert "crashed" in out  # xdist saw the worker die in test_a_crash[b1]
    # Every later test on b1 got the board: its lease died with the worker.
    for n in range(3):
        assert f"PASSED test_inner.py::test_b_after[b1-{n}]" in out, out
    result.assert_outcomes(passed=7, failed=1)
