"""Power-cut triggers: fire on what a real rig can observe, then cut the board's power.

What a rig can see of a board mid-update: the bytes its OTA server has served, the offset an SMP
upload has reached, a line on the console, the time since the update started. A trigger watches
one of those and, once, calls `cut` - typically "outlet off, wait, outlet on" through the board's
labgrid power driver. The cut runs on its own thread so the server or reader that saw the event
is not blocked by the power switch.
"""

import re
import threading
from collections.abc import Callable
from dataclasses import dataclass

from rig.errors import RigError

WATCHES = ("bytes", "upload", "line", "delay")


@dataclass(frozen=True)
class TriggerSpec:
    watch: str  # bytes | upload | line | delay
    at_percent: float | None = None  # bytes, upload
    at_byte: int | None = None  # bytes, upload
    pattern: str | None = None  # line: a regular expression
    seconds: float | None = None  # delay

    def describe(self) -> str:
        where = (f"{self.at_percent:g}%" if self.at_percent is not None else self.at_byte
                 if self.at_byte is not None else self.pattern if self.pattern else f"{self.seconds}s")
        return f"cut@{self.watch}:{where}"


def parse(spec: str) -> TriggerSpec:
    """`cut@bytes:40%`, `cut@bytes:12000`, `cut@upload:50%`, `cut@line:Swap type`, `cut@delay:2.5`."""
    head, _, arg = spec.partition(":")
    watch = head.removeprefix("cut@")
    if not head.startswith("cut@") or watch not in WATCHES or not arg:
        raise RigError(f"power-cut trigger {spec!r}: expected cut@bytes|upload|line|delay:VALUE (e.g. cut@bytes:40%)")
    try:
        if watch == "line":
            re.compile(arg)
            return TriggerSpec(watch, pattern=arg)
        if watch == "delay":
            return TriggerSpec(watch, seconds=float(arg))
        if arg.endswith("%"):
            return TriggerSpec(watch, at_percent=float(arg[:-1]))
        return TriggerSpec(watch, at_byte=int(arg))
    except (ValueError, re.error) as exc:
        raise RigError(f"power-cut trigger {spec!r}: {exc}") from None


class Trigger:
    """One armed trigger. Feed it observations; it fires `cut` at most once."""

    def __init__(self, spec: TriggerSpec, cut: Callable[[], None]):
        self.spec = spec
        self._cut = cut
        self._fired = threading.Event()
        self._lock = threading.Lock()
        self._timer: threading.Timer | None = None
        self.fired_at: str | None = None  # what was observed when it fired, for the report

    @property
    def fired(self) -> bool:
        return self._fired.is_set()

    def start(self) -> None:
        """Start the clock of a delay trigger (call when the update starts)."""
        if self.spec.watch == "delay":
            assert self.spec.seconds is not None  # TriggerSpec requires it for a delay
            self._timer = threading.Timer(self.spec.seconds, self._fire, args=(f"after {self.spec.seconds}s",))
            self._timer.daemon = True
            self._timer.start()

    def progress(self, watch: str, done: int, total: int) -> None:
        """`done` of `total` bytes served (watch="bytes") or uploaded (watch="upload")."""
        if watch != self.spec.watch:
            return
        at = self.spec.at_byte if self.spec.at_byte is not None else total * (self.spec.at_percent or 0) / 100
        if done >= at:
            self._fire(f"{watch} {done}/{total}")

    def line(self, text: str) -> None:
        if self.spec.watch == "line" and self.spec.pattern and re.search(self.spec.pattern, text):
            self._fire(f"line {text!r}")

    def cancel(self) -> None:
        if self._timer:
            self._timer.cancel()

    def wait(self, timeout: float) -> bool:
        return self._fired.wait(timeout)

    def _fire(self, observed: str) -> None:
        with self._lock:
            if self._fired.is_set():
                return
            self.fired_at = observed
            self._fired.set()
        threading.Thread(target=self._cut, name="power-cut", daemon=True).start()
