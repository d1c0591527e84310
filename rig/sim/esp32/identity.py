"""What rig's ESP32 app says, after its boot line, about the identity the provisioning station gave it.

The app opens the `identity` NVS partition as nvs_flash does - with NVS encryption
(nvs_flash_secure_init_partition) when the `nvs_keys` partition holds keys, which it reads through
the flash cache, so on a flash-encrypted chip they are decrypted on the way (rig.sim.esp32.flash_crypt)
- reads the serial and the device certificate (rig.provision.esp32 writes them) and prints

    rig: identity serial=<serial> cert_sha256=<SHA-256 of the certificate's DER, hex>

or `rig: identity unreadable: <why>` when the partition holds something it cannot read. An
unprovisioned chip (identity partition erased) prints nothing. The device key is never printed:
the fingerprint of the certificate it belongs to is what a host compares with the station's record.
"""

import hashlib

from rig.errors import RigError
from rig.image import nvs

NAMESPACE = "identity"  # rig.provision.esp32.NAMESPACE: the station's namespace in the partition


def announce(ctx) -> None:
    layout = ctx.layout
    names = {p.name for p in layout.partitions}
    if not {"identity", "nvs_keys"} <= names:
        return
    part = layout.part("identity")
    image = ctx.flash.read(part.offset, part.size)
    if image.count(0xFF) == len(image):
        return
    keys_part = layout.part("nvs_keys")
    try:
        keys = nvs.keys_from(ctx.flash.read(keys_part.offset, keys_part.size))
    except RigError:
        keys = None  # no NVS keys: the partition is read as plain NVS, as nvs_flash_init_partition does
    try:
        values = nvs.read(image, keys).get(NAMESPACE, {})
        serial, cert = values["serial"], values["device_cert"]
    except (RigError, KeyError) as exc:
        ctx.log(f"rig: identity unreadable: {exc}")
        return
    if not isinstance(serial, str) or not isinstance(cert, bytes):
        ctx.log("rig: identity unreadable: serial is not a string or device_cert not a blob")
        return
    ctx.log(f"rig: identity serial={serial} cert_sha256={hashlib.sha256(cert).hexdigest()}")
