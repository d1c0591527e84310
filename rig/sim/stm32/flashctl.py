"""The FLASH peripheral's registers, the flash array behind them and the option bytes: one model
for the debugger (chip.py) and the emulated core (machine.py).

- STM32H743 (RM0433 §4.3, §4.9): KEYR/CR/SR/CCR per bank, sector erase (SER+SNB+START) and bank
  erase (BER+START) - pyocd's own stm32h743xx target mass-erases this way - and the option bytes
  (OPTKEYR, OPTCR.OPTSTART, OPTSR_PRG -> OPTSR_CUR) for readout protection. The core programs
  with CR.PG set: its stores into the array fill the 256-bit write buffer, and the store that
  completes a flash word programs it.
- STM32L0 (RM0367 §3.3, §3.7): PEKEYR/PRGKEYR/OPTKEYR unlock, word programming by a store into
  the array, page erase (PECR.ERASE+PROG, then a store into the page), option bytes written at
  0x1FF80000 and loaded by PECR.OBL_LAUNCH (which resets the chip, as on silicon), FLASH_OPTR
  showing RDP.
Every program and erase is one operation of the board's rig.sim.flash.Flash (so a power cut
armed at operation N cuts the firmware's own writes too); what the Flash refuses (a unit not
erased) shows as the controller's error flag. A debugger programs pages through pyocd's flash
algorithm contract (see core.py), not through PG/PROG stores: the bus refuses its stores to the
array.

RDP level 1 (RDP byte neither 0xAA nor 0xCC): reads, programs and erases of the flash array
from the debug port fail; the core's own accesses do not. Going back to level 0 mass-erases the
flash first, as the part does. The option bytes persist in the board's state directory (they
are flash on the part).
"""

import json
import os
from collections.abc import Callable
from pathlib import Path

from rig.sim.flash import Flash, FlashError
from rig.sim.stm32.parts import FlashInterface, Part

RDP_LEVEL0 = 0xAA
RDP_LEVEL2 = 0xCC  # any other RDP byte is level 1


class OptionBytes:
    """The user option bytes that matter here (RDP), persisted as a small JSON file."""

    def __init__(self, path: Path):
        self._path = Path(path)
        self.rdp = RDP_LEVEL0
        if self._path.exists():
            self.rdp = json.loads(self._path.read_text())["rdp"]

    @property
    def protected(self) -> bool:
        return self.rdp != RDP_LEVEL0

    def program(self, rdp: int, flash: Flash) -> None:
        if self.rdp == RDP_LEVEL2:
            return  # level 2 is permanent: the part ignores every option change
        if self.protected and rdp == RDP_LEVEL0:
            flash.erase(0, flash.geometry.size)  # RDP regression erases the whole user flash first
        self.rdp = rdp
        tmp = self._path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"rdp": rdp}))
        os.replace(tmp, self._path)


