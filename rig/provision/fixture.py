"""One unit on one fixture, in a process of its own, started by the station (rig.provision.station).

A process per unit, because esptool reports through a process-global logger (rig/drivers/esplog.py)
and neither pyocd nor labgrid is made for threads. The process runs the variant's recipe on the
board and sends the station what happens - step starts and ends, flash progress - and at the end
the unit's record, which the station saves. The process writes nothing to the database itself.

It never outlives the station: a thread waits on a pipe only the station holds open, and when the
station is gone (killed, crashed, powered off) the pipe ends and the process exits at once - in the
middle of a flash write if need be - so no board is written to by a fixture nobody watches.

Its output goes to the station log, never to the station's terminal, and so do the tracebacks of
unexpected failures; the record gets the failure as one line.
"""

import logging
import os
import signal
import sys
import threading
from dataclasses import asdict

from rig.drivers.pool import BoardPool
from rig.errors import RigError
from rig.provision.meter import FlashMeter
from rig.provision.recipe import Recipe, Unit, run
from rig.provision.records import UnitRecord, now

ORPHANED = 70  # exit status when the station went away
COORDINATOR_ENV = "RIG_COORDINATOR"  # where the fixture reaches the places of remote boards
log = logging.getLogger("rig.provision.fixture")


def main(spec, board, recipe: Recipe, env: dict, events, alive) -> None:
    """The target of the fixture process: `events` is the write end of a pipe to the station,
    `alive` the read end of a pipe the station never writes to."""
    _exit_with_station(alive)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C on the terminal is for the station to handle
    os.environ.clear()  # the station's environment, not that of the process this one was forked from
    os.environ.update(env)
    _log_to(spec.log, board.id)
    rec = UnitRecord(chip_id="", variant=board.variant, outcome="failed", operator=spec.operator,
                     station=spec.name, started_at=now(), finished_at="")
    progress = _Progress(events)
    current = "connect"
    meter: FlashMeter | None = None
    unit: Unit | None = None

    def on_step(name: str, state: str) -> None:
        nonlocal current
        current = name
        if meter is not None:
            meter.step = name
        events.send(("step", name, state, rec.chip_id))

    pool = BoardPool(holder=f"rig provision ({spec.name})", lease_timeout=0.0)
    client = None
    try:
        try:
            station = spec.open()
            if "RemotePlace" in board.resources:  # a place on a labgrid coordinator: this process holds it
                from rig.lab.coordinator import Coordinator

                client = Coordinator(os.environ[COORDINATOR_ENV], holder=f"provision-{spec.name}-{board.id}")
                pool = BoardPool(holder=f"rig provision ({spec.name})", lease_timeout=0.0, coordinator=client)
            drivers = pool.take(board)
            meter = FlashMeter(drivers.flasher, progress.report)
            unit = Unit(board, drivers, station, rec)
            run(recipe, unit, on_step)
        except Exception as exc:  # noqa: BLE001 - whatever a step let through ends this unit, not the station
            if not isinstance(exc, RigError):
                log.exception("%s: unexpected failure in %s", board.id, current)
            rec.outcome, rec.reason = "failed", f"{current}: {_one_line(exc)}"
            rec.finished_at = now()
            if unit is not None:
                unit.forget_key()
        if meter is not None:
            meter.annotate(rec.steps)
        log.info("%s: %s %s%s", board.id, rec.chip_id or "(not identified)", rec.outcome,
                 f": {rec.reason}" if rec.reason else "")
        events.send(("record", asdict(rec)))  # the unit is done: the station need not wait for the clean-up
    finally:
        pool.release()
        if client is not None:
            client.close()


def _one_line(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    if isinstance(exc, RigError):
        return text[0] if text else type(exc).__name__
    return f"unexpected {type(exc).__name__}" + (f": {text[0]}" if text else "") + " (traceback in the station log)"


class _Progress:
    """Flash progress to the station, at most once per percent."""

    def __init__(self, events):
        self._events = events
        self._last = None

    def report(self, done: int, total: int) -> None:
        percent = done * 100 // total if total else 100
        if percent != self._last:
            self._last = percent
            self._events.send(("progress", done, total))


def _exit_with_station(alive) -> None:
    def watch():
        try:
            alive.recv()  # the station never sends: this returns or raises only when the pipe ends
        except (EOFError, OSError):
            pass
        os._exit(ORPHANED)

    threading.Thread(target=watch, name="station-watch", daemon=True).start()


def _log_to(path: str, board_id: str) -> None:
    """stdout, stderr and logging into the station log (appending: fixtures share it)."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    sys.stdout.flush()
    sys.stderr.flush()
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    # Warnings of every library; the fixture's own lines. esptool's chatter would bury them.
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, force=True,
                        format=f"%(asctime)s {board_id} [%(process)d] %(name)s: %(message)s")
    log.setLevel(logging.INFO)
