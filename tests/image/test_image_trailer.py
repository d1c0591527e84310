"""The MCUboot trailer: offsets and bytes against imgtool's padding, states per MCUboot's tables."""

import pytest

from rig.errors import RigError
from rig.image.layouts import LAYOUTS
from rig.image.trailer import (
    Flag,
    Magic,
    StatusOp,
    SwapStatus,
    SwapType,
    Trailer,
    apply,
    swap_move_room,
    swap_type,
)

H7 = Trailer.for_layout(LAYOUTS["stm32h743-2x1m"], "slot1")
L0 = Trailer.for_layout(LAYOUTS["stm32l073-192k"], "slot1")


def erased(t: Trailer) -> bytearray:
    return bytearray([t.erased]) * t.slot_size


def test_layout_figures():
    # STM32H7: A = W = 32, 4 sectors of 128 KiB -> 4*3*32 + 4*32 + 32 bytes.
    assert (H7.align, H7.size, H7.image_ok_off) == (32, 544, H7.slot_size - 64)
    assert H7.magic == bytes([32, 0]) + bytes.fromhex("2de15d29410b8d77679c110f1f8a")
    # STM32L0: W = 4, A = 8, 608 pages of 128 B; erased 0x00.
    assert (L0.align, L0.size, L0.image_ok_off, L0.erased) == (8, 608 * 3 * 4 + 48, L0.slot_size - 24, 0)
    assert L0.magic == bytes.fromhex("77c295f360d2ef7f3552500f2cb67980")
    for t in (H7, L0):
        assert t.copy_done_off == t.image_ok_off - t.align
        assert t.swap_info_off == t.copy_done_off - t.align
        assert t.swap_size_off == t.swap_info_off - t.align == t.status_off + t.max_sectors * 3 * t.write_size


@pytest.mark.parametrize("t", [H7, L0, Trailer(64 * 1024, 8, 0xFF, 16), Trailer(64 * 1024, 1, 0xFF, 16, 16)],
                         ids=["h7", "l0", "w8", "w1-a16"])
@pytest.mark.parametrize("confirm", [False, True])
def test_padding_matches_imgtool(tmp_path, keydir, imgtool, t, confirm):
    """imgtool --pad writes the magic (and image_ok with --confirm): our writes give the same slot."""
    (tmp_path / "app.bin").write_bytes(bytes(range(256)) * 4)
    args = ["sign", "-k", keydir / "ec.pem", "-v", "1.0.0", "-H", 0x200, "--pad-header", "--pad",
            "-S", t.slot_size, "--align", t.write_size, "--max-align", t.align, "-M", t.max_sectors,
            "-R", "0xff" if t.erased else "0", tmp_path / "app.bin", tmp_path / "out.bin"]
    if confirm:
        args.insert(1, "--confirm")
    r = imgtool(*args)
    assert r.returncode == 0, r.stderr
    theirs = (tmp_path / "out.bin").read_bytes()
    assert len(theirs) == t.slot_size
    writes = [t.write_magic()] + ([t.write_image_ok()] if confirm else [])
    ours = apply(erased(t), writes)
    assert theirs[t.status_off:] == bytes(ours[t.status_off:])
    state = t.read(theirs)
    assert state.magic is Magic.GOOD
    assert state.image_ok is (Flag.SET if confirm else Flag.UNSET)
    assert (state.copy_done, state.swap_type, state.swap_size, state.status) == (Flag.UNSET, SwapType.NONE,
                                                                                 None, None)


@pytest.mark.parametrize("t", [H7, L0], ids=["h7", "l0"])
def test_erased_slot_reads_unset(t):
    state = t.read(erased(t))
    assert (state.magic, state.image_ok, state.copy_done) == (Magic.UNSET, Flag.UNSET, Flag.UNSET)
    assert state.swap_type is SwapType.NONE and state.status is None
    # A tail as short as the trailer reads the same as the whole slot.
    assert t.read(erased(t)[-t.size:]) == state


def test_l0_flags_are_one_on_zero_erased_flash():
    off, data = L0.write_image_ok()
    assert (off, data) == (L0.image_ok_off, bytes([1, 0, 0, 0]))
    off, data = H7.write_image_ok()
    assert data == bytes([1]) + b"\xff" * 31 and off % 32 == 0


@pytest.mark.parametrize("t", [H7, L0], ids=["h7", "l0"])
def test_writes_are_whole_aligned_units(t):
    writes = (t.mark_permanent() + [t.write_copy_done(), t.write_swap_size(0x12345),
                                                   t.write_status(StatusOp.SWAP, 2, 2)])
    for off, data in writes:
        assert off % t.write_size == 0 and len(data) % t.write_size == 0
        assert t.status_off <= off and off + len(data) <= t.slot_size
    # No two writes share a unit: the flash rule "never program a unit twice" holds.
    units = [u for off, data in writes for u in range(off, off + len(data), t.write_size)]
    assert len(units) == len(set(units))


