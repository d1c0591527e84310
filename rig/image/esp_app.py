"""ESP-IDF app and bootloader images for the ESP32, made with esptool's own image classes.

There is no Xtensa toolchain here, so the ESP32 "reference firmware" is a structurally real ESP-IDF
app image whose behaviour the virtual board takes from the rig app descriptor, as the STM32 boards
do from theirs. What is real, byte for byte (ESP-IDF `esp_app_format`, esptool `bin_image.py`):

    0x00  image header: magic 0xE9, segment count, SPI mode/size/freq, entry point, then the
          extended header (chip id 0 = ESP32, chip revision range, hash_appended = 1)
    0x18  first segment header: DROM at 0x3F400020, so flash offset and virtual address agree
          modulo the 64 KiB MMU page, as the bootloader's mapping requires
    0x20  esp_app_desc_t (256 B): magic 0xABCD5432, secure_version, version, project name,
          compile time/date (from SOURCE_DATE_EPOCH), idf_ver, app_elf_sha256, eFuse block
          revision range, MMU page size
    0x120 rig app descriptor (rig/image/appdesc.py), then - in a firmware that fetches its
          updates over HTTPS - the CA certificate(s) it trusts for its OTA server, PEM text and a
          NUL, as ESP-IDF's EMBED_TXTFILES leaves `server_certs/ca_cert.pem` in .rodata (the app
          hands `_binary_ca_cert_pem_start` to esp_https_ota as `cert_pem`)
          then the IROM (flash-mapped code) segment at a 64 KiB-congruent offset, the IRAM
          segment holding the entry point, the XOR checksum (seed 0xEF) and the SHA-256 digest.

The code bytes are a placeholder - an Xtensa `j .` loop - not a working program: on silicon this
image boots through the real bootloader's checks and then spins. docs/firmware.md says how to
build the real app with ESP-IDF. The second-stage bootloader image (bootloader_image) is the same
kind of placeholder: RAM-only segments with an `esp_bootloader_desc_t` at 0x20, which the virtual
ESP32 checks for at 0x1000 before its Python model of the ESP-IDF bootloader takes over.
"""

import hashlib
import os
import struct
import time
from dataclasses import dataclass

from esptool.bin_image import ELFSection, ESP32FirmwareImage, LoadFirmwareImage

from rig.errors import RigError
from rig.image import appdesc
from rig.image.mcuboot import Version

APP_DESC = struct.Struct("<II8s32s32s16s16s32s32sHHB3s72s")
APP_DESC_MAGIC = 0xABCD5432
APP_DESC_OFFSET = 0x20  # image header (0x18) + first segment header (0x8)
BOOTLOADER_DESC = struct.Struct("<BBBBI32s24s16s")
BOOTLOADER_DESC_MAGIC = 0x50
BOOTLOADER_OFFSET = 0x1000  # where the ESP32 ROM loads the second-stage bootloader from

# ESP32 memory map (esptool ESP32ROM.MEMORY_MAP) and what ESP-IDF's linker scripts put there.
DROM_ADDR = 0x3F400020  # .flash.rodata, starting with esp_app_desc_t
IROM_ADDR = 0x400D0020  # .flash.text
IRAM_APP_ADDR = 0x40080400  # past the exception vectors: call_start_cpu0
IRAM_LOADER_ADDR = 0x40078000  # the bootloader's .iram_loader_seg
DRAM_BOOTLOADER_ADDR = 0x3FFF0000  # the bootloader's .dram0.bootdesc

SPI_MODE_DIO = 2
SPI_SIZE_4MB_FREQ_40M = 0x20
CHIP_REV_MAX_FULL = 399  # ESP-IDF 5.x default for the ESP32: any v0.x-v3.x die
EFUSE_BLK_REV_MAX_FULL = 99
MMU_PAGE_LOG2 = 16

J_SELF = b"\x06\xff\xff\x00"  # Xtensa `j .` (CALL format, offset -4) padded to a word
IDF_VER = b"rig-synthetic"  # says plainly that ESP-IDF did not build this
PEM_BEGIN = b"-----BEGIN CERTIFICATE-----"


