"""A built STM32 binary running on the emulated core as a board on a bench: the one place the
firmware tests touch the emulator (tests/build/cortexm.py today; rig/sim/stm32 once it lands).

What a test can do is what a bench can do: put bytes on the console's RX line (or open its pty),
read what the console printed, read flash back, reset the part, and learn why it stopped.

On top of cortexm.Board's register models this adds what an interactive firmware needs:
- exceptions: SysTick every emulated millisecond and the console USART's RX interrupt (RXNEIE
  and the NVIC enable bit), entered and left as the core does (8-word frame, EXC_RETURN);
- WFI: the core sleeps until the next interrupt, and the emulator waits with it in wall time,
  so an idle board costs next to no host CPU; while it runs, emulated time follows its
  instruction count at the part's core clock;
- flash erase through the controllers (H7 FLASH_CR SER/SNB/START, L0 PECR ERASE|PROG and a word
  written into the page), beside cortexm's program model;
- the IWDG resetting the part 2 s after the last feed, and SCB AIRCR's software reset.
"""

import os
import select
import struct
import threading
import time
import tty
from collections import deque

import cortexm  # tests/build/cortexm.py, beside this file
from unicorn import UC_ARCH_ARM, UC_HOOK_MEM_WRITE, UC_MODE_MCLASS, UC_MODE_THUMB, Uc, UcError
from unicorn.arm_const import (
    UC_ARM_REG_LR,
    UC_ARM_REG_PC,
    UC_ARM_REG_PRIMASK,
    UC_ARM_REG_R0,
    UC_ARM_REG_R1,
    UC_ARM_REG_R2,
    UC_ARM_REG_R3,
    UC_ARM_REG_R12,
    UC_ARM_REG_SP,
    UC_ARM_REG_XPSR,
)

from rig.image.layouts import MCUBOOT_HEADER_SIZE
from rig.image.trailer import Trailer, apply
from rig.variants import facts

SLICE = 4000  # instructions per emu_start call
CORE_HZ = {"stm32h7": 64_000_000, "stm32l0": 16_000_000}  # the clocks board_init() sets up
CONSOLE_IRQ = {"stm32h7": 39, "stm32l0": 28}  # USART3 / USART2 global interrupt (RM0433, RM0367)
SYSTICK = 15
HARDFAULT = 3
EXC_RETURN = 0xFFFF_FFF0  # the core's exception return addresses start here
WFI = 0xBF30
BYTE_MS = 10 / 115_200 * 1000  # one 8N1 character at the console's 115200 baud
FRAME_REGS = (UC_ARM_REG_R0, UC_ARM_REG_R1, UC_ARM_REG_R2, UC_ARM_REG_R3, UC_ARM_REG_R12, UC_ARM_REG_LR,
              UC_ARM_REG_PC, UC_ARM_REG_XPSR)
SYST_CSR = 0xE000_E010
NVIC_ISER = 0xE000_E100
USART_CR1_RXNEIE = 1 << 5
USART_ISR_RXNE = 1 << 5
L0_PECR, L0_ERASE_PROG = 0x4002_2004, (1 << 9) | (1 << 3)
H7_CR = {0x5200_200C: 0x0800_0000, 0x5200_210C: 0x0810_0000}  # FLASH_CR1/2 -> bank base
H7_SER, H7_START = 1 << 2, 1 << 7


def flash_with(variant: str, image: bytes, on_trial: bool = False) -> bytearray:
    """A whole flash image: a signed image in slot0 (with a test-swap trailer if on_trial), the rest erased."""
    layout = facts(variant).layout
    slot0 = layout.part("slot0")
    flash = bytearray([layout.geometry.erased]) * layout.geometry.size
    flash[slot0.offset : slot0.offset + len(image)] = image
    if on_trial:  # as MCUboot leaves an upgrade it just swapped in: magic set, image_ok unset
        slot = bytearray(flash[slot0.offset : slot0.offset + slot0.size])
        trailer = Trailer.for_layout(layout, "slot0")
        flash[slot0.offset : slot0.offset + slot0.size] = apply(slot, [trailer.write_magic()])
    return flash


