"""The campaign runner: an update scenario on a board, with faults, ending in a verdict from read-back.

A scenario says what to send (a release of some firmware fault mode, full or delta, signed right
or wrong, at, above or below the board's rollback floor), which faults to inject (link faults of
rig.ota.faults, a power cut from rig.ota.triggers or at a flash operation), and what a correct
board ends up doing: `updated` (the new image runs, confirmed), `kept` (refused; the running image
keeps running and the new one never booted) or `rolled back` (the new image booted, failed, and
the old one runs again, confirmed). Scenarios that damage flash after the update (rig.ota.damage)
end `refused` (the bootloader boots nothing and logs why) or `fell back` (it boots the old image
and logs why it left the damaged one).

Each run:
  baseline   a known release, confirmed, installed through the board's own flasher and
             power-cycled with the console listening;
  deliver    hand the board the update (targets.py), with the faults; after a power cut the board
             is handed it again and must resume;
  settle     follow the console until the board runs an image that confirmed itself or has
             refused the update; an image that does not confirm within CONFIRM_WAIT_S is power-
             cycled, as a fleet's health gate does, so its bootloader can roll it back;
  damage     (some scenarios) the image the board runs, or its otadata, is damaged through the
             probe or the ROM loader, and the board is power-cycled with the console listening;
  read back  which image the boot slot holds and whether anything is pending - through the probe
             or the ROM loader, never from what the app says about itself;
  verdict    the observed outcome, from read-back and the console's boot lines together.

Every step is timed and logged (logger `rig.ota.campaign`); `on_step` sees each as it ends.
"""

import enum
import logging
import re
import threading
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field, replace

from rig import delta
from rig.drivers.strategy import BOOT_LINE, parse_boot_fields
from rig.errors import ConsoleTimeout, HandoverRefused, PowerCutDuringUpload, RigError
from rig.image import mcuboot
from rig.image.appdesc import FAULTS as FIRMWARE_FAULTS
from rig.image.mcuboot import Version
from rig.ota import damage as damages
from rig.ota import releases
from rig.ota.faults import Fault
from rig.ota.targets import Plan, ReadBack, UpdateTarget
from rig.ota.tls import SERVER_CERTS
from rig.ota.triggers import Trigger, TriggerSpec
from rig.variants import facts, foreign

log = logging.getLogger("rig.ota.campaign")

OUTCOMES = ("updated", "kept", "rolled back", "refused", "fell back")
ARTEFACTS = ("full", "delta", "unknown-key", "bad-signature", "wrong-variant")
TLS_MODES = ("none", *SERVER_CERTS)
BASELINE_VERSION = "1.0.0"
CONFIRM_WAIT_S = 3.0  # a booted image that has not confirmed by then is power-cycled
# A board that installs at reset and shows no app boot this long after the hand-over is power-cycled
# by the gate too: an image that never starts (a locked-up core, no watchdog running) is silent, and a
# fleet's gate counts a device that never checks in again as failed. Long enough for a two-sector swap.
SILENT_WAIT_S = 20.0
GATE_CYCLES = 2  # power cycles the health gate tries before it gives up on a board
SETTLE_S = 60.0  # the longest a board may take from delivery to a settled state
LINE_POLL_S = 0.1  # also how late a triggered power cut may land
HANG_WAIT_S = 12.0  # without the health gate: how long a board may sit without confirming or resetting
DAMAGE_WATCH_S = 4.0  # how long the console is watched after a damaged board is powered up
# The app's lines, and the ESP32 ROM's reset line (`rst:0x7 (TG0WDT_SYS_RESET),boot:...`): the
# ROM reads the reset cause from the chip before any firmware runs.
APP_LINE = r"rig: [^\r\n]*|rst:0x[0-9a-f]+ \([A-Z0-9_]+\)"
ANY_LINE = r"[^\r\n]+"
# Lines a bootloader prints when it refuses an image: MCUboot's `E: ...`, ESP-IDF's `E (123) tag: ...`.
BOOTLOADER_ERROR = r"^(E: |E \(\d+\) )"


