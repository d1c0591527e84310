"""A campaign's proofs read a refused update from what was raised or seen (rig.ota.campaign's
Verdict.handover_refused / client_refused), not from the wording of the faults column - no board needed."""

from rig.errors import HandoverRefused
from rig.ota.campaign import Campaign, Scenario, Verdict, _proofs

FLIPPED = Scenario("a bit lost on its way to flash", "kept", flip_at_write=20)
NOT_REFUSED = "the board did not refuse the update at the end of the upload"


def verdict() -> Verdict:
    return Verdict("stm32l0-1", "stm32l0", FLIPPED.name, FLIPPED.expected)


def test_a_refused_hand_over_is_the_refusal_the_scenario_wants():
    v = verdict()
    assert Campaign._refused(v, HandoverRefused("IMG_MGMT INVALID_HASH")) is False
    assert v.handover_refused and v.faults_fired == ["hand-over refused: IMG_MGMT INVALID_HASH"]
    assert _proofs(FLIPPED, v, [], "2.0.0+0", "1.0.0+0", pushes=True) == []


def test_the_faults_column_s_wording_is_not_a_refusal():
    v = verdict()
    v.faults_fired.append("hand-over refused: (typed by hand)")
    assert _proofs(FLIPPED, v, [], "2.0.0+0", "1.0.0+0", pushes=True) == [NOT_REFUSED]
    v.client_refused = True  # the board's client said `ota refused` on its console
    assert _proofs(FLIPPED, v, [], "2.0.0+0", "1.0.0+0", pushes=False) == []