@dataclass(frozen=True)
class EspApp:
    """What an ESP32 app image says about itself, after its checksum and digest were checked."""

    version: str
    project: str
    secure_version: int
    idf_ver: str
    entry: int
    segments: int
    size: int  # bytes up to and including the SHA-256 digest
    descriptor: appdesc.AppDescriptor | None  # rig's, when the image carries one


def source_date_epoch() -> int:
    """$SOURCE_DATE_EPOCH, or 0: never the clock, so the same inputs give the same bytes."""
    raw = os.environ.get("SOURCE_DATE_EPOCH", "0")
    if not raw.isdigit():
        raise RigError(f"SOURCE_DATE_EPOCH={raw!r} is not a whole number of seconds; unset it or fix it")
    return int(raw)


def _compile_stamp(epoch: int | None) -> tuple[bytes, bytes]:
    """__TIME__ and __DATE__ as a C compiler prints them when SOURCE_DATE_EPOCH is `epoch`."""
    t = time.gmtime(source_date_epoch() if epoch is None else epoch)
    return time.strftime("%H:%M:%S", t).encode(), f"{time.strftime('%b', t)} {t.tm_mday:2d} {t.tm_year}".encode()


def _section(name: str, addr: int, data: bytes) -> ELFSection:
    # esptool's save() names padding after the section it precedes: it wants ELF-like sections.
    return ELFSection(name.encode(), addr, data, flags=0)


def _image(segments: list[ELFSection], entry: int) -> bytes:
    img = ESP32FirmwareImage()
    img.flash_mode = SPI_MODE_DIO
    img.flash_size_freq = SPI_SIZE_4MB_FREQ_40M
    img.max_rev_full = CHIP_REV_MAX_FULL
    img.entrypoint = entry
    img.segments = segments
    return img.save(None)


def app_image(version: Version | str, fault: str = "none", secure_version: int = 0,
              project: str = "rig-ref", epoch: int | None = None, code: bytes = J_SELF, ca_pem: bytes = b"") -> bytes:
    """An ESP-IDF app image for OTA slot flashing, carrying esp_app_desc_t and rig's descriptor.

    `code` is the .flash.text segment (default a `j .` loop); OTA and delta tests pass realistic
    amounts of code so that images differ the way two builds of one app do. `ca_pem`: the CA
    certificate(s) the app trusts for HTTPS OTA, embedded in .rodata (none: it fetches http:// only).
    """
    version = Version.parse(version) if isinstance(version, str) else version
    if fault not in appdesc.FAULTS:
        raise RigError(f"fault mode {fault!r} unknown; choose from {', '.join(appdesc.FAULTS)}")
    if not 0 <= secure_version <= 0xFFFFFFFF:
        raise RigError(f"secure version {secure_version} must fit 32 bits")
    if not project.isascii() or not 0 < len(project) <= 31:
        raise RigError(f"project name {project!r} must be 1-31 ASCII characters (esp_app_desc_t's field)")
    rig_desc = appdesc.AppDescriptor("esp32", (version.major, version.minor, version.revision, version.build),
                                     fault, project[:16]).pack()
    text = [(".flash.text", IROM_ADDR, bytes(code) + b"\0" * (-len(code) % 4)), (".iram0.text", IRAM_APP_ADDR, J_SELF)]
    # ESP-IDF stores the ELF's SHA-256 here; with no ELF, the digest of what stands in for it.
    elf_sha = hashlib.sha256(rig_desc + b"".join(struct.pack("<I", a) + d for _, a, d in text)).digest()
    hms, date = _compile_stamp(epoch)
    desc = APP_DESC.pack(APP_DESC_MAGIC, secure_version, b"", str(version).encode(), project.encode(),
                         hms, date, IDF_VER, elf_sha, 0, EFUSE_BLK_REV_MAX_FULL, MMU_PAGE_LOG2, b"", b"")
    rodata = desc + rig_desc + _embedded(ca_pem)
    segments = [_section(".flash.appdesc", DROM_ADDR, rodata), *(_section(*c) for c in text)]
    return _image(segments, IRAM_APP_ADDR)


