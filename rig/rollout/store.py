"""The rollout database: things (the fleet as the service knows it), rollouts, their variant
tracks, job executions, the event log, and requests from the command line to the engine.

SQLite by default, PostgreSQL by URL (any SQLAlchemy URL), as for provisioning records. The
engine is the only writer of rollout state; every decision it takes (a wave advanced or halted,
devices queued, executions timed out, a request carried out) is written in ONE transaction
together with the state it changes, BEFORE anything it causes is published. So an engine killed
at any moment restarts from a state where each decision was either taken whole or not at all:
queued devices are notified again (devices take a job once, by jobId), nothing is queued twice.
"""

import json
import time

from sqlalchemy import (
    JSON,
    Column,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    event,
    insert,
    select,
    update,
)

from rig.database import open_engine

DEFAULT_URL = "sqlite:///.rig/fleet/rollouts.db"

# Execution statuses beyond AWS IoT Jobs': PLANNED (in a cohort, not yet queued) and STUCK (a
# rollback that would go below the device's anti-rollback floor; never sent).
PLANNED, STUCK = "PLANNED", "STUCK"

meta = MetaData()
things = Table(
    "things", meta,
    Column("id", String(64), primary_key=True),
    Column("variant", String(16), nullable=False),
    Column("layout", String(32), nullable=False),
    Column("kind", String(8), nullable=False),  # sim | rack
    Column("version", String(32)),
    Column("confirmed", Integer),
    Column("floor", Integer),
    Column("online", Integer),
    Column("boot_failures", Integer),
    Column("crashes", Integer),
    Column("reconnects", Integer),
    Column("flags", JSON),  # reported
    Column("desired", JSON),
    Column("desired_version", Integer, nullable=False, default=0),
    Column("first_seen", Float),
    Column("last_seen", Float),
)
rollouts = Table(
    "rollouts", meta,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("kind", String(16), nullable=False),  # release | rollback
    Column("parent", Integer),  # the rollout a rollback undoes
    Column("version", String(32), nullable=False),
    Column("release", JSON, nullable=False),
    Column("policy", JSON, nullable=False),
    Column("state", String(16), nullable=False),  # running | paused | halted | aborted | done
    Column("created_at", Float, nullable=False),
)
tracks = Table(
    "tracks", meta,
    Column("rollout_id", Integer, primary_key=True),
    Column("variant", String(16), primary_key=True),
    Column("wave", Integer, nullable=False),
    Column("state", String(16), nullable=False),  # running | halted | done
    Column("wave_started_at", Float, nullable=False),
    Column("boundaries", JSON, nullable=False),
)
executions = Table(
    "executions", meta,
    Column("job_id", String(64), primary_key=True),
    Column("thing", String(64), primary_key=True),
    Column("rollout_id", Integer, nullable=False, index=True),
    Column("variant", String(16), nullable=False),
    Column("wave", Integer, nullable=False),
    Column("status", String(16), nullable=False),
    Column("version_number", Integer, nullable=False, default=0),
    Column("queued_at", Float),
    Column("started_at", Float),
    Column("updated_at", Float),
    Column("succeeded_at", Float),
    Column("from_version", String(32)),
    Column("crashes_at_start", Integer),
    Column("rolled_back", Integer, nullable=False, default=0),  # reported success, then ran the old image again
    Column("client_token", String(64)),
    Column("details", JSON),
)
events = Table(
    "events", meta,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("rollout_id", Integer, index=True),
    Column("at", Float, nullable=False),
    Column("kind", String(32), nullable=False),
    Column("variant", String(16)),
    Column("wave", Integer),
    Column("message", Text, nullable=False),
    Column("data", JSON),
)
requests = Table(
    "requests", meta,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", Float, nullable=False),
    Column("action", String(16), nullable=False),  # start | pause | resume | abort | rollback | flag
    Column("rollout_id", Integer),
    Column("args", JSON),
    Column("done_at", Float),
    Column("result", Text),
)

