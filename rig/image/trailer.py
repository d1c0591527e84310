"""The MCUboot image trailer at the end of each slot: where its fields live and what they mean.

Layout, from the end of the slot (MCUboot bootutil, swap-using-move, no encryption), with
A = BOOT_MAX_ALIGN (max(8, write unit): 8 on the STM32L0, 32 on the STM32H7) and W = the flash
write unit:

    magic      16 B at size-16; its write is ALIGN_UP(16, A) bytes, erased-value padded in front
    image_ok   1 B at ALIGN_DOWN(size-16-A, A), written as one W-byte unit
    copy_done  image_ok - A
    swap_info  copy_done - A   (image number << 4 | swap type)
    swap_size  swap_info - A   (u32 LE, bytes the swap covers)
    status     at size - trailer size: max_sectors * 3 entries of W bytes
               (1 "move" entry per sector, then 2 "swap" entries per sector)

trailer size = max_sectors * 3 * W + 4 * A + ALIGN_UP(16, A), the same figure imgtool pads with.
A flag is "set" when it reads 0x01 and "unset" when it reads the erased value - on the STM32L0
that is 0x00, so "unset" there is 0x00, never 0xFF. Any other value is "bad".

Offsets here are relative to the start of the slot. Writes come back as (offset, bytes) pairs,
each a whole number of write units, in the order MCUboot issues them, so a flash model that cuts
power between them sees exactly the states the real part would.
"""

import struct
from dataclasses import dataclass
from enum import Enum, IntEnum

from rig.errors import RigError
from rig.image.layouts import Layout

DEFAULT_MAX_ALIGN = 8
MAGIC_SIZE = 16
# BOOT_MAX_ALIGN == 8 uses the historic magic; any other alignment stores it as a u16 in front of
# a shorter magic, so a bootloader built for another alignment never mistakes the trailer for its own.
MAGIC_ALIGN8 = bytes.fromhex("77c295f360d2ef7f3552500f2cb67980")
MAGIC_TAIL = bytes.fromhex("2de15d29410b8d77679c110f1f8a")
FLAG_SET = 0x01
WRITE_SIZES = (1, 2, 4, 8, 16, 32)
# swap-using-move: one status entry per sector moved up, two per sector swapped.
MOVE_STATES = 1
SWAP_STATES = 2
STATE_COUNT = MOVE_STATES + SWAP_STATES

Write = tuple[int, bytes]


class Magic(Enum):
    GOOD = "good"
    UNSET = "unset"
    BAD = "bad"


class Flag(Enum):
    SET = "set"
    UNSET = "unset"
    BAD = "bad"


class SwapType(IntEnum):
    """MCUboot's BOOT_SWAP_TYPE_* values, as stored in the low nibble of swap_info."""

    NONE = 1
    TEST = 2
    PERM = 3
    REVERT = 4
    FAIL = 5
    PANIC = 0xFF


class StatusOp(Enum):
    MOVE = "move"
    SWAP = "swap"


@dataclass(frozen=True)
class SwapStatus:
    """Where an interrupted swap resumes: the next step, as MCUboot's boot_status (1-based)."""

    op: StatusOp
    idx: int
    state: int


@dataclass(frozen=True)
class TrailerState:
    magic: Magic
    image_ok: Flag
    copy_done: Flag
    swap_type: SwapType  # from swap_info; NONE when erased or out of range
    image_num: int
    swap_size: int | None  # None while erased
    status: SwapStatus | None  # None when no status entry is written


def _align_up(n: int, a: int) -> int:
    return (n + a - 1) // a * a


def _align_down(n: int, a: int) -> int:
    return n // a * a


