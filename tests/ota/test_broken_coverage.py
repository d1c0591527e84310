"""Every OTA scenario names the broken board it must fail on, for every variant it fits.

tests/hil/test_broken_models.py runs each scenario against the virtual board broken with
rig.ota.scenarios.BROKEN_BY's fault switch (rig/sim/broken.py); a scenario added without one
would go unchecked, so this fails first, without a lab.
"""

from rig.ota import scenarios
from rig.sim.broken import SWITCHES
from tests.hil.test_broken_models import EVERY, SAMPLE

VARIANTS = ("esp32", "stm32h7", "stm32l0")
PAIRINGS = [(name, variant) for name in scenarios.names() for variant in VARIANTS if scenarios.fits(name, variant)]


def test_every_scenario_has_a_broken_board_for_each_variant_it_fits():
    missing = [f"{name} on {variant}" for name, variant in PAIRINGS if scenarios.broken_by(name, variant) is None]
    assert not missing, f"no entry in rig.ota.scenarios.BROKEN_BY for: {'; '.join(missing)}"
    unknown = {scenarios.broken_by(name, variant) for name, variant in PAIRINGS} - set(SWITCHES)
    assert not unknown, f"not switches of rig/sim/broken.py: {sorted(unknown)}"


def test_broken_by_names_only_scenarios_that_exist():
    assert set(scenarios.BROKEN_BY) <= set(scenarios.names())


def test_the_broken_model_runs_cover_every_pairing_and_the_sample_every_switch():
    assert sorted(SAMPLE + EVERY) == sorted(PAIRINGS)
    assert {scenarios.broken_by(name, variant) for name, variant in SAMPLE} == set(SWITCHES)