class H7FlashController:
    KEYS = (0x4567_0123, 0xCDEF_89AB)
    OPTKEYS = (0x0819_2A3B, 0x4C5D_6E7F)
    CR_LOCK, CR_PG, CR_SER, CR_BER, CR_START = 1 << 0, 1 << 1, 1 << 2, 1 << 3, 1 << 7
    SR_EOP, SR_PGSERR, SR_INCERR, SR_OPERR = 1 << 16, 1 << 18, 1 << 21, 1 << 22
    OPTCR_OPTLOCK, OPTCR_OPTSTART = 1 << 0, 1 << 1
    BANK_STRIDE = 0x100

    def __init__(self, flash: Flash, options: OptionBytes):
        self.flash = flash
        self.options = options
        self.reset()

    def reset(self) -> None:
        self._cr = [0x31, 0x31]  # LOCK, PSIZE=x64
        self._sr = [0, 0]
        self._keys: list[list[int]] = [[], []]
        self._optcr = self.OPTCR_OPTLOCK
        self._optkeys: list[int] = []
        self._optsr_prg = self._optsr()
        self._buffer: dict[int, int] = {}  # the write buffer: flash offset -> byte

    def _optsr(self) -> int:
        return 0x1600_00F0 | self.options.rdp << 8  # reset value of RM0433 with the RDP byte

    def read(self, off: int) -> int:
        bank, reg = divmod(off, self.BANK_STRIDE)
        if bank > 1:
            return 0
        if reg == 0x00:
            return 0x37  # ACR: 7 wait states, WRHIGHFREQ 3
        if reg == 0x0C:
            return self._cr[bank]
        if reg == 0x10:
            return self._sr[bank]  # never BSY/QW: operations complete within the register write
        if reg == 0x18:
            return self._optcr
        if reg == 0x1C:
            return self._optsr()
        if reg == 0x20:
            return self._optsr_prg
        return 0

    def write(self, off: int, value: int, by_core: bool = False) -> None:
        bank, reg = divmod(off, self.BANK_STRIDE)
        if bank > 1:
            return
        if reg == 0x04:
            self._keys[bank] = (self._keys[bank] + [value])[-2:]
            if tuple(self._keys[bank]) == self.KEYS:
                self._cr[bank] &= ~self.CR_LOCK
        elif reg == 0x08:
            self._optkeys = (self._optkeys + [value])[-2:]
            if tuple(self._optkeys) == self.OPTKEYS:
                self._optcr &= ~self.OPTCR_OPTLOCK
        elif reg == 0x0C:
            self._write_cr(bank, value, by_core)
        elif reg == 0x14:
            self._sr[bank] &= ~value  # CCR: write 1 to clear
        elif reg == 0x18:
            self._write_optcr(value)
        elif reg == 0x20 and not self._optcr & self.OPTCR_OPTLOCK:
            self._optsr_prg = value

    def store(self, offset: int, size: int, value: int) -> None:
        """A store of the core into the flash array at `offset` (from the flash start)."""
        bank = offset // (self.flash.geometry.size // 2)
        word = offset & ~31
        if self._cr[bank] & (self.CR_LOCK | self.CR_PG) != self.CR_PG:
            self._sr[bank] |= self.SR_PGSERR
            return
        if self._buffer and min(self._buffer) & ~31 != word:
            self._sr[bank] |= self.SR_INCERR  # a store to another flash word before this one was full
            self._buffer = {}
        self._buffer.update({offset + i: (value >> 8 * i) & 0xFF for i in range(size)})
        if len(self._buffer) < 32:
            return
        data = bytes(self._buffer[word + i] for i in range(32))
        self._buffer = {}
        try:
            self.flash.write(word, data)
            self._sr[bank] |= self.SR_EOP
        except FlashError:
            self._sr[bank] |= self.SR_PGSERR  # the flash word was not erased

    def _write_cr(self, bank: int, value: int, by_core: bool = False) -> None:
        if self._cr[bank] & self.CR_LOCK:
            return  # a locked CR ignores writes (the part also raises a bus error we do not model)
        self._cr[bank] = value & ~self.CR_START
        if not value & self.CR_START:
            return
        g = self.flash.geometry
        bank_size = g.size // 2
        try:
            if self.options.protected and not by_core:
                raise FlashError("readout protection level 1: flash erase refused")
            if value & self.CR_BER:
                self.flash.erase(bank * bank_size, bank_size)
            elif value & self.CR_SER:
                snb = (value >> 8) & 0x7
                self.flash.erase(bank * bank_size + snb * g.sector_size, g.sector_size)
        except FlashError:
            self._sr[bank] |= self.SR_OPERR

    def _write_optcr(self, value: int) -> None:
        if self._optcr & self.OPTCR_OPTLOCK:
            return
        self._optcr = value & ~self.OPTCR_OPTSTART
        if value & self.OPTCR_OPTSTART:
            self.options.program((self._optsr_prg >> 8) & 0xFF, self.flash)


