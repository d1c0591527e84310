"""FlashProtocol: what every flasher driver does, with one signature (as labgrid's PowerProtocol is
for power switches).

PyOCDDriver (SWD, STM32) and EsptoolDriver (ROM loader, ESP32) implement it; BoardDrivers, the
OTA targets and the provisioning recipes call it without asking which one a board has. Offsets
are from the start of flash (rig.image.layouts); a region is (offset, data).
"""

import abc
import hashlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

Progress = Callable[[int, int], None]  # (done, total) in bytes
Region = tuple[int, bytes]


def regions_sha256(regions: Iterable[Region]) -> str:
    """The firmware hash the reports carry: SHA-256 over the written regions in flash order."""
    digest = hashlib.sha256()
    for _, data in sorted(regions, key=lambda region: region[0]):
        digest.update(data)
    return digest.hexdigest()


@dataclass(frozen=True)
class Lock:
    """A board locked against development use, as the board shows it to its flasher."""

    state: str  # what the board shows, e.g. "readout protection level 1 ..."
    way_out: str  # for a real board: how to open it again, or that nothing can
    blocks_flashing: bool  # the flasher cannot write the flash at all (not only: it will not boot)


class FlashProtocol(abc.ABC):
    # SHA-256 (regions_sha256) of the last image written through this driver in this process
    last_image_sha256: str | None

    @abc.abstractmethod
    def write_regions(self, regions: Sequence[Region], verify: bool = True, progress: Progress | None = None) -> None:
        """Write the regions in one session (what they cover is erased first; bytes around them
        are kept), then compare each with the flash; RigError on a difference."""

    def write(self, data: bytes, offset: int, verify: bool = True, progress: Progress | None = None) -> None:
        """Write one region."""
        self.write_regions([(offset, data)], verify=verify, progress=progress)

    @abc.abstractmethod
    def read(self, offset: int, size: int, progress: Progress | None = None) -> bytes:
        """`size` bytes of flash from `offset`."""

    @abc.abstractmethod
    def verify(self, data: bytes, offset: int) -> None:
        """RigError when the flash at `offset` does not hold `data`."""

    @abc.abstractmethod
    def differing(self, regions: Sequence[Region]) -> list[Region]:
        """The regions whose bytes the flash does not hold yet."""

    @abc.abstractmethod
    def erase(self, offset: int | None = None, size: int | None = None) -> None:
        """Erase the whole flash, or the sectors of [offset, offset+size)."""

    @abc.abstractmethod
    def lock(self) -> Lock | None:
        """How the board is locked (readout protection, Secure Boot, flash encryption, download
        mode), read as the flasher reads it from the chip; None when it is open for development."""
