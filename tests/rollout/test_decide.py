"""The gate's arithmetic at its boundaries (acceptance 2), without a fleet."""

from rig.rollout.gates import Counts, decide
from rig.rollout.release import Gates

G = Gates(error_threshold=0.10, success_threshold=0.85, min_judged=15, wave_deadline_s=100)


def test_error_ratio_at_the_threshold_does_not_halt():
    assert decide(Counts(size=20, success=18, failure=2), G, 1)[0] == "advance"


def test_error_ratio_above_the_threshold_halts_and_says_why():
    action, why = decide(Counts(size=20, success=17, failure=3), G, 1)
    assert action == "halt"
    assert "3/20 = 15.0% above 10.0%" in why


def test_no_decision_below_the_minimum_even_when_all_fail():
    assert decide(Counts(size=20, failure=14, unpicked=6), G, 1)[0] is None
    assert decide(Counts(size=20, success=14, missed=6), G, 1)[0] is None  # the six never came: wait


def test_the_deadline_forces_a_decision():
    action, why = decide(Counts(size=20, success=14, missed=6), G, 100)
    assert action == "halt" and "only 14 judged" in why
    assert decide(Counts(size=20, success=15, pending=5), G, 100)[0] == "advance"


def test_never_picked_up_counts_toward_neither_ratio():
    assert decide(Counts(size=22, success=18, failure=2, missed=2), G, 1)[0] == "advance"


def test_success_ratio_below_its_threshold_halts():
    g = Gates(error_threshold=0.5, success_threshold=0.9, min_judged=5)
    assert decide(Counts(size=10, success=8, failure=2), g, 1)[0] == "halt"
