"""The ESP32 boot from SPI flash: the ROM's first stage, then ESP-IDF's second-stage bootloader.

Modelled on ESP-IDF v5.1 bootloader_support (bootloader_utility.c, esp_image_format.c) built with
CONFIG_BOOTLOADER_APP_ROLLBACK_ENABLE and CONFIG_BOOTLOADER_APP_ANTI_ROLLBACK, which is how rig's
ESP32 firmware is configured:

1. read the partition table at 0x8000 (rig.image.esp_partitions) and the two otadata sectors
   (rig.image.otadata);
2. any entry in PENDING_VERIFY becomes ABORTED: the app that was on trial did not confirm itself
   before this reset, so it is rolled back (each change is one sector erase + one write);
3. the active entry is the valid one with the highest seq among those whose slot holds an app
   with secure_version >= the eFuse secure version (a popcount); it boots slot (seq - 1) % apps.
   NEW becomes PENDING_VERIFY (the trial starts); VALID burns the app's secure version into eFuse;
4. the selected slot is verified (header, segments, checksum, SHA-256, and with Secure Boot V2
   enabled in eFuse (ABS_DONE_1) the signature sector after the image, against the key digest
   in BLOCK2, via rig.image.sbv2); if it or its secure version fails, the bootloader tries the
   slots below it, then above it, as the real one does. The ESP32 verifies RSA-3072 blocks only
   (ets_secure_boot_verify_signature in its ROM): an ECDSA block counts as no block, and the log
   says what ESP-IDF's says for any failed check, no more (secure_boot_signatures_bootloader.c).

Before it, the ROM's first stage checks that a bootloader image is at 0x1000 (rig.image.esp_app
makes one); its code is not run: this model is that bootloader.
"""

from rig.errors import RigError
from rig.image import esp_partitions, otadata, sbv2
from rig.sim.board import BootedImage
from rig.sim.broken import broken
from rig.sim.esp32 import appimage, flash_crypt
from rig.sim.esp32.bootlog import BootLog
from rig.sim.esp32.efuse import Efuses
from rig.sim.esp32.registers import STRAP_SPI_BOOT
from rig.sim.esp32.rom import banner
from rig.variants import facts

IDF_VERSION = "v5.1.2"
COMPILE_TIME = "Jan 10 2024 12:00:00"
CHIP_REV = 301  # v3.1, as the factory eFuses of rig.sim.esp32.efuse say
TAG = "boot"
SB_TAG = "secure_boot_v2"
SB_SCHEMES = facts("esp32").signing_keys  # the signature blocks this chip's ROM can verify
# What the ROM prints about the SPI flash settings before it loads the second stage.
ROM_SPI_CONFIG = (
    "configsip: 0, SPIWP:0xee",
    "clk_drv:0x00,q_drv:0x00,d_drv:0x00,cs0_drv:0x00,hd_drv:0x00,wp_drv:0x00",
    "mode:DIO, clock div:2",
)
USAGE = {
    (esp_partitions.TYPE_DATA, 0x00): "OTA data",
    (esp_partitions.TYPE_DATA, 0x01): "RF data",
    (esp_partitions.TYPE_DATA, 0x02): "WiFi data",
    (esp_partitions.TYPE_DATA, 0x04): "NVS keys",
    (esp_partitions.TYPE_APP, 0x00): "factory app",
    (esp_partitions.TYPE_APP, 0x20): "test app",
}


def boot(ctx) -> BootedImage | None:
    banner(ctx, STRAP_SPI_BOOT, "SPI_FAST_FLASH_BOOT")
    ctx.flash = flash_crypt.flash_of(ctx)  # from here on, this boot reads flash through the cache
    if not rom_loads_second_stage(ctx):
        return None
    return SecondStage(ctx).run()


def rom_loads_second_stage(ctx) -> bool:
    """The ROM's first stage: the image at the bootloader partition (0x1000) must start with the
    image magic; the ROM prints each segment it loads and the entry point. With anything else
    there (an erased chip) it prints `invalid header` - the real ROM then resets and prints it
    again, forever; this model prints it once and halts. The segments are not executed: the
    second stage is this module's model."""
    offset = ctx.layout.part("bootloader").offset
    header = ctx.flash.read(offset, appimage.HEADER_LEN)
    magic, count, _mode, _size_freq, entry = appimage.HEADER.unpack_from(header)
    if magic != appimage.MAGIC:
        ctx.log(f"invalid header: 0x{int.from_bytes(header[:4], 'little'):08x}")
        return False
    for line in ROM_SPI_CONFIG:
        ctx.log(line)
    pos = offset + appimage.HEADER_LEN
    for _ in range(min(count, appimage.MAX_SEGMENTS)):
        if pos + appimage.SEGMENT.size > ctx.flash.geometry.size:
            break
        load_addr, length = appimage.SEGMENT.unpack(ctx.flash.read(pos, appimage.SEGMENT.size))
        ctx.log(f"load:0x{load_addr:08x},len:{length}")
        pos += appimage.SEGMENT.size + length
    ctx.log(f"entry 0x{entry:08x}")
    return True


