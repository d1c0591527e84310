"""`rig build --defect NAME`: each deliberately broken firmware misbehaves in the one way it
stands for, and a bench sees it - console, flash read-back, SMP replies (firmware_board.py).
The good build's side of each story is in test_firmware_runs.py and test_firmware_smp.py."""

import subprocess
import sys

import firmware_board as fb
import pytest
from smpclient.generics import success
from smpclient.requests.image_management import ImageStatesWrite
from test_firmware_smp import OLD, signed, smp, tlv_hash

from rig.build import cache, manifest
from rig.errors import RigError
from rig.image.layouts import MCUBOOT_HEADER_SIZE
from rig.image.trailer import SwapType, Trailer
from rig.variants import facts

VARIANTS = ["stm32h7", "stm32l0"]


def boot(signer, variant, defect, fault="none"):
    """The defect build (from rig.build.cache: one build per machine, shared by xdist workers) in
    slot0, as MCUboot leaves a fresh upgrade."""
    built = cache.app(variant, OLD, fault, defect)
    image = signed(built.bin, signer, OLD)
    board = fb.FirmwareBoard(variant, fb.flash_with(variant, image, on_trial=True), str(built.elf))
    board.start("power-on")
    return board


def image_ok(board, variant, slot="slot0"):
    return Trailer.for_layout(facts(variant).layout, slot).read(board.slot(slot)).image_ok.value


@pytest.mark.parametrize("variant", VARIANTS)
def test_confirm_not_persisted_says_confirmed_but_writes_nothing(signer, variant):
    board = boot(signer, variant, "confirm-not-persisted")
    board.wait_for(b"rig: confirmed")
    board.halt()
    assert image_ok(board, variant) == "unset"


@pytest.mark.parametrize("variant", VARIANTS)
def test_confirm_before_health_keeps_an_unhealthy_image(signer, variant):
    board = boot(signer, variant, "confirm-before-health", "fail-health")
    end = board.wait_for(b"rig: health fail")
    board.halt()
    assert b"rig: confirmed" in board.output()[:end]
    assert image_ok(board, variant) == "set"


@pytest.mark.parametrize("variant", VARIANTS)
def test_watchdog_never_bites_a_hung_image(signer, variant):
    board = boot(signer, variant, "watchdog-never-bites", "hang")
    assert board.run_until(4000) is None  # a good build is reset by the IWDG about 2 s in
    board.halt()
    assert board.output().count(b"rig: boot") == 1


@pytest.mark.parametrize("variant", VARIANTS)
def test_smp_match_always_marks_a_corrupt_image(signer, variant):
    board = boot(signer, variant, "smp-match-always")
    board.wait_for(b"rig: health")  # RX is on
    image = bytearray(signed(cache.app(variant, OLD, "none", "smp-match-always").bin, signer, "3.0.0"))
    image[MCUBOOT_HEADER_SIZE + 0x100] ^= 0xFF  # a bit flip in the code: the SHA256 TLV no longer holds

    async def work(client):
        async for _ in client.upload(bytes(image), first_timeout_s=30):
            pass
        return await client.request(ImageStatesWrite(hash=tlv_hash(bytes(image))))

    marked = smp(board, work)
    board.halt()
    assert success(marked)  # the good build answers IMG_MGMT_ERR_INVALID_HASH and marks nothing
    assert Trailer.for_layout(facts(variant).layout, "slot1").read(board.slot("slot1")).magic.value == "good"


@pytest.mark.parametrize("variant", VARIANTS)
def test_smp_test_is_permanent_marks_a_test_request_permanent(built_new, signer, variant):
    board = boot(signer, variant, "smp-test-is-permanent")
    board.wait_for(b"rig: health")  # RX is on
    image = signed(built_new(variant), signer, "2.0.0")

    async def work(client):
        async for _ in client.upload(image, first_timeout_s=30):
            pass
        return await client.request(ImageStatesWrite(hash=tlv_hash(image)))  # a test, not a confirm

    marked = smp(board, work)
    board.halt()
    # the good build answers pending, not permanent, and leaves image_ok unset (test_firmware_smp.py)
    assert success(marked) and [(s.slot, s.pending, s.permanent) for s in marked.images][1] == (1, True, True)
    state = Trailer.for_layout(facts(variant).layout, "slot1").read(board.slot("slot1"))
    assert (state.magic.value, state.image_ok.value, state.swap_type) == ("good", "set", SwapType.PERM)


async def upload_resumed(client, image):
    """Half an upload, then the same upload again: Zephyr resumes it where it stopped."""
    async for off in client.upload(image, first_timeout_s=30):
        if off > len(image) // 2:
            break
    async for _ in client.upload(image, first_timeout_s=30):
        pass


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("defect", [None, "resume-wrong-offset"])
def test_resumed_upload(built, signer, variant, defect):
    if defect:
        board = boot(signer, variant, defect)
    else:
        out, _, _ = built
        image = signed(out / f"rig-{variant}-none.bin", signer, OLD)
        board = fb.FirmwareBoard(variant, fb.flash_with(variant, image, on_trial=True),
                                 str(out / f"rig-{variant}-none.elf"))
        board.start("power-on")
    board.wait_for(b"rig: health")  # RX is on
    new = signed(built[0] / f"rig-{variant}-no-confirm.bin", signer, "2.0.0")

    async def work(client):
        try:
            await upload_resumed(client, new)
        except Exception as exc:  # smpclient's SMPUploadError: "mismatched SHA256"
            return exc
        return None

    failure = smp(board, work)
    board.halt()
    if defect:
        assert failure is not None and board.slot("slot1")[: len(new)] != new  # a hole of one upload buffer
    else:
        assert failure is None and board.slot("slot1")[: len(new)] == new


def test_rig_build_defect_names_and_records_the_defect(tmp_path):
    """The command line makes the same bytes, named and recorded as a defect build."""
    proc = subprocess.run([sys.executable, "-m", "rig", "build", "--out", str(tmp_path), "--version", OLD,
                           "--variant", "stm32l0", "--fault", "none", "--defect", "confirm-not-persisted"],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    doc = manifest.load(tmp_path)
    entry = manifest.find(doc, "stm32l0", "none", defect="confirm-not-persisted")
    assert entry["file"] == "rig-stm32l0-none.confirm-not-persisted.bin"
    cached = cache.app("stm32l0", OLD, "none", "confirm-not-persisted")
    assert (tmp_path / entry["file"]).read_bytes() == cached.bin.read_bytes()
    with pytest.raises(RigError, match="no app for stm32l0 with fault none;"):
        manifest.find(doc, "stm32l0", "none")  # a defect build is never taken for the good one
