"""`rig verify`: would the bootloader, holding these keys, boot this image?"""

import struct
from pathlib import Path

import click

from rig.cli.console import out
from rig.cli.sign import ESP_IMAGE_MAGIC, IN_FILE, mcuboot_slot
from rig.errors import RigError
from rig.image import esp_app, mcuboot, sbv2
from rig.image.keys import load_public_key
from rig.variants import NAMES, Bootloader, facts, with_bootloader


@click.command(epilog="""\b
Examples:
  rig verify --key keys/fw.pem app-1.2.0.img
  rig verify --key keys/old.pub.pem --key keys/new.pub.pem --min-security-counter 3 app.img
  rig verify --key keys/fw-rsa3072.pem app-signed.bin     # ESP32 Secure Boot V2""")
@click.option("--key", "keys", required=True, multiple=True, metavar="KEY",
              help="A trusted key: PEM file (private or public key) or pkcs11: URI. Repeat for several.")
@click.option("--min-security-counter", type=click.IntRange(0, 0xFFFF_FFFF), metavar="N",
              help="Refuse images whose security counter (ESP32: secure_version) is below N: the device's floor.")
@click.option("--variant", type=click.Choice(NAMES),
              help="Also check the MCUboot image fits this variant's slots (what swap-using-move can move); "
                   "for an ESP32 app, check the signature schemes this variant verifies.")
@click.argument("image", type=IN_FILE)
def verify(keys, min_security_counter, variant, image: Path):
    """Check IMAGE strictly and exit 0 only if it is valid and signed by one of the keys.

    MCUboot images (STM32): header and TLV bounds, SHA-256, key hash against the trusted keys,
    signature (ECDSA-P256 or RSA-2048 PSS) and, with --min-security-counter, the protected
    SEC_CNT. ESP32 app images: the Secure Boot V2 signature sector (the blocks of the schemes the
    ESP-IDF variants verify: RSA-3072 on the ESP32), the app's checksum and digest and, with
    --min-security-counter, its secure_version.
    Otherwise one line says what is wrong, and the exit status is 2.
    """
    data = image.read_bytes()
    trusted = [load_public_key(k) for k in keys]
    try:
        if data[:4] == struct.pack("<I", mcuboot.IMAGE_MAGIC):
            room = mcuboot_slot(variant)[1] if variant else None
            img = mcuboot.verify(data, trusted, min_security_counter, room)
            key = next(k for k in trusted if k.keyhash in img.key_hashes)
            counter = "" if img.security_counter is None else f", security counter {img.security_counter}"
            out.print(f"{image}: valid MCUboot image {img.version}, {img.size} bytes, signed by {key.kind} key "
                      f"{key.keyhash.hex()[:16]}...{counter}")
        elif data[:1] == bytes([ESP_IMAGE_MAGIC]):
            kinds = facts(variant).signing_keys if variant else tuple(
                {k: None for name in with_bootloader(Bootloader.ESP_IDF) for k in facts(name).signing_keys})
            block = sbv2.verify(data, trusted, kinds)
            app = esp_app.parse(data)  # the app itself: checksum, digest, esp_app_desc_t
            if min_security_counter is not None and app.secure_version < min_security_counter:
                raise RigError(f"secure_version {app.secure_version} is below the floor {min_security_counter} "
                               "(rollback)")
            out.print(f"{image}: valid ESP32 app image {app.version}, secure_version {app.secure_version}, "
                      f"Secure Boot V2 block {block.index} ({block.kind}), key digest {block.key_digest.hex()[:16]}...")
        else:
            raise RigError("neither an MCUboot image (magic 0x96f3b83d) nor an ESP32 app image (0xE9)")
    except RigError as e:
        raise RigError(f"{image}: {e}") from None

