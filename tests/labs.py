"""Racks for tests that run a lab of their own, made from a rack file by renaming ids only.

Every port of the copy is 0: its lab binds free ports and publishes them (rig.sim.registry), so labs
of parallel tests, xdist workers and checkouts never collide and no test names a port. Given a
`name`, board ids become BOARD-NAME, so the copy's lab runs beside the source's own: a process keeps
its drivers by board id (rig.drivers.pool). Probe ids stay as they are: every lab serves its probes
under ids qualified with its own name (rig.sim.registry.probe_id), which tell them apart for pyocd.
"""

import contextlib
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
VIRTUAL_RACK = REPO / "targets" / "virtual-rack.yaml"
RIG = str(Path(sys.executable).parent / "rig")


def lab_rack(folder, source=VIRTUAL_RACK, name: str | None = None, boards: tuple[str, ...] | None = None,
             variants: tuple[str, ...] | None = None, board_ids: bool = True) -> Path:
    """FOLDER/<name or the source's stem>.yaml: the source's boards (only those of `boards` and
    `variants`, if given) with ports left to the lab, and board ids renamed after `name` if given
    (not with board_ids=False: a lab on a runtime folder of its own, which no other lab shares)."""
    doc = yaml.safe_load(Path(source).read_text())
    targets = {}
    for board_id, target in doc["targets"].items():
        res = target["resources"]
        if (boards is not None and board_id not in boards) or (
                variants is not None and res["RigBoard"]["variant"] not in variants):
            continue
        if not res["RigBoard"].get("virtual"):
            pytest.skip(f"{source} has real boards; labs of their own exist only for virtual boards")
        res["NetworkSerialPort"]["port"] = 0
        if "NetworkPowerPort" in res:
            url = urlsplit(res["NetworkPowerPort"]["host"])
            res["NetworkPowerPort"]["host"] = urlunsplit(url._replace(netloc=f"{url.hostname}:0"))
        targets[f"{board_id}-{name}" if name and board_ids else board_id] = target
    doc["targets"] = targets
    path = Path(folder) / f"{name or Path(source).stem}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


@contextlib.contextmanager
def running_lab(rig: Callable, rack, state, runtime_dir: str | None = None):
    """The rack's lab up for the block (`rig lab up --rack RACK --state STATE`, as a user starts it)
    and down after it; `rig(*args)` runs the rig CLI in the lab's environment. Given `runtime_dir`,
    this process sees the lab meanwhile (pyocd's probe plugin reads the lab registry from it)."""
    up = rig("lab", "up", "--rack", rack, "--state", state)
    assert up.returncode == 0, up.stderr
    try:
        with pytest.MonkeyPatch.context() as mp:
            if runtime_dir is not None:
                mp.setenv("RIG_RUNTIME_DIR", runtime_dir)
            yield
    finally:
        rig("lab", "down", "--rack", rack)


class PrivateLab:
    """A lab of its own in folder `root`: a copy of a rack (lab_rack(root, **copy)), a runtime folder
    (lab registry, leases) and a state folder, driven through the rig CLI as a user drives it."""

    def __init__(self, root: Path, **copy):
        self.root = root
        self.rack = lab_rack(root, **copy)
        self.env = dict(os.environ, RIG_RUNTIME_DIR=str(root / "runtime"))
        self.env.pop("RIG_RACK", None)  # every verb is given this lab's rack

    def rig(self, *args, env: dict | None = None, timeout: float = 180) -> subprocess.CompletedProcess:
        return subprocess.run([RIG, *map(str, args)], cwd=self.root, env={**self.env, **(env or {})},
                              capture_output=True, text=True, timeout=timeout)

    def running(self, seen_here: bool = False):
        """The lab up for a `with` block (running_lab); with seen_here, this process sees it too."""
        return running_lab(self.rig, self.rack, self.root / "state",
                           runtime_dir=self.env["RIG_RUNTIME_DIR"] if seen_here else None)

    def fit_new_boards(self) -> None:
        """Factory-fresh boards on the running lab, as a bench swaps in new units: `rig lab reset`
        (the lab goes down, the boards' state is removed), then `rig lab up` again."""
        for args in (("reset", "--rack", self.rack, "--state", self.root / "state"),
                     ("up", "--rack", self.rack, "--state", self.root / "state")):
            done = self.rig("lab", *args)
            assert done.returncode == 0, done.stdout + done.stderr


def bound_rack(rack, runtime_dir):
    """The rack as its running lab bound it (rig.lab.Rack with real ports), for a lab started on a
    runtime folder of its own: its resolved rack, $RIG_RUNTIME_DIR/labs/<lab>.yaml (docs/virtual-lab.md)."""
    from rig.lab import load_rack
    from rig.sim.registry import lab_name

    return load_rack(Path(runtime_dir) / "labs" / f"{lab_name(rack)}.yaml")


def listening_port(pid: int) -> int | None:
    """The TCP port process `pid` listens on, read from /proc (for a server told to take port 0
    that does not say which it got); None while it listens on none."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:  # closed meanwhile
            continue
        if target.startswith("socket:["):
            inodes.add(target[len("socket:["):-1])
    for table in ("tcp", "tcp6"):
        for line in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in inodes:  # 0A: LISTEN
                return int(fields[1].rsplit(":", 1)[1], 16)
    return None
