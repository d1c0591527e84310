"""The "virtual MCUboot" binary: what the mcuboot partition holds on a virtual STM32 board.

A real MCUboot knows its trusted keys because they are compiled into the bootloader binary that
sits in the mcuboot partition; a board with a different (or no) bootloader in that partition
trusts different keys (or boots nothing). The virtual board works the same way: the bootloader
model reads the trusted keys from this small blob, flashed at the start of the mcuboot partition
like any other binary (pyocd load, or rig's flashing). Its format, little-endian:

    0x000  u32   initial MSP              } a Cortex-M vector table, so the core's reset
    0x004  u32   reset handler (Thumb)    } state looks like that of a real bootloader
    0x100  8 B   magic b"RIGVMCUB"
    0x108  u16   format (1)
    0x10A  u16   number of keys
    0x10C  u32   bytes of key records that follow
    0x110  keys  per key: u16 length, then the key as DER SubjectPublicKeyInfo
                 (EC P-256 or RSA-2048: the keys imgtool's KEYHASH names)
    then   32 B  SHA-256 of [0x100, end of keys): a damaged blob is no bootloader

Downgrade prevention needs a counter that only goes up and survives erasing the slots. MCUboot
keeps it in platform storage behind boot_nv_security_counter_get/update (OTP or a protected NV
area); here it lives in the last NV_AREA bytes of the mcuboot partition, which no slot operation
touches and which erasing would also erase the bootloader (as a real NV area inside the
bootloader's protected region). It is a log of records - u32 value, u32 its complement, padded to
the write unit - each update programming the next record, so a torn update reads as the old value.
"""

import hashlib
import struct
from dataclasses import dataclass

from cryptography.hazmat.primitives import serialization

from rig.errors import RigError
from rig.image.keys import PublicKey
from rig.image.layouts import Layout
from rig.sim.flash import Flash
from rig.sim.stm32.parts import PARTS

MAGIC = b"RIGVMCUB"
FORMAT = 1
BLOB_OFFSET = 0x100
HEAD = struct.Struct("<8sHHI")
NV_AREA = 4096
RECORD = struct.Struct("<II")


@dataclass(frozen=True)
class Bootloader:
    keys: tuple[PublicKey, ...]


def build(layout: Layout, keys: list[PublicKey]) -> bytes:
    """The bootloader binary for the mcuboot partition of `layout`, trusting `keys`."""
    if not keys:
        raise RigError("virtual MCUboot: give at least one public key, or the bootloader trusts no image")
    part = PARTS[layout.variant]
    ram_start, ram_size = part.ram[1] if len(part.ram) > 1 else part.ram[0]
    base = layout.geometry.base + layout.part("mcuboot").offset
    vectors = struct.pack("<II", ram_start + ram_size, base + BLOB_OFFSET + 1)
    records = b"".join(struct.pack("<H", len(der)) + der for der in (_spki(k) for k in keys))
    body = HEAD.pack(MAGIC, FORMAT, len(keys), len(records)) + records
    blob = vectors + bytes(BLOB_OFFSET - len(vectors)) + body + hashlib.sha256(body).digest()
    if len(blob) > layout.part("mcuboot").size - NV_AREA:
        raise RigError(f"virtual MCUboot: {len(keys)} keys do not fit the mcuboot partition; use fewer")
    return blob


def _spki(key: PublicKey) -> bytes:
    return key.key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def read(flash: Flash, layout: Layout) -> Bootloader | None:
    """The bootloader in the mcuboot partition, or None if there is none (or it is damaged)."""
    start = layout.part("mcuboot").offset + BLOB_OFFSET
    magic, fmt, count, length = HEAD.unpack(flash.read(start, HEAD.size))
    if magic != MAGIC or fmt != FORMAT or length > layout.part("mcuboot").size - NV_AREA:
        return None
    body = flash.read(start, HEAD.size + length)
    if flash.read(start + len(body), 32) != hashlib.sha256(body).digest():
        return None
    keys, off = [], HEAD.size
    for _ in range(count):
        (n,) = struct.unpack_from("<H", body, off)
        key = serialization.load_der_public_key(body[off + 2 : off + 2 + n])
        keys.append(PublicKey.of(key, "virtual MCUboot"))
        off += 2 + n
    return Bootloader(tuple(keys))


# -- the NV security counter
def _records(layout: Layout) -> tuple[int, int, int]:
    part, g = layout.part("mcuboot"), layout.geometry
    size = max(RECORD.size, g.write_size)
    return part.offset + part.size - NV_AREA, size, NV_AREA // size


def read_counter(flash: Flash, layout: Layout) -> int:
    """The stored security counter: the last intact record, 0 if none was ever written."""
    start, size, count = _records(layout)
    area = flash.read(start, size * count)
    value = 0
    for i in range(count):
        v, inv = RECORD.unpack_from(area, i * size)
        if v ^ inv == 0xFFFF_FFFF:
            value = v
    return value


def update_counter(flash: Flash, layout: Layout, value: int) -> bool:
    """Raise the stored counter to `value` (never lowers it); False when the NV area is full."""
    if value <= read_counter(flash, layout):
        return True
    start, size, count = _records(layout)
    for i in range(count):
        off = start + i * size
        if flash.is_erased(off, size):
            pad = bytes([layout.geometry.erased]) * (size - RECORD.size)
            flash.write(off, RECORD.pack(value, value ^ 0xFFFF_FFFF) + pad)
            return True
    return False
