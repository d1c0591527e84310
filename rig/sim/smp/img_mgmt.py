"""MCUmgr image group (1): state read/write, upload, erase - Zephyr's img_mgmt for one image.

Build options modelled (the ones a Zephyr app on these boards would use):
- CONFIG_IMG_ERASE_PROGRESSIVELY: upload erases pages as it writes them (stream_flash.py), not the
  whole slot up front, so the first chunk answers fast even with 128 KiB sectors.
- CONFIG_IMG_ENABLE_IMAGE_CHECK: the last upload reply says whether the slot's bytes match "sha".
- CONFIG_MCUMGR_GRP_IMG_TOO_LARGE_BOOTLOADER_INFO: an upload larger than MCUboot's largest image
  (the slot less its trailer) is refused up front, not discovered at the next boot.
- Not FRUGAL_LIST (every flag is listed, and "splitStatus": 0), not LEGACY_RC (no "rc": 0).
"""

import hashlib
import weakref
from dataclasses import dataclass

from rig.image.mcuboot import HEADER, IMAGE_MAGIC
from rig.image.trailer import MAGIC_SIZE
from rig.sim.broken import broken
from rig.sim.flash import Flash, FlashError
from rig.sim.smp.protocol import BOOL, BSTR, U32, MgmtErr, decode_map
from rig.sim.smp.slots import (
    ACTIVE_SLOT,
    HASH_LEN,
    IMAGE_F_NON_BOOTABLE,
    ImgErr,
    NextBoot,
    Slots,
    img_error,
)
from rig.sim.smp.stream_flash import IMG_BLOCK_BUF_SIZE, StreamFlash, StreamFull

STATE = 0
UPLOAD = 1
ERASE = 5
UPLOAD_SLOT = 1 - ACTIVE_SLOT

# img_mgmt_translate_error_code: what an SMP v1 client gets as "rc" instead of a group error.
_V1_RC: dict[int, MgmtErr] = {
    ImgErr.NO_IMAGE: MgmtErr.ENOENT,
    ImgErr.NO_TLVS: MgmtErr.ENOENT,
    ImgErr.NO_FREE_SLOT: MgmtErr.EBADSTATE,
    ImgErr.CURRENT_VERSION_IS_NEWER: MgmtErr.EBADSTATE,
    ImgErr.IMAGE_ALREADY_PENDING: MgmtErr.EBADSTATE,
    ImgErr.NO_FREE_MEMORY: MgmtErr.ENOMEM,
    ImgErr.INVALID_SLOT: MgmtErr.EINVAL,
    ImgErr.INVALID_PAGE_OFFSET: MgmtErr.EINVAL,
    ImgErr.INVALID_OFFSET: MgmtErr.EINVAL,
    ImgErr.INVALID_LENGTH: MgmtErr.EINVAL,
    ImgErr.INVALID_IMAGE_HEADER: MgmtErr.EINVAL,
    ImgErr.INVALID_HASH: MgmtErr.EINVAL,
    ImgErr.INVALID_FLASH_ADDRESS: MgmtErr.EINVAL,
}


def translate_v1(rc: int) -> MgmtErr:
    return _V1_RC.get(rc, MgmtErr.EUNKNOWN)


@dataclass
class _Upload:
    """g_img_mgmt_state: the upload in progress (slot None = none)."""

    slot: int | None = None
    size: int = 0
    off: int = 0
    sha: bytes = b""


# The upload state the broken server of rig/sim/broken.py (resume-wrong-offset) keeps across power
# cuts, per board flash: the settings entry such a firmware would save, held in the daemon's memory.
_KEPT: "weakref.WeakKeyDictionary[Flash, _Upload]" = weakref.WeakKeyDictionary()