@dataclass(frozen=True)
class Trailer:
    """The trailer of one slot: geometry in, offsets, state and writes out."""

    slot_size: int
    write_size: int  # W: the flash write unit
    erased: int  # value of an erased byte: 0xFF, or 0x00 on the STM32L0
    max_sectors: int  # MCUBOOT_MAX_IMG_SECTORS of the bootloader: sizes the status area
    max_align: int | None = None  # A; None means max(8, write_size) as MCUboot defaults

    def __post_init__(self):
        if self.write_size not in WRITE_SIZES:
            raise RigError(f"trailer: write size {self.write_size} unsupported; MCUboot takes {WRITE_SIZES}")
        a = self.align
        if a < DEFAULT_MAX_ALIGN or a > 32 or a & (a - 1) or a < self.write_size:
            raise RigError(f"trailer: max align {a} must be a power of two from 8 to 32 and >= the write size")
        if self.erased not in (0x00, 0xFF):
            raise RigError(f"trailer: erased value 0x{self.erased:x} unknown; flash erases to 0xFF or 0x00")
        if self.max_sectors < 1:
            raise RigError("trailer: max sectors must be at least 1")
        if self.slot_size % a or self.slot_size < self.size:
            raise RigError(f"trailer: slot of {self.slot_size} bytes is not a multiple of {a} "
                           f"or cannot hold the {self.size}-byte trailer")

    @classmethod
    def for_layout(cls, layout: Layout, slot: str = "slot0") -> "Trailer":
        """The trailer of `slot` in a layout; max_sectors is the primary slot's sector count."""
        g = layout.geometry
        return cls(layout.part(slot).size, g.write_size, g.erased, layout.part("slot0").size // g.sector_size)

    # -- geometry
    @property
    def align(self) -> int:
        return self.max_align if self.max_align is not None else max(DEFAULT_MAX_ALIGN, self.write_size)

    @property
    def magic(self) -> bytes:
        if self.align == DEFAULT_MAX_ALIGN:
            return MAGIC_ALIGN8
        return struct.pack("<H", self.align) + MAGIC_TAIL

    @property
    def size(self) -> int:
        """boot_trailer_sz: bytes from the start of the status area to the end of the slot."""
        return self.max_sectors * STATE_COUNT * self.write_size + 4 * self.align + _align_up(MAGIC_SIZE, self.align)

    @property
    def magic_off(self) -> int:
        return self.slot_size - MAGIC_SIZE

    @property
    def image_ok_off(self) -> int:
        return _align_down(self.magic_off - self.align, self.align)

    @property
    def copy_done_off(self) -> int:
        return self.image_ok_off - self.align

    @property
    def swap_info_off(self) -> int:
        return self.copy_done_off - self.align

    @property
    def swap_size_off(self) -> int:
        return self.swap_info_off - self.align

    @property
    def status_off(self) -> int:
        return self.slot_size - self.size

    @property
    def max_image_size(self) -> int:
        """Largest header + payload + TLVs that leaves the trailer untouched."""
        return self.status_off

    def erase_start(self, sector_size: int) -> int:
        """First byte of the sectors that hold the trailer (what swap_erase_trailer_sectors erases)."""
        return _align_down(self.status_off, sector_size)

    def status_entry_off(self, op: StatusOp, idx: int, state: int) -> int:
        """Offset of the status entry recording step (op, idx, state) done; idx and state are 1-based."""
        if op is StatusOp.MOVE:
            base, per_idx = 0, MOVE_STATES
        else:
            base, per_idx = self.max_sectors * MOVE_STATES, SWAP_STATES
        entry = base + (idx - 1) * per_idx + (state - 1)
        if not 1 <= idx <= self.max_sectors or not 1 <= state <= per_idx:
            raise RigError(f"trailer: no status entry for {op.value} idx {idx} state {state}")
        return self.status_off + entry * self.write_size

    # -- reading
    def read(self, data: bytes) -> TrailerState:
        """Decode the trailer from the slot's bytes, or from at least its last `size` bytes."""
        if len(data) < self.size:
            raise RigError(f"trailer: {len(data)} bytes given, need the last {self.size} bytes of the slot")
        shift = len(data) - self.slot_size  # maps a slot offset to an index into data

        def at(off: int, n: int) -> bytes:
            return bytes(data[off + shift : off + shift + n])

        magic = at(self.magic_off, MAGIC_SIZE)
        swap_info = at(self.swap_info_off, 1)[0]
        swap_type, image_num = swap_info & 0x0F, swap_info >> 4
        if swap_info == self.erased or not SwapType.NONE <= swap_type <= SwapType.REVERT:
            swap_type, image_num = SwapType.NONE, 0
        swap_size_raw = at(self.swap_size_off, 4)
        return TrailerState(
            magic=Magic.UNSET if self._erased(magic) else Magic.GOOD if magic == self.magic else Magic.BAD,
            image_ok=self._flag(at(self.image_ok_off, 1)[0]),
            copy_done=self._flag(at(self.copy_done_off, 1)[0]),
            swap_type=SwapType(swap_type),
            image_num=image_num,
            swap_size=None if self._erased(swap_size_raw) else struct.unpack("<I", swap_size_raw)[0],
            status=self._status(at(self.status_off, self.max_sectors * STATE_COUNT * self.write_size)),
        )

    def _erased(self, b: bytes) -> bool:
        return b == bytes([self.erased]) * len(b)

    def _flag(self, value: int) -> Flag:
        if value == self.erased:
            return Flag.UNSET
        return Flag.SET if value == FLAG_SET else Flag.BAD

    def _status(self, area: bytes) -> SwapStatus | None:
        # As swap_read_status_bytes: the last written entry (first byte not erased) says how far
        # the swap got; the step after it is where a resumed swap continues.
        written = 0
        for i in range(len(area) // self.write_size, 0, -1):
            if area[(i - 1) * self.write_size] != self.erased:
                written = i
                break
        if not written:
            return None
        moves = self.max_sectors * MOVE_STATES
        if written < moves:
            return SwapStatus(StatusOp.MOVE, written // MOVE_STATES + 1, written % MOVE_STATES + 1)
        n = written - moves
        return SwapStatus(StatusOp.SWAP, n // SWAP_STATES + 1, n % SWAP_STATES + 1)

    # -- writing: each returns (offset, bytes) pairs, whole write units, padded with the erased value
    def _unit(self, off: int, value: bytes) -> Write:
        n = _align_up(len(value), self.write_size)
        return off, value + bytes([self.erased]) * (n - len(value))

    def write_magic(self) -> Write:
        pad = _align_up(MAGIC_SIZE, self.align) - MAGIC_SIZE
        return self.magic_off - pad, bytes([self.erased]) * pad + self.magic

    def write_image_ok(self) -> Write:
        return self._unit(self.image_ok_off, bytes([FLAG_SET]))

    def write_copy_done(self) -> Write:
        return self._unit(self.copy_done_off, bytes([FLAG_SET]))

    def write_swap_info(self, swap_type: SwapType, image_num: int = 0) -> Write:
        return self._unit(self.swap_info_off, bytes([(image_num << 4) | (swap_type & 0x0F)]))

    def write_swap_size(self, swap_size: int) -> Write:
        return self._unit(self.swap_size_off, struct.pack("<I", swap_size))

    def write_status(self, op: StatusOp, idx: int, state: int) -> Write:
        # The entry's first byte is the state number (1, 2), never the erased value on either flash.
        return self._unit(self.status_entry_off(op, idx, state), bytes([state]))

    # -- what an application or SMP server does (MCUboot boot_set_pending / boot_set_confirmed)
    def mark_test(self, state: TrailerState | None = None) -> list[Write]:
        """Make the image in this (secondary) slot run once on trial at the next reset."""
        return self._set_pending(state, permanent=False)

    def mark_permanent(self, state: TrailerState | None = None) -> list[Write]:
        """Make the image in this (secondary) slot replace the primary for good at the next reset."""
        return self._set_pending(state, permanent=True)

    def confirm(self, state: TrailerState | None = None) -> list[Write]:
        """Mark the running image in this (primary) slot good, so the next reset keeps it.

        An erased trailer (no swap happened) is already confirmed; a bad magic cannot be fixed.
        """
        if state is None or state.magic is Magic.GOOD and state.image_ok is Flag.UNSET:
            return [self.write_image_ok()]
        if state.magic is Magic.BAD:
            raise RigError("trailer: primary slot has a bad magic; erase and re-flash the slot")
        return []

    def _set_pending(self, state: TrailerState | None, permanent: bool) -> list[Write]:
        if state is not None and state.magic is Magic.GOOD:
            return []  # already pending; MCUboot leaves it as it is
        if state is not None and state.magic is Magic.BAD:
            raise RigError("trailer: secondary slot has a bad magic; erase the slot and upload again")
        writes = [self.write_magic()]
        if permanent:
            writes.append(self.write_image_ok())
        writes.append(self.write_swap_info(SwapType.PERM if permanent else SwapType.TEST))
        return writes


def swap_move_room(layout: Layout) -> int:
    """Largest image (header + payload + TLVs) a swap-using-move upgrade can move, in bytes.

    As swap_move.c swap_run: the image's sectors move up one sector in the primary slot, and the
    highest of them must stay below the first sector holding the trailer (those are erased whole).
    On the STM32H743 layout that is 2 of the primary's 4 sectors: 256 KiB, not the slot size.
    """
    sector = layout.geometry.sector_size
    primary = Trailer.for_layout(layout, "slot0")
    first_trailer_sector = primary.slot_size // sector - -(-primary.size // sector)
    return max(first_trailer_sector - 1, 0) * sector


def apply(buf: bytearray, writes: list[Write]) -> bytearray:
    """Apply trailer writes to a slot image held in memory (padding a signed image, tests)."""
    for off, data in writes:
        buf[off : off + len(data)] = data
    return buf


# MCUboot's boot_swap_tables, in order: the secondary slot's wishes come before the primary's.
# None means "any".
_SWAP_TABLE = (
    # primary magic, secondary magic, primary image_ok, secondary image_ok, primary copy_done
    ((None, Magic.GOOD, None, Flag.UNSET, None), SwapType.TEST),
    ((None, Magic.GOOD, None, Flag.SET, None), SwapType.PERM),
    ((Magic.GOOD, Magic.UNSET, Flag.UNSET, None, Flag.SET), SwapType.REVERT),
)


def swap_type(primary: TrailerState, secondary: TrailerState) -> SwapType:
    """What the bootloader does at this reset, from both slots' trailers (boot_swap_type).

    REVERT also needs the secondary magic unset, as in MCUboot: after a swap-using-move upgrade
    the old image sits in the secondary slot with its trailer erased.
    """
    seen = (primary.magic, secondary.magic, primary.image_ok, secondary.image_ok, primary.copy_done)
    for want, result in _SWAP_TABLE:
        if all(w is None or w is s for w, s in zip(want, seen, strict=True)):
            return result
    return SwapType.NONE
