"""MCUmgr SMP server of the virtual STM32 boards, answering as Zephyr's mcumgr does over a console UART."""

from rig.sim.smp.server import SmpServer

__all__ = ["SmpServer"]
