"""The reference firmware's MCUmgr SMP server, driven by smpclient over the console pty of the
built binary running on the emulated core (firmware_board.py): OS group, image state, upload of a
signed image and of a delta patch applied while it streams, state write, reset - judged by what
smpclient is told and by flash read-back (slot1 bytes, trailer bytes), as on a bench.

Full boots across a swap belong to the virtual boards' MCUboot; here the proof ends at the bytes
MCUboot would find."""

import random
import subprocess
import sys

import firmware_board as fb
import pytest
from smpclient.exceptions import SMPUploadError
from smpclient.generics import error, success
from smpclient.requests.image_management import ImageErase, ImageStatesRead, ImageStatesWrite
from smpclient.requests.os_management import EchoWrite, MCUMgrParametersRead, ResetWrite

from rig import delta
from rig.image import mcuboot
from rig.image.layouts import MCUBOOT_HEADER_SIZE
from rig.image.trailer import SwapType, Trailer
from rig.variants import facts
from tests.smp_session import smp_session

VARIANTS = ["stm32h7", "stm32l0"]
OLD, NEW = "1.2.3+4", "2.0.0"  # NEW: the version conftest.built_new is built at


def power(board, cause="power-on"):
    """Reset the part and wait until it serves SMP: its console RX is enabled right after the boot
    line, and bytes sent before that are lost, as on silicon (the health line comes after)."""
    mark = len(board.output())
    board.start(cause)
    board.wait_for(b"rig: health", start=mark)


def boot(built, signer, variant, fault="none"):
    """The board running `fault`'s build at version OLD in slot0, as MCUboot leaves a fresh upgrade;
    and that signed image (ECDSA signatures vary in length: sign once)."""
    out, _, _ = built
    image = signed(out / f"rig-{variant}-{fault}.bin", signer, OLD)
    flash = fb.flash_with(variant, image, on_trial=True)
    board = fb.FirmwareBoard(variant, flash, str(out / f"rig-{variant}-{fault}.elf"))
    power(board)
    return board, image


def smp(board, work, timeout=20.0):
    """Run work(client) against the board's console pty with a connected smpclient."""
    return smp_session(board.pty(), work, timeout)


async def upload(client, image):
    async for _ in client.upload(image, first_timeout_s=30):
        pass


def signed(path, signer, version):
    return mcuboot.sign(path.read_bytes(), signer, version, header_size=MCUBOOT_HEADER_SIZE)


def tlv_hash(image):
    return mcuboot.parse(image).find(mcuboot.TLV_SHA256)[0].value


@pytest.mark.parametrize("variant", VARIANTS)
def test_os_group_echo_params_and_state_read(built, signer, variant):
    board, running = boot(built, signer, variant)

    async def work(client):
        echo = await client.request(EchoWrite(d="hello from the bench"))
        params = await client.request(MCUMgrParametersRead())
        state = await client.request(ImageStatesRead())
        return echo, params, state

    echo, params, state = smp(board, work)
    assert success(echo) and echo.r == "hello from the bench"
    assert success(params) and params.buf_size == 1024
    assert success(state)
    (slot0,) = state.images
    assert (slot0.slot, slot0.version, slot0.active, slot0.confirmed, slot0.pending) == (0, "1.2.3.4", True, True,
                                                                                        False)
    assert slot0.hash == tlv_hash(running)
    assert board.stop_reason is None
    board.halt()


@pytest.mark.parametrize("variant", VARIANTS)
def test_upload_signed_image_mark_test_and_reset(built, built_new, signer, key_pem, tmp_path, variant):
    board, _ = boot(built, signer, variant)
    image = signed(built_new(variant), signer, NEW)

    async def work(client):
        await upload(client, image)
        listed = await client.request(ImageStatesRead())
        marked = await client.request(ImageStatesWrite(hash=tlv_hash(image)))
        reset = await client.request(ResetWrite())
        return listed, marked, reset

    listed, marked, reset = smp(board, work)
    assert [(s.slot, s.version, s.hash) for s in listed.images][1] == (1, "2.0.0", tlv_hash(image))
    assert success(marked) and [(s.slot, s.pending, s.permanent) for s in marked.images][1] == (1, True, False)
    assert success(reset)
    assert board.wait_stopped() == "software"

    layout = facts(variant).layout
    slot1 = board.slot("slot1")
    assert slot1[: len(image)] == image  # byte for byte what was sent
    t = Trailer.for_layout(layout, "slot1")
    state = t.read(slot1)
    assert (state.magic.value, state.image_ok.value, state.swap_type) == ("good", "unset", SwapType.TEST)
    # imgtool accepts the image as read back from the slot, trailer and erased padding excluded
    read_back = tmp_path / "slot1.img"
    read_back.write_bytes(slot1[: len(image)])
    proc = subprocess.run([sys.executable, "-m", "imgtool.main", "verify", "-k", str(key_pem), str(read_back)],
                          capture_output=True, text=True)
    assert "Image was correctly validated" in proc.stdout, proc.stdout + proc.stderr


