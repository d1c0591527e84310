"""Load a rack - one labgrid environment file, or a folder of them - and validate every board.

Validation collects every problem in one pass and reports each as one line:
`FILE[:LINE]: board ID: FIELD: what is wrong; what to do`.
"""

import difflib
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import attr
import yaml
from labgrid.factory import target_factory
from labgrid.resource.common import ManagedResource

from rig.errors import RigErrors
from rig.lab.resources import OTHER_OUTLETS, POWER_PORTS, SERIAL_PORTS  # also registers RigBoard, RigDebugProbe
from rig.variants import NAMES, VARIANTS, Variant

IMPORT = "rig.lab.resources"
TOP_LEVEL_KEYS = ("targets", "imports", "paths", "images", "tools", "options", "features")
SERIAL = SERIAL_PORTS
POWER = tuple(POWER_PORTS)
# The board's console and power come from an exporter through the coordinator.
REMOTE = "RemotePlace"


@dataclass(frozen=True)
class Board:
    id: str
    variant: str
    virtual: bool
    flash_layout: str
    tags: tuple[str, ...]
    console: str  # human description: an rfc2217:// URL, a device path or a udev match
    power: str | None
    probe: str | None  # pyocd probe unique id
    probe_target: str | None  # pyocd target type
    resources: dict  # resource class name -> its arguments, as written
    source: Path
    host: str | None = None  # the exporter a remote board hangs on (None: a board of this host's rack)

    @property
    def facts(self) -> Variant:
        """What every board of this variant shares (rig.variants): flasher, delivery, layout, ..."""
        return VARIANTS[self.variant]


@dataclass(frozen=True)
class Rack:
    files: tuple[Path, ...]
    boards: tuple[Board, ...]

    def board(self, board_id: str) -> Board:
        for b in self.boards:
            if b.id == board_id:
                return b
        known = ", ".join(b.id for b in self.boards)
        raise RigErrors([f"no board {board_id!r} in {self._where()} (boards: {known})"])

    def select(self, variant=None, tags=()) -> list[Board]:
        return [
            b
            for b in self.boards
            if variant in (None, b.variant) and set(tags) <= set(b.tags)
        ]

    def _where(self) -> str:
        return ", ".join(str(f) for f in self.files)


def load_rack(path) -> Rack:
    """Read and validate a rack file or a folder of them; raise RigErrors listing every problem."""
    path = Path(path)
    if path.is_dir():
        files = sorted(path.glob("*.yaml"))
        if not files:
            raise RigErrors([f"{path}: no *.yaml targets files in this folder"])
    elif path.is_file():
        files = [path]
    else:
        raise RigErrors([f"{path}: no such targets file; pass --rack FILE (see targets/ for examples)"])

    problems: list[str] = []
    boards: list[Board] = []
    first_seen: dict[str, Path] = {}
    outlets: dict[tuple, str] = {}
    consoles: dict[str, str] = {}
    for f in files:
        for board in _load_file(f, problems):
            if board.id in first_seen:
                problems.append(f"{f}: board {board.id}: duplicate board id (also in {first_seen[board.id]})")
                continue
            first_seen[board.id] = f
            _check_shared(board, outlets, consoles, problems)
            boards.append(board)
    if problems:
        raise RigErrors(problems)
    return Rack(tuple(files), tuple(boards))


