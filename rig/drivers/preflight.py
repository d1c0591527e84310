"""Pre-flight: refuse to start work on boards that are locked, with one line per board.

A provisioned board is locked as a real one is (STM32 readout protection, ESP32 Secure Boot and
flash encryption in eFuse, download mode disabled): tests and campaigns that flash development
images would fail on it one by one, each with a fault that does not say why. The pytest plugin,
`rig ota`, `rig demo` and `rig flash` check first; each board's flasher reads the lock from the
chip (BoardDrivers.preflight, one method per flasher kind: FlashProtocol.lock).
"""

from collections.abc import Iterable

from rig.drivers.board import BoardDrivers
from rig.drivers.pool import BoardPool
from rig.errors import RigError, RigErrors
from rig.lab.inventory import Board


def check(drivers: BoardDrivers, rack: str | None = None) -> str | None:
    """The board's pre-flight line (state and way out), None when it is open - or cannot be
    asked: a board whose probe or ROM loader does not answer shows no lock (download mode
    disabled looks like that too); the health check and the work itself report it in their words,
    and a quarantined board must not stop the others."""
    try:
        return drivers.preflight(rack)
    except RigError:
        return None


def locked(pool: BoardPool, boards: Iterable[Board], rack: str | None = None) -> list[str]:
    """One line per locked board, taking each board's lease in turn; `rack` as the user named it."""
    return [line for line in (check(pool.take(board), rack) for board in boards) if line]


def refuse(lines: list[str | None], what: str) -> None:
    """RigErrors when any board's pre-flight line (None: open) says it is locked: one line per
    locked board, then what stopped; `what` needs open boards."""
    found = [line for line in lines if line]
    if found:
        raise RigErrors(found + [f"{what} stopped before it started: {len(found)} of {len(lines)} boards locked"])