@pytest.mark.parametrize("t", [H7, L0], ids=["h7", "l0"])
def test_pending_and_confirm_round_trip(t):
    slot = apply(erased(t), t.mark_test())
    s = t.read(slot)
    assert (s.magic, s.image_ok, s.swap_type) == (Magic.GOOD, Flag.UNSET, SwapType.TEST)
    assert t.mark_test(s) == [] and t.mark_permanent(s) == []  # already pending: nothing to write
    slot = apply(erased(t), t.mark_permanent())
    s = t.read(slot)
    assert (s.magic, s.image_ok, s.swap_type) == (Magic.GOOD, Flag.SET, SwapType.PERM)
    # The primary after a test swap: magic good, copy_done set, image_ok unset -> confirm sets it.
    primary = apply(erased(t), [t.write_magic(), t.write_copy_done()])
    s = t.read(primary)
    assert t.confirm(s) == [t.write_image_ok()]
    s = t.read(apply(primary, t.confirm(s)))
    assert s.image_ok is Flag.SET and t.confirm(s) == []
    assert t.confirm(t.read(erased(t))) == []  # no trailer: nothing was swapped, already confirmed


def test_bad_values_read_bad():
    slot = apply(erased(L0), [L0.write_magic(), L0._unit(L0.image_ok_off, b"\x7f")])
    slot[L0.magic_off] ^= 0x01
    s = L0.read(slot)
    assert (s.magic, s.image_ok) == (Magic.BAD, Flag.BAD)
    with pytest.raises(RigError, match="bad magic"):
        L0.mark_test(s)
    with pytest.raises(RigError, match="bad magic"):
        L0.confirm(s)


def test_magic_of_another_alignment_is_bad():
    """A trailer written for A=8 is not good for a bootloader built with A=32, same flash."""
    a8 = Trailer(H7.slot_size, 8, 0xFF, H7.max_sectors)
    slot = apply(erased(H7), [a8.write_magic()])
    assert H7.read(slot).magic is Magic.BAD


@pytest.mark.parametrize("t", [H7, L0], ids=["h7", "l0"])
def test_status_progress(t):
    slot = erased(t)
    assert t.read(slot).status is None
    apply(slot, [t.write_status(StatusOp.MOVE, 1, 1)])
    assert t.read(slot).status == SwapStatus(StatusOp.MOVE, 2, 1)
    apply(slot, [t.write_status(StatusOp.MOVE, 2, 1)])
    assert t.read(slot).status == SwapStatus(StatusOp.MOVE, 3, 1)
    apply(slot, [t.write_status(StatusOp.SWAP, 1, 1)])
    assert t.read(slot).status == SwapStatus(StatusOp.SWAP, 1, 2)
    apply(slot, [t.write_status(StatusOp.SWAP, 1, 2)])
    assert t.read(slot).status == SwapStatus(StatusOp.SWAP, 2, 1)
    apply(slot, [t.write_swap_size(0x4_0000), t.write_swap_info(SwapType.TEST)])
    s = t.read(slot)
    assert (s.swap_size, s.swap_type, s.image_num) == (0x4_0000, SwapType.TEST, 0)


def test_status_entry_bounds():
    with pytest.raises(RigError):
        H7.status_entry_off(StatusOp.SWAP, H7.max_sectors + 1, 1)
    with pytest.raises(RigError):
        H7.status_entry_off(StatusOp.MOVE, 1, 2)


def _state(t, writes):
    return t.read(apply(erased(t), writes))


def test_swap_table():
    t = L0
    none = _state(t, [])
    test = _state(t, t.mark_test())
    perm = _state(t, t.mark_permanent())
    swapped = _state(t, [t.write_magic(), t.write_copy_done()])
    confirmed = _state(t, [t.write_magic(), t.write_copy_done(), t.write_image_ok()])
    assert swap_type(none, none) is SwapType.NONE
    assert swap_type(none, test) is SwapType.TEST
    assert swap_type(confirmed, perm) is SwapType.PERM
    assert swap_type(swapped, none) is SwapType.REVERT
    assert swap_type(confirmed, none) is SwapType.NONE
    # A pending secondary wins over a primary that would revert.
    assert swap_type(swapped, test) is SwapType.TEST


@pytest.mark.parametrize("kwargs, match", [
    (dict(slot_size=4096, write_size=3, erased=0xFF, max_sectors=1), "write size"),
    (dict(slot_size=4096, write_size=4, erased=0x55, max_sectors=1), "erased value"),
    (dict(slot_size=4096, write_size=32, erased=0xFF, max_sectors=1, max_align=8), "max align"),
    (dict(slot_size=100, write_size=4, erased=0xFF, max_sectors=1), "slot of 100"),
    (dict(slot_size=4096, write_size=4, erased=0xFF, max_sectors=4096), "cannot hold"),
    (dict(slot_size=4096, write_size=4, erased=0xFF, max_sectors=0), "max sectors"),
])
def test_bad_geometry_is_one_line(kwargs, match):
    with pytest.raises(RigError, match=match) as e:
        Trailer(**kwargs)
    assert "\n" not in str(e.value)


def test_short_input_is_rig_error():
    with pytest.raises(RigError, match="need the last"):
        H7.read(b"\xff" * (H7.size - 1))


def test_swap_move_room():
    # H7: primary 4 x 128 KiB; the trailer takes sector 3, the move needs one: 2 sectors for the image.
    assert swap_move_room(LAYOUTS["stm32h743-2x1m"]) == 256 * 1024
    # L0: 608 pages of 128 B, the 7344-byte trailer spans 58 pages, one page for the move.
    assert swap_move_room(LAYOUTS["stm32l073-192k"]) == (608 - 58 - 1) * 128
