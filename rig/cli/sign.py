"""`rig sign`: turn a built application into the signed image its bootloader boots."""

import struct
from pathlib import Path

import click

from rig import atomic
from rig.cli.console import out
from rig.errors import RigError
from rig.image import esp_app, mcuboot, sbv2
from rig.image.keys import load_signer
from rig.image.layouts import MCUBOOT_HEADER_SIZE
from rig.image.trailer import Trailer, swap_move_room
from rig.variants import NAMES, Bootloader, facts, with_bootloader

ESP_IMAGE_MAGIC = 0xE9
KEY_HELP = ("Private key: a PEM file (EC P-256 or RSA-2048 for MCUboot, RSA-3072 for ESP32 Secure Boot V2) or "
            "a PKCS#11 URI such as "
            "'pkcs11:token=rig;object=fw-key?module-path=/usr/lib/softhsm/libsofthsm2.so"
            "&pin-source=env:RIG_PKCS11_PIN' (the key stays on the token).")
IN_FILE = click.Path(exists=True, dir_okay=False, readable=True, path_type=Path)
OUT_FILE = click.Path(dir_okay=False, writable=True, path_type=Path)


def mcuboot_slot(variant: str, slot: str = "slot1") -> tuple[Trailer, int]:
    """An MCUboot slot of the variant's default flash layout: its trailer, and the room an image has.

    The room is what a swap-using-move upgrade can move, which is less than the slot minus its
    trailer: an image that fits the slot but not the move would never be swapped in (or out).
    """
    if facts(variant).bootloader is not Bootloader.MCUBOOT:
        raise RigError(f"{variant} boots ESP-IDF app images, not MCUboot images; pick "
                       f"{' or '.join(with_bootloader(Bootloader.MCUBOOT))}")
    layout = facts(variant).layout
    trailer = Trailer.for_layout(layout, slot)
    return trailer, min(trailer.max_image_size, swap_move_room(layout))


def int_auto(ctx, param, value):
    """Accept 512, 0x200 or 0o1000 for size options."""
    if value is None or isinstance(value, int):
        return value
    try:
        return int(value, 0)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a number (e.g. 512 or 0x200)") from None


@click.command(epilog="""\b
Examples:
  rig sign --key keys/fw.pem --variant stm32h7 --version 1.2.0 build/stm32h7/app.bin app-1.2.0.img
  rig sign --key keys/fw.pem --variant stm32l0 --version 1.2.0+7 --security-counter 3 --pad \\
           app.bin app-1.2.0-test.img
  rig sign --key keys/fw-rsa3072.pem --variant esp32 build/esp32/app.bin app-signed.bin""")
@click.option("--key", required=True, metavar="KEY", help=KEY_HELP)
@click.option("--variant", required=True, type=click.Choice(NAMES), help="Board family the image is for.")
@click.option("--version", "version", metavar="X.Y.Z[+B]",
              help="Image version for the MCUboot header (stm32h7, stm32l0). The ESP32 app carries its own.")
@click.option("--security-counter", type=click.IntRange(0, 0xFFFF_FFFF), metavar="N",
              help="Protected security counter: devices refuse images whose counter is below their floor.")
@click.option("--pad", is_flag=True,
              help="Fill the slot and write the trailer magic: flashed into the slot, the image is a pending "
                   "test upgrade (runs once, reverts unless the app confirms).")
@click.option("--confirm", is_flag=True, help="With --pad: also set image_ok, a permanent upgrade.")
@click.option("--header-size", default=hex(MCUBOOT_HEADER_SIZE), show_default=True, callback=int_auto, metavar="N",
              help="MCUboot header size in front of the application (the firmware links behind it).")
@click.option("--slot", type=click.Choice(["slot0", "slot1"]), default="slot1", show_default=True,
              help="Slot whose size, write unit and erased value --pad uses, and whose room the image must "
                   "fit. slot1 (secondary) is where upgrades land, as imgtool's --slot-size advises.")
