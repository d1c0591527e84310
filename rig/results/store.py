"""The results store: runs, their results, health checks and quarantine, in SQLite or PostgreSQL.

SQLite at `<runtime dir>/results.db` by default (rig.lab.runtime: $RIG_RUNTIME_DIR, where labs
and leases live too); any SQLAlchemy URL with `--rig-results URL`, `--results URL` or $RIG_RESULTS
(postgresql+psycopg://USER@HOST/DB). Every write is one transaction: a run's row, or one result
with everything it says (console slice, read-back facts), or one health check with the quarantine
it causes - so a session killed at any point leaves whole results or none, never half of one.

A run is `running` while its process lives. A process killed outright (kill -9, a power loss)
cannot say so; `reap()` - called whenever the store is opened - marks every `running` run of this
host whose process is gone (pid no longer alive, or reused by another process) `interrupted`. A run
of another host is reaped the next time that host opens the store.
"""

import os
import socket
from datetime import UTC, datetime

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    func,
    select,
)
from sqlalchemy.exc import SQLAlchemyError

from rig.database import open_engine, safe_url
from rig.errors import RigError
from rig.lab.runtime import runtime_dir

ENV = "RIG_RESULTS"
KINDS = ("pytest", "ota", "demo", "provision", "junit")
RUN_STATUSES = ("running", "passed", "failed", "interrupted")
OUTCOMES = ("passed", "failed", "error", "skipped")
CONSOLE_LIMIT = 64 * 1024  # characters of console slice and failure text kept per result (the tail)

meta = MetaData()
runs = Table(
    "runs", meta,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("kind", String(16), nullable=False),
    Column("status", String(16), nullable=False),
    Column("started_at", String(32), nullable=False),
    Column("finished_at", String(32)),
    Column("duration", Float),
    Column("who", String(64), nullable=False),
    Column("host", String(128), nullable=False),
    Column("pid", Integer, nullable=False),
    Column("pid_started", String(32), nullable=False),  # tells a live run from a reused pid
    Column("revision", String(64)),
    Column("rack", Text),
    Column("command", Text),
    Column("firmware", JSON),  # firmware versions the boards booted in this run
    Column("note", Text),  # e.g. why a run was interrupted
)
results = Table(
    "results", meta,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", Integer, ForeignKey("runs.id"), nullable=False, index=True),
    Column("test_id", Text, nullable=False),
    Column("test_key", Text, nullable=False, index=True),  # the test without its board: compares boards
    Column("board", String(64), index=True),
    Column("variant", String(16)),
    Column("scenario", Text),
    Column("outcome", String(16), nullable=False),
    Column("duration", Float, nullable=False, default=0.0),
    Column("retries", Integer, nullable=False, default=0),
    Column("expected", Text),  # OTA: the expected outcome; provisioning: -
    Column("observed", Text),  # OTA verdict; provisioning: provisioned | refused | failed
    Column("wire_bytes", Integer),
    Column("rollbacks", Text),
    Column("read_back", Text),
    Column("firmware", Text),  # the version the board's app said it booted
    Column("message", Text),  # failure or skip text
    Column("console", Text),  # the board's console during the test
    Column("output", Text),  # the test's other captured output (campaign steps, faults)
    Column("facts", JSON),  # every property the test reported, as reported
    Column("finished_at", String(32), nullable=False),
)
health_checks = Table(
    "health_checks", meta,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("board", String(64), nullable=False, index=True),
    Column("variant", String(16)),
    Column("at", String(32), nullable=False),
    Column("ok", Boolean, nullable=False),
    Column("reason", Text),
    Column("steps", JSON),  # [{"name", "ok", "seconds", "detail"}]
    Column("console", Text),
)
quarantine_events = Table(
    "quarantine_events", meta,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("board", String(64), nullable=False, index=True),
    Column("at", String(32), nullable=False),
    Column("action", String(16), nullable=False),  # quarantined | released
    Column("reason", Text, nullable=False),
    Column("who", String(64), nullable=False),
)


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def shorten(text: str, limit: int = CONSOLE_LIMIT) -> str:
    """At most `limit` characters: the first line (what the text is) and the tail (how it ended)."""
    if len(text) <= limit:
        return text
    head = text.split("\n", 1)[0][:200]
    tail = text[-(limit - len(head) - 64):]
    return f"{head}\n[... {len(text) - len(head) - len(tail)} characters left out ...]\n{tail}"


def default_url() -> str:
    return os.environ.get(ENV) or f"sqlite:///{runtime_dir() / 'results.db'}"


