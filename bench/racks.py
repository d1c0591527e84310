"""Racks the benchmarks start labs of their own on: boards of targets/virtual-rack.yaml whose ports
the lab chooses (it binds port 0 and publishes what it got, rig.sim.registry), so a bench never
collides with the shared lab, a test run or another bench."""

import copy
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
VIRTUAL_RACK = REPO / "targets" / "virtual-rack.yaml"


def virtual_specs() -> list[dict]:
    """The virtual rack's board specs (labgrid targets), in the file's order."""
    return list(yaml.safe_load(VIRTUAL_RACK.read_text())["targets"].values())


def private_rack(path: Path, name: str, specs: list[dict] | None = None) -> Path:
    """PATH: the boards `specs` (default: the virtual rack's) with every port left to the lab, board i
    on outlet i, ids <variant>-<name>-<i> and probe ids <name>-<i> (readable in `rig lab status`; two
    labs of one name still serve distinct probes: a lab qualifies its probe ids with its own name,
    rig.sim.registry.probe_id)."""
    doc = yaml.safe_load(VIRTUAL_RACK.read_text())
    targets = {}
    for i, spec in enumerate(specs if specs is not None else virtual_specs()):
        spec = copy.deepcopy(spec)  # the same spec may come several times (one product on several fixtures)
        res = spec["resources"]
        res["NetworkSerialPort"]["port"] = 0
        res["NetworkPowerPort"].update(host="http://127.0.0.1:0/outlet/{index}/{value}", index=i)
        if "RigDebugProbe" in res:
            res["RigDebugProbe"]["unique_id"] = f"{name}-{i}"
        targets[f"{res['RigBoard']['variant']}-{name}-{i}"] = spec
    doc["targets"] = targets
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path
