"""RigResetDriver: reset a board the way its hardware allows.

ESP32 DevKits wire the USB-serial bridge's RTS to EN (through the auto-program transistors; the
variant's `auto_program` in rig.variants), so asserting RTS with DTR released holds the chip in
reset and releasing it restarts it: a pin reset that keeps the console connected and loses no
boot output. STM32 boards are reset through the debug probe's NRST when there is one, otherwise
by cycling power.
"""

import attr
from labgrid.driver.common import Driver
from labgrid.factory import target_factory
from labgrid.protocol import PowerProtocol, ResetProtocol
from labgrid.step import step

from rig.drivers.console import restart
from rig.errors import RigError
from rig.variants import facts

EN_LOW_S = 0.1  # long enough for the DevKit's RC on EN to discharge


@target_factory.reg_driver
@attr.s(eq=False)
class RigResetDriver(Driver, ResetProtocol):
    bindings = {
        "console": "RigConsoleDriver",
        "board": "RigBoard",
        "power": {PowerProtocol, None},
        "swd": {"PyOCDDriver", None},
    }

    @Driver.check_active
    @step()
    def reset(self) -> None:
        """Reset the board; the console drains while the board is held (rig.drivers.console.restart),
        so what it reads afterwards is the new boot's."""
        if facts(self.board.variant).auto_program:
            self._pulse_en()
        elif self.swd is not None:
            self.target.activate(self.swd)
            # Halted, the core prints nothing more; pyocd's reset leaves it running.
            restart(self.console, self.swd.halt, self.swd.reset)
        elif self.power is not None:
            self.target.activate(self.power)
            restart(self.console, self.power.off, self.power.on, getattr(self.power, "delay", 0.0))
        else:
            raise RigError(f"board {self.target.name} has no reset line, probe or power switch; add a "
                           "RigDebugProbe or a power port to its targets entry")

    def _pulse_en(self) -> None:
        port = self.console.serial
        opened_here = not self.console.status
        if opened_here:
            self.console.open()
        try:
            port.dtr = False  # keep GPIO0 high: boot the app, not the ROM loader
            # RTS asserted holds EN low: the chip is held in reset while the console drains
            restart(self.console, lambda: setattr(port, "rts", True), lambda: setattr(port, "rts", False), EN_LOW_S)
        finally:
            if opened_here:
                self.console.close()