def who() -> str:
    try:
        return os.getlogin()
    except OSError:
        import pwd

        return pwd.getpwuid(os.getuid()).pw_name


def process_started(pid: int) -> str:
    """When process `pid` started (clock ticks since boot, /proc/PID/stat field 22), '' if it is gone."""
    try:
        stat = open(f"/proc/{pid}/stat").read()
    except OSError:
        return ""
    return stat.rsplit(")", 1)[1].split()[19]  # fields after the command name; starttime is the 20th


class Store:
    def __init__(self, url: str | None = None):
        self.url = url or default_url()
        if self.url.startswith("sqlite:///"):
            from pathlib import Path

            Path(self.url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        self.engine = open_engine(self.url, meta, "results store")
        self.reap()

    def close(self) -> None:
        self.engine.dispose()

    # -- writing
    def _write(self, what: str, fn):
        try:
            with self.engine.begin() as c:
                return fn(c)
        except SQLAlchemyError as exc:
            reason = str(getattr(exc, "orig", exc)).strip().splitlines()[0]
            raise RigError(f"results store {safe_url(self.url)}: {what} not saved: {reason}") from None

    def start_run(self, kind: str, rack: str | None = None, command: str | None = None,
                  revision: str | None = None, started_at: str | None = None) -> int:
        """A new run, `running` while this process lives; its id."""
        assert kind in KINDS, kind
        row = dict(kind=kind, status="running", started_at=started_at or now(), who=who(),
                   host=socket.gethostname(), pid=os.getpid(), pid_started=process_started(os.getpid()),
                   revision=revision, rack=rack, command=command)
        return self._write("the run", lambda c: c.execute(runs.insert().values(**row)).inserted_primary_key[0])

    def add_result(self, run_id: int, **fields) -> int:
        """One result, whole, in one transaction."""
        row = {"finished_at": now(), "test_key": fields.get("test_id"), **fields}
        assert row["outcome"] in OUTCOMES, row["outcome"]
        for long in ("console", "message", "output"):
            if row.get(long):
                row[long] = shorten(row[long])
        return self._write(f"result {row['test_id']}",
                           lambda c: c.execute(results.insert().values(run_id=run_id, **row)).inserted_primary_key[0])

    def finish_run(self, run_id: int, status: str | None = None, note: str | None = None,
                   finished_at: str | None = None) -> str:
        """Close the run: `status` or, by default, failed if any result failed else passed."""
        def finish(c):
            run = c.execute(select(runs).where(runs.c.id == run_id)).mappings().one()
            failures = c.execute(select(func.count()).select_from(results).where(
                results.c.run_id == run_id, results.c.outcome.in_(("failed", "error")))).scalar()
            firmware = sorted({f for (f,) in c.execute(select(results.c.firmware).where(
                results.c.run_id == run_id, results.c.firmware.is_not(None))) if f})
            final = status or ("failed" if failures else "passed")
            end = finished_at or now()
            c.execute(runs.update().where(runs.c.id == run_id).values(
                status=final, finished_at=end, note=note, firmware=firmware,
                duration=_seconds_between(run["started_at"], end)))
            return final
        return self._write(f"the end of run {run_id}", finish)

    def reap(self) -> list[int]:
        """Mark `interrupted` every running run of this host whose process is gone; their ids."""
        host = socket.gethostname()
        with self.engine.connect() as c:
            candidates = c.execute(select(runs.c.id, runs.c.pid, runs.c.pid_started).where(
                runs.c.status == "running", runs.c.host == host)).all()
        dead = [run_id for run_id, pid, started in candidates if process_started(pid) != started]
        if dead:
            def mark(c):
                for run_id in dead:
                    last = c.execute(select(func.max(results.c.finished_at)).where(results.c.run_id == run_id)).scalar()
                    c.execute(runs.update().where(runs.c.id == run_id, runs.c.status == "running").values(
                        status="interrupted", finished_at=last, note="the process ended without finishing the run "
                        "(killed?); results recorded before that are kept"))
            self._write("interrupted runs", mark)
        return dead

    # -- reading
    def run(self, run_id: int) -> dict | None:
        with self.engine.connect() as c:
            row = c.execute(select(runs).where(runs.c.id == run_id)).mappings().first()
            return dict(row) if row else None

    def last_run_id(self) -> int | None:
        with self.engine.connect() as c:
            return c.execute(select(func.max(runs.c.id))).scalar()

    def runs(self, limit: int | None = None, kind: str | None = None) -> list[dict]:
        """Runs, newest first, each with its counts per outcome (`counts`: {outcome: n})."""
        query = select(runs).order_by(runs.c.id.desc())
        if kind:
            query = query.where(runs.c.kind == kind)
        if limit:
            query = query.limit(limit)
        with self.engine.connect() as c:
            rows = [dict(r) for r in c.execute(query).mappings()]
            if not rows:
                return rows
            ids = [r["id"] for r in rows]
            counts: dict[int, dict] = {i: {} for i in ids}
            for run_id, outcome, n in c.execute(
                    select(results.c.run_id, results.c.outcome, func.count())
                    .where(results.c.run_id.in_(ids)).group_by(results.c.run_id, results.c.outcome)):
                counts[run_id][outcome] = n
        for r in rows:
            r["counts"] = {o: counts[r["id"]].get(o, 0) for o in OUTCOMES}
        return rows

    def results(self, run_id: int | None = None, board: str | None = None, test_key: str | None = None) -> list[dict]:
        query = select(results).order_by(results.c.id)
        if run_id is not None:
            query = query.where(results.c.run_id == run_id)
        if board is not None:
            query = query.where(results.c.board == board)
        if test_key is not None:
            query = query.where(results.c.test_key == test_key)
        with self.engine.connect() as c:
            return [dict(r) for r in c.execute(query).mappings()]

    # -- health and quarantine
    def add_health_check(self, board: str, variant: str, ok: bool, reason: str | None, steps: list,
                         console: str = "", quarantine_who: str | None = None) -> None:
        """Record a health check; a failed one quarantines the board (same transaction)."""
        at = now()

        def write(c):
            c.execute(health_checks.insert().values(board=board, variant=variant, at=at, ok=ok, reason=reason,
                                                    steps=steps, console=shorten(console)))
            if not ok and _quarantine_of(c, board) is None:
                c.execute(quarantine_events.insert().values(board=board, at=at, action="quarantined",
                                                            reason=f"health check failed: {reason}",
                                                            who=quarantine_who or who()))
        self._write(f"the health check of {board}", write)

    def last_health(self, board: str) -> dict | None:
        with self.engine.connect() as c:
            row = c.execute(select(health_checks).where(health_checks.c.board == board)
                            .order_by(health_checks.c.id.desc()).limit(1)).mappings().first()
            return dict(row) if row else None

    def quarantine(self, board: str, reason: str, by: str | None = None) -> bool:
        """Quarantine `board`; False if it already was."""
        def write(c):
            if _quarantine_of(c, board) is not None:
                return False
            c.execute(quarantine_events.insert().values(board=board, at=now(), action="quarantined", reason=reason,
                                                        who=by or who()))
            return True
        return self._write(f"the quarantine of {board}", write)

    def release(self, board: str, by: str | None = None) -> dict | None:
        """Return `board` to service; the quarantine it was in, or None if it was not quarantined."""
        def write(c):
            current = _quarantine_of(c, board)
            if current is not None:
                c.execute(quarantine_events.insert().values(board=board, at=now(), action="released",
                                                            reason=f"released from: {current['reason']}",
                                                            who=by or who()))
            return current
        return self._write(f"the release of {board}", write)

    def quarantined(self) -> dict[str, dict]:
        """Boards in quarantine now: {board: {"since", "reason", "who"}}."""
        with self.engine.connect() as c:
            latest = select(func.max(quarantine_events.c.id)).group_by(quarantine_events.c.board)
            rows = c.execute(select(quarantine_events).where(quarantine_events.c.id.in_(latest))).mappings()
            return {r["board"]: {"since": r["at"], "reason": r["reason"], "who": r["who"]}
                    for r in rows if r["action"] == "quarantined"}

    def released_at(self, board: str) -> str | None:
        """When `board` last came back from quarantine (its test streak starts there)."""
        with self.engine.connect() as c:
            return c.execute(select(func.max(quarantine_events.c.at)).where(
                quarantine_events.c.board == board, quarantine_events.c.action == "released")).scalar()

    def quarantine_history(self, board: str | None = None) -> list[dict]:
        query = select(quarantine_events).order_by(quarantine_events.c.id)
        if board:
            query = query.where(quarantine_events.c.board == board)
        with self.engine.connect() as c:
            return [dict(r) for r in c.execute(query).mappings()]


def _quarantine_of(c, board: str) -> dict | None:
    row = c.execute(select(quarantine_events).where(quarantine_events.c.board == board)
                    .order_by(quarantine_events.c.id.desc()).limit(1)).mappings().first()
    return dict(row) if row and row["action"] == "quarantined" else None


def _seconds_between(start: str, end: str | None) -> float | None:
    if not end:
        return None
    return round((datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds(), 3)