@dataclass(frozen=True)
class Scenario:
    name: str
    expected: str  # one of OUTCOMES
    version: str = "2.0.0"
    fault: str = "none"  # the new firmware's fault mode (rig.image.appdesc.FAULTS)
    artefact: str = "full"  # one of ARTEFACTS
    floor_step: int = 0  # the new image's rollback floor relative to the board's: -1 is a downgrade
    link_faults: tuple[Fault, ...] = ()
    cut: TriggerSpec | None = None  # a power cut on what the rig observes
    cut_at_op: int | None = None  # a power cut at the board's Nth flash operation after the hand-over
    # Where the bootloader installs the update at the next reset (MCUboot), cut_at_op counts from
    # that reset unless this is set: then from the hand-over, so the cut lands in the app's own
    # writes as it takes the update (a delta applied while it arrives), and the upload dies with it.
    cut_while_receiving: bool = False
    link: str = "loopback"  # OTA server link profile (HTTP boards)
    # HTTP boards: the certificate the OTA server presents (rig.ota.tls.SERVER_CERTS), "none" for
    # plain HTTP; None is the campaign's default (HTTPS with the certificate its firmware trusts)
    tls: str | None = None
    power_cycles_after: int = 0  # extra power cycles once settled (survival of a confirmed image)
    repeat: int = 1  # updates in a row, each to the next minor version, without a new baseline
    # The health gate power-cycles an image that does not confirm in time; without it the board
    # must get out of a hang by itself (its watchdog), as a device in the field has to.
    health_gate: bool = True
    reset_cause: str | None = None  # the cause the boot after the failed image must report
    cut_region: str | None = None  # cut_at_op counts only flash operations on this partition
    # ("staging": the one the update is written to)
    tear: bool = False  # the cut tears the operation it lands in (half of it reaches the cells)
    revert_cut_at_op: int | None = None  # a cut at the Nth flash operation after the new image booted
    flip_at_write: int | None = None  # the staging slot's write N (from 0) has a bit flipped on its way to flash
    prefill: bool = False  # the staging slot holds unrelated (random) data before the download starts
    damage: str | None = None  # rig.ota.damage: what is damaged once the update settled
    second_update: bool = False  # after the outcome, a clean update to the next version must succeed
    code_size: int | None = None  # the new image's size at least (rig.ota.releases' size=)

    @property
    def burns_otp(self) -> bool:
        """True when the scenario raises the board's anti-rollback floor for good (ESP32 eFuse,
        MCUboot's NV security counter): releases below it never boot on that board again."""
        return self.floor_step != 0

    @property
    def refused_at_handover(self) -> bool:
        """The board must refuse the update when the upload ends (a bad write reached flash)."""
        return self.flip_at_write is not None

    def __post_init__(self):
        if self.expected not in OUTCOMES:
            raise RigError(f"scenario {self.name}: expected outcome {self.expected!r}; one of {', '.join(OUTCOMES)}")
        if self.fault not in FIRMWARE_FAULTS:
            raise RigError(f"scenario {self.name}: firmware fault {self.fault!r}; one of {', '.join(FIRMWARE_FAULTS)}")
        if self.artefact not in ARTEFACTS:
            raise RigError(f"scenario {self.name}: artefact {self.artefact!r}; one of {', '.join(ARTEFACTS)}")
        if self.tls is not None and self.tls not in TLS_MODES:
            raise RigError(f"scenario {self.name}: tls {self.tls!r}; one of {', '.join(TLS_MODES)}")
        if self.damage is not None and self.damage not in damages.KINDS:
            raise RigError(f"scenario {self.name}: damage {self.damage!r}; one of {', '.join(damages.KINDS)}")


@dataclass
class Step:
    name: str
    seconds: float
    detail: str = ""


@dataclass
class Verdict:
    board: str
    variant: str
    scenario: str
    expected: str
    observed: str = "unknown"
    reasons: list[str] = field(default_factory=list)
    steps: list[Step] = field(default_factory=list)
    rollbacks: list[str] = field(default_factory=list)
    wire_bytes: int = 0
    artefact_size: int = 0
    faults_fired: list[str] = field(default_factory=list)
    # The update was refused before it was installed: the target raised HandoverRefused, or the
    # board's OTA client said `ota refused`. The proofs read these; the faults column is for people.
    handover_refused: bool = False
    client_refused: bool = False
    read_back: str = ""
    console: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.observed == self.expected and not self.reasons

    def summary(self) -> str:
        why = f" ({'; '.join(self.reasons)})" if self.reasons else ""
        return (f"{self.board} {self.scenario}: expected {self.expected}, observed {self.observed}{why}; "
                f"read-back: {self.read_back}")


@dataclass
class _Boot:
    version: str
    reset: str
    confirmed: bool = False
    health_fail: bool = False
    hardfault: bool = False
    rom_reset: str = ""  # the ESP32 ROM's reset reason printed before this boot, if any
    at: float = field(default_factory=time.monotonic)


class _Phase(enum.Enum):
    WAITING = "waiting"  # for an image that confirms itself, under the health gate
    RESENDING = "resending"  # the board lost the update with its power: hand it over again once it runs
    SETTLED = "settled"


@dataclass
class _Settling:
    """The settle step's state (Campaign._settle)."""

    phase: _Phase = _Phase.WAITING
    gate_since: float | None = None  # when the health gate's current wait began
    gate_cycles: int = 0  # power cycles the gate made
    gate_cycle_pending: bool = False  # the next power-on boot is the gate's own cycle, not a power loss


