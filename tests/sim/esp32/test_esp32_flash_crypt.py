"""The virtual ESP32's flash encryption, set up with espefuse and fed with `espsecure encrypt-flash-data`.

As on a production line in release mode: the key burnt into BLOCK1 (read- and write-protected by
espefuse), FLASH_CRYPT_CONFIG 0xF, FLASH_CRYPT_CNT odd, download-mode encryption, decryption and
cache disabled; the bootloader, partition table and app written encrypted by espsecure beforehand.
The chip boots them; esptool reads back the ciphertext, never the plaintext; a plaintext image
written to such a chip does not boot.
"""

import os

import pytest
from esp32_harness import esptool, run_tool
from test_esp32_bootloader import DONE, OTADATA, SLOT, loaded_from, ota, table

from rig.image import esp_partitions
from rig.image.esp_app import app_image
from rig.image.otadata import State

RELEASE_MODE = ("FLASH_CRYPT_CONFIG", "0xF", "FLASH_CRYPT_CNT", "1", "DISABLE_DL_ENCRYPT", "1",
                "DISABLE_DL_DECRYPT", "1", "DISABLE_DL_CACHE", "1")


@pytest.fixture
def encrypted_chip(esp32, tmp_path):
    """The chip with flash encryption enabled as release mode leaves it; the key file's path."""
    key = tmp_path / "flash-key.bin"
    key.write_bytes(os.urandom(32))
    esp32.boot(download=True)
    espefuse = ("espefuse", "--port", esp32.port, "--before", "no-reset", "--do-not-confirm")
    run_tool(*espefuse, "burn-key", "flash_encryption", str(key))
    run_tool(*espefuse, "burn-efuse", *RELEASE_MODE)
    summary = run_tool(*espefuse, "summary").stdout
    assert key.read_bytes().hex() not in summary.replace(" ", "")  # BLOCK1 reads back as zeros
    return key


def encrypted(tmp_path, key, offset: int, data: bytes) -> bytes:
    plain, out = tmp_path / f"plain-{offset:x}.bin", tmp_path / f"enc-{offset:x}.bin"
    plain.write_bytes(data + b"\xff" * (-len(data) % 32))
    run_tool("espsecure", "encrypt-flash-data", "--keyfile", str(key), "--address", hex(offset), "--output",
             str(out), str(plain))
    return out.read_bytes()


def flash_and_boot(esp32, tmp_path, contents: dict[int, bytes]) -> str:
    esp32.power_cycle(download=True)
    args = []
    for offset, data in sorted(contents.items()):
        path = tmp_path / f"w-{offset:x}.bin"
        path.write_bytes(data)
        args += [hex(offset), str(path)]
    esptool(esp32.port, "write-flash", "--force", *args)  # esptool cannot tell ciphertext: it asks for --force
    esp32.power_cycle(download=False)
    return esp32.wait_for(*DONE)


def test_an_encrypted_chip_boots_what_espsecure_encrypted_and_esptool_reads_ciphertext(esp32, tmp_path,
                                                                                     encrypted_chip):
    key = encrypted_chip
    app = app_image("1.0.0")
    parts = {**{offset: encrypted(tmp_path, key, offset, data) for offset, data in table().items()},
             OTADATA: ota((1, State.VALID), None),  # otadata stays plaintext, as on silicon
             SLOT[0]: encrypted(tmp_path, key, SLOT[0], app)}
    log = flash_and_boot(esp32, tmp_path, parts)
    assert "boot: Partition Table:" in log and loaded_from(log) == 0

    esp32.power_cycle(download=True)
    esptool(esp32.port, "read-flash", hex(SLOT[0]), hex(len(app)), str(tmp_path / "back.bin"))
    back = (tmp_path / "back.bin").read_bytes()
    assert back == parts[SLOT[0]][: len(app)] and app[:64] not in back
    esptool(esp32.port, "read-flash", hex(esp_partitions.OFFSET), "0x1000", str(tmp_path / "table.bin"))
    assert (tmp_path / "table.bin").read_bytes()[:2] != esp_partitions.MAGIC  # the table is ciphertext too


def test_an_encrypted_chip_does_not_boot_plaintext(esp32, tmp_path, encrypted_chip):
    """The defect this model catches: a station that forgets to encrypt what it writes."""
    log = flash_and_boot(esp32, tmp_path, {**table(), SLOT[0]: app_image("1.0.0")})
    assert "invalid header" in log and loaded_from(log) is None


def test_without_flash_encryption_the_same_ciphertext_does_not_boot(esp32, tmp_path):
    key = tmp_path / "k.bin"
    key.write_bytes(os.urandom(32))
    log = flash_and_boot(esp32, tmp_path, {o: encrypted(tmp_path, key, o, d) for o, d in table().items()})
    assert "invalid header" in log
