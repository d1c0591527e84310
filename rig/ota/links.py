"""Link profiles: how fast and how late bytes reach a device over its radio.

Rates are the sustained application-layer throughput a device sees, not the radio's peak:
NB-IoT Cat-NB1 gives roughly 1-20 kbit/s with seconds of latency, LTE-M around 300 kbit/s,
Wi-Fi megabits. `scale` speeds a profile up uniformly so a test keeps the profile's shape
(latency against transfer time) without waiting minutes.
"""

import time
from dataclasses import dataclass, replace

from rig.errors import RigError


@dataclass(frozen=True)
class LinkProfile:
    name: str
    rate_bps: float | None  # bits per second; None = as fast as loopback goes
    latency_s: float  # added before the first byte of every response

    def scaled(self, scale: float) -> "LinkProfile":
        if scale <= 0:
            raise RigError(f"link scale must be positive, got {scale}")
        rate = None if self.rate_bps is None else self.rate_bps * scale
        return replace(self, rate_bps=rate, latency_s=self.latency_s / scale)

    def pace(self, nbytes: int) -> None:
        """Sleep as long as sending nbytes takes on this link."""
        if self.rate_bps:
            time.sleep(nbytes * 8 / self.rate_bps)


PROFILES = {
    p.name: p
    for p in (
        LinkProfile("nbiot", 16_000, 1.6),
        LinkProfile("ltem", 300_000, 0.2),
        LinkProfile("wifi", 20_000_000, 0.005),
        LinkProfile("loopback", None, 0.0),
    )
}


def profile(spec: str) -> LinkProfile:
    """`nbiot`, `wifi`, ... optionally with a speed-up: `nbiot*50`."""
    name, _, scale = spec.partition("*")
    if name not in PROFILES:
        raise RigError(f"unknown link profile {name!r}; choose one of {', '.join(PROFILES)}")
    try:
        return PROFILES[name].scaled(float(scale)) if scale else PROFILES[name]
    except ValueError:
        raise RigError(f"link profile {spec!r}: the speed-up after '*' must be a number") from None
