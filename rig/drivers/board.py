"""One board's labgrid target with rig's drivers bound: what tests, the CLI and campaigns use.

A targets file lists resources only (as labgrid's exporter publishes them); the drivers follow
from the resources and the board's variant, so a rack file never repeats driver boilerplate and
every board of a variant is driven alike. Drivers a targets file declares itself are reused.
"""

from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import cache

from labgrid import Environment, Target
from labgrid.factory import target_factory
from labgrid.protocol import PowerProtocol

from rig.drivers.console import RigConsoleDriver, restart
from rig.drivers.espflash import EsptoolDriver
from rig.drivers.protocol import FlashProtocol, regions_sha256
from rig.drivers.reset import RigResetDriver
from rig.drivers.smp import SMPDriver
from rig.drivers.strategy import MCUStrategy
from rig.drivers.swd import PyOCDDriver
from rig.errors import RigError
from rig.image.layouts import LAYOUTS
from rig.lab.inventory import Board
from rig.lab.resources import POWER_PORTS
from rig.sim import registry  # the running labs' files; no live sim object is touched
from rig.variants import VIRTUAL_POWER_OFF_S, Delivery, Flasher


@dataclass
class BoardDrivers:
    board: Board
    target: Target
    console: RigConsoleDriver
    power: PowerProtocol | None
    reset: RigResetDriver
    strategy: MCUStrategy | None  # needs a power switch
    swd: PyOCDDriver | None = None
    esptool: EsptoolDriver | None = None
    smp: SMPDriver | None = None

    @property
    def flasher(self) -> FlashProtocol:
        """The driver that writes this board's flash: pyocd for STM32, esptool for ESP32."""
        flasher = self.swd if self.board.facts.flasher is Flasher.SWD else self.esptool
        if flasher is None:
            raise RigError(f"board {self.board.id}: no {self.board.facts.flasher.value} flasher bound "
                           "(an SWD board needs a RigDebugProbe in its targets entry)")
        return flasher

    def flash(self, data: bytes, offset: int, verify: bool = True, progress=None) -> None:
        """Write `data` at flash `offset` with the board's flasher, then compare on the board."""
        self.write_regions([(offset, data)], verify=verify, progress=progress)

    # -- power: every switch of a board's power goes through these (the campaign's cycles and cuts too)
    @property
    def off_s(self) -> float:
        """Seconds a power cycle keeps the board unpowered: the rack's own (its power driver's
        `delay`, e.g. `drivers: {NetworkPowerDriver: {delay: 5.0}}`), else rig's default for the
        board (rig.variants: the variant's power_off_s; a virtual board's VIRTUAL_POWER_OFF_S)."""
        return float(getattr(self.power, "delay", default_off_s(self.board)))

    def _switch(self):
        if self.power is None:
            raise RigError(f"board {self.board.id} has no power port in {self.board.source}; "
                           f"add one of {', '.join(POWER_PORTS)}")
        self.target.activate(self.power)
        return self.power

    def power_on(self) -> None:
        self._switch().on()

    def power_off(self) -> None:
        self._switch().off()

    def power_cycle(self, while_off: Callable[[], object] | None = None) -> None:
        """Off, the board's off time, on - with the console drained while the power is off
        (rig.drivers.console.restart), so what it reads afterwards is the new power-on's.
        `while_off` reads the old run's last lines first, for a caller that keeps them."""
        switch = self._switch()
        restart(self.console, switch.off, switch.on, self.off_s, while_stopped=while_off)

    def powered_flasher(self) -> FlashProtocol:
        """The flasher, active, with the board powered (switched on if it has a switch and is off)."""
        if self.power is not None:
            self.target.activate(self.power)
            try:
                is_on = self.power.get()
            except NotImplementedError:  # a switch that cannot report its state: switch it on
                is_on = False
            if not is_on:
                self.power.on()
        self.target.activate(self.flasher)
        return self.flasher

    def powered_probe(self) -> PyOCDDriver:
        """powered_flasher() of an SWD board, as the pyocd driver it is (option bytes, sessions, reset)."""
        flasher = self.powered_flasher()
        if not isinstance(flasher, PyOCDDriver):
            raise RigError(f"board {self.board.id} is flashed through its {self.board.facts.flasher.value}, "
                           "not a debug probe")
        return flasher

    def powered_rom_loader(self) -> EsptoolDriver:
        """powered_flasher() of a ROM-loader board, as the esptool driver it is (loader sessions, eFuses)."""
        flasher = self.powered_flasher()
        if not isinstance(flasher, EsptoolDriver):
            raise RigError(f"board {self.board.id} is flashed through its {self.board.facts.flasher.value}, "
                           "not the ROM loader")
        return flasher

    def preflight(self, rack: str | None = None, flashing_only: bool = False) -> str | None:
        """One line when the board is locked (rig.drivers.protocol.Lock, as its flasher reads it):
        the state and the way out - for a virtual board, factory-fresh boards from `rig lab reset`.
        None when it is open for development; with flashing_only, unless its flash cannot be written.
        `rack`: the rack file the user named, for the way out (else the one the board was read from,
        which for a running lab's board is the lab's own copy)."""
        lock = self.powered_flasher().lock()
        if lock is None or (flashing_only and not lock.blocks_flashing):
            return None
        way_out = (f"`rig lab reset --rack {rack or self.board.source}` fits factory-fresh virtual boards"
                   if self.board.virtual else lock.way_out)
        return f"{self.board.id} is locked: {lock.state}; way out: {way_out}"

    def write_regions(self, regions, verify: bool = True, progress=None) -> None:
        """Write (offset, data) regions in one flasher session (e.g. a bootloader, table and app)."""
        self.powered_flasher()
        self.forget_state()
        self.flasher.write_regions(list(regions), verify=verify, progress=progress)

    def forget_state(self) -> None:
        """The strategy's idea of the board is stale: flashing halts or resets it, another process
        may have used it. The next transition starts from scratch."""
        if self.strategy is not None:
            self.strategy.force("unknown")

    def ensure(self, regions, progress=None, by_sector: bool = False) -> bool:
        """Write those (offset, data) regions the board does not hold yet; True if any was written.
        `by_sector`: compare and write sector by sector, so only the sectors that differ are written
        (regions starting on sector boundaries; bytes after a region's end in its last sector are kept).

        Reflashing an unchanged image wears flash and costs seconds per test on a serial ROM loader.
        """
        regions = list(regions)
        self.powered_flasher()
        compared = regions
        if by_sector:
            size = LAYOUTS[self.board.flash_layout].geometry.sector_size
            compared = [(offset + i, data[i:i + size]) for offset, data in regions for i in range(0, len(data), size)]
        stale = self.flasher.differing(compared)
        if stale:
            self.forget_state()
            self.flasher.write_regions(stale, progress=progress)
        self.flasher.last_image_sha256 = regions_sha256(regions)
        return bool(stale)

    def read_flash(self, offset: int, size: int, progress=None) -> bytes:
        return self.powered_flasher().read(offset, size, progress=progress)

    @property
    def firmware_sha256(self) -> str | None:
        """SHA-256 of the last image written through this board's flasher in this process."""
        return self.flasher.last_image_sha256

    def close(self) -> None:
        """Release every connection (console, probe); the board keeps running as it is."""
        self.target.deactivate_all_drivers()


