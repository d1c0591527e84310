"""The named update scenarios of the HIL suite, `rig ota` and `rig demo`, and which boards they fit.

    scenarios(variant, sweep=False) -> list[Scenario]   what runs on a board of this variant
    by_name(name) -> Scenario
    BROKEN_BY: scenario name -> the defects (rig/sim/broken.py switches) that must make it fail
    broken_by(name, variant) -> those switches for a board of this variant

The default list is the representative sample; `sweep=True` adds the long sweeps (power cuts at
every tenth of a transfer and at many flash operations of a swap or a delta apply), which the
suite runs under the `nightly` marker.
"""

from rig.errors import RigError
from rig.image.layouts import LAYOUTS
from rig.ota import damage
from rig.ota.campaign import BASELINE_VERSION, Scenario
from rig.ota.faults import Fault
from rig.ota.triggers import TriggerSpec
from rig.variants import VARIANTS, Delivery

# The two kinds of board a scenario may fit: pushed over SMP to MCUboot, or pulled over HTTP(S).
MCUBOOT = tuple(v.name for v in VARIANTS.values() if v.delivery is Delivery.SMP_PUSH)
HTTP = tuple(v.name for v in VARIANTS.values() if v.delivery is Delivery.HTTP_PULL)
ALL = MCUBOOT + HTTP
# MCUboot boards whose sectors are large enough that every default test image fits in one: there a
# swap that moves one sector too few goes unseen unless an image spans more (the H7's 128 KiB).
BIG_SECTORS = tuple(v for v in MCUBOOT if LAYOUTS[VARIANTS[v].default_layout].geometry.sector_size >= 64 * 1024)
# The largest image a swap-using-move slot pair of those boards takes: the primary keeps one sector
# for the move and one for the trailer (MCUboot's "Not enough free space to run swap upgrade"), so on
# the H7's 4 + 3 sectors an image spans at most two sectors; this one does, with room for its TLVs.
TWO_SECTOR_CODE = 200 * 1024
CUT_LINK = "ltem"  # paced so that a cut at a share of the transfer lands while bytes still flow
# The reverted image's first boot, after the watchdog reset that ended the hung one.
REVERTED_BOOT = rf"rig: boot .*version={BASELINE_VERSION.replace('.', '[.]')}[+]0 .*reset=watchdog"
# Flash operations on the staging slot during an ESP32 download: sector k is erased by operation 2k
# and written by 2k+1 (rig.sim.esp32.ota_client: erase, write, then the progress record elsewhere).
ESP_PAGES = 24  # sectors of a default ESP32 release (98,384 bytes)
# Its code starts at 0x10020: esptool aligns the flash-mapped segment to the 64 KiB MMU page with a
# zero-filled padding segment, so sectors 1-15 hold zeros, which NOR flash ANDs into anything alike;
# only a sector of code shows a write that skipped its erase.
ESP_CODE_PAGES = range(16, ESP_PAGES)


def _cut(percent: float) -> Scenario:
    return Scenario(f"power cut at {percent:g}% of the download", "updated",
                    cut=TriggerSpec("bytes", at_percent=percent), link=CUT_LINK)


