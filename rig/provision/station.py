"""The provisioning station: what it holds for every unit, and how it runs units on N fixtures.

CONTRACT (fixed first; the runner below is filled in by the station work):

    Station       - keys, CA, firmware, recipe options, records; one per `rig provision run`
    Firmware      - what a variant's units get flashed with
"""

from dataclasses import dataclass, field

from rig.image.keys import Signer


@dataclass(frozen=True)
class Firmware:
    """A variant's factory firmware, already signed with Station.firmware_signer.

    STM32: `image` is the signed MCUboot image for slot0, `bootloader` the MCUboot binary that
    trusts the firmware key (on a virtual board: rig.sim.stm32.vmcuboot.build(layout, [key])).
    ESP32: `image` is the ESP-IDF app image with its Secure Boot V2 signature sector
    (rig.image.sbv2.sign), `bootloader` the second-stage bootloader (rig.image.esp_app.bootloader_image()).
    """

    image: bytes
    bootloader: bytes


@dataclass
class Station:
    name: str  # the station's name in records ("station-1", the host name by default)
    operator: str  # who runs it (the login name by default)
    records: object  # rig.provision.records.Records
    ca_cert: object  # cryptography x509.Certificate of the provisioning CA
    ca_signer: Signer  # the CA's key (PEM file or PKCS#11)
    keys: object  # rig.provision.identity.KeyMaker: .generate() -> EC P-256 private key
    firmware_signer: Signer  # signs factory images; its public key is the device's fw-verification key
    firmware: dict[str, Firmware]  # variant -> firmware
    force: bool = False  # re-provision units that already have a record
    # Recipe options per variant, e.g. {"esp32": {"disable_download": False, "disable_jtag": True},
    # "stm32h7": {"rdp": 1}}; a variant module documents the options it reads and their defaults.
    options: dict = field(default_factory=dict)
