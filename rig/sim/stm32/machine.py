"""An STM32H743 or STM32L073 executing firmware: the core, its bus and the peripherals on it.

The bus (addresses from rig.sim.stm32.parts, RM0433 / RM0367 memory maps):
- the flash array, readable and executable; the core's stores into it go to the FLASH controller
  (flashctl.py), which programs or erases the board's rig.sim.flash.Flash. The core's view is a
  copy that follows every change of that Flash, whoever makes it (the core, MCUboot's model, a
  debugger);
- the RAM blocks; at power-on they hold noise (a fixed pattern), and a reset keeps them;
- register pages: RCC (rcc.py), the console USART (usart.py), IWDG (iwdg.py), FLASH, the GPIO
  ports (plain registers), DBGMCU (IDCODE) and the System Control Space (scs.py). Registers of
  those pages that nothing models read back what was written; any other address is a bus error.

Running: `run()` executes until the part resets (it returns the cause: AIRCR's "software", the
IWDG's "watchdog"), a caller's `stop()` turns true, or the clock reaches `until`. Between slices of
execution it takes due exceptions (SysTick, the USART's interrupt). A slice ends at the first
register access after an event fell due, at WFI, or after SLICE instructions (unicorn's own
count: a loop that touches no register still gets its interrupts, a few ms late at worst).

Stopping unicorn inside a memory callback makes it execute that instruction again when it
resumes (its access included): the access is then answered from the record of the first one,
so each access has its effect once. unicorn is never stopped from another thread: such a stop
can land inside a callback and repeat an access nobody recorded (a console byte sent twice).

A core that waits - in WFI/WFE, locked up, or in a loop that keeps making the same access that
changes nothing (a watchdog feed, reading an idle status register) with exactly the same
registers each time - costs no host CPU: the thread sleeps on the clock until the next event
(a SysTick wrap, the IWDG's deadline, console input, `until`). A loop that only reads RAM an
interrupt handler changes is not seen as waiting: it runs until the next interrupt.
"""

import threading
import time
from collections.abc import Callable

from unicorn import UC_HOOK_CODE, UC_HOOK_MEM_WRITE_PROT, UC_PROT_EXEC, UC_PROT_READ
from unicorn import arm_const as a

from rig.sim import timing
from rig.sim.flash import Flash, PowerCut
from rig.sim.stm32 import dma, rcc
from rig.sim.stm32.clock import WallClock
from rig.sim.stm32.cpu import Cpu
from rig.sim.stm32.flashctl import FlashController
from rig.sim.stm32.iwdg import Iwdg
from rig.sim.stm32.parts import Part
from rig.sim.stm32.scs import Scs
from rig.sim.stm32.usart import Usart

PAGE = 0x1000
SCS_BASE = 0xE000_E000
DEBUG_TIMEOUT = 5.0  # seconds a debugger's request waits for the core (a loaded host is slow to get there)
# A wait that woke this much later than its deadline (load: the thread not scheduled) has starved
# the core: the part's time does not run meanwhile, so its timers (SysTick, IWDG) never count time
# in which the firmware could not execute. (An executing slice skips whatever it took beyond its
# instructions' cycles: see _run.)
STARVED = 0.1
BRANCH_TO_SELF = b"\xfe\xe7"  # Thumb `b .` (B T2, offset -4: back to itself), little-endian
SLICE = 100_000  # instructions at most between two looks at the clock (a few ms of the core's time)
RAM_NOISE = 0xA5  # what a cold SRAM reads here: never a valid magic
# The registers a waiting loop leaves unchanged from one idle access to the next.
IDLE_REGS = [getattr(a, f"UC_ARM_REG_R{i}") for i in range(8)] + [a.UC_ARM_REG_SP, a.UC_ARM_REG_LR]


class _Plain:
    """Registers nothing models: they read back what was written."""

    def __init__(self) -> None:
        self.regs: dict[int, int] = {}

    def read(self, off: int) -> int:
        return self.regs.get(off, 0)

    def write(self, off: int, value: int) -> None:
        self.regs[off] = value


class _Dbgmcu(_Plain):
    def __init__(self, idcode: int):
        super().__init__()
        self.idcode = idcode

    def read(self, off: int) -> int:
        return self.idcode if off == 0 else super().read(off)


