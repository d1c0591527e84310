"""Zephyr's flash_img over stream_flash with CONFIG_IMG_ERASE_PROGRESSIVELY: how upload data reaches flash.

Data collects in a RAM buffer of CONFIG_IMG_BLOCK_BUF_SIZE bytes (never larger than a flash page,
stream_flash_init refuses that); each full buffer is written in one flash operation after erasing
the page its last byte lands in, unless that page was the last one erased. The final flush pads
the tail to the write unit with the erased value; flash_img then has the page of the MCUboot
trailer erased (erase_page) so a stale trailer cannot make the new image pending.
"""

from rig.image.layouts import Geometry
from rig.sim.flash import Flash

IMG_BLOCK_BUF_SIZE = 512


class StreamFull(Exception):
    """More data than the flash area holds (stream_flash's -ENOMEM)."""


class StreamFlash:
    def __init__(self, flash: Flash, area_offset: int, area_size: int):
        g: Geometry = flash.geometry
        self._flash = flash
        self._area = area_offset
        self._size = area_size
        self._buf_len = min(IMG_BLOCK_BUF_SIZE, g.sector_size)
        self._buf = bytearray()
        self._last_erased: int | None = None
        self.bytes_written = 0

    def write(self, data: bytes, flush: bool) -> None:
        if self.bytes_written + len(self._buf) + len(data) > self._size:
            raise StreamFull(f"{len(data)} more bytes do not fit the {self._size}-byte area")
        pos = 0
        while len(data) - pos >= (room := self._buf_len - len(self._buf)):
            self._buf += data[pos : pos + room]
            pos += room
            self._sync()
        self._buf += data[pos:]
        if flush:
            self._sync()

    def erase_page(self, offset: int) -> None:
        """Erase the page holding area offset `offset`, unless it is the page erased last."""
        sector = self._flash.geometry.sector_size
        start = (self._area + offset) // sector * sector
        if start != self._last_erased:
            self._flash.erase(start, sector)
            self._last_erased = start

    def _sync(self) -> None:
        if not self._buf:
            return
        g = self._flash.geometry
        self.erase_page(self.bytes_written + len(self._buf) - 1)
        pad = -len(self._buf) % g.write_size
        self._flash.write(self._area + self.bytes_written, bytes(self._buf) + bytes([g.erased]) * pad)
        self.bytes_written += len(self._buf)
        self._buf.clear()
