"""The flash work of one unit: seconds per recipe step, and byte progress for the station's display.

A station's own overhead is everything but the flash operations (process start, identification,
identity, records); to tell the two apart the meter wraps the board flasher's operations - erase,
write, read, compare - on this process's driver instance, whichever step calls them and however
(through BoardDrivers or the driver itself). A fixture process holds one unit, so the wrapping
ends with the process. Wrapped operations that take a progress callback and were given none
report to the station's display.
"""

import functools
import inspect
import time
from collections import defaultdict
from collections.abc import Callable

# Leaf operations of PyOCDDriver and EsptoolDriver: none calls another of them, so none is timed twice.
OPERATIONS = ("write_regions", "read", "erase", "differing", "verify")


class FlashMeter:
    def __init__(self, flasher, report: Callable[[int, int], None]):
        self.step: str | None = None  # the step running now, set by the fixture
        self.seconds: dict[str, float] = defaultdict(float)
        self._report = report
        for name in OPERATIONS:
            if hasattr(flasher, name):
                setattr(flasher, name, self._timed(getattr(flasher, name)))

    def _timed(self, operation):
        reports = "progress" in inspect.signature(operation).parameters

        @functools.wraps(operation)
        def timed(*args, **kwargs):
            if reports and kwargs.get("progress") is None:
                kwargs["progress"] = self._report
            started = time.monotonic()
            try:
                return operation(*args, **kwargs)
            finally:
                self.seconds[self.step or "(no step)"] += time.monotonic() - started

        return timed

    def annotate(self, steps: list[dict]) -> None:
        """Add each step's flash seconds to its entry in the record."""
        for entry in steps:
            entry["flash_seconds"] = round(self.seconds.get(entry["name"], 0.0), 3)
