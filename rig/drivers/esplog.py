"""Route esptool's console output to Python logging and its progress bars to a callback.

esptool 5 reports through one global logger (esp-pylib's EspLog singleton). While a driver runs an
esptool operation it installs this logger, so a test log or a `rig flash` progress bar shows the
operation instead of esptool's own bars interleaved with the host's output.
"""

import contextlib
import logging
from collections.abc import Callable

from esp_pylib.logger import EspLog, EspLogBase

log = logging.getLogger("rig.esptool")


class _Logger(EspLogBase):
    def __init__(self, progress: Callable[[int, int], None] | None, total: int):
        self._progress = progress
        self._total = total

    def print(self, *args, **kwargs) -> None:
        text = " ".join(str(a) for a in args).strip()
        if text:
            log.info(text)

    def note(self, *args) -> None:
        log.info(" ".join(map(str, args)))

    def hint(self, *args) -> None:
        log.info(" ".join(map(str, args)))

    def debug(self, *args) -> None:
        log.debug(" ".join(map(str, args)))

    def warn(self, *args, suggestion: str | None = None) -> None:
        log.warning(" ".join(map(str, args)))

    def err(self, *args, suggestion: str | None = None) -> None:
        log.error(" ".join(map(str, args)))

    def set_verbosity(self, mode) -> None:
        pass  # verbosity is Python logging's

    def progress_bar(self, cur_iter, total_iters, prefix="", suffix="", bar_length=30) -> None:
        # esptool counts blocks or bytes depending on the operation; report bytes of this job.
        if self._progress and total_iters:
            self._progress(min(self._total, cur_iter * self._total // total_iters), self._total)


@contextlib.contextmanager
def quiet_esptool(progress: Callable[[int, int], None] | None = None, total: int = 0):
    previous = EspLog.instance
    EspLog.instance = _Logger(progress, total)
    try:
        yield
    finally:
        EspLog.instance = previous
