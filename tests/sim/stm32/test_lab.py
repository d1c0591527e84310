"""pyocd against the STM32 boards of a rack started as a user starts it: `rig lab up`."""

import os
import subprocess

from rig.lab import load_rack
from rig.variants import facts
from tests.sim.stm32.conftest import PYOCD


def test_rig_lab_up_serves_each_stm32_board_to_pyocd(lab_factory, tmp_path):
    lab = lab_factory(boards=("stm32h7-1", "stm32l0-1"))
    lab.up()

    def pyocd(*args):
        proc = subprocess.run([PYOCD, *map(str, args)], env=lab.env, capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        return proc.stdout

    listed = pyocd("list")
    for board in lab.status()["boards"]:
        assert board["probe"] in listed
        assert board["target"] in listed
    probe = lab.board("stm32l0-1")["probe"]
    layout = facts("stm32l0").layout
    slot1 = layout.geometry.base + layout.part("slot1").offset
    data = os.urandom(3000)
    (tmp_path / "data.bin").write_bytes(data)
    pyocd("load", "-u", probe, "--base-address", hex(slot1), tmp_path / "data.bin")
    # read back by the id the rack file gives, as a user types it (the lab serves it qualified)
    written = load_rack(lab.rack).board("stm32l0-1").probe
    assert probe != written and probe.startswith(written)
    pyocd("cmd", "-u", written, "-c", f"savemem 0x{slot1:x} {len(data)} {tmp_path / 'back.bin'}")
    assert (tmp_path / "back.bin").read_bytes() == data
