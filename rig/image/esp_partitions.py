"""ESP-IDF partition table: the binary the second-stage bootloader reads at 0x8000.

Byte format (ESP-IDF `components/partition_table/gen_esp32part.py`, `esp_flash_partitions.h`):
32-byte little-endian rows `<2sBBLL16sL>` = magic `AA 50`, type, subtype, offset, size, name
(NUL-padded), flags; then one MD5 row `EB EB` + 14 x `FF` + MD5 of every entry row before it;
then `FF` up to 0xC00 bytes (the table's maximum length). An all-`FF` row ends the table.

The table is generated from the esp32 layout in rig.image.layouts, so flash addresses live in one
place; this module only adds what a partition table says beyond geometry: type and subtype.
"""

import hashlib
import struct
from dataclasses import dataclass

from rig.errors import RigError
from rig.image.layouts import LAYOUTS, Layout
from rig.variants import Bootloader, facts

OFFSET = 0x8000  # where the bootloader looks for the table (CONFIG_PARTITION_TABLE_OFFSET default)
MAX_LENGTH = 0xC00  # ESP_PARTITION_TABLE_MAX_LEN: the bootloader reads at most this much
ROW = struct.Struct("<2sBBLL16sL")
MAGIC = b"\xaa\x50"
MD5_MAGIC = b"\xeb\xeb" + b"\xff" * 14
END_ROW = b"\xff" * ROW.size
APP_ALIGN = 0x10000  # app partitions are mapped through the 64 KiB MMU pages

TYPE_APP, TYPE_DATA = 0x00, 0x01
SUBTYPE_OTA_0 = 0x10
FLAG_ENCRYPTED, FLAG_READONLY = 0x01, 0x02

# Layout partitions that are not rows of the table (the bootloader finds both at fixed offsets).
_NOT_IN_TABLE = ("bootloader", "partition_table")
# What each named layout partition is to ESP-IDF. `identity` holds per-device keys and
# certificates written by the provisioning station in NVS format, so it is an nvs partition that
# the app opens by name (nvs_flash_init_partition("identity")).
_KINDS = {
    "nvs": (TYPE_DATA, 0x02),
    "otadata": (TYPE_DATA, 0x00),
    "phy_init": (TYPE_DATA, 0x01),
    "factory": (TYPE_APP, 0x00),
    "identity": (TYPE_DATA, 0x02),
    "nvs_keys": (TYPE_DATA, 0x04),  # the identity's NVS encryption keys (rig.image.flash_crypt)
    **{f"ota_{n}": (TYPE_APP, SUBTYPE_OTA_0 + n) for n in range(16)},
}


# ESP-IDF requires the nvs_keys partition to be flash-encrypted (NVS encryption's keys would be
# plaintext otherwise).
_FLAGS = {"nvs_keys": FLAG_ENCRYPTED}


@dataclass(frozen=True)
class Entry:
    name: str
    type: int
    subtype: int
    offset: int
    size: int
    flags: int = 0

    def pack(self) -> bytes:
        return ROW.pack(MAGIC, self.type, self.subtype, self.offset, self.size,
                        self.name.encode("ascii"), self.flags)


def from_layout(layout: Layout | str | None = None) -> tuple[Entry, ...]:
    """The table rows of an esp32 layout (default: the esp32 default layout), in flash order."""
    layout = _resolve(layout)
    if facts(layout.variant).bootloader is not Bootloader.ESP_IDF:
        raise RigError(f"layout {layout.name} is for {layout.variant}; a partition table needs an esp32 layout")
    rows = []
    for p in layout.partitions:
        if p.name in _NOT_IN_TABLE:
            continue
        if p.name not in _KINDS:
            raise RigError(f"layout {layout.name}: partition {p.name!r} has no ESP-IDF type; "
                           "add it to rig.image.esp_partitions._KINDS")
        rows.append(Entry(p.name, *_KINDS[p.name], p.offset, p.size, _FLAGS.get(p.name, 0)))
    return tuple(sorted(rows, key=lambda e: e.offset))


def pack(entries: tuple[Entry, ...] | list[Entry], flash_size: int | None = None) -> bytes:
    """The 0xC00-byte table binary for `entries` (checked first, as gen_esp32part.py does)."""
    check(entries, flash_size)
    rows = b"".join(e.pack() for e in entries)
    table = rows + MD5_MAGIC + hashlib.md5(rows).digest()
    if len(table) > MAX_LENGTH:
        raise RigError(f"partition table: {len(entries)} entries take {len(table)} bytes, "
                       f"the bootloader reads at most {MAX_LENGTH}; remove partitions")
    return table + b"\xff" * (MAX_LENGTH - len(table))


def build(layout: Layout | str | None = None) -> bytes:
    """The table binary of an esp32 layout, ready to flash at OFFSET."""
    layout = _resolve(layout)
    return pack(from_layout(layout), layout.geometry.size)


