"""rig's side of a labgrid coordinator: places with rig's facts, remote boards, reservations.

A connection is labgrid's own ClientSession (the one `labgrid-client` uses) running on an event
loop in a thread of its own, so synchronous callers (pytest, the CLI) can use it while the session
keeps receiving the coordinator's place and resource updates.

Places: each exported board is one place, named `<exporter>-<board>`, matching every resource of
the exporter's group for the board (`<exporter>/<board>/*`), tagged with rig's facts:
`variant`, `layout`, `virtual`, `rig_tags` (the RigBoard tags, comma-separated), `board`, `rack`.

Holding a place: labgrid keeps a place acquired for ever when its holder dies (labgrid issues
#1415, #1253: an acquired reservation never expires). So a holder also writes a lease expiry into
the place's tag `rig_expires` (unix seconds) and renews it while it lives; anyone waiting for a
place whose rig lease has run out releases it from the dead holder (labgrid's `release --kick`)
and cancels the dead holder's reservation. Places acquired by people (no `rig_expires` tag) are
never taken away. Holders and waiters compare wall clocks: lab hosts keep NTP time.
"""

import asyncio
import contextlib
import getpass
import logging
import os
import socket
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path

from rig.errors import RigError, RigErrors
from rig.lab.inventory import Board
from rig.variants import VARIANTS

RIG_TAGS = ("variant", "layout", "virtual", "rig_tags", "board", "rack")
EXPIRES = "rig_expires"
DEFAULT_EXPIRY_S = 60.0
POLL_S = 0.25
CALL_TIMEOUT_S = 30.0
CONNECT_TIMEOUT_S = 10.0
EXPORT_START_S = 30.0  # for an exporter to start ser2net for a place just acquired


def place_name(exporter: str, board_id: str) -> str:
    return f"{exporter}-{board_id}"


def remote_place(board: Board) -> str:
    """The place name of a remote board (a RemotePlace's `name`, else the board id)."""
    return board.resources["RemotePlace"].get("name") or board.id


def place_tags(exporter: str, board: Board) -> dict[str, str]:
    """rig's facts about a board, as labgrid place tags (every value a string)."""
    return {"variant": board.variant, "layout": board.flash_layout, "virtual": "yes" if board.virtual else "no",
            "rig_tags": ",".join(board.tags), "board": board.id, "rack": exporter}


def parse_select(pairs) -> dict[str, str]:
    """`variant=esp32,tag=wifi` (or several such arguments) -> {"variant": "esp32", "tag": "wifi"}."""
    wanted: dict[str, str] = {}
    for arg in pairs or ():
        for pair in str(arg).split(","):
            if not pair.strip():
                continue
            key, sep, value = pair.partition("=")
            if not sep or not key.strip() or not value.strip():
                raise RigError(f"--rig-select {pair!r}: write KEY=VALUE (e.g. variant=esp32, tag=wifi, rack=rack-a)")
            wanted[key.strip()] = value.strip()
    return wanted


def selected(tags: dict[str, str], wanted: dict[str, str]) -> bool:
    """Whether a place's tags satisfy a selection; `tag=X` means X is among the board's rig tags."""
    for key, value in wanted.items():
        if key == "tag":
            if value not in tags.get("rig_tags", "").split(","):
                return False
        elif tags.get(key) != value:
            return False
    return True


