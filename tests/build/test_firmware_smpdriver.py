"""rig's own SMP client side against the reference firmware on the emulated core: SMPDriver over a
labgrid serial port on the board's console pty, and rig.ota.smp_push with a link that drops mid
upload. A delta container goes up like an image; the hash to test is the one the board lists for
the image it rebuilt, and it is the new image's SHA256 TLV."""

import firmware_board as fb
import pytest
from labgrid import Target
from labgrid.resource import RawSerialPort
from test_firmware_smp import NEW, boot, signed, tlv_hash

from rig import delta
from rig.drivers import RigConsoleDriver
from rig.drivers.smp import SMPDriver
from rig.ota import faults, smp_push
from rig.variants import facts

VARIANTS = ["stm32h7", "stm32l0"]


def smp_driver(board: fb.FirmwareBoard) -> SMPDriver:
    target = Target(f"fw-{board.variant}")
    RawSerialPort(target, name=None, port=board.pty(), speed=115200)
    RigConsoleDriver(target, name=None)
    smp = SMPDriver(target, name=None, timeout=20.0)
    target.activate(smp)
    return smp


@pytest.mark.parametrize("variant", VARIANTS)
def test_smp_driver_uploads_a_delta_container_and_tests_the_rebuilt_image(built, built_new, signer, variant):
    board, old = boot(built, signer, variant)
    new = signed(built_new(variant), signer, NEW)
    patch = delta.make(old, new, facts(variant).delta_profile).data
    smp = smp_driver(board)

    result = smp_push.push(smp, patch, [faults.parse("drop@50%#1")])  # the link breaks once, halfway
    assert result.sessions == 2 and result.faults_fired
    image_hash = [s.hash for s in smp.image_list() if s.slot == 1][0]
    assert image_hash == tlv_hash(new).hex()
    assert smp.upload(patch) == image_hash  # the same container again: applied again, the same image
    smp.test(image_hash)
    assert [(s.slot, s.pending) for s in smp.image_list()][1] == (1, True)
    smp.reset()
    assert board.wait_stopped() == "software"
    assert board.slot("slot1")[: len(new)] == new
