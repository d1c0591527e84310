"""Fixtures for tests that run a virtual lab: a private copy of the virtual rack whose ports the lab
chooses (tests.labs), `rig lab up` as a user runs it, and console readers. Each lab gets its own runtime
dir, so labs run in parallel under xdist.
"""

import json
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import serial

from rig.sim import registry
from tests.labs import lab_rack

RIG = [str(Path(sys.executable).parent / "rig")]  # the venv's console script, as a user runs it


def run_rig(*args, env: dict, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run([*RIG, *map(str, args)], env=env, capture_output=True, text=True, timeout=60)
    if check and proc.returncode != 0:
        raise AssertionError(f"rig {' '.join(map(str, args))} failed ({proc.returncode}):\n{proc.stdout}{proc.stderr}")
    return proc


@dataclass
class Lab:
    rack: Path
    state: Path
    env: dict

    def rig(self, *args, check: bool = True) -> subprocess.CompletedProcess:
        return run_rig(*args, env=self.env, check=check)

    def up(self) -> None:
        self.rig("lab", "up", "--rack", self.rack, "--state", self.state, "--watchdog", "1")

    def down(self) -> None:
        self.rig("lab", "down", "--rack", self.rack)

    def status(self) -> dict:
        return json.loads(self.rig("lab", "status", "--rack", self.rack, "--json").stdout)

    def stop(self) -> None:
        """Clean-up after a test: stop the daemon if it runs, without the CLI's start-up cost."""
        entry_file = Path(self.env["RIG_RUNTIME_DIR"]) / "labs" / f"{registry.lab_name(self.rack)}.json"
        entry = json.loads(entry_file.read_text()) if entry_file.exists() else None
        if entry is not None and registry.alive(entry["pid"]):
            os.kill(entry["pid"], signal.SIGTERM)
            deadline = time.monotonic() + 10
            while registry.alive(entry["pid"]) and time.monotonic() < deadline:
                time.sleep(0.05)

    def board(self, board_id: str) -> dict:
        return next(b for b in self.status()["boards"] if b["id"] == board_id)

    def url(self, board_id: str, what: str = "console") -> str:
        return self.rig("lab", "url", "--rack", self.rack, "--board", board_id, "--what", what).stdout.strip()


@pytest.fixture
def lab_factory(tmp_path):
    """Make labs from private rack files; every lab still up at the end of the test is stopped."""
    labs = []

    def make(boards: tuple[str, ...] | None = None) -> Lab:
        rack = lab_rack(tmp_path / f"rack-{len(labs)}", boards=boards)
        env = os.environ | {"RIG_RUNTIME_DIR": str(tmp_path / "run")}
        lab = Lab(rack, tmp_path / f"state-{len(labs)}", env)
        labs.append(lab)
        return lab

    yield make
    for lab in labs:
        lab.stop()


@pytest.fixture
def virtual_lab(lab_factory):
    """The whole virtual rack, up, for one test."""
    lab = lab_factory()
    lab.up()
    return lab


@pytest.fixture(scope="module")
def shared_lab(tmp_path_factory):
    """The whole virtual rack, up once for all tests of a module that only talk to its boards."""
    tmp = tmp_path_factory.mktemp("lab")
    lab = Lab(lab_rack(tmp), tmp / "state", os.environ | {"RIG_RUNTIME_DIR": str(tmp)})
    lab.up()
    yield lab
    lab.stop()


class Console:
    """A console client that collects lines and waits for patterns (like pexpect, for pyserial ports)."""

    def __init__(self, port: serial.SerialBase):
        self.port = port
        self.buffer = b""
        self.before = b""  # what came before the last match, as pexpect's `before`

    def expect(self, pattern: str, timeout: float = 5.0) -> re.Match:
        regex = re.compile(pattern.encode())
        deadline = time.monotonic() + timeout
        while True:
            match = regex.search(self.buffer)
            if match:
                self.before = self.buffer[: match.start()]
                self.buffer = self.buffer[match.end():]
                return match
            if time.monotonic() > deadline:
                raise AssertionError(f"no {pattern!r} on the console within {timeout} s; got {self.buffer[-400:]!r}")
            self.buffer += self.port.read(self.port.in_waiting or 1)

    def lines_for(self, seconds: float) -> list[str]:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self.buffer += self.port.read(self.port.in_waiting or 1)
        lines, self.buffer = self.buffer.decode(errors="replace").split("\r\n"), b""
        return [line for line in lines if line]

    def close(self):
        self.port.close()


@pytest.fixture
def open_console():
    """open_console("rfc2217://host:port" or a pty path) -> Console, opened as pyserial users open them."""
    opened = []

    def open_(url_or_path: str) -> Console:
        if url_or_path.startswith("rfc2217://"):
            port = serial.serial_for_url(url_or_path, baudrate=115200, timeout=0.1)
        else:
            port = serial.Serial(url_or_path, 115200, timeout=0.1)
        opened.append(Console(port))
        return opened[-1]

    yield open_
    for console in opened:
        console.close()
