"""MCUStrategy: bring a board to off, its loader state, or a running app - console first, always.

labgrid's strategies are written for Linux boards (barebox, U-Boot, shell). An MCU has three
states worth asking for:

    off    power cut
    rom    ESP32 only: the ROM serial loader, reached by esptool's DTR/RTS reset on each operation
    debug  STM32 only: the core halted under the SWD probe
    app    powered up from cold and the app's boot line (`rig: boot ...`, docs/console.md) seen

The console is opened before power is applied on every path, so the bootloader's first lines and
the app's banner are in the transcript (a real board prints them once, right after power-on).
"""

import enum

import attr
from labgrid.factory import target_factory
from labgrid.protocol import PowerProtocol
from labgrid.step import step
from labgrid.strategy import Strategy

from rig.drivers.console import restart
from rig.errors import RigError

BOOT_LINE = r"rig: boot (?P<fields>[^\r\n]*)"


class Status(enum.Enum):
    unknown = 0
    off = 1
    rom = 2
    debug = 3
    app = 4


def parse_boot_fields(fields: str) -> dict:
    """`variant=stm32h7 version=1.2.0+0 ...` -> {"variant": "stm32h7", "version": "1.2.0+0", ...}."""
    return dict(pair.split("=", 1) for pair in fields.split() if "=" in pair)


@target_factory.reg_driver
@attr.s(eq=False)
class MCUStrategy(Strategy):
    """Args:
    boot_timeout (float): seconds from power-on to the app's boot line
    """

    bindings = {
        "power": PowerProtocol,
        "console": "RigConsoleDriver",
        "board": "RigBoard",
        "esptool": {"EsptoolDriver", None},
        "swd": {"PyOCDDriver", None},
    }
    boot_timeout = attr.ib(default=10.0, validator=attr.validators.instance_of(float))

    def __attrs_post_init__(self):
        super().__attrs_post_init__()
        self.status = Status.unknown
        self.boot = {}  # fields of the last boot line seen by transition("app")

    @step(args=["status"])
    def transition(self, status):
        status = _status(status)
        if status == self.status:
            return
        self.target.activate(self.console)
        self.target.activate(self.power)
        if status is Status.off:
            self.power.off()
        elif status is Status.rom:
            if self.esptool is None:
                raise RigError(f"board {self.target.name} ({self.board.variant}) has no ROM loader state; "
                               "use 'debug' for STM32 boards")
            self.power.on()
            self.target.activate(self.esptool)
        elif status is Status.debug:
            if self.swd is None:
                raise RigError(f"board {self.target.name} ({self.board.variant}) has no debug probe; "
                               "use 'rom' for ESP32 boards")
            self.power.on()
            self.target.activate(self.swd)
            self.swd.halt()
        elif status is Status.app:
            self.power_on_to_app()
        self.status = status

    def power_on_to_app(self) -> dict:
        """Cold boot with the console already listening; return the boot line's fields."""
        self.target.activate(self.console)
        self.target.activate(self.power)
        # What the board said before the cut belongs to the old run: drained while the power is off,
        # for labgrid power drivers' off time in cycle().
        restart(self.console, self.power.off, self.power.on, getattr(self.power, "delay", 0.0))
        match = self.console.expect_line(BOOT_LINE, timeout=self.boot_timeout)
        self.boot = parse_boot_fields(match.group("fields"))
        self.status = Status.app
        return self.boot

    def force(self, status):
        """Trust the caller: the board is already in `status` (e.g. after an out-of-band action)."""
        self.status = _status(status)


def _status(status) -> Status:
    if isinstance(status, Status):
        return status
    try:
        return Status[status]
    except KeyError:
        raise RigError(f"no board state {status!r}; one of {', '.join(s.name for s in Status)}") from None
