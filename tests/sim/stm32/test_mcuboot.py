"""The MCUboot model on both STM32 variants: test, revert, permanent, validation, downgrade.

Images are flashed with `pyocd load`; behaviour is read from MCUboot's and the app's console lines.
"""

import pytest

from tests.sim.stm32.conftest import VARIANTS, make_signer, variants

BOOTED = r"rig: boot variant=\S+ version=(\S+) "


@pytest.fixture(params=VARIANTS)
def vb(request, virtual_stm32):
    return virtual_stm32(request.param)


def power_cycle(vb) -> None:
    vb.board.set_power(False)
    vb.board.set_power(True)


def booted_version(vb) -> str:
    return vb.console.expect(BOOTED)[1]


@pytest.mark.parametrize("variant", variants("stm32l0"))
def test_plain_primary_boots_with_mcuboots_log(virtual_stm32, variant):
    vb = virtual_stm32(variant)
    vb.install(vb.image("1.0.0"))
    power_cycle(vb)
    vb.console.expect(r"I: Starting bootloader")
    vb.console.expect(r"I: Primary image: magic=unset, swap_type=0x1, copy_done=0x3, image_ok=0x3")
    vb.console.expect(r"I: Swap type: none")
    vb.console.expect(rf"I: Bootloader chainload address offset: 0x{vb.layout.part('slot0').offset:x}")
    vb.console.expect(r"I: Jumping to the first image slot")
    assert booted_version(vb) == "1.0.0+0"


def test_test_upgrade_is_reverted_when_not_confirmed(vb):
    vb.install(vb.image("1.0.0"), vb.image("2.0.0"), pending="test")
    power_cycle(vb)
    vb.console.expect(r"I: Secondary image: magic=good, swap_type=0x2")
    vb.console.expect(r"I: Swap type: test")
    vb.console.expect(r"I: Starting swap using move algorithm\.")
    assert booted_version(vb) == "2.0.0+0"
    power_cycle(vb)
    vb.console.expect(r"I: Primary image: magic=good, swap_type=0x2, copy_done=0x1, image_ok=0x3")
    vb.console.expect(r"I: Swap type: revert")
    assert booted_version(vb) == "1.0.0+0"
    power_cycle(vb)
    vb.console.expect(r"I: Primary image: magic=good, swap_type=0x4, copy_done=0x1, image_ok=0x1")
    vb.console.expect(r"I: Swap type: none")
    assert booted_version(vb) == "1.0.0+0"


@pytest.mark.parametrize("variant", variants("stm32l0"))
def test_confirmed_test_upgrade_stays(virtual_stm32, variant):
    vb = virtual_stm32(variant)
    vb.install(vb.image("1.0.0"), vb.image("2.0.0", fault="none"), pending="test")
    power_cycle(vb)
    assert booted_version(vb) == "2.0.0+0"
    vb.console.expect(r"rig: confirmed")
    power_cycle(vb)
    vb.console.expect(r"I: Primary image: magic=good, swap_type=0x2, copy_done=0x1, image_ok=0x1")
    vb.console.expect(r"I: Swap type: none")
    assert booted_version(vb) == "2.0.0+0"


@pytest.mark.parametrize("variant", variants("stm32h7"))
def test_permanent_upgrade_needs_no_confirm(virtual_stm32, variant):
    vb = virtual_stm32(variant)
    vb.install(vb.image("1.0.0"), vb.image("2.0.0"), pending="perm")
    power_cycle(vb)
    vb.console.expect(r"I: Swap type: perm")
    assert booted_version(vb) == "2.0.0+0"
    power_cycle(vb)
    vb.console.expect(r"I: Swap type: none")
    assert booted_version(vb) == "2.0.0+0"


@pytest.mark.parametrize("variant", variants("stm32h7"))
def test_image_signed_by_an_untrusted_key_is_erased_not_booted(virtual_stm32, variant, tmp_path):
    vb = virtual_stm32(variant)
    stranger = make_signer(tmp_path)
    vb.install(vb.image("1.0.0"), vb.image("2.0.0", signer=stranger), pending="test")
    power_cycle(vb)
    vb.console.expect(r"I: Swap type: test")
    vb.console.expect(r"E: Image in the secondary slot is not valid!")
    assert booted_version(vb) == "1.0.0+0"
    erased = bytes([vb.geometry.erased]) * 64
    assert vb.read_back(vb.addr("slot1"), 64) == erased


@pytest.mark.parametrize("variant", variants("stm32h7"))
def test_downgrade_below_the_security_counter_is_refused(virtual_stm32, variant):
    vb = virtual_stm32(variant)
    vb.install(vb.image("2.0.0", security_counter=2))
    power_cycle(vb)
    assert booted_version(vb) == "2.0.0+0"  # booting a confirmed image raises the stored counter to 2
    vb.install(secondary=vb.image("1.0.0", security_counter=1), pending="perm", bootloader=False)
    power_cycle(vb)
    vb.console.expect(r"E: Image in the secondary slot is not valid!")
    assert booted_version(vb) == "2.0.0+0"


@pytest.mark.parametrize("variant", variants("stm32l0"))
def test_no_bootloader_in_the_mcuboot_partition_boots_nothing(virtual_stm32, variant):
    vb = virtual_stm32(variant)
    path = vb.root / "app.bin"
    path.write_bytes(vb.image("1.0.0"))
    vb.pyocd("load", "-u", vb.uid, "-t", vb.target, "--base-address", hex(vb.addr("slot0")), path)
    power_cycle(vb)
    with pytest.raises(AssertionError):
        vb.console.expect(r"I: Starting bootloader", timeout=0.5)
