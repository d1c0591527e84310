"""A fleet lab per test: a private mosquitto with its message log, simulated devices in a shard
process, and the rollout engine as a process of its own (so a test can SIGKILL it).

Times are compressed: devices install, reboot and confirm in tens of milliseconds, and the
policies' soak times, deadlines and polls are fractions of a second, so a rollout of a few hundred
devices takes seconds. Verdicts come from `judge` (the broker's log) and the fleet's ground truth.
"""

from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from rig.fleet.broker import read_log
from rig.fleet.control import Fleet
from rig.fleet.device import Timing
from rig.rollout.kit import make_release
from rig.rollout.release import load_release, policy_from
from rig.rollout.service import EngineProcess, ask
from tests.rollout.scenario import FAST


@dataclass
class FleetLab:
    fleet: Fleet
    engine: EngineProcess
    db: str
    work: Path

    def release(self, version: str, **kw) -> Path:
        return make_release(self.work / f"release-{version}", version, key=self.work / "key.pem", code_size=4096,
                            **kw)

    def start(self, release: Path, pol: dict) -> int:
        p = policy_from(pol)
        return int(ask(self.db, "start", args={"release": load_release(release).to_dict(), "policy": p.to_dict()}))

    def ask(self, action: str, rollout_id: int | None = None, **args) -> str:
        return ask(self.db, action, rollout_id, args)

    def log(self):
        return read_log(self.fleet.log)

    def truth(self) -> dict:
        return self.fleet.truth()

    def wait(self, condition, timeout: float = 30.0, what: str = "the condition"):
        return self.fleet.wait(condition, timeout, what)


@pytest.fixture
def rollout_pg(request):
    """A fresh database on the session's PostgreSQL server (tests/provision/conftest.py starts it)."""
    url = request.getfixturevalue("postgres_url")
    name = f"rollouts_{request.node.name.lower()[:40]}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        c.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return make_url(url).set(database=name).render_as_string(hide_password=False)


@pytest.fixture
def fleet_lab(tmp_path):
    made: list[FleetLab] = []

    def make(devices: int, seed: int = 7, mix: dict | None = None, timing: Timing = FAST, broken: str = "",
             db: str | None = None, **fleet_kw) -> FleetLab:
        work = tmp_path / f"lab{len(made)}"
        db = db or f"sqlite:///{work / 'rollouts.db'}"
        engines = []

        def start_engine(url):  # while the devices come up: the engine's imports take a second
            engines.append(EngineProcess(work / "engine", db, url,
                                         env={"RIG_ROLLOUT_BROKEN": broken} if broken else None).start(wait=False))

        try:
            fleet = Fleet.up(work / "fleet", devices, seed, mix, timing=timing, on_broker=start_engine, **fleet_kw)
        except BaseException:
            for e in engines:
                e.stop()
            raise
        try:
            engine = engines[0].ready()
        except BaseException:
            fleet.down()
            raise
        lab = FleetLab(fleet, engine, db, work)
        made.append(lab)
        return lab

    yield make
    for lab in made:
        lab.engine.stop()
        lab.fleet.down()
