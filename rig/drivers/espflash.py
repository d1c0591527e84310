"""EsptoolDriver: an ESP32's ROM loader through esptool's Python API.

labgrid has no esptool driver (its open request #1944). esptool needs the board's serial port for
itself - it resets the chip into the ROM loader with DTR/RTS and speaks SLIP - so this driver
borrows the open port from the console driver for the length of one operation and hands it back;
the connection never drops, so the console sees the app boot right after esptool's hard reset.

Offsets are flash offsets (the ESP32's SPI flash starts at 0); the partition table and otadata are
found where rig.image.layouts puts them and parsed by rig.image.esp_partitions / rig.image.otadata.
"""

import contextlib
import hashlib

import attr
from labgrid.driver.common import Driver
from labgrid.factory import target_factory
from labgrid.step import step

from rig.drivers.console import first_line
from rig.drivers.esplog import quiet_esptool
from rig.drivers.layout import board_layout, check_range
from rig.drivers.protocol import FlashProtocol, Lock, Progress, Region, regions_sha256
from rig.errors import RigError
from rig.image import esp_partitions

# ESP32 eFuse BLOCK0 read registers (ESP32 TRM, eFuse Controller; bits from esp_efuse_table.csv)
EFUSE_BLK0_RDATA0 = 0x3FF5A000  # FLASH_CRYPT_CNT at bits 20..26
EFUSE_BLK0_RDATA6 = 0x3FF5A018  # ABS_DONE_0 bit 4, ABS_DONE_1 bit 5
FLASH_CRYPT_CNT_SHIFT, FLASH_CRYPT_CNT_MASK = 20, 0x7F
ABS_DONE_0, ABS_DONE_1 = 1 << 4, 1 << 5


def flash_encrypted(word0: int) -> bool:
    """Flash encryption on, from EFUSE_BLK0_RDATA0: an odd number of FLASH_CRYPT_CNT bits burnt."""
    return bin(word0 >> FLASH_CRYPT_CNT_SHIFT & FLASH_CRYPT_CNT_MASK).count("1") % 2 == 1


