"""The HIL suite: runs on any rack, virtual or real, through rig's pytest plugin.

    pytest tests/hil --rig-rack targets/virtual-rack.yaml [-n 3] [--junitxml report.xml]

Tests read boards only as a bench engineer can: console lines, flash read back through the
board's own flasher, debug-probe registers. Nothing here imports rig.sim.
"""

import os
from pathlib import Path

import pytest

from rig.image import esp_app, factory
from rig.image.layouts import LAYOUTS


def pytest_ignore_collect(collection_path, config):
    """Run only on a rack asked for: with --rig-rack/--lg-env/$RIG_RACK, or `pytest tests/hil`.

    A plain `pytest` of the whole tree must not take over the shared default rack's boards and
    ports; tests/drivers/test_hil_suite.py runs this suite there on a private rack instead.
    """
    here = Path(__file__).parent
    named = any(here == Path(arg.split("::")[0]).resolve() or here in Path(arg.split("::")[0]).resolve().parents
                for arg in config.args)
    rack = config.getoption("--rig-rack") or getattr(config.option, "lg_env", None) or "RIG_RACK" in os.environ
    return None if named or rack else True


# A partition each variant's tests may overwrite freely: never the one the app boots from.
SCRATCH = {"esp32": "ota_1", "stm32h7": "slot1", "stm32l0": "slot1"}


@pytest.fixture
def scratch(board):
    """(offset, size) of the board's scratch partition."""
    part = LAYOUTS[board.board.flash_layout].part(SCRATCH[board.board.variant])
    return part.offset, part.size


@pytest.fixture(scope="session")
def esp32_regions():
    """Bootloader, partition table, otadata and a rig app 1.2.0 in ota_0: a bootable ESP32."""
    return factory.esp32_regions(esp_app.app_image("1.2.0"))


@pytest.fixture
def esp32_app(board, esp32_regions):
    """The ESP32 board with the reference app in place (written only where flash differs)."""
    board.ensure([(region.offset, region.data) for region in esp32_regions])
    return board
