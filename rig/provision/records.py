"""The station's records: one row per unit, the full history of every attempt, and an audit log.

SQLite by default, PostgreSQL by URL (any SQLAlchemy URL). Each unit's outcome is written in ONE
transaction - the unit row, its history row and the audit entry together - so a crash or power
loss of the station leaves either the whole record or none of it, never half. An interrupted unit
therefore simply has no record yet and is provisioned again from the start on the next run.
Nothing here ever stores private key material: the schema has no column for it.
"""

import csv
import io
import json
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime

from sqlalchemy import JSON, Boolean, Column, ForeignKey, Integer, MetaData, String, Table, Text, select
from sqlalchemy.exc import IntegrityError

from rig.database import open_engine
from rig.errors import RigError

OUTCOMES = ("provisioned", "refused", "failed")
DEFAULT_URL = "sqlite:///provisioning.db"

meta = MetaData()
units = Table(
    "units", meta,
    Column("serial", String(64), primary_key=True),
    Column("chip_id", String(64), nullable=False, unique=True),
    Column("variant", String(16), nullable=False),
    Column("first_provisioned_at", String(32), nullable=False),
    Column("last_provisioned_at", String(32), nullable=False),
)
attempts = Table(
    "attempts", meta,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("serial", String(64), ForeignKey("units.serial"), nullable=True),
    Column("chip_id", String(64), nullable=False, index=True),
    Column("variant", String(16), nullable=False),
    Column("outcome", String(16), nullable=False),
    Column("reason", Text),
    Column("forced", Boolean, nullable=False, default=False),
    Column("operator", String(64), nullable=False),
    Column("station", String(64), nullable=False),
    Column("started_at", String(32), nullable=False),
    Column("finished_at", String(32), nullable=False),
    # The same identity must never be given twice: a fingerprint is unique across all units.
    Column("key_fingerprint", String(64), unique=True),
    Column("certificate", Text),
    Column("firmware_sha256", String(64)),
    Column("bootloader_sha256", String(64)),
    Column("lock_state", JSON),
    Column("steps", JSON),
)
audit = Table(
    "audit", meta,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", String(32), nullable=False),
    Column("operator", String(64), nullable=False),
    Column("station", String(64), nullable=False),
    Column("action", String(32), nullable=False),
    Column("chip_id", String(64)),
    Column("detail", Text),
)


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


@dataclass
class UnitRecord:
    """Everything the station learned about one unit in one attempt."""

    chip_id: str
    variant: str
    outcome: str
    operator: str
    station: str
    started_at: str
    finished_at: str
    serial: str | None = None
    reason: str | None = None
    forced: bool = False
    key_fingerprint: str | None = None
    certificate: str | None = None
    firmware_sha256: str | None = None
    bootloader_sha256: str | None = None
    lock_state: dict = field(default_factory=dict)
    steps: list = field(default_factory=list)  # [{"name", "ok", "seconds", "measurements": {...}}]


class Records:
    def __init__(self, url: str = DEFAULT_URL):
        self.engine = open_engine(url, meta, "records database")

    def provisioned(self, chip_id: str) -> dict | None:
        """The unit row if this chip was provisioned before, else None."""
        with self.engine.connect() as c:
            row = c.execute(select(units).where(units.c.chip_id == chip_id)).mappings().first()
            return dict(row) if row else None

    def save(self, rec: UnitRecord) -> None:
        """Write one attempt - unit row, history row, audit entry - in a single transaction."""
        if rec.outcome not in OUTCOMES:
            raise RigError(f"record for {rec.chip_id}: outcome {rec.outcome!r} is not one of {', '.join(OUTCOMES)}")
        row = asdict(rec)
        try:
            with self.engine.begin() as c:
                existing = c.execute(select(units).where(units.c.chip_id == rec.chip_id)).mappings().first()
                if rec.outcome == "provisioned":
                    if existing and not rec.forced:
                        raise RigError(f"unit {rec.chip_id} is already provisioned as {existing['serial']}; "
                                       "re-provision with --force")
                    if existing:
                        c.execute(units.update().where(units.c.chip_id == rec.chip_id)
                                  .values(serial=existing["serial"], last_provisioned_at=rec.finished_at))
                        row["serial"] = existing["serial"]
                    else:
                        c.execute(units.insert().values(serial=rec.serial, chip_id=rec.chip_id, variant=rec.variant,
                                                        first_provisioned_at=rec.finished_at,
                                                        last_provisioned_at=rec.finished_at))
                elif not existing:
                    row["serial"] = None  # a refused or failed unit has no serial of its own yet
                c.execute(attempts.insert().values(**row))
                c.execute(audit.insert().values(
                    at=rec.finished_at, operator=rec.operator, station=rec.station,
                    action=f"{'re-' if rec.forced else ''}{rec.outcome}", chip_id=rec.chip_id, detail=rec.reason))
        except IntegrityError as exc:
            raise RigError(f"record for {rec.chip_id} refused by the database (an identity or serial given twice?): "
                           f"{str(exc.orig).strip().splitlines()[0]}") from None

    def history(self, chip_id: str | None = None) -> list[dict]:
        query = select(attempts).order_by(attempts.c.id)
        if chip_id:
            query = query.where(attempts.c.chip_id == chip_id)
        with self.engine.connect() as c:
            return [dict(r) for r in c.execute(query).mappings()]

    def audit_log(self) -> list[dict]:
        with self.engine.connect() as c:
            return [dict(r) for r in c.execute(select(audit).order_by(audit.c.id)).mappings()]

    def export(self, fmt: str) -> str:
        """Every attempt, as JSON (full) or CSV (one line per attempt, nested fields as JSON)."""
        rows = self.history()
        if fmt == "json":
            return json.dumps(rows, indent=2)
        if fmt != "csv":
            raise RigError(f"export format {fmt!r}: choose csv or json")
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=[c.name for c in attempts.columns])
        writer.writeheader()
        for r in rows:
            writer.writerow({k: json.dumps(v) if isinstance(v, dict | list) else v for k, v in r.items()})
        return buf.getvalue()