class _Loader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys; plain YAML silently keeps the last one."""


def _mapping(loader, node, deep=False):
    seen: dict = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        line = key_node.start_mark.line + 1
        if key in seen:
            raise _Duplicate(f"line {line}: duplicate key {key!r} (first on line {seen[key]})")
        seen[key] = line
    return loader.construct_mapping(node, deep)


class _Duplicate(Exception):
    pass


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)


def _read_yaml(f: Path, problems: list[str]):
    try:
        text = f.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        problems.append(f"{f}: cannot read: {exc}")
        return None
    try:
        return yaml.load(text, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{f}:{mark.line + 1}:{mark.column + 1}" if mark else str(f)
        problems.append(f"{where}: YAML syntax error: {exc.problem or exc.context}; fix the syntax there")
    except _Duplicate as exc:
        # Two targets with one name are two boards claiming one id; other keys are plain typos.
        problems.append(f"{f}: {exc}; every board id and field must be unique")
    except yaml.YAMLError as exc:
        problems.append(f"{f}: YAML error: {str(exc).splitlines()[0]}")
    return None


def _load_file(f: Path, problems: list[str]) -> list[Board]:
    data = _read_yaml(f, problems)
    if data is None:
        if not any(p.startswith(str(f)) for p in problems):
            problems.append(f"{f}: the file is empty; a targets file needs a `targets:` mapping")
        return []
    if not isinstance(data, dict):
        problems.append(f"{f}: top level must be a mapping with `targets:`, found {type(data).__name__}")
        return []
    for key in data:
        if key not in TOP_LEVEL_KEYS:
            problems.append(f"{f}: top-level key {key!r}: not a labgrid environment key{_hint(key, TOP_LEVEL_KEYS)}")
    imports = data.get("imports") or []
    if not isinstance(imports, list) or IMPORT not in imports:
        problems.append(f"{f}: imports: must list {IMPORT} so labgrid can read RigBoard; add `imports: [{IMPORT}]`")
    targets = data.get("targets")
    if not isinstance(targets, dict) or not targets:
        problems.append(f"{f}: targets: missing or empty; list the boards under `targets:`")
        return []
    boards = []
    for board_id, target in targets.items():
        board = _load_board(f, str(board_id), target, problems)
        if board is not None:
            boards.append(board)
    return boards


def _resources(f, board_id, target, problems) -> dict | None:
    where = f"{f}: board {board_id}"
    if not isinstance(target, dict) or "resources" not in target:
        problems.append(f"{where}: resources: missing; each board needs a `resources:` mapping")
        return None
    raw = target["resources"]
    # labgrid accepts a mapping, or a list of one-key mappings (to name several of one class).
    if isinstance(raw, dict):
        items = list(raw.items())
    elif isinstance(raw, list) and all(isinstance(r, dict) and len(r) == 1 for r in raw):
        items = [next(iter(r.items())) for r in raw]
    else:
        problems.append(f"{where}: resources: must be a mapping of resource class to arguments")
        return None
    resources = {}
    for cls_name, args in items:
        args = {} if args is None else args
        if cls_name not in target_factory.resources:
            problems.append(f"{where}: {cls_name}: unknown labgrid resource{_hint(cls_name, target_factory.resources)}")
            continue
        if not isinstance(args, dict):
            problems.append(f"{where}: {cls_name}: arguments must be a mapping, found {type(args).__name__}")
            continue
        problem = _construct(target_factory.resources[cls_name], args)
        if problem:
            problems.append(f"{where}: {cls_name}: {problem}")
            continue
        resources[cls_name] = args
    return resources


def _construct(cls, args) -> str | None:
    """Judge the arguments by the resource class's declared attrs fields (names, which have no
    default), then let labgrid's own attrs validators judge the values, without starting udev monitors."""
    args = {k: v for k, v in args.items() if k != "name"}
    # The keyword each field takes (`alias`: attrs strips a private field's underscore); labgrid fills
    # in target and name itself.
    fields = {a.alias: a for a in attr.fields(cls) if a.init and a.alias not in ("target", "name")}
    unknown = [k for k in args if k not in fields]
    if unknown:
        bad = str(unknown[0])
        return f"unknown field {bad!r}{_hint(bad, fields)} (fields: {', '.join(fields)})"
    missing = [k for k, a in fields.items() if a.default is attr.NOTHING and k not in args]
    if missing:
        return f"missing field {missing[0]!r}"
    if issubclass(cls, ManagedResource):
        return None
    try:
        cls(target=None, name=None, **args)
    except (TypeError, ValueError) as exc:  # a validator's verdict on a value
        # attrs' instance_of puts its sentence first and the Attribute's repr after it in args
        said = exc.args[0] if exc.args and isinstance(exc.args[0], str) else str(exc)
        return f"invalid value: {said.splitlines()[0]}"
    return None


