"""The independent watchdog (IWDG; IWDG1 on the H7), RM0433 §45 / RM0367 §25: same block on both.

KR 0xCCCC starts it (and the LSI), 0x5555 opens PR and RLR for writing, 0xAAAA reloads the
counter. It counts RLR+1 periods of LSI / (4 << PR) down to zero, then resets the part. Once
started only a reset stops it (no hardware-watchdog option here). The prescaler and reload
updates are done at once (SR reads 0). Time comes from the machine's clock.
"""

from collections.abc import Callable

KR, PR, RLR, SR = 0x00, 0x04, 0x08, 0x0C
KEY_START, KEY_UNLOCK, KEY_RELOAD = 0xCCCC, 0x5555, 0xAAAA


class Iwdg:
    def __init__(self, lsi_hz: int, now: Callable[[], float]):
        self._lsi_hz = lsi_hz
        self._now = now
        self.reset()

    def reset(self) -> None:
        self._pr, self._rlr = 0, 0xFFF
        self._unlocked = False
        self.expires_at: float | None = None  # clock time of the reset it would cause

    def _timeout(self) -> float:
        return (self._rlr + 1) * (4 << min(self._pr, 6)) / self._lsi_hz

    def read(self, off: int) -> int:
        return {PR: self._pr, RLR: self._rlr}.get(off, 0)

    def write(self, off: int, value: int) -> None:
        if off == KR:
            key = value & 0xFFFF
            self._unlocked = key == KEY_UNLOCK
            if key == KEY_START or (key == KEY_RELOAD and self.expires_at is not None):
                self.expires_at = self._now() + self._timeout()
        elif off == PR and self._unlocked:
            self._pr = value & 7
        elif off == RLR and self._unlocked:
            self._rlr = value & 0xFFF

    def feed_only(self, off: int, value: int) -> bool:
        """True for a write that only reloads a running counter: a waiting loop's typical access."""
        return off == KR and value & 0xFFFF == KEY_RELOAD

    def expired(self) -> bool:
        return self.expires_at is not None and self._now() >= self.expires_at
