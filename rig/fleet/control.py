"""The fleet simulator from the outside: bring N devices up (in shard processes), read the ground
truth, inject faults, bring it down. `rig fleet` and the tests use this; its state lives in a
folder (default .rig/fleet) as fleet.json, so every command finds the running fleet.

    fleet = Fleet.up(folder, devices=300, seed=7, mix={"esp32": 50, "stm32h7": 30, "stm32l0": 20})
    fleet.inject("boot-fail", fraction=0.3, ids=among)   # seeded choice of devices
    fleet.truth()                                         # {id: Truth as dict}
    fleet.down()
"""

import json
import math
import os
import random
import subprocess
import sys
import time
import urllib.request
from dataclasses import asdict
from pathlib import Path
from typing import Any

from rig.errors import RigError
from rig.fleet.broker import Broker, Recorder, _stop_pid
from rig.fleet.device import FAULTS, Timing
from rig.variants import NAMES, VARIANTS

DEFAULT_MIX = {"esp32": 50, "stm32h7": 30, "stm32l0": 20}
DEVICES_PER_SHARD = 2500  # one asyncio process holds this many connections comfortably (bench rollout)
READY_TIMEOUT_S = 120.0
STATE = "fleet.json"


def parse_mix(text: str) -> dict[str, int]:
    """'esp32=50,stm32h7=30,stm32l0=20' -> weights."""
    mix = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, _, weight = part.partition("=")
        if name not in VARIANTS:
            raise RigError(f"--mix: {name!r} is not a variant; one of {', '.join(NAMES)}")
        try:
            mix[name] = int(weight)
        except ValueError:
            raise RigError(f"--mix: {part!r}: give VARIANT=WEIGHT, e.g. esp32=50") from None
        if mix[name] < 0:
            raise RigError(f"--mix: {part!r}: a weight is 0 or more")
    if not mix or sum(mix.values()) == 0:
        raise RigError("--mix: give at least one variant a weight, e.g. esp32=50,stm32h7=30,stm32l0=20")
    return mix


def compose(n: int, seed: int, mix: dict[str, int]) -> list[dict]:
    """The fleet's devices: ids dev-00001.., variants in the mix's proportions (largest remainder),
    shuffled by the seed. Same (n, seed, mix), same fleet."""
    total = sum(mix.values())
    exact = {v: n * w / total for v, w in mix.items()}
    counts = {v: math.floor(x) for v, x in exact.items()}
    for v in sorted(exact, key=lambda v: (counts[v] - exact[v], v))[: n - sum(counts.values())]:
        counts[v] += 1
    variants = [v for v in sorted(counts) for _ in range(counts[v])]
    random.Random(f"fleet-{seed}").shuffle(variants)
    return [{"id": f"dev-{i + 1:05d}", "variant": v, "layout": VARIANTS[v].default_layout}
            for i, v in enumerate(variants)]


def choose(ids: list[str], fraction: float, seed: int, salt: str) -> list[str]:
    """A seeded choice of round(fraction * len) of the ids (at least one when fraction > 0)."""
    ids = sorted(ids)
    k = min(len(ids), max(1 if fraction > 0 and ids else 0, round(fraction * len(ids))))
    return sorted(random.Random(f"{seed}:{salt}").sample(ids, k))


def _get(url: str, body: dict | None = None, timeout: float = 60.0):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        return json.loads(resp.read())