class Machine:
    def __init__(self, part: Part, flash: Flash, flashctl: FlashController, transmit: Callable[[bytes], None],
                 clock: WallClock):
        self.part, self.flash, self.flashctl, self.clock = part, flash, flashctl, clock
        self.rcc = rcc.for_part(part)
        self.scs = Scs(part.cpuid, clock.now, self.rcc.core_hz, self.request_reset)
        self.iwdg = Iwdg(part.lsi_hz, clock.now)
        self._transmit = transmit
        self.usart = Usart(lambda data: self._transmit(data), clock.now, self.rcc.core_hz)
        # A DMAMUX1 in front: the H7's stream DMA; else the L0's channel DMA, routed by its CSELR.
        self.dmamux = dma.Dmamux() if part.dmamux is not None else None
        self.dma = dma.Dma(dma.STREAM if self.dmamux is not None else dma.CHANNEL, self._dma_write,
                           self._dma_reaches, part.dma_irqs, self.dmamux)
        self.usart.dma_serves = lambda: self._rx_stream() is not None
        # Instructions the core executed since the DMA last took a console byte (inf: it waited).
        self._rx_credit = float("inf")
        self.cpu = Cpu(part.chip.core, lambda: self.scs.vtor)
        self.cpu.exception_due = lambda: self.scs.pending(self._line) is not None
        self.cpu.returned = self._returned
        self._reset_cause: str | None = None
        self._replay: tuple | None = None  # (addr, value written) and the result of an access to repeat
        # The records of interrupted code, kept while a handler runs: the instruction an exception
        # interrupted repeats its access after the handler returns.
        self._replays: list[tuple | None] = []
        self._due = float("inf")  # clock time of the next event, for the current slice
        self.accesses = 0  # register accesses so far (the alarm watches it)
        self.waits = 0  # times the core went waiting (WFI, idle loop): a test knows it is done
        self.running = False  # inside run()
        self._stopped: Callable[[], bool] = lambda: True  # the stop() of the current run
        # Debug state (the debugger's thread asks, run() obeys at its next slice boundary).
        self._debug = threading.Condition()
        self._halt_wanted = False
        self._steps = 0  # single steps asked for while halted
        self.halted = False  # parked in debug state: registers and memory may be touched
        self._parks = 0  # times the core left debug state
        self._breakpoints: dict[int, int] = {}  # address -> unicorn hook
        self._stepping_from: int | None = None  # the breakpoint the core resumes from
        self._wanted_breakpoints: set[int] | None = None
        self.breakpoint_hit = False  # DFSR.BKPT for the debugger
        # Whether a reset halts the core at the reset vector (C_HALT kept, or DEMCR.VC_CORERESET,
        # with C_DEBUGEN): asked at each reset, whoever makes it, as the debug logic is on silicon.
        self.catch_reset: Callable[[], bool] = lambda: False
        self._last_idle: tuple | None = None
        self._last_key: tuple | None = None  # the previous access of the running slice
        self._idle = False
        self._spin_hooks: dict[int, int] = {}  # address of a `b .` the core spun on -> unicorn hook
        self._devices: dict[int, list[tuple[int, int, object]]] = {}  # page -> (start, end, device)
        self._unmodelled: dict[int, int] = {}  # registers of a mapped page that belong to no device
        self._stale: list[tuple[int, int]] = []  # flash ranges changed since the last slice
        self._cut: PowerCut | None = None  # a power cut a flash store of the core ran into
        self._map()
        self.flash.listeners.append(self._flash_changed)

    def close(self) -> None:
        if self._flash_changed in self.flash.listeners:
            self.flash.listeners.remove(self._flash_changed)

    # -- the bus
    def _map(self) -> None:
        uc, g = self.cpu.uc, self.flash.geometry
        uc.mem_map(g.base, g.size, UC_PROT_READ | UC_PROT_EXEC)
        uc.mem_write(g.base, self.flash.read(0, g.size))
        uc.hook_add(UC_HOOK_MEM_WRITE_PROT, self._flash_store, begin=g.base, end=g.base + g.size - 1)
        for start, size in self.part.ram:
            uc.mem_map(start, size)
            uc.mem_write(start, bytes([RAM_NOISE]) * size)
        p = self.part
        for start, size, device in ((p.rcc, 0x400, self.rcc), (p.console_usart, 0x400, self.usart),
                                    (p.iwdg, 0x400, self.iwdg), (p.chip.flash, 0x400, self.flashctl),
                                    (p.gpio[0], p.gpio[1], _Plain()),
                                    (p.chip.idcode, 0x400, _Dbgmcu(p.dbgmcu_idcode)),
                                    (p.dma, 0x400, self.dma),
                                    *(((p.dmamux, 0x400, self.dmamux),) if p.dmamux is not None else ()),
                                    (SCS_BASE, PAGE, self.scs)):
            for page in range(start & ~(PAGE - 1), start + size, PAGE):
                if page not in self._devices:
                    self._devices[page] = []
                    uc.mmio_map(page, PAGE, self._read, page, self._write, page)
                self._devices[page].append((start, start + size, device))

    def _device(self, addr: int):
        for start, end, device in self._devices[addr & ~(PAGE - 1)]:
            if start <= addr < end:
                return device, addr - start
        return None, addr

    def _repeat(self, addr: int, written: int | None) -> tuple[tuple, int | None]:
        """The access's key, and its recorded result if it is the repeat of a stopped one.
        (The PC unicorn reports inside a repeated instruction is not its address: the key is the
        access itself.)"""
        self.accesses += 1
        key = (addr, written)
        replay, self._replay = self._replay, None
        if replay is not None and replay[0] == key:
            return key, replay[1]
        return key, None

    def _read(self, uc, offset: int, size: int, page: int) -> int:
        addr = page + offset
        key, repeated = self._repeat(addr, None)
        if repeated is not None:
            return repeated
        device, off = self._device(addr & ~3)
        if device is None:
            value = self._unmodelled.get(addr & ~3, 0)
        else:
            value = device.read(off)
        value = (value >> 8 * (addr & 3)) & ((1 << 8 * size) - 1)
        self._access(key, value, device is self.usart and self.usart.idle_read(off))
        return value

    def _write(self, uc, offset: int, size: int, value: int, page: int) -> None:
        addr = page + offset
        key, repeated = self._repeat(addr, value)
        if repeated is not None:
            return
        device, off = self._device(addr & ~3)
        if size < 4:
            # A narrow store lands on its byte lanes of the register.
            shift, mask = 8 * (addr & 3), ((1 << 8 * size) - 1) << 8 * (addr & 3)
            old = self._unmodelled.get(addr & ~3, 0) if device is None else device.read(off)
            value = (old & ~mask) | ((value << shift) & mask)
        if device is None:
            self._unmodelled[addr & ~3] = value
        elif device is self.flashctl:
            self.flashctl.write(off, value, by_core=True)
        else:
            device.write(off, value)
        self._access(key, 0, device is self.iwdg and self.iwdg.feed_only(off, value))

    # -- the debugger's view (rig.sim.stm32.core drives these from the SWD server's thread)
    # Each request returns once the core has done it (up to `timeout`, for a loaded host), as on
    # silicon, where it is done before the debugger's next transfer: a debugger that reads DHCSR
    # next sees the state it asked for, never the one before (a resume that still reads S_HALT, a
    # step still to come), and does not act on it (pyocd's resume skips a core it finds running).
    # A core that is not executing (its board in MCUboot's model, or off) halts when it starts.
    def debug_halt(self, timeout: float = DEBUG_TIMEOUT) -> None:
        with self._debug:
            self._halt_wanted = True
        self.clock.wake()
        with self._debug:
            self._debug.wait_for(lambda: self.halted or not self._halt_wanted or not self.running, timeout)

    def debug_step(self, timeout: float = DEBUG_TIMEOUT) -> None:
        with self._debug:
            self._steps += 1
            self._debug.notify_all()
            self._debug.wait_for(lambda: not self._steps or not self.running, timeout)

    def debug_resume(self, timeout: float = DEBUG_TIMEOUT) -> None:
        with self._debug:
            self._halt_wanted = False
            self._steps = 0
            parks = self._parks
            self._debug.notify_all()
            # Left the park since: it may be halted again already (a breakpoint right after).
            self._debug.wait_for(lambda: not self.halted or self._parks != parks, timeout)

    @property
    def live(self) -> bool:
        """Executing (or halted in) the board's current run: the core a debugger's requests reach.
        A run the board already stopped (a hold, a reset, power) is not, even before its thread
        has noticed and returned: the board's state says at once which core the debugger sees, so
        its view (halted or not, RAM) never changes under it with the machine thread's timing."""
        return self.running and not self._stopped()

    def debug_wake(self) -> None:
        """Power or reset changed: a parked core looks at its stop() again."""
        with self._debug:
            self._debug.notify_all()

    def _park(self, stop: Callable[[], bool]) -> bool:
        """Halted in debug state until resumed, executing single steps; False if the run must end.
        The clock stands still meanwhile (SysTick stops in debug state). A step executes outside
        the debug lock: its instruction may write the console, which needs the board's lock, and
        a power change holding that lock wakes this core through the debug lock (a deadlock)."""
        self.clock.pause()
        try:
            while True:
                with self._debug:
                    self.halted = True
                    self._debug.notify_all()
                    while self._halt_wanted and not self._steps and not stop():
                        self._debug.wait(0.05)
                    if not self._halt_wanted or stop():
                        self.halted = False
                        self._steps = 0
                        self._parks += 1
                        self._debug.notify_all()
                        self._stepping_from = self.cpu.pc  # resuming: the instruction here runs first
                        break
                self._step()  # still in debug state for the debugger: it waits in debug_step
                with self._debug:
                    self._steps = max(0, self._steps - 1)  # done: debug_step returns
                    self._debug.notify_all()
        finally:
            self.clock.resume()
        return not stop()

    def _step(self) -> None:
        # One instruction (no exception is taken in between: pyocd steps with C_MASKINTS set).
        self._drop_stale_code()
        self._apply_breakpoints()
        self.cpu.sleeping = False
        self._stepping_from = self.cpu.pc
        self.cpu.run(1)

    def read_core_register(self, sel: int) -> int:
        """A core register by its DCRSR REGSEL number (ARMv7-M C1.6.3), while halted."""
        if sel == REGSEL_PC:
            return self.cpu.pc
        if sel == REGSEL_SPECIAL:
            control, faultmask, basepri, primask = self.cpu.read_regs(
                [a.UC_ARM_REG_CONTROL, a.UC_ARM_REG_FAULTMASK, a.UC_ARM_REG_BASEPRI, a.UC_ARM_REG_PRIMASK])
            return (control & 0xFF) << 24 | (faultmask & 1) << 16 | (basepri & 0xFF) << 8 | (primask & 1)
        reg = _regsel(sel)
        return self.cpu.reg(reg) if reg is not None else 0

    def write_core_register(self, sel: int, value: int) -> None:
        if sel == REGSEL_PC:
            self.cpu.pc = value & ~1
            return
        if sel == REGSEL_SPECIAL:
            self.cpu.write_regs([(a.UC_ARM_REG_CONTROL, value >> 24 & 0xFF), (a.UC_ARM_REG_FAULTMASK, value >> 16 & 1),
                                 (a.UC_ARM_REG_BASEPRI, value >> 8 & 0xFF), (a.UC_ARM_REG_PRIMASK, value & 1)])
            return
        reg = _regsel(sel)
        if reg is not None:
            self.cpu.write_regs([(reg, value)])

    def set_breakpoints(self, addresses: set[int]) -> None:
        """Hardware breakpoints (the FPB's comparators): the core halts before executing there.
        Applied by the machine's own thread before it executes again."""
        with self._debug:
            self._wanted_breakpoints = set(addresses)
            self._debug.notify_all()

    def _apply_breakpoints(self) -> None:
        wanted = self._wanted_breakpoints
        if wanted is None:
            return
        self._wanted_breakpoints = None
        uc = self.cpu.uc
        for addr, handle in self._breakpoints.items():
            uc.hook_del(handle)
            uc.ctl_remove_cache(addr, addr + 2)
        # Code translated before a hook existed would not call it: translate those addresses again.
        self._breakpoints = {addr: uc.hook_add(UC_HOOK_CODE, self._breakpoint, begin=addr, end=addr) for addr in wanted}
        for addr in wanted:
            uc.ctl_remove_cache(addr, addr + 2)

    def _breakpoint(self, uc, address: int, size: int, user) -> None:
        if self._stepping_from == address:
            self._stepping_from = None
            return  # resuming from this breakpoint: execute it
        self.breakpoint_hit = True
        with self._debug:
            self._halt_wanted = True
        self.cpu.request_stop()

    def _returned(self) -> None:
        if self._replays:
            self._replay = self._replays.pop()

    def bus_read(self, addr: int) -> int:
        """A 32-bit read as another bus master (a debugger) makes it."""
        if addr & ~(PAGE - 1) in self._devices:
            device, off = self._device(addr)
            return self._unmodelled.get(addr, 0) if device is None else device.read(off)
        return int.from_bytes(self.cpu.uc.mem_read(addr, 4), "little")

    def _flash_store(self, uc, access, address: int, size: int, value: int, user) -> bool:
        key, repeated = self._repeat(address, value)
        if repeated is None:
            try:
                self.flashctl.store(address - self.flash.geometry.base, size, value)
            except PowerCut as cut:
                # Raised out of this hook, unicorn would take it for a refused store (a bus fault:
                # UC_ERR_WRITE_PROT, and the exception lost): the core stops here, run() raises it.
                self._cut = cut
                uc.emu_stop()
                return True
            self._access(key, 0, False)
        return True  # the store itself does not reach the array: the controller decided

    def _flash_changed(self, offset: int, length: int) -> None:
        base = self.flash.geometry.base + offset
        self.cpu.uc.mem_write(base, self.flash.read(offset, length))
        # Translated code of that range is dropped between slices: dropping it from inside a
        # callback would make unicorn run the current instruction (the core's store) again.
        self._stale.append((base, base + length))

    def _drop_stale_code(self) -> None:
        for begin, end in self._stale:
            self.cpu.uc.ctl_remove_cache(begin, end)
        self._stale.clear()

    # -- waiting
    def _access(self, key: tuple, result: int, idle: bool) -> None:
        """After every access: stop the slice if an event is due or the core waits (the same idle
        access twice with the same registers)."""
        if idle and key == self._last_key:
            # The same idle access again in this slice: a wait if the registers did not change.
            regs = tuple(self.cpu.read_regs(IDLE_REGS))
            self._idle = regs == self._last_idle
            self._last_idle = regs
        elif not idle:
            self._last_idle = None
        self._last_key = key
        if self._idle or self._reset_cause is not None or self.clock.now() >= self._due:
            self._replay = (key, result)
            self.cpu.request_stop()

    # -- reset and run
    def transmit_to(self, transmit: Callable[[bytes], None]) -> None:
        """Where the console USART's bytes go from now on (each boot's console)."""
        self._transmit = transmit

    def request_reset(self, cause: str) -> None:
        """The part resets itself (AIRCR, an option byte load); the access that asked stops the slice."""
        self._reset_cause = cause

    def interrupt(self) -> None:
        """Make `run()` look at its `stop()` soon (any thread): a waiting core at once, a running
        one when its slice ends."""
        self.clock.wake()
        self.debug_wake()

    def reset(self, cause: str, vector_table: int) -> None:
        """A reset of the part with this cause; the core starts from `vector_table` (what MCUboot
        jumps to, or the flash start). RAM keeps its content."""
        self.rcc.system_reset(cause)
        self.scs.reset()
        self.iwdg.reset()
        self.usart.reset()
        self.dma.reset()
        if self.dmamux is not None:
            self.dmamux.reset()
        self._rx_credit = float("inf")
        self.flashctl.reset()
        self._unmodelled.clear()
        self._reset_cause = None
        self._replay = None
        self._replays.clear()
        self._idle = False
        self._last_idle = None
        self.cpu.reset(vector_table)
        self.reset_at = self.clock.now()
        with self._debug:
            # A debugger's halt request survives the reset (C_HALT lives in the debug domain).
            self._halt_wanted = self._halt_wanted or self.catch_reset()
            self._steps = 0

    def receive(self, data: bytes) -> None:
        """Console bytes at the USART's RX pin (any thread)."""
        self.usart.receive(data)
        self.clock.wake()

    def run(self, until: float | None = None, stop: Callable[[], bool] = lambda: False) -> str | None:
        """Execute; returns the cause of a reset the part makes, or None at `until` or `stop()`."""
        self._stopped = stop
        self.running = True
        try:
            return self._run(until, stop)
        finally:
            self.running = False

    def _run(self, until: float | None, stop: Callable[[], bool]) -> str | None:
        cpu, scs = self.cpu, self.scs
        accounted = None  # host time up to which the part's time is settled (None: a wait or a halt did)
        while True:
            if self._cut is not None:
                cut, self._cut = self._cut, None
                raise cut
            if self._reset_cause is not None:
                return self._reset_cause
            if self._halt_wanted:
                if not self._park(stop):
                    return None
                accounted = None
            if self.iwdg.expired():
                return "watchdog"
            if stop() or (until is not None and self.clock.now() >= until):
                return None
            usart = self.usart
            by_dma = usart.by_dma()
            if by_dma:
                self._feed_dma()
            pending = scs.pending(self._line)
            takes = cpu.can_take_exception()
            if pending is not None:
                cpu.sleeping = self._idle = False  # a pending interrupt ends WFI, masked or not
                if not takes:
                    cpu.step_out_of_primask()  # `cpsid i; wfi; cpsie i`: on to the cpsie
                    takes = cpu.can_take_exception()
                if takes:
                    self._replays.append(self._replay)
                    self._replay = None
                    cpu.take(pending)
                    scs.taken(pending)
            if cpu.sleeping or self._idle:
                usart.release()  # a waiting core has spent its character time
                self._rx_credit = float("inf")
            # An interrupt wakes a waiting core even while masked; a running core is stopped for one
            # only when it could take it (else it waits for the core to return to thread mode).
            # With the DMA, a running core gets the bytes at its slice's end (slices are short while
            # bytes come in): stopping it at a register access would not give them sooner.
            rx = self._dma_event() if by_dma else usart.rx_ready_at
            irqs = (scs.systick_deadline(), rx)
            others = (self.iwdg.expires_at, until)
            if cpu.lockup or cpu.sleeping or self._idle:
                self.waits += 1
                wake = _first(others if cpu.lockup else irqs + others)
                self.clock.wait_until(wake)
                if wake is not None:
                    self._starved(self.clock.now() - wake)
                self._idle = False
                self._last_idle = None
                accounted = None
                continue
            deadline = _first(irqs[: 1 if by_dma else 2] + others if takes else others)
            self._due = float("inf") if deadline is None else deadline
            self._last_key = None
            self._drop_stale_code()
            self._apply_breakpoints()
            started = time.monotonic() if accounted is None else accounted
            busy = timing.slept_in_this_thread()
            if by_dma and usart.pending_rx():
                # The DMA takes the bytes complete by now once the core had their character times.
                count = min(SLICE, usart.cycles_per_char() * max(1, usart.complete(self.clock.now())))
                if cpu.run(count):
                    self._rx_credit += count
            elif usart.held:
                # The console's next byte comes in after the part's character time of cycles.
                count = min(SLICE, usart.cycles_per_char())
                if cpu.run(count) or cpu.sleeping:
                    usart.release()
            else:
                count = SLICE
                spun_from = cpu.pc
                if cpu.run(count) and self._spins(spun_from):
                    self._idle = True
                    self._watch_spin(cpu.pc)
            # At most `count` instructions ran: the part needs count cycles for them at the most,
            # plus the time its flash and UART took (the timing model sleeps it in this thread).
            # Whatever host time the slice took beyond that, the bookkeeping since the previous
            # slice included, is skipped, however little: a core emulated slower than the part (a
            # loaded host) would otherwise see its LSI and SysTick run ahead of its instructions
            # slice after slice - the two-sector H7 upload's image hash took over 2 s of the
            # part's time at load 15 and the IWDG bit mid-upload.
            accounted = time.monotonic()
            needed = count / self.rcc.core_hz() + timing.slept_in_this_thread() - busy
            if accounted - started > needed:
                self.clock.skip(accounted - started - needed)

    def _spins(self, start: int) -> bool:
        """The core ran a whole slice and is back where it started, on a branch to itself (`b .`, a
        hung image's `for (;;) {}`) with interrupts open: it does nothing until an interrupt or a
        reset, so it waits for its next event as in WFI. On silicon that loop spins at the core clock
        while the IWDG counts the wall's time; an emulated core the host starves would otherwise
        take its whole watchdog period in executed slices, many times the wall's 2 s."""
        cpu = self.cpu
        return (cpu.pc == start and bytes(cpu.uc.mem_read(cpu.pc, 2)) == BRANCH_TO_SELF
                and cpu.can_take_exception())

    def _watch_spin(self, addr: int) -> None:
        """From now on the core waits as soon as it is back on this `b .` (an interrupt handler
        returning into it), not after another whole slice of spinning."""
        if addr not in self._spin_hooks:
            self._spin_hooks[addr] = self.cpu.uc.hook_add(UC_HOOK_CODE, self._spin, begin=addr, end=addr)
            self.cpu.uc.ctl_remove_cache(addr, addr + 2)  # code translated before the hook would not call it

    def _spin(self, uc, address: int, size: int, user) -> None:
        if bytes(uc.mem_read(address, 2)) == BRANCH_TO_SELF and self.cpu.can_take_exception():
            self._idle = True
            self.cpu.request_stop()

    def _starved(self, late: float) -> None:
        if late > STARVED:
            self.clock.skip(late)

    def _line(self, irq: int) -> bool:
        if irq == self.part.console_irq:
            return self.usart.irq()
        return irq in self.part.dma_irqs and self.dma.irq(irq)

    # -- the console's receiver by DMA
    def _rx_stream(self) -> int | None:
        return self.dma.serving(self.part.console_rx_requests)

    def _dma_write(self, addr: int, data: bytes) -> None:
        self.cpu.uc.mem_write(addr, data)

    def _dma_reaches(self, addr: int, size: int) -> bool:
        return any(start <= addr and addr + size <= start + length for start, length in self.part.dma_ram)

    def _feed_dma(self) -> None:
        """Hand the DMA the console bytes the line completed, as many as the core had the
        character times for. A core that waited takes them up to the next half or end of the
        DMA's count (the interrupt that wakes it on silicon, where the rest would come in while
        it runs)."""
        usart = self.usart
        due = usart.complete(self.clock.now())
        stream = self._rx_stream()
        if not due or stream is None:
            return
        per_char = usart.cycles_per_char()
        if self._rx_credit == float("inf"):
            allowed = min(due, self.dma.landmark(stream))
        else:
            allowed = min(due, int(self._rx_credit // per_char))
        if not allowed:
            return
        taken = self.dma.transfer(stream, usart.peek(allowed))
        usart.take(taken)
        self._rx_credit = 0 if self._rx_credit == float("inf") else self._rx_credit - taken * per_char

    def _dma_event(self) -> float | None:
        """When the console's bytes next make an interrupt: the DMA reaching half or end of its
        count, the last byte on the line (then the line goes idle), or the idle line itself."""
        usart = self.usart
        if not usart.pending_rx():
            return usart.idle_at
        stream = self._rx_stream()
        landmark = self.dma.landmark(stream) if stream is not None else usart.pending_rx()
        return _first((usart.complete_at(landmark), usart.complete_at(usart.pending_rx())))


REGSEL_PC, REGSEL_SPECIAL = 15, 20
_REGSEL = {**{i: getattr(a, f"UC_ARM_REG_R{i}") for i in range(13)}, 13: a.UC_ARM_REG_SP, 14: a.UC_ARM_REG_LR,
           16: a.UC_ARM_REG_XPSR, 17: a.UC_ARM_REG_MSP, 18: a.UC_ARM_REG_PSP, 33: a.UC_ARM_REG_FPSCR,
           **{64 + i: getattr(a, f"UC_ARM_REG_S{i}") for i in range(32)}}


def _regsel(sel: int) -> int | None:
    return _REGSEL.get(sel)


def _first(times: tuple[float | None, ...]) -> float | None:
    return min((t for t in times if t is not None), default=None)
