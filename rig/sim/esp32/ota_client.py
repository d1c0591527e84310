"""The ESP32 app's OTA client: `ota <url>` on the console updates the board over HTTPS (or HTTP).

What rig's ESP32 firmware does with esp_https_ota (partial download, rollback and anti-rollback
enabled) and esp_delta_ota, as the app model runs it:

1. fetch the artefact with Range requests (http_fetch.Download: a broken link resumes from the
   first byte not received); an https:// server must present a certificate that chains to the CA
   this app embeds (rig.image.esp_app.embedded_ca: the running image's own .rodata, as
   `cert_pem` is in the real app), is valid now and names the URL's host - else `ota refused`;
2. a full image (first byte 0xE9) is written to the other OTA slot a 4 KiB sector at a time
   (erase, write) through the flash cache, so on a flash-encrypted chip it lands encrypted
   (esp_partition_write; the ROM loader then reads ciphertext there); a delta container (magic
   "RDLT", docs/delta-format.md: a patch, or the new image compressed when no patch beat it) is
   applied by the device's own C applier (rig.delta.native.apply_stream) reading the running
   slot (a patch) and writing the other;
3. after each sector a progress record goes to flash, so after a power cut the next `ota` of the
   same URL resumes: a full image at the first sector not recorded (the Range request starts
   there), a container by decoding from its start again without rewriting recorded sectors;
4. the written image is read back and checked as esp_ota_end does (header, checksum, SHA-256,
   and with Secure Boot V2 on the signature sector against the eFuse key digest), its
   secure_version against the eFuse (anti-rollback); a refused image leaves otadata alone;
5. esp_ota_set_boot_partition (otadata entry NEW), then esp_restart.

The progress record is this firmware's own (ESP-IDF would keep it in NVS): 32-byte records
appended in the first sector of the `nvs` partition, the last valid one counts:
    magic b"RGOT", u32 CRC-32 of the URL, u32 image bytes done, u8 slot, u8 kind (0 full, 1 delta),
    2 bytes 0, u32 CRC-32 of the 16 bytes before, 12 bytes 0xFF.

Console lines (docs/console.md): `rig: ota begin ...`, `rig: ota link lost at N; resuming`,
`rig: ota refused: <why>`, `rig: ota done slot=N version=V; restarting`.
"""

import struct
import zlib
from dataclasses import dataclass

from rig.delta import native
from rig.delta.container import MAGIC as DELTA_MAGIC
from rig.errors import RigError
from rig.image import esp_app, otadata
from rig.image.sbv2 import SignatureBlockError
from rig.sim.board import BoardContext, BootedImage
from rig.sim.broken import broken
from rig.sim.esp32.bootloader import verify_signature
from rig.sim.esp32.efuse import Efuses
from rig.sim.esp32.http_fetch import Download
from rig.sim.flash import PowerCut

PAGE = 0x1000  # one SPI flash sector: the unit of writing and of resuming
ENCRYPTED_WRITE = 16  # esp_ota_write's block with flash encryption on (also a multiple of the 4-byte word)
RECORD = struct.Struct("<4sIIBB2xI")
RECORD_SIZE = 32
RECORD_MAGIC = b"RGOT"
FULL, DELTA = 0, 1


@dataclass(frozen=True)
class Progress:
    url_crc: int
    done: int
    slot: int
    kind: int


class ProgressLog:
    """The progress records in the first sector of the nvs partition."""

    def __init__(self, ctx: BoardContext):
        self._ctx = ctx
        self._at = ctx.layout.part("nvs").offset

    def last(self) -> Progress | None:
        sector = self._ctx.flash.read(self._at, PAGE)
        found = None
        for off in range(0, PAGE, RECORD_SIZE):
            magic, url_crc, done, slot, kind, crc = RECORD.unpack_from(sector, off)
            if magic != RECORD_MAGIC or crc != zlib.crc32(sector[off : off + RECORD.size - 4]):
                break
            found = Progress(url_crc, done, slot, kind)
        return found

    def append(self, p: Progress) -> None:
        sector = self._ctx.flash.read(self._at, PAGE)
        free = next((off for off in range(0, PAGE, RECORD_SIZE)
                     if sector[off : off + RECORD_SIZE] == b"\xff" * RECORD_SIZE), None)
        if free is None:
            self.clear()
            free = 0
        body = RECORD.pack(RECORD_MAGIC, p.url_crc, p.done, p.slot, p.kind, 0)[:-4]
        record = body + struct.pack("<I", zlib.crc32(body))
        _powered(self._ctx)
        self._ctx.flash.write(self._at + free, record.ljust(RECORD_SIZE, b"\xff"))

    def clear(self) -> None:
        _powered(self._ctx)
        self._ctx.flash.erase(self._at, PAGE)


