"""Release images for OTA campaigns: signed, byte-exact, and as alike between versions as real builds.

The virtual boards take their behaviour from rig's app descriptor (rig/image/appdesc.py), so a
campaign's images are rig firmware with a descriptor at the right place and code bytes around it.
The code is deterministic per variant, and each version changes a few small spans of it, as a
patch release changes a few functions: delta patches between two versions are then as small as
they are between real builds (docs/delta-format.md), and a full image is as big as a real one.

    stm32_image(variant, version, signer, fault="none", security_counter=None, size=None) -> bytes
    esp32_image(version, fault="none", secure_version=0, size=None, ca=b"") -> bytes
    image(variant, version, signer, fault="none", floor=0, size=None, ca=b"") -> bytes   (either, at the rollback floor)

`ca` is the PEM of the CA an ESP32 release trusts for its HTTPS OTA server (rig.ota.tls): it is
built into the app, as ESP-IDF apps embed theirs, so every release of a campaign carries it.
"""

import random

from rig.image import appdesc, esp_app, mcuboot
from rig.image.keys import Signer
from rig.image.mcuboot import Version
from rig.variants import Bootloader, facts

# Code bytes per variant: big enough that a power cut can land at any tenth of a transfer, small
# enough that a campaign on the virtual rack takes seconds (the L0's slot holds 76 KiB).
CODE_SIZE = {"stm32h7": 40 * 1024, "stm32l0": 24 * 1024, "esp32": 32 * 1024}
CHANGES_PER_VERSION = 4  # spans a version touches
CHANGE_SIZE = 48  # bytes per span


def code(variant: str, version: Version, size: int) -> bytes:
    """The code bytes of `variant` at `version`: one base, a few spans changed per version."""
    base = random.Random(f"rig-code-{variant}").randbytes(size)
    out = bytearray(base)
    rng = random.Random(f"rig-code-{variant}-{version}")
    for _ in range(CHANGES_PER_VERSION):
        at = rng.randrange(0, size - CHANGE_SIZE)
        out[at : at + CHANGE_SIZE] = rng.randbytes(CHANGE_SIZE)
    return bytes(out)


def _version(version: Version | str) -> Version:
    return Version.parse(version) if isinstance(version, str) else version


def stm32_image(variant: str, version: Version | str, signer: Signer, fault: str = "none",
                security_counter: int | None = None, size: int | None = None) -> bytes:
    """A signed MCUboot image of rig firmware for an STM32 variant (imgtool's bytes)."""
    v = _version(version)
    body = bytearray(code(variant, v, size or CODE_SIZE[variant]))
    at = facts(variant).appdesc_offset
    body[at : at + appdesc.SIZE] = appdesc.AppDescriptor(variant, (v.major, v.minor, v.revision, v.build),
                                                         fault).pack()
    return mcuboot.sign(bytes(body), signer, v, security_counter=security_counter)


def esp32_image(version: Version | str, fault: str = "none", secure_version: int = 0,
                size: int | None = None, ca: bytes = b"") -> bytes:
    """An ESP-IDF app image of rig firmware (esptool's image format, checksum and SHA-256)."""
    v = _version(version)
    return esp_app.app_image(v, fault, secure_version, code=code("esp32", v, size or CODE_SIZE["esp32"]), ca_pem=ca)


def image(variant: str, version: Version | str, signer: Signer, fault: str = "none", floor: int = 0,
          size: int | None = None, ca: bytes = b"") -> bytes:
    """A release for `variant` at the board's rollback floor (MCUboot security counter, ESP32
    secure_version): the same floor is always accepted, a lower one is a downgrade."""
    if facts(variant).bootloader is Bootloader.ESP_IDF:
        return esp32_image(version, fault, secure_version=floor, size=size, ca=ca)
    return stm32_image(variant, version, signer, fault, security_counter=floor, size=size)

