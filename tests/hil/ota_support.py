"""What the OTA tests share: the campaign kit of a session and a verdict's report in JUnit.

Fixtures live in the test modules that use them (pytest collects them by import); conftest.py
belongs to the whole HIL suite.
"""

import pytest

from rig.ota.campaign import Verdict
from rig.ota.kit import CampaignKit
from rig.pytest_plugin import rack_path


@pytest.fixture(scope="session")
def ota_kit(request, rig_lab, tmp_path_factory):
    """Keys, an OTA server on loopback and the lab's instruments, for this test process."""
    with CampaignKit(rack_path(request.config), tmp_path_factory.mktemp("ota")) as kit:
        yield kit


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
