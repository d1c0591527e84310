"""A bare STM32 on the bench, for the firmware tests: a built binary in its flash, executed by the
virtual lab's emulated core (rig.sim.stm32.machine), observed only as a bench observes a board -
console bytes (or a pty wired to the console), flash read-back, registers read over the bus as a
debugger would, and the reset the part makes.

The core starts at slot0's vector table, behind the MCUboot header, as MCUboot jumps there; the
board has no bootloader of its own, so a test plays MCUboot's part between resets (`start` or
`boot` again). Two ways to run it:
- `start(cause)`: the part runs in a thread on the wall clock until it resets or `halt()`; the
  test talks to it meanwhile (`send`, `pty`, `wait_for`, `settle`), as smpclient talks to a board;
- `boot(cause)`: runs in the test's thread on the warp clock (rig.sim.stm32.clock) until the part
  resets or `seconds` of its time pass, so a 2 s watchdog takes a fraction of a second.
The ELF of the binary is only read for the stack's bounds (`stack_used`), as a bench engineer
would look them up to paint the stack.
"""

import os
import select
import subprocess
import tempfile
import threading
import time
import tty
from pathlib import Path

from rig.image.layouts import MCUBOOT_HEADER_SIZE
from rig.image.trailer import Trailer, apply
from rig.sim.flash import Flash
from rig.sim.stm32 import flashctl
from rig.sim.stm32.clock import WallClock, WarpClock
from rig.sim.stm32.machine import RAM_NOISE, Machine
from rig.sim.stm32.parts import PARTS
from rig.variants import facts

RUN_SECONDS = 3.0


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


def symbol(elf: str, name: str) -> int:
    out = subprocess.run(["arm-none-eabi-nm", elf], capture_output=True, text=True, check=True).stdout
    for line in out.splitlines():
        addr, _, sym = line.split()
        if sym == name:
            return int(addr, 16)
    raise LookupError(name)


