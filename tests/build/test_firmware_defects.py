"""`rig build --defect NAME`: each deliberately broken firmware misbehaves in the one way it
stands for, and a bench sees it - console, flash read-back, SMP replies (firmware_board.py).
The good build's side of each story is in test_firmware_runs.py and test_firmware_smp.py."""

import firmware_board as fb
import pytest
from smpclient.generics import success
from smpclient.requests.image_management import ImageStatesWrite
from test_firmware_smp import OLD, signed, smp, tlv_hash

from rig.build import build
from rig.build.defects import DEFECTS
from rig.image.layouts import MCUBOOT_HEADER_SIZE
from rig.image.trailer import Trailer
from rig.variants import facts

VARIANTS = ["stm32h7", "stm32l0"]
FAULT = {"confirm-before-health": "fail-health", "watchdog-never-bites": "hang"}  # the fault each needs


@pytest.fixture(scope="session")
def defective(tmp_path_factory):
    """Every defect, built for both STM32 parts with the fault mode its test needs."""
    out = tmp_path_factory.mktemp("defects")
    for defect in DEFECTS:
        faults = ("none", FAULT[defect]) if defect in FAULT else ("none",)
        build(out, variants=tuple(VARIANTS), version=OLD, faults=faults, defect=defect)
    return out


def boot(out, signer, variant, defect, fault="none"):
    stem = f"rig-{variant}-{fault}.{defect}"
    image = signed(out / f"{stem}.bin", signer, OLD)
    board = fb.FirmwareBoard(variant, fb.flash_with(variant, image, on_trial=True), str(out / f"{stem}.elf"))
    board.start("power-on")
    return board


def image_ok(board, variant, slot="slot0"):
    return Trailer.for_layout(facts(variant).layout, slot).read(board.slot(slot)).image_ok.value


@pytest.mark.parametrize("variant", VARIANTS)
def test_confirm_not_persisted_says_confirmed_but_writes_nothing(defective, signer, variant):
    board = boot(defective, signer, variant, "confirm-not-persisted")
    board.wait_for(b"rig: confirmed")
    board.halt()
    assert image_ok(board, variant) == "unset"


@pytest.mark.parametrize("variant", VARIANTS)
def test_confirm_before_health_keeps_an_unhealthy_image(defective, signer, variant):
    board = boot(defective, signer, variant, "confirm-before-health", "fail-health")
    end = board.wait_for(b"rig: health fail")
    board.halt()
    assert b"rig: confirmed" in board.output()[:end]
    assert image_ok(board, variant) == "set"


@pytest.mark.parametrize("variant", VARIANTS)
def test_watchdog_never_bites_a_hung_image(defective, signer, variant):
    board = boot(defective, signer, variant, "watchdog-never-bites", "hang")
    assert board.run_until(4000) is None  # a good build is reset by the IWDG about 2 s in
    board.halt()
    assert board.output().count(b"rig: boot") == 1


@pytest.mark.parametrize("variant", VARIANTS)
def test_smp_match_always_marks_a_corrupt_image(defective, signer, variant):
    board = boot(defective, signer, variant, "smp-match-always")
    board.wait_for(b"rig: health")  # RX is on
    image = bytearray(signed(defective / f"rig-{variant}-none.smp-match-always.bin", signer, "3.0.0"))
    image[MCUBOOT_HEADER_SIZE + 0x100] ^= 0xFF  # a bit flip in the code: the SHA256 TLV no longer holds

    async def work(client):
        async for _ in client.upload(bytes(image), first_timeout_s=30):
            pass
        return await client.request(ImageStatesWrite(hash=tlv_hash(bytes(image))))

    marked = smp(board, work)
    board.halt()
    assert success(marked)  # the good build answers IMG_MGMT_ERR_INVALID_HASH and marks nothing
    assert Trailer.for_layout(facts(variant).layout, "slot1").read(board.slot("slot1")).magic.value == "good"


async def upload_resumed(client, image):
    """Half an upload, then the same upload again: Zephyr resumes it where it stopped."""
    async for off in client.upload(image, first_timeout_s=30):
        if off > len(image) // 2:
            break
    async for _ in client.upload(image, first_timeout_s=30):
        pass


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("defect", [None, "resume-wrong-offset"])
def test_resumed_upload(built, defective, signer, variant, defect):
    if defect:
        board = boot(defective, signer, variant, defect)
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