def _powered(ctx: BoardContext) -> None:
    """No flash operation after the supply went away (the firmware thread may not know yet)."""
    if not ctx.powered():
        raise PowerCut("power lost")


def run(ctx: BoardContext, booted: BootedImage, url: str) -> None:
    """Update from `url`; returns only when the update was refused (success restarts the chip)."""
    try:
        version = _update(ctx, booted, url)
    except PowerCut:
        raise
    except RigError as exc:
        ProgressLog(ctx).clear()  # a refused artefact is not resumed: the next try starts over
        ctx.log(f"rig: ota refused: {str(exc).removeprefix('ota: ')}")
        return
    ctx.log(f"rig: ota done slot={1 - booted.slot} version={version}; restarting")
    ctx.reset("software")


def _update(ctx: BoardContext, booted: BootedImage, url: str) -> str:
    target = 1 - booted.slot
    part = ctx.layout.part(f"ota_{target}")
    log = ProgressLog(ctx)
    url_crc = zlib.crc32(url.encode())
    saved = log.last()
    if saved is None or (saved.url_crc, saved.slot) != (url_crc, target):
        saved = None
        log.clear()
    resume = saved.done if saved else 0
    kind = saved.kind if saved else None
    start = resume if kind == FULL else 0
    if resume and broken("resume-wrong-offset"):
        # Test-only fault switch (rig/sim/broken.py): the Range request misses the mark whether or
        # not the page at the record was written before the cut - a full image one page past the
        # record, a patch at the image offset (the patch is re-decoded from its start).
        start = resume + PAGE if kind == FULL else resume
    source = Download(ctx, url, start=start, ca_pem=esp_app.embedded_ca(booted.image))
    try:
        head = source.read(len(DELTA_MAGIC)) if kind is None else b""
        if kind is None:
            kind = DELTA if head == DELTA_MAGIC else FULL
            if kind == FULL and head[:1] != b"\xe9" and not broken("no-image-check"):
                raise RigError("ota: not an ESP app image (first byte is not 0xE9) and not a delta patch")
        ctx.log(f"rig: ota begin slot={target} kind={'delta' if kind == DELTA else 'full'} "
                f"size={source.total} resume={resume} via={source.scheme}")
        writer = _SlotWriter(ctx, log, part.offset, part.size, url_crc, target, kind)
        # Test-only fault switch (rig/sim/broken.py): the first sector after a resume is not erased.
        writer.erased_before = resume if resume and broken("resume-no-erase") else None
        if kind == FULL:
            size = writer.full(source, head, resume)
        else:
            size = writer.delta(source, head, booted, resume)
    finally:
        source.close()
    image = ctx.flash.read(part.offset, size)
    if broken("verify-from-ram"):  # test-only fault switch (rig/sim/broken.py): what arrived, not what flash holds
        image = writer.received(image)
    if broken("set-boot-before-verify"):  # test-only fault switch (rig/sim/broken.py)
        _set_boot(ctx, target)
    app = _check(ctx, image, part)
    _set_boot(ctx, target)
    log.clear()
    return app.version


