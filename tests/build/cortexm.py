"""Run a built STM32 binary on an emulated Cortex-M core (Unicorn), as a bench would run it.

The CPU executes the real machine code; the few peripherals the firmware touches are modelled at
register level from the reference manuals (RM0433 for the STM32H743, RM0367 for the STM32L073),
independently of firmware/*/chip.h, so a wrong address or sequence in the C code shows up as
missing console output or a refused flash write. Tests read only what a bench reads: console
bytes, flash contents, and why the part reset.

Time: the firmware polls its millisecond counter; every read of it advances the emulated clock by
1 ms, and a slice of instructions that never reads it advances it by 10 ms. The IWDG resets the
part when 2 s of emulated time pass without a feed.
"""

import struct
import subprocess
from dataclasses import dataclass, field

from unicorn import UC_ARCH_ARM, UC_HOOK_MEM_READ, UC_HOOK_MEM_WRITE, UC_MODE_MCLASS, UC_MODE_THUMB, Uc, UcError
from unicorn.arm_const import UC_ARM_REG_PC, UC_ARM_REG_SP, UC_CPU_ARM_CORTEX_M0, UC_CPU_ARM_CORTEX_M7

SLICE = 20_000  # instructions per emu_start call
WATCHDOG_MS = 2000
AIRCR_SYSRESETREQ = 0x05FA0004


@dataclass(frozen=True)
class Part:
    cpu: int
    flash: tuple[int, int]
    ram: tuple[int, int]
    usart: int
    rcc_reset_flags: int  # address of RCC_RSR / RCC_CSR
    rmvf: int
    flags: dict  # reset cause -> flag bits the RCC shows after it
    iwdg: int
    pages: tuple[int, ...]  # 4 KiB MMIO pages to model


H7 = Part(
    cpu=UC_CPU_ARM_CORTEX_M7, flash=(0x0800_0000, 2 << 20), ram=(0x2000_0000, 128 << 10),
    usart=0x4000_4800, rcc_reset_flags=0x5802_44D0, rmvf=1 << 16,
    # PORRSTF|BORRSTF|PINRSTF, IWDG1RSTF|PINRSTF, SFTRSTF|PINRSTF, PINRSTF (+D1/D2/CPU flags the
    # app ignores)
    flags={"power-on": (1 << 23) | (1 << 21) | (1 << 22), "watchdog": (1 << 26) | (1 << 22),
           "software": (1 << 24) | (1 << 22), "pin": 1 << 22},
    iwdg=0x5800_4800,
    pages=(0x4000_4000, 0x5802_4000, 0x5802_0000, 0x5800_4000, 0x5200_2000, 0xE000_E000),
)
L0 = Part(
    cpu=UC_CPU_ARM_CORTEX_M0, flash=(0x0800_0000, 192 << 10), ram=(0x2000_0000, 20 << 10),
    usart=0x4000_4400, rcc_reset_flags=0x4002_1050, rmvf=1 << 23,
    flags={"power-on": (1 << 27) | (1 << 26), "watchdog": (1 << 29) | (1 << 26),
           "software": (1 << 28) | (1 << 26), "pin": 1 << 26},
    iwdg=0x4000_3000,
    pages=(0x4000_4000, 0x4002_1000, 0x5000_0000, 0x4000_3000, 0x4002_2000, 0xE000_E000),
)
PARTS = {"stm32h7": H7, "stm32l0": L0}


def symbol(elf, name: str) -> int:
    out = subprocess.run(["arm-none-eabi-nm", str(elf)], capture_output=True, text=True, check=True).stdout
    for line in out.splitlines():
        addr, _, sym = line.split()
        if sym == name:
            return int(addr, 16)
    raise LookupError(name)


