"""Route esptool's console output to Python logging and its progress bars to a callback.

esptool 5 reports through one global logger (esp-pylib's EspLog singleton). While a driver runs an
esptool operation it routes that logger's output to Python logging and its progress to the
operation's callback, so a test log or a `rig flash` progress bar shows the operation instead of
esptool's own bars interleaved with the host's output. `rig ota` drives boards from a thread each:
the singleton is a router (installed once) that sends each thread's output to the operation that
thread runs, and esptool's own logger's way when it runs none.
"""

import contextlib
import logging
import threading
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


_jobs = threading.local()  # .stack: this thread's operations, innermost last
_install = threading.Lock()


def _target(router) -> EspLogBase:
    stack = getattr(_jobs, "stack", None)
    return stack[-1] if stack else router.original


def _route(name: str):
    def method(self, *args, **kwargs):
        return getattr(_target(self), name)(*args, **kwargs)

    method.__name__ = name
    return method


# esp-pylib's logger interface (EspLogBase: its abstract methods must exist here), and anything
# else asked of the logger, sent to the calling thread's operation.
_Router = type("_Router", (EspLogBase,), {
    "__init__": lambda self, original: setattr(self, "original", original),
    "__getattr__": lambda self, name: getattr(_target(self), name),
    **{name: _route(name) for name in ("print", "err", "warn", "note", "hint", "debug", "die", "stage",
                                       "set_verbosity", "set_info_stream", "progress_bar")},
})


@contextlib.contextmanager
def quiet_esptool(progress: Callable[[int, int], None] | None = None, total: int = 0):
    with _install:
        if not isinstance(EspLog.instance, _Router):
            EspLog.instance = _Router(EspLog.instance)
    stack = _jobs.__dict__.setdefault("stack", [])
    stack.append(_Logger(progress, total))
    try:
        yield
    finally:
        stack.pop()
