"""The STM32 key area: a device's identity as the station writes it into the `identity` partition.

The format is documented in docs/provisioning.md ("STM32 key area"); this module is its one
encoder and decoder, so the station, tests and tools read back exactly what was written:

    0x00  8 B   magic b"RIGKEYAR"
    0x08  u16   format version (1)
    0x0A  u16   number of records
    0x0C  u32   bytes of records that follow
    0x10  per record: u16 tag, u16 length, value, zero bytes up to a multiple of 4
    then  32 B  SHA-256 of [0x00, end of records)
    then  the part's erased value up to a multiple of its flash write unit

Little-endian throughout. The SHA-256 tells a torn write from a whole one, and an erased partition
(0xFF on the H7, 0x00 on the L0) never decodes.
"""

import hashlib
import struct
from dataclasses import dataclass, field

from rig.errors import RigError
from rig.image.layouts import Geometry

MAGIC = b"RIGKEYAR"
VERSION = 1
HEAD = struct.Struct("<8sHHI")
RECORD = struct.Struct("<HH")
DIGEST = 32

SERIAL, DEVICE_KEY, DEVICE_CERT, CA_CERT, FIRMWARE_KEY = 1, 2, 3, 4, 5
TAG_NAMES = {SERIAL: "serial", DEVICE_KEY: "device_key", DEVICE_CERT: "device_cert", CA_CERT: "ca_cert",
             FIRMWARE_KEY: "firmware_key"}


@dataclass(frozen=True)
class KeyArea:
    serial: str
    device_key: bytes = field(repr=False)  # P-256 private scalar, 32 bytes big-endian: never printed
    device_cert: bytes  # X.509 DER
    ca_cert: bytes  # X.509 DER
    firmware_key: bytes  # DER SubjectPublicKeyInfo of the firmware-signing key


def encode(area: KeyArea, geometry: Geometry) -> bytes:
    """The bytes to program at the start of the identity partition of a part with `geometry`."""
    if len(area.device_key) != 32:
        raise RigError(f"key area: the device key must be a 32-byte P-256 scalar, not {len(area.device_key)} bytes")
    values = {SERIAL: area.serial.encode(), DEVICE_KEY: area.device_key, DEVICE_CERT: area.device_cert,
              CA_CERT: area.ca_cert, FIRMWARE_KEY: area.firmware_key}
    records = bytearray()
    for tag, value in values.items():
        if len(value) > 0xFFFF:
            raise RigError(f"key area: {TAG_NAMES[tag]} of {len(value)} bytes exceeds a record's 65535")
        records += RECORD.pack(tag, len(value)) + value + bytes(-len(value) % 4)
    body = HEAD.pack(MAGIC, VERSION, len(values), len(records)) + records
    data = body + hashlib.sha256(body).digest()
    return data + bytes([geometry.erased]) * (-len(data) % geometry.write_size)


def decode(data: bytes) -> KeyArea:
    """The key area at the start of `data` (e.g. the whole identity partition read back).

    RigError when there is none: erased, torn, damaged or of an unknown version."""
    data = bytes(data)
    if len(data) < HEAD.size + DIGEST:
        raise RigError(f"key area: {len(data)} bytes are too few for a header and its SHA-256")
    magic, version, count, length = HEAD.unpack_from(data)
    if magic != MAGIC:
        raise RigError("no key area: the identity partition is erased or holds something else; provision the unit")
    if version != VERSION:
        raise RigError(f"key area format version {version}: this reader knows version {VERSION}; update rig")
    end = HEAD.size + length
    if end + DIGEST > len(data):
        raise RigError(f"key area claims {length} bytes of records, more than the {len(data)} bytes given")
    if data[end : end + DIGEST] != hashlib.sha256(data[:end]).digest():
        raise RigError("key area damaged: its SHA-256 does not match (a torn write?); provision the unit again")
    found: dict[int, bytes] = {}
    off = HEAD.size
    for _ in range(count):
        if off + RECORD.size > end:
            raise RigError("key area damaged: a record runs past the records' length")
        tag, size = RECORD.unpack_from(data, off)
        value = data[off + RECORD.size : off + RECORD.size + size]
        off += RECORD.size + size + (-size % 4)
        if off > end:
            raise RigError("key area damaged: a record runs past the records' length")
        if tag in TAG_NAMES:  # a tag this reader does not know is skipped (docs/provisioning.md)
            if tag in found:
                raise RigError(f"key area damaged: {TAG_NAMES[tag]} appears twice")
            found[tag] = value
    missing = [name for tag, name in TAG_NAMES.items() if tag not in found]
    if missing:
        raise RigError(f"key area incomplete: no {', '.join(missing)}")
    if len(found[DEVICE_KEY]) != 32:
        raise RigError(f"key area damaged: the device key has {len(found[DEVICE_KEY])} bytes, not 32")
    return KeyArea(found[SERIAL].decode(errors="replace"), found[DEVICE_KEY], found[DEVICE_CERT],
                   found[CA_CERT], found[FIRMWARE_KEY])