@dataclass
class Board:
    variant: str
    flash: bytearray  # the whole flash, from offset 0
    elf: str  # for the address of the firmware's millisecond counter
    app_address: int  # bus address of the vector table MCUboot would jump to
    console: str = ""
    programmed: list = field(default_factory=list)  # (bus address, unit bytes) the controller accepted
    refused: list = field(default_factory=list)  # flash writes the controller would have refused

    def __post_init__(self):
        self.part = PARTS[self.variant]
        self.ticks_addr = symbol(self.elf, "rig_ticks_ms")
        self.ram = bytes(self.part.ram[1])
        self.now_ms = 0

    # -- a reset: RAM survives unless the power was off; peripherals start from reset values.
    def boot(self, cause: str) -> str:
        """Run from reset until the part resets again or 3 s pass; returns why it stopped."""
        if cause == "power-on":
            self.ram = bytes([0xA5]) * self.part.ram[1]  # power-up noise, never a valid counter
        self.regs: dict[int, int] = {}
        self.reset_flags = self.part.flags[cause]
        self.watchdog_fed_at: int | None = None
        self.locked = True
        self.prg_locked = True
        self.keys: list[int] = []
        self.unit: dict[int, int] = {}
        self.stop: str | None = None
        uc = self.uc = Uc(UC_ARCH_ARM, UC_MODE_THUMB | UC_MODE_MCLASS)
        uc.ctl_set_cpu_model(self.part.cpu)
        uc.mem_map(self.part.flash[0], self.part.flash[1])
        uc.mem_write(self.part.flash[0], bytes(self.flash))
        uc.mem_map(self.part.ram[0], self.part.ram[1])
        uc.mem_write(self.part.ram[0], self.ram)
        for page in self.part.pages:
            uc.mmio_map(page, 0x1000, self._read, page, self._write, page)
        uc.hook_add(UC_HOOK_MEM_READ, self._tick, begin=self.ticks_addr, end=self.ticks_addr + 3)
        uc.hook_add(UC_HOOK_MEM_WRITE, self._flash_write, begin=self.part.flash[0],
                    end=self.part.flash[0] + self.part.flash[1] - 1)
        sp, pc = struct.unpack_from("<II", self.flash, self.app_address - self.part.flash[0])
        uc.reg_write(UC_ARM_REG_SP, sp)
        start = self.now_ms
        while self.stop is None:
            reads = self.now_ms
            try:
                uc.emu_start(pc | 1, 0xFFFF_FFFF, count=SLICE)
                pc = uc.reg_read(UC_ARM_REG_PC)
            except UcError:
                # An undefined instruction: the core takes the HardFault exception (M0+ always,
                # M7 by escalation) through the vector table VTOR points at.
                vtor = self.regs.get(0xE000_ED08, 0)
                pc = struct.unpack_from("<I", self.flash, vtor + 12 - self.part.flash[0])[0] & ~1
            if self.now_ms == reads:
                self.now_ms += 10
            if self.watchdog_fed_at is not None and self.now_ms - self.watchdog_fed_at > WATCHDOG_MS:
                self.stop = "watchdog"
            elif self.now_ms - start > 3000:
                self.stop = "running"
        self.ram = bytes(uc.mem_read(self.part.ram[0], self.part.ram[1]))
        self.flash = bytearray(uc.mem_read(self.part.flash[0], self.part.flash[1]))
        return self.stop

    def lines(self) -> list[str]:
        return [ln for ln in self.console.split("\r\n") if ln]

    # -- peripherals
    def _tick(self, uc, access, address, size, value, user):
        now = struct.unpack("<I", uc.mem_read(self.ticks_addr, 4))[0]
        uc.mem_write(self.ticks_addr, struct.pack("<I", now + 1))
        self.now_ms += 1

    def _read(self, uc, offset, size, page):
        addr = page + offset
        p = self.part
        if addr == p.usart + 0x1C:
            return (1 << 7) | (1 << 6)  # TXE, TC: the shift register is always ready
        if addr == p.rcc_reset_flags:
            return self.reset_flags
        if addr == p.iwdg + 0x0C:
            return 0  # IWDG_SR: updates done
        if self.variant == "stm32l0":
            if addr == 0x4002_1000:  # RCC_CR: HSI16RDYF follows HSI16ON
                cr = self.regs.get(addr, 0)
                return cr | ((cr & 1) << 2)
            if addr == 0x4002_100C:  # RCC_CFGR: SWS follows SW
                cfgr = self.regs.get(addr, 0)
                return (cfgr & ~0xC) | ((cfgr & 3) << 2)
            if addr == 0x4002_2004:  # FLASH_PECR: the lock bits are the controller's
                return (self.regs.get(addr, 0) & ~3) | int(self.locked) | (int(self.prg_locked) << 1)
            if addr == 0x4002_2018:
                return 0  # FLASH_SR: never busy, no errors
        else:
            if addr in (0x5200_200C, 0x5200_210C):  # FLASH_CR1/2
                return (self.regs.get(addr, 0) & ~1) | int(self.locked)
            if addr in (0x5200_2010, 0x5200_2110):
                return 0  # FLASH_SR1/2
        return self.regs.get(addr, 0)

    def _write(self, uc, offset, size, value, page):
        addr = page + offset
        p = self.part
        if addr == p.usart + 0x28:
            self.console += chr(value & 0xFF)
        elif addr == p.rcc_reset_flags:
            if value & p.rmvf:
                self.reset_flags = 0
        elif addr == p.iwdg:
            if value in (0xCCCC, 0xAAAA) and (value == 0xCCCC or self.watchdog_fed_at is not None):
                self.watchdog_fed_at = self.now_ms
        elif addr == 0xE000_ED0C and value == AIRCR_SYSRESETREQ:
            self.stop = "software"
            uc.emu_stop()
        elif self.variant == "stm32l0" and addr == 0x4002_200C:  # PEKEYR
            self.keys = [*self.keys, value][-2:]
            if self.keys == [0x89ABCDEF, 0x02030405]:
                self.locked = False
        elif self.variant == "stm32l0" and addr == 0x4002_2010:  # PRGKEYR: only once PECR is unlocked
            self.keys = [*self.keys, value][-2:]
            if not self.locked and self.keys == [0x8C9DAEBF, 0x13141516]:
                self.prg_locked = False
        elif self.variant == "stm32l0" and addr == 0x4002_2004 and value & 1:  # PELOCK relocks all
            self.locked = self.prg_locked = True
        elif self.variant == "stm32h7" and addr in (0x5200_2004, 0x5200_2104):  # KEYR1/2
            self.keys = [*self.keys, value][-2:]
            if self.keys == [0x45670123, 0xCDEF89AB]:
                self.locked = False
        elif self.variant == "stm32h7" and addr in (0x5200_200C, 0x5200_210C) and value & 1:
            self.locked = True
        self.regs[addr] = value

    def _flash_write(self, uc, access, address, size, value, user):
        if self.variant == "stm32l0":
            offset = address - self.part.flash[0]
            ok = (not self.locked and not self.prg_locked and size == 4 and address % 4 == 0
                  and self.flash[offset : offset + 4] == bytes(4))
            (self.programmed if ok else self.refused).append((address, struct.pack("<I", value)))
            return
        # STM32H7: words collect in the write buffer; the eighth programs one 256-bit flash word.
        cr = self.regs.get(0x5200_200C if address < 0x0810_0000 else 0x5200_210C, 0)
        if self.locked or not cr & 2 or size != 4:
            self.refused.append((address, struct.pack("<I", value)))
            return
        self.unit[address] = value
        base = address & ~31
        if all(base + 4 * i in self.unit for i in range(8)):
            data = b"".join(struct.pack("<I", self.unit.pop(base + 4 * i)) for i in range(8))
            offset = base - self.part.flash[0]
            erased = self.flash[offset : offset + 32] == b"\xff" * 32
            (self.programmed if erased else self.refused).append((base, data))
