"""ESP32 flash encryption as the chip's bootloader and app see the flash, and esptool does not.

With an odd number of FLASH_CRYPT_CNT bits burnt, the ESP32's flash cache decrypts what the
bootloader and app read from the encrypted regions - the bootloader, the partition table, every
app partition and every partition flagged `encrypted` (nvs_keys) - and spi_flash_write_encrypted
encrypts what they write there (ESP32 TRM, "Flash Encryption/Decryption"; ESP-IDF's flash
encryption guide). The cipher is AES-256 with the key in eFuse BLOCK1, tweaked per 32-byte block
of flash by FLASH_CRYPT_CONFIG; the hardware reads BLOCK1 over its own path, so the key stays
usable once BLOCK1 is read-protected (rig.sim.esp32.efuse keeps what that path reads).

The ROM loader (download mode) is not behind this: it reads and writes the flash cells as they
are - with DISABLE_DL_ENCRYPT/DISABLE_DL_DECRYPT burnt, as release mode burns them, it cannot do
otherwise - so `esptool read-flash` returns ciphertext and a host writes images encrypted
beforehand. The cipher here is espsecure's own (`encrypt_flash_data`/`decrypt_flash_data`), so
the model and `espsecure encrypt-flash-data` agree byte for byte (rig.image.flash_crypt).

Other data partitions (otadata, nvs, the identity NVS) and the gaps stay plaintext, as on silicon.
"""

from rig.errors import RigError
from rig.image import esp_partitions
from rig.image.flash_crypt import decrypt, encrypt
from rig.sim.esp32.efuse import Efuses

BLOCK = 32  # the tweak changes every 32 bytes: reads and writes are done in whole blocks
# Encrypted whatever the partition table says: the bootloader (0x1000 up to the table) and the table.
FIXED = ((0x1000, esp_partitions.OFFSET), (esp_partitions.OFFSET, esp_partitions.OFFSET + esp_partitions.MAX_LENGTH))


class EncryptedFlash:
    """The flash through the cache: read/write/erase of the raw flash, with the encrypted regions
    decrypted on read and encrypted on write. Offsets and sizes as for rig.sim.flash.Flash."""

    def __init__(self, flash, key: bytes, config: int):
        self._flash = flash
        self._key = key
        self._config = config
        self.geometry = flash.geometry
        self._regions: list[tuple[int, int]] = list(FIXED)
        try:
            table = esp_partitions.parse(self.read(esp_partitions.OFFSET, esp_partitions.MAX_LENGTH),
                                         flash.geometry.size)
        except RigError:
            return  # no table: the bootloader finds none and says so
        self._regions += [(e.offset, e.offset + e.size) for e in table
                          if e.type == esp_partitions.TYPE_APP or e.flags & esp_partitions.FLAG_ENCRYPTED]

    def _crypted(self, offset: int, length: int) -> bool:
        return any(start <= offset < end for start, end in self._regions) and length > 0

    def read(self, offset: int, length: int) -> bytes:
        if not self._crypted(offset, length):
            return self._flash.read(offset, length)
        start, end = offset - offset % BLOCK, offset + length + (-(offset + length) % BLOCK)
        plain = decrypt(self._key, start, self._flash.read(start, end - start), self._config)
        return plain[offset - start : offset - start + length]

    def write(self, offset: int, data: bytes) -> None:
        if not self._crypted(offset, len(data)):
            self._flash.write(offset, data)
            return
        if offset % BLOCK:
            raise RigError(f"encrypted write at 0x{offset:x}: not aligned to {BLOCK} bytes")
        # The cache encrypts whole blocks; a short tail is padded with 0xFF, as esp_ota_write pads its last one.
        data = bytes(data) + b"\xff" * (-len(data) % BLOCK)
        self._flash.write(offset, encrypt(self._key, offset, data, self._config))

    def erase(self, offset: int, length: int) -> None:
        self._flash.erase(offset, length)

    @property
    def raw(self):
        """The flash cells without the cache: what esp_partition_write_raw / a plain SPI write reaches."""
        return self._flash


def flash_of(ctx):
    """The flash as the bootloader and app of this boot see it: behind flash encryption when the
    eFuses enable it, else the raw flash."""
    efuses = Efuses(ctx.state_dir, ctx.board_id)
    if not efuses.flash_encryption_enabled():
        return ctx.flash
    return EncryptedFlash(ctx.flash, efuses.flash_encryption_key(), efuses.flash_crypt_config())
