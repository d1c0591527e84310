"""Release images for OTA campaigns: signed, byte-exact, and as alike between versions as real builds.

An STM32 release is the reference firmware itself: `rig build`'s binary of that variant, version,
fault mode (and defect, for a campaign that proves a broken firmware is caught), compiled once
into rig.build.cache and signed as MCUboot wants it. The virtual STM32s execute it, so the image
a campaign ships is the code that runs. Two versions of it differ in the few bytes the version
is compiled into, so delta patches between them are as small as between real patch releases.

The ESP32 stays modelled (no Xtensa toolchain here): its releases are rig's app descriptor at
the right place and code bytes around it. That code is deterministic, and each version changes a
few small spans of it, as a patch release changes a few functions.

    stm32_image(variant, version, signer, fault="none", security_counter=None, size=None, defect=None) -> bytes
    esp32_image(version, fault="none", secure_version=0, size=None, ca=b"") -> bytes
    image(variant, version, signer, fault="none", floor=0, size=None, ca=b"", defect=None) -> bytes
        (either, at the rollback floor)

`size` asks for a bigger image (one that spans two sectors, say): an STM32 binary is followed,
inside the signed body, by deterministic filler up to `size` bytes, which the firmware never
reads; a smaller `size` leaves the binary as it is.

`ca` is the PEM of the CA an ESP32 release trusts for its HTTPS OTA server (rig.ota.tls): it is
built into the app, as ESP-IDF apps embed theirs, so every release of a campaign carries it.
"""

import random

from rig.build import cache
from rig.image import esp_app, mcuboot, sbv2
from rig.image.keys import Signer
from rig.image.mcuboot import Version
from rig.variants import Bootloader, facts

# The modelled ESP32 app's code bytes: big enough that a power cut can land at any tenth of a
# transfer, small enough that a campaign on the virtual rack takes seconds.
ESP32_CODE_SIZE = 32 * 1024
CHANGES_PER_VERSION = 4  # spans a version touches
CHANGE_SIZE = 48  # bytes per span


def code(version: Version, size: int) -> bytes:
    """The modelled ESP32 app's code bytes at `version`: one base, a few spans changed per version."""
    base = random.Random("rig-code-esp32").randbytes(size)
    out = bytearray(base)
    rng = random.Random(f"rig-code-esp32-{version}")
    for _ in range(CHANGES_PER_VERSION):
        at = rng.randrange(0, size - CHANGE_SIZE)
        out[at : at + CHANGE_SIZE] = rng.randbytes(CHANGE_SIZE)
    return bytes(out)


def _version(version: Version | str) -> Version:
    return Version.parse(version) if isinstance(version, str) else version


def stm32_image(variant: str, version: Version | str, signer: Signer, fault: str = "none",
                security_counter: int | None = None, size: int | None = None, defect: str | None = None) -> bytes:
    """The reference firmware of `variant` at `version`, signed as an MCUboot image (imgtool's bytes)."""
    v = _version(version)
    body = cache.app(variant, str(v), fault, defect).bin.read_bytes()
    if size is not None and size > len(body):
        body += random.Random(f"rig-filler-{variant}").randbytes(size - len(body))
    return mcuboot.sign(body, signer, v, security_counter=security_counter)


def esp32_image(version: Version | str, fault: str = "none", secure_version: int = 0,
                size: int | None = None, ca: bytes = b"") -> bytes:
    """An ESP-IDF app image of rig firmware (esptool's image format, checksum and SHA-256)."""
    v = _version(version)
    return esp_app.app_image(v, fault, secure_version, code=code(v, size or ESP32_CODE_SIZE), ca_pem=ca)


def image(variant: str, version: Version | str, signer: Signer, fault: str = "none", floor: int = 0,
          size: int | None = None, ca: bytes = b"", defect: str | None = None) -> bytes:
    """A release for `variant` at the board's rollback floor (MCUboot security counter, ESP32
    secure_version): the same floor is always accepted, a lower one is a downgrade. `defect`
    (rig.build.defects) picks a broken STM32 build; the ESP32's release ignores it."""
    if facts(variant).bootloader is Bootloader.ESP_IDF:  # modelled: its defects are lab switches (rig.sim.broken)
        app = esp32_image(version, fault, secure_version=floor, size=size, ca=ca)
        # Signed (Secure Boot V2) when the signer is a key its ROM verifies: a provisioned board's
        # station key (rig.ota.kit.firmware_key); the campaign's MCUboot key leaves it unsigned.
        return sbv2.sign(app, signer) if signer.public.kind in facts(variant).signing_keys else app
    return stm32_image(variant, version, signer, fault, security_counter=floor, size=size, defect=defect)

