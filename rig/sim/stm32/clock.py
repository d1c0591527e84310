"""The emulated part's time base: seconds since its power-on, which SysTick and the IWDG count.

Time follows the wall clock while the core runs, so a board's timers, its console and the host's
timeouts agree. When the core waits for an interrupt (WFI, or a loop that polls and changes
nothing - rig.sim.stm32.machine decides), `wait_until` lets the host thread sleep until the next
due event. Two kinds:

- `WallClock` (the virtual lab): waiting sleeps, and a wake-up (console input, a debugger, a reset)
  ends the sleep early;
- `WarpClock` (firmware unit tests): waiting jumps the time forward to the event instead, so a
  test of a 2 s watchdog takes the milliseconds the core needs to execute, not 2 s.

While a debugger holds the core halted the time stands still (`pause`/`resume`): the Cortex-M
SysTick stops in debug state, and a halted core would otherwise find every timer expired. So it
does (`skip`) for stretches in which a loaded host did not let the core execute: the firmware
would otherwise find its watchdog expired without having had the chance to feed it.
"""

import threading
import time


class WallClock:
    def __init__(self) -> None:
        self._origin = time.monotonic()
        self._paused_at: float | None = None
        self._cond = threading.Condition()
        self._woken = False

    def now(self) -> float:
        at = self._paused_at if self._paused_at is not None else time.monotonic()
        return at - self._origin

    def pause(self) -> None:
        if self._paused_at is None:
            self._paused_at = time.monotonic()

    def resume(self) -> None:
        if self._paused_at is not None:
            self._origin += time.monotonic() - self._paused_at
            self._paused_at = None

    def skip(self, seconds: float) -> None:
        """The last `seconds` did not happen for the part (its host starved it): time stood still."""
        self._origin += seconds

    def wake(self) -> None:
        """End a `wait_until` early: something the core must see has happened."""
        with self._cond:
            self._woken = True
            self._cond.notify_all()

    def wait_until(self, deadline: float | None) -> None:
        """Sleep until `deadline` (clock seconds; None: until woken) or a `wake`."""
        with self._cond:
            while not self._woken:
                left = None if deadline is None else deadline - self.now()
                if left is not None and left <= 0:
                    break
                self._cond.wait(left)
            self._woken = False


class WarpClock(WallClock):
    """Wall time while the core runs; a wait skips straight to its deadline."""

    def wait_until(self, deadline: float | None) -> None:
        with self._cond:
            if self._woken or deadline is None:
                self._woken = False
                return
            ahead = deadline - self.now()
            if ahead > 0:
                self._origin -= ahead
