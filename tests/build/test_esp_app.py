"""ESP32 images: esptool's own `image-info` accepts them; our parser checks and reports them."""

import subprocess
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rig.errors import RigError
from rig.image import esp_app

ESPTOOL = [sys.executable, "-m", "esptool", "--chip", "esp32", "image-info"]


def test_esptool_image_info_accepts_the_app(built):
    out, _, _ = built
    proc = subprocess.run([*ESPTOOL, str(out / "rig-esp32-none.bin")], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    text = proc.stdout
    assert "Checksum:" in text and "(valid)" in text.split("Checksum:")[1].splitlines()[0]
    assert "Validation hash:" in text and text.split("Validation hash:")[1].splitlines()[0].endswith("(valid)")
    assert "App version: 1.2.3+4" in text
    assert "Project name: rig-ref" in text
    assert "Secure version: 0" in text


def test_esptool_image_info_accepts_the_bootloader(built):
    out, _, _ = built
    proc = subprocess.run([*ESPTOOL, str(out / "rig-esp32-bootloader.bin")], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "Bootloader version: 1" in proc.stdout
    assert proc.stdout.split("Validation hash:")[1].splitlines()[0].endswith("(valid)")


def test_app_desc_fields_and_rig_descriptor():
    image = esp_app.app_image("2.0.1+9", "no-confirm", secure_version=3)
    assert image[0] == 0xE9
    assert int.from_bytes(image[0x20:0x24], "little") == esp_app.APP_DESC_MAGIC
    assert int.from_bytes(image[0x24:0x28], "little") == 3  # secure_version at +4
    info = esp_app.parse(image)
    assert (info.version, info.secure_version, info.project) == ("2.0.1+9", 3, "rig-ref")
    assert info.descriptor.fault == "no-confirm" and info.descriptor.version == (2, 0, 1, 9)
    assert info.size == len(image)
    assert esp_app.check_bootloader(esp_app.bootloader_image()) == 1


@pytest.mark.parametrize("mutate, message", [
    (lambda b: b"\x00" + b[1:], "magic 0xE9"),
    (lambda b: b[:-40], "digest|ESP image"),
    (lambda b: b[:0x30] + bytes([b[0x30] ^ 0x10]) + b[0x31:], "checksum|digest"),
])
def test_corrupt_images_give_one_line(mutate, message):
    with pytest.raises(RigError, match=message) as info:
        esp_app.parse(mutate(esp_app.app_image("1.0.0")))
    assert "\n" not in str(info.value)


def test_bootloader_is_not_an_app():
    with pytest.raises(RigError, match="esp_app_desc_t"):
        esp_app.parse(esp_app.bootloader_image())


_APP = esp_app.app_image("1.0.0")


@given(st.lists(st.tuples(st.integers(0, 0x200), st.integers(0, 255)), max_size=6), st.integers(0, len(_APP)))
def test_fuzz_parse_only_rig_errors(flips, cut):
    data = bytearray(_APP[:cut])
    for pos, value in flips:
        if pos < len(data):
            data[pos] = value
    try:
        esp_app.parse(bytes(data))
    except RigError:
        pass
