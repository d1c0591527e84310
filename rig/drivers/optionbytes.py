"""STM32 readout protection (RDP) in the option bytes: where each part keeps it, how to change it.

Register offsets and key sequences from the reference manuals: RM0433 (STM32H743, FLASH_OPTSR
and FLASH_OPTCR, section 4.9) and RM0367 (STM32L0x3, FLASH_OPTR and the option byte area,
section 3.7); where the FLASH registers and the option bytes sit is the part's rig.chips.stm32
record. RDP byte values are the same on both: 0xAA = level 0 (open), 0xCC = level 2 (permanent,
debug disabled), anything else = level 1 (flash unreadable by debug).
"""

from collections.abc import Callable
from dataclasses import dataclass

from rig.chips import stm32 as chips
from rig.errors import RigError

LEVEL_BYTES = {0: 0xAA, 1: 0xBB, 2: 0xCC}


def level_of(rdp_byte: int) -> int:
    return {0xAA: 0, 0xCC: 2}.get(rdp_byte, 1)


@dataclass(frozen=True)
class RdpRegisters:
    current: int  # register whose bits 15:8 (H7) or 7:0 (L0) hold the RDP byte in force
    shift: int
    program: Callable[[object, int], None]  # (pyocd target, RDP byte): the part's option-byte sequence


def read_level(target, variant: str) -> int:
    regs = RDP[variant]
    return level_of((target.read32(regs.current) >> regs.shift) & 0xFF)


def write_level(target, variant: str, level: int) -> None:
    """Program a new RDP level with the part's option-byte sequence (the core must be halted)."""
    RDP[variant].program(target, LEVEL_BYTES[level])


# STM32H743 (RM0433): unlock FLASH_OPTCR with OPTKEYR, write OPTSR_PRG, set OPTSTART, wait on
# OPT_BUSY in OPTSR_CUR, lock again.
_H7_FLASH = chips.STM32H743.flash
_H7_OPTKEYR, _H7_OPTCR, _H7_OPTSR_CUR, _H7_OPTSR_PRG = 0x08, 0x18, 0x1C, 0x20
_H7_OPTKEYS = (0x0819_2A3B, 0x4C5D_6E7F)
_H7_OPTLOCK, _H7_OPTSTART, _H7_OPT_BUSY = 1 << 0, 1 << 1, 1 << 0


def _h7_program(target, rdp: int) -> None:
    for key in _H7_OPTKEYS:
        target.write32(_H7_FLASH + _H7_OPTKEYR, key)
    prg = target.read32(_H7_FLASH + _H7_OPTSR_PRG)
    target.write32(_H7_FLASH + _H7_OPTSR_PRG, (prg & ~0xFF00) | (rdp << 8))
    target.write32(_H7_FLASH + _H7_OPTCR, target.read32(_H7_FLASH + _H7_OPTCR) | _H7_OPTSTART)
    _wait_clear(target, _H7_FLASH + _H7_OPTSR_CUR, _H7_OPT_BUSY)
    target.write32(_H7_FLASH + _H7_OPTCR, target.read32(_H7_FLASH + _H7_OPTCR) | _H7_OPTLOCK)


# STM32L0 (RM0367): unlock PECR (PEKEYR), then the option bytes (OPTKEYR); write the first option
# word as value | ~value << 16; wait on BSY; OBL_LAUNCH reloads them (a reset).
_L0_FLASH = chips.STM32L073.flash
_L0_PECR, _L0_PEKEYR, _L0_OPTKEYR, _L0_SR, _L0_OPTR = 0x04, 0x0C, 0x14, 0x18, 0x1C
_L0_PEKEYS = (0x89AB_CDEF, 0x0203_0405)
_L0_OPTKEYS = (0xFBEA_D9C8, 0x2425_2627)
_L0_OPTION_WORD0 = chips.STM32L073.option_bytes
_L0_BSY, _L0_OBL_LAUNCH = 1 << 0, 1 << 18


def _l0_program(target, rdp: int) -> None:
    for key in _L0_PEKEYS:
        target.write32(_L0_FLASH + _L0_PEKEYR, key)
    for key in _L0_OPTKEYS:
        target.write32(_L0_FLASH + _L0_OPTKEYR, key)
    # Keep WPRMOD (bits 15:8 of the first option word); FLASH_OPTR mirrors that word's low half.
    value = (target.read32(_L0_FLASH + _L0_OPTR) & 0xFF00) | rdp
    target.write32(_L0_OPTION_WORD0, value | ((~value & 0xFFFF) << 16))
    _wait_clear(target, _L0_FLASH + _L0_SR, _L0_BSY)
    target.write32(_L0_FLASH + _L0_PECR, target.read32(_L0_FLASH + _L0_PECR) | _L0_OBL_LAUNCH)


def _wait_clear(target, address: int, bit: int, polls: int = 1000) -> None:
    for _ in range(polls):
        if not target.read32(address) & bit:
            return
    raise RigError(f"option bytes: busy bit at 0x{address:08x} never cleared; power-cycle the board and retry")


# Where the RDP byte in force is read and how it is changed, per variant.
RDP = {
    "stm32h7": RdpRegisters(current=_H7_FLASH + _H7_OPTSR_CUR, shift=8, program=_h7_program),  # OPTSR_CUR.RDP[15:8]
    "stm32l0": RdpRegisters(current=_L0_FLASH + _L0_OPTR, shift=0, program=_l0_program),  # FLASH_OPTR.RDPROT[7:0]
}
