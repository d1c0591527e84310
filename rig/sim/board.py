"""A virtual board: the context its firmware models run in, and the runner that powers and resets it.

The chip models (ROM loader, bootloaders, the ESP32's app model, the STM32's emulated core) see the hardware only
through `BoardContext`: the console UART, the flash, the reset controller and a clock. They run in
the board's own thread. Power loss and resets are cooperative, as they must be in Python: the
runner bumps a run number, and the next `ctx.read`, `ctx.sleep`, `ctx.write` or flash operation
of the stale run raises `PowerCut` (flash through `Flash.guard`), which unwinds the models. RAM is
simply the Python state of that run, so it is lost; `ctx.retained` is the RAM that survives a reset
but not a power cut (the `.noinit` section the boot counter lives in); the flash is a file and
survives everything.

`Board` is the runner side, driven by the rack daemon's servers (power switch, console line
changes, debug probe, control endpoint); nothing in the firmware models calls it directly.

Debug probes: for an STM32 board with a RigDebugProbe the daemon starts
`rig.sim.stm32.swd.SwdServer(board: Board, host: str)` (attributes `.port`, method `.close()`) and
publishes its port in the registry. A probe reaches the chip through `board.flash`,
`board.hold("debug")` / `board.release("debug", cause=...)` (core held in reset or halted: the
firmware does not run) and `board.reset(cause)`. A flash operation of the probe that hits an armed
cut raises PowerCut in the probe's thread; the probe server then calls `board.cut_power()`.

Timing (rig.sim.timing): `board.timing` is the lab's model for this board's part. Flash operations
take their time in whichever thread performs them; the console UART takes its byte time here, on
the board's side of the wire: `transmit` in the firmware thread, `console_input` in the server
thread that feeds it, at the rate a console client set last (`set_baud`).
"""

import logging
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

from rig.image.layouts import Layout
from rig.sim.flash import Flash, PowerCut
from rig.sim.timing import DEFAULT_BAUD, Timing
from rig.variants import Flasher, facts

log = logging.getLogger(__name__)

RESET_CAUSES = ("power-on", "pin", "watchdog", "software", "brownout")  # docs/console.md names
# The ESP32 DevKit's EN pin has an RC filter: the chip leaves reset some time after EN rises and
# samples GPIO0 then. On the real board that is ~10 ms; here it is 0.1 s because each DTR/RTS change
# over RFC2217 is one acknowledged round trip that pyserial polls for every 50 ms, so esptool's
# "EN high, then GPIO0 low" arrives ~50 ms apart and "GPIO0 high" ~150 ms later. (A real remote rack
# has the same problem and runs esp_rfc2217_server, which replays the sequence locally.)
EN_RELEASE_DELAY = 0.1
DEFAULT_CUT_OFF_TIME = 0.2  # seconds a flash-triggered power cut keeps the board unpowered
# Real firmware sets its IWDG / task watchdog to seconds; the lab keeps it short so a hang test is quick.
DEFAULT_WATCHDOG_TIMEOUT = 1.5


@dataclass(frozen=True)
class BootedImage:
    slot: int  # slot index the app runs from (MCUboot swap: 0; ESP32: ota index)
    offset: int  # flash offset of the image's first byte (MCUboot header / ESP image header)
    header_size: int  # MCUboot hdr_size; 0 for ESP32
    image: bytes  # the image bytes (header + payload, no trailer)


Firmware = Callable[["BoardContext"], None]


class BoardContext:
    """What firmware running on one boot of a board can touch. A new context per boot."""

    def __init__(self, board: "Board", run: int, reset_cause: str, boot_mode: str):
        self._board = board
        self._run = run
        self.board_id: str = board.id
        self.variant: str = board.variant
        self.layout: Layout = board.layout
        self.flash: Flash = board.flash  # offsets from flash start (layout partitions), not bus addresses
        self.state_dir: Path = board.state_dir
        self.reset_cause: str = reset_cause
        self.boot_mode: str = boot_mode  # ESP32: "download" if GPIO0 was low at reset, else "spi"
        self.retained: dict = board.retained  # survives resets, cleared at power-on
        self.devices: dict = board.devices  # hardware state that lives as long as the board object
        self.watchdog_timeout: float = board.watchdog_timeout  # seconds without a feed before a reset

    # -- console UART
    def write(self, data: bytes) -> None:
        """Board -> host on the console (UART TX). Raises PowerCut if this run has been stopped."""
        self._check()
        self._board.transmit(bytes(data))

    def log(self, line: str) -> None:
        self.write(line.encode() + b"\r\n")

    def read(self, timeout: float) -> bytes:
        """Host -> board console bytes received so far (UART RX); b"" after `timeout` seconds."""
        return self._board.receive(self._run, timeout)

    def attach(self, on_input: Callable[[bytes], None], on_stop: Callable[[], None]) -> None:
        """For firmware that runs on its own (an emulated core) instead of calling read/sleep:
        console input goes to on_input(data) as it arrives, and on_stop() is called as soon as
        this run must stop (power, reset, a debugger's hold). Both must return quickly."""
        self._board.attach(self._run, on_input, on_stop)

    # -- power, reset, time
    def powered(self) -> bool:
        """False once this run must stop (power cut or reset): long loops must check it."""
        return self._board.current(self._run)

    def sleep(self, seconds: float) -> None:
        """Let time pass; raises PowerCut as soon as power goes away or a reset is requested."""
        self._board.wait(self._run, seconds)

    def reset(self, cause: str) -> NoReturn:
        """Reset the chip ("software", "watchdog", "pin"). Like NVIC_SystemReset it never returns."""
        self._board.reset(cause)
        raise PowerCut(f"{cause} reset")

    def _check(self) -> None:
        if not self._board.current(self._run):
            raise PowerCut("board stopped")


