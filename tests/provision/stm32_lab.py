"""A private virtual lab of the two STM32 boards and a hand-built provisioning station for them.

The lab is the shipped virtual rack's STM32 boards (ports chosen by the lab), other board ids and its
own runtime dir, started and stopped with `rig lab up|down` as a user does. The station
is built by hand (records in a temporary SQLite file, a CA key in a PEM file, device keys in memory,
rig firmware 1.0.0 signed by a firmware key with the virtual MCUboot trusting it), and `provision`
runs one unit the way the station's runner does: recipe, then one record in the database.
"""

import subprocess
import sys
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from rig.image.keys import load_signer
from rig.image.layouts import LAYOUTS
from rig.ota import releases
from rig.provision import identity, recipe, stm32
from rig.provision.records import Records, UnitRecord, now
from rig.provision.station import Firmware, Station
from rig.sim.stm32 import vmcuboot
from tests.labs import PrivateLab

PYOCD = str(Path(sys.executable).parent / "pyocd")
BOARDS = {"stm32h7": "stm32h7-1-prov", "stm32l0": "stm32l0-1-prov"}
VERSION = "1.0.0"


class Lab(PrivateLab):
    def __init__(self, root: Path):
        super().__init__(root, name="prov", variants=tuple(BOARDS))

    def pyocd_cmd(self, board, *commands: str) -> subprocess.CompletedProcess:
        """`pyocd cmd` on a board's probe, as a user runs it (not checked: refusals are the point)."""
        args = [PYOCD, "cmd", "-u", board.probe, "-t", board.probe_target]
        for c in commands:
            args += ["-c", c]
        return subprocess.run(args, capture_output=True, text=True, timeout=120, env=self.env)


def pem_signer(path: Path):
    key = ec.generate_private_key(ec.SECP256R1())
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    return load_signer(path)


def make_station(folder: Path, rack, **options) -> Station:
    """A station for the rack's STM32 boards; `options` are the recipe options of both variants."""
    ca_signer = pem_signer(folder / "ca.pem")
    fw_signer = pem_signer(folder / "firmware.pem")
    firmware = {}
    for variant, board_id in BOARDS.items():
        layout = LAYOUTS[rack.board(board_id).flash_layout]
        firmware[variant] = Firmware(image=releases.stm32_image(variant, VERSION, fw_signer),
                                     bootloader=vmcuboot.build(layout, [fw_signer.public]))
    return Station(name="station-test", operator="tester", records=Records(f"sqlite:///{folder / 'records.db'}"),
                   ca_cert=identity.make_ca(ca_signer), ca_signer=ca_signer, keys=identity.KeyMaker(),
                   firmware_signers=dict.fromkeys(BOARDS, fw_signer), firmware=firmware,
                   options={variant: dict(options) for variant in BOARDS})


def provision(station: Station, drivers) -> UnitRecord:
    """One unit through its recipe, then its record saved in one transaction (as the runner does)."""
    board = drivers.board
    started = now()
    rec = UnitRecord(chip_id="", variant=board.variant, outcome="failed", operator=station.operator,
                     station=station.name, started_at=started, finished_at=started)
    unit = recipe.Unit(board=board, drivers=drivers, station=station, record=rec)
    recipe.run(stm32.RECIPES[board.variant], unit)
    station.records.save(rec)
    return rec
