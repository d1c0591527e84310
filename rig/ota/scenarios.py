"""The named update scenarios of the HIL suite, `rig ota` and `rig demo`, and which boards they fit.

    scenarios(variant, sweep=False) -> list[Scenario]   what runs on a board of this variant
    by_name(name) -> Scenario
    BROKEN_BY: scenario name -> the sim fault switch (rig/sim/broken.py) that must make it fail
    broken_by(name, variant) -> that switch for a board of this variant

The default list is the representative sample; `sweep=True` adds the long sweeps (power cuts at
every tenth of a transfer and at many flash operations of a swap or a delta apply), which the
suite runs under the `nightly` marker.
"""

from rig.errors import RigError
from rig.ota.campaign import Scenario
from rig.ota.faults import Fault
from rig.ota.triggers import TriggerSpec
from rig.variants import VARIANTS, Delivery

# The two kinds of board a scenario may fit: pushed over SMP to MCUboot, or pulled over HTTP(S).
MCUBOOT = tuple(v.name for v in VARIANTS.values() if v.delivery is Delivery.SMP_PUSH)
HTTP = tuple(v.name for v in VARIANTS.values() if v.delivery is Delivery.HTTP_PULL)
ALL = MCUBOOT + HTTP
CUT_LINK = "ltem"  # paced so that a cut at a share of the transfer lands while bytes still flow


def _cut(percent: float) -> Scenario:
    return Scenario(f"power cut at {percent:g}% of the download", "updated",
                    cut=TriggerSpec("bytes", at_percent=percent), link=CUT_LINK)


# (scenario, variants it fits, in the default sample)
_LIBRARY: list[tuple[Scenario, tuple[str, ...], bool]] = [
    (Scenario("full image", "updated"), ALL, True),
    (Scenario("delta patch", "updated", artefact="delta", version="1.0.1"), HTTP, True),
    (Scenario("delta patch, power cut while applying", "updated", artefact="delta", version="1.0.2",
              cut_at_op=20), HTTP, True),
    (_cut(50), ALL, True),
    (Scenario("power cut during the flash write", "updated", cut_at_op=12), HTTP, True),
    (Scenario("power cut during the swap", "updated", cut_at_op=40), MCUBOOT, True),
    (Scenario("resume after a broken link", "updated",
              link_faults=(Fault("drop", at_percent=40, request=1), Fault("drop", at_percent=70, request=2))),
     ALL, True),
    (Scenario("corrupt image", "kept", link_faults=(Fault("corrupt", at_percent=50, length=4),)), ALL, True),
    # A board that pulls its update does so over HTTPS (every scenario above, power cuts and
    # resumes included); these present a certificate its firmware must refuse before any byte.
    (Scenario("server certificate from another CA", "kept", tls="wrong-ca"), HTTP, True),
    (Scenario("expired server certificate", "kept", tls="expired"), HTTP, True),
    (Scenario("server certificate for another host", "kept", tls="wrong-host"), HTTP, True),
    (Scenario("full image over plain HTTP", "updated", tls="none"), HTTP, False),
    # HTTP only for now: rig.drivers.SMPDriver.upload parses the image before sending it, so a
    # truncated one never reaches an MCUboot board (the host refuses it, not the board).
    (Scenario("truncated image", "kept", link_faults=(Fault("truncate", at_percent=60),)), HTTP, False),
    (Scenario("wrongly signed image", "kept", artefact="bad-signature"), MCUBOOT, True),
    (Scenario("unknown-key image", "kept", artefact="unknown-key"), MCUBOOT, False),
    (Scenario("downgraded image", "kept", floor_step=-1), ALL, False),
    (Scenario("wrong-variant image", "kept", artefact="wrong-variant"), ALL, False),
    (Scenario("crash on boot", "rolled back", fault="crash-on-boot"), ALL, True),
    (Scenario("hang (watchdog)", "rolled back", fault="hang"), ALL, False),
    (Scenario("never confirms", "rolled back", fault="no-confirm"), ALL, False),
    (Scenario("fails its health check", "rolled back", fault="fail-health"), ALL, False),
    (Scenario("confirmed image survives power cycles", "updated", power_cycles_after=3), ALL, False),
    (Scenario("ten updates in a row", "updated", repeat=10), ALL, False),
]
_CUT_PERCENTS = range(0, 101, 10)
_SWAP_OPS = (1, 2, 5, 10, 20, 80, 120, 160, 240, 320)
_DELTA_OPS = (1, 2, 3, 8, 30, 50, 70)


