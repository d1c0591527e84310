"""ESP32 flash encryption and NVS encryption formats, as espsecure and ESP-IDF's NVS tools make them.

Flash encryption (ESP32, not the XTS-AES of later chips): AES-256 with the eFuse BLOCK1 key
tweaked per 32-byte block of flash by FLASH_CRYPT_CONFIG. `encrypt`/`decrypt` are espsecure's
own `encrypt_flash_data`/`decrypt_flash_data`, so what rig writes is what
`espsecure encrypt-flash-data --keyfile KEY --address A` writes. Offsets and lengths are
multiples of 32 here.

NVS encryption: an NVS partition encrypted with XTS-AES-256 by two 32-byte keys (encryption and
tweak key) that live in the `nvs_keys` partition - 64 key bytes, their CRC32 (seed 0xFFFFFFFF),
0xFF to the end of its 4 KiB - which is itself flash-encrypted (flagged `encrypted`).
"""

import io
import os
import struct
import zlib

NVS_KEYS_SIZE = 4096
RELEASE_CONFIG = 0xF  # FLASH_CRYPT_CONFIG: every key bit tweaked, what ESP-IDF burns


def _espsecure(operation, key: bytes, offset: int, data: bytes, config: int) -> bytes:
    out = io.BytesIO()
    operation(io.BytesIO(key), out, offset, config, False, io.BytesIO(data))
    return out.getvalue()


def encrypt(key: bytes, offset: int, data: bytes, config: int = RELEASE_CONFIG) -> bytes:
    """`data` as it must sit in flash at `offset` for the chip to read it back as `data`."""
    import espsecure

    return _espsecure(espsecure.encrypt_flash_data, key, offset, data, config)


def decrypt(key: bytes, offset: int, data: bytes, config: int = RELEASE_CONFIG) -> bytes:
    import espsecure

    return _espsecure(espsecure.decrypt_flash_data, key, offset, data, config)


def new_key() -> bytes:
    """A flash encryption key (32 bytes) or, twice over, NVS keys: from the OS's CSPRNG."""
    return os.urandom(32)


def nvs_keys_image(keys: bytes) -> bytes:
    """The nvs_keys partition's plaintext for 64 bytes of NVS keys (encryption key, tweak key)."""
    if len(keys) != 64:
        raise ValueError("NVS encryption takes 64 bytes of keys")
    image = keys + struct.pack("<I", zlib.crc32(keys, 0xFFFFFFFF))
    return image + b"\xff" * (NVS_KEYS_SIZE - len(image))
