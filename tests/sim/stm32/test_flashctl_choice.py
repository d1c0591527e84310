"""Which FLASH peripheral a virtual STM32 gets is a fact of its part (rig.sim.stm32.parts), so a
new part with an H7-style or L0-style flash interface needs no code that knows its name."""

from dataclasses import replace

import pytest

from rig.sim.flash import Flash
from rig.sim.stm32 import flashctl
from rig.sim.stm32.parts import PARTS, FlashInterface
from rig.variants import facts

CONTROLLERS = {FlashInterface.H7: flashctl.H7FlashController, FlashInterface.L0: flashctl.L0FlashController}


@pytest.mark.parametrize("interface", list(FlashInterface))
@pytest.mark.parametrize("variant", sorted(PARTS))
def test_the_controller_follows_the_part_s_flash_interface_not_its_name(tmp_path, variant, interface):
    part = replace(PARTS[variant], variant="stm32u5", flash_interface=interface)  # a part rig does not know by name
    flash = Flash(tmp_path / "flash.bin", facts(variant).layout.geometry)
    controller = flashctl.for_part(part, flash, flashctl.OptionBytes(tmp_path / "ob.json"), lambda: None)
    assert type(controller) is CONTROLLERS[interface]
