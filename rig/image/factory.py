"""Merged factory images: one file a production station writes at flash offset 0 of a blank part.

ESP32 (4 MiB layout):  bootloader @0x1000, partition table @0x8000, otadata (erased: the
                       bootloader then boots ota_0) and the app in ota_0; gaps 0xFF. The same
                       bytes `esptool merge-bin` makes from those four files.
STM32 (H7, L0):        the bootloader (MCUboot) region, then the signed image in slot0; slot1,
                       the scratch and identity partitions left erased, in the part's erased value
                       (0x00 on the STM32L0). The slot0 trailer is left erased, which MCUboot reads
                       as "nothing to swap, boot the primary": a factory image is already permanent.

A factory image starts at flash offset 0 - except an STM32 one made without the bootloader, which
starts at slot0 so that flashing it leaves the bootloader region as it was. FactoryImage.offset
says where it goes; add the geometry's base for the bus address a probe writes to.

Images are taken already signed - rig.image.mcuboot.sign for STM32, rig.image.sbv2.sign (or an
unsigned app) for ESP32 - and checked before they are placed. The identity partition is never
part of a factory image: the provisioning station writes each device's own.
"""

from dataclasses import dataclass

from rig.errors import RigError
from rig.image import esp_app, esp_partitions, mcuboot, otadata
from rig.image.layouts import LAYOUTS, Layout
from rig.image.trailer import Trailer
from rig.variants import Bootloader, facts


@dataclass(frozen=True)
class Region:
    name: str
    offset: int
    data: bytes


@dataclass(frozen=True)
class FactoryImage:
    offset: int  # flash offset of data[0]
    data: bytes
    regions: tuple[Region, ...]


def _layout(variant: str, layout: str | None) -> Layout:
    known = facts(variant).layouts()
    name = layout or facts(variant).default_layout
    if name not in known:
        raise RigError(f"no {variant} flash layout {name!r}; known for {variant}: {', '.join(known)}")
    return LAYOUTS[name]


def esp32_regions(app: bytes, bootloader: bytes | None = None, layout: str | None = None) -> list[Region]:
    """What goes where on an ESP32: bootloader, partition table, otadata, app in ota_0."""
    lay = _layout("esp32", layout)
    bootloader = esp_app.bootloader_image() if bootloader is None else bytes(bootloader)
    esp_app.check_bootloader(bootloader)
    esp_app.parse(app)  # checksum and digest; a Secure Boot V2 sector after them is kept as is
    table = esp_partitions.build(lay)
    entries = esp_partitions.parse(table)
    ota0 = esp_partitions.ota_slots(entries)[0]
    boot_part = lay.part("bootloader")
    if len(bootloader) > boot_part.size:
        raise RigError(f"bootloader of {len(bootloader)} bytes does not fit its 0x{boot_part.size:x}-byte region")
    if len(app) > ota0.size:
        raise RigError(f"app of {len(app)} bytes does not fit {ota0.name} (0x{ota0.size:x} bytes)")
    ota = esp_partitions.find(entries, "otadata")
    return [
        Region("bootloader", boot_part.offset, bootloader),
        Region("partition_table", esp_partitions.OFFSET, table),
        Region("otadata", ota.offset, otadata.Otadata.initial().pack()),
        Region(ota0.name, ota0.offset, bytes(app)),
    ]


def stm32_regions(variant: str, signed_image: bytes, bootloader: bytes | None = None,
                  layout: str | None = None) -> list[Region]:
    """What goes where on an STM32: MCUboot at the start of flash, the signed image in slot0."""
    lay = _layout(variant, layout)
    img = mcuboot.parse(signed_image)
    image = bytes(signed_image[: img.size])  # a --pad'ed image's fill and trailer stay out
    room = Trailer.for_layout(lay, "slot0").max_image_size
    if len(image) > room:
        raise RigError(f"signed image of {len(image)} bytes does not fit slot0: {room} bytes before its trailer")
    regions = []
    if bootloader is not None:
        boot_part = lay.part("mcuboot")
        if len(bootloader) > boot_part.size:
            raise RigError(f"bootloader of {len(bootloader)} bytes does not fit its "
                           f"0x{boot_part.size:x}-byte region")
        regions.append(Region("mcuboot", boot_part.offset, bytes(bootloader)))
    regions.append(Region("slot0", lay.part("slot0").offset, image))
    return regions


def merge(regions: list[Region], layout: Layout, full: bool = False, start: int = 0) -> FactoryImage:
    """One image from flash offset `start`: gaps in the erased value; to the last region's end or,
    with `full`, to the end of flash (which also erases whatever a used part held)."""
    g = layout.geometry
    ordered = sorted(regions, key=lambda r: r.offset)
    if ordered and ordered[0].offset < start:
        raise RigError(f"factory image: {ordered[0].name} at 0x{ordered[0].offset:x} lies before the start 0x{start:x}")
    for a, b in zip(ordered, ordered[1:], strict=False):
        if a.offset + len(a.data) > b.offset:
            raise RigError(f"factory image: {a.name} (0x{a.offset:x}+0x{len(a.data):x}) overlaps {b.name}")
    end = g.size if full else max((r.offset + len(r.data) for r in ordered), default=0)
    if end > g.size:
        raise RigError(f"factory image: {end} bytes exceed the 0x{g.size:x}-byte flash")
    out = bytearray([g.erased]) * (end - start)
    for r in ordered:
        out[r.offset - start : r.offset - start + len(r.data)] = r.data
    return FactoryImage(start, bytes(out), tuple(ordered))


def factory_image(variant: str, image: bytes, bootloader: bytes | None = None, layout: str | None = None,
                  full: bool = False) -> FactoryImage:
    """The merged image of a variant: `image` is the signed MCUboot image (STM32) or the ESP-IDF
    app image (ESP32); `bootloader` is MCUboot's binary (STM32, optional: omitted, its region is
    left alone) or the ESP32 second-stage bootloader (default: rig's placeholder)."""
    lay = _layout(variant, layout)
    if facts(variant).bootloader is Bootloader.ESP_IDF:
        return merge(esp32_regions(image, bootloader, layout), lay, full)
    regions = stm32_regions(variant, image, bootloader, layout)
    return merge(regions, lay, full, start=0 if bootloader is not None else lay.part("slot0").offset)
