"""rig's app descriptor: what a firmware binary says about itself, at a fixed offset.

The reference firmware (firmware/) and the ESP32 image builder embed it; virtual boards read it
from the flashed bytes to behave as that binary would on silicon. 32 bytes, little-endian:

    off size field
    0   4    magic        b"RIGD"
    4   1    format       1
    5   1    variant      1 esp32, 2 stm32h7, 3 stm32l0
    6   1    fault        0 none, 1 crash-on-boot, 2 hang, 3 no-confirm, 4 fail-health
    7   1    reserved     0
    8   1    major
    9   1    minor
    10  2    revision
    12  4    build
    16  16   name         NUL-padded ASCII, e.g. b"rig-ref"

The variant codes and offsets are rig.variants' appdesc_code and appdesc_offset.
Offsets: STM32 - 0x400 from the start of the application binary (after the vector table, which
is 0x298 bytes on the STM32H743 and 0xC0 on the STM32L073); in a signed MCUboot image add the
header size. ESP32 - 0x120 from the start of the app image: right after the image header (0x18),
the first segment header (0x8) and esp_app_desc_t (0x100).
"""

import struct
from dataclasses import dataclass

from rig.errors import RigError
from rig.variants import by_appdesc_code, facts

MAGIC = b"RIGD"
FORMAT = 1
SIZE = 32
FAULTS = ("none", "crash-on-boot", "hang", "no-confirm", "fail-health")
_STRUCT = struct.Struct("<4sBBBBBBHI16s")


@dataclass(frozen=True)
class AppDescriptor:
    variant: str
    version: tuple[int, int, int, int]  # major, minor, revision, build
    fault: str = "none"
    name: str = "rig-ref"

    def pack(self) -> bytes:
        major, minor, revision, build = self.version
        return _STRUCT.pack(MAGIC, FORMAT, facts(self.variant).appdesc_code, FAULTS.index(self.fault), 0,
                            major, minor, revision, build, self.name.encode("ascii"))

    @property
    def version_str(self) -> str:
        major, minor, revision, build = self.version
        return f"{major}.{minor}.{revision}+{build}"


def parse(data: bytes) -> AppDescriptor:
    """Parse 32 descriptor bytes; raise RigError with one line if they are not a descriptor."""
    if len(data) < SIZE:
        raise RigError(f"app descriptor: {len(data)} bytes, need {SIZE}")
    magic, fmt, variant, fault, _, major, minor, revision, build, name = _STRUCT.unpack_from(data)
    if magic != MAGIC:
        raise RigError(f"app descriptor: bad magic {magic!r}, expected {MAGIC!r}")
    if fmt != FORMAT:
        raise RigError(f"app descriptor: format {fmt} unknown (this rig reads format {FORMAT})")
    known = by_appdesc_code(variant)
    if known is None or fault >= len(FAULTS):
        raise RigError(f"app descriptor: variant code {variant} or fault code {fault} unknown")
    return AppDescriptor(known.name, (major, minor, revision, build), FAULTS[fault],
                         name.rstrip(b"\0").decode("ascii", "replace"))


def find(image: bytes, variant: str, header_size: int = 0) -> AppDescriptor:
    """The descriptor of an application binary (header_size > 0 for a signed MCUboot image)."""
    off = header_size + facts(variant).appdesc_offset
    return parse(image[off : off + SIZE])
