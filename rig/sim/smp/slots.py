"""The two MCUboot slots as Zephyr's img_mgmt sees them through the flash map.

Slot 0 is the primary (the running image: MCUboot swaps, so the app always runs from it), slot 1
the secondary that uploads go to. What is read here - image info from the header and TLVs, the
swap type from both trailers - and the trailer writes follow zephyr_img_mgmt.c, img_mgmt_state.c
and MCUboot's bootutil_public.c (boot_set_next). Image info is read the way img_mgmt reads it - the
header, then a walk of the TLV areas straight from flash for the SHA256 entry - not with
rig.image.mcuboot.parse: the server must list an image whose signature or sizes MCUboot would
reject, and answer with img_mgmt's own error codes when it cannot; it shares that module's format
constants.
"""

from dataclasses import dataclass
from enum import Enum, IntEnum

from rig.image import trailer as tr
from rig.image.layouts import Layout, Partition
from rig.image.mcuboot import HEADER, IMAGE_MAGIC, TLV_INFO, TLV_INFO_MAGIC, TLV_PROT_INFO_MAGIC, TLV_SHA256
from rig.sim.flash import Flash, FlashError
from rig.sim.smp.protocol import Group, GroupError

HASH_LEN = 32
IMAGE_F_NON_BOOTABLE = 0x10
ACTIVE_SLOT = 0
SLOT_PARTITIONS = ("slot0", "slot1")


class ImgErr(IntEnum):
    """img_mgmt_err_code_t."""

    OK = 0
    UNKNOWN = 1
    FLASH_CONFIG_QUERY_FAIL = 2
    NO_IMAGE = 3
    NO_TLVS = 4
    INVALID_TLV = 5
    TLV_MULTIPLE_HASHES_FOUND = 6
    TLV_INVALID_SIZE = 7
    HASH_NOT_FOUND = 8
    NO_FREE_SLOT = 9
    FLASH_OPEN_FAILED = 10
    FLASH_READ_FAILED = 11
    FLASH_WRITE_FAILED = 12
    FLASH_ERASE_FAILED = 13
    INVALID_SLOT = 14
    NO_FREE_MEMORY = 15
    FLASH_CONTEXT_ALREADY_SET = 16
    FLASH_CONTEXT_NOT_SET = 17
    FLASH_AREA_DEVICE_NULL = 18
    INVALID_PAGE_OFFSET = 19
    INVALID_OFFSET = 20
    INVALID_LENGTH = 21
    INVALID_IMAGE_HEADER = 22
    INVALID_IMAGE_HEADER_MAGIC = 23
    INVALID_HASH = 24
    INVALID_FLASH_ADDRESS = 25
    VERSION_GET_FAILED = 26
    CURRENT_VERSION_IS_NEWER = 27
    IMAGE_ALREADY_PENDING = 28
    INVALID_IMAGE_VECTOR_TABLE = 29
    INVALID_IMAGE_TOO_LARGE = 30
    INVALID_IMAGE_DATA_OVERRUN = 31
    IMAGE_CONFIRMATION_DENIED = 32
    IMAGE_SETTING_TEST_TO_ACTIVE_DENIED = 33


def img_error(rc: ImgErr) -> GroupError:
    return GroupError(Group.IMAGE, rc)


class NextBoot(Enum):
    NORMAL = "normal"
    TEST = "test"
    REVERT = "revert"


@dataclass(frozen=True)
class ImageInfo:
    version: tuple[int, int, int, int]  # major, minor, revision, build
    hash: bytes  # the SHA256 TLV: what clients name the image by
    flags: int

    @property
    def version_str(self) -> str:
        """img_mgmt_ver_str: x.y.z, and .build only when the build number is not 0."""
        major, minor, revision, build = self.version
        return f"{major}.{minor}.{revision}" + (f".{build}" if build else "")


