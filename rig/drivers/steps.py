"""labgrid's step log, one stack of open steps per thread instead of per process.

labgrid.step.steps keeps the steps in progress (every @step-decorated driver call) on one list
and asserts that the step it closes is the last one opened. `rig ota` and `rig demo` drive the
boards of a rack from a thread each, so two boards' steps nest into each other on that list and
the assertion fails. Each board's calls are sequential within its thread: a stack per thread is
exactly labgrid's model, per board. Applied once, on import of rig.drivers.
"""

import threading

from labgrid.step import Steps, steps


class _StepsPerThread(Steps):
    _local = threading.local()

    @property
    def _stack(self) -> list:
        if not hasattr(self._local, "stack"):
            self._local.stack = []
        return self._local.stack

    @_stack.setter
    def _stack(self, value: list) -> None:
        self._local.stack = value


def install() -> None:
    if not isinstance(steps, _StepsPerThread):
        vars(steps).pop("_stack", None)
        steps.__class__ = _StepsPerThread
