"""What the OTA tests share besides their fixtures (tests/hil/conftest.py): a verdict's report in JUnit."""

from rig.ota.campaign import Verdict


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
