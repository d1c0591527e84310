"""rig's pytest plugin: one HIL suite, any rack, many boards, many workers.

    pytest tests/hil --rig-rack targets/virtual-rack.yaml [-n 3] [--junitxml report.xml]

- A test that takes the `board` fixture runs once per matching board of the rack; pick boards with
  `@pytest.mark.rig_board(variant="stm32h7", tags=["smp"])` and on the command line with
  `--rig-board ID` (repeatable).
- Each process holds a board exclusively through a kernel lock (rig.lab.leases): pytest-xdist
  workers queue for a board instead of colliding on it, and a killed worker's boards are free at
  once - no stale locks.
- Per test, the console lines the host received while the test ran go into the JUnit testcase's
  system-out, and properties `board` (its id), `board_variant`, `board_virtual`, `board_firmware_sha256`,
  `board_firmware_version` (and `board_retries` when `board_retry` was used) into its properties.
- If the rack's boards are virtual and their lab is not running, the plugin starts it with
  `rig lab up` and stops it at the end of the run.
- `--rig-coordinator HOST:PORT` takes the boards from a labgrid coordinator instead of a rack file:
  the places `rig lab export` made (pick them with `--rig-select variant=esp32,tag=wifi,...`). Each
  process reserves and acquires a board's place there while it uses it (rig.lab.coordinator); a
  killed session's places come free when their lease expires (`--rig-reservation-expiry`).
  JUnit gets `board_host`: the exporter the board hangs on.
- Before the first test, every board of the rack (or of --rig-board) is checked for a lock as the
  board shows it (rig.drivers.preflight: readout protection through the probe, Secure Boot and
  flash encryption in eFuse through the ROM loader): locked boards stop the run with one line
  each, naming the state and the way out. The controller checks when a rack file is named
  (--rig-rack, --lg-env, $RIG_RACK); otherwise a run without xdist checks at its first board.
  Boards taken from a coordinator are not checked (yet).
- The session and its results go into rig's results store, quarantined boards are skipped, and
  `--rig-health-check` checks the boards first: rig.results.pytest_hooks.
"""

import json
import os
import re
import socket
import subprocess
import sys
import uuid
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

pytest_plugins = ["rig.results.pytest_hooks"]

if TYPE_CHECKING:
    from rig.lab import Rack
    from rig.lab.coordinator import Coordinator

RACK_KEY: "pytest.StashKey[Rack]" = pytest.StashKey()
COORDINATOR_KEY: "pytest.StashKey[Coordinator]" = pytest.StashKey()
RUN_ENV = "RIG_PYTEST_RUN"  # names this pytest run; xdist workers inherit it from the controller
PREFLIGHT_ENV = "RIG_PYTEST_PREFLIGHT"  # the run's boards were checked (xdist workers inherit it)


def pytest_addoption(parser):
    group = parser.getgroup("rig", "rig hardware-in-the-loop lab")
    group.addoption(
        "--rig-rack",
        metavar="FILE",
        default=None,
        help="labgrid environment file of the rack to test on (default: --lg-env, $RIG_RACK or "
        "targets/virtual-rack.yaml)",
    )
    group.addoption("--rig-board", action="append", default=[], metavar="ID",
                    help="only run on this board (repeat for several); default: every matching board")
    group.addoption("--rig-lease-timeout", type=float, default=600.0, metavar="SECONDS",
                    help="how long a test waits for a board another process holds (default 600)")
    group.addoption("--rig-coordinator", metavar="HOST:PORT", default=os.environ.get("RIG_COORDINATOR"),
                    help="take the boards from the places of this labgrid coordinator instead of a rack file "
                    "(default: $RIG_COORDINATOR)")
    group.addoption("--rig-select", action="append", default=[], metavar="KEY=VALUE[,...]",
                    help="with --rig-coordinator: only places whose tags match (variant=, layout=, rack=, tag=)")
    group.addoption("--rig-reservation-expiry", type=float, default=60.0, metavar="SECONDS",
                    help="with --rig-coordinator: a killed session's places come free this long after its "
                    "last renewal (default 60)")
    group.addoption("--rig-attempts", type=int, default=2, metavar="N",
                    help="attempts of a hardware step wrapped in board_retry, power-cycling between (default 2)")