def _embedded(ca_pem: bytes) -> bytes:
    if not ca_pem:
        return b""
    if PEM_BEGIN not in ca_pem or b"\0" in ca_pem:
        raise RigError("the OTA CA to embed must be PEM text (-----BEGIN CERTIFICATE-----...)")
    data = ca_pem + b"\0"  # EMBED_TXTFILES appends a NUL, so the firmware can pass it as a C string
    return data + b"\0" * (-len(data) % 4)


def embedded_ca(image: bytes) -> bytes | None:
    """The CA PEM an app image embeds after rig's descriptor (what the firmware's
    `_binary_ca_cert_pem_start` points at), or None when it embeds none. The image is not checked
    here: the bootloader did that before the app ran."""
    at = APP_DESC_OFFSET + APP_DESC.size + appdesc.SIZE
    if image[at : at + len(PEM_BEGIN)] != PEM_BEGIN:
        return None
    end = image.find(b"\0", at)
    return image[at:end] if end > 0 else None


def bootloader_image(version: int = 1, epoch: int | None = None) -> bytes:
    """A second-stage bootloader image for 0x1000: RAM segments only, esp_bootloader_desc_t first."""
    hms, date = _compile_stamp(epoch)
    desc = BOOTLOADER_DESC.pack(BOOTLOADER_DESC_MAGIC, 0, 0, 0, version, IDF_VER, date + b" " + hms, b"")
    segments = [_section(".dram0.bootdesc", DRAM_BOOTLOADER_ADDR, desc),
                _section(".iram_loader.text", IRAM_LOADER_ADDR, J_SELF)]
    return _image(segments, IRAM_LOADER_ADDR)


def _load(data: bytes):
    """esptool's own parser, with its complaints turned into one line; checksum and digest checked."""
    if len(data) < APP_DESC_OFFSET or data[0] != 0xE9:
        raise RigError("not an ESP image: it does not start with magic 0xE9")
    try:
        img = LoadFirmwareImage("esp32", data)
    except Exception as exc:  # esptool raises FatalError, RuntimeError or struct.error on bad input
        line = str(exc).strip().splitlines()
        raise RigError(f"ESP image: {line[0] if line else type(exc).__name__}") from None
    if img.checksum != img.calculate_checksum():
        raise RigError(f"ESP image: checksum 0x{img.checksum:02x} is wrong (corrupted image); rebuild it")
    if not img.append_digest or img.stored_digest != img.calc_digest:
        raise RigError("ESP image: SHA-256 digest missing or wrong (corrupted or truncated image); rebuild it")
    return img


def parse(data: bytes) -> EspApp:
    """An ESP32 app image's checked summary; one-line RigError for anything the bootloader refuses."""
    img = _load(bytes(data))
    first = img.segments[0] if img.segments else None
    if first is None or first.addr != DROM_ADDR or len(first.data) < APP_DESC.size:
        raise RigError("ESP image: no esp_app_desc_t in a first DROM segment (is this a bootloader image?)")
    (magic, secure_version, _, version, project, _, _, idf_ver, *_rest) = APP_DESC.unpack_from(first.data)
    if magic != APP_DESC_MAGIC:
        raise RigError(f"ESP image: esp_app_desc_t magic 0x{magic:08x}, expected 0x{APP_DESC_MAGIC:08x}")
    try:
        rig_desc = appdesc.parse(first.data[APP_DESC.size : APP_DESC.size + appdesc.SIZE])
    except RigError:
        rig_desc = None  # an app ESP-IDF built without rig's descriptor is still a valid app
    return EspApp(_text(version), _text(project), secure_version, _text(idf_ver), img.entrypoint,
                  len(img.segments), img.data_length + 32, rig_desc)


def check_bootloader(data: bytes) -> int:
    """Validate a second-stage bootloader image; returns its esp_bootloader_desc_t version."""
    img = _load(bytes(data))
    first = img.segments[0] if img.segments else None
    if first is None or len(first.data) < BOOTLOADER_DESC.size or first.data[0] != BOOTLOADER_DESC_MAGIC:
        raise RigError("ESP bootloader image: no esp_bootloader_desc_t (magic 0x50) at offset 0x20")
    return BOOTLOADER_DESC.unpack_from(first.data)[4]


def _text(raw: bytes) -> str:
    return raw.split(b"\0", 1)[0].decode("ascii", "replace")

