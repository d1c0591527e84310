"""smpmgr (PyPI, unchanged) against the console pty of the reference firmware on the emulated core:
what an engineer with a Nucleo board types - os echo, image upload of a delta patch with
--format any, image state-read, image state-write <hash>, os reset; and `upgrade` of a signed
image. Judged by smpmgr's exit status and output, and by flash read-back."""

import shutil
import subprocess

import pytest
from test_firmware_smp import NEW, boot, signed, tlv_hash

from rig import delta
from rig.image.trailer import SwapType, Trailer
from rig.variants import facts

VARIANTS = ["stm32h7", "stm32l0"]

pytestmark = pytest.mark.skipif(shutil.which("smpmgr") is None, reason="smpmgr is not installed (test extras)")


def smpmgr(pty: str, *args: str) -> str:
    proc = subprocess.run(["smpmgr", "--port", pty, "--timeout", "20", *args], capture_output=True, text=True,
                          timeout=180)
    assert proc.returncode == 0, proc.stdout[-800:] + proc.stderr[-800:]
    return proc.stdout


@pytest.mark.parametrize("variant", VARIANTS)
def test_smpmgr_uploads_a_patch_marks_it_and_resets(built, built_new, signer, tmp_path, variant):
    board, old = boot(built, signer, variant)
    new = signed(built_new(variant), signer, NEW)
    patch = tmp_path / "update.rdl"
    patch.write_bytes(delta.make(old, new, facts(variant).delta_profile).data)
    pty = board.pty()

    assert "r='hello'" in smpmgr(pty, "os", "echo", "hello")
    smpmgr(pty, "image", "upload", "--format", "any", str(patch))
    listed = smpmgr(pty, "image", "state-read")
    assert "slot=1" in listed and "version='2.0.0'" in listed and tlv_hash(new).hex().upper() in listed
    smpmgr(pty, "image", "state-write", tlv_hash(new).hex())
    smpmgr(pty, "os", "reset")
    assert board.wait_stopped() == "software"

    slot1 = board.slot("slot1")
    assert slot1[: len(new)] == new
    assert Trailer.for_layout(facts(variant).layout, "slot1").read(slot1).swap_type is SwapType.TEST


@pytest.mark.parametrize("variant", VARIANTS)
def test_smpmgr_upgrade_with_a_signed_image(built, built_new, signer, tmp_path, variant):
    board, _ = boot(built, signer, variant)
    new = signed(built_new(variant), signer, NEW)
    image = tmp_path / "app.signed"
    image.write_bytes(new)
    assert "Upgrade complete" in smpmgr(board.pty(), "upgrade", "--slot", "1", str(image))
    assert board.wait_stopped() == "software"
    slot1 = board.slot("slot1")
    assert slot1[: len(new)] == new
    assert Trailer.for_layout(facts(variant).layout, "slot1").read(slot1).swap_type is SwapType.TEST
