"""The pyocd target type `stm32l073xx`, which the virtual STM32L0 presents.

pyocd 0.46 has no built-in STM32L07x; on a real bench it comes from ST's CMSIS pack
(`pyocd pack install stm32l073rz`, target `stm32l073rztx`). The virtual lab has no internet and
the only built-in L0, `stm32l031x6`, has 32 KiB of flash - too small for MCUboot and two slots.
So the probe plugin registers this target type when pyocd loads it (pyocd has a plugin group for
probes, none for targets; adding to its TARGET table is what pack targets do too).

It is the STM32L073's memory map (192 KiB flash in 128-byte pages, erased to 0x00; 20 KiB RAM)
with the flash algorithm of pyocd's stm32l031x6: the whole STM32L0 family shares one NVM
controller and the algorithm takes absolute addresses, so only the flash size differs. The name
is deliberately not the pack's `stm32l073rztx`, so a real board with the pack installed never
picks up this definition by accident.
"""

from pyocd.core.memory_map import FlashRegion, MemoryMap, RamRegion
from pyocd.coresight.coresight_target import CoreSightTarget
from pyocd.target.builtin import target_STM32L031x6 as l031

from rig.image.layouts import STM32L0

TARGET_TYPE = "stm32l073xx"

FLASH_ALGO = dict(
    l031.FLASH_ALGO,
    flash_start=STM32L0.base,
    flash_size=STM32L0.size,
    sector_sizes=((0x0, STM32L0.sector_size),),
    # One 128-byte page per call: the algorithm programs half-pages, never more than a page.
    page_size=STM32L0.sector_size,
    min_program_length=STM32L0.write_size,
)


class STM32L073xx(CoreSightTarget):
    VENDOR = "STMicroelectronics"

    MEMORY_MAP = MemoryMap(
        FlashRegion(name="flash", start=STM32L0.base, length=STM32L0.size, sector_size=STM32L0.sector_size,
                    page_size=STM32L0.sector_size, erased_byte_value=STM32L0.erased, is_boot_memory=True,
                    algo=FLASH_ALGO),
        RamRegion(name="sram", start=0x2000_0000, length=20 * 1024),
    )

    def __init__(self, session):
        super().__init__(session, self.MEMORY_MAP)

    def post_connect_hook(self):
        # As stm32l031x6: keep the debug link alive in sleep/stop/standby (DBG_CR).
        self.write32(l031.DBGMCU.DBG_CR, l031.DBGMCU.DBG_CR_VALUE)


def register() -> None:
    """Make `-t stm32l073xx` known to this pyocd process."""
    from pyocd.target import TARGET

    TARGET.setdefault(TARGET_TYPE, STM32L073xx)
