"""The boards one process holds: a lease per board, the board's drivers, handed out test by test.

A process holds at most one board at a time and keeps it between uses ("sticky"), so a run of
tests on one board does not reconnect for each. Asking for another board first releases the held
one, then waits for the new lease: a process never waits while holding, so two pytest-xdist
workers can never deadlock on each other's boards.
"""

from rig.drivers.board import BoardDrivers, open_board
from rig.lab import leases
from rig.lab.inventory import Board


class BoardPool:
    def __init__(self, holder: str, lease_timeout: float):
        self._holder = holder
        self._timeout = lease_timeout
        self._lease: leases.Lease | None = None
        self._drivers: dict[str, BoardDrivers] = {}  # bound once per process; connections come and go

    @property
    def held(self) -> str | None:
        return self._lease.board_id if self._lease else None

    def take(self, board: Board) -> BoardDrivers:
        """The board's drivers, with its lease held by this process (waits for other holders)."""
        newly_leased = self.held != board.id
        if newly_leased:
            self.release()
            self._lease = leases.acquire(board.id, timeout=self._timeout, holder=self._holder, where=board.console)
        if board.id not in self._drivers:
            self._drivers[board.id] = open_board(board)
        drivers = self._drivers[board.id]
        if newly_leased:
            drivers.forget_state()  # others may have used the board since this process held it
        return drivers

    def release(self) -> None:
        """Close the held board's connections, then give up its lease."""
        if self._lease is None:
            return
        drivers = self._drivers.get(self._lease.board_id)
        try:
            if drivers is not None:
                drivers.close()
        finally:
            self._lease.release()
            self._lease = None
