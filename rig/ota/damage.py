"""Damage a board's flash as a bad write, a worn cell or an attacker with a probe would, before it boots.

The campaign (rig.ota.campaign) applies one of KINDS once an update settled, through the board's
own flasher (pyocd's probe on the STM32s, esptool's ROM loader on the ESP32), then powers the board
up with the console listening: MCUboot must refuse a damaged primary slot and say why, the ESP-IDF
bootloader must leave a damaged app partition for another valid one (or stop and say why), and an
otadata copy with a bad CRC must lose to the intact one. Nothing here looks inside a virtual board:
the bytes go through the same tools a bench uses.

    apply(drivers, target, kind, new, old) -> (the bytes now in the running slot, what was done)
    prefill(drivers, layout, region, size) -> what was done   unrelated data where an update goes
"""

import random

from rig.errors import RigError
from rig.image import otadata

FLIP, TRUNCATE, MAGIC, OLD = "flipped byte", "truncated image", "bad header magic", "image below the floor"
OTADATA_ACTIVE, OTADATA_BOTH = "otadata: active copy bad CRC", "otadata: both copies bad CRC"
OTADATA = (OTADATA_ACTIVE, OTADATA_BOTH)
KINDS = (FLIP, TRUNCATE, MAGIC, OLD) + OTADATA


def damaged(image: bytes, kind: str, erased: int) -> bytes:
    """The image as the damage leaves it (same length: the rest of the slot is untouched)."""
    out = bytearray(image)
    if kind == FLIP:
        out[len(out) // 2] ^= 0xFF  # a payload byte: header and TLVs / segment table stay intact
    elif kind == TRUNCATE:
        out[len(out) // 2 :] = bytes([erased]) * (len(out) - len(out) // 2)  # as a write cut short
    elif kind == MAGIC:
        out[0] ^= 0xFF  # MCUboot's IMAGE_MAGIC / the ESP image's 0xE9
    else:
        raise RigError(f"damage {kind!r} does not change an image")
    return bytes(out)


def apply(drivers, target, kind: str, new: bytes, old: bytes) -> tuple[bytes, str]:
    """Damage what the board runs after the update; returns the running slot's bytes and a note."""
    layout = target.layout
    running = layout.part(target.running)
    if kind in OTADATA:
        part = layout.part("otadata")  # ESP-IDF's two copies: a board without them has nothing to damage
        table = otadata.parse(drivers.read_flash(part.offset, otadata.SIZE))
        active = table.active()
        indexes = [0, 1] if kind == OTADATA_BOTH else [active] if active is not None else []
        if not indexes:
            raise RigError("otadata has no active copy to damage")
        for i in indexes:
            sector = bytearray(table.sector(i))
            sector[otadata.ENTRY.size - 4] ^= 0x01  # the low byte of the entry's crc field
            drivers.flash(bytes(sector), part.offset + i * otadata.SECTOR)
        return new, f"crc of otadata entr{'ies' if len(indexes) > 1 else 'y'} {indexes} flipped"
    data = old if kind == OLD else damaged(new, kind, layout.geometry.erased)
    drivers.flash(data, running.offset)
    return data, f"{kind} written to {running.name} at 0x{running.offset:x}"


def prefill(drivers, layout, region: tuple[int, int], size: int) -> str:
    """Random bytes over the first `size` bytes (whole sectors) of region, before a download."""
    offset, room = region
    sector = layout.geometry.sector_size
    length = min(room, -(-size // sector) * sector)
    drivers.flash(random.Random(offset).randbytes(length), offset)
    return f"{length} random bytes at 0x{offset:x}"