def _load_board(f, board_id, target, problems) -> Board | None:
    where = f"{f}: board {board_id}"
    resources = _resources(f, board_id, target, problems)
    if resources is None:
        return None
    spec = resources.get("RigBoard")
    if spec is None:
        problems.append(f"{where}: RigBoard: missing; add `RigBoard: {{variant: {'|'.join(NAMES)}}}`")
        return None
    variant = spec["variant"]
    ok = True
    facts = VARIANTS.get(variant)
    if facts is None:
        problems.append(f"{where}: RigBoard.variant: unknown variant {variant!r}{_hint(variant, NAMES)} "
                        f"(one of {', '.join(NAMES)})")
        ok = False
    layout = spec.get("flash_layout") or (facts.default_layout if facts else None)
    if facts and layout not in facts.layouts():
        problems.append(f"{where}: RigBoard.flash_layout: {layout!r} is not a {variant} layout "
                        f"(one of {', '.join(facts.layouts())})")
        ok = False
    tags = spec.get("tags", [])
    if not all(isinstance(t, str) for t in tags):
        problems.append(f"{where}: RigBoard.tags: must be a list of strings")
        ok = False
    remote = REMOTE in resources
    serial = [name for name in SERIAL if name in resources]
    if not serial and not remote:
        problems.append(f"{where}: console: missing serial port; add one of {', '.join(SERIAL)}")
        ok = False
    for name in OTHER_OUTLETS:
        if name in resources:
            problems.append(f"{where}: {name}: rig has no power driver for it; switch the board with one of "
                            f"{', '.join(POWER)}")
            ok = False
    probe = resources.get("RigDebugProbe")
    if facts and facts.debug_probe and probe is None and not remote:
        problems.append(f"{where}: RigDebugProbe: missing; an {variant} board is flashed over SWD, "
                        "add `RigDebugProbe: {unique_id: ..., target_type: ...}`")
        ok = False
    if not ok or layout is None:
        return None
    power = next((name for name in POWER if name in resources), None)
    return Board(
        id=board_id,
        variant=variant,
        virtual=spec.get("virtual", False),
        flash_layout=layout,
        tags=tuple(tags),
        console=_describe_console(serial[0], resources[serial[0]]) if serial else "remote place",
        power=_describe_power(power, resources[power]) if power else None,
        probe=probe["unique_id"] if probe else None,
        probe_target=probe["target_type"] if probe else None,
        resources=resources,
        source=f,
    )


def _describe_console(cls_name, args) -> str:
    if cls_name == "NetworkSerialPort":
        scheme = "rfc2217" if args.get("protocol", "rfc2217") == "rfc2217" else "socket"
        return f"{scheme}://{args.get('host')}:{args.get('port')}"
    if cls_name == "USBSerialPort":
        return "udev " + " ".join(f"{k}={v}" for k, v in args.get("match", {}).items())
    return str(args.get("port"))


def _describe_power(cls_name, args) -> str:
    if cls_name == "NetworkPowerPort":
        host = str(args.get("host"))
        # A URL template (simplerest, rest) says more in its host:port than in full.
        host = urlsplit(host).netloc or host
        return f"{args.get('model')} {host} #{args.get('index')}"
    return f"{cls_name} " + " ".join(f"{k}={v}" for k, v in args.items())


def _check_shared(board: Board, outlets: dict, consoles: dict, problems: list[str]) -> None:
    """Two boards on one outlet or one console would cut or read each other."""
    where = f"{board.source}: board {board.id}"
    for name in POWER:
        if name in board.resources:
            key = (name, tuple(sorted((k, str(v)) for k, v in board.resources[name].items())))
            if key in outlets:
                problems.append(f"{where}: {name}: outlet already used by board {outlets[key]}; "
                                "each board needs its own outlet")
            else:
                outlets[key] = board.id
    # Port 0 is the lab's to choose (rig.sim.daemon): every such console gets a port of its own.
    if board.console != "remote place" and not board.console.startswith("udev") and not board.console.endswith(":0"):
        if board.console in consoles:
            problems.append(f"{where}: console: {board.console} already used by board {consoles[board.console]}")
        else:
            consoles[board.console] = board.id


def _hint(word, choices) -> str:
    close = difflib.get_close_matches(str(word), [str(c) for c in choices], n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""
