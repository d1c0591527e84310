"""Two racks on two "hosts" behind one labgrid coordinator, all real processes on loopback.

    labgrid-coordinator                     (port asked of the OS)
    rig lab export --name rack-a            esp32, stm32h7, stm32l0  (virtual lab rack-a)
    rig lab export --name rack-b            esp32, stm32l0           (virtual lab rack-b)

Each rack is the shipped virtual rack on free ports (probe ids qualified by its lab), served by its own
`rig lab up`; each exporter is the real `labgrid-exporter` that `rig lab export` runs. Everything
runs in one runtime folder of the test's own, and is stopped at the end.
"""

import contextlib
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.labs import lab_rack, listening_port

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
RIG = str(BIN / "rig")
RACKS = {"rack-a": ("esp32", "stm32h7", "stm32l0"), "rack-b": ("esp32", "stm32l0")}
PLACES = sorted(f"{rack}-{variant}-1" for rack, variants in RACKS.items() for variant in variants)
START_S = 30.0


def rack_file(folder: Path, name: str, variants) -> Path:
    """targets/virtual-rack.yaml with only `variants` as FOLDER/NAME.yaml, ports chosen by its lab."""
    return lab_rack(folder, name=name, variants=tuple(variants), board_ids=False)


@dataclass
class MultiHost:
    root: Path
    env: dict
    address: str = ""
    racks: dict = field(default_factory=dict)  # name -> rack file
    procs: dict = field(default_factory=dict)  # "coordinator" / exporter name -> Popen

    def run(self, *args, timeout: float = 120, env=None) -> subprocess.CompletedProcess:
        return subprocess.run([str(a) for a in args], cwd=self.root, env=env or self.env, capture_output=True,
                              text=True, timeout=timeout)

    def rig(self, *args, timeout: float = 120) -> subprocess.CompletedProcess:
        return self.run(RIG, *args, timeout=timeout)

    def client(self, *args) -> subprocess.CompletedProcess:
        return self.run(BIN / "labgrid-client", "-x", self.address, *args, timeout=60)

    def start_coordinator(self) -> None:
        folder = self.root / "coordinator"
        folder.mkdir(exist_ok=True)
        log = open(self.root / "coordinator.log", "ab")
        proc = self.procs["coordinator"] = subprocess.Popen(
            [str(BIN / "labgrid-coordinator"), "-l", "127.0.0.1:0"], cwd=folder, env=self.env,
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + START_S
        while (port := listening_port(proc.pid)) is None:  # the port it took, as the kernel lists it
            assert proc.poll() is None and time.monotonic() < deadline, (self.root / "coordinator.log").read_text()
            time.sleep(0.2)
        self.address = f"127.0.0.1:{port}"
        while self.client("places").returncode != 0:
            assert time.monotonic() < deadline, (self.root / "coordinator.log").read_text()[-2000:]
            time.sleep(0.3)

    def start_exporter(self, name: str) -> None:
        """`rig lab export` for rack `name`, returning once its places are on the coordinator."""
        out = self.root / f"export-{name}.out"
        with open(out, "wb") as log:
            proc = subprocess.Popen(
                [RIG, "lab", "export", "--rack", self.racks[name], "--coordinator", self.address,
                 "--name", name, "--hostname", "127.0.0.1"],
                cwd=self.root, env=self.env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        self.procs[name] = proc
        deadline = time.monotonic() + START_S
        while "place(s) on" not in out.read_text():
            assert proc.poll() is None, out.read_text()
            assert time.monotonic() < deadline, out.read_text()
            time.sleep(0.2)

    def stop(self, name: str) -> None:
        proc = self.procs.pop(name, None)
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@contextlib.contextmanager
def running(root: Path, racks: dict):
    """A coordinator and an exporter (with its virtual lab) per rack of `racks`, stopped at the end."""
    env = dict(os.environ, RIG_RUNTIME_DIR=str(root / "runtime"), PYTHONUNBUFFERED="1")
    env.pop("RIG_COORDINATOR", None)
    mh = MultiHost(root, env)
    try:
        for name, variants in racks.items():
            mh.racks[name] = rack_file(root, name, variants)
            up = mh.rig("lab", "up", "--rack", mh.racks[name], "--state", root / "state" / name)
            assert up.returncode == 0, up.stderr
        mh.start_coordinator()
        for name in racks:
            mh.start_exporter(name)
        yield mh
    finally:
        for name in list(mh.procs):
            if name != "coordinator":
                mh.stop(name)
        mh.stop("coordinator")
        for rack in mh.racks.values():
            mh.rig("lab", "down", "--rack", rack)


@pytest.fixture(scope="session")
def multihost(tmp_path_factory):
    """Coordinator + exporters rack-a and rack-b, each with its virtual lab up."""
    with running(tmp_path_factory.mktemp("multihost"), RACKS) as mh:
        yield mh