@pytest.hookimpl(trylast=True)  # after junitxml made its LogXML, which _console_into_junit adjusts
def pytest_configure(config):
    from rig.errors import RigError
    from rig.serialcheck import check_rfc2217

    try:
        check_rfc2217()
    except RigError as exc:
        raise pytest.UsageError(str(exc)) from None
    config.addinivalue_line(
        "markers", "rig_board(variant=None, tags=()): run the test on every rack board of this variant "
        "carrying all these tags")
    # pyserial's rfc2217 client (every console connection) still calls Thread.setDaemon/setName.
    for api in ("setDaemon", "setName"):
        config.addinivalue_line("filterwarnings", rf"ignore:{api}\(\) is deprecated:DeprecationWarning")
    # A rack the user named is checked before collection, where a usage error prints cleanly; the
    # default rack only when a test asks for a board (and the file may not exist in other projects).
    explicit = (config.getoption("--rig-rack") or getattr(config.option, "lg_env", None) or "RIG_RACK" in os.environ
                or config.getoption("--rig-coordinator"))
    if explicit:
        _load_rack(config)
    if not hasattr(config, "workerinput"):  # the controller (or a run without xdist)
        _check_selection(config)
        os.environ[RUN_ENV] = uuid.uuid4().hex
        _console_into_junit(config)


def _check_selection(config) -> None:
    """A -k or -m expression pytest cannot parse: pytest's own usage error ("Wrong expression passed
    to '-k': ..."), now. pytest finds it only after collection; under xdist that is in each worker,
    whose error the controller reports as an INTERNALERROR blaming a test (pytest-xdist #539), and
    before it this plugin's pre-flight would bring the lab up and check every board for nothing.
    Its mark plugin parses both options first thing; with no items it deselects nothing."""
    config.pluginmanager.get_plugin("mark").pytest_collection_modifyitems(items=[], config=config)


@pytest.hookimpl(wrapper=True)
def pytest_sessionstart(session):
    # before the other hooks: a locked rack stops the run before the results store records one
    config = session.config
    if not hasattr(config, "workerinput") and _rack_named(config) and not config.getoption("--rig-coordinator"):
        _preflight(config)
    return (yield)


def _preflight(config) -> None:
    """Stop the run with one line per locked board (rig.drivers.preflight)."""
    from rig.drivers.pool import BoardPool
    from rig.drivers.preflight import locked
    from rig.errors import RigError

    rack = _load_rack(config)
    wanted = config.getoption("--rig-board")
    # boards on other hosts' exporters are reached through a coordinator, which this check does not use
    boards = [b for b in rack.boards if (not wanted or b.id in wanted) and b.host is None]
    if any(b.virtual for b in boards):
        _ensure_lab(rack_path(config))
    pool = BoardPool(holder="pytest pre-flight", lease_timeout=config.getoption("--rig-lease-timeout"))
    try:
        with warnings.catch_warnings():  # the tests' filterwarnings (pytest_configure) are not in force yet
            for api in ("setDaemon", "setName"):
                warnings.filterwarnings("ignore", rf"{api}\(\) is deprecated", DeprecationWarning)
            lines = locked(pool, boards, rack_path(config))
    except RigError as exc:  # a board's lease not granted in time
        raise pytest.UsageError(f"rig pre-flight: {exc}") from None
    finally:
        pool.release()
    os.environ[PREFLIGHT_ENV] = "done"
    if lines:
        raise pytest.UsageError("\n".join(
            [f"rig: {len(lines)} of {len(boards)} boards of {rack_path(config)} are locked; no test ran:"] + lines))


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config):
    coordinator = config.stash.get(COORDINATOR_KEY, None)
    if coordinator is not None:
        coordinator.close()
    if not hasattr(config, "workerinput"):
        _stop_labs_started_by_this_run()


def rack_path(config) -> str:
    if _from_coordinator(config):
        return f"coordinator {config.getoption('--rig-coordinator')}"
    # Imported here: rig.cli pulls in every verb, and this plugin loads in every pytest run.
    from rig.cli.options import DEFAULT_RACK

    return (config.getoption("--rig-rack") or getattr(config.option, "lg_env", None)
            or os.environ.get("RIG_RACK") or DEFAULT_RACK)


@pytest.fixture(scope="session")
def rig_rack(request):
    """The validated rack (rig.lab.Rack) named by --rig-rack."""
    return _load_rack(request.config)


def _load_rack(config):
    """The rack, validated once per process; every problem of the file as a usage error."""
    from rig.errors import RigError
    from rig.lab import load_rack

    if RACK_KEY not in config.stash:
        try:
            if _from_coordinator(config):
                config.stash[RACK_KEY] = _coordinator_rack(config)
            else:
                config.stash[RACK_KEY] = _remote_places_of(config, load_rack(rack_path(config)))
        except RigError as exc:
            option = "--rig-coordinator" if _from_coordinator(config) else "--rig-rack"
            raise pytest.UsageError(f"{option}: {exc}") from None
    return config.stash[RACK_KEY]


