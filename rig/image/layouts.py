"""Flash geometry and partition layouts per variant: the one place these numbers live.

Everything that places bytes in flash (signing with --pad, the virtual boards, the OTA code, the
provisioning station) reads its addresses from here, so a layout change is one edit. Which layout
a variant uses by default is in rig.variants.
"""

from dataclasses import dataclass, field

# The MCUboot image header in front of an app in its slot (imgtool --header-size 0x200): 512 bytes
# keep the vector table behind it 512-byte aligned, enough for the VTOR of both STM32 parts as long
# as no IRQ above 127 is used. rig sign, rig.image.mcuboot.sign and the firmware's link address
# (rig.build) all take it from here.
MCUBOOT_HEADER_SIZE = 0x200


@dataclass(frozen=True)
class Geometry:
    """Physical flash of a part."""

    base: int  # address of flash byte 0 on the CPU bus (0 for the ESP32's SPI flash)
    size: int
    sector_size: int  # smallest erasable unit
    write_size: int  # smallest programmable unit, also MCUboot's trailer alignment
    erased: int  # value of an erased byte
    # NOR flash (the ESP32's SPI flash): programming only clears bits, so a written word may be
    # written again (the result is the AND). STM32 embedded flash with ECC refuses any rewrite.
    bit_clear: bool = False

    @property
    def sectors(self) -> int:
        return self.size // self.sector_size


@dataclass(frozen=True)
class Partition:
    name: str
    offset: int  # from the start of flash, not a bus address
    size: int
    # Holds a device's keys (the provisioning station's identity): no message, log or record may
    # show bytes read from it, only that they differ.
    secret: bool = False


@dataclass(frozen=True)
class Layout:
    name: str
    variant: str
    geometry: Geometry
    partitions: tuple[Partition, ...] = field(default_factory=tuple)

    def part(self, name: str) -> Partition:
        for p in self.partitions:
            if p.name == name:
                return p
        raise KeyError(f"layout {self.name} has no partition {name!r}")

    def secret_at(self, offset: int) -> Partition | None:
        """The key area that flash offset `offset` falls in, if any."""
        return next((p for p in self.partitions if p.secret and p.offset <= offset < p.offset + p.size), None)


KIB = 1024
MIB = 1024 * KIB

# STM32H743: two banks of 1 MiB, 128 KiB sectors, 256-bit (32-byte) flash words, erased 0xFF.
# MCUboot in sector 0; swap-using-move wants the primary slot one sector larger than the
# secondary, whose last sectors hold the trailer and the move scratch.
STM32H7 = Geometry(base=0x0800_0000, size=2 * MIB, sector_size=128 * KIB, write_size=32, erased=0xFF)
# STM32L073: 192 KiB in 128-byte pages, 32-bit words, and - unlike most flash - erased to 0x00.
STM32L0 = Geometry(base=0x0800_0000, size=192 * KIB, sector_size=128, write_size=4, erased=0x00)
# ESP32 with a 4 MiB SPI NOR flash: 4 KiB sectors, erased 0xFF; writes of 4-byte words.
ESP32 = Geometry(base=0x0, size=4 * MIB, sector_size=4 * KIB, write_size=4, erased=0xFF, bit_clear=True)

LAYOUTS: dict[str, Layout] = {
    layout.name: layout
    for layout in (
        Layout(
            "stm32h743-2x1m",
            "stm32h7",
            STM32H7,
            (
                Partition("mcuboot", 0x0000_0000, 128 * KIB),
                Partition("slot0", 0x0002_0000, 512 * KIB),
                Partition("identity", 0x000E_0000, 128 * KIB, secret=True),
                Partition("slot1", 0x0010_0000, 384 * KIB),
            ),
        ),
        Layout(
            "stm32l073-192k",
            "stm32l0",
            STM32L0,
            (
                Partition("mcuboot", 0x0000_0000, 32 * KIB),
                Partition("slot0", 0x0000_8000, 76 * KIB),
                Partition("slot1", 0x0001_B000, 76 * KIB),
                Partition("identity", 0x0002_E000, 8 * KIB, secret=True),
            ),
        ),
        Layout(
            "esp32-4mb-ota",
            "esp32",
            ESP32,
            (
                Partition("bootloader", 0x1000, 0x7000),
                Partition("partition_table", 0x8000, 0x1000),
                Partition("nvs", 0x9000, 0x4000),
                Partition("otadata", 0xD000, 0x2000),
                Partition("phy_init", 0xF000, 0x1000),
                Partition("ota_0", 0x10000, 0x1E0000),
                Partition("ota_1", 0x1F0000, 0x1E0000),
                Partition("identity", 0x3D0000, 0x10000, secret=True),
                Partition("nvs_keys", 0x3E0000, 0x1000, secret=True),
            ),
        ),
    )
}