DELTA = Scenario("delta patch", "updated", artefact="delta", version="1.0.1")
# (scenario, variants it fits, in the default sample); a scenario listed twice is in the sample
# for some boards only
_LIBRARY: list[tuple[Scenario, tuple[str, ...], bool]] = [
    (Scenario("full image", "updated"), ALL, True),
    # A delta container the board applies as it arrives (the ESP32's OTA client; the STM32 app's
    # SMP upload, docs/firmware.md). The cut lands in the board's own writes of the new image: on
    # an STM32 its 20th flash operation in slot 1 of the apply (L0: a word, H7: a 32-byte flash
    # word; either way after the new image's header), not in MCUboot's swap at the next reset.
    (DELTA, HTTP, True),
    (DELTA, MCUBOOT, False),  # the cut one below also applies a clean patch (its second push)
    (Scenario("delta patch, power cut while applying", "updated", artefact="delta", version="1.0.2",
              cut_at_op=20, cut_while_receiving=True), ALL, True),
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
    # No health gate: the board must leave the hung image by itself, and say the watchdog reset it.
    (Scenario("hang, no power cycle: the watchdog resets it", "rolled back", fault="hang", health_gate=False,
              reset_cause="watchdog"), ALL, True),
    (Scenario("never confirms", "rolled back", fault="no-confirm"), ALL, False),
    (Scenario("fails its health check", "rolled back", fault="fail-health"), ALL, True),
    # Damage after a good update, through the probe / ROM loader, then power-up.
    (Scenario("damaged primary slot: flipped byte", "refused", damage=damage.FLIP), MCUBOOT, True),
    (Scenario("damaged running partition: flipped byte", "fell back", damage=damage.FLIP), HTTP, True),
    (Scenario("damaged running partition: truncated image", "fell back", damage=damage.TRUNCATE), HTTP, False),
    (Scenario("damaged running partition: bad header magic", "fell back", damage=damage.MAGIC), HTTP, False),
    # The update raises the floor; once it is stored, the old image is written back in its place.
    (Scenario("primary image below the security counter", "refused", floor_step=1, power_cycles_after=1,
              damage=damage.OLD), ALL, False),
    (Scenario("otadata: the active copy has a bad CRC", "fell back", damage=damage.OTADATA_ACTIVE), HTTP, True),
    (Scenario("otadata: both copies have a bad CRC", "fell back", damage=damage.OTADATA_BOTH), HTTP, False),
    (Scenario("otadata: set_boot_partition's write torn", "updated", cut_at_op=1, cut_region="otadata",
              tear=True), HTTP, True),
    (Scenario("power cut at a sector erase, over unrelated data", "updated", cut_at_op=2 * 18,
              cut_region="staging", prefill=True), HTTP, True),
    (Scenario("resume after a broken link, over unrelated data", "updated", prefill=True,
              link_faults=(Fault("drop", at_percent=40, request=1),)), MCUBOOT, False),
    # The 21st write of the download: in the code of every variant's image (an ESP32 image starts
    # with a padding segment the flip would also spoil, but a byte of code is the plainer case).
    (Scenario("a bit lost on its way to flash", "kept", flip_at_write=20), ALL, True),
    (Scenario("hang, power cut before the reverted image confirms", "rolled back", fault="hang",
              cut=TriggerSpec("line", pattern=REVERTED_BOOT)), MCUBOOT, True),
    (Scenario("crash on boot, then a second update", "rolled back", fault="crash-on-boot", second_update=True),
     ALL, False),
    # A cut after the move, while sectors are exchanged (an H7 image of one sector: the move is ~135
    # operations), then a revert that must bring back the old image the swap had moved.
    (Scenario("crash on boot, power cut in the swap's exchange phase", "rolled back", fault="crash-on-boot",
              cut_at_op=160), BIG_SECTORS, True),
    (Scenario("full image spanning two sectors", "updated", code_size=TWO_SECTOR_CODE), BIG_SECTORS, True),
    (Scenario("power cut during the swap of a two-sector image", "updated", code_size=TWO_SECTOR_CODE,
              cut_at_op=200), BIG_SECTORS, False),
    (Scenario("hang, two-sector image rolled back", "rolled back", fault="hang", code_size=TWO_SECTOR_CODE),
     BIG_SECTORS, False),
    (Scenario("confirmed image survives power cycles", "updated", power_cycles_after=3), ALL, False),
    (Scenario("ten updates in a row", "updated", repeat=10), ALL, False),
]
_CUT_PERCENTS = range(0, 101, 10)
_SWAP_OPS = (1, 2, 5, 10, 20, 80, 120, 160, 240, 320)
_DELTA_OPS = (1, 2, 3, 8, 30, 50, 70)
# An STM32's apply takes more flash operations (H7: ~470 flash words, L0: ~3,600 words and page
# erases for a 14 KiB image): two cuts further in, still before the apply's end on both.
_DELTA_DEEP_OPS = (200, 400)


