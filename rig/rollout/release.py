"""Release and policy files, validated with one line per problem.

RELEASE.yaml - what to ship, one artefact per variant:

    version: 2.0.0
    artefacts:
      esp32:   {file: app-esp32-2.0.0.bin, floor: 0, features: [telemetry]}
      stm32h7: {file: app-stm32h7-2.0.0.signed}
      stm32l0: {file: app-stm32l0-2.0.0.signed, kind: delta, from: 1.0.0}
    rollback: release-1.0.0.yaml      # optional: what `rig rollout rollback` goes back to

Each artefact's variant is read from the image itself (rig's app descriptor) and must be the one
it is listed under: routing is a hard check, not a naming convention. Paths are relative to the file.

POLICY.yaml - how to ship it (every key optional; times in seconds, compressible for tests):

    seed: 1
    waves: [5, 25, 50, 100]          # cumulative percent of each variant track; the first is the canary
    gates:
      error_threshold: 0.10          # halt when failures / judged is strictly above
      success_threshold: 0.90        # advance when successes / judged is at or above
      min_judged: 15                 # no decision before this many devices are judged (capped at the wave's size)
      soak_s: 60                     # a confirmed device counts as a success after this long without trouble
      progress_timeout_s: 300        # IN_PROGRESS with no report for this long -> TIMED_OUT (a failure)
      pickup_deadline_s: 600         # QUEUED and not started: neither success nor failure until then
      wave_deadline_s: 3600          # every wave is decided by then
      max_crashes: 2                 # crashes reported after the update beyond this make it a failure
      stm32l0: {error_threshold: 0.05}   # per-variant overrides
    rate: {per_minute: 600, minute_s: 60, factor: 2, every: 100, max: 6000}
    poll_s: 1.0
"""

import hashlib
from dataclasses import dataclass, field, replace
from pathlib import Path

import yaml

from rig.errors import RigError, RigErrors
from rig.image import appdesc, mcuboot
from rig.image.mcuboot import Version
from rig.variants import NAMES, VARIANTS, Bootloader, with_bootloader


@dataclass(frozen=True)
class Artefact:
    variant: str
    path: str
    size: int
    sha256: str
    floor: int
    kind: str = "full"
    from_version: str | None = None
    features: tuple[str, ...] = ()
    layouts: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        """The name it is served under: content-addressed, so two releases never collide."""
        return f"{self.sha256[:16]}-{self.variant}.bin"


@dataclass(frozen=True)
class Release:
    version: str
    artefacts: dict[str, Artefact]
    rollback: str | None = None  # path of the release to go back to

    def to_dict(self) -> dict:
        return {"version": self.version, "rollback": self.rollback,
                "artefacts": {v: a.__dict__ | {"features": list(a.features), "layouts": list(a.layouts)}
                              for v, a in self.artefacts.items()}}

    @classmethod
    def from_dict(cls, d: dict) -> "Release":
        arts = {v: Artefact(**(a | {"features": tuple(a["features"]), "layouts": tuple(a["layouts"])}))
                for v, a in d["artefacts"].items()}
        return cls(d["version"], arts, d.get("rollback"))


def image_descriptor(data: bytes) -> appdesc.AppDescriptor | None:
    """What an image says about itself (rig's app descriptor: variant, version, firmware fault), or
    None if it says nothing."""
    try:
        body = mcuboot.parse(data).payload  # an MCUboot image: the descriptor is in the application binary
        kind = Bootloader.MCUBOOT
    except RigError:
        body, kind = data, Bootloader.ESP_IDF  # an ESP-IDF app image
    # where the descriptor sits follows from the image format (the same for every part of one)
    at = VARIANTS[with_bootloader(kind)[0]].appdesc_offset
    try:
        return appdesc.parse(body[at:at + appdesc.SIZE])
    except RigError:
        return None


