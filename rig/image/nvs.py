"""A reader of ESP-IDF NVS partitions (format version 2), written from ESP-IDF's documented layout
(nvs_flash: "NVS internals"), independently of Espressif's generator that makes them: what the
ESP32 app model's nvs_flash reads its identity with, and what the tests read one back with.

Page (4 KiB): header {state u32, seq u32, version u8, 19 reserved, crc32 u32 of bytes 4..28}, an
entry-state bitmap (2 bits per entry: 11 empty, 10 written, 00 erased), then 126 entries of 32
bytes: {namespace u8, type u8, span u8, chunk index u8, crc32 u32 of the entry without this field,
key char[16], data 8 bytes}. A string (or a blob's data chunk) keeps {size u16, reserved u16, crc32
u32 of the payload} in its data field and the payload in the span-1 entries after it; a blob's
index entry holds {size u32, chunk count u8, first chunk u8}. Namespaces are U8 entries of
namespace 0 whose value is the namespace's index.

NVS encryption (nvs_flash_secure_init; "NVS Encryption" in ESP-IDF's docs): each 32-byte entry is
XTS-AES-256 encrypted with the 64 bytes of NVS keys (encryption key, then tweak key), the tweak
being the entry's offset in the partition as a 16-byte little-endian number; page headers and
entry-state bitmaps stay plain. The keys come from the `nvs_keys` partition (rig.image.flash_crypt).
"""

import struct
import zlib

from rig.errors import RigError

PAGE = 4096
ENTRIES = 126
ACTIVE, FULL = 0xFFFFFFFE, 0xFFFFFFFC
VERSION2 = 0xFE
U8, STR, BLOB_DATA, BLOB_IDX = 0x01, 0x21, 0x42, 0x48
WRITTEN = 0b10
ENTRY = struct.Struct("<BBBBI16s8s")


def _crc(data: bytes) -> int:
    return zlib.crc32(data, 0xFFFFFFFF) & 0xFFFFFFFF


class NvsError(RigError):
    """The partition is not a readable NVS (a CRC, version or size is wrong)."""


def _entries(page: bytes):
    """(index, entry fields, payload bytes after the entry) of the written entries of one page."""
    bitmap = page[32:64]
    i = 0
    while i < ENTRIES:
        state = bitmap[i // 4] >> (i % 4) * 2 & 3
        raw = page[64 + 32 * i : 96 + 32 * i]
        if state != WRITTEN:
            i += 1
            continue
        ns, typ, span, chunk, crc, key, data = ENTRY.unpack(raw)
        if _crc(raw[:4] + raw[8:]) != crc:
            raise NvsError(f"entry {i}: header CRC mismatch")
        payload = page[96 + 32 * i : 64 + 32 * (i + span)]
        yield ns, typ, chunk, key.split(b"\0", 1)[0].decode(), data, payload
        i += max(span, 1)


def keys_from(partition: bytes) -> bytes:
    """The 64 bytes of NVS keys in an nvs_keys partition's plaintext (nvs_flash_read_security_cfg):
    NvsError when their CRC32 does not match (an erased or unreadable partition)."""
    keys, (crc,) = partition[:64], struct.unpack_from("<I", partition, 64)
    if zlib.crc32(keys, 0xFFFFFFFF) != crc:
        raise NvsError("nvs_keys: the keys' CRC does not match (no NVS keys, or read without flash decryption)")
    return keys


def decrypt(image: bytes, keys: bytes) -> bytes:
    """An encrypted NVS partition's image with its entries decrypted (headers and bitmaps as they are)."""
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    out = bytearray(image)
    for page in range(0, len(image) - len(image) % PAGE, PAGE):
        for at in range(page + 64, page + PAGE, 32):
            tweak = at.to_bytes(16, "little")
            out[at : at + 32] = Cipher(algorithms.AES(keys), modes.XTS(tweak)).decryptor().update(image[at : at + 32])
    return bytes(out)


def read(image: bytes, keys: bytes | None = None) -> dict[str, dict[str, bytes | str | int]]:
    """{namespace: {key: value}}: strings as str, blobs as bytes, U8 as int; with `keys`, of an
    encrypted partition."""
    if keys is not None:
        image = decrypt(image, keys)
    pages = []
    for offset in range(0, len(image), PAGE):
        page = image[offset : offset + PAGE]
        state, seq, version = struct.unpack_from("<IIB", page)
        if state not in (ACTIVE, FULL):
            continue
        if version != VERSION2:
            raise NvsError(f"page at 0x{offset:x}: format version 0x{version:02x}, expected 0x{VERSION2:02x}")
        if _crc(page[4:28]) != struct.unpack_from("<I", page, 28)[0]:
            raise NvsError(f"page at 0x{offset:x}: header CRC mismatch")
        pages.append((seq, page))
    names, values, chunks, blobs = {}, {}, {}, {}
    for _, page in sorted(pages):
        for ns, typ, chunk, key, data, payload in _entries(page):
            if ns == 0 and typ == U8:
                names[data[0]] = key
            elif typ == U8:
                values[ns, key] = data[0]
            elif typ in (STR, BLOB_DATA):
                size, _, crc = struct.unpack("<HHI", data)
                body = payload[:size]
                if _crc(body) != crc:
                    raise NvsError(f"{key}: data CRC mismatch")
                if typ == STR:
                    values[ns, key] = body.rstrip(b"\0").decode()
                else:
                    chunks[ns, key, chunk] = body
            elif typ == BLOB_IDX:
                blobs[ns, key] = struct.unpack("<IBB", data[:6])
    for (ns, key), (size, count, start) in blobs.items():
        value = b"".join(chunks[ns, key, start + n] for n in range(count))
        if len(value) != size:
            raise NvsError(f"{key}: blob of {len(value)} bytes, its index says {size}")
        values[ns, key] = value
    out: dict = {}
    for (ns, key), value in values.items():
        out.setdefault(names[ns], {})[key] = value
    return out
