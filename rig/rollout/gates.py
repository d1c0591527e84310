"""Health gates: how one device's execution is judged, and how a wave of a variant track is decided.

A device is a success only when it runs the new version, confirmed after reboot, and has stayed
so for the soak time without reporting more crashes than allowed; reporting SUCCEEDED and then
running the old image again is a failure, as are FAILED, REJECTED and TIMED_OUT. Devices that
never picked the job up are their own bucket: neither success nor failure until their pickup
deadline (counted from their own notification), after which they are left out of the wave's ratios
(their job stays queued for them).
"""

from dataclasses import dataclass

from rig.fleet import protocol as p
from rig.rollout.release import Gates
from rig.rollout.store import PLANNED

SUCCESS, FAILURE, PENDING, UNPICKED, MISSED = "success", "failure", "pending", "unpicked", "missed"


def judge(ex: dict, thing: dict | None, version: str, gates: Gates, now: float) -> str:
    status = ex["status"]
    if status == PLANNED:
        return UNPICKED  # not even notified yet (the rate limit): its own deadline has not started
    if status == p.QUEUED:
        return UNPICKED if now - ex["queued_at"] < gates.pickup_deadline_s else MISSED
    if status in (p.FAILED, p.REJECTED, p.TIMED_OUT):
        return FAILURE
    if status == p.IN_PROGRESS:
        return PENDING
    if status != p.SUCCEEDED:
        return MISSED  # canceled, removed, stuck: not part of this wave's health
    details = ex.get("details") or {}
    if ex.get("rolled_back") or details.get("version") != version or not details.get("confirmed"):
        return FAILURE
    if thing is not None and (thing.get("crashes") or 0) - (ex.get("crashes_at_start") or 0) > gates.max_crashes:
        return FAILURE
    if thing is not None and thing.get("version") not in (None, version):
        return FAILURE  # reported success, now runs something else: rolled back
    return SUCCESS if now - (ex.get("succeeded_at") or now) >= gates.soak_s else PENDING


@dataclass
class Counts:
    size: int = 0
    success: int = 0
    failure: int = 0
    pending: int = 0
    unpicked: int = 0
    missed: int = 0

    def add(self, verdict: str) -> None:
        self.size += 1
        setattr(self, verdict, getattr(self, verdict) + 1)

    @property
    def judged(self) -> int:
        return self.success + self.failure

    def text(self) -> str:
        return (f"{self.success} succeeded, {self.failure} failed, {self.pending} in flight, "
                f"{self.unpicked} not picked up, {self.missed} missed of {self.size}")


def decide(c: Counts, g: Gates, elapsed: float) -> tuple[str | None, str]:
    """('advance' | 'halt' | None, why). None: no decision yet."""
    pool = c.size - c.missed  # the devices this wave is judged on
    need = min(g.min_judged, c.size)  # a wave smaller than the minimum is judged whole
    if c.size == 0:
        return "advance", "the wave has no device of this variant"
    # A wave is decided once every device that took the job is judged (or at its deadline), not at
    # the first moment a ratio crosses: the decision then rests on the same counts whatever order
    # the reports came in, so the same seed gives the same event log.
    settled = c.pending == 0 and c.unpicked == 0 and c.judged >= need
    if not settled and elapsed < g.wave_deadline_s:
        return None, f"waiting: {c.judged} judged of {pool}, minimum {need} ({c.text()})"
    if c.judged < need:
        return "halt", f"only {c.judged} judged by the wave's deadline, minimum {need} ({c.text()})"
    if c.failure / c.judged > g.error_threshold:
        return "halt", (f"error ratio {c.failure}/{c.judged} = {c.failure / c.judged:.1%} above "
                        f"{g.error_threshold:.1%} ({c.text()})")
    if c.success / c.judged >= g.success_threshold:
        return "advance", (f"success ratio {c.success}/{c.judged} = {c.success / c.judged:.1%} at or above "
                           f"{g.success_threshold:.1%} ({c.text()})")
    return "halt", (f"success ratio {c.success}/{c.judged} = {c.success / c.judged:.1%} below "
                    f"{g.success_threshold:.1%} ({c.text()})")