@click.option("--append", is_flag=True,
              help="esp32: IN is already signed; add a signature block for KEY (up to three, so devices "
                   "can revoke a key and boot with the next).")
@click.argument("infile", metavar="IN", type=IN_FILE)
@click.argument("outfile", metavar="OUT", type=OUT_FILE)
def sign(key, variant, version, security_counter, pad, confirm, header_size, slot, append, infile, outfile):
    """Sign IN for VARIANT and write OUT.

    \b
    stm32h7, stm32l0: IN is the raw application binary (linked behind the MCUboot header);
      OUT is an MCUboot image: header, payload, protected SEC_CNT, SHA-256, KEYHASH and an
      ECDSA-P256 (TLV 0x22) or RSA-2048 PSS (TLV 0x20) signature. Slot geometry comes from the
      variant's flash layout: 32-byte write units on STM32H7, erased value 0x00 on STM32L0.
    esp32: IN is an ESP-IDF app image; OUT is IN padded to 4 KiB plus a Secure Boot V2
      signature sector with an RSA-3072 (RSA-PSS) block, the only scheme the ESP32 verifies
      (make a key with `espsecure generate-signing-key --version 2 --scheme rsa3072 KEY.pem`).

    The private key is never printed; a PKCS#11 key never leaves its token.
    """
    payload = infile.read_bytes()
    signer = load_signer(key)
    facts(variant).check_signing_key(signer.public, signer.source)
    if facts(variant).bootloader is Bootloader.ESP_IDF:
        extra = [name for name, given in (("--version", version), ("--security-counter", security_counter is not None),
                                          ("--pad", pad), ("--confirm", confirm)) if given]
        if extra:
            raise RigError(f"{', '.join(extra)}: MCUboot options; an ESP32 app image carries its version and "
                           "secure_version in esp_app_desc_t")
        try:
            app = esp_app.parse(payload)  # sign only what the bootloader would load
        except RigError as e:
            raise RigError(f"{infile}: {e}; build it with `rig build` or ESP-IDF") from None
        image = sbv2.sign(payload, signer, append=append)
        atomic.write_bytes(outfile, image)
        out.print(f"{outfile}: ESP32 app {app.version} + Secure Boot V2 sector, {len(image)} bytes, "
                  f"{signer.public.kind} key digest {sbv2.key_digest(signer.public).hex()[:16]}...")
        return
    if append:
        raise RigError("--append adds Secure Boot V2 blocks to ESP32 images; MCUboot images carry one signature")
    if version is None:
        raise RigError(f"--version is required for {variant}: MCUboot compares it to decide upgrades")
    if payload[:4] == struct.pack("<I", mcuboot.IMAGE_MAGIC):
        raise RigError(f"{infile}: already a signed MCUboot image; sign the raw application binary")
    if confirm and not pad:
        raise RigError("--confirm marks the trailer, so it needs --pad")
    trailer, room = mcuboot_slot(variant, slot)
    image = mcuboot.sign(payload, signer, version, security_counter=security_counter, header_size=header_size,
                         pad_to_slot=trailer if pad else None, confirm=confirm, erased=trailer.erased)
    used = mcuboot.parse(image).size
    if used > room:
        raise RigError(f"{infile}: signed image of {used} bytes does not fit {facts(variant).default_layout} {slot}: "
                       f"a swap-using-move upgrade moves at most {room} bytes")
    atomic.write_bytes(outfile, image)
    state = "confirmed (permanent)" if confirm else "pending (test)" if pad else "unpadded"
    out.print(f"{outfile}: MCUboot image {mcuboot.Version.parse(version)} for {variant}, {used} bytes "
              f"({len(image)} written, {state}), {signer.public.kind}, key hash {signer.public.keyhash.hex()[:16]}..."
              + (f", security counter {security_counter}" if security_counter is not None else ""))
