"""labgrid drivers labgrid lacks, for MCU boards: SWD via pyocd, ESP32 ROM via esptool, MCUmgr SMP,
EN-line reset, and a strategy that opens the console before power-on. Importing the package
registers them with labgrid's target factory, so targets files can name them too.
"""

from rig.drivers import steps
from rig.drivers.board import BoardDrivers, bind, open_board
from rig.drivers.console import RigConsoleDriver
from rig.drivers.espflash import EsptoolDriver
from rig.drivers.reset import RigResetDriver
from rig.drivers.smp import SMPDriver
from rig.drivers.strategy import MCUStrategy, Status
from rig.drivers.swd import PyOCDDriver

steps.install()

__all__ = [
    "BoardDrivers",
    "EsptoolDriver",
    "MCUStrategy",
    "PyOCDDriver",
    "RigConsoleDriver",
    "RigResetDriver",
    "SMPDriver",
    "Status",
    "bind",
    "open_board",
]
