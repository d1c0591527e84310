"""Which FLASH peripheral, RCC and flash algorithm a virtual STM32 gets are facts of its part
(rig.sim.stm32.parts), so a new part with an H7-style or L0-style peripheral needs no code that
knows its name."""

from dataclasses import replace
from types import SimpleNamespace

import pytest
from pyocd.target.builtin import target_STM32H743xx

from rig.sim.flash import Flash
from rig.sim.stm32 import flashctl, pyocd_target, rcc
from rig.sim.stm32.core import Core
from rig.sim.stm32.parts import PARTS, FlashInterface, RccInterface
from rig.variants import facts

CONTROLLERS = {FlashInterface.H7: flashctl.H7FlashController, FlashInterface.L0: flashctl.L0FlashController}
RCCS = {RccInterface.H7: rcc.H7Rcc, RccInterface.L0: rcc.L0Rcc}
# what pyocd loads into RAM for each target type: the core recognises these bytes
ALGORITHMS = {"stm32h743xx": target_STM32H743xx.FLASH_ALGO, pyocd_target.TARGET_TYPE: pyocd_target.FLASH_ALGO}


@pytest.mark.parametrize("interface", list(FlashInterface))
@pytest.mark.parametrize("variant", sorted(PARTS))
def test_the_controller_follows_the_part_s_flash_interface_not_its_name(tmp_path, variant, interface):
    part = replace(PARTS[variant], variant="stm32u5", flash_interface=interface)  # a part rig does not know by name
    flash = Flash(tmp_path / "flash.bin", facts(variant).layout.geometry)
    controller = flashctl.for_part(part, flash, flashctl.OptionBytes(tmp_path / "ob.json"), lambda: None)
    assert type(controller) is CONTROLLERS[interface]


@pytest.mark.parametrize("interface", list(RccInterface))
@pytest.mark.parametrize("variant", sorted(PARTS))
def test_the_rcc_follows_the_part_s_rcc_interface_not_its_name(variant, interface):
    part = replace(PARTS[variant], variant="stm32u5", rcc_interface=interface)
    assert type(rcc.for_part(part)) is RCCS[interface]


@pytest.mark.parametrize("target_type", sorted(ALGORITHMS))
@pytest.mark.parametrize("variant", sorted(PARTS))
def test_the_flash_algorithm_is_the_one_pyocd_loads_for_the_part_s_target_type(variant, target_type):
    part = replace(PARTS[variant], variant="stm32u5", target_type=target_type)
    core = Core(SimpleNamespace(part=part))
    assert [algo for algo, _ in core._algos] == [ALGORITHMS[target_type]]