class Campaign:
    """Runs scenarios on one board, delivering through `target` (rig.ota.targets.for_board)."""

    def __init__(self, drivers, target: UpdateTarget, signer, other_signer=None, instruments=None,
                 on_step: Callable[[str, Step], None] | None = None, allow_otp_burn: bool = False,
                 firmware_ca: bytes = b""):
        self.d = drivers
        self.firmware_ca = firmware_ca  # built into every ESP32 release (rig.ota.releases)
        self.target = target
        self.signer = signer
        self.other_signer = other_signer  # a key the board does not trust (unknown-key scenarios)
        self.instruments = instruments  # rig.ota.instruments.LabInstruments, for cut_at_op
        self.on_step = on_step
        self.allow_otp_burn = allow_otp_burn
        self.own_power_cycles = 0
        self._handed_at = 0
        self._handed_time = 0.0  # when the update was handed over (the gate's clock for a silent board)
        self._rom_reset = ""  # the last ESP32 ROM reset reason seen, for the next boot line
        # A trigger fires on another thread; labgrid's drivers belong to this one, so the cut is
        # requested there and made here, by whoever waits next (console follower, upload progress).
        self._cut_requested = threading.Event()

    # -- the parts of a run
    @contextmanager
    def _step(self, verdict: Verdict, name: str):
        step = Step(name, 0.0)
        start = time.monotonic()
        try:
            yield step
        finally:
            step.seconds = time.monotonic() - start
            verdict.steps.append(step)
            log.info("%s %s: %s %.2fs %s", verdict.board, verdict.scenario, name, step.seconds, step.detail)
            if self.on_step:
                self.on_step(verdict.board, step)

    # -- power: every transition of a run goes through these, with the board's off time (BoardDrivers.off_s)
    def _power_cycle(self, take: Callable[[str], None] | None = None) -> None:
        """Off, the board's off time, on. The console is drained while the power is off, so the lines
        read after it are the new power-on's: an old boot line read later would count as the boot
        after the cycle. `take`: the run's line handler (_taker); the lines the board sent before the
        cut are read while it is off and handed to it first, as lines of the run before."""
        self.own_power_cycles += 1
        self.d.power_cycle(while_off=None if take is None else lambda: self._read_lines(take, self.d.off_s))

    def _read_lines(self, take: Callable[[str], None], seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                take(self.d.console.expect_line(APP_LINE, timeout=LINE_POLL_S).group(0).strip())
            except ConsoleTimeout:
                pass

    def _taker(self, v: Verdict, boots: list["_Boot"],
               on_line: Callable[[str], None] | None = None) -> Callable[[str], None]:
        """What a run does with each console line it reads: note it in the boots, then `on_line`."""
        def take(line: str) -> None:
            self._note(v, boots, line)
            if on_line:
                on_line(line)
        return take

    def _power_cut(self) -> None:
        """Power off mid-delivery; whoever restarts the board next turns it back on."""
        self.own_power_cycles += 1
        self.d.power_off()

    def _arm_cut(self, after_ops: int, s: Scenario | None = None) -> None:
        """The lab's relay cuts power at the board's Nth flash operation, for the board's off time
        (counting only operations on the scenario's cut_region, torn if it says so)."""
        region = self._region(s.cut_region) if s is not None and s.cut_region else None
        self.instruments.arm_cut(self.d.board.id, after_ops, tear=bool(s and s.tear), off_s=self.d.off_s,
                                 region=region)

    def _disarm(self) -> None:
        """Forget a cut or bit flip armed on the board and not fired: a board whose defect never
        reaches the planned flash operation (an MCUboot that never reverts, armed for the revert)
        would otherwise take the cut in whatever writes its flash next - the next campaign's
        baseline flashing."""
        if self.instruments is not None:
            self.instruments.disarm(self.d.board.id)

    def _region(self, name: str) -> tuple[int, int]:
        part = self.target.layout.part(self.target.staging if name == "staging" else name)
        return part.offset, part.size

    def _cut_if_requested(self, take: Callable[[str], None]) -> None:
        if self._cut_requested.is_set():
            self._cut_requested.clear()
            self._power_cycle(take)

    def _artefact(self, s: Scenario, old: bytes, floor: int) -> tuple[bytes, bytes]:
        """What the board is sent, and the image it should end up with: the same bytes, except for
        a delta, which is made from that image (signed once: an ECDSA signature differs per call)."""
        variant = self.d.board.variant
        new_floor = floor + s.floor_step
        if new_floor < 0:
            raise RigError(f"scenario {s.name}: the board's floor is {floor}; a downgrade below 0 is impossible")
        if s.artefact == "wrong-variant":
            image = releases.image(foreign(variant), s.version, self.signer, s.fault, new_floor, ca=self.firmware_ca)
            return image, image
        signer = self.signer
        if s.artefact == "unknown-key":
            if self.other_signer is None:
                raise RigError(f"scenario {s.name}: needs a second signing key the board does not trust")
            signer = self.other_signer
        new = releases.image(variant, s.version, signer, s.fault, new_floor, size=s.code_size, ca=self.firmware_ca,
                             defect=self.target.defect)
        if s.artefact == "bad-signature":
            new = _spoil_signature(new)
        if s.artefact == "delta":
            return delta.make(old, new, facts(variant).delta_profile).data, new
        return new, new

    def run(self, s: Scenario) -> Verdict:
        if s.burns_otp and not self.allow_otp_burn:
            raise RigError(f"scenario {s.name!r} raises {self.d.board.id}'s anti-rollback floor for good "
                           "(eFuse / NV counter); allow it explicitly (rig ota --burn-otp) on a board set aside for it")
        v = Verdict(self.d.board.id, self.d.board.variant, s.name, s.expected)
        self.d.target.activate(self.d.console)
        self.d.power_on()  # a board left off by an earlier job has no ROM loader or probe to talk to
        boots: list[_Boot] = []
        self._disarm()  # what an earlier job left armed (one that failed before its own disarm)
        with self._step(v, "baseline") as step:
            installed = self.target.baseline(BASELINE_VERSION, self.signer)
            boot = self._boot_to_app(v, boots)
            step.detail = f"{BASELINE_VERSION} floor={installed.floor} booted {boot}"
        old, floor, old_version = installed.image, installed.floor, BASELINE_VERSION
        if s.floor_step < 0:
            # A downgrade needs a floor above the old one: update to floor+1 first, confirm, power-cycle.
            with self._step(v, "raise floor") as step:
                old, floor, old_version = self._raise_floor(v, s, floor, boots)
                step.detail = f"{old_version} at floor {floor}, then power cycle"
        old_version = str(Version.parse(old_version))
        new_image, new_version = old, old_version
        for i in range(s.repeat):
            if i:  # the next update of a series starts from the one before
                old, old_version = new_image, new_version
                s = replace(s, version=_bump(s.version, minor=1))
            artefact, new_image = self._artefact(s, old, floor)
            v.artefact_size = len(artefact)
            new_version = str(Version.parse(s.version))
            if i == 0 and s.prefill:
                with self._step(v, "prefill") as step:
                    step.detail = damages.prefill(self.d, self.target.layout, self._region("staging"),
                                                  len(artefact))
                    # The flasher left the board reset or halted: the update starts from a running app.
                    step.detail += f"; then booted {self._boot_to_app(v, boots)}"
            with self._step(v, "deliver and settle" if s.repeat == 1 else f"update {i + 1} to {s.version}") as step:
                mark = len(boots)
                fired = self._deliver(v, s, artefact, boots)
                step.detail = f"{len(boots) - mark} boots: " + ", ".join(
                    f"{b.version}({b.reset})" for b in boots[mark:])
            if i < s.repeat - 1 and not (boots and boots[-1].version == new_version and boots[-1].confirmed):
                v.reasons.append(f"update {i + 1} of {s.repeat} to {new_version} did not end running it")
        self._disarm()  # settled: a planned fault that has not fired will not (reported below)
        for i in range(s.power_cycles_after):
            with self._step(v, f"power cycle {i + 1}") as step:
                step.detail = self._boot_to_app(v, boots)
        candidates = {"new": new_image, "old": old}
        lines: list[str] = []
        if s.damage is not None:
            with self._step(v, f"damage: {s.damage}") as step:
                damaged, step.detail = damages.apply(self.d, self.target, s.damage, new_image, old)
                candidates = {"damaged": damaged, **candidates}
                after_damage = len(boots)
                lines = self._watch(v, boots, DAMAGE_WATCH_S)
                step.detail += "; then " + (", ".join(f"{b.version}({b.reset})" for b in boots[after_damage:])
                                            or "no boot")
        with self._step(v, "read back") as step:
            try:
                self.d.power_on()  # a board that never came back is read as it lies
                rb = self.target.read_back(candidates)
            except RigError as exc:
                rb = ReadBack(None, False, f"read-back failed: {exc}")
            v.read_back = step.detail = f"boot slot holds {rb.holds or 'neither image'}; {rb.detail}"
        if s.damage is not None:
            v.observed = _damage_outcome(rb, boots[after_damage:], lines, new_version, old_version, s.damage)
        else:
            v.observed = _outcome(rb, boots, new_version, old_version)
        v.rollbacks = _rollbacks(v.board, boots, new_version, old_version)
        v.reasons += _proofs(s, v, boots, new_version, old_version, self.target.pushes)
        if s.second_update and v.observed == s.expected:
            with self._step(v, "second update") as step:
                step.detail = self._second_update(v, s, floor, boots)
        if (s.cut is not None or s.cut_at_op is not None or s.revert_cut_at_op is not None) and not fired:
            v.reasons.append("the planned power cut never fired")
        # (A cut that fired landed in the board's own writes of the update: it had the bytes.)
        if v.wire_bytes == 0 and not fired and v.handover_refused:
            v.reasons.append("the update never reached the board: the host refused to send it")
        for kind in {f.kind for f in s.link_faults}:
            planned = sum(f.kind == kind for f in s.link_faults)
            if sum(f.startswith(kind) for f in v.faults_fired) < planned:
                v.reasons.append(f"a planned {kind} fault never fired")
        return v

    def _second_update(self, v: Verdict, s: Scenario, floor: int, boots: list["_Boot"]) -> str:
        """A clean update to the next version after the scenario's outcome: it must end running it."""
        s2 = Scenario(f"{s.name} (second update)", "updated", version=_bump(s.version, minor=1))
        image = releases.image(self.d.board.variant, s2.version, self.signer, "none", floor + s.floor_step,
                               ca=self.firmware_ca, defect=self.target.defect)
        version = str(Version.parse(s2.version))
        self._deliver(v, s2, image, boots)
        try:
            rb = self.target.read_back({"second": image})
        except RigError as exc:
            rb = ReadBack(None, False, f"read-back failed: {exc}")
        last = boots[-1] if boots else None
        if not (rb.holds == "second" and rb.stable and last and last.version == version and last.confirmed):
            v.reasons.append(f"the update to {version} after it did not end running it ({rb.detail})")
        return f"{version}: slot holds {rb.holds or 'neither image'}; {rb.detail}"

    def _watch(self, v: Verdict, boots: list["_Boot"], seconds: float) -> list[str]:
        """Power-cycle and keep every console line for `seconds` (bootloader lines included)."""
        self._power_cycle()
        lines: list[str] = []
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                line = self.d.console.expect_line(ANY_LINE, timeout=LINE_POLL_S).group(0).strip()
            except ConsoleTimeout:
                continue
            lines.append(line)
            self._note(v, boots, line)
        return lines

    # -- a board as a fleet device (rig.fleet.agent): a baseline once, then the updates jobs bring
    def enrol(self) -> tuple[bytes, str]:
        """Install and boot the baseline release, confirmed; returns (image, version). The board
        then takes fleet updates with `update`, each from where the one before left it."""
        v = Verdict(self.d.board.id, self.d.board.variant, "enrol", "updated")
        self.d.target.activate(self.d.console)
        self.d.power_on()
        self._fleet_boots: list[_Boot] = []
        with self._step(v, "baseline") as step:
            installed = self.target.baseline(BASELINE_VERSION, self.signer)
            step.detail = f"{BASELINE_VERSION} floor={installed.floor} booted {self._boot_to_app(v, self._fleet_boots)}"
        self._running = (installed.image, str(Version.parse(BASELINE_VERSION)))
        return self._running

    def update(self, artefact: bytes, version: str) -> Verdict:
        """Deliver `artefact` - the image a fleet job names, byte for byte - settle, and judge from
        read-back as `run` does: `updated`, `rolled back`, `kept` or `inconsistent (...)`."""
        old, old_version = self._running
        new_version = str(Version.parse(version))
        s = Scenario(name=f"fleet update to {new_version}", expected="updated", version=version)
        v = Verdict(self.d.board.id, self.d.board.variant, s.name, s.expected, artefact_size=len(artefact))
        boots = self._fleet_boots
        with self._step(v, "deliver and settle") as step:
            mark = len(boots)
            self._deliver(v, s, artefact, boots)
            step.detail = f"{len(boots) - mark} boots: " + ", ".join(f"{b.version}({b.reset})" for b in boots[mark:])
        with self._step(v, "read back") as step:
            try:
                self.d.power_on()
                rb = self.target.read_back({"new": artefact, "old": old})
            except RigError as exc:
                rb = ReadBack(None, False, f"read-back failed: {exc}")
            v.read_back = step.detail = f"boot slot holds {rb.holds or 'neither image'}; {rb.detail}"
        v.observed = _outcome(rb, boots, new_version, old_version)
        v.rollbacks = _rollbacks(v.board, boots, new_version, old_version)
        if v.observed == "updated":
            self._running = (artefact, new_version)
        return v

    def _raise_floor(self, v: Verdict, s: Scenario, floor: int, boots: list["_Boot"]) -> tuple[bytes, int, str]:
        """A clean update to a release at floor+1, confirmed, then a power cycle (which is when
        MCUboot and the ESP-IDF bootloader store the new floor)."""
        pre = replace(s, name=f"{s.name} (raise floor)", version=_bump(BASELINE_VERSION, minor=5), artefact="full",
                      fault="none", floor_step=0, link_faults=(), cut=None, cut_at_op=None)
        image = releases.image(self.d.board.variant, pre.version, self.signer, "none", floor + 1, ca=self.firmware_ca,
                               defect=self.target.defect)
        plan = Plan(name="raise-floor.bin")
        self._handover(v, pre, image, boots, plan)
        self._settle(v, pre, image, boots, plan, None)
        self.target.finish(plan)
        self._boot_to_app(v, boots)
        return image, floor + 1, pre.version

    def _boot_to_app(self, v: Verdict, boots: list["_Boot"]) -> str:
        """Power-cycle with the console listening; wait for the app to boot and settle (a boot
        the board printed before the power went off is not it: _power_cycle)."""
        self._power_cycle()
        n = len(boots)
        self._follow(v, boots, until=lambda: len(boots) > n and (boots[-1].confirmed or boots[-1].health_fail),
                     timeout=SETTLE_S)
        return f"{boots[-1].version} ({boots[-1].reset})" if len(boots) > n else "no boot"

    def _cuts_receiving(self, s: Scenario) -> bool:
        """Whether s.cut_at_op lands while the board takes the update (not in the install at reset)."""
        return s.cut_at_op is not None and (s.cut_while_receiving or not self.target.installs_at_reset)

    def _handover(self, v: Verdict, s: Scenario, artefact: bytes, boots, plan: Plan, again: bool = False) -> None:
        """Hand the update over (`again`: after a power cut broke the first hand-over, whose cut
        is not armed a second time)."""
        self.d.console.drain()
        self._handed_at = len(boots)  # boots before this count belong to the image that ran before
        if s.cut_at_op is not None and self._cuts_receiving(s) and not again:
            self._arm_cut(s.cut_at_op, s)
        if s.flip_at_write is not None:
            self.instruments.arm_flip(self.d.board.id, s.flip_at_write, self._region("staging"))
        self.target.start(artefact, plan)
        if self.target.installs_at_reset:
            if s.cut_at_op is not None and not self._cuts_receiving(s):
                self._arm_cut(s.cut_at_op, s)
            # e.g. MCUboot swaps the tested image in at this boot; what the old image said after the
            # upload is noted before the cut, as the settle step would have read it
            self._power_cycle(self._taker(v, boots))
        # The silent-board gate counts from here, not from the upload's start: a two-sector image
        # takes longer than SILENT_WAIT_S to upload at load, and the gate then cut MCUboot's swap at once.
        self._handed_time = time.monotonic()

    def _deliver(self, v: Verdict, s: Scenario, artefact: bytes, boots: list[_Boot]) -> bool:
        """Hand over, with faults and cuts; returns whether a planned cut fired."""
        trigger = Trigger(s.cut, self._cut_requested.set) if s.cut else None
        self._cut_requested.clear()
        cut_made: list[int] = []

        def progress(done: int, total: int) -> None:
            # bytes (served over HTTP) and upload (acknowledged over SMP) both mean "this much of
            # the artefact has reached the board": a scenario's cut point works on either kind.
            assert trigger is not None  # progress is only followed with a trigger
            trigger.progress(trigger.spec.watch, done, total)
            if self.target.pushes and trigger.fired and not cut_made:
                # The host is the uploader here: the power goes before it sends another chunk, and
                # the upload dies with the board; the board is restarted and handed the image again.
                self._cut_requested.clear()
                cut_made.append(done)
                self._power_cut()
                raise PowerCutDuringUpload(done)

        # Only a trigger on delivered bytes follows the progress; a line trigger waits for its line.
        counts = trigger is not None and trigger.spec.watch in ("bytes", "upload")
        plan = Plan(list(s.link_faults), name=re.sub(r"[^a-z0-9]+", "-", s.name.lower()) + ".bin",
                    on_progress=progress if counts else None, link=s.link, tls=s.tls)
        plan.total = len(artefact)
        relay_cycles = self._relay_cycles()
        if trigger:
            trigger.start()
        try:
            if self._handover_with_retry(v, s, artefact, boots, plan, trigger):
                self._settle(v, s, artefact, boots, plan, trigger)
        finally:
            if trigger:
                trigger.cancel()
            self.target.finish(plan)
        v.wire_bytes = plan.wire_bytes
        # The link's own faults first; what the board refused on the way was noted already.
        v.faults_fired[:0] = plan.faults_fired
        if trigger and trigger.fired:
            v.faults_fired.append(f"{trigger.spec.describe()} fired at {trigger.fired_at}")
        if (s.cut_at_op is not None or s.revert_cut_at_op is not None) and self._relay_cycles() > relay_cycles:
            at = s.cut_at_op if s.cut_at_op is not None else f"{s.revert_cut_at_op} after the new image booted"
            v.faults_fired.append(f"{'torn ' if s.tear else ''}cut at flash operation {at}"
                                  + (f" of {s.cut_region}" if s.cut_region else ""))
            return True
        return bool(trigger and trigger.fired)

    def _relay_cycles(self) -> int:
        """Power cycles of the board that the campaign did not make itself (the lab's cut relay)."""
        if self.instruments is None:
            return 0
        return self.instruments.power_cycles(self.d.board.id) - self.own_power_cycles

    def _handover_with_retry(self, v, s, artefact, boots, plan, trigger) -> bool:
        """Start the delivery; if a power cut broke it (SMP push), restart the board and hand over
        again. False when the board refused the update at the hand-over (nothing to settle)."""
        relay_cycles = self._relay_cycles()
        try:
            self._handover(v, s, artefact, boots, plan)
            return True
        except PowerCutDuringUpload:
            pass  # the upload died with the board
        except HandoverRefused as exc:
            # An SMP upload the lab's relay cut (at the app's Nth flash operation) dies as the board
            # does: no reply. Only a cut the scenario planned is taken for one; else the board refused.
            if not (self.target.pushes and self._cuts_receiving(s) and self._relay_cycles() > relay_cycles):
                return self._refused(v, exc)
        self._boot_to_app(v, boots)
        try:
            self._handover(v, s, artefact, boots, plan, again=True)
        except HandoverRefused as exc:
            return self._refused(v, exc)
        return True

    @staticmethod
    def _refused(v: Verdict, exc: HandoverRefused) -> bool:
        """A refused hand-over: the faults column says why, the log also which request it was."""
        v.handover_refused = True
        v.faults_fired.append(f"hand-over refused: {exc}")
        log.info("%s %s: hand-over refused: %s", v.board, v.scenario, exc.__cause__ or exc)
        return False

    def _settle(self, v: Verdict, s: Scenario, artefact: bytes, boots: list[_Boot], plan: Plan, trigger) -> None:
        """Follow the console until the board is settled; hand the update over again after a cut.

            waiting   --a confirmed boot, a refusal, or the gate gives up-->   settled
            waiting   --no image confirmed for CONFIRM_WAIT_S-->               waiting, after a gate power cycle
            waiting   --no app boot at all for SILENT_WAIT_S-->                waiting, after a gate power cycle
            waiting   --a pulling board came back from a power loss-->         resending
            resending --the old image confirmed: hand over again-->            waiting
        """
        st = _Settling()
        pulled = not self.target.pushes  # the board itself notices nothing of a lost download
        new_version = str(Version.parse(s.version))
        revert_cut = [s.revert_cut_at_op]

        def on_line(line: str) -> None:
            if trigger:
                trigger.line(line)
            new_booted = boots and boots[-1].version == new_version and line.startswith("rig: boot ")
            if revert_cut[0] is not None and new_booted:
                self._arm_cut(revert_cut[0])  # the bootloader's next flash work is the revert
                revert_cut[0] = None
            if st.phase is _Phase.SETTLED:
                return
            if line.startswith("rig: ota refused"):
                v.client_refused = True
                v.faults_fired.append(line.removeprefix("rig: "))
                st.phase = _Phase.SETTLED
            elif line.startswith("rig: boot ") and pulled and "reset=power-on" in line:
                if st.gate_cycle_pending:
                    st.gate_cycle_pending = False  # the health gate's own power cycle
                elif boots and boots[-1].version != new_version:
                    # Power went away before the new image confirmed (mid-download, or while on
                    # trial, which rolls it back): the board is handed the update again, as a
                    # fleet's backend would on its next check-in.
                    st.phase = _Phase.RESENDING

        def gate_power_cycle() -> bool:
            """The gate power-cycles the board; False once it has given up (the board is settled)."""
            if st.gate_cycles == GATE_CYCLES:
                v.reasons.append(f"no image confirmed itself through {GATE_CYCLES} power cycles")
                st.phase = _Phase.SETTLED
                return False
            st.gate_cycles += 1
            st.gate_since = time.monotonic()
            st.gate_cycle_pending = True
            self._power_cycle(self._taker(v, boots, on_line))
            return True

        def settled() -> bool:
            if st.phase is _Phase.SETTLED:
                return True
            if len(boots) <= self._handed_at:
                silent_since = st.gate_since or self._handed_time
                if (s.health_gate and self.target.installs_at_reset and st.phase is _Phase.WAITING
                        and time.monotonic() - silent_since > SILENT_WAIT_S):
                    return not gate_power_cycle()
                return False
            last = boots[-1]
            if st.phase is _Phase.RESENDING:
                if last.confirmed:
                    st.phase, st.gate_since = _Phase.WAITING, None
                    self._handed_at = len(boots)
                    self.target.resume(artefact, plan)
                return False
            if last.confirmed:
                st.phase = _Phase.SETTLED
                return True
            now = time.monotonic()
            if not s.health_gate:
                if now - last.at > HANG_WAIT_S:
                    v.reasons.append(f"{last.version} neither confirmed nor reset itself within {HANG_WAIT_S:g} s")
                    st.phase = _Phase.SETTLED
                    return True
                return False
            # The health gate: from the first boot after the hand-over (or the last gate), an image
            # has CONFIRM_WAIT_S to confirm - a boot loop keeps booting but never gets there.
            st.gate_since = st.gate_since or boots[self._handed_at].at
            if now - st.gate_since > CONFIRM_WAIT_S:
                return not gate_power_cycle()
            return False

        self._follow(v, boots, until=settled, timeout=SETTLE_S, on_line=on_line)

    def _follow(self, v: Verdict, boots: list[_Boot], until: Callable[[], bool], timeout: float,
                on_line: Callable[[str], None] | None = None) -> None:
        deadline = time.monotonic() + timeout
        take = self._taker(v, boots, on_line)
        while not until():
            self._cut_if_requested(take)
            if time.monotonic() > deadline:
                v.reasons.append(f"the board did not settle within {timeout:g} s")
                return
            try:
                line = self.d.console.expect_line(APP_LINE, timeout=LINE_POLL_S).group(0).strip()
            except ConsoleTimeout:
                continue
            take(line)

    def _note(self, v: Verdict, boots: list[_Boot], line: str) -> None:
        """What a console line says about the board's boots."""
        v.console.append(line)
        if (m := re.match(r"rst:0x[0-9a-f]+ \((?P<name>[A-Z0-9_]+)\)", line)) is not None:
            self._rom_reset = m.group("name")
        elif (m := re.match(BOOT_LINE, line)) is not None:
            fields = parse_boot_fields(m.group("fields"))
            try:
                version = Version.parse(fields.get("version", "0.0.0"))
            except RigError:
                # Cut off by a reset mid-print, the bootloader's first line on the same line
                # ('rig: boot variant=stm32l0 version=I: Starting bootloader'): no boot to count.
                return
            boots.append(_Boot(str(version), fields.get("reset", "?"), rom_reset=self._rom_reset))
            self._rom_reset = ""
        elif boots and line == "rig: confirmed":
            boots[-1].confirmed = True
        elif boots and line == "rig: health fail":
            boots[-1].health_fail = True
        elif boots and line == "rig: hardfault":
            boots[-1].hardfault = True


def _bump(version: str, minor: int) -> str:
    v = Version.parse(version)
    return f"{v.major}.{v.minor + minor}.{v.revision}"


def _spoil_signature(image: bytes) -> bytes:
    """The image with one bit of its signature flipped: hash intact, signature wrong."""
    img = mcuboot.parse(image)
    sig = next(t for t in img.tlvs if t.type in (mcuboot.TLV_ECDSA, mcuboot.TLV_RSA2048))
    at = image.index(sig.value) + len(sig.value) // 2
    return image[:at] + bytes([image[at] ^ 0x01]) + image[at + 1 :]


def _outcome(rb, boots: list[_Boot], new: str, old: str) -> str:
    last = boots[-1] if boots else None
    new_booted = any(b.version == new for b in boots)
    if rb.holds == "new" and rb.stable and last and last.version == new and last.confirmed:
        return "updated"
    if rb.holds == "old" and rb.stable and last and last.version == old:
        return "rolled back" if new_booted else "kept"
    running = f"{last.version}{'' if last and last.confirmed else ' unconfirmed'}" if last else "nothing"
    return f"inconsistent (slot holds {rb.holds or 'neither image'}, console shows {running})"


def _rollbacks(board: str, boots: list[_Boot], new: str, old: str) -> list[str]:
    seen = []
    for i, b in enumerate(boots):
        if b.version != new or b.confirmed:
            continue
        later = next((x for x in boots[i + 1 :] if x.version == old), None)
        if later is None:
            continue
        nxt = boots[i + 1]
        cause = ("hardfault on boot" if b.hardfault else "watchdog reset" if nxt.reset == "watchdog"
                 else "health check failed" if b.health_fail else "never confirmed")
        seen.append(f"{board}: {new} rolled back to {old} ({cause})")
        break
    return seen


def _watchdog_rom_reason(name: str) -> bool:
    """An ESP32 ROM reset reason a watchdog causes (ESP32 TRM, Reset and Clock: the reset sources
    table - TG0WDT_SYS_RESET, TG1WDT_SYS_RESET, RTCWDT_SYS_RESET, TGWDT_CPU_RESET, RTCWDT_CPU_RESET,
    RTCWDT_RTC_RESET); RTCWDT_BROWN_OUT_RESET is the brown-out detector's, despite its name."""
    return "WDT" in name and "BROWN_OUT" not in name


def _proofs(s: Scenario, v: Verdict, boots: list[_Boot], new: str, old: str, pushes: bool) -> list[str]:
    """What a scenario must also see besides its outcome: the reset cause after a failed image, a
    refusal at the hand-over, a rollback that stays rolled back."""
    reasons = []
    failed = [i for i, b in enumerate(boots) if b.version == new and not b.confirmed]
    if s.reset_cause is not None and failed:
        i = failed[0]
        nxt = boots[i + 1] if i + 1 < len(boots) else None
        if nxt is None:
            reasons.append(f"{new} failed and no boot followed: nothing reset the board")
        elif nxt.reset != s.reset_cause:
            reasons.append(f"the boot after {new} failed reports reset={nxt.reset}, not {s.reset_cause}")
        elif nxt.rom_reset and s.reset_cause == "watchdog" and not _watchdog_rom_reason(nxt.rom_reset):
            reasons.append(f"the ROM reports {nxt.rom_reset} for the boot after {new} failed, not a watchdog reset")
    if s.refused_at_handover and not (v.handover_refused or v.client_refused):
        reasons.append("the board did not refuse the update at the end of the upload")
    if s.expected == "rolled back" and pushes:
        # After a pushing board runs the old image again, nobody hands it the new one: a later boot
        # of the new image is the bootloader's doing (a revert that was undone).
        first_failure = failed[0] if failed else len(boots)
        back = next((i for i, b in enumerate(boots) if b.version == old and i > first_failure), None)
        if back is not None and any(b.version == new for b in boots[back:]):
            reasons.append(f"{new} booted again after the board had rolled back to {old}")
    return reasons


def _damage_outcome(rb, boots: list[_Boot], lines: list[str], new: str, old: str, damage: str) -> str:
    """After flash was damaged and the board powered up: did its bootloader refuse or fall back?"""
    # An otadata copy with a bad CRC is simply not valid: the bootloader follows the other one and
    # need not say anything. A damaged image it leaves must be named in an error line.
    why = damage in damages.OTADATA or any(re.match(BOOTLOADER_ERROR, line) for line in lines)
    if not boots:
        return "refused" if why else "inconsistent (nothing booted and the bootloader said nothing)"
    versions = {b.version for b in boots}
    if versions == {old} and why and (rb.holds in ("damaged", "old") or damage in damages.OTADATA):
        return "fell back"
    return f"inconsistent (after the damage the board booted {', '.join(sorted(versions))})"