def _crc_ok(entry: otadata.Entry) -> bool:
    return entry.crc == otadata.crc(entry.seq) or broken("otadata-crc-unchecked")  # rig/sim/broken.py


def _valid(entry: otadata.Entry) -> bool:
    """bootloader_common_ota_select_valid: seq written, CRC right, state neither INVALID nor ABORTED."""
    return (entry.seq != otadata.ERASED_SEQ and _crc_ok(entry)
            and entry.state not in (otadata.State.INVALID, otadata.State.ABORTED))


def _usage(entry: esp_partitions.Entry) -> str:
    if entry.type == esp_partitions.TYPE_APP and esp_partitions.SUBTYPE_OTA_0 <= entry.subtype < 0x20:
        return "OTA app"
    return USAGE.get((entry.type, entry.subtype), "Unknown app" if entry.type == esp_partitions.TYPE_APP
                     else "Unknown data")


def verify_signature(flash, offset: int, size: int, image_len: int, efuses: Efuses) -> None:
    """Secure Boot V2 (the bootloader before it boots an app, and esp_ota_end before it accepts
    one): the 4 KiB signature sector after the `image_len`-byte image padded to 4 KiB, in the
    partition at `offset`, must hold an RSA-3072 block whose key digest is the one burnt in BLOCK2
    and whose signature verifies; sbv2.SignatureBlockError if not."""
    signed = image_len + (-image_len % sbv2.SECTOR) + sbv2.SECTOR
    if signed > size:
        raise sbv2.SignatureBlockError(f"no room for a signature sector in the {size}-byte partition")
    data = flash.read(offset, signed)
    _, blocks = sbv2.parse(data)
    digest = efuses.secure_boot_key_digest()
    trusted = [b.public_key() for b in blocks if b.key_digest == digest and b.kind in SB_SCHEMES]
    sbv2.verify(data, trusted, SB_SCHEMES)