def _rack_named(config) -> bool:
    return bool(config.getoption("--rig-rack") or getattr(config.option, "lg_env", None) or "RIG_RACK" in os.environ)


def _from_coordinator(config) -> bool:
    """The boards are the coordinator's places: --rig-coordinator without a rack file named."""
    return bool(config.getoption("--rig-coordinator")) and not _rack_named(config)


def _client(config, address: str):
    """This process's coordinator client (each xdist worker is a holder of its own)."""
    from rig.lab.coordinator import Coordinator

    if COORDINATOR_KEY not in config.stash:
        worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
        config.stash[COORDINATOR_KEY] = Coordinator(address, holder=f"pytest-{worker}-{os.getpid()}")
    return config.stash[COORDINATOR_KEY]


def _coordinator_rack(config):
    """The boards of the coordinator's places (as a Rack)."""
    from rig.lab import Rack
    from rig.lab.coordinator import parse_select

    wanted = parse_select(config.getoption("--rig-select"))
    client = _client(config, config.getoption("--rig-coordinator"))
    return Rack((Path(rack_path(config)),), tuple(client.boards(wanted)))


def _remote_places_of(config, rack):
    """A rack file whose boards include RemotePlaces: those reached through the coordinator
    (--rig-coordinator, else $LG_COORDINATOR), each knowing the exporter it hangs on."""
    from dataclasses import replace

    from rig.errors import RigError

    if not any("RemotePlace" in b.resources for b in rack.boards):
        return rack
    address = config.getoption("--rig-coordinator") or os.environ.get("LG_COORDINATOR")
    if not address:
        raise RigError(f"{rack_path(config)} names RemotePlaces; pass --rig-coordinator HOST:PORT")
    client = _client(config, address)
    boards = tuple(client.remote_board(b) if "RemotePlace" in b.resources else b for b in rack.boards)
    return replace(rack, boards=boards)


def pytest_generate_tests(metafunc):
    if "board" not in metafunc.fixturenames:
        return
    rack = _load_rack(metafunc.config)
    mark = metafunc.definition.get_closest_marker("rig_board")
    variant = mark.kwargs.get("variant") if mark else None
    tags = tuple(mark.kwargs.get("tags", ())) if mark else ()
    wanted = metafunc.config.getoption("--rig-board")
    boards = [b for b in rack.select(variant=variant, tags=tags) if not wanted or b.id in wanted]
    if boards:
        metafunc.parametrize("board", boards, ids=[b.id for b in boards], indirect=True)
    else:
        reason = (f"no board of {rack_path(metafunc.config)} matches variant={variant} tags={list(tags)}"
                  + (f" among --rig-board {wanted}" if wanted else ""))
        metafunc.parametrize("board", [pytest.param(None, marks=pytest.mark.skip(reason=reason))],
                             ids=["no-board"], indirect=True)


@pytest.fixture(scope="session")
def rig_pool(request):
    """This process's boards (rig.drivers.pool.BoardPool); released at the end of the session."""
    from rig.drivers.pool import BoardPool

    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    pool = BoardPool(holder=f"pytest {worker}", lease_timeout=request.config.getoption("--rig-lease-timeout"),
                     coordinator=request.config.stash.get(COORDINATOR_KEY, None),
                     expiry_s=request.config.getoption("--rig-reservation-expiry"))
    yield pool
    pool.release()


@pytest.fixture(scope="session")
def rig_lab(request, rig_rack):
    """Make sure the rack's virtual boards are served: start `rig lab up` once if needed; check
    the boards for locks if the controller did not (a run without xdist on the default rack)."""
    # Remote boards are served on their exporters' hosts, never started from here.
    coordinator = request.config.getoption("--rig-coordinator")
    if any(b.virtual and b.host is None for b in rig_rack.boards):
        _ensure_lab(rack_path(request.config))
    if not coordinator and PREFLIGHT_ENV not in os.environ and not hasattr(request.config, "workerinput"):
        try:
            _preflight(request.config)
        except pytest.UsageError as exc:
            pytest.exit(str(exc), returncode=pytest.ExitCode.USAGE_ERROR)
    return rig_rack


