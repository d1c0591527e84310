"""The MCUboot bootloader model: swap-using-move with revert, resumable after a power cut anywhere.

It follows mcu-tools/mcuboot (boot/bootutil/src/loader.c context_boot_go, swap_move.c,
swap_misc.c, bootutil_public.c) for one image, MCUBOOT_SWAP_USING_MOVE,
MCUBOOT_VALIDATE_PRIMARY_SLOT and hardware downgrade prevention:

1. Read both trailers (rig.image.trailer); if the primary's magic is good, its copy_done unset and
   the secondary's magic not good, the swap status in the primary trailer says where an
   interrupted swap stopped, and it is completed first.
2. Otherwise the swap table gives test / perm / revert / none; an upgrade image in the secondary
   slot is validated first (hash, key hash, signature against the keys of the bootloader binary -
   see vmcuboot.py - and the security counter floor); an invalid one is erased.
3. The swap: move the primary's sectors up by one (newest first), then per sector copy
   secondary -> primary and moved primary -> secondary, writing a status entry after each step.
   Afterwards image_ok (perm, revert) and copy_done are set in the primary trailer.
4. The primary image is validated; when no swap is pending the stored security counter is raised
   to its SEC_CNT (so a test image can still be reverted). Then it is booted.

Every flash operation goes through the board's Flash, one operation per MCUboot flash call
(copies in chunks of COPY_CHUNK bytes, MCUboot's BOOT_TMPBUF_SZ role), so a power cut armed at
operation N lands exactly between or inside the same steps as on the part. The log lines are
MCUboot's own (`I: ...`, `W: ...`, `E: ...`).
"""

from dataclasses import dataclass

from rig.errors import RigError
from rig.image import mcuboot as image
from rig.image.trailer import Flag, Magic, StatusOp, SwapType, Trailer, TrailerState, swap_type
from rig.sim.board import BoardContext, BootedImage
from rig.sim.broken import broken
from rig.sim.stm32 import vmcuboot

COPY_CHUNK = 1024
FLAG_CODES = {Flag.SET: 0x1, Flag.BAD: 0x2, Flag.UNSET: 0x3}  # BOOT_FLAG_* as MCUboot prints them
SWAP_NAMES = {SwapType.TEST: "test", SwapType.PERM: "perm", SwapType.REVERT: "revert", SwapType.NONE: "none"}


@dataclass
class _Status:
    """MCUboot's struct boot_status: the step to do next (1-based idx and state)."""

    op: StatusOp
    idx: int
    state: int
    swap_type: SwapType
    swap_size: int
    from_primary: bool  # bs->source: the status area in the primary slot was already initialised

    @property
    def is_reset(self) -> bool:
        return self.op is StatusOp.MOVE and self.idx == 1 and self.state == 1


class _Slot:
    def __init__(self, ctx: BoardContext, name: str):
        part = ctx.layout.part(name)
        self.name = name
        self.flash, self.offset, self.size = ctx.flash, part.offset, part.size
        self.sector = ctx.layout.geometry.sector_size
        self.sectors = part.size // self.sector
        self.trailer = Trailer.for_layout(ctx.layout, name)

    def read(self, off: int, n: int) -> bytes:
        return self.flash.read(self.offset + off, n)

    def write(self, off: int, data: bytes) -> None:
        self.flash.write(self.offset + off, data)

    def erase(self, off: int, n: int) -> None:
        for sector_off in range(off, off + n, self.sector):
            self.flash.erase(self.offset + sector_off, self.sector)

    def state(self) -> TrailerState:
        t = self.trailer
        return t.read(self.read(t.status_off, t.size))

    def erase_trailer(self) -> None:
        # swap_erase_trailer_sectors: from the last sector backwards until the trailer is covered.
        start = self.trailer.erase_start(self.sector)
        for off in range(self.size - self.sector, start - 1, -self.sector):
            self.erase(off, self.sector)

    def image_size(self) -> int:
        """boot_read_image_size: header + payload + TLVs, 0 when the slot holds no parsable image."""
        try:
            return image.parse(self.read(0, self.trailer.max_image_size)).size
        except RigError:
            return 0


def _log_state(ctx: BoardContext, name: str, s: TrailerState) -> None:
    ctx.log(f"I: {name}: magic={s.magic.value}, swap_type=0x{int(s.swap_type):x}, "
            f"copy_done=0x{FLAG_CODES[s.copy_done]:x}, image_ok=0x{FLAG_CODES[s.image_ok]:x}")