class _DropStartupErrors(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not record.pathname.endswith(os.path.join("labgrid", "remote", "client.py"))


async def _connected(channel) -> None:
    """Until the channel is connected; OSError at its first failure (gRPC itself retries for ever)."""
    from grpc import ChannelConnectivity

    state = channel.get_state(try_to_connect=True)
    while state is not ChannelConnectivity.READY:
        if state in (ChannelConnectivity.TRANSIENT_FAILURE, ChannelConnectivity.SHUTDOWN):
            raise OSError(f"channel {state.name.lower()}")
        await channel.wait_for_state_change(state)
        state = channel.get_state(try_to_connect=True)


@dataclass
class _Held:
    place: str
    token: str  # the reservation that got us the place
    expiry_s: float


class Coordinator:
    """One client session to a labgrid coordinator at `address` (HOST:PORT).

    `holder` names this client in the coordinator's records (`labgrid-client places` shows it as
    the acquirer: `<host>/<user>-<holder>`), so two pytest workers of one user are two holders.
    """

    def __init__(self, address: str, holder: str = "rig"):
        self.address = address
        self.holder = "".join(c if c.isalnum() or c in "-_." else "-" for c in holder)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name=f"coordinator-{address}", daemon=True)
        self._thread.start()
        self._held: dict[str, _Held] = {}
        self._heartbeat: asyncio.Future | None = None
        try:
            self.session = self._call(self._start())
        except BaseException:
            self._stop_loop()
            raise

    # -- plumbing
    def _call(self, coro, timeout: float = CALL_TIMEOUT_S):
        future = asyncio.run_coroutine_threadsafe(coro, self._loop)
        try:
            return future.result(timeout)
        except TimeoutError:
            future.cancel()
            raise RigError(f"coordinator {self.address} did not answer within {timeout:.0f} s") from None

    async def _start(self):
        from labgrid.remote.client import ClientSession, ServerError

        user = f"{os.environ.get('LG_USERNAME') or getpass.getuser()}-{self.holder}"
        host = os.environ.get("LG_HOSTNAME") or socket.gethostname()

        class Session(ClientSession):
            def gethostname(self):
                return host

            def getuser(self):
                return user

        session = Session(self.address, asyncio.get_running_loop())
        # What labgrid's session logs when the peer is no coordinator becomes the one line below.
        quiet = _DropStartupErrors()
        logging.getLogger().addFilter(quiet)
        try:
            # Connect first: labgrid's session logs a traceback-like error when it cannot.
            await asyncio.wait_for(_connected(session.channel), CONNECT_TIMEOUT_S)
            await asyncio.wait_for(session.start(), CALL_TIMEOUT_S)
        except (ServerError, TimeoutError, OSError):
            with contextlib.suppress(Exception):
                await session.close()
            raise RigError(f"coordinator {self.address} does not answer; is labgrid-coordinator running there "
                           "(--rig-coordinator HOST:PORT)?") from None
        finally:
            logging.getLogger().removeFilter(quiet)
        return session

    @property
    def name(self) -> str:
        """This client's name in the coordinator's records (a place's `acquired`)."""
        return f"{self.session.gethostname()}/{self.session.getuser()}"

    async def _rpc(self, method: str, request):
        import grpc

        try:
            return await getattr(self.session.stub, method)(request)
        except grpc.aio.AioRpcError as exc:
            raise RigError(f"coordinator {self.address}: {method}: {exc.details()}") from None

    async def _synced(self):
        await self.session.sync_with_coordinator()

    def close(self) -> None:
        """Release every place this client holds, then close the session."""
        try:
            for place in list(self._held):
                with contextlib.suppress(RigError):
                    self.release(place)
            with contextlib.suppress(Exception):
                self._call(self._close(), timeout=10)
        finally:
            self._stop_loop()

    async def _close(self):
        if self._heartbeat is not None:
            self._heartbeat.cancel()
        await self.session.stop()
        await self.session.close()

    def _stop_loop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- what the coordinator knows
    def places(self) -> dict:
        """A snapshot of every place (labgrid.remote.common.Place), by name."""
        return self._call(self._places())

    async def _places(self):
        import copy

        await self._synced()
        return copy.deepcopy(self.session.places)

    def resources(self) -> dict:
        """A snapshot of every exporter's resources: {exporter: {group: {name: ResourceEntry}}}."""
        return self._call(self._resources())

    async def _resources(self):
        import copy

        await self._synced()
        return copy.deepcopy(self.session.resources)

    def exporters(self) -> set[str]:
        """Exporters whose resources are on the coordinator now (a stopped exporter's are gone)."""
        return {name for name, groups in self.resources().items()
                if any(entry.data for group in groups.values() for entry in group.values())}

    def exporter_gone(self, board: Board) -> bool:
        """Whether the exporter a remote board hangs on has left the coordinator."""
        return board.host is not None and board.host not in self.exporters()

    def boards(self, wanted: dict[str, str] | None = None) -> list[Board]:
        """The boards of rig's places (those with a `variant` tag) matching `wanted`, by place name."""
        boards = []
        for name, place in sorted(self.places().items()):
            tags = dict(place.tags)
            if tags.get("variant") not in VARIANTS or not selected(tags, wanted or {}):
                continue
            boards.append(self._board(name, tags))
        return boards

    def board(self, name: str) -> Board:
        """The board of place `name` (its rig tags), or one line naming the places there are."""
        place = self.places().get(name)
        if place is None or place.tags.get("variant") not in VARIANTS:
            known = ", ".join(b.id for b in self.boards()) or "none"
            raise RigErrors([f"no place {name!r} with a rig board on coordinator {self.address} (places: {known})"])
        return self._board(name, dict(place.tags))

    def remote_board(self, board: Board) -> Board:
        """A rack file's RemotePlace board (RigBoard beside it), with the exporter its place hangs on."""
        place = self.places().get(remote_place(board))
        if place is None:
            raise RigError(f"{board.source}: board {board.id}: no place {remote_place(board)!r} on coordinator "
                           f"{self.address}; see `labgrid-client -x {self.address} places`")
        return replace(board, host=place.tags.get("rack") or "?")

    def _board(self, name: str, tags: dict[str, str]) -> Board:
        return Board(
            id=name,
            variant=tags["variant"],
            virtual=tags.get("virtual") == "yes",
            flash_layout=tags.get("layout") or VARIANTS[tags["variant"]].default_layout,
            tags=tuple(t for t in tags.get("rig_tags", "").split(",") if t),
            console="remote place",
            power=None,
            probe=None,
            probe_target=None,
            resources={"RemotePlace": {"name": name}},
            source=Path(f"coordinator {self.address}"),
            host=tags.get("rack"),
        )

    # -- places of an exporter
    def sync_places(self, exporter: str, boards) -> list[str]:
        """Create or update the place of every board exported by `exporter`; idempotent.

        Returns the place names. Places of other exporters are not touched; rig tags a board no
        longer has are removed from its place.
        """
        return self._call(self._sync_places(exporter, list(boards)))

    async def _sync_places(self, exporter: str, boards: list[Board]) -> list[str]:
        from labgrid.remote.generated import labgrid_coordinator_pb2 as pb

        await self._synced()
        names = []
        for board in boards:
            name = place_name(exporter, board.id)
            names.append(name)
            place = self.session.places.get(name)
            if place is None:
                await self._rpc("AddPlace", pb.AddPlaceRequest(name=name))
                await self._synced()
                place = self.session.places[name]
            pattern = f"{exporter}/{board.id}/*"
            if not any(str(m) == pattern or (m.exporter, m.group, m.cls) == (exporter, board.id, "*")
                       for m in place.matches):
                await self._rpc("AddPlaceMatch", pb.AddPlaceMatchRequest(placename=name, pattern=pattern))
            tags = place_tags(exporter, board)
            stale = {k: "" for k in RIG_TAGS if k in place.tags and k not in tags}
            if {k: place.tags.get(k) for k in tags} != tags or stale:
                await self._rpc("SetPlaceTags", pb.SetPlaceTagsRequest(placename=name, tags=tags | stale))
        await self._synced()
        return names

    # -- holding places
    def acquire(self, name: str, timeout: float, expiry_s: float = DEFAULT_EXPIRY_S) -> None:
        """Reserve and acquire place `name` through labgrid's reservations, waiting up to `timeout`.

        While waiting, a place still held by a rig client whose lease ran out is released from it.
        """
        self._call(self._acquire(name, timeout, expiry_s), timeout=timeout + CALL_TIMEOUT_S)

    async def _acquire(self, name: str, timeout: float, expiry_s: float) -> None:
        from labgrid.remote.common import Reservation, ReservationState
        from labgrid.remote.generated import labgrid_coordinator_pb2 as pb

        await self._synced()
        place = self.session.places.get(name)
        if place is None:
            raise RigError(f"no place {name!r} on coordinator {self.address}")
        fltr = {"name": name}
        if place.tags.get("variant"):
            fltr["variant"] = place.tags["variant"]
        token = await self._reserve(fltr)
        deadline = time.monotonic() + timeout
        try:
            while True:
                polled = await self._rpc("PollReservation", pb.PollReservationRequest(token=token))
                state = Reservation.from_pb2(polled.reservation).state
                if state in (ReservationState.allocated, ReservationState.acquired):
                    break
                if state is not ReservationState.waiting:  # expired or invalid: ask again
                    token = await self._reserve(fltr)
                    continue
                await self._synced()
                place = self.session.places[name]
                if self._lease_ran_out(place):
                    await self._kick(place)
                    continue
                if time.monotonic() > deadline:
                    raise RigError(f"place {name} is held by {place.acquired or 'a reservation'}; waited "
                                   f"{timeout:.0f} s on coordinator {self.address}")
                await asyncio.sleep(POLL_S)
            # The lease first, then the place: nobody else can acquire a place reserved for us, and an
            # acquired place without a fresh lease would look dead to a waiter.
            await self._rpc("SetPlaceTags", pb.SetPlaceTagsRequest(
                placename=name, tags={EXPIRES: str(int(time.time() + expiry_s))}))
            await self._rpc("AcquirePlace", pb.AcquirePlaceRequest(placename=name))
        except BaseException:
            with contextlib.suppress(Exception):
                await self._rpc("CancelReservation", pb.CancelReservationRequest(token=token))
            raise
        await self._synced()
        self._held[name] = _Held(name, token, expiry_s)
        if self._heartbeat is None:
            self._heartbeat = asyncio.ensure_future(self._renew())

    async def _reserve(self, fltr: dict[str, str]) -> str:
        from labgrid.remote.generated import labgrid_coordinator_pb2 as pb

        reply = await self._rpc("CreateReservation", pb.CreateReservationRequest(
            filters={"main": pb.Reservation.Filter(filter=fltr)}, prio=0.0))
        return reply.reservation.token

    def _lease_ran_out(self, place) -> bool:
        expires = place.tags.get(EXPIRES)
        if not place.acquired or not expires or place.acquired == self.name:
            return False
        try:
            return float(expires) < time.time()
        except ValueError:
            return False

    async def _kick(self, place) -> None:
        """Free a place whose rig holder stopped renewing its lease (killed, hung, or cut off)."""
        from labgrid.remote.generated import labgrid_coordinator_pb2 as pb

        dead = place.acquired
        await self._rpc("ReleasePlace", pb.ReleasePlaceRequest(placename=place.name, fromuser=dead))
        if place.reservation:
            with contextlib.suppress(RigError):  # it may have gone already
                await self._rpc("CancelReservation", pb.CancelReservationRequest(token=place.reservation))
        await self._rpc("SetPlaceTags", pb.SetPlaceTagsRequest(placename=place.name, tags={EXPIRES: ""}))
        await self._synced()

    async def _renew(self) -> None:
        from labgrid.remote.generated import labgrid_coordinator_pb2 as pb

        while True:
            interval = min((h.expiry_s for h in self._held.values()), default=DEFAULT_EXPIRY_S) / 3
            await asyncio.sleep(interval)
            for held in list(self._held.values()):
                with contextlib.suppress(RigError):
                    await self._rpc("SetPlaceTags", pb.SetPlaceTagsRequest(
                        placename=held.place, tags={EXPIRES: str(int(time.time() + held.expiry_s))}))

    def release(self, name: str) -> None:
        """Give place `name` back: release it, drop the lease tag, cancel the reservation."""
        self._call(self._release(name))

    async def _release(self, name: str) -> None:
        from labgrid.remote.generated import labgrid_coordinator_pb2 as pb

        held = self._held.pop(name, None)
        if held is None:
            return
        # Best effort: a place this client cannot release (its exporter gone mid-release) is no longer
        # renewed, so its lease runs out and the next waiter frees it.
        with contextlib.suppress(RigError):
            await self._rpc("SetPlaceTags", pb.SetPlaceTagsRequest(placename=name, tags={EXPIRES: ""}))
            await self._rpc("ReleasePlace", pb.ReleasePlaceRequest(placename=name, fromuser=self.name))
        with contextlib.suppress(RigError):
            await self._rpc("CancelReservation", pb.CancelReservationRequest(token=held.token))

    def target_resources(self, name: str) -> list[tuple[str, str, dict, dict]]:
        """The resources of an acquired place: (class, name, arguments, extra) as its exporter publishes them."""
        return self._call(self._target_resources(name))

    async def _target_resources(self, name: str):
        from labgrid.remote.client import Error as ClientError

        # The exporter starts what it serves for a place (ser2net) once the place is acquired, and
        # publishes the port after: wait for every resource to be there with its port.
        deadline = time.monotonic() + EXPORT_START_S
        while True:
            await self._synced()
            place = self.session.places[name]
            try:
                entries = self.session.get_target_resources(place)
            except ClientError as exc:
                raise RigError(f"place {name}: {exc}") from None
            ready = all(entry.data and entry.avail and entry.args.get("port", 0) is not None
                        for entry in entries.values())
            if (ready and entries) or time.monotonic() > deadline:
                break
            await asyncio.sleep(POLL_S)
        if not ready or not entries:
            raise RigError(f"place {name}: its exporter {place.tags.get('rack', '?')} serves no resources "
                           f"(stopped?); see `labgrid-client -x {self.address} -p {name} show`")
        return [(entry.cls, res_name, dict(entry.args), dict(entry.extra or {}))
                for (res_name, _), entry in sorted(entries.items())]
