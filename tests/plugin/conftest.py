"""Helpers for running the rig pytest plugin in a child pytest, as a user runs it."""

import os
import textwrap
import tty
import xml.etree.ElementTree as ET

import pytest

from rig.variants import facts

RACK_HEAD = "imports:\n  - rig.lab.resources\ntargets:\n"


def _board_entry(board_id: str, variant: str, tags: tuple, console: str) -> str:
    probe = ("      RigDebugProbe:\n        unique_id: NONE-" + board_id + "\n        target_type: stm32h743xx\n"
             if facts(variant).debug_probe else "")
    return (f"  {board_id}:\n    resources:\n      RigBoard:\n        variant: {variant}\n"
            f"        tags: [{', '.join(tags)}]\n      RawSerialPort:\n        port: {console}\n{probe}")


def _junit_cases(path) -> dict:
    """testcase name -> (properties dict, system-out text, outcome) from a JUnit XML file."""
    cases = {}
    for case in ET.parse(path).getroot().iter("testcase"):
        props = {p.get("name"): p.get("value") for p in case.iter("property")}
        out = "".join(node.text or "" for node in case.iter("system-out"))
        outcome = "failed" if case.find("failure") is not None or case.find("error") is not None else (
            "skipped" if case.find("skipped") is not None else "passed")
        cases[case.get("name")] = (props, out, outcome)
    return cases


class Run:
    """A child pytest run on racks made here, through pytest's own `pytester` (in a process of its own,
    as a user runs pytest), with a runtime folder of its own."""

    def __init__(self, pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch):
        self.pytester = pytester
        self.dir = pytester.path
        self.setenv = monkeypatch.setenv
        self.setenv("RIG_RUNTIME_DIR", str(self.dir / "runtime"))
        self.ptys: dict[str, tuple[int, int]] = {}

    def board(self, board_id: str, variant: str, tags=()) -> str:
        """A board whose console is a pty this test holds: `say(board_id, text)` is the board talking.

        No lab is needed; the plugin opens the console as it opens any serial device.
        """
        master, slave = os.openpty()
        tty.setraw(slave)  # no echo, no line editing: bytes pass as on a UART
        self.ptys[board_id] = (master, slave)
        return _board_entry(board_id, variant, tuple(tags), os.ttyname(slave))

    def say(self, board_id: str, text: str) -> None:
        os.write(self.ptys[board_id][0], text.encode())

    def close(self) -> None:
        for fds in self.ptys.values():
            for fd in fds:
                os.close(fd)

    def rack(self, *entries) -> str:
        path = self.dir / "rack.yaml"
        path.write_text(RACK_HEAD + "".join(entries))
        return str(path)

    def module(self, source: str, name: str = "test_inner") -> str:
        return str(self.pytester.makepyfile(**{name: textwrap.dedent(source)}))

    junit = staticmethod(_junit_cases)

    def pytest(self, *args, timeout: float = 120) -> pytest.RunResult:
        # -p no:cacheprovider: the child must not write into the project's .pytest_cache.
        return self.pytester.runpytest_subprocess("-p", "no:cacheprovider", "-o", "addopts=", *args, timeout=timeout)


@pytest.fixture
def run(pytester, monkeypatch):
    runner = Run(pytester, monkeypatch)
    yield runner
    runner.close()
