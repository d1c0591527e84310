"""RigResetDriver: reset a board the way its hardware allows.

ESP32 DevKits wire the USB-serial bridge's RTS to EN (through the auto-program transistors; the
variant's `auto_program` in rig.variants), so asserting RTS with DTR released holds the chip in
reset and releasing it restarts it: a pin reset that keeps the console connected and loses no
boot output. STM32 boards are reset through the debug probe's NRST when there is one, otherwise
by cycling power.
"""

import time

import attr
from labgrid.driver.common import Driver
from labgrid.factory import target_factory
from labgrid.protocol import PowerProtocol, ResetProtocol
from labgrid.step import step

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
        if facts(self.board.variant).auto_program:
            self._pulse_en()
        elif self.swd is not None:
            self.target.activate(self.swd)
            self.swd.reset()
        elif self.power is not None:
            self.target.activate(self.power)
            self.power.cycle()
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
            port.rts = True  # EN low
            time.sleep(EN_LOW_S)
            port.rts = False
        finally:
            if opened_here:
                self.console.close()
