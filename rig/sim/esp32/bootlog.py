"""ESP-IDF's log line format: `I (27) boot: ...`, level letter, milliseconds since boot, tag.

The virtual bootloader does no real work that takes time, so the timestamps advance by a fixed
step per line: the log reads like a real one and is the same on every boot (tests compare lines,
never times).
"""

FIRST_MS = 27  # when a real ESP32's second-stage bootloader prints its first line
STEP_MS = 4


class BootLog:
    def __init__(self, ctx):
        self._ctx = ctx
        self._ms = FIRST_MS

    def _line(self, level: str, tag: str, message: str) -> None:
        self._ctx.log(f"{level} ({self._ms}) {tag}: {message}")
        self._ms += STEP_MS

    def info(self, tag: str, message: str) -> None:
        self._line("I", tag, message)

    def warn(self, tag: str, message: str) -> None:
        self._line("W", tag, message)

    def error(self, tag: str, message: str) -> None:
        self._line("E", tag, message)
