"""Factory images: the ESP32 one equals `esptool merge-bin` of its parts; the STM32 one places the
signed image in slot0 over the part's erased value."""

import subprocess
import sys

import pytest

from rig.errors import RigError
from rig.image import appdesc, esp_app, esp_partitions, factory, mcuboot, otadata
from rig.variants import facts


def test_esp32_factory_equals_esptool_merge_bin(tmp_path):
    app = esp_app.app_image("1.0.0")
    made = factory.factory_image("esp32", app)
    assert made.offset == 0
    args = []
    for region in made.regions:
        path = tmp_path / f"{region.name}.bin"
        path.write_bytes(region.data)
        args += [hex(region.offset), str(path)]
    merged = tmp_path / "merged.bin"
    proc = subprocess.run([sys.executable, "-m", "esptool", "--chip", "esp32", "merge-bin", "-o", str(merged), *args],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert merged.read_bytes() == made.data


def test_esp32_factory_reads_back_as_a_bootable_flash():
    data = factory.factory_image("esp32", esp_app.app_image("1.0.0", "no-confirm")).data
    entries = esp_partitions.parse(data[0x8000:0x8C00])
    ota0 = esp_partitions.ota_slots(entries)[0]
    ota = esp_partitions.find(entries, "otadata")
    assert otadata.parse(data[ota.offset : ota.offset + otadata.SIZE]).active_slot(2) == 0
    assert esp_app.parse(data[ota0.offset :]).descriptor.fault == "no-confirm"
    assert esp_app.check_bootloader(data[0x1000:0x8000]) == 1


@pytest.mark.parametrize("variant", ["stm32h7", "stm32l0"])
def test_stm32_factory_places_the_signed_image_in_slot0(variant, signer):
    payload = bytes(0x400) + appdesc.AppDescriptor(variant, (1, 0, 0, 0)).pack() + bytes(64)
    image = mcuboot.sign(payload, signer, "1.0.0")
    layout = facts(variant).layout
    erased = layout.geometry.erased
    boot = b"\x5a" * 1000
    made = factory.factory_image(variant, image, bootloader=boot, full=True)
    slot0 = layout.part("slot0").offset
    assert made.offset == 0 and len(made.data) == layout.geometry.size
    assert made.data[:1000] == boot
    assert set(made.data[1000:slot0]) == {erased}
    assert made.data[slot0 : slot0 + len(image)] == image
    assert set(made.data[slot0 + len(image) :]) == {erased}
    assert appdesc.find(made.data[slot0:], variant, header_size=0x200).variant == variant
    # Without a bootloader the image starts at slot0, leaving MCUboot's region untouched.
    bare = factory.factory_image(variant, image)
    assert (bare.offset, bare.data) == (slot0, image)


def test_stm32_factory_refuses_bad_input(signer):
    with pytest.raises(RigError, match="not an MCUboot image"):
        factory.factory_image("stm32l0", b"\x00" * 64)
    big = mcuboot.sign(bytes(80 * 1024), signer, "1.0.0")
    with pytest.raises(RigError, match="does not fit slot0"):
        factory.factory_image("stm32l0", big)
    small = mcuboot.sign(bytes(64), signer, "1.0.0")
    with pytest.raises(RigError, match="does not fit its"):
        factory.factory_image("stm32l0", small, bootloader=bytes(33 * 1024))
    with pytest.raises(RigError, match="no stm32l0 flash layout"):
        factory.factory_image("stm32l0", small, layout="esp32-4mb-ota")
