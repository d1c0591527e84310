"""The defect build `interrupted-upload-blocks-slot` (rig/build/defects.py): after a power cut
mid-upload, what the upload left in slot 1 blocks every later upload - where the good build starts
over (test_firmware_smp.py: test_interrupted_upload_restarts_cleanly)."""

import firmware_board as fb
import pytest
from smpclient.exceptions import SMPUploadError
from smpclient.requests.os_management import EchoWrite
from test_firmware_smp import NEW, OLD, power, signed, smp, upload

from rig import delta
from rig.build import cache
from rig.variants import facts

DEFECT = "interrupted-upload-blocks-slot"


@pytest.mark.parametrize("variant", ["stm32h7", "stm32l0"])
def test_a_half_written_slot_refuses_the_next_upload(built_new, signer, variant):
    built = cache.app(variant, OLD, defect=DEFECT)
    old = signed(built.bin, signer, OLD)
    new = signed(built_new(variant), signer, NEW)
    patch = delta.make(old, new, facts(variant).delta_profile).data
    board = fb.FirmwareBoard(variant, fb.flash_with(variant, old, on_trial=True), str(built.elf))
    try:
        power(board)

        async def first(client):
            # A clean slot 1 (nothing of an earlier upload): the defect build takes this upload.
            async for off in client.upload(new, first_timeout_s=30):
                if off > len(new) // 2:
                    return

        smp(board, first)
        power(board)  # the power goes mid-upload: slot 1 holds the new image's first half

        async def again(client):
            with pytest.raises(SMPUploadError, match="NO_FREE_SLOT"):
                await upload(client, patch)
            return await client.request(EchoWrite(d="still here"))

        assert smp(board, again).r == "still here"
        assert board.slot("slot1")[: len(new) // 2] == new[: len(new) // 2]  # nothing was written over
    finally:
        board.close()