class _SlotWriter:
    def __init__(self, ctx, log: ProgressLog, offset: int, size: int, url_crc: int, slot: int, kind: int):
        self._ctx, self._log = ctx, log
        self._offset, self._size = offset, size
        self._record = (url_crc, slot, kind)
        self.erased_before: int | None = None  # the broken client's sector it takes for erased
        self._ram: dict[int, bytes] = {}  # the broken client's copy of what it received

    def received(self, image: bytes) -> bytes:
        """`image` (read back) with the bytes this boot received laid over it."""
        out = bytearray(image)
        for at, data in self._ram.items():
            out[at : at + len(data)] = data[: max(0, len(out) - at)]
        return bytes(out)

    def page(self, at: int, data: bytes) -> None:
        """Program one sector of the slot (erase, write) and record it done."""
        if at + len(data) > self._size:
            raise RigError(f"ota: the image does not fit the {self._size}-byte slot")
        if broken("verify-from-ram"):
            self._ram[at] = data
        flash = self._ctx.flash
        if broken("ota-plaintext-write"):  # test-only fault switch (rig/sim/broken.py): past the flash cache
            flash = getattr(flash, "raw", flash)
        _powered(self._ctx)
        if at != self.erased_before:
            flash.erase(self._offset + at, PAGE)
        _powered(self._ctx)
        # esp_ota_write on a flash-encrypted chip writes whole 16-byte blocks and esp_ota_end pads
        # the last with 0xFF; the cache (rig.sim.esp32.flash_crypt) encrypts whole 32-byte blocks
        # and pads them so too. A sector starts aligned, so only the image's last write is short.
        flash.write(self._offset + at, data + b"\xff" * (-len(data) % ENCRYPTED_WRITE))
        url_crc, slot, kind = self._record
        self._log.append(Progress(url_crc, at + len(data), slot, kind))

    def full(self, source: Download, head: bytes, resume: int) -> int:
        at, buffer = resume, bytearray(head)
        while True:
            buffer += source.read(PAGE - len(buffer))
            if not buffer:
                return at
            self.page(at, bytes(buffer))
            at += len(buffer)
            if len(buffer) < PAGE:
                return at
            buffer.clear()

    def delta(self, source: Download, head: bytes, booted: BootedImage, resume: int) -> int:
        class Patch:  # the magic already read, then the rest of the stream
            pending = head

            def read(self, n: int) -> bytes:
                first, Patch.pending = Patch.pending[:n], Patch.pending[n:]
                return first + source.read(n - len(first))

        written = [resume]

        def write_new(offset: int, data: bytes) -> None:
            self.page(offset, data)
            written[0] = max(written[0], offset + len(data))

        def read_old(offset: int, length: int) -> bytes:
            return self._ctx.flash.read(booted.offset + offset, length)

        native.apply_stream(Patch(), read_old, write_new, PAGE, resume_at=resume, new_capacity=self._size)
        return written[0]


def _check(ctx: BoardContext, image: bytes, part) -> esp_app.EspApp:
    """esp_ota_end (image, and with Secure Boot V2 on its signature: esp_image_verify) + the
    anti-rollback check of esp_https_ota_finish."""
    try:
        app = esp_app.parse(image)
    except RigError as exc:
        if not broken("no-image-check"):
            raise RigError(f"ota: {exc}") from None
        return esp_app.EspApp("unknown", "", 0, "", 0, 0, len(image), None)
    efuses = Efuses(ctx.state_dir, ctx.board_id)
    if efuses.secure_boot_v2() and not broken("no-image-check"):
        try:
            verify_signature(ctx.flash, part.offset, part.size, app.size, efuses)
        except SignatureBlockError:
            raise RigError("ota: Secure Boot V2 signature not verified with the key this chip trusts") from None
    floor = efuses.secure_version()
    if app.secure_version < floor and not broken("no-image-check") and not broken("client-no-anti-rollback"):
        raise RigError(f"ota: secure_version {app.secure_version} is below the eFuse's {floor} (anti-rollback)")
    return app


def _set_boot(ctx: BoardContext, slot: int) -> None:
    """esp_ota_set_boot_partition: the next boot tries `slot` once (entry NEW, rollback on)."""
    part = ctx.layout.part("otadata")
    apps = sum(1 for p in ctx.layout.partitions if p.name.startswith("ota_"))
    table, index = otadata.parse(ctx.flash.read(part.offset, otadata.SIZE)).boot_next(slot, apps)
    _powered(ctx)
    ctx.flash.erase(part.offset + index * otadata.SECTOR, otadata.SECTOR)
    _powered(ctx)
    ctx.flash.write(part.offset + index * otadata.SECTOR, table.entries[index].pack())


class Console:
    """The ESP32 app's console input: lines of text; `ota <url>` starts an update."""

    def __init__(self, ctx: BoardContext, booted: BootedImage):
        self._ctx, self._booted = ctx, booted
        self._line = bytearray()

    def feed(self, data: bytes) -> None:
        for byte in data:
            if byte not in b"\r\n":
                self._line.append(byte)
                continue
            line, self._line = self._line.decode(errors="replace").strip(), bytearray()
            command, _, arg = line.partition(" ")
            if command == "ota" and arg.strip():
                run(self._ctx, self._booted, arg.strip())
            elif line:
                self._ctx.log(f"rig: unknown command {command!r}; commands: ota <url>")