class FirmwareBoard:
    def __init__(self, variant: str, flash: bytes, elf: str | None = None, state_dir: Path | None = None):
        """`flash`: the whole flash content from offset 0; `elf`: the binary's ELF (for stack_used)."""
        self.elf = elf
        self._tmp = None if state_dir is not None else tempfile.TemporaryDirectory(prefix="rig-fw-")
        state_dir = Path(state_dir if state_dir is not None else self._tmp.name)  # type: ignore[union-attr]
        state_dir.mkdir(parents=True, exist_ok=True)
        (state_dir / "flash.bin").write_bytes(bytes(flash))
        self.variant = variant
        self.layout = facts(variant).layout
        self.part = PARTS[variant]
        self.flash = Flash(state_dir / "flash.bin", self.layout.geometry)
        options = flashctl.OptionBytes(state_dir / "option-bytes.json")
        self._flashctl = flashctl.for_part(self.part, self.flash, options, lambda: None)
        self.vector_table = self.layout.geometry.base + self.layout.part("slot0").offset + MCUBOOT_HEADER_SIZE
        self.machine: Machine | None = None
        self.stop_reason: str | None = None  # why the part stopped: "software", "watchdog", "halted"
        self._out = bytearray()
        self._cond = threading.Condition()
        self._listeners: list = []
        self._thread: threading.Thread | None = None
        self._halting = False

    # -- running
    def _reset(self, cause: str, clock: type[WallClock]) -> Machine:
        if cause == "power-on" or self.machine is None or type(self.machine.clock) is not clock:
            self._power_off()  # a power cycle: the RAM loses its content
            self.machine = Machine(self.part, self.flash, self._flashctl, self._transmit, clock())
        self.machine.reset(cause, self.vector_table)
        self.stop_reason = None
        return self.machine

    def boot(self, cause: str, seconds: float = RUN_SECONDS) -> str:
        """Reset the part with `cause` and run it here; returns the cause of the reset it then
        makes ("software", "watchdog"), or "running" if it still runs after `seconds`."""
        self.halt()
        machine = self._reset(cause, WarpClock)
        return machine.run(until=machine.clock.now() + seconds) or "running"

    def start(self, cause: str = "power-on") -> None:
        """Reset the part with `cause`; it runs in a thread until it resets or `halt()`."""
        self.halt()
        machine = self._reset(cause, WallClock)
        self._halting = False

        def run() -> None:
            reason = machine.run(stop=lambda: self._halting) or "halted"
            with self._cond:
                self.stop_reason = reason
                self._cond.notify_all()

        self._thread = threading.Thread(target=run, name=f"fw-{self.variant}", daemon=True)
        self._thread.start()

    def halt(self) -> None:
        """Stop the core (a probe holding it); flash and RAM are kept."""
        if self._thread is not None and self.machine is not None:
            self._halting = True
            self.machine.clock.wake()
            self.machine.cpu.request_stop()
            self._thread.join()
            self._thread = None

    def run_until(self, ms: int, timeout: float = 30.0) -> str | None:
        """Let the part run until `ms` of its time since its reset, or until it stops first; why it
        stopped (None: still running)."""
        assert self.machine is not None
        machine, deadline = self.machine, time.monotonic() + timeout
        with self._cond:
            while self.stop_reason is None and machine.clock.now() - machine.reset_at < ms / 1000:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{ms} ms of the part's time not reached in {timeout} s")
                self._cond.wait(0.02)
            return self.stop_reason

    def settle(self, timeout: float = 30.0) -> None:
        """Wait until every byte sent has been received and the part answered it: it went back to
        waiting (WFI) a few times since, and at least 50 ms passed. (Its time follows the wall
        clock, so a count of milliseconds alone would depend on the host's load.)"""
        assert self.machine is not None
        machine, deadline = self.machine, time.monotonic() + timeout
        with self._cond:
            while machine.usart.pending_rx() and self.stop_reason is None:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{machine.usart.pending_rx()} bytes still on the RX line after {timeout} s")
                self._cond.wait(0.02)
        waits, earliest = machine.waits, time.monotonic() + 0.05
        while self.stop_reason is None and (machine.waits < waits + 3 or time.monotonic() < earliest):
            if time.monotonic() > deadline:
                raise TimeoutError(f"the part did not go back to waiting within {timeout} s")
            time.sleep(0.01)

    def wait_stopped(self, timeout: float = 10.0) -> str:
        if self._thread is not None:
            self._thread.join(timeout)
        assert self.stop_reason is not None, "board still running"
        return self.stop_reason

    def _power_off(self) -> None:
        self.halt()
        if self.machine is not None:
            self.machine.close()
            self.machine = None

    def close(self) -> None:
        self._power_off()
        self.flash.close()
        if self._tmp is not None:
            self._tmp.cleanup()

    # -- the console
    def _transmit(self, data: bytes) -> None:
        with self._cond:
            self._out += data
            self._cond.notify_all()
        for listener in list(self._listeners):
            listener(data)

    def send(self, data: bytes) -> None:
        """Bytes on the console's RX line."""
        if self.machine is not None:
            self.machine.receive(data)

    def output(self) -> bytes:
        with self._cond:
            return bytes(self._out)

    def clear_console(self) -> None:
        with self._cond:
            self._out.clear()

    def lines(self) -> list[str]:
        return [ln for ln in self.output().decode(errors="replace").split("\r\n") if ln]

    def wait_for(self, text: bytes, timeout: float = 10.0, start: int = 0) -> int:
        """Wait until the console printed text (after byte `start`); its end offset."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while (at := self._out.find(text, start)) < 0:
                if self.stop_reason or time.monotonic() > deadline:
                    raise TimeoutError(f"{text!r} not seen; board {self.stop_reason or 'running'}; "
                                       f"console: {bytes(self._out[-300:])!r}")
                self._cond.wait(0.05)
            return at + len(text)

    def pty(self) -> str:
        """A pseudo-terminal wired to the console, for tools that open a device (smpclient)."""
        master, slave = os.openpty()
        tty.setraw(slave)
        os.set_blocking(master, False)
        self._listeners.append(lambda data: _write_all(master, data))

        def pump() -> None:
            while True:
                ready, _, _ = select.select([master], [], [], 0.2)
                if ready:
                    try:
                        data = os.read(master, 4096)
                    except OSError:
                        continue
                    self.send(data)

        threading.Thread(target=pump, daemon=True).start()
        self._pty_slave = slave  # kept open: without a slave open, master reads fail with EIO
        return os.ttyname(slave)

    # -- read-back
    def read_flash(self, offset: int = 0, size: int | None = None) -> bytes:
        """Flash read-back, offsets from the start of flash (as a probe reads it)."""
        return self.flash.read(offset, self.flash.geometry.size - offset if size is None else size)

    def slot(self, name: str) -> bytes:
        p = self.layout.part(name)
        return self.read_flash(p.offset, p.size)

    def stack_used(self) -> int:
        """Bytes of the main stack ever written since power-on (RAM powers up as 0xA5 here; the
        startup code fills only .data and .bss): what a bench measures by painting the stack."""
        assert self.machine is not None and self.elf is not None
        ebss, estack = symbol(self.elf, "_ebss"), symbol(self.elf, "_estack")
        ram = bytes(self.machine.cpu.uc.mem_read(ebss, estack - ebss))
        low = 0
        while low < len(ram) and ram[low] == RAM_NOISE:
            low += 1
        return len(ram) - low

    def read_ram(self, address: int, size: int) -> bytes:
        """RAM as a debugger reads it over the bus (bus address)."""
        assert self.machine is not None
        return bytes(self.machine.cpu.uc.mem_read(address, size))

    def read_register(self, addr: int) -> int:
        """A 32-bit register read over the bus, as a debugger reads one."""
        assert self.machine is not None
        return self.machine.bus_read(addr)


def _write_all(fd: int, data: bytes) -> None:
    try:
        os.write(fd, data)
    except BlockingIOError:
        pass  # nobody reads: a UART's TX drops bytes too