def _swap_op(n: int) -> Scenario:
    return Scenario(f"power cut at swap flash operation {n}", "updated", cut_at_op=n)


def _delta_op(n: int) -> Scenario:
    return Scenario(f"delta patch, power cut at apply flash operation {n}", "updated", artefact="delta",
                    version="1.0.3", cut_at_op=n, cut_while_receiving=True)


_REVERT_OPS = (1, 2, 5, 10, 40, 80, 160)
_OTADATA_OPS = range(6)  # set_boot_partition (erase, write), the trial's start, mark-valid
_ESP_SECTORS = range(ESP_PAGES)


def _revert_op(n: int) -> Scenario:
    return Scenario(f"hang, power cut at revert flash operation {n}", "rolled back", fault="hang",
                    revert_cut_at_op=n)


def _otadata_op(n: int) -> Scenario:
    return Scenario(f"otadata: torn write at its flash operation {n + 1}", "updated", cut_at_op=n,
                    cut_region="otadata", tear=True)


def _erase_cut(k: int) -> Scenario:
    return Scenario(f"power cut at the erase of sector {k}, over unrelated data", "updated", cut_at_op=2 * k,
                    cut_region="staging", prefill=True)


def _torn_write(k: int) -> Scenario:
    return Scenario(f"torn write of sector {k}, over unrelated data", "updated", cut_at_op=2 * k + 1,
                    cut_region="staging", tear=True, prefill=True)


