"""The boards one process holds: a lease per board, the board's drivers, handed out test by test.

A process holds at most one board at a time and keeps it between uses ("sticky"), so a run of
tests on one board does not reconnect for each. Asking for another board first releases the held
one, then waits for the new lease: a process never waits while holding, so two pytest-xdist
workers can never deadlock on each other's boards.

A board of this host's rack is leased with a kernel lock (rig.lab.leases); a remote board (a place
on a labgrid coordinator) is reserved and acquired through the coordinator, with a lease expiry so
a killed holder's place comes free (rig.lab.coordinator).
"""

from dataclasses import dataclass

from rig.drivers.board import BoardDrivers, open_board
from rig.lab import leases
from rig.lab.coordinator import DEFAULT_EXPIRY_S, Coordinator, remote_place
from rig.lab.inventory import Board
from rig.sim import registry


@dataclass
class PlaceLease:
    """A place held through the coordinator, released like a local lease."""

    board_id: str
    place: str
    coordinator: Coordinator

    def release(self) -> None:
        self.coordinator.release(self.place)


class BoardPool:
    def __init__(self, holder: str, lease_timeout: float, coordinator: Coordinator | None = None,
                 expiry_s: float = DEFAULT_EXPIRY_S):
        self._holder = holder
        self._timeout = lease_timeout
        self._coordinator = coordinator
        self._expiry_s = expiry_s
        self._lease: leases.Lease | PlaceLease | None = None
        self._drivers: dict[str, BoardDrivers] = {}  # bound once per process; connections come and go

    @property
    def held(self) -> str | None:
        return self._lease.board_id if self._lease else None

    def take(self, board: Board) -> BoardDrivers:
        """The board's drivers, with its lease held by this process (waits for other holders)."""
        board = registry.live_board(board)  # a virtual board is leased by the console its lab bound
        newly_leased = self.held != board.id
        if newly_leased:
            self.release()
            self._lease = self._hold(board)
        if isinstance(self._lease, PlaceLease) and newly_leased:
            # An exporter starts a place's ser2net when the place is acquired, on a port of its
            # choosing: a remote board's resources are new with every acquisition.
            self._drivers.pop(board.id, None)
        if board.id not in self._drivers:
            self._drivers[board.id] = open_board(board, self._coordinator)
        drivers = self._drivers[board.id]
        if newly_leased:
            drivers.forget_state()  # others may have used the board since this process held it
        return drivers

    def _hold(self, board: Board) -> leases.Lease | PlaceLease:
        if "RemotePlace" in board.resources and self._coordinator is not None:
            place = remote_place(board)
            self._coordinator.acquire(place, timeout=self._timeout, expiry_s=self._expiry_s)
            return PlaceLease(board.id, place, self._coordinator)
        return leases.acquire(board.id, timeout=self._timeout, holder=self._holder, where=board.console)

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
