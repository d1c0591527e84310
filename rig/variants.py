"""The facts about each board variant that several layers share, as frozen data: the one place.

Modelled on esptool's CHIP_DEFS: one record per variant, read by the inventory, the drivers, the
image tools, the OTA campaign, the provisioning station, the build and the virtual lab. A layer
asks the record about the fact it depends on - `VARIANTS[name].delivery is Delivery.SMP_PUSH`,
`facts(name).flasher is Flasher.SWD` - never compares the variant's name, so a new part is one
record here plus the modules its `modules` names (docs/adding-a-variant.md).

What only one layer needs stays in that layer (a part's datasheet timings in rig.sim.timing, the
size of the campaign's release images in rig.ota.releases); tests/test_variants.py lists those
tables and checks that each covers every variant, so a new record cannot be forgotten there.
"""

import difflib
import enum
from dataclasses import dataclass

from rig.errors import RigError
from rig.image.keys import ECDSA_P256, KINDS, RSA_2048, RSA_3072, PublicKey
from rig.image.layouts import LAYOUTS, Geometry, Layout


class Family(enum.Enum):
    """Which vendor's chip: decides how rig's reference firmware is made (rig.build)."""

    ESP32 = "esp32"  # Espressif: the app image is generated (rig.image.esp_app)
    STM32 = "stm32"  # ST Cortex-M: the C firmware in firmware/ built with arm-none-eabi-gcc


class Flasher(enum.Enum):
    """How the host writes and reads the board's flash."""

    SWD = "swd"  # pyocd through a debug probe (rig.drivers.swd.PyOCDDriver); the rack names a RigDebugProbe
    ROM_LOADER = "rom-loader"  # esptool through the serial ROM loader (rig.drivers.espflash.EsptoolDriver)


class Delivery(enum.Enum):
    """How an OTA update reaches a running board (rig.ota.targets)."""

    SMP_PUSH = "smp-push"  # the host uploads over MCUmgr SMP on the console; MCUboot swaps it in
    HTTP_PULL = "http-pull"  # the board downloads from rig.ota.server after `ota <url>` on its console


class Bootloader(enum.Enum):
    """The boot chain: image format, slot scheme, rollback floor, and the boot log's dialect."""

    # MCUboot: signed MCUboot images, slot0/slot1 with trailers, security counter; logs `I: ...`.
    MCUBOOT = "mcuboot"
    # ESP-IDF: ROM banner `rst:0x1 (POWERON_RESET),boot:0x13 ...`, 2nd-stage bootloader `I (ms) tag:`,
    # app images in ota_N chosen by otadata, secure_version eFuse.
    ESP_IDF = "esp-idf"


class Lock(enum.Enum):
    """What locks a provisioned board (rig.provision)."""

    RDP = "rdp"  # readout protection option byte (rig.drivers.optionbytes)
    EFUSE = "efuse"  # eFuses: Secure Boot V2 key digest, download mode, JTAG


@dataclass(frozen=True)
class Variant:
    name: str  # as a rack's RigBoard.variant writes it
    part: str  # the part a board of this variant carries, for messages
    family: Family
    flasher: Flasher
    delivery: Delivery
    bootloader: Bootloader
    lock: Lock
    default_layout: str  # a name in rig.image.layouts.LAYOUTS
    app_partition: str  # where an application image goes (`rig flash` without --partition)
    delta_profile: str  # rig.delta profile a board of this variant can apply
    # Key kinds (rig.image.keys) whose signatures the boot chain verifies; the first is the kind rig
    # makes when it makes a firmware key for the variant (the provisioning station's work folder).
    signing_keys: tuple[str, ...]
    appdesc_code: int  # rig's app descriptor: the variant byte (rig.image.appdesc, firmware/common)
    appdesc_offset: int  # ... and its offset in the application (after the MCUboot header, if any)
    # The USB-serial bridge's DTR/RTS drive EN and GPIO0 (the ESP32 DevKit's auto-program circuit):
    # a reset, or a reset into the ROM loader, is a console line change.
    auto_program: bool
    power_off_s: float  # how long a real board's supply needs to drain before power returns
    recipe: str  # the module with the provisioning recipe (its RECIPES and OPTIONS; rig.provision)
    # The other modules that hold this variant's own code (chip models, build flags, ...). With
    # `recipe`, the only places besides this one that may name a variant (tests/test_variants.py).
    modules: tuple[str, ...]

    @property
    def debug_probe(self) -> bool:
        """A board of this variant needs a debug probe in its rack entry."""
        return self.flasher is Flasher.SWD

    @property
    def layout(self) -> Layout:
        return LAYOUTS[self.default_layout]

    @property
    def geometry(self) -> Geometry:
        """The flash: erased value, write unit, sector size, whether writes clear bits in place."""
        return self.layout.geometry

    def check_signing_key(self, key: PublicKey, source: str) -> None:
        """A RigError unless this variant's bootloader verifies signatures made with `key`."""
        if key.kind not in self.signing_keys:
            raise RigError(f"{source}: an {KINDS[key.kind]} key; the {self.name} ({self.part}) boot chain verifies "
                           f"{' or '.join(KINDS[k] for k in self.signing_keys)} signatures only")

    def layouts(self) -> list[str]:
        """Names of the layouts for this variant, the default first."""
        named = [name for name, layout in LAYOUTS.items() if layout.variant == self.name]
        return sorted(named, key=lambda name: name != self.default_layout)


