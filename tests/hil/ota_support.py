"""What the OTA tests share: the campaign kit of a session and a verdict's report in JUnit.

Fixtures live in the test modules that use them (pytest collects them by import); conftest.py
belongs to the whole HIL suite.
"""

import os
import subprocess
import sys

import pytest

from rig.ota.campaign import Verdict
from rig.ota.kit import CampaignKit
from rig.pytest_plugin import rack_path
from tests.labs import lab_rack

_SIDE_KITS: dict[str, CampaignKit] = {}


@pytest.fixture(scope="session")
def ota_kit(request, rig_lab, tmp_path_factory):
    """Keys, an OTA server on loopback and the lab's instruments, for this test process."""
    with CampaignKit(rack_path(request.config), tmp_path_factory.mktemp("ota")) as kit:
        yield kit


@pytest.fixture(scope="session")
def side_labs(request, tmp_path_factory):
    """side_labs(name, env) -> CampaignKit on a private copy of the rack's lab, started once with
    `env` added to `rig lab up`'s environment, stopped at the end of the session. For what must not
    touch the shared boards: broken models, and scenarios that burn a board's anti-rollback floor."""
    if request.config.getoption("--rig-coordinator"):
        pytest.skip("side labs are private copies of a local rack file; boards through a coordinator have none")
    folder = tmp_path_factory.mktemp("side-labs")
    kits = _SIDE_KITS  # one registry per process: each test module that imports this fixture gets its own
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")

    def lab(name: str, env: dict[str, str]) -> CampaignKit:
        if name not in kits:
            source = rack_path(request.config)
            rack = str(lab_rack(folder, source, name=f"{name}-{worker}"))
            up = subprocess.run([sys.executable, "-m", "rig", "lab", "up", "--rack", rack, "--state",
                                 str(folder / f"state-{name}")], env=dict(os.environ, **env),
                                capture_output=True, text=True)
            assert up.returncode == 0, f"side lab {name} did not start: {up.stderr.strip()}"
            kits[name] = CampaignKit(rack, folder / f"work-{name}").__enter__()
        return kits[name]

    yield lab
    while kits:
        _, kit = kits.popitem()
        kit.__exit__(None, None, None)
        subprocess.run([sys.executable, "-m", "rig", "lab", "down", "--rack", str(kit.rack)], capture_output=True)


def report(request, verdict: Verdict) -> None:
    """The verdict into the JUnit testcase (properties) and its captured output (the steps)."""
    request.node.user_properties.extend([
        ("ota_scenario", verdict.scenario),
        ("ota_expected", verdict.expected),
        ("ota_observed", verdict.observed),
        ("ota_wire_bytes", verdict.wire_bytes),
        ("ota_artefact_bytes", verdict.artefact_size),
        ("ota_rollbacks", "; ".join(verdict.rollbacks) or "none"),
        ("ota_read_back", verdict.read_back),
    ])
    for step in verdict.steps:
        print(f"{step.name}: {step.seconds:.2f} s {step.detail}")
    for fault in verdict.faults_fired:
        print(f"fault: {fault}")
    for line in verdict.rollbacks:
        print(f"rollback: {line}")
