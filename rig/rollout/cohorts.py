"""Deterministic cohorts: which wave each device of a variant track belongs to.

Every device gets a rank, a number in [0, 1) from SHA-256 of (seed, device id). Per variant, the
devices sorted by rank are cut into cumulative waves: wave k holds the first ceil(p_k x N) of them
(the canary at least one). So the same seed gives the same cohorts, and raising a wave's
percentage only appends devices to it. Rack boards are always in the canary, on top of the
percentages. A device that registers after the rollout started (a late joiner) goes to the first
wave whose last member's rank is not below its own - where it would have been, had it been there.
"""

import hashlib
import math

CANARY = 0


def rank(seed: int, thing: str) -> float:
    return int.from_bytes(hashlib.sha256(f"{seed}:{thing}".encode()).digest()[:8], "big") / 2**64


def sizes(n: int, waves: list[float]) -> list[int]:
    """Cumulative members of each wave for a track of n devices (percentages in `waves`)."""
    out = [min(n, math.ceil(p * n / 100 - 1e-9)) for p in waves]
    if n and out:
        out[0] = max(out[0], 1)
    return [max(c, out[i - 1] if i else 0) for i, c in enumerate(out)]


def plan(things: list[tuple[str, bool]], seed: int, waves: list[float]) -> tuple[dict[str, int], list[float]]:
    """things: (id, is a rack board) of one variant. Returns ({id: wave}, rank boundaries per wave)."""
    sims = sorted((rank(seed, t), t) for t, rack in things if not rack)
    cuts = sizes(len(sims), waves)
    out, boundaries, start = {}, [], 0
    for k, end in enumerate(cuts):
        for _, t in sims[start:end]:
            out[t] = k
        boundaries.append(sims[end - 1][0] if end else -1.0)
        start = max(start, end)
    if boundaries:
        boundaries[-1] = 1.0  # everyone belongs to the last wave at the latest
    for t, rack in things:
        if rack:
            out[t] = CANARY
    return out, boundaries


def place(thing: str, seed: int, boundaries: list[float]) -> int:
    """The wave of a late joiner."""
    r = rank(seed, thing)
    return next((k for k, b in enumerate(boundaries) if r <= b), len(boundaries) - 1)