# A real board's regulator and bulk capacitors hold the chip up for a while after the switch opens;
# labgrid's power drivers wait 2 s by default, which every board here is known to reset within.
REAL_POWER_OFF_S = 2.0
# A virtual board loses its RAM at once; a short gap keeps power cycles of a campaign quick.
VIRTUAL_POWER_OFF_S = 0.2

_MCUBOOT_KEYS = (ECDSA_P256, RSA_2048)  # the signature TLVs rig's MCUboot images carry (rig.image.mcuboot)
_STM32_MODULES = ("rig.chips.stm32", "rig.drivers.optionbytes", "rig.build.stm32", "rig.sim.stm32")

VARIANTS: dict[str, Variant] = {
    v.name: v
    for v in (
        Variant(
            name="esp32", part="ESP32 (rev >= 3.0) on a DevKitC", family=Family.ESP32,
            flasher=Flasher.ROM_LOADER, delivery=Delivery.HTTP_PULL, bootloader=Bootloader.ESP_IDF,
            lock=Lock.EFUSE, default_layout="esp32-4mb-ota", app_partition="ota_0", delta_profile="p2",
            # Secure Boot V2 on the original ESP32 (rev >= 3.0): RSA-3072 PSS only; ECDSA blocks are
            # for the C2, C6, H2 and later, which would be variants of their own.
            signing_keys=(RSA_3072,),
            appdesc_code=1, appdesc_offset=0x120, auto_program=True, power_off_s=REAL_POWER_OFF_S,
            recipe="rig.provision.esp32", modules=("rig.sim.esp32", "rig.image.esp_app"),
        ),
        Variant(
            name="stm32h7", part="STM32H743", family=Family.STM32,
            flasher=Flasher.SWD, delivery=Delivery.SMP_PUSH, bootloader=Bootloader.MCUBOOT,
            lock=Lock.RDP, default_layout="stm32h743-2x1m", app_partition="slot0", delta_profile="p2",
            signing_keys=_MCUBOOT_KEYS,
            appdesc_code=2, appdesc_offset=0x400, auto_program=False, power_off_s=REAL_POWER_OFF_S,
            recipe="rig.provision.stm32", modules=_STM32_MODULES,
        ),
        Variant(
            name="stm32l0", part="STM32L073", family=Family.STM32,
            flasher=Flasher.SWD, delivery=Delivery.SMP_PUSH, bootloader=Bootloader.MCUBOOT,
            lock=Lock.RDP, default_layout="stm32l073-192k", app_partition="slot0", delta_profile="p1",
            signing_keys=_MCUBOOT_KEYS,
            appdesc_code=3, appdesc_offset=0x400, auto_program=False, power_off_s=REAL_POWER_OFF_S,
            recipe="rig.provision.stm32", modules=_STM32_MODULES,
        ),
    )
}
NAMES: tuple[str, ...] = tuple(VARIANTS)


def facts(name: str) -> Variant:
    """The record of `name`; a RigError naming the known variants (and the closest) otherwise."""
    try:
        return VARIANTS[name]
    except (KeyError, TypeError):
        close = difflib.get_close_matches(str(name), NAMES, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise RigError(f"unknown variant {name!r}{hint}; one of {', '.join(NAMES)}") from None


def by_appdesc_code(code: int) -> Variant | None:
    return next((v for v in VARIANTS.values() if v.appdesc_code == code), None)


def with_bootloader(kind: Bootloader) -> tuple[str, ...]:
    """Names of the variants whose boot chain is `kind`, in VARIANTS order."""
    return tuple(v.name for v in VARIANTS.values() if v.bootloader is kind)


def foreign(name: str) -> str:
    """A variant whose release a board of `name` must refuse (the wrong-variant scenario): one with
    the same delivery if there is one (the transport takes it, the board's own checks must refuse
    it), else the one with the smallest flash (its image fits any slot)."""
    me = facts(name)
    others = [v for v in VARIANTS.values() if v.name != me.name]
    same = [v for v in others if v.delivery is me.delivery]
    return (same or sorted(others, key=lambda v: v.geometry.size))[0].name