settings = Table(
    "settings", meta,
    Column("key", String(32), primary_key=True),
    Column("value", Text, nullable=False),
)

EXECUTION_COLUMNS = [c.name for c in executions.columns]


def get_setting(engine, key: str) -> str | None:
    with engine.connect() as c:
        return c.execute(select(settings.c.value).where(settings.c.key == key)).scalar()


def put_setting(engine, key: str, value: str) -> None:
    with engine.begin() as c:
        if not c.execute(update(settings).where(settings.c.key == key).values(value=value)).rowcount:
            c.execute(insert(settings).values(key=key, value=value))


def open_db(url: str):
    return open_engine(url, meta, "rollout database", configure=_sqlite_wal)


def _sqlite_wal(engine) -> None:
    if engine.dialect.name == "sqlite":
        @event.listens_for(engine, "connect")
        def _wal(dbapi, _record):
            # WAL lets `rig rollout status` read while the engine writes; NORMAL sync keeps each
            # commit atomic and durable against a killed process (what we promise) at a fraction
            # of the fsyncs
            dbapi.execute("PRAGMA journal_mode=WAL")
            dbapi.execute("PRAGMA synchronous=NORMAL")
            dbapi.execute("PRAGMA busy_timeout=10000")


def add_event(conn, rollout_id: int | None, kind: str, message: str, variant: str | None = None,
              wave: int | None = None, data: dict | None = None) -> None:
    conn.execute(insert(events).values(rollout_id=rollout_id, at=time.time(), kind=kind, variant=variant, wave=wave,
                                       message=message, data=data))


def request(engine, action: str, rollout_id: int | None = None, args: dict | None = None) -> int:
    with engine.begin() as c:
        return c.execute(insert(requests).values(at=time.time(), action=action, rollout_id=rollout_id,
                                                 args=args or {})).inserted_primary_key[0]


def wait_request(engine, rid: int, timeout: float) -> str | None:
    """The engine's answer to a request, or None if it did not carry it out in time."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with engine.connect() as c:
            row = c.execute(select(requests).where(requests.c.id == rid)).mappings().first()
        if row and row["done_at"] is not None:
            return row["result"]
        time.sleep(0.1)
    return None


def cancel_request(engine, rid: int) -> None:
    with engine.begin() as c:
        c.execute(update(requests).where(requests.c.id == rid, requests.c.done_at.is_(None))
                  .values(done_at=time.time(), result="error: no engine carried it out"))


def summary(engine, rollout_id: int | None = None) -> list[dict]:
    """Rollouts with per (variant, wave) status counts and their events: what `status` prints.
    This is the engine's view, for people; tests judge from the broker's log and the fleet."""
    with engine.connect() as c:
        q = select(rollouts).order_by(rollouts.c.id)
        if rollout_id is not None:
            q = q.where(rollouts.c.id == rollout_id)
        out = []
        for r in c.execute(q).mappings():
            rid = r["id"]
            counts: dict = {}
            for row in c.execute(select(executions.c.variant, executions.c.wave, executions.c.status,
                                        executions.c.rolled_back).where(executions.c.rollout_id == rid)):
                key = f"{row.variant}/{row.wave}"
                status = "ROLLED_BACK" if row.rolled_back else row.status
                counts.setdefault(key, {}).setdefault(status, 0)
                counts[key][status] += 1
            out.append({
                "id": rid, "kind": r["kind"], "parent": r["parent"], "version": r["version"], "state": r["state"],
                "created_at": r["created_at"],
                "tracks": [dict(t) for t in c.execute(select(tracks).where(tracks.c.rollout_id == rid)).mappings()],
                "counts": counts,
                "events": [dict(e) for e in c.execute(select(events).where(events.c.rollout_id == rid)
                                                       .order_by(events.c.id)).mappings()],
            })
        return out


def dumps(obj) -> str:
    return json.dumps(obj, sort_keys=True, default=str)
