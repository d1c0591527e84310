"""Recipes: the ordered, named steps that make one unit a provisioned device, and what each measures.

In the manner of a manufacturing test framework's phases: a step is a function of the unit that
does one thing to it (identify, flash, write identity, lock, ...) and returns its measurements -
a flat dict of name -> JSON value (hashes, ids, sizes, states) that goes into the unit's record
beside the step's time. A step that finds the unit unfit raises Refused (e.g. already provisioned);
one that cannot do its work raises a RigError (flash read-back differs, lock not in force, ...).
Both end the unit; the station then records the outcome in one transaction (rig.provision.records).

Each variant module (rig.provision.esp32, rig.provision.stm32) exports RECIPES (variant -> Recipe)
and OPTIONS (recipe option -> default; rig.provision.variants finds them); a recipe's steps share
one Unit. Steps fill the unit's `record` (chip_id, serial, hashes, lock_state, ...) as
they learn things; the device's private key lives only in `unit.device_key`, which no record,
log or file ever sees - the identity step creates it and the step that writes it to the device
drops it (`unit.forget_key()`).
"""

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from rig.errors import RigError
from rig.provision.records import UnitRecord, now

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric import ec

    from rig.drivers import BoardDrivers
    from rig.lab import Board
    from rig.provision.station import Station


class Refused(RigError):
    """The unit must not be provisioned as it is (already provisioned, wrong part, ...)."""


@dataclass(frozen=True)
class Step:
    name: str
    run: Callable[["Unit"], dict]
    doc: str = ""  # one line: what the step does and what it checks


@dataclass(frozen=True)
class Recipe:
    variant: str
    steps: tuple[Step, ...]


@dataclass
class Unit:
    """One board on one fixture during one attempt."""

    board: "Board"
    drivers: "BoardDrivers"
    station: "Station"  # keys, CA, firmware, recipe options, records
    record: UnitRecord
    device_key: "ec.EllipticCurvePrivateKey | None" = None  # in memory only
    scratch: dict = field(default_factory=dict)  # what one step hands the next (never recorded)
    # What steps keep open for the steps after them (an esptool session); closed when a step asks
    # (release()) or when the recipe ends, however it ends.
    held: contextlib.ExitStack = field(default_factory=contextlib.ExitStack)

    def forget_key(self) -> None:
        self.device_key = None

    def release(self) -> None:
        """Close what earlier steps kept open."""
        self.held.close()


def run(recipe: Recipe, unit: Unit, on_step: Callable[[str, str], None] | None = None) -> UnitRecord:
    """Run the steps in order; fill the record's outcome, reason, steps and times. Never raises
    for a unit's own failure: a refused or failed unit is a record like a provisioned one."""
    rec = unit.record
    notify = on_step or (lambda name, state: None)
    try:
        with unit.held:
            _steps(recipe, unit, notify)
    except RigError as exc:  # closing what the steps kept open failed (an esptool session's last reset)
        if rec.outcome == "provisioned":
            rec.outcome, rec.reason = "failed", f"{recipe.steps[-1].name}: {exc}"
    unit.forget_key()
    rec.finished_at = now()
    return rec


def _steps(recipe: Recipe, unit: Unit, notify: Callable[[str, str], None]) -> None:
    rec = unit.record
    for step in recipe.steps:
        notify(step.name, "running")
        started = time.monotonic()
        entry = {"name": step.name, "ok": False, "seconds": 0.0, "measurements": {}}
        rec.steps.append(entry)
        try:
            entry["measurements"] = step.run(unit) or {}
            entry["ok"] = True
        except Refused as exc:
            rec.outcome, rec.reason = "refused", str(exc)
        except RigError as exc:
            rec.outcome, rec.reason = "failed", f"{step.name}: {exc}"
        finally:
            entry["seconds"] = round(time.monotonic() - started, 3)
        notify(step.name, "done" if entry["ok"] else rec.outcome)
        if not entry["ok"]:
            break
    else:
        rec.outcome = "provisioned"