class ImageGroup:
    def __init__(self, flash: Flash, slots: Slots):
        self._flash = flash
        self._slots = slots
        self._upload = _Upload()
        self._writer: StreamFlash | None = None
        kept = _KEPT.get(flash)
        if kept is not None and kept.slot is not None and broken("resume-wrong-offset"):
            # Test-only fault switch: the upload goes on after the reboot, but flash_img's context
            # is new and writes from the slot's first byte.
            self._upload = kept
            part = slots.part(kept.slot)
            self._writer = StreamFlash(flash, part.offset, part.size)

    # -- state
    def state_read(self, body: bytes) -> dict:
        """img_mgmt_state_read: both slots that hold a readable image, with their flags."""
        nbs, kind = self._slots.next_boot()
        flags = {ACTIVE_SLOT: {"active": True, "confirmed": kind is not NextBoot.REVERT}, UPLOAD_SLOT: {}}
        if nbs != ACTIVE_SLOT:
            flags[UPLOAD_SLOT] = {
                NextBoot.NORMAL: {"pending": True, "permanent": True},
                NextBoot.REVERT: {"confirmed": True},
                NextBoot.TEST: {"pending": True},
            }[kind]
        images = []
        for slot in sorted(flags):
            info = self._slots.info_or_none(slot)
            if info is None:
                continue
            images.append({
                "slot": slot,
                "version": info.version_str,
                "hash": info.hash,
                "bootable": not info.flags & IMAGE_F_NON_BOOTABLE,
                **{f: flags[slot].get(f, False) for f in ("pending", "confirmed", "active", "permanent")},
            })
        return {"images": images, "splitStatus": 0}

    def state_write(self, body: bytes) -> dict:
        """img_mgmt_state_write: test the image with "hash", or confirm (the running one if no hash)."""
        req = decode_map(body, {"hash": BSTR, "confirm": BOOL})
        digest, confirm = req.get("hash", b""), req.get("confirm", False)
        if not digest:
            if not confirm:
                raise img_error(ImgErr.INVALID_HASH)  # a test names its image
            slot: int | None = ACTIVE_SLOT
        elif len(digest) != HASH_LEN:
            raise img_error(ImgErr.INVALID_HASH)
        elif (slot := self._slots.find_by_hash(digest)) is None:
            raise img_error(ImgErr.HASH_NOT_FOUND)
        assert slot is not None
        # Test-only fault switch (rig/sim/broken.py): a test request made permanent.
        self._slots.set_next(slot, confirm or (bool(digest) and broken("smp-test-is-permanent")))
        return self.state_read(b"")

    # -- upload
    def upload(self, body: bytes) -> dict:
        """img_mgmt_upload: one chunk; the reply's "off" is where the next chunk must start."""
        req = decode_map(body, {"image": U32, "data": BSTR, "len": U32, "off": U32, "sha": BSTR, "upgrade": BOOL})
        data = req.get("data", b"")
        try:
            if not self._inspect(req):
                return {"off": self._upload.off}  # wrong offset, or a resumable upload: say where to go on
            return self._write(req["off"], data)
        except Exception:
            self._reset_upload()
            raise
        finally:
            if broken("resume-wrong-offset"):
                _KEPT[self._flash] = self._upload  # test-only fault switch: saved after every chunk

    def _inspect(self, req: dict) -> bool:
        """img_mgmt_upload_inspect: refuse the request, skip it (False), or let it proceed (True)."""
        off, data, up = req.get("off"), req.get("data", b""), self._upload
        if off is None:
            raise img_error(ImgErr.INVALID_OFFSET)
        if off:
            if off != up.off:
                return False
            if off + len(data) > up.size:
                raise img_error(ImgErr.INVALID_IMAGE_DATA_OVERRUN)
            return True
        if len(data) < HEADER.size:
            raise img_error(ImgErr.INVALID_IMAGE_HEADER)
        if "len" not in req:
            raise img_error(ImgErr.INVALID_LENGTH)
        if HEADER.unpack_from(data)[0] != IMAGE_MAGIC:
            raise img_error(ImgErr.INVALID_IMAGE_HEADER_MAGIC)
        sha = req.get("sha", b"")
        if len(sha) > HASH_LEN:
            raise img_error(ImgErr.INVALID_HASH)
        if sha and up.slot is not None and sha == up.sha:
            if broken("resume-wrong-offset"):  # test-only fault switch (rig/sim/broken.py)
                up.off += IMG_BLOCK_BUF_SIZE
            return False  # the same upload again: resume where it stopped
        if self._slots.in_use(UPLOAD_SLOT):
            raise img_error(ImgErr.NO_FREE_SLOT)
        size = req["len"]
        if size > self._slots.trailers[UPLOAD_SLOT].max_image_size:
            raise img_error(ImgErr.INVALID_IMAGE_TOO_LARGE)
        if req.get("upgrade"):
            running = self._slots.info_or_none(ACTIVE_SLOT)
            if running is None:
                raise img_error(ImgErr.VERSION_GET_FAILED)
            new = HEADER.unpack_from(data)[6:10]
            if new[:3] <= running.version[:3]:
                raise img_error(ImgErr.CURRENT_VERSION_IS_NEWER)
        self._upload = _Upload(UPLOAD_SLOT, size, 0, sha)
        return True

    def _write(self, off: int, data: bytes) -> dict:
        up = self._upload
        if off == 0:
            if len(up.sha) == HASH_LEN and self._slot_sha(up) == up.sha:
                # Already there (an earlier upload finished): nothing to send, the reply says so.
                size = up.size
                self._reset_upload()
                return {"off": size, "match": True}
            assert up.slot is not None  # an upload is open
            part = self._slots.part(up.slot)
            self._writer = StreamFlash(self._flash, part.offset, part.size)
        if not data:
            return {"off": up.off}
        if self._writer is None:
            raise img_error(ImgErr.FLASH_CONTEXT_NOT_SET)
        last = up.off + len(data) == up.size
        try:
            self._writer.write(data, flush=last)
            if last:
                # flash_img: a stale trailer from an earlier upload must not make this image pending.
                assert up.slot is not None  # an upload is open
                t = self._slots.trailers[up.slot]
                self._writer.erase_page(t.slot_size - MAGIC_SIZE - 2 * t.align)  # boot_get_trailer_status_offset
        except (FlashError, StreamFull) as exc:
            raise img_error(ImgErr.FLASH_WRITE_FAILED) from exc
        up.off += len(data)
        reply = {"off": up.off}
        if last:
            # Test-only fault switch (rig/sim/broken.py): the image check always passes.
            reply["match"] = self._slot_sha(up) == up.sha or broken("smp-match-always")
            self._reset_upload()
        return reply

    def _slot_sha(self, up: _Upload) -> bytes:
        """flash_img_check: SHA-256 of the first `size` bytes of the slot, read back from flash."""
        assert up.slot is not None  # an upload is open
        return hashlib.sha256(self._slots.read(up.slot, 0, up.size)).digest()

    def _reset_upload(self) -> None:
        self._upload = _Upload()
        self._writer = None

    # -- erase
    def erase(self, body: bytes) -> dict:
        """img_mgmt_erase: erase a slot (default the secondary) unless a boot depends on it."""
        slot = decode_map(body, {"slot": U32}).get("slot", UPLOAD_SLOT)
        if self._slots.info_or_none(slot) is not None and self._slots.in_use(slot):
            raise img_error(ImgErr.NO_FREE_SLOT)
        try:
            self._slots.erase(slot)
        finally:
            self._reset_upload()
        return {}