_SWEEP: list[tuple[Scenario, tuple[str, ...]]] = (
    [(_cut(p), ALL) for p in _CUT_PERCENTS if p != 50]
    + [(_swap_op(n), MCUBOOT) for n in _SWAP_OPS]
    + [(_delta_op(n), ALL) for n in _DELTA_OPS]
    + [(_delta_op(n), MCUBOOT) for n in _DELTA_DEEP_OPS]
    + [(_revert_op(n), MCUBOOT) for n in _REVERT_OPS]
    + [(_otadata_op(n), HTTP) for n in _OTADATA_OPS]
    + [(_erase_cut(k), HTTP) for k in _ESP_SECTORS]
    + [(_torn_write(k), HTTP) for k in _ESP_SECTORS]
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
#   before its cut; a delta apply cut at flash operation 1-3 precedes the first progress record
#   (ESP32), and on an STM32 a cut after operation 1 (the erase of slot 1's first sector) leaves
#   no image header behind for interrupted-upload-blocks-slot to trip over;
# - no switch breaks only the second or later update of a series: each bug in these models that
#   the series would find already breaks the first update.
# A swap cut before the primary's trailer records the swap (the H7 erases one 128 KiB sector and
# writes three fields first, the L0 erases 58 pages of 128 bytes; then the request in the secondary
# is erased) finds the request still there and starts over: only a bootloader that erased the
# request first loses the update; any later cut is resumed from the swap status, which
# revert-resumed-swap gets wrong.
_ROLLBACKS = ("crash on boot", "hang (watchdog)", "never confirms", "fails its health check")
_SWAP_RECORDED_FROM = {"stm32h7": 5, "stm32l0": 62}  # a cut at this flash operation or later is resumed


def _swap_cut_broken_by(op: int) -> dict[str, tuple[str, ...]]:
    return {v: ("revert-resumed-swap",) if op >= _SWAP_RECORDED_FROM[v] else ("request-erased-first",)
            for v in MCUBOOT}


def _download_cut_broken_by(percent: int) -> dict[str, tuple[str, ...]]:
    # rig's C firmware starts an upload cut by a power loss over from 0 (its upload state is in
    # RAM), so a wrong resume offset cannot show there; an upload that leaves a slot blocked can.
    return {"mcuboot": ("interrupted-upload-blocks-slot",) if 0 < percent < 100 else ("confirm-not-persisted",),
            "http": ("resume-wrong-offset",) if 10 <= percent <= 80 else ("confirm-not-persisted",)}


def _both(*switches: str) -> dict[str, tuple[str, ...]]:
    return {"mcuboot": switches, "http": switches}


# The first switch of an entry is the one the broken-model tests run; every switch listed must
# make the scenario fail (bench/bench_catch_rate.py measures which scenarios each defect fails).
# A cut at the erase of the first ESP32 sector comes before any progress record (nothing to
# resume: the switch of the happy path); a torn write leaves the first half of the sector right and
# the rest erased, which a resume without an erase writes correctly: resume-wrong-offset shows it.
BROKEN_BY: dict[str, dict[str, tuple[str, ...]]] = {
    "full image": _both("confirm-not-persisted"),
    "delta patch": _both("confirm-not-persisted"),
    "delta patch, power cut while applying": {"http": ("resume-wrong-offset",),
                                              "mcuboot": ("interrupted-upload-blocks-slot",)},
    "power cut during the flash write": {"http": ("resume-wrong-offset",)},
    "power cut during the swap": _swap_cut_broken_by(40),
    "wrongly signed image": {"mcuboot": ("no-signature-check",)},
    "unknown-key image": {"mcuboot": ("no-signature-check",)},
    # MCUboot boards: none - see tests/ota/test_broken_coverage.py DEFENDED_TWICE.
    "corrupt image": {"http": ("no-image-check", "set-boot-before-verify")},
    "server certificate from another CA": {"http": ("no-cert-check",)},
    "expired server certificate": {"http": ("no-time-check",)},
    "server certificate for another host": {"http": ("no-host-check",)},
    "full image over plain HTTP": {"http": ("confirm-not-persisted",)},
    "truncated image": {"http": ("no-image-check",)},
    "wrong-variant image": {"mcuboot": ("no-revert",), "http": ("no-image-check",)},
    "downgraded image": {"mcuboot": ("no-security-counter", "no-signature-check"),
                         "http": ("client-no-anti-rollback", "no-image-check")},
    **{name: {"mcuboot": ("no-revert", "image-ok-on-test", "smp-test-is-permanent"), "http": ("no-revert",)}
       for name in _ROLLBACKS},
    "fails its health check": {"mcuboot": ("confirm-before-health", "no-revert"),
                               "http": ("confirm-before-health", "no-revert")},
    "hang, no power cycle: the watchdog resets it": _both("watchdog-never-bites", "no-revert"),
    "damaged primary slot: flipped byte": {"mcuboot": ("no-primary-validation", "no-signature-check")},
    "damaged running partition: flipped byte": {"http": ("skip-validate-on-power-on", "no-fallback")},
    # Not skip-validate-on-power-on: ESP-IDF's esp_image_load checks every segment header even with
    # ESP_IMAGE_LOAD_NO_VALIDATE (process_segment -> verify_segment_header), and the erased half of
    # a truncated app holds its last segment header (length 0xffffffff), so the app is refused anyway.
    "damaged running partition: truncated image": {"http": ("no-fallback",)},
    "damaged running partition: bad header magic": {"http": ("no-fallback",)},
    "primary image below the security counter": {"mcuboot": ("no-security-counter",),
                                                  "http": ("esp-no-anti-rollback",)},
    "otadata: the active copy has a bad CRC": {"http": ("otadata-crc-unchecked",)},
    "otadata: both copies have a bad CRC": {"http": ("otadata-crc-unchecked",)},
    "otadata: set_boot_partition's write torn": {"http": ("otadata-crc-unchecked",)},
    "power cut at a sector erase, over unrelated data": {"http": ("resume-no-erase", "resume-wrong-offset")},
    "resume after a broken link, over unrelated data": {"mcuboot": ("resume-wrong-offset",)},
    "a bit lost on its way to flash": {"mcuboot": ("smp-match-always",), "http": ("verify-from-ram",)},
    "hang, power cut before the reverted image confirms": {"mcuboot": ("revert-no-image-ok",)},
    "crash on boot, then a second update": _both("no-revert"),
    # A swap restarted without its status redoes the move over the half-exchanged primary: the new
    # image still ends in slot0, but the old one the revert needs is gone.
    "crash on boot, power cut in the swap's exchange phase": {"mcuboot": ("swap-status-not-written",)},
    "full image spanning two sectors": {"mcuboot": ("swap-size-rounded-down",)},
    "power cut during the swap of a two-sector image": {"mcuboot": ("swap-size-rounded-down",)},
    "hang, two-sector image rolled back": {"mcuboot": ("swap-size-rounded-down",)},
    "resume after a broken link": _both("resume-wrong-offset"),
    "confirmed image survives power cycles": _both("confirm-not-persisted"),
    "ten updates in a row": _both("confirm-not-persisted"),
    **{_cut(p).name: _download_cut_broken_by(p) for p in _CUT_PERCENTS},
    **{_swap_op(n).name: _swap_cut_broken_by(n) for n in _SWAP_OPS},
    **{_delta_op(n).name: {"http": ("resume-wrong-offset",) if n > 3 else ("confirm-not-persisted",),
                           "mcuboot": ("interrupted-upload-blocks-slot",) if n > 1 else ("confirm-not-persisted",)}
       for n in _DELTA_OPS},
    **{_delta_op(n).name: {"mcuboot": ("interrupted-upload-blocks-slot",)} for n in _DELTA_DEEP_OPS},
    **{_revert_op(n).name: {"mcuboot": ("no-revert",)} for n in _REVERT_OPS},
    # A torn write leaves an entry with a bad CRC, which only a bootloader that skips the CRC takes;
    # a torn erase leaves none, so there only an update that does not last shows.
    **{_otadata_op(n).name: {"http": ("otadata-crc-unchecked",) if n % 2 else ("confirm-not-persisted",)}
       for n in _OTADATA_OPS},
    **{_erase_cut(k).name: {"http": ("resume-no-erase", "resume-wrong-offset") if k in ESP_CODE_PAGES
                            else ("resume-wrong-offset",) if k else ("confirm-not-persisted",)} for k in _ESP_SECTORS},
    **{_torn_write(k).name: {"http": ("resume-wrong-offset",) if k else ("confirm-not-persisted",)}
       for k in _ESP_SECTORS},
}


def breakers(name: str, variant: str) -> tuple[str, ...]:
    """The defects (rig/sim/broken.py switches) that must make scenario `name` fail on `variant`."""
    entry = BROKEN_BY.get(name, {})
    return entry.get(variant) or entry.get("http" if variant in HTTP else "mcuboot") or ()


def broken_by(name: str, variant: str) -> str | None:
    """The switch the broken-model tests run for scenario `name` on `variant`, if any."""
    found = breakers(name, variant)
    return found[0] if found else None


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
    listed = [s.name for s, _, sample in _LIBRARY if sample or sweep] + ([s.name for s, _ in _SWEEP] if sweep else [])
    return list(dict.fromkeys(listed))


def grouped(sweep: bool) -> dict[str, list[str]]:
    """Scenario names by the boards they fit: "all", "mcuboot" (STM32 boards), "http" (ESP32),
    "big-sectors" (MCUboot boards with sectors larger than a default image, BIG_SECTORS).

    sweep=False gives the default sample; sweep=True only what the sample leaves out. Scenarios
    that burn a board's anti-rollback floor are in neither (one_way()): they need boards set aside."""
    groups: dict[str, list[str]] = {"all": [], "mcuboot": [], "http": [], "big-sectors": []}
    kinds = {ALL: "all", MCUBOOT: "mcuboot", HTTP: "http", BIG_SECTORS: "big-sectors"}
    for s, fit, sample in _LIBRARY:
        if sample != sweep and not s.burns_otp:
            groups[kinds[fit]].append(s.name)
    if sweep:
        for s, fit in _SWEEP:
            groups[kinds[fit]].append(s.name)
    return groups