def _swap_op(n: int) -> Scenario:
    return Scenario(f"power cut at swap flash operation {n}", "updated", cut_at_op=n)


def _delta_op(n: int) -> Scenario:
    return Scenario(f"delta patch, power cut at apply flash operation {n}", "updated", artefact="delta",
                    version="1.0.3", cut_at_op=n)


_SWEEP: list[tuple[Scenario, tuple[str, ...]]] = (
    [(_cut(p), ALL) for p in _CUT_PERCENTS if p != 50]
    + [(_swap_op(n), MCUBOOT) for n in _SWAP_OPS]
    + [(_delta_op(n), HTTP) for n in _DELTA_OPS]
)

# The fault switch of the virtual lab (rig/sim/broken.py) under which a scenario must report
# failure, per kind of board ("mcuboot", "http") or, where the two MCUboot variants differ, per
# variant. What guards the outcome differs: MCUboot validates in the bootloader, the ESP32 OTA
# client checks the image before it sets otadata; MCUboot swaps, the ESP32 boots the other slot.
#
# Every scenario has one (tests/ota/test_broken_coverage.py). Where a scenario should end
# "updated", confirm-not-persisted - the app says it confirmed, read-back says it did not - is the
# switch of the happy paths, of survival over power cycles and of the series; it is also the switch
# where a scenario's fault cannot meet the bug it is about:
# - an ESP32 power cut at 0 % of the download may land before the client recorded its first 4 KiB
#   page (nothing to resume yet); at 90 % or 100 % after the last byte arrived (the campaign makes
#   the cut when it next looks, about LINE_POLL_S after the trigger: at 90 % the link leaves a
#   quarter of a second, too little margin on a loaded machine); an SMP upload at 100 % is complete
#   before its cut; a delta apply cut at flash operation 1-3 precedes the first progress record;
# - no switch breaks only the second or later update of a series: each bug in these models that
#   the series would find already breaks the first update.
# A swap cut before the primary's trailer records the swap (the H7 erases one 128 KiB sector and
# writes three fields first, the L0 erases 58 pages of 128 bytes; then the request in the secondary
# is erased) finds the request still there and starts over: only a bootloader that erased the
# request first loses the update; any later cut is resumed from the swap status, which
# revert-resumed-swap gets wrong.
_ROLLBACKS = ("crash on boot", "hang (watchdog)", "never confirms", "fails its health check")
_SWAP_RECORDED_FROM = {"stm32h7": 5, "stm32l0": 62}  # a cut at this flash operation or later is resumed


def _swap_cut_broken_by(op: int) -> dict[str, str]:
    return {v: "revert-resumed-swap" if op >= _SWAP_RECORDED_FROM[v] else "request-erased-first" for v in MCUBOOT}


def _download_cut_broken_by(percent: int) -> dict[str, str]:
    return {"mcuboot": "resume-wrong-offset" if percent < 100 else "confirm-not-persisted",
            "http": "resume-wrong-offset" if 10 <= percent <= 80 else "confirm-not-persisted"}