class Slots:
    def __init__(self, flash: Flash, layout: Layout):
        self.flash = flash
        self.parts: tuple[Partition, ...] = tuple(layout.part(name) for name in SLOT_PARTITIONS)
        self.trailers = tuple(tr.Trailer.for_layout(layout, name) for name in SLOT_PARTITIONS)

    def part(self, slot: int) -> Partition:
        if not 0 <= slot < len(self.parts):
            raise img_error(ImgErr.INVALID_SLOT)
        return self.parts[slot]

    def read(self, slot: int, off: int, length: int) -> bytes:
        """flash_area_read: refused outside the slot (IMG_MGMT_ERR_FLASH_READ_FAILED)."""
        part = self.part(slot)
        if off < 0 or off + length > part.size:
            raise img_error(ImgErr.FLASH_READ_FAILED)
        return self.flash.read(part.offset + off, length)

    # -- images
    def read_info(self, slot: int) -> ImageInfo:
        """img_mgmt_read_info: version and flags from the header, the hash from the TLVs."""
        magic, _, hdr_size, _, img_size, flags, *version, _ = HEADER.unpack(self.read(slot, 0, HEADER.size))
        if magic != IMAGE_MAGIC:
            erased = self.flash.geometry.erased
            raise img_error(ImgErr.NO_IMAGE if magic == erased * 0x0101_0101 else ImgErr.INVALID_IMAGE_HEADER_MAGIC)
        off = hdr_size + img_size
        tlv_magic, total = TLV_INFO.unpack(self.read(slot, off, TLV_INFO.size))
        if tlv_magic == TLV_PROT_INFO_MAGIC:
            off += total  # the protected area's total counts its own info header
            tlv_magic, total = TLV_INFO.unpack(self.read(slot, off, TLV_INFO.size))
        if tlv_magic != TLV_INFO_MAGIC:
            raise img_error(ImgErr.NO_TLVS)
        off, end = off + 4, off + 4 + total
        found = None
        while off + 4 <= end:
            kind, length = TLV_INFO.unpack(self.read(slot, off, TLV_INFO.size))
            if kind == 0xFF and length == 0xFFFF:
                raise img_error(ImgErr.INVALID_TLV)
            off += 4
            if kind != TLV_SHA256 or length != HASH_LEN:
                off += length
                continue
            if found is not None:
                raise img_error(ImgErr.TLV_MULTIPLE_HASHES_FOUND)
            if off + HASH_LEN > end:
                raise img_error(ImgErr.TLV_INVALID_SIZE)
            found = self.read(slot, off, HASH_LEN)
        if found is None:
            raise img_error(ImgErr.HASH_NOT_FOUND)
        return ImageInfo(tuple(version), found, flags)

    def info_or_none(self, slot: int) -> ImageInfo | None:
        try:
            return self.read_info(slot)
        except GroupError:
            return None

    def find_by_hash(self, digest: bytes) -> int | None:
        for slot in range(len(self.parts)):
            info = self.info_or_none(slot)
            if info is not None and info.hash == digest:
                return slot
        return None

    # -- boot state
    def trailer_state(self, slot: int) -> tr.TrailerState:
        t = self.trailers[slot]
        return t.read(self.read(slot, t.slot_size - t.size, t.size))

    def swap_type(self) -> tr.SwapType:
        return tr.swap_type(self.trailer_state(0), self.trailer_state(1))

    def next_boot(self) -> tuple[int, NextBoot]:
        """img_mgmt_get_next_boot_slot: which slot boots after the next reset, and how."""
        swap = self.swap_type()
        if swap is tr.SwapType.NONE:
            return ACTIVE_SLOT, NextBoot.NORMAL
        kind = {tr.SwapType.PERM: NextBoot.NORMAL, tr.SwapType.REVERT: NextBoot.REVERT}.get(swap, NextBoot.TEST)
        return 1 - ACTIVE_SLOT, kind

    def in_use(self, slot: int) -> bool:
        """img_mgmt_slot_in_use: the running slot, or one a swap is set up to use, is not free."""
        nbs, kind = self.next_boot()
        if slot == nbs and kind in (NextBoot.REVERT, NextBoot.TEST):
            return True
        if kind is NextBoot.NORMAL and nbs != ACTIVE_SLOT:
            return True
        return slot == ACTIVE_SLOT

    def set_next(self, slot: int, confirm: bool) -> None:
        """img_mgmt_set_next_boot_slot: the checks, then MCUboot's boot_set_next."""
        nbs, kind = self.next_boot()
        if not confirm and slot == ACTIVE_SLOT:
            raise img_error(ImgErr.IMAGE_SETTING_TEST_TO_ACTIVE_DENIED)
        if kind is NextBoot.TEST:
            if not confirm and slot == nbs:
                return
            raise img_error(ImgErr.IMAGE_ALREADY_PENDING)
        if kind is NextBoot.NORMAL:
            if confirm and slot == nbs:
                return
            if (slot == ACTIVE_SLOT and nbs != ACTIVE_SLOT) or (not confirm and slot != ACTIVE_SLOT and slot == nbs):
                raise img_error(ImgErr.IMAGE_ALREADY_PENDING)
        if kind is NextBoot.REVERT:
            if confirm and slot == nbs:
                return
            if not confirm:
                raise img_error(ImgErr.IMAGE_ALREADY_PENDING)
        self._boot_set_next(slot, active=slot == ACTIVE_SLOT, confirm=confirm)

    def _boot_set_next(self, slot: int, active: bool, confirm: bool) -> None:
        t = self.trailers[slot]
        state = self.trailer_state(slot)
        if state.magic is tr.Magic.BAD:
            if active:
                raise img_error(ImgErr.INVALID_IMAGE_VECTOR_TABLE)  # BOOT_EBADVECT
            # MCUboot: a corrupt secondary cannot be recovered, so it is erased for the next upload.
            self.erase(slot)
            raise img_error(ImgErr.INVALID_IMAGE_HEADER_MAGIC)  # BOOT_EBADIMAGE
        if active:
            writes = t.confirm(state)
        elif confirm:
            writes = t.mark_permanent(state)
        else:
            writes = t.mark_test(state)
        base = self.part(slot).offset
        try:
            for off, data in writes:
                self.flash.write(base + off, data)
        except FlashError as exc:
            raise img_error(ImgErr.FLASH_WRITE_FAILED) from exc  # BOOT_EFLASH

    def erase(self, slot: int) -> None:
        """img_mgmt_erase_slot: erase the whole slot unless it already reads erased."""
        part = self.part(slot)
        if not self.flash.is_erased(part.offset, part.size):
            try:
                self.flash.erase(part.offset, part.size)
            except FlashError as exc:
                raise img_error(ImgErr.FLASH_ERASE_FAILED) from exc