def load_release(path: str | Path) -> Release:
    path = Path(path)
    try:
        doc = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise RigError(f"release {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise RigError(f"release {path}: not YAML ({str(exc).splitlines()[0]})") from None
    if not isinstance(doc, dict):
        raise RigError(f"release {path}: expected a mapping with version: and artefacts:")
    problems = []
    try:
        v = Version.parse(str(doc.get("version", "")))
        version = f"{v.major}.{v.minor}.{v.revision}" + (f"+{v.build}" if v.build else "")
    except (RigError, ValueError):
        problems.append(f"release {path}: version: {doc.get('version')!r} is not MAJOR.MINOR.REVISION")
        version = "0.0.0"
    arts = doc.get("artefacts")
    if not isinstance(arts, dict) or not arts:
        problems.append(f"release {path}: artefacts: give one per variant, e.g. esp32: {{file: app.bin}}")
        arts = {}
    out = {}
    for variant, spec in arts.items():
        where = f"release {path}: artefacts.{variant}"
        if variant not in VARIANTS:
            problems.append(f"{where}: not a variant; one of {', '.join(NAMES)}")
            continue
        if not isinstance(spec, dict) or "file" not in spec:
            problems.append(f"{where}: give file: PATH")
            continue
        file = (path.parent / spec["file"]).resolve()
        try:
            data = file.read_bytes()
        except OSError as exc:
            problems.append(f"{where}: {file}: {exc.strerror}")
            continue
        desc = image_descriptor(data)
        says = desc.variant if desc else None
        if says != variant:
            problems.append(f"{where}: {file.name} is an image for {says or 'no known variant'}, not {variant}")
            continue
        kind = spec.get("kind", "full")
        if kind not in ("full", "delta"):
            problems.append(f"{where}: kind: full or delta")
            continue
        if kind == "delta" and not spec.get("from"):
            problems.append(f"{where}: a delta names the version it applies to (from: 1.0.0)")
            continue
        layouts = spec.get("layouts") or [VARIANTS[variant].default_layout]
        bad = [x for x in layouts if x not in VARIANTS[variant].layouts()]
        if bad:
            known = ", ".join(VARIANTS[variant].layouts())
            problems.append(f"{where}: layouts {bad} are not {variant} layouts ({known})")
            continue
        out[variant] = Artefact(variant, str(file), len(data), hashlib.sha256(data).hexdigest(),
                                int(spec.get("floor", 0)), kind, spec.get("from"),
                                tuple(spec.get("features", [])), tuple(layouts))
    rollback = doc.get("rollback")
    if rollback is not None:
        rollback = str((path.parent / rollback).resolve())
        if not Path(rollback).is_file():
            problems.append(f"release {path}: rollback: {rollback} does not exist")
    if problems:
        raise RigErrors(problems)
    return Release(version, out, rollback)


@dataclass(frozen=True)
class Gates:
    error_threshold: float = 0.10
    success_threshold: float = 0.90
    min_judged: int = 15
    soak_s: float = 60.0
    progress_timeout_s: float = 300.0
    pickup_deadline_s: float = 600.0
    wave_deadline_s: float = 3600.0
    max_crashes: int = 2


@dataclass(frozen=True)
class Rate:
    per_minute: int = 600  # devices notified per minute (0: no limit)
    minute_s: float = 60.0  # how long a "minute" is (tests compress it)
    factor: float = 2.0  # the rate is multiplied by this ...
    every: int = 100  # ... after each this many successes
    max: int = 6000

    def now(self, successes: int) -> int:
        if self.per_minute <= 0:
            return 0
        steps = successes // self.every if self.every > 0 else 0
        return int(min(self.max, self.per_minute * self.factor ** steps))


@dataclass(frozen=True)
class Policy:
    seed: int = 1
    waves: tuple[float, ...] = (5, 25, 50, 100)
    gates: Gates = field(default_factory=Gates)
    per_variant: dict = field(default_factory=dict)  # variant -> Gates
    rate: Rate = field(default_factory=Rate)
    poll_s: float = 1.0
    halts: bool = True  # a rollback job reports its gates but never halts

    def gates_for(self, variant: str) -> Gates:
        return self.per_variant.get(variant, self.gates)

    def to_dict(self) -> dict:
        return {"seed": self.seed, "waves": list(self.waves), "gates": self.gates.__dict__,
                "per_variant": {v: g.__dict__ for v, g in self.per_variant.items()}, "rate": self.rate.__dict__,
                "poll_s": self.poll_s, "halts": self.halts}

    @classmethod
    def from_dict(cls, d: dict) -> "Policy":
        return cls(d["seed"], tuple(d["waves"]), Gates(**d["gates"]),
                   {v: Gates(**g) for v, g in d["per_variant"].items()}, Rate(**d["rate"]), d["poll_s"], d["halts"])


def policy_from(doc: dict, where: str = "policy") -> Policy:
    problems = []
    doc = doc or {}
    unknown = set(doc) - {"seed", "waves", "gates", "rate", "poll_s"}
    if unknown:
        problems.append(f"{where}: unknown keys {sorted(unknown)}; known: seed, waves, gates, rate, poll_s")
    waves = tuple(float(w) for w in doc.get("waves", Policy.waves))
    if not waves or any(not 0 < w <= 100 for w in waves) or list(waves) != sorted(waves) or waves[-1] != 100:
        problems.append(f"{where}: waves: rising percentages in (0, 100] ending at 100, e.g. [5, 25, 50, 100]")
    gates_doc = dict(doc.get("gates") or {})
    per_variant_docs = {v: gates_doc.pop(v) for v in list(gates_doc) if v in VARIANTS}
    gates = _dc(Gates, gates_doc, f"{where}: gates", problems)
    per_variant = {v: replace(gates, **_known(Gates, d, f"{where}: gates.{v}", problems))
                   for v, d in per_variant_docs.items()}
    rate = _dc(Rate, doc.get("rate") or {}, f"{where}: rate", problems)
    if problems:
        raise RigErrors(problems)
    return Policy(int(doc.get("seed", 1)), waves, gates, per_variant, rate, float(doc.get("poll_s", 1.0)))


def _known(cls, d: dict, where: str, problems: list) -> dict:
    names = cls.__dataclass_fields__
    bad = set(d) - set(names)
    if bad:
        problems.append(f"{where}: unknown keys {sorted(bad)}; known: {', '.join(names)}")
    out = {}
    for k, v in d.items():
        if k in names:
            try:
                out[k] = type(getattr(cls(), k))(v)
            except (TypeError, ValueError):
                problems.append(f"{where}.{k}: {v!r} is not a number")
    return out


def _dc(cls, d: dict, where: str, problems: list):
    return cls(**_known(cls, d, where, problems))


def load_policy(path: str | Path | None) -> Policy:
    if path is None:
        return Policy()
    try:
        doc = yaml.safe_load(Path(path).read_text())
    except OSError as exc:
        raise RigError(f"policy {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise RigError(f"policy {path}: not YAML ({str(exc).splitlines()[0]})") from None
    return policy_from(doc, f"policy {path}")
