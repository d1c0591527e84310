"""The JUnit report carries each test's console slice and the board's properties."""

import itertools
import re
import threading

INNER = """
import pytest

def test_sees_its_line(console):
    console.expect_line("rig: alive uptime=")

def test_fails_and_still_reports(console):
    console.expect_line("rig: alive uptime=")
    raise AssertionError("deliberate failure")

def test_retried_step_is_counted(board, board_retry):
    calls = []
    def step():
        calls.append(1)
        if len(calls) < 2:
            raise AssertionError("first try fails")
    board_retry(step)
"""


def test_console_slice_and_board_properties_per_testcase(run):
    rack = run.rack(run.board("esp-a", "esp32"))
    xml = run.dir / "report.xml"
    # The "board" prints a numbered heartbeat all through the run (pyserial flushes what was sent
    # before the port opened, as a UART drops bytes nobody listened to).
    stop = threading.Event()

    def heartbeat():
        for n in itertools.count():
            if stop.wait(0.05):
                return
            run.say("esp-a", f"rig: alive uptime={n}\r\n")

    talker = threading.Thread(target=heartbeat)
    talker.start()
    try:
        result = run.pytest(run.module(INNER), "--rig-rack", rack, f"--junitxml={xml}", "-p", "no:xdist")
    finally:
        stop.set()
        talker.join()
    cases = run.junit(xml)
    props, first, outcome = cases["test_sees_its_line[esp-a]"]
    assert outcome == "passed"
    assert props["board"] == "esp-a" and props["board_variant"] == "esp32"
    assert props["board_virtual"] == "false"
    assert {"board_firmware_sha256", "board_firmware_version"} <= set(props)
    assert "console of esp-a during this test" in first

    props, second, outcome = cases["test_fails_and_still_reports[esp-a]"]
    assert outcome == "failed" and props["board"] == "esp-a"
    # Each testcase holds its own slice of the console, not the whole session's.
    first_lines = set(re.findall(r"uptime=\d+", first))
    second_lines = set(re.findall(r"uptime=\d+", second))
    assert first_lines and second_lines and not first_lines & second_lines

    props, _, outcome = cases["test_retried_step_is_counted[esp-a]"]
    assert outcome == "failed"  # a power cycle needs a power switch; this board has none
    assert props["board_retries"] == "0"
    result.assert_outcomes(passed=1, failed=2)