BROKEN_BY: dict[str, dict[str, str]] = {
    "full image": {"mcuboot": "confirm-not-persisted", "http": "confirm-not-persisted"},
    "delta patch": {"http": "confirm-not-persisted"},
    "delta patch, power cut while applying": {"http": "resume-wrong-offset"},
    "power cut during the flash write": {"http": "resume-wrong-offset"},
    "power cut during the swap": _swap_cut_broken_by(40),
    "wrongly signed image": {"mcuboot": "no-signature-check"},
    "unknown-key image": {"mcuboot": "no-signature-check"},
    "corrupt image": {"mcuboot": "no-signature-check", "http": "no-image-check"},
    "server certificate from another CA": {"http": "no-cert-check"},
    "expired server certificate": {"http": "no-time-check"},
    "server certificate for another host": {"http": "no-host-check"},
    "full image over plain HTTP": {"http": "confirm-not-persisted"},
    "truncated image": {"http": "no-image-check"},
    "wrong-variant image": {"mcuboot": "no-revert", "http": "no-image-check"},
    "downgraded image": {"mcuboot": "no-signature-check", "http": "no-image-check"},
    **{name: {"mcuboot": "no-revert", "http": "no-revert"} for name in _ROLLBACKS},
    "resume after a broken link": {"mcuboot": "resume-wrong-offset", "http": "resume-wrong-offset"},
    "confirmed image survives power cycles": {"mcuboot": "confirm-not-persisted", "http": "confirm-not-persisted"},
    "ten updates in a row": {"mcuboot": "confirm-not-persisted", "http": "confirm-not-persisted"},
    **{_cut(p).name: _download_cut_broken_by(p) for p in _CUT_PERCENTS},
    **{_swap_op(n).name: _swap_cut_broken_by(n) for n in _SWAP_OPS},
    **{_delta_op(n).name: {"http": "resume-wrong-offset" if n > 3 else "confirm-not-persisted"} for n in _DELTA_OPS},
}


def broken_by(name: str, variant: str) -> str | None:
    """The fault switch that must make scenario `name` fail on a board of `variant`, if any."""
    entry = BROKEN_BY.get(name, {})
    return entry.get(variant) or entry.get("http" if variant in HTTP else "mcuboot")


def one_way() -> list[str]:
    """Scenarios that raise a board's anti-rollback floor for good."""
    return [s.name for s, _, _ in _LIBRARY if s.burns_otp]


def scenarios(variant: str, sweep: bool = False) -> list[Scenario]:
    chosen = [s for s, fits, sample in _LIBRARY if variant in fits and (sample or sweep)]
    if sweep:
        chosen += [s for s, fits in _SWEEP if variant in fits]
    return chosen


def fits(name: str, variant: str) -> bool:
    return any(s.name == name and variant in f for s, f, _ in _LIBRARY) or any(
        s.name == name and variant in f for s, f in _SWEEP)


def by_name(name: str) -> Scenario:
    for s, _, _ in _LIBRARY:
        if s.name == name:
            return s
    for s, _ in _SWEEP:
        if s.name == name:
            return s
    raise RigError(f"no scenario {name!r}; `rig ota --list` shows them")


def names(sweep: bool = True) -> list[str]:
    return [s.name for s, _, sample in _LIBRARY if sample or sweep] + ([s.name for s, _ in _SWEEP] if sweep else [])


def grouped(sweep: bool) -> dict[str, list[str]]:
    """Scenario names by the boards they fit: "all", "mcuboot" (STM32 boards), "http" (ESP32).

    sweep=False gives the default sample; sweep=True only what the sample leaves out. Scenarios
    that burn a board's anti-rollback floor are in neither (one_way()): they need boards set aside."""
    groups: dict[str, list[str]] = {"all": [], "mcuboot": [], "http": []}
    kinds = {ALL: "all", MCUBOOT: "mcuboot", HTTP: "http"}
    for s, fit, sample in _LIBRARY:
        if sample != sweep and not s.burns_otp:
            groups[kinds[fit]].append(s.name)
    if sweep:
        for s, fit in _SWEEP:
            groups[kinds[fit]].append(s.name)
    return groups