class SecondStage:
    def __init__(self, ctx):
        self.ctx = ctx
        self.flash = ctx.flash
        self.log = BootLog(ctx)
        self.efuses = Efuses(ctx.state_dir, ctx.board_id)

    def run(self) -> BootedImage | None:
        g = self.flash.geometry
        for line in (f"ESP-IDF {IDF_VERSION} 2nd stage bootloader", f"compile time {COMPILE_TIME}",
                     "Multicore bootloader", f"chip revision: v{CHIP_REV // 100}.{CHIP_REV % 100}"):
            self.log.info(TAG, line)
        for key, value in (("SPI Speed", "40MHz"), ("SPI Mode", "DIO"), ("SPI Flash Size", f"{g.size >> 20}MB")):
            self.log.info("boot.esp32", f"{key:<14} : {value}")
        self.log.info(TAG, "Enabling RNG early entropy source...")

        table = self._partition_table()
        if table is None:
            return None
        self.slots = esp_partitions.ota_slots(table)
        otadata_parts = [e for e in table if (e.type, e.subtype) == (esp_partitions.TYPE_DATA, 0x00)]
        if not self.slots or not otadata_parts:
            # rig's layouts always have OTA slots and otadata; a table without is not bootable here.
            self.log.error(TAG, "No bootable app partitions in the partition table")
            return None
        self.otadata_at = otadata_parts[0].offset
        start, fresh = self._select()
        return self._load(start, fresh)

    def _partition_table(self) -> tuple[esp_partitions.Entry, ...] | None:
        raw = self.flash.read(esp_partitions.OFFSET, esp_partitions.MAX_LENGTH)
        try:
            table = esp_partitions.parse(raw, self.flash.geometry.size)
        except RigError as exc:
            if raw[:2] != esp_partitions.MAGIC:  # esp_partition_table_verify's words for row 0
                problem = f"partition 0 invalid magic number 0x{int.from_bytes(raw[:2], 'little'):x}"
            else:
                problem = str(exc).removeprefix("partition table: ")
            self.log.error("flash_parts", problem)
            self.log.error(TAG, "Failed to verify partition table")
            self.log.error(TAG, "load partition table error!")
            return None
        self.log.info(TAG, "Partition Table:")
        self.log.info(TAG, "## Label            Usage          Type ST Offset   Length")
        for i, e in enumerate(table):
            self.log.info(TAG, f"{i:2d} {e.name:<16} {_usage(e):<16} {e.type:02x} {e.subtype:02x} "
                               f"{e.offset:08x} {e.size:08x}")
        self.log.info(TAG, "End of partition table")
        return table

    # -- slot selection (bootloader_utility_get_selected_boot_partition)
    def _write_otadata(self, index: int, entry: otadata.Entry) -> None:
        sector = self.otadata_at + index * otadata.SECTOR
        self.flash.erase(sector, otadata.SECTOR)
        self.flash.write(sector, entry.pack())

    def _secure_version_ok(self, slot: int) -> bool:
        version = appimage.secure_version(self.flash, self.slots[slot].offset)
        if broken("esp-no-anti-rollback"):  # test-only fault switch (rig/sim/broken.py)
            return version is not None
        return version is not None and version >= self.efuses.secure_version()

    def _select(self) -> tuple[int, bool]:
        """(first slot index to try, -1 for "try them all"; whether otadata is in its initial state)."""
        state = otadata.parse(self.flash.read(self.otadata_at, otadata.SIZE))
        for i, entry in enumerate(state.entries):
            if entry.state == otadata.State.PENDING_VERIFY and not broken("no-revert"):  # rig/sim/broken.py
                state = state.with_state(i, otadata.State.ABORTED)
                self._write_otadata(i, state.entries[i])
        self.log.info(TAG, "Enabled a check secure version of app for anti rollback")
        self.log.info(TAG, f"Secure version (from eFuse) = {self.efuses.secure_version()}")
        apps = len(self.slots)
        if all(e.seq == otadata.ERASED_SEQ or not _crc_ok(e) for e in state.entries):
            self.log.info(TAG, "otadata[0..1] in initial state")
            return -1, True
        candidates = [i for i, e in enumerate(state.entries)
                      if _valid(e) and self._secure_version_ok((e.seq - 1) % apps)]
        if not candidates:
            self.log.error(TAG, "ota data partition invalid and no factory, will try all partitions")
            return -1, False
        active = max(candidates, key=lambda i: (state.entries[i].seq, -i))  # a tie goes to sector 0
        entry = state.entries[active]
        slot = (entry.seq - 1) % apps
        if entry.state == otadata.State.NEW:
            self._write_otadata(active, state.with_state(active, otadata.State.PENDING_VERIFY).entries[active])
        elif entry.state == otadata.State.VALID:
            version = appimage.secure_version(self.flash, self.slots[slot].offset)
            self.efuses.burn_secure_version(version)
        return slot, False

    # -- loading (bootloader_utility_load_boot_image)
    def _load(self, start: int, fresh: bool) -> BootedImage | None:
        order = list(range(start, -1, -1)) + list(range(start + 1, len(self.slots)))
        if start >= 0 and broken("no-fallback"):  # test-only fault switch (rig/sim/broken.py)
            order = [start]
        # CONFIG_BOOTLOADER_SKIP_VALIDATE_ON_POWER_ON skips the check after a power-on reset only.
        verify = not (self.ctx.reset_cause == "power-on" and broken("skip-validate-on-power-on"))
        for slot in order:
            part = self.slots[slot]
            image = None
            if self._secure_version_ok(slot):
                image = appimage.load(self.flash, part.offset, part.size, CHIP_REV, self.log, verify)
            if image is not None and self.efuses.secure_boot_v2() and not self._signature_ok(part, image):
                image = None
            if image is None:
                self.log.error(TAG, f"OTA app partition slot {slot} is not bootable")
                continue
            self.log.info(TAG, f"Loaded app from partition at offset 0x{part.offset:x}")
            if fresh:
                self._set_actual_seq(slot)
            self.log.info(TAG, "Disabling RNG early entropy source...")
            return BootedImage(slot=slot, offset=part.offset, header_size=0, image=image)
        self.log.error(TAG, "No bootable app partitions in the partition table")
        return None

    def _signature_ok(self, part: esp_partitions.Entry, image: bytes) -> bool:
        self.log.info(appimage.TAG, "Verifying image signature...")
        self.log.info(SB_TAG, "Verifying with RSA-PSS...")
        try:
            verify_signature(self.flash, part.offset, part.size, len(image), self.efuses)
        except sbv2.SignatureBlockError:
            # The chip says no more than this, whatever failed (no block, another key, an ECDSA block).
            self.log.error(SB_TAG, "Secure Boot V2 verification failed.")
            self.log.error(appimage.TAG, "Secure boot signature verification failed")
            return False
        self.log.info(SB_TAG, "Signature verified successfully!")
        return True

    def _set_actual_seq(self, slot: int) -> None:
        """Otadata was blank: record the slot that booted as VALID, and burn its secure version."""
        entry = otadata.Entry.make(slot + 1, otadata.State.VALID)
        self._write_otadata(0, entry)
        self.log.info(TAG, f"Set actual ota_seq={entry.seq} in otadata[0]")
        self.efuses.burn_secure_version(appimage.secure_version(self.flash, self.slots[slot].offset))
