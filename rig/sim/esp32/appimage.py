"""Verifying an ESP-IDF app image in flash, as the bootloader's esp_image_format.c does.

Image layout (esptool bin_image.py, ESP-IDF esp_app_format.h): a 24-byte header (magic 0xE9,
segment count, SPI mode, speed/size, entry address, then the extended header: WP pin, drive
strengths, chip id u16 @12, min_chip_rev u8 @14, min/max_chip_rev_full u16 @15/@17, hash_appended
u8 @23); segments of `{u32 load_addr; u32 data_len}` + data; zero padding to 16 bytes whose last
byte is the XOR checksum of all segment data (seeded 0xEF); optionally a SHA-256 of everything
before it. The first segment starts with esp_app_desc_t (magic 0xABCD5432, secure_version @4).

`load` prints what esp_image_load prints (segment lines, or the one error that made it give up)
and returns the image bytes, or None when the image must not boot.
"""

import hashlib
import struct

from rig.sim.flash import Flash

MAGIC = 0xE9
HEADER = struct.Struct("<BBBBI")
HEADER_LEN = 24  # header + extended header
SEGMENT = struct.Struct("<II")
MAX_SEGMENTS = 16
CHECKSUM_SEED = 0xEF
HASH_LEN = 32
SIXTEEN_MB = 0x1000000
MMU_PAGE = 0x10000  # flash-mapped segments keep their offset within a 64 KiB MMU page
ESP32_CHIP_ID = 0

APP_DESC_OFFSET = HEADER_LEN + SEGMENT.size  # esp_app_desc_t is the first segment's first bytes
APP_DESC_MAGIC = 0xABCD5432

IROM = (0x400D0000, 0x40400000)
DROM = (0x3F400000, 0x3F800000)
TAG = "esp_image"


def _mapped(addr: int) -> bool:
    return IROM[0] <= addr < IROM[1] or DROM[0] <= addr < DROM[1]


def _loaded(addr: int) -> bool:
    return not _mapped(addr) and addr >= 0x10000000


def secure_version(flash: Flash, offset: int) -> int | None:
    """bootloader_common_get_partition_description(): the app's secure_version, or None when the
    partition holds no app description (empty or foreign data)."""
    magic, version = struct.unpack("<II", flash.read(offset + APP_DESC_OFFSET, 8))
    return version if magic == APP_DESC_MAGIC else None


def load(flash: Flash, offset: int, part_size: int, chip_rev: int, log, verify: bool = True) -> bytes | None:
    """esp_image_load(ESP_IMAGE_LOAD) of the image at `offset` in a partition of `part_size`;
    verify=False is ESP_IMAGE_LOAD_NO_VALIDATE (headers and segments read, checksum and hash not)."""
    end = offset + part_size

    def read(addr: int, length: int) -> bytes | None:
        return flash.read(addr, length) if addr + length <= end else None

    header = read(offset, HEADER_LEN)
    if header is None:
        log.error(TAG, f"image at 0x{offset:x} does not fit its partition")
        return None
    magic, count, _mode, _speed_size, _entry = HEADER.unpack_from(header)
    if magic != MAGIC:
        log.error(TAG, f"image at 0x{offset:x} has invalid magic byte (nothing flashed here?)")
        return None
    chip_id, min_rev_full = struct.unpack_from("<H", header, 12)[0], struct.unpack_from("<H", header, 15)[0]
    if chip_id != ESP32_CHIP_ID:
        log.error("boot_comm", f"mismatch chip ID, expected {ESP32_CHIP_ID}, found {chip_id}")
        return None
    if chip_rev < min_rev_full:
        log.error("boot_comm", f"Image requires chip rev >= v{min_rev_full // 100}.{min_rev_full % 100}, "
                               f"but chip is v{chip_rev // 100}.{chip_rev % 100}")
        return None
    if count > MAX_SEGMENTS:
        log.error(TAG, f"image at 0x{offset:x} segment count {count} exceeds max {MAX_SEGMENTS}")
        return None

    checksum = CHECKSUM_SEED
    pos = offset + HEADER_LEN
    for index in range(count):
        raw = read(pos, SEGMENT.size)
        if raw is None:
            log.error(TAG, f"Image length {pos + SEGMENT.size - offset} doesn't fit in partition length {part_size}")
            return None
        load_addr, length = SEGMENT.unpack(raw)
        data_addr = pos + SEGMENT.size
        if length % 4 or length >= SIXTEEN_MB:
            log.error(TAG, f"invalid segment length 0x{length:x}")
            return None
        if _mapped(load_addr) and data_addr % MMU_PAGE != load_addr % MMU_PAGE:
            log.error(TAG, f"Segment {index} load address 0x{load_addr:08x}, doesn't match data 0x{data_addr:08x}")
            return None
        data = read(data_addr, length)
        if data is None:
            log.error(TAG, f"Image length {data_addr + length - offset} doesn't fit in partition length {part_size}")
            return None
        kind = "load" if _loaded(load_addr) else "map" if _mapped(load_addr) else ""
        log.info(TAG, f"segment {index}: paddr={data_addr:08x} vaddr={load_addr:08x} "
                      f"size={length:05x}h ({length:6d}) {kind}")
        for byte in data:
            checksum ^= byte
        pos = data_addr + length

    padded = (pos - offset + 1 + 15) & ~15
    tail = read(pos, offset + padded - pos)
    if tail is None:
        log.error(TAG, f"Image length {padded} doesn't fit in partition length {part_size}")
        return None
    if verify and tail[-1] != checksum:
        log.error(TAG, f"Checksum failed. Calculated 0x{checksum:x} read 0x{tail[-1]:x}")
        return None
    length = padded
    if header[23] == 1:
        digest = read(offset + padded, HASH_LEN)
        if verify and (digest is None or hashlib.sha256(flash.read(offset, padded)).digest() != digest):
            log.error(TAG, "Image hash failed - image is corrupt")
            return None
        length += HASH_LEN
    return flash.read(offset, length)