@pytest.mark.parametrize("variant", VARIANTS)
def test_delta_patch_applied_while_streaming(built, built_new, signer, variant):
    board, old = boot(built, signer, variant)
    new = signed(built_new(variant), signer, NEW)
    patch = delta.make(old, new, facts(variant).delta_profile)
    assert patch.kind == "patch" and len(patch.data) < len(new) // 2

    async def work(client):
        await upload(client, patch.data)
        return await client.request(ImageStatesWrite(hash=tlv_hash(new), confirm=True))

    marked = smp(board, work)
    assert success(marked)
    assert [(s.slot, s.version, s.pending, s.permanent) for s in marked.images][1] == (1, "2.0.0", True, True)
    slot1 = board.slot("slot1")
    assert slot1[: len(new)] == new
    state = Trailer.for_layout(facts(variant).layout, "slot1").read(slot1)
    assert (state.image_ok.value, state.swap_type) == ("set", SwapType.PERM)
    # the deepest path (an SMP upload handing a chunk to the applier) fits the 1 KiB the linker keeps
    assert board.stack_used() <= 0x400
    # and the applier's own 1 KiB stack (painted 0xC5 when an apply starts) keeps room for an IRQ frame
    stack = board.read_ram(fb.symbol(board.elf, "delta"), 1024)
    assert 1024 - (len(stack) - len(stack.lstrip(b"\xc5"))) <= 1024 - 128
    board.halt()


@pytest.mark.parametrize("variant", VARIANTS)
def test_full_image_container_needs_no_base(built, built_new, signer, variant):
    """A container of kind full (the new image compressed) applies whatever slot0 holds."""
    board, _ = boot(built, signer, variant)
    new = signed(built_new(variant), signer, NEW)
    unrelated = random.Random(1).randbytes(4096)  # nothing like the new image: make() ships the full image
    full = delta.make(unrelated, new, facts(variant).delta_profile)
    assert full.kind == "full"

    async def work(client):
        await upload(client, full.data)
        return await client.request(ImageStatesRead())

    state = smp(board, work)
    board.halt()
    assert [(s.slot, s.version) for s in state.images][1] == (1, "2.0.0")
    assert board.slot("slot1")[: len(new)] == new


@pytest.mark.parametrize("variant", VARIANTS)
def test_patch_for_another_base_is_refused_and_leaves_slot1_erased(built, built_new, signer, variant):
    board, _ = boot(built, signer, variant)
    new = signed(built_new(variant), signer, NEW)
    other_base = signed(built[0] / f"rig-{variant}-no-confirm.bin", signer, OLD)
    patch = delta.make(other_base, new, facts(variant).delta_profile)
    erased = bytes([facts(variant).layout.geometry.erased])

    async def work(client):
        with pytest.raises(SMPUploadError):
            await upload(client, patch.data)
        return await client.request(EchoWrite(d="still here"))

    assert smp(board, work).r == "still here"
    assert board.slot("slot1") == erased * len(board.slot("slot1"))
    assert board.stop_reason is None
    board.halt()


@pytest.mark.parametrize("variant", VARIANTS)
def test_interrupted_upload_restarts_cleanly(built, built_new, signer, variant):
    board, old = boot(built, signer, variant)
    new = signed(built_new(variant), signer, NEW)
    patch = delta.make(old, new, facts(variant).delta_profile).data

    async def half(client, data):
        async for off in client.upload(data, first_timeout_s=30):
            if off > len(data) // 2:
                return

    smp(board, lambda c: half(c, new))
    power(board)  # power lost mid-upload: RAM gone, slot1 half written
    smp(board, lambda c: half(c, patch))
    power(board, "pin")

    async def whole(client):
        await upload(client, patch)
        return await client.request(ImageStatesRead())

    state = smp(board, whole)
    assert [(s.slot, s.version) for s in state.images][1] == (1, "2.0.0")
    assert board.slot("slot1")[: len(new)] == new
    board.halt()


@pytest.mark.parametrize("variant", VARIANTS)
def test_bad_requests_get_errors_and_the_board_keeps_serving(built, signer, variant):
    board, _ = boot(built, signer, variant)
    layout = facts(variant).layout
    room = Trailer.for_layout(layout, "slot1").max_image_size
    image = signed(built[0] / f"rig-{variant}-none.bin", signer, OLD)
    too_big = image + bytes(room)

    async def work(client):
        with pytest.raises(SMPUploadError):
            await upload(client, too_big)  # past the slot: refused before a byte is written
        unknown = await client.request(ImageStatesWrite(hash=bytes(32)))
        erase = await client.request(ImageErase(slot=1))
        echo = await client.request(EchoWrite(d="ok"))
        return unknown, erase, echo

    unknown, erase, echo = smp(board, work)
    assert error(unknown) and unknown.err.rc == 8  # IMG_MGMT_ERR_HASH_NOT_FOUND
    assert success(erase) and echo.r == "ok"
    # garbage, a frame with a bad CRC, a line too long: ignored; the board answers the next request
    board.send(b"\x06\x09garbage!\n\x06\x09AAAAAAAA\n" + b"\x04\x14" + b"A" * 300 + b"\n" + bytes(range(256)) + b"\n")
    assert smp(board, lambda c: c.request(EchoWrite(d="after garbage"))).r == "after garbage"
    assert board.stop_reason is None
    board.halt()


def test_running_image_hash_check_uses_the_slot_bytes(built, signer):
    """A state write for an image whose bytes do not hash to its SHA256 TLV is refused."""
    variant = "stm32l0"
    board, _ = boot(built, signer, variant)
    image = bytearray(signed(built[0] / f"rig-{variant}-fail-health.bin", signer, "3.0.0"))
    image[MCUBOOT_HEADER_SIZE + 0x100] ^= 0xFF  # one bit flip in the code, TLVs untouched

    async def work(client):
        await upload(client, bytes(image))  # the bytes arrive as sent: the transfer matches
        return await client.request(ImageStatesWrite(hash=tlv_hash(bytes(image))))

    refused = smp(board, work)
    assert error(refused) and refused.err.rc == 24  # IMG_MGMT_ERR_INVALID_HASH
    state = Trailer.for_layout(facts(variant).layout, "slot1").read(board.slot("slot1"))
    assert state.magic.value == "unset"
    board.halt()