@cache
def _environment(path: str, mtime_ns: int) -> Environment:
    # By modification time too: a restarted lab rewrites its resolved rack with the ports it bound.
    return Environment(path)


def open_board(board: Board, coordinator=None) -> BoardDrivers:
    """The labgrid target of `board` with rig's drivers bound (none active yet); a virtual board on the
    ports its running lab bound (rig.sim.registry.live_board).

    A remote board (a place on a labgrid coordinator, rig.lab.coordinator) needs the coordinator
    client that acquired its place: its resources are the ones the place's exporter publishes.
    """
    board = registry.live_board(board)
    if "RemotePlace" in board.resources:
        if coordinator is None:
            raise RigError(f"board {board.id} is a place on a labgrid coordinator; pass --rig-coordinator "
                           "HOST:PORT (the place is reserved and acquired there)")
        return open_remote(board, coordinator)
    if board.resources.get("NetworkSerialPort", {}).get("port") == 0:
        raise RigError(f"board {board.id}: {board.source} leaves its ports to the lab, and no lab of it is up; "
                       f"start it with `rig lab up --rack {board.source}`")
    target = _environment(str(board.source), board.source.stat().st_mtime_ns).get_target(board.id)
    if target is None:
        raise RigError(f"{board.source}: labgrid finds no target {board.id!r}")
    return bind(target, board)