class Board:
    """One virtual board: power, reset lines, console UART, flash, and the thread its firmware runs in.

    `firmware(ctx)` is the whole boot flow (rig.sim.boot.run). It returns when the chip halts (no
    bootable image); the board then idles until the next reset or power cycle.
    """

    def __init__(self, board_id: str, variant: str, layout: Layout, state_dir: Path, firmware: Firmware,
                 watchdog_timeout: float = DEFAULT_WATCHDOG_TIMEOUT, timing: str = "none"):
        self.id = board_id
        self.variant = variant
        self.layout = layout
        self.state_dir = Path(state_dir)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.flash = Flash(self.state_dir / "flash.bin", layout.geometry)
        self.timing = Timing(timing, variant)
        self.flash.timing = self.timing
        self.baud = DEFAULT_BAUD  # the console UART's rate, as the last console client set it
        self.retained: dict = {}
        self.devices: dict = {}
        self.watchdog_timeout = watchdog_timeout
        self.power_cycles = 0  # power-on events since the daemon started
        self.console_broken = False  # the lab's fault control cut the console wires (both ways)
        self._firmware = firmware
        self._cond = threading.Condition()
        self._outlet = False
        self._cut = False  # a flash-triggered power cut is in progress
        self._cut_off_time = DEFAULT_CUT_OFF_TIME
        self._run = 0  # bumped whenever the running firmware must stop
        self._start = False  # a boot is due once power is on and no one holds the chip in reset
        self._cause = "power-on"
        self._holds: set[str] = set()  # who holds the chip in reset: "en" (ESP32 EN low), "debug"
        self._release_at = 0.0
        self._gpio0_low = False
        self._rx = bytearray()
        self._attached: tuple[int, Callable[[bytes], None], Callable[[], None]] | None = None
        self._listeners: list[Callable[[bytes], None]] = []
        self._closing = False
        self._firmware_thread = threading.local()  # .run: the run the board thread is executing
        self.flash.guard = self._flash_guard
        self._thread = threading.Thread(target=self._supervise, name=f"board-{board_id}", daemon=True)
        self._thread.start()

    # -- power
    @property
    def powered(self) -> bool:
        return self._outlet and not self._cut

    def set_power(self, on: bool) -> None:
        """The outlet: off stops the firmware and loses RAM; on is a cold boot (reset cause power-on)."""
        with self._cond:
            was = self.powered
            self._outlet = on
            self._power_changed(was)

    def cut_power(self, off_time: float | None = None) -> None:
        """A power glitch independent of the outlet (the lab's cut relay): off now, back after off_time."""
        with self._cond:
            was = self.powered
            self._cut = True
            self._power_changed(was)
        timer = threading.Timer(self._cut_off_time if off_time is None else off_time, self._end_cut)
        timer.daemon = True
        timer.start()

    def arm_cut(self, after_ops: int, tear: bool = False, off_time: float = DEFAULT_CUT_OFF_TIME,
                region: tuple[int, int] | None = None) -> None:
        """Cut power when `after_ops` more flash operations (in `region`, if given) completed, at
        the next one (torn if `tear`)."""
        with self._cond:
            self._cut_off_time = off_time
            self.flash.arm_cut(after_ops, tear, region)

    def _end_cut(self) -> None:
        with self._cond:
            was = self.powered
            self._cut = False
            self._power_changed(was)

    def _power_changed(self, was: bool) -> None:
        if was and not self.powered:
            self._stop()
            self.retained.clear()
        elif self.powered and not was:
            self.power_cycles += 1
            # A power-on resets the debug logic too: a probe's halt does not survive it.
            self._holds.discard("debug")
            self._boot_due("power-on")

    # -- reset
    def reset(self, cause: str) -> None:
        """Stop the firmware and boot again with this reset cause (if powered and not held)."""
        if cause not in RESET_CAUSES:
            raise ValueError(f"unknown reset cause {cause!r}")
        with self._cond:
            self._stop()
            if self.powered:
                self._boot_due(cause)

    def hold(self, who: str) -> None:
        """Hold the chip in reset (ESP32 EN low, a probe's reset-and-halt) until release(who)."""
        with self._cond:
            self._holds.add(who)
            self._stop()

    def release(self, who: str, delay: float = 0.0, cause: str = "pin") -> None:
        """Let go of the reset line; the chip starts `delay` seconds later unless held again.

        The ESP32's EN pin is its chip enable, not a reset pin: releasing it is a power-on reset
        that also clears RTC RAM, so its caller passes cause="power-on".
        """
        with self._cond:
            if who not in self._holds:
                return
            self._holds.discard(who)
            self._release_at = time.monotonic() + delay
            if cause == "power-on":
                self.retained.clear()
            if self.powered:
                self._boot_due(cause)

    def set_gpio0(self, low: bool) -> None:
        """ESP32 strapping pin, sampled when the chip leaves reset: low = serial download mode."""
        with self._cond:
            self._gpio0_low = low

    def _stop(self) -> None:
        self._run += 1
        self._start = False
        self._rx.clear()  # the UART's FIFO does not survive a reset
        self._cond.notify_all()
        if self._attached is not None:
            self._attached[2]()
            self._attached = None

    def attach(self, run: int, on_input: Callable[[bytes], None], on_stop: Callable[[], None]) -> None:
        with self._cond:
            if run == self._run:
                self._attached = (run, on_input, on_stop)
                if self._rx:
                    on_input(bytes(self._rx))
                    self._rx.clear()
            else:
                on_stop()

    def _boot_due(self, cause: str) -> None:
        self._start = True
        self._cause = cause
        self._cond.notify_all()

    # -- console UART
    def add_listener(self, send: Callable[[bytes], None]) -> None:
        """`send(data)` receives everything the board transmits; it must not block for long."""
        with self._cond:
            self._listeners.append(send)

    def remove_listener(self, send: Callable[[bytes], None]) -> None:
        with self._cond:
            if send in self._listeners:
                self._listeners.remove(send)

    def set_baud(self, baud: int) -> None:
        """A console client set the line's rate (RFC2217 SET-BAUDRATE; esptool's change_baud)."""
        if baud > 0:
            self.baud = baud

    def console_input(self, data: bytes) -> None:
        """Bytes from a host on the console, once they have crossed the wire; dropped while the chip
        is off or held in reset."""
        self.timing.uart(len(data), self.baud)
        with self._cond:
            if self.powered and not self._holds and not self.console_broken:
                if self._attached is not None:
                    self._attached[1](data)
                else:
                    self._rx += data
                    self._cond.notify_all()

    def transmit(self, data: bytes) -> None:
        self.timing.uart(len(data), self.baud)  # the UART shifts the bytes out before a host sees them
        with self._cond:
            listeners = [] if self.console_broken else list(self._listeners)
        for send in listeners:
            try:
                send(data)
            except OSError:
                log.info("board %s: a console client went away", self.id)
                self.remove_listener(send)

    def receive(self, run: int, timeout: float) -> bytes:
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                if run != self._run:
                    raise PowerCut("board stopped")
                if self._rx:
                    data = bytes(self._rx)
                    self._rx.clear()
                    return data
                left = deadline - time.monotonic()
                if left <= 0:
                    return b""
                self._cond.wait(left)

    def current(self, run: int) -> bool:
        return run == self._run

    def wait(self, run: int, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        with self._cond:
            while run == self._run:
                left = deadline - time.monotonic()
                if left <= 0:
                    return
                self._cond.wait(left)
        raise PowerCut("board stopped")

    # -- the firmware thread
    def close(self) -> None:
        """Stop the firmware thread and flush the flash file (daemon shutdown: a power cut)."""
        with self._cond:
            self._closing = True
            self._outlet = False
            self._stop()
        self._thread.join(timeout=5)
        self.flash.close()

    def _next_boot(self) -> BoardContext | None:
        with self._cond:
            while True:
                if self._closing:
                    return None
                if self._start and self.powered and not self._holds:
                    left = self._release_at - time.monotonic()
                    if left <= 0:
                        break
                    self._cond.wait(left)
                else:
                    self._cond.wait()
            self._start = False
            mode = "download" if facts(self.variant).flasher is Flasher.ROM_LOADER and self._gpio0_low else "spi"
            return BoardContext(self, self._run, self._cause, mode)

    def _flash_guard(self) -> None:
        # Only the firmware thread is stopped this way; a probe's thread writes flash on its own terms.
        run = getattr(self._firmware_thread, "run", None)
        if run is not None and run != self._run:
            raise PowerCut("board stopped")

    def _supervise(self) -> None:
        while (ctx := self._next_boot()) is not None:
            self._firmware_thread.run = ctx._run
            try:
                self._firmware(ctx)
            except PowerCut:
                if ctx.powered():
                    # Nobody stopped this run: an armed flash operation cut the power.
                    self.cut_power()
            except Exception:  # a bug in a chip model: the chip hangs, the daemon keeps serving
                log.error("board %s: firmware model crashed:\n%s", self.id, traceback.format_exc())