class L0FlashController:
    PEKEYS = (0x89AB_CDEF, 0x0203_0405)
    PRGKEYS = (0x8C9D_AEBF, 0x1314_1516)
    OPTKEYS = (0xFBEA_D9C8, 0x2425_2627)
    PECR_PELOCK, PECR_PRGLOCK, PECR_OPTLOCK, PECR_PROG, PECR_ERASE = 1 << 0, 1 << 1, 1 << 2, 1 << 3, 1 << 9
    PECR_OBL_LAUNCH = 1 << 18
    SR_READY_HVOFF = 0x0000_000C  # READY, ENDHV: never busy, operations complete within the store
    SR_EOP, SR_WRPERR, SR_PGAERR, SR_SIZERR, SR_NOTZEROERR = 1 << 1, 1 << 8, 1 << 9, 1 << 10, 1 << 16

    def __init__(self, flash: Flash, options: OptionBytes, system_reset):
        self.flash = flash
        self.options = options
        self._system_reset = system_reset
        self.reset()

    def reset(self) -> None:
        self._pecr = 0x07  # PELOCK, PRGLOCK, OPTLOCK
        self._sr = 0
        self._pekeys: list[int] = []
        self._prgkeys: list[int] = []
        self._optkeys: list[int] = []
        self._pending_rdp: int | None = None

    def read(self, off: int) -> int:
        if off == 0x04:
            return self._pecr
        if off == 0x18:
            return self.SR_READY_HVOFF | self._sr
        if off == 0x1C:
            return 0x8070_0000 | self.options.rdp  # OPTR with the RDP byte loaded at reset
        return 0

    def write(self, off: int, value: int, by_core: bool = False) -> None:
        if off == 0x04:
            if not self._pecr & self.PECR_PELOCK:
                self._pecr = (self._pecr & 0x7) | (value & ~0x7)
                if value & self.PECR_OBL_LAUNCH:
                    self._launch()
            if value & self.PECR_PELOCK:
                self._pecr |= 0x7  # setting PELOCK relocks program memory and option bytes too
        elif off == 0x0C:
            self._pekeys = (self._pekeys + [value])[-2:]
            if tuple(self._pekeys) == self.PEKEYS:
                self._pecr &= ~self.PECR_PELOCK
        elif off == 0x10 and not self._pecr & self.PECR_PELOCK:
            self._prgkeys = (self._prgkeys + [value])[-2:]
            if tuple(self._prgkeys) == self.PRGKEYS:
                self._pecr &= ~self.PECR_PRGLOCK
        elif off == 0x18:
            self._sr &= ~value  # the error flags and EOP clear by writing 1
        elif off == 0x14 and not self._pecr & self.PECR_PELOCK:
            self._optkeys = (self._optkeys + [value])[-2:]
            if tuple(self._optkeys) == self.OPTKEYS:
                self._pecr &= ~self.PECR_OPTLOCK

    def store(self, offset: int, size: int, value: int) -> None:
        """A store of the core into the flash array at `offset` (from the flash start)."""
        g = self.flash.geometry
        if self._pecr & (self.PECR_PELOCK | self.PECR_PRGLOCK):
            self._sr |= self.SR_WRPERR
        elif self._pecr & (self.PECR_ERASE | self.PECR_PROG) == self.PECR_ERASE | self.PECR_PROG:
            self.flash.erase(offset - offset % g.sector_size, g.sector_size)  # the page the store is in
            self._sr |= self.SR_EOP
        elif size != 4:
            self._sr |= self.SR_SIZERR
        elif offset % 4:
            self._sr |= self.SR_PGAERR
        else:
            try:
                self.flash.write(offset, value.to_bytes(4, "little"))
                self._sr |= self.SR_EOP
            except FlashError:
                self._sr |= self.SR_NOTZEROERR  # the word was not erased

    def write_option_word(self, offset: int, value: int) -> bool:
        """A write into the option byte area (chip.option_bytes) at `offset`; False if the area is
        locked (the bus faults)."""
        if self._pecr & self.PECR_OPTLOCK:
            return False
        if offset == 0:  # the RDP word
            # The low half holds RDP and its complement nRDP in the high half must match.
            rdp, nrdp = value & 0xFF, (value >> 16) & 0xFF
            if rdp ^ nrdp == 0xFF:
                self._pending_rdp = rdp
        return True

    def _launch(self) -> None:
        if self._pending_rdp is not None:
            self.options.program(self._pending_rdp, self.flash)
            self._pending_rdp = None
        self._system_reset()


FlashController = H7FlashController | L0FlashController


def for_part(part: Part, flash: Flash, options: OptionBytes, system_reset: Callable[[], None]) -> FlashController:
    """The part's controller; `system_reset()` is what an option byte load does to the chip."""
    if part.flash_interface is FlashInterface.H7:
        return H7FlashController(flash, options)
    return L0FlashController(flash, options, system_reset)
