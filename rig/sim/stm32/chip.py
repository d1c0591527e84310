"""The virtual STM32's bus as its AHB-AP reaches it: flash, RAM, debug components, FLASH registers,
the unique device ID.

Reads of the flash array come from the board's rig.sim.flash.Flash (the same file the bootloader
and app models use); the array is not writable from the bus - programs and erases go through the
flash algorithm contract (core.py) or the FLASH peripheral (flashctl.py), so the part's rules
apply to every byte a debugger writes. Unmapped addresses fault, as on silicon.
The 96-bit unique device ID sits in system memory, outside the flash array, so readout protection
level 1 does not hide it (on the part RDP1 blocks the user flash, not system memory).
"""

import hashlib
import logging
import struct

from rig.sim.flash import FlashError
from rig.sim.stm32 import flashctl
from rig.sim.stm32.core import Core
from rig.sim.stm32.firmware import DEVICE
from rig.sim.stm32.flashctl import L0FlashController, OptionBytes
from rig.sim.stm32.parts import PARTS

log = logging.getLogger(__name__)

ROM_TABLE = 0xE00F_F000
SCS, DWT, FPB = 0xE000_E000, 0xE000_1000, 0xE000_2000
PPB_START, PPB_END = 0xE000_0000, 0xE010_0000
PERIPH_START, PERIPH_END = 0x4000_0000, 0x6000_0000
ARM_JEP106 = 0x43B  # continuation 4, code 0x3B
CLASS_ROM, CLASS_GENERIC = 0x1, 0xE


class BusFault(Exception):
    """The access faulted on the target bus (the probe reports a transfer fault)."""


class NoPower(Exception):
    """The target is unpowered: the debug port does not answer."""


def unique_id(board_id: str) -> tuple[int, int, int]:
    """UID[31:0], UID[63:32], UID[95:64] of a board: stable, and unique per board id (the factory's
    wafer position and lot number on silicon)."""
    digest = hashlib.sha256(f"stm32-uid:{board_id}".encode()).digest()
    return struct.unpack("<III", digest[:12])


def _id_registers(part_number: int, cls: int) -> dict[int, int]:
    """CoreSight PIDR4..7, PIDR0..3 and CIDR0..3 at offsets 0xFD0..0xFFC of a component."""
    regs = {0xFD0: ARM_JEP106 >> 8, 0xFE0: part_number & 0xFF,
            0xFE4: (part_number >> 8) | (ARM_JEP106 & 0xF) << 4,
            0xFE8: 0x08 | (ARM_JEP106 >> 4) & 0x7, 0xFEC: 0,
            0xFF0: 0x0D, 0xFF4: cls << 4, 0xFF8: 0x05, 0xFFC: 0xB1}
    return regs


