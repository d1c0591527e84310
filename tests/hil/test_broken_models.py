"""Every scenario can fail: run it on a deliberately broken virtual board and see it reported.

A second virtual lab is started from a copy of the rack (ota_support.side_labs) with the
test-only fault switch RIG_SIM_BROKEN set (rig/sim/broken.py): MCUboot without signature checks
or that mishandles a swap a power cut interrupted, bootloaders that never revert, transfers that
resume at the wrong offset, an OTA client without image checks or that skips a check of the
HTTPS server's certificate, an app whose confirm never reaches flash. The scenario runs exactly
as in test_ota.py; here the campaign must observe something other than the correct outcome.
rig.ota.scenarios.BROKEN_BY names the switch for every scenario and board
(tests/ota/test_broken_coverage.py keeps it complete). These tests need the virtual lab; on a
rack of real boards there is nothing to break.
"""

import pytest

from rig.lab import load_rack
from rig.ota import scenarios
from rig.sim.broken import ENV
from tests.hil.ota_support import report, side_labs  # noqa: F401  (side_labs is a fixture)

# By default every fault switch once, on pairings that fail fast; every pairing in the nightly run.
SAMPLE = [("wrongly signed image", "stm32h7"), ("crash on boot", "stm32l0"),
          ("power cut during the flash write", "esp32"), ("corrupt image", "esp32"),
          ("power cut during the swap", "stm32h7"), ("power cut during the swap", "stm32l0"), ("full image", "esp32"),
          ("server certificate from another CA", "esp32"), ("expired server certificate", "esp32"),
          ("server certificate for another host", "esp32")]
EVERY = [(name, variant) for name in scenarios.names() for variant in ("esp32", "stm32h7", "stm32l0")
         if scenarios.fits(name, variant) and (name, variant) not in SAMPLE]


def run_broken(request, side_labs, rig_pool, name: str, variant: str) -> None:  # noqa: F811
    switch = scenarios.broken_by(name, variant)
    kit = side_labs(f"broken-{switch}", {ENV: switch})
    spec = next(b for b in load_rack(kit.rack).boards if b.variant == variant)
    verdict = kit.campaign(rig_pool.take(spec), allow_otp_burn=True).run(scenarios.by_name(name))
    report(request, verdict)
    assert verdict.observed != verdict.expected, (
        f"a {variant} board broken with {switch} passed '{name}': {verdict.summary()}")


@pytest.mark.parametrize("name,variant", SAMPLE, ids=[f"{v}-{n}" for n, v in SAMPLE])
def test_a_broken_board_fails_the_scenario(request, rig_lab, side_labs, rig_pool, name, variant):  # noqa: F811
    run_broken(request, side_labs, rig_pool, name, variant)


@pytest.mark.nightly
@pytest.mark.parametrize("name,variant", EVERY, ids=[f"{v}-{n}" for n, v in EVERY])
def test_every_scenario_fails_on_its_broken_board(request, rig_lab, side_labs, rig_pool, name,  # noqa: F811
                                                  variant):
    run_broken(request, side_labs, rig_pool, name, variant)
