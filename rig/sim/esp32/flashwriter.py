"""Streaming a host's data into the SPI flash the way the ROM loader and the flasher stub do.

Both erase before they program, in whole 4 KiB sectors starting at the sector that holds the
first byte (so bytes before an unaligned start address in that sector are lost, which esptool
warns about). The ROM erases the whole region when the download begins; the stub erases each
sector just before it programs into it, so a power cut mid-download leaves the tail of the old
contents in place. Both erase with the SPI NOR's 64 KiB block erase where a whole aligned block is
still to be erased, else with its 4 KiB sector erase (esptool's flasher_stub start_next_erase, the
ROM's SPIEraseArea), which is what the part's erase times depend on. Each erase command and each
program of up to one sector is one flash operation.
"""

from rig.sim.flash import Flash

BLOCK = 64 * 1024  # the SPI NOR's block erase (command 0xD8)


def erase_commands(sector: int, start: int, end: int):
    """(offset, length) of the erase commands for the sectors from `start` to `end` (both aligned):
    64 KiB blocks where a whole aligned block lies ahead, else single sectors."""
    while start < end:
        step = BLOCK if start % BLOCK == 0 and end - start >= BLOCK else sector
        yield start, step
        start += step


class FlashWriter:
    def __init__(self, flash: Flash, offset: int, size: int, erase_ahead: bool):
        g = flash.geometry
        self.flash = flash
        self.sector = g.sector_size
        self.unit = g.write_size
        self.pos = offset
        self.end = min(offset + size, g.size)
        self._erased_to = offset - offset % self.sector
        self._erase_end = self.end + (-self.end) % self.sector  # the last sector the download reaches
        self._pending = bytearray()
        if erase_ahead:
            self._erase_through(self.end)

    def write(self, data: bytes) -> None:
        """Program `data` at the current position; data past the announced size is dropped (the
        ROM pads the last block with 0xFF, which programs nothing on NOR anyway)."""
        self._pending += data
        whole = len(self._pending) - len(self._pending) % self.unit
        if whole:
            chunk, self._pending = bytes(self._pending[:whole]), self._pending[whole:]
            self._program(chunk)

    def finish(self) -> None:
        """Program a last partial write unit, padded with 0xFF (which leaves NOR bits as they are)."""
        if self._pending:
            chunk = bytes(self._pending).ljust(self.unit, b"\xff")
            self._pending.clear()
            self._program(chunk)

    def _program(self, data: bytes) -> None:
        limit = self.end + (-self.end) % self.unit
        data = data[: max(0, limit - self.pos)]
        while data:
            room = self.sector - self.pos % self.sector
            piece, data = data[:room], data[room:]
            self._erase_through(self.pos + len(piece))
            self.flash.write(self.pos, piece)
            self.pos += len(piece)

    def _erase_through(self, end: int) -> None:
        for offset, length in erase_commands(self.sector, self._erased_to, self._erase_end):
            if offset >= end:
                return
            self.flash.erase(offset, length)
            self._erased_to = offset + length
