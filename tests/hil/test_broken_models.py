"""Every scenario can fail: run it on a deliberately broken virtual board and see it reported.

A second virtual lab is started from a copy of the rack (other ports, other probe ids, so both labs
run side by side) with the test-only fault switch RIG_SIM_BROKEN set (rig/sim/broken.py): MCUboot
without signature checks, bootloaders that never revert, transfers that resume at the wrong
offset, an OTA client without image checks. The scenario runs exactly as in test_ota.py; here the
campaign must observe something other than the correct outcome. These tests need the virtual lab;
on a rack of real boards there is nothing to break.
"""

import os
import subprocess
import sys

import pytest
import yaml

from rig.lab import load_rack
from rig.ota import scenarios
from rig.ota.kit import CampaignKit
from rig.pytest_plugin import rack_path
from rig.sim.broken import ENV
from tests.hil.ota_support import report

# One scenario per fault switch by default; every pairing in the nightly run.
SAMPLE = [("wrongly signed image", "stm32h7"), ("crash on boot", "stm32l0"), ("resume after a broken link", "esp32"),
          ("corrupt image", "esp32")]
EVERY = [(name, variant) for name in scenarios.BROKEN_BY for variant in ("esp32", "stm32h7", "stm32l0")
         if scenarios.fits(name, variant) and (name, variant) not in SAMPLE]
PORT_BASE = 52400  # the broken labs listen from here, ten ports per fault switch
SWITCHES = sorted(set(scenarios.BROKEN_BY.values()))


def broken_rack(source: str, switch: str, folder) -> str:
    """A copy of the rack on other ports, board ids and probe ids, for the lab with this fault switch."""
    doc = yaml.safe_load(open(source))
    shift = PORT_BASE + 10 * SWITCHES.index(switch)
    power_port = None
    for i, target in enumerate(doc["targets"].values()):
        res = target["resources"]
        if not res.get("RigBoard", {}).get("virtual"):
            pytest.skip(f"{source} has real boards; broken models exist only in the virtual lab")
        res["NetworkSerialPort"]["port"] = shift + 1 + i
        if "NetworkPowerPort" in res:
            url = res["NetworkPowerPort"]["host"]
            power_port = power_port or url.split("://", 1)[1].split("/", 1)[0].split(":")[1]
            res["NetworkPowerPort"]["host"] = url.replace(f":{power_port}/", f":{shift}/")
        if "RigDebugProbe" in res:
            res["RigDebugProbe"]["unique_id"] = f"BROKEN-{switch}-{res['RigDebugProbe']['unique_id']}"
    # Other board ids too: a process keeps its drivers by board id (rig.drivers.pool).
    doc["targets"] = {f"{name}-{switch}": target for name, target in doc["targets"].items()}
    path = folder / f"broken-{switch}.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return str(path)


@pytest.fixture(scope="session")
def broken_labs(request, tmp_path_factory):
    """broken_labs(switch) -> CampaignKit on a running lab with that fault switch (started once)."""
    folder = tmp_path_factory.mktemp("broken")
    kits: dict[str, CampaignKit] = {}

    def lab(switch: str) -> CampaignKit:
        if switch not in kits:
            rack = broken_rack(rack_path(request.config), switch, folder)
            env = dict(os.environ, **{ENV: switch})
            up = subprocess.run([sys.executable, "-m", "rig", "lab", "up", "--rack", rack,
                                 "--state", str(folder / f"state-{switch}")], env=env, capture_output=True, text=True)
            assert up.returncode == 0, f"broken lab {switch} did not start: {up.stderr.strip()}"
            kits[switch] = CampaignKit(rack, folder / f"work-{switch}").__enter__()
        return kits[switch]

    yield lab
    for kit in kits.values():
        kit.__exit__(None, None, None)
        subprocess.run([sys.executable, "-m", "rig", "lab", "down", "--rack", str(kit.rack)], capture_output=True)


def run_broken(request, broken_labs, rig_pool, name: str, variant: str) -> None:
    switch = scenarios.BROKEN_BY[name]
    kit = broken_labs(switch)
    spec = next(b for b in load_rack(kit.rack).boards if b.variant == variant)
    verdict = kit.campaign(rig_pool.take(spec)).run(scenarios.by_name(name))
    report(request, verdict)
    assert verdict.observed != verdict.expected, (
        f"a {variant} board broken with {switch} passed '{name}': {verdict.summary()}")


@pytest.mark.parametrize("name,variant", SAMPLE, ids=[f"{v}-{n}" for n, v in SAMPLE])
def test_a_broken_board_fails_the_scenario(request, rig_lab, broken_labs, rig_pool, name, variant):
    run_broken(request, broken_labs, rig_pool, name, variant)


@pytest.mark.nightly
@pytest.mark.parametrize("name,variant", EVERY, ids=[f"{v}-{n}" for n, v in EVERY])
def test_every_scenario_fails_on_its_broken_board(request, rig_lab, broken_labs, rig_pool, name, variant):
    run_broken(request, broken_labs, rig_pool, name, variant)