class FirmwareBoard(cortexm.Board):
    """One part: start(cause) boots slot0's app in a thread; it runs until it resets or halt()."""

    def __init__(self, variant: str, flash: bytearray, elf: str):
        layout = facts(variant).layout
        app = layout.geometry.base + layout.part("slot0").offset + MCUBOOT_HEADER_SIZE
        super().__init__(variant, flash, elf, app)
        self.layout = layout
        self.stop_reason: str | None = None
        self._rx: deque[int] = deque()
        self._emu_ms = self._rx_at = 0.0
        self._out = bytearray()
        self._lock = threading.RLock()
        self._wake = threading.Condition(self._lock)
        self._thread: threading.Thread | None = None
        self._listeners: list = []

    # -- what a bench does
    def start(self, cause: str = "power-on") -> None:
        self.halt()
        if cause == "power-on":
            self.ram = bytes([0xA5]) * self.part.ram[1]
        self._boot(cause)
        self._thread = threading.Thread(target=self._run, name=f"fw-{self.variant}", daemon=True)
        self._thread.start()

    def halt(self) -> None:
        """Stop the emulation (a probe holding the core); flash and RAM are kept."""
        if self._thread is not None:
            with self._wake:
                self.stop = self.stop or "stopped"  # type: ignore[assignment]
                self._wake.notify_all()
            self._thread.join()
            self._thread = None

    def send(self, data: bytes) -> None:
        """Bytes on the console's RX line."""
        with self._wake:
            if not self._rx:
                self._rx_at = max(self._rx_at, self._emu_ms + BYTE_MS)
            self._rx.extend(data)
            self._wake.notify_all()

    def output(self) -> bytes:
        with self._lock:
            return bytes(self._out)

    def wait_for(self, text: bytes, timeout: float = 10.0, start: int = 0) -> int:
        """Wait until the console printed text (after byte `start`); its end offset."""
        deadline = time.monotonic() + timeout
        while True:
            with self._wake:
                at = self._out.find(text, start)
                if at >= 0:
                    return at + len(text)
                if self.stop_reason or time.monotonic() > deadline:
                    raise TimeoutError(f"{text!r} not seen; board {self.stop_reason or 'running'}; "
                                       f"console: {bytes(self._out[-300:])!r}")
                self._wake.wait(0.05)

    def run_until(self, ms: int, timeout: float = 30.0) -> str | None:
        """Let the part run until `ms` of emulated time since its reset, or until it stops first;
        why it stopped (None: still running)."""
        deadline = time.monotonic() + timeout
        with self._wake:
            while self.stop_reason is None and self.now_ms < ms:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"emulated {self.now_ms} ms of {ms} in {timeout} s")
                self._wake.wait(0.05)
            return self.stop_reason

    def settle(self, timeout: float = 30.0) -> None:
        """Wait until every byte sent has been received and the part had 50 ms to answer it."""
        deadline = time.monotonic() + timeout
        with self._wake:
            while self._rx and self.stop_reason is None:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{len(self._rx)} bytes still on the RX line after {timeout} s")
                self._wake.wait(0.05)
            ms = self.now_ms + 50
        self.run_until(ms, timeout)

    def wait_stopped(self, timeout: float = 10.0) -> str:
        if self._thread is not None:
            self._thread.join(timeout)
        assert self.stop_reason is not None, "board still running"
        return self.stop_reason

    def read_flash(self, offset: int, size: int) -> bytes:
        """Flash read-back, offsets from the start of flash (as a probe reads it)."""
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return bytes(self.uc.mem_read(self.part.flash[0] + offset, size))
            return bytes(self.flash[offset : offset + size])

    def stack_used(self) -> int:
        """Bytes of the main stack ever written since power-on (RAM powers up as 0xA5 here; the
        startup code fills only .data and .bss): what a bench measures by painting the stack."""
        with self._lock:
            ram = bytes(self.uc.mem_read(self.part.ram[0], self.part.ram[1])) if self._thread else self.ram
        ebss = cortexm.symbol(self.elf, "_ebss") - self.part.ram[0]
        estack = cortexm.symbol(self.elf, "_estack") - self.part.ram[0]
        low = ebss
        while low < estack and ram[low] == 0xA5:
            low += 1
        return estack - low

    def read_ram(self, address: int, size: int) -> bytes:
        """RAM as a debugger reads it over the bus (bus address)."""
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return bytes(self.uc.mem_read(address, size))
            offset = address - self.part.ram[0]
            return self.ram[offset : offset + size]

    def slot(self, name: str) -> bytes:
        p = self.layout.part(name)
        return self.read_flash(p.offset, p.size)

    def pty(self) -> str:
        """A pseudo-terminal wired to the console, for tools that open a device (smpclient)."""
        master, slave = os.openpty()
        tty.setraw(slave)
        os.set_blocking(master, False)
        self._listeners.append(lambda data: _write_all(master, data))

        def pump():
            while True:
                ready, _, _ = select.select([master], [], [], 0.2)
                if ready:
                    try:
                        data = os.read(master, 4096)
                    except (BlockingIOError, OSError):
                        continue
                    self.send(data)

        threading.Thread(target=pump, daemon=True).start()
        self._pty_slave = slave  # kept open: without a slave open, master reads fail with EIO
        return os.ttyname(slave)

    # -- the emulator
    def _boot(self, cause: str) -> None:
        self.regs: dict[int, int] = {}
        self.reset_flags = self.part.flags[cause]
        self.watchdog_fed_at: int | None = None
        self.locked = self.prg_locked = True
        self.keys: list[int] = []
        self.unit: dict[int, int] = {}
        self.stop = None  # type: ignore[assignment]
        self.stop_reason = None
        self._rx.clear()
        self.now_ms = 0
        self._emu_ms = 0.0
        self._rx_at = 0.0  # emulated time the next RX byte is complete in RDR
        self._ticks = 0
        self._in_handler = False
        uc = self.uc = Uc(UC_ARCH_ARM, UC_MODE_THUMB | UC_MODE_MCLASS)
        uc.ctl_set_cpu_model(self.part.cpu)
        uc.mem_map(self.part.flash[0], self.part.flash[1])
        uc.mem_write(self.part.flash[0], bytes(self.flash))
        uc.mem_map(self.part.ram[0], self.part.ram[1])
        uc.mem_write(self.part.ram[0], self.ram)
        for page in self.part.pages:
            uc.mmio_map(page, 0x1000, self._read, page, self._write, page)
        uc.hook_add(UC_HOOK_MEM_WRITE, self._flash_write, begin=self.part.flash[0],
                    end=self.part.flash[0] + self.part.flash[1] - 1)
        sp, pc = struct.unpack_from("<II", self.flash, self.app_address - self.part.flash[0])
        uc.reg_write(UC_ARM_REG_SP, sp)
        uc.reg_write(UC_ARM_REG_PC, pc)

    def _run(self) -> None:
        uc = self.uc
        per_slice_ms = SLICE / (CORE_HZ[self.variant] / 1000)
        wall0 = time.monotonic()
        try:
            while True:
                with self._wake:
                    if self.stop:
                        break
                    self._interrupt()
                    pc = uc.reg_read(UC_ARM_REG_PC)
                    try:
                        uc.emu_start(pc | 1, 0xFFFF_FFFF, count=SLICE)
                    except UcError:
                        pc = uc.reg_read(UC_ARM_REG_PC)
                        if pc >= EXC_RETURN:
                            self._leave()
                        else:
                            self._enter(HARDFAULT)  # an undefined instruction
                        continue
                    pc = uc.reg_read(UC_ARM_REG_PC)
                    asleep = struct.unpack("<H", uc.mem_read(pc - 2, 2))[0] == WFI
                    self._emu_ms += per_slice_ms / (4 if asleep else 1)
                    if self.stop:
                        break
                    if asleep and not self._irq_pending():
                        # Sleep in wall time to the next event: the next millisecond, or the
                        # next character on the RX line (sent bytes arrive at the baud rate).
                        event = float(int(self._emu_ms) + 1)
                        if self._rx:
                            event = min(event, self._rx_at)
                        delay = wall0 + event / 1000 - time.monotonic()
                        if delay > 0:
                            self._wake.wait(delay)
                        if not self._irq_pending():
                            self._emu_ms = max(self._emu_ms, event)
                    if asleep:
                        self._wake_up()
                    self.now_ms = int(self._emu_ms)
                    if self.watchdog_fed_at is not None and self.now_ms - self.watchdog_fed_at > cortexm.WATCHDOG_MS:
                        self.stop = "watchdog"  # type: ignore[assignment]
                        break
        finally:
            with self._wake:
                self.ram = bytes(uc.mem_read(self.part.ram[0], self.part.ram[1]))
                self.flash = bytearray(uc.mem_read(self.part.flash[0], self.part.flash[1]))
                self.stop_reason = self.stop
                self._wake.notify_all()

    def _wake_up(self) -> None:
        """A pending interrupt ends WFI even with PRIMASK set (cpsid i; wfi; cpsie i): run on to
        the cpsie, where the core takes it."""
        for _ in range(8):
            if not self.uc.reg_read(UC_ARM_REG_PRIMASK) & 1:
                return
            pc = self.uc.reg_read(UC_ARM_REG_PC)
            self.uc.emu_start(pc | 1, 0xFFFF_FFFF, count=1)

    def _console_irq_enabled(self) -> bool:
        irq = CONSOLE_IRQ[self.variant]
        iser = self.regs.get(NVIC_ISER + 4 * (irq // 32), 0)
        return bool(iser >> (irq % 32) & 1 and self.regs.get(self.part.usart, 0) & USART_CR1_RXNEIE)

    def _irq_pending(self) -> bool:
        systick = self.regs.get(SYST_CSR, 0) & 3 == 3 and int(self._emu_ms) > self._ticks
        return systick or (self._rx_ready() and self._console_irq_enabled())

    def _rx_ready(self) -> bool:
        return bool(self._rx) and self._emu_ms >= self._rx_at

    def _interrupt(self) -> None:
        """Take one pending exception, from thread mode with PRIMASK clear (no nesting needed)."""
        if self._in_handler or self.uc.reg_read(UC_ARM_REG_PRIMASK) & 1:
            return
        if self.regs.get(SYST_CSR, 0) & 3 == 3 and int(self._emu_ms) > self._ticks:
            self._ticks += 1
            self._enter(SYSTICK)
        elif self._rx_ready() and self._console_irq_enabled():
            self._enter(16 + CONSOLE_IRQ[self.variant])

    def _enter(self, exception: int) -> None:
        uc = self.uc
        sp = uc.reg_read(UC_ARM_REG_SP)
        frame = [uc.reg_read(r) for r in FRAME_REGS]
        if sp & 4:  # the frame is 8-byte aligned; xPSR bit 9 says the core padded it
            sp -= 4
            frame[7] |= 1 << 9
        sp -= 32
        uc.mem_write(sp, struct.pack("<8I", *frame))
        uc.reg_write(UC_ARM_REG_SP, sp)
        uc.reg_write(UC_ARM_REG_LR, 0xFFFF_FFF9)
        vtor = self.regs.get(0xE000_ED08, 0)
        handler = struct.unpack("<I", uc.mem_read(vtor + 4 * exception, 4))[0]
        uc.reg_write(UC_ARM_REG_PC, handler & ~1)
        self._in_handler = True

    def _leave(self) -> None:
        uc = self.uc
        sp = uc.reg_read(UC_ARM_REG_SP)
        frame = struct.unpack("<8I", uc.mem_read(sp, 32))
        clear = {UC_ARM_REG_PC: 1, UC_ARM_REG_XPSR: 1 << 9}  # the Thumb bit; the padding flag
        for reg, value in zip(FRAME_REGS, frame, strict=True):
            uc.reg_write(reg, value & ~clear.get(reg, 0))
        uc.reg_write(UC_ARM_REG_SP, sp + 32 + (4 if frame[7] & 1 << 9 else 0))
        self._in_handler = False

    # -- peripherals beyond cortexm's
    def _read(self, uc, offset, size, page):
        addr = page + offset
        if addr == self.part.usart + 0x1C:  # ISR: TXE, TC, and RXNE while a byte waits
            return (1 << 7) | (1 << 6) | (USART_ISR_RXNE if self._rx_ready() else 0)
        if addr == self.part.usart + 0x24:  # RDR: reading takes the byte; the next one follows
            if not self._rx_ready():
                return 0
            self._rx_at = self._emu_ms + BYTE_MS
            return self._rx.popleft()
        return super()._read(uc, offset, size, page)

    def _write(self, uc, offset, size, value, page):
        addr = page + offset
        if addr == self.part.usart + 0x28:
            self._out.append(value & 0xFF)
            for listener in self._listeners:
                listener(bytes([value & 0xFF]))
            self._wake.notify_all()
            return
        if addr == 0xE000_ED0C and value == cortexm.AIRCR_SYSRESETREQ:
            self.stop = "software"  # type: ignore[assignment]
            uc.emu_stop()
            return
        if addr in H7_CR and value & H7_SER and value & H7_START and not self.locked:
            sector = (value >> 8) & 7
            base = H7_CR[addr] + sector * self.layout.geometry.sector_size
            uc.mem_write(base, b"\xff" * self.layout.geometry.sector_size)
            self.erased.append(base)
        if addr == NVIC_ISER or addr == NVIC_ISER + 4:  # write-1-to-set
            value |= self.regs.get(addr, 0)
        super()._write(uc, offset, size, value, page)

    def _flash_write(self, uc, access, address, size, value, user):
        if (self.variant == "stm32l0" and self.regs.get(L0_PECR, 0) & L0_ERASE_PROG == L0_ERASE_PROG
                and not self.locked and not self.prg_locked):
            page = self.layout.geometry.sector_size
            base = address & ~(page - 1)
            uc.mem_write(base, bytes(page))  # the word written (0) lands on an erased page
            self.erased.append(base)
            return
        super()._flash_write(uc, access, address, size, value, user)

    @property
    def erased(self) -> list:
        if not hasattr(self, "_erased"):
            self._erased: list[int] = []
        return self._erased


def _write_all(fd: int, data: bytes) -> None:
    try:
        os.write(fd, data)
    except BlockingIOError:
        pass  # nobody reads: a UART's TX drops bytes too
