"""Every scenario can fail: run it on a deliberately broken virtual board and see it reported.

A second virtual lab is started from a copy of the rack's board (conftest.side_labs) with one defect of
the catalogue (rig/sim/broken.py; `enable` says how: a switch of the lab's models, and for a
firmware defect of the STM32s a defect build of rig's C app, which the side lab's campaigns install
and update to, so the suite proves it catches a broken firmware): MCUboot without signature checks, without
primary validation, or that mishandles a swap or revert a power cut interrupted; bootloaders that
never revert, never fall back or trust an otadata copy without its CRC; transfers that resume at
the wrong offset or without erasing; OTA clients that skip a check of the HTTPS server's
certificate or check the wrong bytes, SMP servers that do the latter; an app
whose confirm never reaches flash, that confirms before its health check, whose watchdog never
bites. The scenario runs exactly as in test_ota.py; here the campaign must observe something other
than the correct outcome. rig.ota.scenarios.BROKEN_BY names the defects for every scenario and
board (tests/ota/test_broken_coverage.py keeps it complete). These tests need the virtual lab; on a
rack of real boards there is nothing to break.
"""

import pytest

from rig.ota import scenarios
from rig.pytest_plugin import board_properties
from rig.sim.broken import enable
from tests.hil.ota_support import report

VARIANTS = ("esp32", "stm32h7", "stm32l0")
# Every (scenario, variant, defect) that must fail.
PAIRINGS = [(name, variant, switch) for name in scenarios.names() for variant in VARIANTS
            if scenarios.fits(name, variant) for switch in scenarios.breakers(name, variant)]
# By default one pairing per family of scenarios (the certificate checks are one family, as are the
# swap's power cuts and a bit lost on its way to flash), on pairings that fail fast (not a board the
# defect bricks: the campaign then waits its whole settle time); all in the nightly run.
SAMPLE = [("wrongly signed image", "stm32h7", "no-signature-check"), ("crash on boot", "stm32l0", "no-revert"),
          ("power cut during the flash write", "esp32", "resume-wrong-offset"),
          ("corrupt image", "esp32", "no-image-check"),
          ("power cut during the swap", "stm32h7", "revert-resumed-swap"),
          ("full image", "esp32", "confirm-not-persisted"),
          ("server certificate from another CA", "esp32", "no-cert-check"),
          ("hang, no power cycle: the watchdog resets it", "esp32", "watchdog-never-bites"),
          ("fails its health check", "stm32l0", "confirm-before-health"),
          ("damaged primary slot: flipped byte", "stm32h7", "no-primary-validation"),
          ("damaged running partition: flipped byte", "esp32", "skip-validate-on-power-on"),
          ("otadata: the active copy has a bad CRC", "esp32", "otadata-crc-unchecked"),
          ("power cut at a sector erase, over unrelated data", "esp32", "resume-no-erase"),
          ("a bit lost on its way to flash", "stm32l0", "smp-match-always"),
          ("hang, power cut before the reverted image confirms", "stm32h7", "revert-no-image-ok"),
          ("crash on boot, power cut in the swap's exchange phase", "stm32h7", "swap-status-not-written")]
ONE_WAY = set(scenarios.one_way())
# Ordered by side lab (defect, variant): a process keeps one side lab up, and runs one after the other share it.
EVERY = sorted((p for p in PAIRINGS if p not in SAMPLE), key=lambda p: (p[2], p[1]))


def run_broken(request, side_labs, rig_pool, name: str, variant: str, switch: str) -> None:
    breakage = enable(switch)
    kit, spec = side_labs(f"broken-{switch}", breakage.env, variant, breakage.build)
    request.node.user_properties.extend(board_properties(spec))
    verdict = kit.campaign(rig_pool.take(spec), allow_otp_burn=True).run(scenarios.by_name(name))
    report(request, verdict)
    assert verdict.observed != verdict.expected or verdict.reasons, (
        f"a {variant} board broken with {switch} passed '{name}': {verdict.summary()}")


@pytest.mark.parametrize("name,variant,switch", SAMPLE, ids=[f"{v}-{n}-{d}" for n, v, d in SAMPLE])
def test_a_broken_board_fails_the_scenario(request, rig_lab, side_labs, rig_pool, name, variant,
                                           switch):
    run_broken(request, side_labs, rig_pool, name, variant, switch)


@pytest.mark.nightly
@pytest.mark.parametrize("name,variant,switch", EVERY, ids=[f"{v}-{n}-{d}" for n, v, d in EVERY])
def test_every_scenario_fails_on_its_broken_boards(request, rig_lab, side_labs, rig_pool, name,
                                                   variant, switch):
    run_broken(request, side_labs, rig_pool, name, variant, switch)
