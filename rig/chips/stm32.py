"""The STM32 parts' silicon facts that several layers need: the core the firmware is compiled for
and the virtual lab emulates, and where the blocks the debug probe talks to sit on the bus.

Values from the reference manuals: RM0433 (STM32H742/743/750/753) and RM0367 (STM32L0x3). Read by
rig.build.stm32 (-mcpu), rig.drivers.optionbytes (the FLASH registers), rig.provision.stm32 (IDs)
and rig.sim.stm32.parts (the virtual part answers at the same addresses). What only one layer
needs stays there: the ID register values the virtual part reports, the option-byte sequences.
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class Chip:
    name: str  # the parts that share the DEV_ID, for messages
    core: str  # the Arm core, as gcc's -mcpu names it
    fpu: bool  # the core has a floating-point unit
    dev_id: int  # DBGMCU_IDCODE.DEV_ID
    idcode: int  # bus address of DBGMCU_IDCODE
    uid: tuple[int, int, int]  # bus addresses of the unique device ID's words UID[31:0], [63:32], [95:64]
    flash: int  # bus address of the FLASH peripheral's registers
    # where the core writes the user option bytes (the RDP word first); None: only through FLASH's
    # registers (the H7's OPTSR_PRG)
    option_bytes: int | None


STM32H743 = Chip(
    name="STM32H742/743/750/753",
    core="cortex-m7",
    fpu=True,  # double-precision FPv5
    dev_id=0x450,
    idcode=0x5C00_1000,  # in the DBGMCU block
    uid=(0x1FF1_E800, 0x1FF1_E804, 0x1FF1_E808),  # "Unique device ID register", in system memory
    flash=0x5200_2000,
    option_bytes=None,
)

STM32L073 = Chip(
    name="STM32L07x/L08x",
    core="cortex-m0plus",
    fpu=False,
    dev_id=0x447,  # category 5
    idcode=0x4001_5800,  # on APB2
    uid=(0x1FF8_0050, 0x1FF8_0054, 0x1FF8_0064),  # beside the factory option bytes, the third word apart
    flash=0x4002_2000,
    option_bytes=0x1FF8_0000,
)

# The part each STM32 variant (rig.variants) carries.
PARTS = {"stm32h7": STM32H743, "stm32l0": STM32L073}
