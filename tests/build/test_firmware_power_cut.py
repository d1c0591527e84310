"""A power cut armed at flash operation N lands in the firmware's own flash writes on the emulated
core: the core stops at that store and the part loses power (the lab's relay then restarts it),
on the M0+'s word programs and the M7's flash words alike."""

import firmware_board as fb
import pytest
from test_firmware_smp import OLD, signed

from rig.build import cache
from rig.image.trailer import Flag, Trailer
from rig.sim.flash import PowerCut
from rig.variants import facts


@pytest.mark.parametrize("variant", ["stm32h7", "stm32l0"])
def test_a_cut_at_the_confirm_write_stops_the_core_and_keeps_image_ok_unset(signer, variant):
    built = cache.app(variant, OLD)
    board = fb.FirmwareBoard(variant, fb.flash_with(variant, signed(built.bin, signer, OLD), on_trial=True))
    try:
        board.flash.arm_cut(0)  # the next flash operation: the app's confirm (image_ok)
        with pytest.raises(PowerCut):
            board.boot("power-on")
        assert b"rig: hardfault" not in board.output()
        trailer = Trailer.for_layout(facts(variant).layout, "slot0")
        assert trailer.read(board.slot("slot0")).image_ok is not Flag.SET
    finally:
        board.close()