@pytest.fixture
def board(request, rig_pool, rig_lab):
    """The board under test (rig.drivers.BoardDrivers), held exclusively by this process.

    Its console is open for the whole test (flashers borrow it), so every line the board prints
    meanwhile lands in the test's report.
    """
    from rig.drivers.strategy import parse_boot_fields

    spec = request.param
    drivers = rig_pool.take(spec)
    drivers.target.activate(drivers.console)
    mark = drivers.console.mark()
    yield drivers
    drivers.console.drain()
    text = drivers.console.text_since(mark)
    request.node.add_report_section("teardown", "stdout", f"console of {spec.id} during this test:\n{text}")
    boots = re.findall(r"rig: boot (.*)", text)  # the firmware that ran last in this test says its version
    boot = parse_boot_fields(boots[-1]) if boots else {}
    request.node.user_properties.extend([
        *board_properties(spec),
        ("board_firmware_sha256", drivers.firmware_sha256 or "not flashed in this run"),
        ("board_firmware_version", boot.get("version", "no boot line in this test")),
    ])


def board_properties(spec) -> list[tuple[str, str]]:
    """The JUnit properties that say which board (rig.lab Board) a test ran on: the `board` fixture
    records them, and so must a test that takes a board another way (a side lab's)."""
    return [
        ("board", spec.id),
        ("board_host", spec.host or socket.gethostname()),
        ("board_variant", spec.variant),
        ("board_virtual", str(spec.virtual).lower()),
    ]


@pytest.fixture
def console(board):
    """The board's console (rig.drivers.RigConsoleDriver), open: `expect_line`, `send_line`, ..."""
    return board.console


@pytest.fixture
def board_retry(request, board):
    """`board_retry(step)`: run a hardware step, power-cycling to the app and retrying on failure.

    Attempts come from --rig-attempts; retries are counted in the `board_retries` property.
    """
    attempts = request.config.getoption("--rig-attempts")
    retries = 0

    def retry(step):
        nonlocal retries
        for attempt in range(1, attempts + 1):
            try:
                return step()
            except Exception:
                if attempt == attempts or board.strategy is None:
                    raise
                retries += 1
                board.strategy.power_on_to_app()

    yield retry
    request.node.user_properties.append(("board_retries", retries))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """A remote board whose exporter left mid-run fails its tests with one line naming the place and
    the exporter, not the traceback of whichever connection broke first."""
    outcome = yield
    report = outcome.get_result()
    if not report.failed or call.excinfo is None:
        return
    coordinator = item.config.stash.get(COORDINATOR_KEY, None)
    spec = getattr(getattr(item, "callspec", None), "params", {}).get("board")
    if coordinator is None or spec is None or spec.host is None:
        return
    from rig.errors import RigError

    try:
        gone = coordinator.exporter_gone(spec)
    except RigError:
        gone = False
    if gone:
        first = (str(call.excinfo.value).strip().splitlines() or [call.excinfo.typename])[0]
        report.longrepr = (f"place {spec.id}: exporter {spec.host} left coordinator {coordinator.address} "
                           f"during the test ({call.excinfo.typename}: {first})")


def _console_into_junit(config):
    """JUnit's system-out carries captured stdout only when junit_logging asks for it; the console
    slices are report sections of stdout, so turn it on unless the user chose a setting."""
    from _pytest.junitxml import xml_key  # the LogXML instance; no public accessor exists

    xml = config.stash.get(xml_key, None)
    if xml is not None and config.getini("junit_logging") == "no":
        xml.logging = "system-out"


def _rig(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "rig", *args], capture_output=True, text=True)


def _ensure_lab(rack: str) -> None:
    from rig.lab import leases
    from rig.sim.registry import lab_name

    # Workers race to start the lab; the first starts it, the others find it running.
    with leases.acquire(f"lab-start-{lab_name(rack)}", timeout=120, holder="pytest lab start"):
        status = _rig("lab", "status", "--json", "--rack", rack)
        if status.returncode == 0 and json.loads(status.stdout)["running"]:
            return
        up = _rig("lab", "up", "--rack", rack)
        if up.returncode != 0:
            raise pytest.UsageError(f"rig lab up --rack {rack} failed: {up.stderr.strip() or up.stdout.strip()}")
        started = _started_file()
        started.parent.mkdir(parents=True, exist_ok=True)
        with open(started, "a") as f:
            f.write(str(Path(rack).resolve()) + "\n")


def _started_file() -> Path:
    from rig.lab.runtime import runtime_dir

    return runtime_dir() / "pytest-started" / os.environ[RUN_ENV]


def _stop_labs_started_by_this_run() -> None:
    if RUN_ENV not in os.environ:
        return  # pytest_configure stopped before it named the run (a usage error): nothing started
    started = _started_file()
    if not started.exists():
        return
    for rack in sorted(set(started.read_text().split())):
        _rig("lab", "down", "--rack", rack)
    started.unlink()