def boot(ctx: BoardContext) -> BootedImage | None:
    loader = vmcuboot.read(ctx.flash, ctx.layout)
    if loader is None:
        return None  # no bootloader in the mcuboot partition: the core runs off into erased flash
    ctx.log("I: Starting bootloader")
    pri, sec = _Slot(ctx, "slot0"), _Slot(ctx, "slot1")
    floor = vmcuboot.read_counter(ctx.flash, ctx.layout)

    pri_state, sec_state = pri.state(), sec.state()
    _log_state(ctx, "Primary image", pri_state)
    _log_state(ctx, "Secondary image", sec_state)
    # swap_status_source: the primary trailer holds the status of a swap that has begun.
    from_primary = (pri_state.magic is Magic.GOOD and pri_state.copy_done is Flag.UNSET
                    and sec_state.magic is not Magic.GOOD)
    ctx.log(f"I: Boot source: {'primary slot' if from_primary else 'none'}")
    bs = _Status(StatusOp.MOVE, 1, 1, SwapType.NONE, 0, from_primary)
    if from_primary:
        bs.swap_type = pri_state.swap_type
        if pri_state.status is not None:
            bs.op, bs.idx, bs.state = pri_state.status.op, pri_state.status.idx, pri_state.status.state

    if not bs.is_reset:
        # boot_complete_partial_swap: finish what a reset interrupted, with the recorded size.
        bs.swap_size = pri_state.swap_size or 0
        _swap_run(ctx, pri, sec, bs)
        _finish_swap(pri, bs.swap_type)
        kind = bs.swap_type
    else:
        kind = _upgrade(ctx, pri, sec, loader, floor, bs, pri_state, sec_state)
    if from_primary and broken("revert-resumed-swap"):
        # Test-only fault switch (rig/sim/broken.py): the swap type is read from the trailers again,
        # where the image just swapped in is not confirmed yet: a revert, before that image ran.
        fresh = _Status(StatusOp.MOVE, 1, 1, SwapType.NONE, 0, False)
        kind = _upgrade(ctx, pri, sec, loader, floor, fresh, pri.state(), sec.state())

    img = _valid(ctx, pri, loader, floor)
    if img is None:
        ctx.log("E: Image in the primary slot is not valid!")
        ctx.log("E: Unable to find bootable image")
        return None
    if kind is SwapType.NONE and img.security_counter is not None:
        if not vmcuboot.update_counter(ctx.flash, ctx.layout, img.security_counter):
            ctx.log("W: Security counter storage is full; counter not updated")
    ctx.log(f"I: Bootloader chainload address offset: 0x{pri.offset:x}")
    ctx.log("I: Jumping to the first image slot")
    return BootedImage(slot=0, offset=pri.offset, header_size=img.header_size, image=pri.read(0, img.size))


def _upgrade(ctx: BoardContext, pri: _Slot, sec: _Slot, loader: vmcuboot.Bootloader, floor: int,
             bs: _Status, pri_state: TrailerState, sec_state: TrailerState) -> SwapType:
    """A swap from its first step: its type (from the trailers, or from a status area that has no entry
    yet), the secondary validated, then the swap. Returns the swap type done."""
    if bs.swap_type is SwapType.NONE:
        kind = swap_type(pri_state, sec_state)
        if kind is SwapType.REVERT and broken("no-revert"):
            kind = SwapType.NONE  # test-only fault switch (rig/sim/broken.py)
        ctx.log(f"I: Swap type: {SWAP_NAMES.get(kind, 'none')}")
    else:
        kind = bs.swap_type  # a swap whose status area was initialised but has no entry yet
    if kind not in (SwapType.TEST, SwapType.PERM, SwapType.REVERT):
        return kind
    if not _valid(ctx, sec, loader, floor if kind is not SwapType.REVERT else None):
        ctx.log("E: Image in the secondary slot is not valid!")
        sec.erase(0, sec.size)
        return SwapType.NONE
    bs.swap_type = kind
    bs.swap_size = max(pri.image_size(), sec.image_size())
    if not _swap_run(ctx, pri, sec, bs):
        return SwapType.NONE
    _finish_swap(pri, kind)
    return kind


def _valid(ctx: BoardContext, slot: _Slot, loader: vmcuboot.Bootloader, floor: int | None):
    """boot_validate_slot: the image if it verifies against the bootloader's keys, else None."""
    try:
        # Test-only fault switches (rig/sim/broken.py): no validation at all, or none of the primary.
        if broken("no-signature-check") or (slot.name == "slot0" and broken("no-primary-validation")):
            return image.parse(slot.read(0, slot.trailer.max_image_size))
        if broken("no-security-counter"):
            floor = None
        # A stored floor of 0 means the counter was never raised: images without SEC_CNT still boot.
        return image.verify(slot.read(0, slot.trailer.max_image_size), list(loader.keys),
                            min_security_counter=floor or None, slot_size=slot.trailer.max_image_size)
    except RigError:
        return None