class Fleet:
    def __init__(self, folder: Path, state: dict[str, Any]):
        self.folder = Path(folder)
        self.state = state

    # -- lifecycle
    @classmethod
    def up(cls, folder: Path, devices: int, seed: int = 1, mix: dict[str, int] | None = None,
           broker: str | None = None, timing: Timing | None = None, shards: int | None = None,
           features: list[str] | None = None, floors: dict[str, int] | None = None,
           offline: dict | None = None, on_broker=None, rack: str | None = None) -> "Fleet":
        """Start the broker (unless given), the message log and the devices; return once each
        device's first connection is up. offline={"ids": [...], "seconds": S}: devices that are off
        when the fleet starts. on_broker(url) is called once the broker and its log are up, before
        the devices start (a service started there sees the fleet arrive). rack: a rack file whose
        boards join as devices through rig.fleet.agent (each enrolled on the baseline release)."""
        folder = Path(folder).resolve()
        folder.mkdir(parents=True, exist_ok=True)
        if (folder / STATE).exists():
            raise RigError(f"a fleet is already up in {folder}; `rig fleet down` first")
        if devices < 1:
            raise RigError("--devices: at least 1")
        mix = mix or DEFAULT_MIX
        b = Broker.external(broker) if broker else Broker.private(folder / "broker")
        state: dict[str, Any] = {"devices": devices, "seed": seed, "mix": mix, "broker": b.url, "broker_pid": b.pid,
                 "log": str(folder / "messages.log"), "shards": [], "started": time.time()}
        fleet = cls(folder, state)
        try:
            rec = Recorder(b, folder / "messages.log")
            state["recorder_pid"] = rec.pid
            fleet._save()
            if on_broker:
                on_broker(b.url)
            specs = compose(devices, seed, mix)
            for d in specs:
                d["floor"] = (floors or {}).get(d["variant"], 0)
                d["features"] = features or []
            n = shards or max(1, math.ceil(devices / DEVICES_PER_SHARD))
            procs = []
            for k in range(n):
                part = specs[k::n]
                spec = {"broker_host": b.host, "broker_port": b.port, "devices": part,
                        "timing": asdict(timing or Timing()),
                        "offline_at_start": (offline or {}).get("ids", []),
                        "offline_seconds": (offline or {}).get("seconds", 10.0)}
                path = folder / f"shard-{k}.json"
                path.write_text(json.dumps(spec))
                log = open(folder / f"shard-{k}.log", "ab")
                proc = subprocess.Popen([sys.executable, "-m", "rig.fleet.shard", str(path)], stdin=subprocess.DEVNULL,
                                        stdout=subprocess.PIPE, stderr=log, start_new_session=True)
                procs.append((proc, path))
                state["shards"].append({"pid": proc.pid, "port": None})
                fleet._save()
            for k, (proc, _) in enumerate(procs):
                line = proc.stdout.readline() if proc.stdout else b""
                if not line:
                    raise RigError(f"fleet shard {k} exited at start; see {folder / f'shard-{k}.log'}")
                state["shards"][k]["port"] = json.loads(line)["port"]
            fleet._save()
            if rack:
                fleet._start_agent(rack, b, timing)
            want = devices - len((offline or {}).get("ids", []))
            fleet.wait(lambda truth: sum(t["online"] for t in truth.values()) >= want, READY_TIMEOUT_S,
                       f"{want} devices online")
        except BaseException:
            fleet.down()
            raise
        return fleet

    def _start_agent(self, rack: str, b: Broker, timing: Timing | None) -> None:
        """One agent process per board of the rack; returns once every board is enrolled."""
        from rig.lab import load_rack
        from rig.ota.kit import make_keys

        # The campaign kit makes its keys on first use: make them here, once, so every board's
        # bootloader trusts the same campaign key (the agents would race to make one each).
        make_keys(self.folder / "rack")
        self.state["agents"] = []
        procs = []
        for board in load_rack(rack).boards:
            spec = {"broker_host": b.host, "broker_port": b.port, "rack": str(Path(rack).resolve()),
                    "board": board.id, "workdir": str(self.folder / "rack"), "timing": asdict(timing or Timing())}
            path = self.folder / f"agent-{board.id}.json"
            path.write_text(json.dumps(spec))
            log = open(self.folder / f"agent-{board.id}.log", "ab")
            proc = subprocess.Popen([sys.executable, "-m", "rig.fleet.agent", str(path)], stdin=subprocess.DEVNULL,
                                    stdout=subprocess.PIPE, stderr=log, start_new_session=True)
            self.state["agents"].append({"pid": proc.pid, "thing": None})
            procs.append((board.id, proc))
            self._save()
        for k, (board_id, proc) in enumerate(procs):
            # after the board is enrolled (baseline installed and booted)
            line = proc.stdout.readline() if proc.stdout else b""
            if not line:
                raise RigError(f"the rack agent of {board_id} exited while enrolling it; see "
                               f"{self.folder / f'agent-{board_id}.log'}")
            self.state["agents"][k]["thing"] = json.loads(line)["thing"]
        self._save()

    @property
    def rack_things(self) -> list[str]:
        return [a["thing"] for a in self.state.get("agents", [])]

    @classmethod
    def find(cls, folder: Path) -> "Fleet":
        path = Path(folder) / STATE
        if not path.exists():
            raise RigError(f"no fleet is up in {folder}; start one with `rig fleet up`")
        return cls(Path(folder), json.loads(path.read_text()))

    def _save(self) -> None:
        tmp = self.folder / f".{STATE}.tmp"
        tmp.write_text(json.dumps(self.state, indent=1))
        os.replace(tmp, self.folder / STATE)

    def down(self) -> None:
        for shard in self.state.get("shards", []):
            if shard.get("port"):
                try:
                    _get(f"http://127.0.0.1:{shard['port']}/stop", {}, timeout=5)
                except OSError:
                    pass
        for shard in self.state.get("shards", []):
            _stop_pid(shard["pid"], timeout=5)
        for agent in self.state.get("agents", []):
            _stop_pid(agent["pid"], timeout=30)  # it gives its board's lease back
        if self.state.get("recorder_pid"):
            _stop_pid(self.state["recorder_pid"])
        if self.state.get("broker_pid"):
            _stop_pid(self.state["broker_pid"])
        (self.folder / STATE).unlink(missing_ok=True)

    # -- what is true
    @property
    def broker(self) -> str:
        return self.state["broker"]

    @property
    def log(self) -> Path:
        return Path(self.state["log"])

    def truth(self) -> dict[str, dict]:
        out = {}
        for shard in self.state["shards"]:
            for t in _get(f"http://127.0.0.1:{shard['port']}/truth"):
                out[t["id"]] = t
        return out

    def wait(self, condition, timeout: float, what: str, every: float = 0.2) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            truth = self.truth()
            if condition(truth):
                return truth
            if time.monotonic() > deadline:
                raise RigError(f"fleet: no {what} after {timeout:g} s")
            time.sleep(every)

    # -- faults
    def inject(self, kind: str, ids: list[str], **params) -> None:
        if kind not in FAULTS:
            raise RigError(f"fault {kind!r}: one of {', '.join(FAULTS)}")
        for shard in self.state["shards"]:
            _get(f"http://127.0.0.1:{shard['port']}/inject", {"kind": kind, "ids": ids, "params": params})

    def select(self, fraction: float, seed: int, salt: str, variant: str | None = None,
               among: list[str] | None = None) -> list[str]:
        """Seeded choice of devices for a fault: of a variant, of a cohort (`among`), or of all."""
        truth = self.truth()
        ids = [i for i, t in truth.items() if (variant is None or t["variant"] == variant)
               and (among is None or i in set(among))]
        return choose(ids, fraction, seed, salt)
