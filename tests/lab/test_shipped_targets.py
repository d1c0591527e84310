"""The shipped targets files are valid for rig and readable by labgrid itself."""

from pathlib import Path

import pytest
from labgrid import Environment

from rig.lab import load_rack
from rig.variants import NAMES

TARGETS = sorted((Path(__file__).parents[2] / "targets").glob("*.yaml"))


@pytest.mark.parametrize("path", TARGETS, ids=lambda p: p.name)
def test_labgrid_environment_reads_every_board(path):
    rack = load_rack(path)
    env = Environment(str(path))
    try:
        for board in rack.boards:
            target = env.get_target(board.id)
            spec = target.get_resource("RigBoard")
            assert spec.variant == board.variant
            kinds = {type(r).__name__ for r in target.resources}
            assert kinds & {"NetworkSerialPort", "USBSerialPort", "RawSerialPort"}
            if board.facts.debug_probe:
                assert target.get_resource("RigDebugProbe").unique_id == board.probe
    finally:
        env.cleanup()


def test_virtual_rack_has_one_board_of_each_variant():
    rack = load_rack(TARGETS[0].parent / "virtual-rack.yaml")
    assert sorted(b.variant for b in rack.boards) == sorted(NAMES)
    assert all(b.virtual for b in rack.boards)


def test_selection_by_variant_and_tag():
    rack = load_rack(TARGETS[0].parent / "virtual-rack.yaml")
    assert [b.id for b in rack.select(tags=["mcuboot"])] == ["stm32h7-1", "stm32l0-1"]
    assert [b.id for b in rack.select(variant="stm32l0", tags=["smp", "low-power"])] == ["stm32l0-1"]
    assert rack.select(variant="esp32", tags=["smp"]) == []
