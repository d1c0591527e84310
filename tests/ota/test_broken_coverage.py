"""Every OTA scenario names the defects it must fail on, for every variant it fits.

tests/hil/test_broken_models.py runs each scenario against the virtual boards broken with
rig.ota.scenarios.BROKEN_BY's defects (rig/sim/broken.py); a scenario added without one would go
unchecked, and a defect no scenario names would never be shown to be caught, so this fails first,
without a lab.
"""

from pathlib import Path

from rig.ota import scenarios
from rig.sim.broken import CATALOGUE, PROVED_BY_TEST, SWITCHES, Kind
from rig.variants import NAMES as VARIANTS
from tests.hil.test_broken_models import EVERY, PAIRINGS, SAMPLE

REPO = Path(__file__).resolve().parents[2]
FITS = [(name, variant) for name in scenarios.names() for variant in VARIANTS if scenarios.fits(name, variant)]
# Scenarios no single defect switch can make fail on a kind of board, and why: two independent
# defences stand in the way (boards broken in two places at once are future work).
DEFENDED_TWICE = {
    ("corrupt image", "mcuboot"): "refused by the firmware's img_mgmt state write (INVALID_HASH, slot 1 erased) "
                                  "and again by MCUboot's validation; no-signature-check is proven by "
                                  "'wrongly signed image'",
}


def _kind(variant: str) -> str:
    return "http" if variant in scenarios.HTTP else "mcuboot"


def test_every_scenario_has_a_broken_board_for_each_variant_it_fits():
    missing = [f"{name} on {variant}" for name, variant in FITS
               if not scenarios.breakers(name, variant) and (name, _kind(variant)) not in DEFENDED_TWICE]
    assert not missing, f"no entry in rig.ota.scenarios.BROKEN_BY for: {'; '.join(missing)}"
    pointless = [f"{name} on {kind}" for (name, kind) in DEFENDED_TWICE
                 if any(scenarios.breakers(name, v) for n, v in FITS if n == name and _kind(v) == kind)]
    assert not pointless, f"DEFENDED_TWICE but BROKEN_BY names a defect: {'; '.join(pointless)}"
    unknown = {switch for _, _, switch in PAIRINGS} - set(SWITCHES)
    assert not unknown, f"not switches of rig/sim/broken.py: {sorted(unknown)}"


def test_broken_by_names_only_scenarios_that_exist():
    assert set(scenarios.BROKEN_BY) <= set(scenarios.names())


def test_every_defect_of_the_catalogue_is_named_by_a_scenario():
    named = {switch for _, _, switch in PAIRINGS} | set(PROVED_BY_TEST)
    assert set(SWITCHES) <= named, f"no scenario names {sorted(set(SWITCHES) - named)}"


def test_a_defect_proved_by_a_test_is_run_by_that_test_which_has_its_control():
    for switch, nodes in PROVED_BY_TEST.items():
        for node in nodes:
            module, function = node.split("::")
            assert f"def {function}(" in (REPO / module).read_text(), f"{module} has no {function}"
        module = nodes[0].split("::")[0]
        assert f'enable("{switch}")' in (REPO / module).read_text(), f"{module} does not run {switch}"


def test_the_catalogue_has_25_documented_defects_of_a_known_kind():
    assert len(CATALOGUE) >= 25 and len(set(SWITCHES)) == len(SWITCHES)
    assert all(d.doc and isinstance(d.kind, Kind) and d.component for d in CATALOGUE)


def test_the_broken_model_runs_cover_every_pairing():
    assert sorted(SAMPLE + EVERY) == sorted(PAIRINGS)
    assert set(SAMPLE) <= set(PAIRINGS)