@target_factory.reg_driver
@attr.s(eq=False)
class EsptoolDriver(Driver, FlashProtocol):
    """Write, read, verify and erase SPI flash, read partition table and otadata, read/burn eFuses.

    Args:
        baud (int): baud rate after connecting (the ROM loader syncs at 115200)
        stub (bool): upload esptool's flasher stub (faster; off = talk to the ROM only)
        after (str): what to do after each operation: "hard-reset" (run the app) or "no-reset"
    """

    bindings = {"console": "RigConsoleDriver", "board": "RigBoard"}
    baud = attr.ib(default=115200, validator=attr.validators.instance_of(int))
    stub = attr.ib(default=True, validator=attr.validators.instance_of(bool))
    after = attr.ib(default="hard-reset", validator=attr.validators.in_(("hard-reset", "no-reset")))

    def __attrs_post_init__(self):
        super().__attrs_post_init__()
        self.last_image_sha256 = None
        self._held = None  # the ESPLoader of an open session(): operations reuse it

    def on_activate(self):
        self.layout = board_layout(self.board)

    @contextlib.contextmanager
    def session(self, after: str | None = None):
        """One ROM-loader connection for a run of operations (a provisioning unit's steps): each
        loader() inside it reuses the connection - no reset into download mode, no new sync, no
        second stub upload - and the chip is reset (`after`) once, when the session ends. The
        console port stays lent to esptool for the whole session."""
        if self._held is not None:
            raise RigError("an esptool session is already open on this board")
        with self.loader(after=after) as esp:
            self._held = esp
            try:
                yield esp
            finally:
                self._held = None

    @contextlib.contextmanager
    def loader(self, progress=None, total: int = 0, after: str | None = None):
        """An ESPLoader connected to the ROM loader (or the stub) on the borrowed console port;
        inside session(), that session's (and `after` is the session's to do)."""
        from esptool.cmds import attach_flash, detect_chip, reset_chip, run_stub
        from esptool.util import FatalError

        if self._held is not None:
            with quiet_esptool(progress, total):
                try:
                    yield self._held
                except FatalError as exc:
                    raise RigError(f"esptool: {first_line(exc)}") from exc
            return
        with self.console.lent() as port, quiet_esptool(progress, total):
            try:
                esp = detect_chip(port, 115200, "default-reset", connect_attempts=3)
            except (FatalError, OSError) as exc:
                raise RigError(f"esptool: cannot reach the ROM loader on {self.console.url}: "
                               f"{first_line(exc)}; is the board powered?") from exc
            try:
                if self.stub:
                    esp = run_stub(esp)
                if self.baud != 115200:
                    esp.change_baud(self.baud)
                attach_flash(esp)
                yield esp
                reset_chip(esp, after or self.after)
            except FatalError as exc:
                raise RigError(f"esptool: {first_line(exc)}") from exc

    @Driver.check_active
    def write_regions(self, regions, verify: bool = True, progress: Progress | None = None) -> None:
        """Write several (offset, data) regions in one ROM-loader session, as `esptool write-flash` does:
        esptool erases what each covers and sends it compressed; then each is MD5-verified."""
        from esptool.cmds import write_flash

        for offset, data in regions:
            check_range(self.layout, offset, len(data))
        self._check_sectors(regions)
        with self.loader(progress, sum(len(data) for _, data in regions)) as esp:
            # force: the image header of an app is not rewritten for flash mode/size ("keep"), and
            # rig writes partition tables and data that are not app images on purpose.
            write_flash(esp, list(regions), force=True, no_progress=progress is None)
            if verify:
                for offset, data in regions:
                    self._verify(esp, data, offset)
        self.last_image_sha256 = regions_sha256(regions)

    def _check_sectors(self, regions) -> None:
        """esptool erases the whole sectors a region covers, so two regions in one sector would
        erase each other (esptool itself does not check)."""
        sector = self.layout.geometry.sector_size
        ordered = sorted(regions, key=lambda region: region[0])
        for (a, data), (b, _) in zip(ordered, ordered[1:], strict=False):
            if (a + len(data) - 1) // sector >= b // sector:
                raise RigError(f"regions at 0x{a:x} and 0x{b:x} share the 0x{sector:x}-byte sector at "
                               f"0x{b // sector * sector:x}; writing the second would erase the first: "
                               "align them to sectors or merge them into one file")

    @Driver.check_active
    def differing(self, regions) -> list[Region]:
        """The (offset, data) regions whose bytes the flash does not hold yet (by the chip's MD5)."""
        with self.loader() as esp:
            return [(offset, data) for offset, data in regions
                    if self._md5(esp, offset, len(data)) != hashlib.md5(data).hexdigest()]

    @Driver.check_active
    @step(args=["offset", "size"])
    def read(self, offset: int, size: int, progress: Progress | None = None) -> bytes:
        from esptool.cmds import read_flash

        check_range(self.layout, offset, size)
        with self.loader(progress, size) as esp:
            return read_flash(esp, offset, size, no_progress=progress is None)

    @Driver.check_active
    @step(args=["offset"])
    def verify(self, data: bytes, offset: int) -> None:
        """RigError when flash at `offset` does not hold `data` (compared by the chip's MD5)."""
        check_range(self.layout, offset, len(data))
        with self.loader() as esp:
            self._verify(esp, data, offset)

    @staticmethod
    def _md5(esp, offset: int, size: int) -> str:
        found = esp.flash_md5sum(offset, size)
        return found if isinstance(found, str) else found.hex()

    def _verify(self, esp, data: bytes, offset: int) -> None:
        if self._md5(esp, offset, len(data)) != hashlib.md5(data).hexdigest():
            raise RigError(f"verify failed: flash 0x{offset:x}+0x{len(data):x} does not hold the written "
                           "data (MD5 differs); erase and write again")

    @Driver.check_active
    @step(args=["offset", "size"])
    def erase(self, offset: int | None = None, size: int | None = None) -> None:
        """Erase the whole flash, or [offset, offset+size) (sector-aligned)."""
        from esptool.cmds import erase_flash, erase_region

        if offset is not None:
            if size is None:
                raise RigError(f"erase 0x{offset:x}: give the size too, or neither to erase the whole flash")
            check_range(self.layout, offset, size)
            sector = self.layout.geometry.sector_size
            if offset % sector or size % sector:
                raise RigError(f"erase 0x{offset:x}+0x{size:x}: offset and size must be multiples of the "
                               f"0x{sector:x}-byte sector")
        with self.loader() as esp:
            if offset is None:
                erase_flash(esp)
            else:
                erase_region(esp, offset, size)

    @Driver.check_active
    def lock(self) -> Lock | None:
        """Secure Boot and flash encryption, from the eFuse read registers through the ROM loader
        (ESP32 TRM, eFuse controller; ESP-IDF esp_efuse_table.csv). A chip with download mode
        disabled (UART_DOWNLOAD_DIS) shows nothing: its ROM loader does not answer (RigError)."""
        with self.loader() as esp:
            word0, word6 = esp.read_reg(EFUSE_BLK0_RDATA0), esp.read_reg(EFUSE_BLK0_RDATA6)
        states = []
        if word6 & ABS_DONE_1:
            states.append("Secure Boot V2 enabled in eFuse (ABS_DONE_1: it boots only images signed with "
                          "the key whose digest is burnt in BLOCK2)")
        elif word6 & ABS_DONE_0:
            states.append("Secure Boot V1 enabled in eFuse (ABS_DONE_0)")
        if flash_encrypted(word0):
            states.append("flash encryption enabled (FLASH_CRYPT_CNT odd: images written in plain text do not boot)")
        if not states:
            return None
        return Lock(" and ".join(states), "none, eFuses cannot be unburnt: a board that is not locked",
                    blocks_flashing=False)

    @Driver.check_active
    def read_partition_table(self) -> tuple:
        """The partition table at 0x8000, parsed (RigError if it is missing or corrupt)."""
        raw = self.read(esp_partitions.OFFSET, esp_partitions.MAX_LENGTH)
        return esp_partitions.parse(raw, self.layout.geometry.size)

    @Driver.check_active
    def read_otadata(self):
        """The otadata partition's two sectors, parsed by rig.image.otadata."""
        from rig.image import otadata

        part = self.layout.part("otadata")
        return otadata.parse(self.read(part.offset, part.size))

    @Driver.check_active
    def read_efuses(self) -> dict:
        """Every eFuse field by name, as espefuse reads them from the chip."""
        with self._efuses() as efuses:
            return {e.name: e.get() for e in efuses.efuses}

    @Driver.check_active
    @step(args=["values"])
    def burn_efuses(self, values: dict) -> None:
        """Burn eFuse fields ({name: value}); one-time programmable - bits only ever go 0 -> 1."""
        with self._efuses() as efuses:
            efuses.burn_efuse({k: str(v) for k, v in values.items()})

    @contextlib.contextmanager
    def _efuses(self):
        from espefuse import init_commands

        with self.loader(after="no-reset") as esp:
            try:
                yield init_commands(esp=esp, do_not_confirm=True)
            except (KeyError, ValueError, AttributeError) as exc:
                raise RigError(f"espefuse: {first_line(exc)}") from exc