def _finish_swap(pri: _Slot, kind: SwapType) -> None:
    # boot_perform_update / boot_complete_partial_swap: image_ok for perm and revert (so a revert
    # is not reverted again), copy_done for every upgrade.
    state = pri.state()
    sets_image_ok = {SwapType.PERM, SwapType.REVERT}
    if broken("revert-no-image-ok"):  # test-only fault switches (rig/sim/broken.py)
        sets_image_ok.discard(SwapType.REVERT)
    if broken("image-ok-on-test"):
        sets_image_ok.add(SwapType.TEST)
    if kind in sets_image_ok and state.image_ok is Flag.UNSET:
        pri.write(*pri.trailer.write_image_ok())
    if kind in (SwapType.TEST, SwapType.PERM, SwapType.REVERT) and pri.state().copy_done is Flag.UNSET:
        pri.write(*pri.trailer.write_copy_done())


def _swap_run(ctx: BoardContext, pri: _Slot, sec: _Slot, bs: _Status) -> bool:
    """swap_move.c swap_run: False when the image does not leave room for the move (nothing done)."""
    ctx.log("I: Starting swap using move algorithm.")
    sz = pri.sector
    last_idx = max(1, -(-bs.swap_size // sz))
    if broken("swap-size-rounded-down"):  # test-only fault switch (rig/sim/broken.py)
        last_idx = max(1, bs.swap_size // sz)
    fresh = bs.is_reset
    if fresh:
        first_trailer_idx = pri.sectors - 1 - (-(-pri.trailer.size // sz) - 1)
        if last_idx >= first_trailer_idx:
            ctx.log("W: Not enough free space to run swap upgrade")
            ctx.log(f"W: required {(last_idx + 1) * sz} bytes but only {first_trailer_idx * sz} are available")
            return False
    if bs.swap_type is SwapType.REVERT and fresh:
        _fixup_revert(pri, sec, bs)
    if bs.op is StatusOp.MOVE:
        for idx in range(last_idx, 0, -1):
            if idx <= last_idx - bs.idx + 1:
                _move_sector_up(pri, sec, bs, idx)
        bs.op, bs.idx, bs.state = StatusOp.SWAP, 1, 1
    for idx in range(1, last_idx + 1):
        if idx >= bs.idx:
            _swap_sectors(pri, sec, bs, idx)
    return True


def _fixup_revert(pri: _Slot, sec: _Slot, bs: _Status) -> None:
    # Make a revert look like a permanent upgrade, so a cut right after the primary's status area
    # is re-initialised still resumes (swap_move.c fixup_revert).
    if sec.state().magic is Magic.UNSET:
        t = sec.trailer
        sec.erase_trailer()
        if not broken("revert-no-image-ok"):  # test-only fault switch (rig/sim/broken.py)
            sec.write(*t.write_image_ok())  # swap_status_init copies it into the primary's trailer
        sec.write(*t.write_swap_size(bs.swap_size))
        sec.write(*t.write_magic())


def _status_init(pri: _Slot, sec_image_ok: Flag, bs: _Status) -> None:
    """swap_misc.c swap_status_init, into the primary trailer."""
    t = pri.trailer
    if bs.swap_type is not SwapType.NONE:
        pri.write(*t.write_swap_info(bs.swap_type))
    if sec_image_ok is Flag.SET:
        pri.write(*t.write_image_ok())
    pri.write(*t.write_swap_size(bs.swap_size))
    pri.write(*t.write_magic())


def _copy(src: _Slot, dst: _Slot, src_off: int, dst_off: int, n: int) -> None:
    for i in range(0, n, COPY_CHUNK):
        dst.write(dst_off + i, src.read(src_off + i, min(COPY_CHUNK, n - i)))


def _write_status(pri: _Slot, bs: _Status) -> None:
    if broken("swap-status-not-written"):  # test-only fault switch (rig/sim/broken.py)
        return
    pri.write(*pri.trailer.write_status(bs.op, bs.idx, bs.state))


def _move_sector_up(pri: _Slot, sec: _Slot, bs: _Status, idx: int) -> None:
    sz = pri.sector
    if bs.idx == 1:
        request_first = broken("request-erased-first")
        sec_image_ok = sec.state().image_ok
        if request_first:
            sec.erase_trailer()  # test-only fault switch (rig/sim/broken.py): before the swap is recorded
        if not bs.from_primary:
            pri.erase_trailer()
            _status_init(pri, sec_image_ok, bs)
        if not request_first:
            sec.erase_trailer()
    pri.erase(idx * sz, sz)
    _copy(pri, pri, (idx - 1) * sz, idx * sz, sz)
    _write_status(pri, bs)
    bs.idx += 1


def _swap_sectors(pri: _Slot, sec: _Slot, bs: _Status, idx: int) -> None:
    sz = pri.sector
    pri_off, pri_up_off, sec_off = (idx - 1) * sz, idx * sz, (idx - 1) * sz
    if bs.state == 1:
        pri.erase(pri_off, sz)
        _copy(sec, pri, sec_off, pri_off, sz)
        _write_status(pri, bs)
        bs.state = 2
    if bs.state == 2:
        sec.erase(sec_off, sz)
        _copy(pri, sec, pri_up_off, sec_off, sz)
        _write_status(pri, bs)
        bs.idx += 1
        bs.state = 1

