"""A NOR/embedded flash model with the rules of the real part, persisted in a file.

Rules enforced (a violation raises FlashError, as the part's controller would flag an error):
- writes are aligned to the write unit and whole units long;
- a written unit is never programmed again before its sector is erased (embedded flash with ECC:
  STM32). SPI NOR on the ESP32 may clear bits in place (its Geometry's `bit_clear`): new = old
  AND data, which ESP-IDF's NVS relies on;
- erases cover whole sectors.

Every write and erase is one counted operation, so a power cut can be armed to land before
operation N, or to tear operation N (only the first half of it reaches the cells); counted over the
whole part, or only over the operations that touch one region (a partition), as a logic analyser
on the flash bus would tell them apart by address. A write can also be armed to reach the cells
with one bit flipped (`arm_flip`): a fault in the write path after the data's own checks. The file is a
shared memory map: bytes survive the process, so restarting the daemon is a power cycle.
Each operation takes the time `timing` (rig.sim.timing) charges for it: none by default.
"""

import mmap
import os
from collections.abc import Callable
from pathlib import Path

from rig.image.layouts import Geometry
from rig.sim.timing import Timing


class FlashError(Exception):
    """The flash controller refused an operation (misaligned, rewrite, partial sector)."""


class PowerCut(Exception):
    """Power was cut at an armed flash operation; the board must stop executing now."""


class Flash:
    def __init__(self, path: Path, geometry: Geometry):
        self.geometry = geometry
        self.bit_clear = geometry.bit_clear
        self.ops = 0  # operations since the file was opened, for reports
        self._cut_left: int | None = None  # operations (in _cut_region) to let through before the cut
        self._cut_region: tuple[int, int] | None = None
        self._tear = False
        self._flip_left: int | None = None  # writes (in _flip_region) to let through before the flip
        self._flip_region: tuple[int, int] | None = None
        # Called before every operation; raises PowerCut when the caller's chip has lost power
        # (set by the board runner, so a model's write loop stops at once when its power goes).
        self.guard: Callable[[], None] | None = None
        # Called with (offset, length) after the cells changed (an emulated core's view of the array).
        self.listeners: list[Callable[[int, int], None]] = []
        self.timing = Timing()  # the board sets its lab's model
        path = Path(path)
        fresh = not path.exists()
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            if fresh or os.fstat(fd).st_size != geometry.size:
                os.ftruncate(fd, 0)
                os.ftruncate(fd, geometry.size)
                os.pwrite(fd, bytes([geometry.erased]) * geometry.size, 0)
            self._map = mmap.mmap(fd, geometry.size)
        finally:
            os.close(fd)

    def close(self) -> None:
        self._map.flush()
        self._map.close()

    # -- reads never count: a power cut during a read changes nothing in the cells.
    def read(self, offset: int, length: int) -> bytes:
        self._bounds(offset, length)
        return self._map[offset : offset + length]

    def is_erased(self, offset: int, length: int) -> bool:
        return self.read(offset, length) == bytes([self.geometry.erased]) * length

    def write(self, offset: int, data: bytes) -> None:
        g = self.geometry
        self._bounds(offset, len(data))
        if offset % g.write_size or len(data) % g.write_size:
            raise FlashError(f"write at 0x{offset:x}+{len(data)} is not aligned to the {g.write_size}-byte unit")
        flip = self._flip_left
        if flip is not None and _overlaps(self._flip_region, offset, len(data)):
            self._flip_left = flip - 1 if flip else None
            if not flip:
                data = _one_bit_flipped(data)
        old = self._map[offset : offset + len(data)]
        if self.bit_clear:
            new = bytes(a & b for a, b in zip(old, data, strict=True))
        else:
            for unit in range(0, len(data), g.write_size):
                if old[unit : unit + g.write_size] != bytes([g.erased]) * g.write_size:
                    raise FlashError(f"write at 0x{offset + unit:x}: unit already programmed; erase its sector first")
            new = bytes(data)
        self._operation(offset, new, self.timing.program)

    def erase(self, offset: int, length: int) -> None:
        g = self.geometry
        self._bounds(offset, length)
        if offset % g.sector_size or length % g.sector_size or not length:
            raise FlashError(f"erase at 0x{offset:x}+{length} is not whole {g.sector_size}-byte sectors")
        self._operation(offset, bytes([g.erased]) * length, self.timing.erase)

    # -- power-cut injection
    def arm_cut(self, after_ops: int, tear: bool = False, region: tuple[int, int] | None = None) -> None:
        """Let `after_ops` more operations complete (counting only those touching `region`, an
        (offset, size), if given); cut power at the next one (torn if `tear`)."""
        self._cut_left = after_ops
        self._cut_region = region
        self._tear = tear

    def arm_flip(self, after_writes: int, region: tuple[int, int] | None = None) -> None:
        """Let `after_writes` more writes (into `region`, if given) through; the next one reaches the
        part with one bit of its data flipped (NOR flash then ANDs it into the cells as any data)."""
        self._flip_left = after_writes
        self._flip_region = region

    def disarm(self) -> None:
        self._cut_left = None
        self._flip_left = None

    def _operation(self, offset: int, new: bytes, spend: Callable[[int, int], None]) -> None:
        if self.guard is not None:
            self.guard()
        left = self._cut_left
        if left is not None and left > 0 and _overlaps(self._cut_region, offset, len(new)):
            self._cut_left = left - 1
        elif left == 0 and _overlaps(self._cut_region, offset, len(new)):
            self._cut_left = None
            if self._tear:
                half = len(new) // 2
                self._map[offset : offset + half] = new[:half]
                self._changed(offset, half)
            self._map.flush()
            raise PowerCut(f"power cut at flash operation {self.ops} (0x{offset:x})")
        spend(offset, len(new))  # the part is busy, then the cells hold the new bytes
        if self.guard is not None:
            self.guard()  # power that went while the part was busy leaves the cells as they were
        self._map[offset : offset + len(new)] = new
        self.ops += 1
        self._changed(offset, len(new))

    def _changed(self, offset: int, length: int) -> None:
        for listener in list(self.listeners):
            listener(offset, length)

    def _bounds(self, offset: int, length: int) -> None:
        if offset < 0 or length < 0 or offset + length > self.geometry.size:
            raise FlashError(f"0x{offset:x}+{length} is outside the {self.geometry.size}-byte flash")


def _overlaps(region: tuple[int, int] | None, offset: int, length: int) -> bool:
    return region is None or (offset < region[0] + region[1] and region[0] < offset + length)


def _one_bit_flipped(data: bytes) -> bytes:
    """`data` with the lowest bit of its middle byte flipped (the error is in what reaches the part)."""
    out = bytearray(data)
    out[len(out) // 2] ^= 0x01
    return bytes(out)
