"""SMP push for MCUboot boards, with the OTA server's faults played on the serial link.

The image goes up with MCUmgr (rig.drivers.SMPDriver, smpclient underneath). The faults of a
fault plan (rig.ota.faults) act as a bad serial link or a bad backend would:

    drop@N      the link breaks once N bytes are up; the next session sends the same image and the
                board's img_mgmt resumes from the offset it reports (same SHA-256 = same upload)
    stall@N:S   nothing moves for S seconds at byte N
    corrupt@N:L the L bytes from N arrive flipped (the board stores them; MCUboot must refuse)
    truncate@N  only the first N bytes are sent, as a file cut short on its way
    wrong-file  another artefact is sent instead

`on_progress(done, total)` sees every acknowledged offset (power-cut triggers on the upload offset
use it). `wire_bytes` counts image bytes the board acknowledged, over all sessions of a push.
"""

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from rig.errors import RigError
from rig.ota.faults import Fault

MAX_SESSIONS = 6  # sessions per push: the first plus resumptions after drops


class LinkDropped(Exception):
    """Raised inside the upload to break the session, as a pulled cable does."""


@dataclass
class PushResult:
    sessions: int = 0
    wire_bytes: int = 0  # image bytes acknowledged by the board, over every session
    faults_fired: list[str] = field(default_factory=list)


def prepare(image: bytes, faults: list[Fault], artefacts: Path | None = None) -> tuple[bytes, list[str]]:
    """The bytes a faulty backend hands over: wrong file, truncated, corrupted."""
    fired = []
    for f in faults:
        if f.kind == "wrong-file":
            if artefacts is None or f.other_file is None:
                raise RigError("fault wrong-file: no artefact folder to take the other file from")
            image = (artefacts / f.other_file).read_bytes()
            fired.append(f"wrong-file {f.other_file}")
    for f in faults:
        if f.kind == "truncate":
            image = image[: f.offset(len(image))]
            fired.append(f"truncate at {len(image)}")
        elif f.kind == "corrupt":
            at = f.offset(len(image))
            data = bytearray(image)
            for i in range(at, min(at + f.length, len(data))):
                data[i] ^= 0xFF
            image = bytes(data)
            fired.append(f"corrupt {at}+{f.length}")
    return image, fired


def push(smp, image: bytes, faults: list[Fault], on_progress: Callable[[int, int], None] | None = None,
         artefacts: Path | None = None, result: PushResult | None = None) -> PushResult:
    """Upload `image` through `smp` (an active SMPDriver) with the link faults of `faults`.

    Pass `result` to keep the counts of a push that raises (a power cut mid-upload), and to number
    sessions across pushes of one delivery: a fault's `#N` is the delivery's Nth SMP session."""
    result = result or PushResult()
    sent, fired = prepare(image, [f for f in faults if f.applies(result.sessions + 1)], artefacts)
    result.faults_fired += fired
    pending: list = []
    last = [0]

    def progress(done: int, total: int) -> None:
        result.wire_bytes += max(0, done - last[0])
        last[0] = done
        if on_progress:
            on_progress(done, total)
        while pending and done >= pending[0][0]:
            at, f = pending.pop(0)
            if f.kind == "stall":
                result.faults_fired.append(f"stall {f.seconds}s at {done}")
                time.sleep(f.seconds)
            else:
                result.faults_fired.append(f"drop at {done}")
                raise LinkDropped(at)

    while True:
        result.sessions += 1
        pending[:] = sorted(((f.offset(len(sent)), f) for f in faults
                             if f.kind in ("drop", "stall") and f.applies(result.sessions)), key=lambda p: p[0])
        try:
            smp.upload(sent, progress=progress)
            return result
        except LinkDropped:
            if result.sessions >= MAX_SESSIONS:
                raise RigError(f"SMP push: the link dropped {result.sessions} times; giving up") from None
            # The next session's first reply jumps to the board's offset; only what lies past the
            # drop is new on the wire (the one chunk the board discards is not counted).
