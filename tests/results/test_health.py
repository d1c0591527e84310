"""Board health and quarantine on a virtual rack, as a lab admin meets them: a board whose console
went silent (its wires cut through the lab's fault control) fails its health check and is
quarantined; the next session skips it with one line and passes on the others; `rig health
--release` returns it to service."""

import json
import urllib.request

import pytest

from rig.results.health import quarantine_by_failures
from tests.results.conftest import private_rack

FLASH = "tests/hil/test_flash.py::test_flash_read_back"


def console_wires(sessions, rack, board: str, state: str) -> None:
    status = json.loads(sessions.rig("lab", "status", "--json", "--rack", rack).stdout)
    with urllib.request.urlopen(urllib.request.Request(
            f"{status['control']}/boards/{board}/console?state={state}", method="POST"), timeout=10) as reply:
        assert json.load(reply)["console"] == state


@pytest.fixture
def rack(sessions, tmp_path):
    rack = private_rack(tmp_path / "rack.yaml", ("esp32-1", "stm32l0-1"))
    yield rack
    sessions.rig("lab", "down", "--rack", rack)


def test_a_silent_board_is_quarantined_skipped_and_released(sessions, rack):
    import os

    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    up = sessions.rig("lab", "up", "--rack", rack)
    assert up.returncode == 0, up.stderr
    console_wires(sessions, rack, "esp32-1", "broken")
    sick = sessions.rig("health", "--rack", rack, "--board", "esp32-1", "--results", sessions.url)
    assert sick.returncode == 1
    assert "esp32-1 quarantined: banner: nothing on the console" in sick.stdout
    assert "ROM loader" in sick.stdout  # esptool cannot reach the ROM loader over cut wires either
    assert "flash read: not tried: the ROM loader did not answer" in sick.stdout  # nor read its flash that way
    listed = sessions.rig("health", "--results", sessions.url)
    assert "esp32-1" in listed.stdout and "health check failed" in listed.stdout

    # The next session health-checks its boards first: the ESP32 is still silent and stays out;
    # its test is skipped, with one line for the board, and the other board passes.
    done = sessions.pytest(f"{repo}/{FLASH}", "--rig-rack", rack, "--rig-board", "esp32-1", "--rig-board",
                           "stm32l0-1", "--rig-health-check", "-rs")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "health check of 2 boards" in done.stdout and "stm32l0-1 ok" in done.stdout
    assert "1 passed, 1 skipped" in done.stdout
    header = [line for line in done.stdout.splitlines() if line.startswith("rig: board esp32-1 is quarantined")]
    assert len(header) == 1 and "rig health --release esp32-1" in header[0]
    assert "SKIPPED [1]" in done.stdout and "board esp32-1 is quarantined" in done.stdout

    console_wires(sessions, rack, "esp32-1", "ok")
    released = sessions.rig("health", "--release", "esp32-1", "--results", sessions.url)
    assert released.returncode == 0 and "esp32-1 back in service" in released.stdout
    assert "no board is quarantined" in sessions.rig("health", "--results", sessions.url).stdout
    healthy = sessions.rig("health", "--rack", rack, "--board", "esp32-1", "--results", sessions.url)
    assert healthy.returncode == 0 and "1 of 1 boards healthy" in healthy.stdout, healthy.stdout


def test_a_board_failing_tests_its_siblings_pass_is_quarantined(sessions):
    store = sessions.store()

    def run(outcomes: dict) -> None:
        run_id = store.start_run("pytest")
        for (test, board), outcome in outcomes.items():
            store.add_result(run_id, test_id=f"t.py::{test}[{board}]", test_key=f"t.py::{test}", board=board,
                             outcome=outcome)
        store.finish_run(run_id)

    run({("test_a", "h7-1"): "failed", ("test_a", "h7-2"): "passed", ("test_b", "h7-1"): "failed",
         ("test_b", "h7-2"): "passed"})
    assert quarantine_by_failures(store, ["h7-1"], after=3) == {}  # two different tests: not yet
    # A test that fails everywhere is no evidence against one board.
    run({("test_c", "h7-1"): "failed", ("test_c", "h7-2"): "failed"})
    assert quarantine_by_failures(store, ["h7-1"], after=3) == {}
    run({("test_d", "h7-1"): "failed", ("test_d", "h7-2"): "passed"})
    done = quarantine_by_failures(store, ["h7-1", "h7-2"], after=3)
    assert list(done) == ["h7-1"]
    assert "failed 3 different tests in a row that pass on other boards" in done["h7-1"]
    assert "t.py::test_d (passes on h7-2)" in done["h7-1"]
    assert store.quarantined()["h7-1"]["who"] == "rig test history"
    # Released, the board starts a new streak: the old failures count no more.
    store.release("h7-1")
    run({("test_e", "h7-1"): "failed", ("test_e", "h7-2"): "passed"})
    assert quarantine_by_failures(store, ["h7-1"], after=3) == {}
    # A pass ends a streak.
    run({("test_f", "h7-1"): "passed", ("test_g", "h7-1"): "failed", ("test_g", "h7-2"): "passed"})
    assert quarantine_by_failures(store, ["h7-1"], after=2) == {}
