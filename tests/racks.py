"""Private copies of a rack file, for tests that run a lab beside the shared one.

A copy listens on its own ports (power switch at `base`, consoles after it) and has other board and
probe ids, so its lab runs beside the original: a process keeps its drivers by board id
(rig.drivers.pool) and pyocd finds probes by unique id across every live lab.

Who listens where (power switch first, consoles after it; below 32768, outside the ephemeral range;
labs of one test run may be up at the same time, so the ranges must not overlap):

    22100-22103  targets/virtual-rack.yaml (the shared lab; the HIL suite and the demo)
    22400-22699  HIL side labs of the shared rack: +300, +100 per xdist worker, +4 per side lab
    22600-22603  tests/ota/test_hil_campaigns.py's copy of the rack (only while the HIL suite is not up)
    22900-23199  that copy's side labs (+300, +100 per worker, +4 per side lab)
    23600-23649  tests/provision/esp32_lab.py (+10 per worker)
    23700-23749  tests/provision/stm32_lab.py (+10 per worker)
    23800-23849  tests/provision/station_lab.py (+10 per worker)
    23900-23903  bench/bench_provision.py
    24000-31999  tests/free_ports.py (any free port, for labs made on the fly)
"""

from pathlib import Path

import pytest
import yaml


def rack_copy(source, name: str, base: int, folder, variants: tuple[str, ...] | None = None) -> str:
    """`source` as FOLDER/NAME.yaml on ports from `base`, board ids BOARD-NAME, probe ids NAME-ID;
    only the boards of `variants`, if given."""
    doc = yaml.safe_load(open(source))
    if variants is not None:
        doc["targets"] = {k: t for k, t in doc["targets"].items()
                          if t["resources"]["RigBoard"]["variant"] in variants}
    power_port = None
    for i, target in enumerate(doc["targets"].values()):
        res = target["resources"]
        if not res.get("RigBoard", {}).get("virtual"):
            pytest.skip(f"{source} has real boards; side labs exist only for the virtual lab")
        res["NetworkSerialPort"]["port"] = base + 1 + i
        if "NetworkPowerPort" in res:
            url = res["NetworkPowerPort"]["host"]
            power_port = power_port or url.split("://", 1)[1].split("/", 1)[0].split(":")[1]
            res["NetworkPowerPort"]["host"] = url.replace(f":{power_port}/", f":{base}/")
        if "RigDebugProbe" in res:
            res["RigDebugProbe"]["unique_id"] = f"{name}-{res['RigDebugProbe']['unique_id']}"
    doc["targets"] = {f"{board}-{name}": target for board, target in doc["targets"].items()}
    path = Path(folder) / f"{name}.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return str(path)
