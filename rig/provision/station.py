"""The provisioning station: what it holds for every unit, and how it runs units on N fixtures.

    Station       - keys, CA, firmware, recipe options, records; one per `rig provision run`
                    (rig.provision.setup builds it from the command's options)
    Firmware      - what a variant's units get flashed with
    run_units     - every board's unit, up to N at once, each in a process of its own
                    (rig.provision.fixture), each record saved by the station in one transaction
"""

import logging
import multiprocessing
import multiprocessing.connection
import os
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, cast

from sqlalchemy.exc import SQLAlchemyError

from rig.errors import RigError
from rig.image.keys import Signer
from rig.provision.records import UnitRecord, now

if TYPE_CHECKING:
    import multiprocessing.process

    from cryptography import x509

    from rig.lab import Board
    from rig.provision.identity import KeyMaker
    from rig.provision.records import Records


@dataclass(frozen=True)
class Firmware:
    """A variant's factory firmware, already signed with the station's firmware signer for that variant.

    STM32: `image` is the signed MCUboot image for slot0, `bootloader` the MCUboot binary that
    trusts the firmware key (on a virtual board: rig.sim.stm32.vmcuboot.build(layout, [key])).
    ESP32: `image` is the ESP-IDF app image with its Secure Boot V2 signature sector
    (rig.image.sbv2.sign), `bootloader` the second-stage bootloader (rig.image.esp_app.bootloader_image()).
    """

    image: bytes
    bootloader: bytes


@dataclass
class Station:
    name: str  # the station's name in records ("station-1", the host name by default)
    operator: str  # who runs it (the login name by default)
    records: "Records"
    ca_cert: "x509.Certificate"  # of the provisioning CA
    ca_signer: Signer  # the CA's key (PEM file or PKCS#11)
    keys: "KeyMaker"  # .generate() -> EC P-256 private key
    # variant -> the key that signs its factory images (of a kind its boot chain verifies: rig.variants);
    # its public key is the device's firmware-verification key
    firmware_signers: dict[str, Signer]
    firmware: dict[str, Firmware]  # variant -> firmware
    force: bool = False  # re-provision units that already have a record
    # Recipe options per variant, e.g. {"esp32": {"disable_download": False, "disable_jtag": True},
    # "stm32h7": {"rdp": 1}}; a variant module documents the options it reads and their defaults.
    options: dict = field(default_factory=dict)


# -- the runner: units on N fixtures at once, each in a process of its own (rig.provision.fixture)

# Imported once by the fork server, so a fixture process starts in milliseconds instead of
# importing labgrid, esptool and pyocd again for every unit.
PRELOAD = ["rig.provision.fixture", "rig.provision.variants", "rig.provision.esp32", "rig.provision.stm32",
           "esptool.cmds", "espefuse", "pyocd.core.helpers", "pyocd.flash.loader", "pyocd.flash.eraser",
           "sqlalchemy.dialects.sqlite", "cryptography.x509"]
log = logging.getLogger("rig.provision.station")


@dataclass
class UnitResult:
    """What the station knows of one board at the end of a run."""

    board: str
    outcome: str  # provisioned | refused | failed
    reason: str | None
    serial: str | None
    seconds: float  # from the fixture process's start to the record saved
    start_seconds: float  # from the process's start to its first step: the price of a process per unit
    save_seconds: float  # saving the record
    record: UnitRecord | None  # None: the unit was never identified, so there is nothing to record


@dataclass
class _Fixture:
    board: "Board"
    process: "multiprocessing.process.BaseProcess"
    events: "multiprocessing.connection.Connection"  # read end of the fixture's event pipe
    alive: "multiprocessing.connection.Connection"  # write end of the pipe whose end stops the fixture
    started: float  # monotonic
    started_at: str  # wall clock, for a record the station has to write itself
    first_step: float | None = None
    chip_id: str = ""
    step: str = "connect"
    steps: list = field(default_factory=list)  # as the events tell them, for a process that dies mid-unit
    record: UnitRecord | None = None
    result: UnitResult | None = None