class Chip:
    def __init__(self, board):
        self.board = board
        self.part = PARTS[board.variant]
        self.flash = board.flash
        self.geometry = board.layout.geometry
        self.options = OptionBytes(board.state_dir / "option-bytes.json")
        self.core: Core
        self.flashctl = flashctl.for_part(self.part, self.flash, self.options, lambda: self.core.reset("software"))
        self.core = Core(self)
        self._ram = [(start, bytearray(size)) for start, size in self.part.ram]
        self._regs: dict[int, int] = {}  # other registers: plain storage, reset at power-on
        self._ids = self._component_ids()
        self._ids.update(zip(self.part.chip.uid, unique_id(board.id), strict=True))
        self._power_cycles = -1  # power-on state is set up at the first access (check_power)

    def _component_ids(self) -> dict[int, int]:
        p = self.part
        ids = {}
        for base, number, cls in ((ROM_TABLE, 0x4C4, CLASS_ROM), (SCS, p.scs_part, CLASS_GENERIC),
                                  (DWT, p.dwt_part, CLASS_GENERIC), (FPB, p.fpb_part, CLASS_GENERIC)):
            ids.update({base + off: v for off, v in _id_registers(number, cls).items()})
        for i, comp in enumerate((SCS, DWT, FPB)):
            ids[ROM_TABLE + 4 * i] = ((comp - ROM_TABLE) & 0xFFFF_F000) | 0x3  # present, 32-bit format
        ids[ROM_TABLE + 12] = 0  # end of table
        ids[ROM_TABLE + 0xFCC] = 0x1  # MEMTYPE: system memory present on the bus
        return ids

    # -- power
    def check_power(self) -> None:
        """Fail while unpowered; after a power-on the debug logic and RAM start from reset."""
        if not self.board.powered:
            raise NoPower("target not powered: switch its outlet on")
        if self.board.power_cycles != self._power_cycles:
            self._power_cycles = self.board.power_cycles
            for _, ram in self._ram:
                ram[:] = bytes(len(ram))
            self._regs.clear()
            self.flashctl.reset()
            self.core.power_on()

    def check_flash_access(self) -> None:
        if self.options.protected:
            raise FlashError("readout protection is active (RDP level 1): regress RDP to level 0 first")

    def log_flash_error(self, err: Exception) -> None:
        log.info("board %s: flash error from the debug port: %s", self.board.id, err)

    # -- bus
    def _ram_at(self, addr: int, n: int) -> tuple[bytearray, int] | None:
        for start, ram in self._ram:
            if start <= addr and addr + n <= start + len(ram):
                return ram, addr - start
        return None

    def _flash_offset(self, addr: int, n: int) -> int | None:
        g = self.geometry
        if g.base <= addr and addr + n <= g.base + g.size:
            return addr - g.base
        return None

    def _running_core(self, addr: int, n: int):
        """The emulated core whose RAM this range is, while it runs (or is halted in) the board's
        current run of the firmware."""
        machine = self.board.devices.get(DEVICE)
        if machine is not None and machine.live and self._ram_at(addr, n) is not None:
            return machine
        return None

    def read_block(self, addr: int, n: int) -> bytes:
        if (machine := self._running_core(addr, n)) is not None:
            return bytes(machine.cpu.uc.mem_read(addr, n))
        if (hit := self._ram_at(addr, n)) is not None:
            ram, off = hit
            return bytes(ram[off : off + n])
        if (flash_off := self._flash_offset(addr, n)) is not None:
            if self.options.protected:
                raise BusFault(f"flash read at 0x{addr:08x} refused: readout protection level 1")
            return self.flash.read(flash_off, n)
        if addr % 4 or n % 4:
            return b"".join(self.read(a, 1).to_bytes(1, "little") for a in range(addr, addr + n))
        return b"".join(struct.pack("<I", self.read(a, 4)) for a in range(addr, addr + n, 4))

    def write_block(self, addr: int, data: bytes) -> None:
        if (machine := self._running_core(addr, len(data))) is not None:
            machine.cpu.uc.mem_write(addr, bytes(data))
            return
        if (hit := self._ram_at(addr, len(data))) is not None:
            ram, off = hit
            ram[off : off + len(data)] = data
            return
        if addr % 4 or len(data) % 4:
            for i, b in enumerate(data):
                self.write(addr + i, b, 1)
            return
        for i in range(0, len(data), 4):
            self.write(addr + i, struct.unpack_from("<I", data, i)[0], 4)

    def read(self, addr: int, size: int) -> int:
        """One bus read of `size` bytes (1, 2, 4)."""
        if self._ram_at(addr, size) is not None or self._flash_offset(addr, size) is not None:
            return int.from_bytes(self.read_block(addr, size), "little")
        word = self._read_register(addr & ~3)
        shift = (addr & 3) * 8
        return (word >> shift) & ((1 << (8 * size)) - 1)

    def write(self, addr: int, value: int, size: int) -> None:
        if self._ram_at(addr, size) is not None:
            self.write_block(addr, value.to_bytes(size, "little"))
            return
        if self._flash_offset(addr, size) is not None:
            raise BusFault(f"write to flash at 0x{addr:08x}: program flash through the flash algorithm")
        if size != 4:
            # Narrow register writes land on their byte lanes of the word.
            shift = (addr & 3) * 8
            mask = ((1 << (8 * size)) - 1) << shift
            value = (self._read_register(addr & ~3) & ~mask) | ((value << shift) & mask)
        self._write_register(addr & ~3, value & 0xFFFF_FFFF)

    # -- registers
    def _read_register(self, addr: int) -> int:
        p, core = self.part, self.core
        if addr in self._ids:
            return self._ids[addr]
        fixed = {
            0xE000_ED00: p.cpuid,
            0xE000_EDF0: None,
            0xE000_EDF8: core.dcrdr,
            0xE000_EDFC: core.demcr,
            0xE000_ED30: core.dfsr,
            0xE000_ED0C: 0xFA05_0000 | (self._regs.get(addr, 0) & 0x700),
            0xE000_EF40: 0x1011_0221 if p.chip.fpu else 0,  # MVFR0: single+double precision
            0xE000_EF44: 0x1200_0011 if p.chip.fpu else 0,
            0xE000_EF48: 0x0000_0040 if p.chip.fpu else 0,
            FPB: p.fpb_rev << 28 | (p.fpb_comparators << 4) | (2 << 8) | (self._regs.get(FPB, 0) & 1),
            DWT: p.dwt_comparators << 28,
            p.chip.idcode: p.dbgmcu_idcode,
        }
        if addr == 0xE000_EDF0:
            return core.read_dhcsr()
        if addr in fixed:
            return fixed[addr] or 0  # (DHCSR, the one None, is read above)
        if p.chip.flash <= addr < p.chip.flash + 0x400:
            return self.flashctl.read(addr - p.chip.flash)
        if self._is_register_space(addr):
            return self._regs.get(addr, 0)
        raise BusFault(f"bus fault reading 0x{addr:08x}: nothing is mapped there")

    def _write_register(self, addr: int, value: int) -> None:
        p, core = self.part, self.core
        handlers = {
            0xE000_EDF0: core.write_dhcsr,
            0xE000_EDF4: core.write_dcrsr,
            0xE000_ED0C: core.write_aircr,
        }
        if addr in handlers:
            handlers[addr](value)
            self._regs[addr] = value
        elif FPB <= addr < FPB + 8 + 4 * p.fpb_comparators:
            self._regs[addr] = value
            core.set_breakpoints(self._fpb_breakpoints())
        elif addr == 0xE000_EDF8:
            core.dcrdr = value
        elif addr == 0xE000_EDFC:
            core.demcr = value
        elif addr == 0xE000_ED30:
            core.dfsr &= ~value  # write 1 to clear
        elif p.chip.flash <= addr < p.chip.flash + 0x400:
            self.flashctl.write(addr - p.chip.flash, value)
        elif (isinstance(self.flashctl, L0FlashController) and p.chip.option_bytes is not None
              and 0 <= addr - p.chip.option_bytes < 0x20):
            if not self.flashctl.write_option_word(addr - p.chip.option_bytes, value):
                raise BusFault(f"write to option bytes at 0x{addr:08x}: unlock them with OPTKEYR first")
        elif self._is_register_space(addr):
            self._regs[addr] = value
        else:
            raise BusFault(f"bus fault writing 0x{addr:08x}: nothing is mapped there")

    def _fpb_breakpoints(self) -> set[int]:
        """The addresses the enabled FPB comparators match (ARMv7-M FPB rev 1 on the M7: BPADDR
        with BE; ARMv6-M BPU / rev 0: COMP with REPLACE choosing the halfword)."""
        if not self._regs.get(FPB, 0) & 1:  # FP_CTRL.ENABLE
            return set()
        found = set()
        for i in range(self.part.fpb_comparators):
            comp = self._regs.get(FPB + 8 + 4 * i, 0)
            if not comp & 1:
                continue
            if self.part.fpb_rev:
                found.add(comp & 0xFFFF_FFFE)
            else:
                replace = comp >> 30
                found |= {(comp & 0x1FFF_FFFC) + half for half, bit in ((0, 1), (2, 2)) if replace & bit}
        return found

    def _is_register_space(self, addr: int) -> bool:
        # Peripherals and the core's private bus read as plain registers; anything else faults.
        return PERIPH_START <= addr < PERIPH_END or PPB_START <= addr < PPB_END
