"""Racks for tests that run a lab of their own, made from a rack file by renaming ids only.

Every port of the copy is 0: its lab binds free ports and publishes them (rig.sim.registry), so labs
of parallel tests, xdist workers and checkouts never collide and no test names a port. Given a
`name`, board ids become BOARD-NAME and probe ids NAME-ID, so the copy's lab runs beside the
source's own: a process keeps its drivers by board id (rig.drivers.pool), and pyocd finds probes by
unique id across every live lab.
"""

from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
VIRTUAL_RACK = REPO / "targets" / "virtual-rack.yaml"


def lab_rack(folder, source=VIRTUAL_RACK, name: str | None = None, boards: tuple[str, ...] | None = None,
             variants: tuple[str, ...] | None = None) -> Path:
    """FOLDER/<name or the source's stem>.yaml: the source's boards (only those of `boards` and
    `variants`, if given) with ports left to the lab, and ids renamed after `name` if given."""
    doc = yaml.safe_load(Path(source).read_text())
    targets = {}
    for board_id, target in doc["targets"].items():
        res = target["resources"]
        if (boards is not None and board_id not in boards) or (
                variants is not None and res["RigBoard"]["variant"] not in variants):
            continue
        if not res["RigBoard"].get("virtual"):
            pytest.skip(f"{source} has real boards; labs of their own exist only for virtual boards")
        res["NetworkSerialPort"]["port"] = 0
        if "NetworkPowerPort" in res:
            url = urlsplit(res["NetworkPowerPort"]["host"])
            res["NetworkPowerPort"]["host"] = urlunsplit(url._replace(netloc=f"{url.hostname}:0"))
        if name and "RigDebugProbe" in res:
            res["RigDebugProbe"]["unique_id"] = f"{name}-{res['RigDebugProbe']['unique_id']}"
        targets[f"{board_id}-{name}" if name else board_id] = target
    doc["targets"] = targets
    path = Path(folder) / f"{name or Path(source).stem}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path