def _resolve(layout: Layout | str | None) -> Layout:
    if isinstance(layout, Layout):
        return layout
    name = layout or facts("esp32").default_layout
    if name not in LAYOUTS:
        raise RigError(f"no flash layout {name!r}; known: {', '.join(sorted(LAYOUTS))}")
    return LAYOUTS[name]


def parse(data: bytes, flash_size: int | None = None) -> tuple[Entry, ...]:
    """Rows of a table binary; one-line RigError for anything the bootloader would refuse."""
    if len(data) < ROW.size:
        raise RigError(f"partition table: {len(data)} bytes is shorter than one {ROW.size}-byte row")
    entries: list[Entry] = []
    md5_seen = False
    for pos in range(0, min(len(data), MAX_LENGTH) - ROW.size + 1, ROW.size):
        row = bytes(data[pos : pos + ROW.size])
        if row == END_ROW:
            if not md5_seen:
                raise RigError("partition table: no MD5 row before the end of the table; "
                               "regenerate it (rig writes tables with MD5, as ESP-IDF does by default)")
            check(entries, flash_size)
            return tuple(entries)
        if md5_seen:
            raise RigError(f"partition table: row at +0x{pos:x} follows the MD5 row; the table ends there")
        if row[:16] == MD5_MAGIC:
            if row[16:] != hashlib.md5(data[:pos]).digest():
                raise RigError(f"partition table: MD5 row at +0x{pos:x} does not match the entries "
                               "(corrupted or edited table); regenerate it")
            md5_seen = True
            continue
        magic, ptype, subtype, offset, size, name, flags = ROW.unpack(row)
        if magic != MAGIC:
            raise RigError(f"partition table: row at +0x{pos:x} has magic {magic.hex()}, "
                           f"expected {MAGIC.hex()} (is this a partition table at 0x{OFFSET:x}?)")
        entries.append(Entry(_name(name, pos), ptype, subtype, offset, size, flags))
    raise RigError(f"partition table: no end-of-table row within {MAX_LENGTH} bytes")


def _name(raw: bytes, pos: int) -> str:
    text = raw.split(b"\0", 1)[0]
    try:
        return text.decode("ascii")
    except UnicodeDecodeError:
        raise RigError(f"partition table: row at +0x{pos:x} has a non-ASCII name {text!r}") from None


def check(entries, flash_size: int | None = None) -> None:
    """The rules gen_esp32part.py enforces: names, alignment, bounds, no overlaps, one otadata."""
    names = set()
    for e in entries:
        if not e.name or len(e.name.encode("ascii", "replace")) > 16 or not e.name.isascii():
            raise RigError(f"partition table: name {e.name!r} must be 1-16 ASCII characters")
        if e.name in names:
            raise RigError(f"partition table: two partitions are named {e.name!r}")
        names.add(e.name)
        if not (0 <= e.type <= 0xFE and 0 <= e.subtype <= 0xFE and 0 <= e.flags <= 0xFFFFFFFF):
            raise RigError(f"partition table: {e.name}: type/subtype/flags out of range")
        align = APP_ALIGN if e.type == TYPE_APP else 0x1000
        if e.offset % align or e.size % 0x1000 or e.size == 0:
            raise RigError(f"partition table: {e.name} at 0x{e.offset:x} size 0x{e.size:x} is not aligned "
                           f"(offset to 0x{align:x}, size to 0x1000)")
        if e.offset < OFFSET + 0x1000:
            raise RigError(f"partition table: {e.name} at 0x{e.offset:x} overlaps the bootloader or the table")
        if flash_size is not None and e.offset + e.size > flash_size:
            raise RigError(f"partition table: {e.name} ends at 0x{e.offset + e.size:x}, "
                           f"past the 0x{flash_size:x}-byte flash")
    ordered = sorted(entries, key=lambda e: e.offset)
    for a, b in zip(ordered, ordered[1:], strict=False):
        if a.offset + a.size > b.offset:
            raise RigError(f"partition table: {a.name} (0x{a.offset:x}+0x{a.size:x}) "
                           f"overlaps {b.name} at 0x{b.offset:x}")
    otadata = [e for e in entries if (e.type, e.subtype) == _KINDS["otadata"]]
    if len(otadata) > 1:
        raise RigError("partition table: more than one otadata partition")
    if otadata and otadata[0].size != 0x2000:
        raise RigError(f"partition table: otadata is 0x{otadata[0].size:x} bytes; it must be 0x2000 (two sectors)")


def ota_slots(entries) -> tuple[Entry, ...]:
    """The OTA app partitions in slot order (ota_0, ota_1, ...): slot N is ota_slots(...)[N]."""
    return tuple(sorted((e for e in entries if e.type == TYPE_APP and SUBTYPE_OTA_0 <= e.subtype < 0x20),
                        key=lambda e: e.subtype))


def find(entries, name: str) -> Entry:
    for e in entries:
        if e.name == name:
            return e
    raise RigError(f"partition table has no partition {name!r}; it has {', '.join(e.name for e in entries)}")