def run_units(spec, records, boards, fixtures: int, on_event=None, recipes: dict | None = None) -> list[UnitResult]:
    """Provision `boards`, up to `fixtures` at once; save each unit's record in one transaction.

    on_event(board_id, kind, *args) follows the units: ("start",), ("step", name, state) with state
    running | done | refused | failed, ("progress", done, total) while flashing, ("done", UnitResult).
    `recipes` (variant -> Recipe) defaults to rig.provision.variants'.
    """
    from rig.provision import variants

    notify = on_event or (lambda board_id, kind, *args: None)
    recipes = recipes or {b.variant: variants.recipe(b.variant) for b in boards}
    context = warm_up()
    waiting, results = list(boards), []
    running: dict[multiprocessing.connection.Connection, _Fixture] = {}
    # A fixture is free again once its unit's record is in: its process then only closes its
    # connections to the board and exits, which the next unit need not wait for.
    try:
        while waiting or running:
            while waiting and sum(f.result is None for f in running.values()) < max(1, fixtures):
                board = waiting.pop(0)
                fixture = _start(context, spec, board, recipes[board.variant])
                running[fixture.events] = fixture
                notify(board.id, "start")
            for ready in multiprocessing.connection.wait(list(running)):
                conn = cast("multiprocessing.connection.Connection", ready)  # wait() returns what it was given
                fixture = running[conn]
                try:
                    _receive(fixture, conn.recv(), notify)
                except EOFError:  # the fixture process has ended
                    del running[conn]
                    fixture.process.join()
                    fixture.alive.close()
                if fixture.result is None and (fixture.record is not None or conn not in running):
                    fixture.result = _finish(fixture, spec, records)
                    results.append(fixture.result)
                    notify(fixture.board.id, "done", fixture.result)
    finally:
        for fixture in running.values():  # the station is stopping early: so do its fixtures, now
            fixture.process.kill()
            fixture.process.join()
    return results


def warm_up():
    """The fork server, started with the fixture modules imported (it imports them while the caller
    goes on); the multiprocessing context to start fixtures from."""
    from multiprocessing import forkserver

    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(PRELOAD)
    forkserver.ensure_running()
    return context


def _start(context, spec, board, recipe) -> _Fixture:
    from rig.provision import fixture

    events_r, events_w = context.Pipe(duplex=False)
    alive_r, alive_w = context.Pipe(duplex=False)
    process = context.Process(target=fixture.main, name=f"fixture {board.id}", daemon=True,
                              args=(spec, board, recipe, dict(os.environ), events_w, alive_r))
    started = time.monotonic()
    process.start()
    events_w.close()  # the fixture holds the only write end: its exit ends the pipe
    alive_r.close()
    return _Fixture(board, process, events_r, alive_w, started, now())


def _receive(fixture: _Fixture, event: tuple, notify) -> None:
    kind, *args = event
    if kind == "step":
        name, state, chip_id = args
        at = time.monotonic()
        fixture.first_step = fixture.first_step or at
        fixture.step, fixture.chip_id = name, chip_id or fixture.chip_id
        if state == "running":
            fixture.steps.append({"name": name, "ok": False, "seconds": 0.0, "measurements": {}, "started": at})
        else:
            entry = fixture.steps[-1]
            entry["ok"], entry["seconds"] = state == "done", round(at - entry["started"], 3)
        notify(fixture.board.id, "step", name, state)
    elif kind == "progress":
        notify(fixture.board.id, "progress", *args)
    elif kind == "record":
        fixture.record = UnitRecord(**args[0])


def _finish(fixture: _Fixture, spec, records) -> UnitResult:
    rec = fixture.record
    if rec is None and fixture.chip_id:  # the process died without a word (a crash below Python)
        if fixture.steps[-1]["ok"]:  # died between steps
            fixture.steps.append({"name": "(between steps)", "ok": False, "seconds": 0.0, "measurements": {}})
        else:
            fixture.steps[-1]["seconds"] = round(time.monotonic() - fixture.steps[-1]["started"], 3)
        rec = UnitRecord(chip_id=fixture.chip_id, variant=fixture.board.variant, outcome="failed",
                         operator=spec.operator, station=spec.name, started_at=fixture.started_at, finished_at=now(),
                         reason=f"{fixture.step}: the fixture process died (exit status {fixture.process.exitcode})",
                         steps=[{k: v for k, v in s.items() if k != "started"} for s in fixture.steps])
    reason: str | None
    if rec is None:
        outcome, reason = "failed", (f"{fixture.step}: the fixture process ended (exit status "
                                     f"{fixture.process.exitcode}) before the unit was identified")
    else:
        outcome, reason = rec.outcome, rec.reason
    saving = time.monotonic()
    if rec is not None and rec.chip_id:  # a unit never identified has no record: no unit to file it under
        try:
            records.save(rec)
        except (RigError, SQLAlchemyError) as exc:  # the unit has no record, so the next run does it again
            outcome, reason = "failed", f"record not saved: {str(exc).strip().splitlines()[0]}"
            log.error("%s: record of %s not saved: %s", fixture.board.id, rec.chip_id, exc)
    saved = time.monotonic() - saving
    seconds = time.monotonic() - fixture.started
    start = (fixture.first_step or time.monotonic()) - fixture.started
    chip_id, serial = (rec.chip_id, rec.serial) if rec else (None, None)
    log.info("%s: %s %s %s%s (%.1f s)", fixture.board.id, chip_id or "-", serial or "-", outcome,
             f": {reason}" if reason else "", seconds)
    return UnitResult(fixture.board.id, outcome, reason, serial, round(seconds, 2), round(start, 3), round(saved, 3),
                      rec)