def open_remote(board: Board, coordinator) -> BoardDrivers:
    """Bind rig's drivers to an acquired place: a labgrid target holding the resources its exporter
    publishes (consoles as NetworkSerialPort, power, the probe as pyocd's `remote:HOST:PORT`), plus
    the RigBoard made from the place's tags."""
    from rig.lab.coordinator import remote_place

    name = remote_place(board)
    target = Target(board.id)
    target_factory.make_resource(target, "RigBoard", "RigBoard", {
        "variant": board.variant, "flash_layout": board.flash_layout, "tags": list(board.tags),
        "virtual": board.virtual})
    resources: dict = {"RemotePlace": {"name": name}}
    for cls, res_name, args, extra in coordinator.target_resources(name):
        if cls not in target_factory.resources:
            continue  # a resource rig does not drive (and labgrid on this host does not know)
        resource = target_factory.make_resource(target, cls, res_name, args)
        resource.extra = extra
        resources[cls] = args
    probe = resources.get("RigDebugProbe")
    serial = next((resources[c] for c in ("NetworkSerialPort",) if c in resources), None)
    if serial is None:
        raise RigError(f"place {name}: its exporter publishes no console (NetworkSerialPort)")
    remote = replace(board, resources=resources, console=f"rfc2217://{serial['host']}:{serial['port']}",
                     probe=probe["unique_id"] if probe else None,
                     probe_target=probe["target_type"] if probe else None)
    return bind(target, remote)


def bind(target, board: Board) -> BoardDrivers:
    """Bind rig's drivers for `board` to a labgrid target that holds its resources."""
    console = _driver(target, RigConsoleDriver, "console")
    power = None
    for resource, driver in POWER_PORTS.items():
        if resource in board.resources:
            cls = target_factory.drivers[driver]
            declared = any(isinstance(d, cls) for d in target.drivers)  # the rack's own, with its delay
            power = _driver(target, cls, "power")
            if hasattr(power, "delay") and not declared:
                power.delay = default_off_s(board)
    swd = _driver(target, PyOCDDriver, "swd") if board.probe else None
    esptool = _driver(target, EsptoolDriver, "esptool") if board.facts.flasher is Flasher.ROM_LOADER else None
    smp = _driver(target, SMPDriver, "smp") if board.facts.delivery is Delivery.SMP_PUSH else None
    reset = _driver(target, RigResetDriver, "reset")
    strategy = _driver(target, MCUStrategy, "strategy") if power else None
    return BoardDrivers(board, target, console, power, reset, strategy, swd, esptool, smp)


def default_off_s(board: Board) -> float:
    """How long a board stays unpowered in a power cycle unless its rack says otherwise: a real
    board's supply must drain (rig.variants), a virtual board loses its RAM at once."""
    return VIRTUAL_POWER_OFF_S if board.virtual else board.facts.power_off_s


def _driver(target, cls, name):
    existing = [d for d in target.drivers if isinstance(d, cls)]
    if existing:
        return existing[0]
    return cls(target, name)
